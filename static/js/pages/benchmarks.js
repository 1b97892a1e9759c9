// Benchmarks: start one (progress bar while the worker runs it on a scratch VM), compare runs
// across hosts and kernels as grouped bars, the 2009 figures alongside; trends across runs with
// regressions flagged at the chosen share. Compared runs and the share live in the URL.

import { api } from "../api.js";
import { BenchForm } from "../benchform.js";
import { drawBench, resultTable, runName } from "../benchchart.js";
import { TrendsCard } from "../benchtrends.js";
import { emptyState, h, when } from "../format.js";

export const title = "Benchmarks";

/** "ioeventfd-pio −23%": the paths of a run that regressed (GET /api/benchmarks?regression_share). */
function regressions(run) {
  return run.results.filter((x) => x.regression)
    .map((x) => `${x.path} −${(x.regression.drop_share * 100).toFixed(1)}%`).join(", ");
}

/** The regression share input, in percent; the URL keeps it (?share=10). */
function shareInput(ctx, onChange) {
  const start = Number(ctx.params.get("share")) || 10;
  const input = h("input", { type: "number", id: "regression-share", class: "narrow", min: 1, max: 90, step: 1, value: start,
    onchange: () => {
      if (!(input.valueAsNumber >= 1 && input.valueAsNumber <= 90)) input.value = start;
      ctx.setParams({ share: input.value === "10" ? null : input.value });
      onChange();
    } });
  return input;
}

/** The Runs card: every run, filtered by host and kernel, each with a "compare" checkbox. */
class RunsTable {
  constructor(ctx, compare, onCompare) {
    Object.assign(this, { ctx, compare, onCompare, runs: [] });
    this.host = h("select", { "aria-label": "Host", onchange: () => this.render() });
    this.kernel = h("select", { "aria-label": "Kernel", onchange: () => this.render() });
    this.body = h("tbody");
    this.table = h("table", { id: "runs-table" }, h("thead", {}, h("tr", {},
      ["Compare", "#", "State", "Host", "Kernel", "Writes × passes", "Finished", "Regression"].map((t) => h("th", {}, t)))), this.body);
    this.empty = h("div", { id: "runs-empty" });
    this.section = h("section", { class: "card" }, h("div", { class: "row" }, h("h2", {}, "Runs"),
      h("label", { class: "inline" }, "Host", this.host), h("label", { class: "inline" }, "Kernel", this.kernel)),
    h("div", { class: "table-wrap" }, this.table), this.empty);
  }

  /** Refills a filter's options with the values the runs have, keeping the chosen one. */
  options(select, key) {
    const keep = select.value;
    const values = [...new Set(this.runs.map((r) => r[key]).filter(Boolean))];
    select.replaceChildren(h("option", { value: "" }, "all"),
      ...values.map((v) => h("option", { value: v, selected: v === keep }, v)));
  }

  row(r) {
    const toggle = (ev) => {
      ev.target.checked ? this.compare.add(r.id) : this.compare.delete(r.id);
      this.onCompare();
    };
    return h("tr", { dataset: { id: r.id } },
      h("td", {}, h("input", { type: "checkbox", "aria-label": `compare ${runName(r)}`, checked: this.compare.has(r.id),
        disabled: r.state !== "done", onchange: toggle })),
      h("td", {}, r.id), h("td", { class: `state ${r.state === "done" ? "active" : r.state}` },
        r.state === "failed" && r.error ? `failed: ${r.error}` : r.state),
      h("td", {}, r.host || "–"), h("td", {}, r.kernel || "–"), h("td", {}, `${r.writes} × ${r.repeat}`),
      h("td", {}, when(r.finished_at)), h("td", { class: "regressed" }, regressions(r)));
  }

  render() {
    this.options(this.host, "host");
    this.options(this.kernel, "kernel");
    const shown = this.runs.filter((r) => (!this.host.value || r.host === this.host.value) &&
      (!this.kernel.value || r.kernel === this.kernel.value));
    this.body.replaceChildren(...shown.map((r) => this.row(r)));
    this.table.hidden = shown.length === 0;
    this.empty.replaceChildren(shown.length ? "" : emptyState("No benchmark runs yet",
      `${this.ctx.canWrite ? "Start one above" : "An editor can start one"}: a worker runs it on a scratch VM. ` +
      "Runs from workers on other hosts that share this database show up here too."));
  }
}

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  const benchPaths = ctx.rules?.bench_paths ?? {}; // no rules only while the API is unreachable
  const compare = new Set(ctx.params.getAll("run").map(Number)); // run ids drawn side by side
  const chart = h("div", { class: "chart tall", id: "chart-bench" });
  const details = h("div", { class: "table-wrap" });
  const runs = new RunsTable(ctx, compare, () => (ctx.setParams({ run: [...compare] }), redraw()));
  const share = shareInput(ctx, () => (loadRuns(), trends.load()));
  const trends = new TrendsCard(ctx, () => share.valueAsNumber / 100, h("p", { class: "row" }, h("label", { class: "inline" },
    "Flag a regression when writes/s fall more than", share, "% below the run before on the same host")));
  const form = new BenchForm(ctx, Object.keys(benchPaths), (run) => {
    if (run.state === "done") compare.add(run.id);
    loadRuns();
    trends.load();
  });
  root.append(h("h1", {}, "Benchmarks"), form.section, h("section", { class: "card" }, chart, details),
    trends.section, runs.section);
  let alive = true;

  function redraw() {
    const chosen = runs.runs.filter((r) => compare.has(r.id) && r.results.length);
    drawBench(chart, chosen, benchPaths);
    details.replaceChildren(...chosen.map((run) => resultTable(run, benchPaths)));
  }

  async function loadRuns() {
    try {
      // Newest first, each with its results, flagged against the run before at the chosen share.
      runs.runs = await api.get(`/api/benchmarks?regression_share=${share.valueAsNumber / 100}`);
      const latest = runs.runs.find((r) => r.state === "done");
      if (!compare.size && latest) compare.add(latest.id);
      if (alive) (runs.render(), redraw());
    } catch (err) {
      runs.empty.replaceChildren(emptyState("Could not load benchmark runs", err.message));
    }
  }

  drawBench(chart, [], benchPaths); // the 2009 reference alone until a run is chosen
  loadRuns();
  trends.load();
  return () => {
    alive = false;
    form.stop();
    trends.stop();
    Plotly.purge(chart);
  };
}
