// A time chart of panel data (the API's {ref, name, t, v} series) over a fixed range, with the
// annotation markers first (index 0): History's compare chart and every dashboard panel.

import { MARKER_AXIS, markerShapes, markerTrace } from "./annotations.js";
import { baseLayout, colourFor, plotText, PLOT_CONFIG } from "./format.js";
import { refKey } from "./seriespicker.js";

/** The key of a series of panel data: its ref's key, or the aggregate's name. */
export function seriesKey(s) {
  const r = s.ref || {};
  const named = r.ioeventfd_id != null || r.path != null || r.vm_id != null;
  return named ? refKey(r) : `agg:${s.name}`;
}

/** The Plotly trace of one series; `unit` goes in the hover. */
export function seriesTrace(s, unit) {
  return {
    type: "scatter", mode: s.t.length < 60 ? "lines+markers" : "lines", name: plotText(s.name), meta: seriesKey(s),
    x: s.t.map((ms) => new Date(ms)), y: s.v, connectgaps: false,
    line: { color: colourFor(seriesKey(s)), width: 2 }, marker: { size: 4 },
    hovertemplate: `%{y:.4~s} ${plotText(unit)}`,
  };
}

/**
 * Draws `series` in `div` over `span` ([start, end] ms). Options: title, yTitle, unit,
 * annotations (a list), height. Series without points are left out (the caller says why).
 */
export function drawTimeChart(div, series, span, opts = {}) {
  const traces = series.filter((s) => s.t.length).map((s) => seriesTrace(s, opts.unit || ""));
  const layout = baseLayout({
    title: opts.title ? { text: plotText(opts.title), x: 0, font: { size: 15 } } : undefined,
    xaxis: { type: "date", range: span.map((ms) => new Date(ms)) },
    yaxis: { title: { text: plotText(opts.yTitle || "") }, rangemode: "tozero", tickformat: "~s" },
    yaxis2: MARKER_AXIS,
    shapes: markerShapes(opts.annotations),
    showlegend: traces.length > 1 || Boolean(opts.legend),
    margin: { l: 64, r: 16, t: opts.title ? 36 : 12, b: 40 },
  });
  return Plotly.react(div, [markerTrace(opts.annotations), ...traces], layout, PLOT_CONFIG);
}

/** Appends one point per series (keyed as seriesKey) to a chart drawn by drawTimeChart. */
export function appendPoints(div, t, values, maxPoints) {
  const update = { x: [], y: [] };
  const indices = [];
  div.data.forEach((trace, i) => {
    if (i === 0 || !values.has(trace.meta)) return;
    indices.push(i);
    update.x.push([new Date(t)]);
    update.y.push([values.get(trace.meta)]);
  });
  if (indices.length) Plotly.extendTraces(div, update, indices, maxPoints);
  return indices.length;
}

/** What a panel's series say they lack: "registration 12 does not exist", ... */
export function missingText(series) {
  return series.filter((s) => s.missing).map((s) => (s.missing.includes(s.name) ? s.missing : `${s.name}: ${s.missing}`));
}
