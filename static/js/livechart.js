// A Plotly line chart fed one tick at a time: new series are added as they appear, existing
// ones extended, and the x axis slides over the last minute. Ticks are kept as they come and
// drawn at most every FLUSH_MS with one Plotly.react: drawing every tick (two redraws each, at
// 5 ticks a second on two charts) starved a busy machine's page until it stopped answering.

import { MARKER_AXIS, markerTrace, showAnnotations } from "./annotations.js";
import { baseLayout, colourFor, plotText, PLOT_CONFIG } from "./format.js";

const WINDOW_MS = 60_000;
const MAX_POINTS = 1200; // a minute at 50 ms ticks; older points are dropped
const FLUSH_MS = 250;
// More lines than this are unreadable and slow to draw; the first ones stay.
export const MAX_SERIES = 24;

export class LiveChart {
  /** Draws an empty chart in `div` titled `title`, y axis `yTitle`. */
  constructor(div, title, yTitle) {
    Object.assign(this, { div, series: new Map(), firstT: null, lastT: null, timer: null, drawnAt: 0 });
    const now = Date.now();
    const layout = baseLayout({
      title: { text: title, x: 0, xanchor: "left", font: { size: 15 } },
      xaxis: { type: "date", range: [new Date(now - WINDOW_MS), new Date(now)] },
      yaxis: { title: { text: yTitle }, rangemode: "tozero", tickformat: "~s" },
      yaxis2: MARKER_AXIS,
      showlegend: true,
    });
    Plotly.newPlot(div, [markerTrace()], layout, PLOT_CONFIG); // the annotation markers stay first
  }

  /**
   * Adds one tick at time `t`: `points` is [{key, name, y}] (optionally `colourKey`, to share a
   * colour with another series, and `dash`). Series seen before but missing from
   * this tick get 0 when `absentIsZero` (an address that stopped exiting), else no point.
   */
  push(t, points, absentIsZero) {
    const seen = new Set();
    for (const p of points) {
      if (!this.series.has(p.key) && this.series.size >= MAX_SERIES) continue;
      if (!this.series.has(p.key)) {
        this.series.set(p.key, {
          x: [], y: [], name: plotText(p.name), type: "scatter", mode: "lines",
          line: { color: colourFor(p.colourKey ?? p.key), width: 2, dash: p.dash ?? "solid" },
          hovertemplate: "%{y:.4~s}/s",
        });
      }
      seen.add(p.key);
      const trace = this.series.get(p.key);
      trace.x.push(t);
      trace.y.push(p.y);
    }
    if (absentIsZero) {
      for (const [key, trace] of this.series) if (!seen.has(key)) (trace.x.push(t), trace.y.push(0));
    }
    this.firstT ??= t;
    this.lastT = t;
    this.timer ??= setTimeout(() => this.draw(), Math.max(0, this.drawnAt + FLUSH_MS - Date.now()));
  }

  /** One redraw for every tick since the last: new points, the window slid to the newest. */
  draw() {
    this.timer = null;
    this.drawnAt = Date.now();
    for (const trace of this.series.values()) {
      const extra = trace.x.length - MAX_POINTS;
      if (extra > 0) (trace.x.splice(0, extra), trace.y.splice(0, extra));
    }
    // Until a minute has passed, the lines fill the chart from the first tick.
    const start = Math.max(this.firstT - 1000, this.lastT - WINDOW_MS);
    const old = this.div.layout;
    const layout = { ...old, xaxis: { ...old.xaxis, range: [new Date(start), this.lastT] },
      datarevision: (old.datarevision || 0) + 1 };
    Plotly.react(this.div, [this.div.data[0], ...this.series.values()], layout, PLOT_CONFIG);
  }

  /** Renames a series (a label learned after its first point). */
  rename(key, name) {
    const trace = this.series.get(key);
    if (!trace || trace.name === plotText(name)) return;
    trace.name = plotText(name);
    if (this.lastT) this.timer ??= setTimeout(() => this.draw(), FLUSH_MS);
  }

  /** Draws markers for these annotations (GET /api/annotations). */
  annotate(list) {
    showAnnotations(this.div, list);
  }

  destroy() {
    clearTimeout(this.timer);
    Plotly.purge(this.div);
  }
}
