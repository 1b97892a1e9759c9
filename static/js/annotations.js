// Markers for what changed (GET /api/annotations): a line (or a shaded span) on every time chart,
// and a triangle at its top whose hover label is the annotation's text, escaped: never HTML.
// Every time chart keeps the marker trace first (index 0), so its series start at index 1.

import { api } from "./api.js";
import { plotText, when } from "./format.js";
import { ANNOTATIONS_CHANGED } from "./notes.js";

const COLOURS = { note: "#6A3D9A", registration: "#009E73", workload: "#A6761D", worker: "#D55E00", benchmark: "#56606B" };
export const MARKER_AXIS = { overlaying: "y", range: [0, 1], visible: false, fixedrange: true };

/** The annotations of [startMs, endMs] for `vmId` (global ones too); [] from an API without them. */
export async function fetchAnnotations(startMs, endMs, vmId) {
  const q = new URLSearchParams({ since: new Date(startMs).toISOString(), until: new Date(endMs).toISOString() });
  if (vmId !== null && vmId !== undefined) q.set("vm_id", String(vmId));
  try {
    return await api.get(`/api/annotations?${q}`);
  } catch (err) {
    if (err.status === 404) return [];
    throw err;
  }
}

/** One line of hover text: kind, text, author and time, as plain text. */
export function annotationLabel(a) {
  const span = a.time_end ? ` – ${when(a.time_end)}` : "";
  return `${a.kind}: ${a.text}${a.author ? ` (${a.author})` : ""} · ${when(a.time)}${span}`;
}

/** The marker trace (index 0 of every time chart) for `list`. */
export function markerTrace(list = []) {
  return {
    type: "scatter", mode: "markers", name: "annotations", meta: "annotations", showlegend: false, yaxis: "y2",
    x: list.map((a) => new Date(a.time)), y: list.map(() => 0.97),
    text: list.map((a) => plotText(annotationLabel(a))), customdata: list.map((a) => a.id),
    marker: { symbol: "triangle-down", size: 12, color: list.map((a) => COLOURS[a.kind] || "#56606B") },
    hovertemplate: "%{text}<extra></extra>",
  };
}

/** Layout shapes: a dotted line at each annotation's time, a light band over a span. */
export function markerShapes(list = []) {
  return list.map((a) => {
    const colour = COLOURS[a.kind] || "#56606B";
    const base = { xref: "x", yref: "paper", y0: 0, y1: 1, layer: "below", x0: new Date(a.time) };
    return a.time_end
      ? { ...base, type: "rect", x1: new Date(a.time_end), fillcolor: colour, opacity: 0.1, line: { width: 0 } }
      : { ...base, type: "line", x1: new Date(a.time), line: { color: colour, width: 1, dash: "dot" } };
  });
}

/** Redraws the markers of a chart drawn with markerTrace() first. */
export function showAnnotations(div, list) {
  const t = markerTrace(list);
  Plotly.update(div, { x: [t.x], y: [t.y], text: [t.text], customdata: [t.customdata], "marker.color": [t.marker.color] },
    { shapes: markerShapes(list) }, [0]);
}

/**
 * Keeps the markers of `charts` (each with annotate(list)) current for the span `spanMs()` gives:
 * now, every `everyMs`, and whenever a note is added from the page. Returns {stop, refresh}.
 */
export function keepAnnotated(charts, spanMs, vmId, everyMs = 15_000) {
  let alive = true;
  const refresh = async () => {
    try {
      const [start, end] = spanMs();
      const list = await fetchAnnotations(start, end, vmId);
      if (alive) charts().forEach((c) => c.annotate(list));
    } catch {
      // Markers are extras: a failed read leaves the old ones and the next round tries again.
    }
  };
  const timer = setInterval(refresh, everyMs);
  window.addEventListener(ANNOTATIONS_CHANGED, refresh);
  refresh();
  return {
    refresh,
    stop() {
      alive = false;
      clearInterval(timer);
      window.removeEventListener(ANNOTATIONS_CHANGED, refresh);
    },
  };
}
