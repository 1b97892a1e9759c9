// Benchmark trends (GET /api/benchmarks/trends): each path's writes/s across runs over time, one
// line per host, kernel and KVM flavour, and the runs whose median fell more than the chosen share
// below the previous run of the same path on the same host flagged on the chart and in a table.

import { api } from "./api.js";
import { baseLayout, colourFor, emptyState, h, plotText, PLOT_CONFIG, rate, when } from "./format.js";

/** "ioeventfd-pio · host · 6.1.0 · kvm_intel (nested)": one trend line's name. */
export function flavourName(g) {
  const kvm = g.kvm_module ? `${g.kvm_module}${g.kvm_nested ? " (nested)" : ""}` : "kvm ?";
  return [g.path, g.host || "host ?", g.kernel || "kernel ?", kvm].join(" · ");
}

const pct = (share) => `${(share * 100).toFixed(1)}%`;

function traces(groups) {
  const lines = groups.map((g) => ({
    type: "scatter", mode: "lines+markers", name: plotText(flavourName(g)), x: g.points.map((p) => new Date(p.t)),
    y: g.points.map((p) => p.iops), line: { color: colourFor(`trend:${flavourName(g)}`), width: 2 },
    customdata: g.points.map((p) => [p.run_id, p.rtt_us]),
    hovertemplate: "run #%{customdata[0]}: %{y:,.0f} writes/s, rtt %{customdata[1]:.2f} µs<extra>%{fullData.name}</extra>",
  }));
  const flagged = groups.flatMap((g) => g.points.filter((p) => p.regression).map((p) => ({ g, p })));
  lines.push({
    type: "scatter", mode: "markers", name: "regression", x: flagged.map((f) => new Date(f.p.t)), y: flagged.map((f) => f.p.iops),
    marker: { symbol: "x-thin-open", size: 16, color: "#B00020", line: { width: 3, color: "#B00020" } },
    text: flagged.map((f) => plotText(`${f.g.path} on ${f.g.host}: −${pct(f.p.regression.drop_share)} vs run #${f.p.regression.previous_run_id}`)),
    hovertemplate: "%{text}<extra>regression</extra>",
  });
  return lines;
}

function regressionTable(groups, share) {
  const rows = groups.flatMap((g) => g.points.filter((p) => p.regression).map((p) => h("tr", { dataset: { run: p.run_id, path: g.path } },
    h("td", { class: "mono" }, g.path), h("td", {}, flavourName(g).split(" · ").slice(1).join(" · ")),
    h("td", {}, `#${p.run_id} · ${when(p.t)}`), h("td", { class: "num" }, rate(p.iops).replace("/s", "")),
    h("td", { class: "num" }, `#${p.regression.previous_run_id}: ${rate(p.regression.previous_iops).replace("/s", "")}`),
    h("td", { class: "num regressed" }, `−${pct(p.regression.drop_share)}`))));
  if (!rows.length) return emptyState(`No regression above ${pct(share)}`, "Every run kept within that share of the run before it on its host.");
  return h("table", { id: "regressions" }, h("caption", { class: "muted" }, `${rows.length} regression(s) above ${pct(share)}`),
    h("thead", {}, h("tr", {}, ["Path", "Host · kernel · KVM", "Run"].map((t) => h("th", {}, t)),
      ["Writes/s", "Previous run", "Drop"].map((t) => h("th", { class: "num" }, t)))), h("tbody", {}, rows));
}

export class TrendsCard {
  /** `share()` is the regression share chosen on the page with `shareControl` (shown here). */
  constructor(ctx, share, shareControl) {
    Object.assign(this, { ctx, share });
    this.chart = h("div", { class: "chart tall", id: "chart-trends" });
    this.table = h("div", { class: "table-wrap", id: "regressions-wrap" });
    this.body = h("div", {}, this.chart);
    this.section = h("section", { class: "card", id: "trends" }, h("h2", {}, "Trends: writes/s per path across runs"),
      h("p", { class: "hint" }, "One line per path, host, kernel and KVM flavour; ✕ marks a regression."),
      shareControl, this.body, this.table);
    this.drawn = false;
  }

  async load() {
    try {
      const groups = await api.get(`/api/benchmarks/trends?regression_share=${this.share()}`);
      this.table.replaceChildren(regressionTable(groups, this.share()));
      if (!groups.length) return this.empty(emptyState("No trends yet", "Finished benchmark runs show here over time."));
      if (!this.drawn) this.body.replaceChildren(this.chart);
      await Plotly.react(this.chart, traces(groups), baseLayout({
        xaxis: { type: "date" }, hovermode: "closest", showlegend: true, margin: { l: 64, r: 16, t: 12, b: 40 },
        yaxis: { title: { text: "writes/s" }, tickformat: "~s", rangemode: "tozero" },
      }), PLOT_CONFIG);
      this.drawn = true;
    } catch (err) {
      this.empty(emptyState("Could not load the trends", err.message));
    }
  }

  empty(box) {
    this.stop();
    this.body.replaceChildren(box);
  }

  stop() {
    if (this.drawn) Plotly.purge(this.chart);
    this.drawn = false;
  }
}
