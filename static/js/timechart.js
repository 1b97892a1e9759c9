// A time chart of panel data (the API's {ref, name, t, v} series) over a fixed range, with the
// annotation markers first (index 0): History's compare chart and every dashboard panel.

import { MARKER_AXIS, markerShapes, markerTrace } from "./annotations.js";
import { baseLayout, colourFor, h, plotText, PLOT_CONFIG } from "./format.js";
import { refKey } from "./seriespicker.js";

/** The key of a series of panel data: its ref's key, or the aggregate's name. */
export function seriesKey(s) {
  const r = s.ref || {};
  const named = r.ioeventfd_id != null || r.path != null || r.vm_id != null;
  return named ? refKey(r) : `agg:${s.name}`;
}

/** The Plotly trace of one series; `unit` goes in the hover. */
export function seriesTrace(s, unit, markers = false) {
  return {
    type: "scatter", mode: markers ? "lines+markers" : "lines", name: plotText(s.name), meta: seriesKey(s),
    x: s.t.map((ms) => new Date(ms)), y: s.v, connectgaps: false,
    line: { color: colourFor(seriesKey(s)), width: 2 }, marker: { size: 5 },
    hovertemplate: `%{y:.4~s} ${plotText(unit)}`,
  };
}

/**
 * The legend as HTML under the chart: names as text, a click hides or shows a series. Plotly's
 * own legend measures every name in SVG: with 8 panels of 24 series, a third of the first paint.
 */
function htmlLegend(el, div, series) {
  el.replaceChildren(...series.map((s, i) => {
    const item = h("button", { type: "button", class: "legend-item", "aria-pressed": "true", onclick: () => {
      const on = item.getAttribute("aria-pressed") !== "true";
      item.setAttribute("aria-pressed", String(on));
      Plotly.restyle(div, { visible: on ? true : "legendonly" }, [i + 1]);
    } }, h("span", { class: "swatch", style: `background:${colourFor(seriesKey(s))}` }), s.name);
    return h("li", {}, item);
  }));
}

/**
 * Draws `series` in `div` over `span` ([start, end] ms). Options: title, yTitle, unit,
 * annotations (a list), legend (an element for the names). Series without points are left out
 * (the caller says why).
 */
export function drawTimeChart(div, series, span, opts = {}) {
  const shown = series.filter((s) => s.t.length);
  // Markers only where a few short lines would otherwise be hard to see (a point per run...).
  const markers = shown.length <= 4 && shown.every((s) => s.t.length < 60);
  const traces = shown.map((s) => seriesTrace(s, opts.unit || "", markers));
  if (opts.legend) htmlLegend(opts.legend, div, shown);
  const layout = baseLayout({
    title: opts.title ? { text: plotText(opts.title), x: 0, font: { size: 15 } } : undefined,
    xaxis: { type: "date", range: span.map((ms) => new Date(ms)) },
    yaxis: { title: { text: plotText(opts.yTitle || "") }, rangemode: "tozero", tickformat: "~s" },
    yaxis2: MARKER_AXIS,
    shapes: markerShapes(opts.annotations),
    showlegend: false,
    margin: { l: 64, r: 16, t: opts.title ? 36 : 12, b: 40 },
  });
  return Plotly.react(div, [markerTrace(opts.annotations), ...traces], layout, PLOT_CONFIG);
}

/**
 * Adds `points` (series key -> [[t, v], ...]) to a chart drawn by drawTimeChart and slides its x
 * axis to `span`, dropping points that fell off its start: one redraw, however many points.
 */
export function extendChart(div, points, span) {
  const start = new Date(span[0]);
  div.data.forEach((trace, i) => {
    const add = i === 0 ? null : points.get(trace.meta);
    if (add) for (const [t, v] of add) (trace.x.push(new Date(t)), trace.y.push(v));
    let drop = 0;
    while (i > 0 && drop < trace.x.length - 1 && trace.x[drop] < start) drop++;
    if (drop) (trace.x.splice(0, drop), trace.y.splice(0, drop));
  });
  const old = div.layout;
  const layout = { ...old, xaxis: { ...old.xaxis, range: span.map((ms) => new Date(ms)) },
    datarevision: (old.datarevision || 0) + 1 };
  return Plotly.react(div, div.data, layout, PLOT_CONFIG);
}

/** What a panel's series say they lack: "registration 12 does not exist", ... */
export function missingText(series) {
  return series.filter((s) => s.missing).map((s) => (s.missing.includes(s.name) ? s.missing : `${s.name}: ${s.missing}`));
}
