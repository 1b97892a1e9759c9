// History: several registrations (signals/s) and addresses (exits/s), from any VMs, on one chart
// (POST /api/panels/data). Series, range and zoom live in the URL; CSV/JSON export the same body,
// so a download holds exactly what the chart shows. Drag to zoom, double-click to go back.

import { keepAnnotated, showAnnotations } from "../annotations.js";
import { ALL_STATES_QUERY, api, download } from "../api.js";
import { emptyState, h } from "../format.js";
import { parseRefKey, refKey, SeriesPicker, seriesChips } from "../seriespicker.js";
import { drawTimeChart, missingText } from "../timechart.js";
import { isLive, onUserZoom, rangeFromParams, rangeSelect, spanOf } from "../timerange.js";

export const title = "History";
const METRIC_OF = { r: "signals", a: "exits" };

/** The chosen series the URL names (?s=r12&s=a1.pio.0x6000.2). */
function chosenFromParams(params) {
  return params.getAll("s").map((key) => ({ key, ref: parseRefKey(key), metric: METRIC_OF[key[0]], name: key }))
    .filter((c) => c.ref && c.metric);
}

/** The ad-hoc panels body: one panel per metric, its series in the order chosen. */
function panelsBody(range, chosen) {
  const panels = ["signals", "exits"].map((metric) => ({
    title: metric, metric, aggregate: "none", series: chosen.filter((c) => c.metric === metric).map((c) => c.ref),
  })).filter((p) => p.series.length);
  return { since: range.since, until: range.until, panels };
}

function yTitle(chosen) {
  const metrics = new Set(chosen.map((c) => c.metric));
  return metrics.size > 1 ? "per second" : metrics.has("exits") ? "exits/s" : "signals/s";
}

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  root.append(h("h1", {}, "History"));
  if (ctx.vmId === null) {
    root.append(emptyState("No VM yet", "History is kept per registration and address; start a worker first."));
    return null;
  }
  let range = rangeFromParams(ctx.params, { since: "-15m", until: null });
  let chosen = chosenFromParams(ctx.params);
  let shown = null; // the body of what the chart shows: the exports send it again
  const chart = h("div", { class: "chart tall", id: "chart-history" });
  const legend = h("ul", { class: "legend-html", "aria-label": "Series" });
  const note = h("p", { class: "hint", id: "history-note" });
  const body = h("div");
  const chips = h("div");
  const rangeSlot = h("span");
  const picker = new SeriesPicker(ctx, ["signals", "exits"], (c) => {
    if (!chosen.some((x) => x.key === refKey(c.ref))) chosen.push({ ...c, key: refKey(c.ref) });
    update();
  }, { series: "history-reg", vm: "history-vm" });
  const exportAs = (format) => shown && download(`/api/panels/data?format=${format}`, `history.${format}`, shown)
    .catch((err) => ctx.toast(err.message, "error"));
  const exports = [h("button", { type: "button", id: "history-csv", onclick: () => exportAs("csv") }, "Download CSV"),
    h("button", { type: "button", id: "history-json", onclick: () => exportAs("json") }, "Download JSON")];
  root.append(h("section", { class: "card" },
    h("form", { class: "inline", onsubmit: (ev) => ev.preventDefault() }, picker.element, h("label", {}, "Range", rangeSlot), ...exports),
    chips, note, body));
  let drawn = false;
  let drawing = 0;

  function setRange(next) {
    range = next ?? { since: "-15m", until: null };
    update();
    marks.refresh();
  }

  function update() {
    ctx.setParams({ s: chosen.map((c) => c.key), since: range.since, until: range.until });
    rangeSlot.replaceChildren(rangeSelect(range, setRange, { id: "history-range" }));
    chips.replaceChildren(seriesChips(chosen, (i) => (chosen.splice(i, 1), update())));
    draw();
  }

  async function draw() {
    exports.forEach((b) => (b.disabled = !chosen.length));
    if (!chosen.length) {
      shown = null;
      note.textContent = "";
      body.replaceChildren(emptyState("No series chosen", "Add registrations or addresses, from any VM, to compare them here."));
      drawn = false;
      return;
    }
    const request = panelsBody(range, chosen);
    const mine = ++drawing;
    try {
      const res = (await api.post("/api/panels/data", request)).data;
      if (mine !== drawing) return; // a newer choice is on its way
      const series = res.panels.flatMap((p) => p.series);
      series.forEach((s, i) => chosen[i] && (chosen[i].name = s.name));
      chips.replaceChildren(seriesChips(chosen, (i) => (chosen.splice(i, 1), update())));
      // A range ending "now" moves on: the exports ask for the very range drawn.
      const drawnRange = { since: new Date(res.since).toISOString(), until: new Date(res.until).toISOString() };
      shown = { ...request, ...drawnRange };
      const points = series.reduce((n, s) => n + s.t.length, 0);
      note.replaceChildren(`${points} point(s), one per ${res.step_s} s` +
        (res.tier === "minute" ? " (per-minute rollups)" : " (raw samples)") +
        (isLive(range) ? "" : " · zoomed: double-click the chart to go back"),
      ...missingText(series).map((m) => h("span", { class: "missing" }, ` · ${m}`)));
      if (!drawn) body.replaceChildren(chart, legend);
      await drawTimeChart(chart, series, spanOf(range), { yTitle: yTitle(chosen), unit: "/s", legend,
        title: chosen.length === 1 ? chosen[0].name : `${chosen.length} series`, annotations: marksList });
      if (!drawn) onUserZoom(chart, setRange);
      drawn = true;
    } catch (err) {
      note.textContent = "";
      body.replaceChildren(emptyState("Could not load the history", err.message));
      drawn = false;
    }
  }

  let marksList = []; // the annotations of the range, drawn with every redraw
  const marker = { annotate: (list) => ((marksList = list), drawn && showAnnotations(chart, list)) };
  const marks = keepAnnotated(() => [marker], () => spanOf(range), null, 30_000);

  async function start() {
    await picker.load();
    if (!chosen.length && !ctx.params.has("s")) {
      const regs = await api.get(`/api/vms/${ctx.vmId}/ioeventfds?${ALL_STATES_QUERY}`).catch(() => []);
      const newest = regs.sort((a, b) => b.id - a.id)[0];
      if (newest) chosen.push({ metric: "signals", ref: { ioeventfd_id: newest.id }, key: `r${newest.id}`, name: `#${newest.id}` });
    }
    update();
  }
  start();
  const timer = setInterval(() => isLive(range) && drawn && draw(), 30_000); // a range ending now moves on
  return () => {
    clearInterval(timer);
    marks.stop();
    if (drawn) Plotly.purge(chart);
  };
}
