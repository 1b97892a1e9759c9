// Time ranges the way the API takes them (`since` "-15m" or ISO, `until` null for now or ISO),
// resolved to epoch ms for the charts, and the user's zoom read back from a Plotly chart.

import { h } from "./format.js";

export const RANGES = [["-5m", "5 min"], ["-15m", "15 min"], ["-1h", "1 hour"], ["-6h", "6 hours"],
  ["-24h", "24 hours"], ["-7d", "7 days"], ["-30d", "30 days"]];
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Epoch ms of `text` ("now", null, "-15m", an ISO time) at `now`; NaN if it is none of those. */
export function resolveTime(text, now = Date.now()) {
  if (text === null || text === undefined || text === "" || text === "now") return now;
  const rel = String(text).match(/^-(\d+(?:\.\d+)?)([smhd])$/);
  return rel ? now - Number(rel[1]) * UNIT_MS[rel[2]] : Date.parse(text);
}

/** [start, end] epoch ms of a {since, until} range. */
export function spanOf(range, now = Date.now()) {
  return [resolveTime(range.since, now), resolveTime(range.until, now)];
}

/** A range that ends at now follows the clock (and the stream). */
export function isLive(range) {
  return !range.until || range.until === "now";
}

/** The range a URL's params give, else `fallback`. */
export function rangeFromParams(params, fallback) {
  const since = params.get("since");
  const valid = since && !Number.isNaN(resolveTime(since)) && !Number.isNaN(resolveTime(params.get("until")));
  return valid ? { since, until: params.get("until") || null } : { ...fallback };
}

/** A select of the usual ranges; a zoomed (absolute) range shows as "zoomed". */
export function rangeSelect(range, onPick, attrs = {}) {
  const preset = isLive(range) && RANGES.some(([v]) => v === range.since);
  return h("select", { "aria-label": "Range", ...attrs, onchange: (ev) => onPick({ since: ev.target.value, until: null }) },
    preset ? null : h("option", { value: "", selected: true, disabled: true }, "zoomed"),
    RANGES.map(([v, t]) => h("option", { value: v, selected: preset && v === range.since }, t)));
}

/** Plotly's date strings ("2024-05-01 12:30:00.5") are local wall time, as the Date objects drawn. */
function plotlyTime(value) {
  const text = String(value).replace(" ", "T");
  return new Date(text.length <= 10 ? `${text}T00:00` : text).getTime();
}

/**
 * Calls `onZoom({since, until})` (ISO) when the user drags a new x range on `div`, and
 * `onZoom(null)` on a double-click reset. The charts' own sliding (`xaxis.range`) is not a zoom.
 */
export function onUserZoom(div, onZoom) {
  div.on("plotly_relayout", (ev) => {
    if (ev["xaxis.autorange"]) return onZoom(null);
    if (!("xaxis.range[0]" in ev)) return;
    const [a, b] = [plotlyTime(ev["xaxis.range[0]"]), plotlyTime(ev["xaxis.range[1]"])];
    if (Number.isNaN(a) || Number.isNaN(b) || b <= a) return;
    onZoom({ since: new Date(a).toISOString(), until: new Date(b).toISOString() });
  });
}
