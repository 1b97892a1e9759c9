// The seed-style bar chart: writes/s per path, one bar group per run (compare hosts/kernels side
// by side), rtt in the hover, and the 2009 figures as a reference series on the matching paths.

import { baseLayout, h, PALETTE, PLOT_CONFIG, rate } from "./format.js";

// The 2009 iosignalfd posting's table, placed on today's equivalent paths.
export const REFERENCE_2009 = [
  { path: "userspace-mmio", name: "qemu-mmio", iops: 110_000, rtt_us: 9.09 },
  { path: "ioeventfd-mmio", name: "iosignalfd-mmio", iops: 200_000, rtt_us: 5.0 },
  { path: "ioeventfd-pio", name: "iosignalfd-pio", iops: 367_000, rtt_us: 2.72 },
];

/** "#3 host · kernel": how a run is named in the legend, the table and the runs list. */
export function runName(run) {
  const where = [run.host, run.kernel].filter(Boolean).join(" · ");
  return `#${run.id} ${where}`.trim();
}

/**
 * Draws (or redraws) the comparison of `runs` in `div`; `benchPaths` (GET /api/rules: path ->
 * twin, in table order) orders the bars.
 */
export function drawBench(div, runs, benchPaths) {
  const present = new Set(runs.flatMap((r) => r.results.map((x) => x.path)));
  const known = Object.keys(benchPaths);
  const order = [...known.filter((p) => present.has(p)), ...[...present].filter((p) => !known.includes(p))];
  REFERENCE_2009.forEach((r) => !order.includes(r.path) && order.push(r.path));
  const traces = runs.map((run, i) => {
    const rows = run.results;
    return {
      type: "bar", name: runName(run), x: rows.map((r) => r.path), y: rows.map((r) => r.iops),
      marker: { color: PALETTE[i % PALETTE.length] },
      text: rows.map((r) => rate(r.iops)), textposition: "outside", cliponaxis: false,
      customdata: rows.map((r) => [r.rtt_us, r.rtt_us_min, r.rtt_us_max, r.guest_rtt_us ?? NaN]),
      hovertemplate: "%{x}: %{y:,.0f} writes/s<br>rtt %{customdata[0]:.2f} µs " +
        "[%{customdata[1]:.2f}–%{customdata[2]:.2f}]<br>guest rtt %{customdata[3]:.2f} µs<extra>%{fullData.name}</extra>",
    };
  });
  traces.push({
    type: "bar", name: "2009 reference (seed)", x: REFERENCE_2009.map((r) => r.path),
    y: REFERENCE_2009.map((r) => r.iops), text: REFERENCE_2009.map((r) => r.name),
    textposition: "outside", cliponaxis: false, constraintext: "none",
    marker: { color: "#d9dde3", line: { color: "#57606a", width: 1 }, pattern: { shape: "/", fgcolor: "#57606a" } },
    textfont: { color: "#1b1f24", size: 11 },
    customdata: REFERENCE_2009.map((r) => [r.name, r.rtt_us]),
    hovertemplate: "%{customdata[0]} (2009): %{y:,.0f} writes/s<br>rtt %{customdata[1]:.2f} µs<extra></extra>",
  });
  const layout = baseLayout({
    title: { text: "Writes/s per path (higher is better)", x: 0, font: { size: 15 } },
    barmode: "group", hovermode: "closest", showlegend: true,
    xaxis: { categoryorder: "array", categoryarray: order },
    yaxis: { title: { text: "writes/s" }, tickformat: "~s", rangemode: "tozero" },
    margin: { l: 64, r: 16, t: 40, b: 90 },
  });
  Plotly.react(div, traces, layout, PLOT_CONFIG);
}

/**
 * A plain table of one run's figures, with each ioeventfd path's speedup over its twin: the
 * userspace path it replaces, as `benchPaths` pairs them.
 */
export function resultTable(run, benchPaths) {
  const rows = run.results;
  const byPath = new Map(rows.map((r) => [r.path, r]));
  const num = (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
  return h("table", { class: "bench-results" },
    h("caption", { class: "muted" }, `${runName(run)}: ${run.writes} writes × ${run.repeat}`),
    h("thead", {}, h("tr", {}, ["Path"].map((t) => h("th", {}, t)),
      ["Writes/s", "rtt µs (median)", "min–max", "guest rtt µs", "Speedup"].map((t) => h("th", { class: "num" }, t)))),
    h("tbody", {}, rows.map((r) => {
      const twin = byPath.get(benchPaths[r.path]);
      return h("tr", {}, h("td", { class: "mono" }, r.path), h("td", { class: "num" }, Math.round(r.iops).toLocaleString("en-US")),
        h("td", { class: "num" }, num(r.rtt_us)), h("td", { class: "num" }, `${num(r.rtt_us_min)}–${num(r.rtt_us_max)}`),
        h("td", { class: "num" }, num(r.guest_rtt_us)),
        h("td", { class: "num" }, twin ? `${(r.iops / twin.iops).toFixed(1)}×` : ""));
    })));
}
