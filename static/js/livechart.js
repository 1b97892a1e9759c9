// A Plotly line chart fed one tick at a time: new series are added as they appear, existing
// ones extended (Plotly.extendTraces with maxPoints), and the x axis slides over the last minute.

import { MARKER_AXIS, markerTrace, showAnnotations } from "./annotations.js";
import { baseLayout, colourFor, plotText, PLOT_CONFIG } from "./format.js";

const WINDOW_MS = 60_000;
const MAX_POINTS = 1200; // a minute at 50 ms ticks; older points are dropped by Plotly itself
// More lines than this are unreadable and slow to extend at every tick; the first ones stay.
export const MAX_SERIES = 24;

export class LiveChart {
  /** Draws an empty chart in `div` titled `title`, y axis `yTitle`. */
  constructor(div, title, yTitle) {
    this.div = div;
    this.index = new Map(); // series key -> trace index (after the annotation markers at 0)
    const now = Date.now();
    const layout = baseLayout({
      title: { text: title, x: 0, xanchor: "left", font: { size: 15 } },
      xaxis: { type: "date", range: [new Date(now - WINDOW_MS), new Date(now)] },
      yaxis: { title: { text: yTitle }, rangemode: "tozero", tickformat: "~s" },
      yaxis2: MARKER_AXIS,
      showlegend: true,
    });
    Plotly.newPlot(div, [markerTrace()], layout, PLOT_CONFIG);
  }

  /**
   * Adds one tick at time `t`: `points` is [{key, name, y}]. Series seen before but missing from
   * this tick get 0 when `absentIsZero` (an address that stopped exiting), else no point.
   */
  push(t, points, absentIsZero) {
    const seen = new Set();
    const extend = { x: [], y: [] };
    const indices = [];
    for (const p of points) {
      if (!this.index.has(p.key) && this.index.size >= MAX_SERIES) continue;
      seen.add(p.key);
      if (!this.index.has(p.key)) {
        this.index.set(p.key, this.index.size + 1);
        Plotly.addTraces(this.div, {
          x: [t], y: [p.y], name: plotText(p.name), type: "scatter", mode: "lines",
          line: { color: colourFor(p.key), width: 2 },
          hovertemplate: "%{y:.4~s}/s",
        });
        continue;
      }
      indices.push(this.index.get(p.key));
      extend.x.push([t]);
      extend.y.push([p.y]);
    }
    if (absentIsZero) {
      for (const [key, i] of this.index) {
        if (seen.has(key)) continue;
        indices.push(i);
        extend.x.push([t]);
        extend.y.push([0]);
      }
    }
    if (indices.length) Plotly.extendTraces(this.div, extend, indices, MAX_POINTS);
    // Until a minute has passed, the lines fill the chart from the first tick.
    this.firstT = this.firstT || t;
    const start = Math.max(this.firstT - 1000, t - WINDOW_MS);
    Plotly.relayout(this.div, { "xaxis.range": [new Date(start), t] });
  }

  /** Renames a series (a label learned after its first point). */
  rename(key, name) {
    const i = this.index.get(key);
    if (i !== undefined && this.div.data[i].name !== plotText(name)) Plotly.restyle(this.div, { name: [plotText(name)] }, [i]);
  }

  /** Draws markers for these annotations (GET /api/annotations). */
  annotate(list) {
    showAnnotations(this.div, list);
  }

  destroy() {
    Plotly.purge(this.div);
  }
}
