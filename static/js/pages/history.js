// History of one registration's signal rate from GET .../rates, over 15 min … 30 days; the API
// picks raw samples or per-minute rollups. Drag to zoom, double-click to reset.

import { ALL_STATES, api, download } from "../api.js";
import { baseLayout, emptyState, h, PLOT_CONFIG, regName } from "../format.js";

export const title = "History";

const RANGES = [["-5m", "5 min"], ["-15m", "15 min"], ["-1h", "1 hour"], ["-6h", "6 hours"], ["-24h", "24 hours"],
  ["-7d", "7 days"], ["-30d", "30 days"]];
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "-15m" -> the x range [now - 15 min, now], so the axis shows the whole window asked for. */
function windowOf(since) {
  const [, n, unit] = since.match(/^-(\d+)([mhd])$/);
  const now = Date.now();
  return [new Date(now - Number(n) * UNIT_MS[unit]), new Date(now)];
}

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  root.append(h("h1", {}, "History"));
  if (ctx.vmId === null) {
    root.append(emptyState("No VM yet", "History is kept per registration; start a worker first."));
    return null;
  }
  const regSelect = h("select", { id: "history-reg", "aria-label": "Registration" });
  const rangeSelect = h("select", { id: "history-range", "aria-label": "Range" },
    RANGES.map(([v, t]) => h("option", { value: v, selected: v === "-15m" }, t)));
  const chart = h("div", { class: "chart tall", id: "chart-history" });
  const note = h("p", { class: "hint", id: "history-note" });
  const body = h("div");
  const csv = h("button", { type: "button", onclick: () => download(url("csv"), `rates-${regSelect.value}.csv`)
    .catch((err) => ctx.toast(err.message, "error")) }, "Download CSV");
  root.append(
    h("section", { class: "card" },
      h("form", { class: "inline", onsubmit: (ev) => ev.preventDefault() },
        h("label", {}, "Registration", regSelect), h("label", {}, "Range", rangeSelect), csv),
      note, body),
  );
  let drawn = false;
  const url = (format) => {
    const q = new URLSearchParams({ since: rangeSelect.value });
    if (format) q.set("format", format);
    return `/api/vms/${ctx.vmId}/ioeventfds/${regSelect.value}/rates?${q}`;
  };

  async function draw() {
    if (!regSelect.value) return;
    try {
      const res = await api.get(url());
      const pts = res.points;
      note.textContent = `${pts.length} point(s), one per ${res.step_s} s` +
        (res.tier === "minute" ? " (per-minute rollups)" : " (raw samples)");
      const name = regSelect.selectedOptions[0].textContent;
      const trace = { x: pts.map((p) => p.t), y: pts.map((p) => p.rate_hz), customdata: pts.map((p) => p.signals),
        type: "scatter", mode: pts.length < 60 ? "lines+markers" : "lines", name, line: { color: "#0072B2", width: 2 }, fill: "tozeroy",
        fillcolor: "rgba(0,114,178,0.12)", hovertemplate: "%{y:.4~s}/s (%{customdata} signals)<extra></extra>" };
      const layout = baseLayout({ title: { text: `Signals/s · ${name}`, x: 0, font: { size: 15 } },
        xaxis: { type: "date", range: windowOf(rangeSelect.value), rangeslider: { visible: true } },
        yaxis: { title: { text: "signals/s" }, rangemode: "tozero", tickformat: "~s" }, showlegend: false });
      if (!drawn) body.replaceChildren(chart);
      Plotly.react(chart, [trace], layout, PLOT_CONFIG);
      drawn = true;
    } catch (err) {
      note.textContent = "";
      body.replaceChildren(emptyState("Could not load the history", err.message));
      drawn = false;
    }
  }

  async function loadRegs() {
    try {
      const regs = await api.get(`/api/vms/${ctx.vmId}/ioeventfds?${ALL_STATES}`);
      regs.sort((a, b) => b.id - a.id);
      regSelect.replaceChildren(...regs.map((r) => h("option", { value: r.id },
        `${regName(r)}${r.state === "active" ? "" : ` [${r.state}]`}`)));
      if (!regs.length) {
        csv.disabled = true;
        body.replaceChildren(emptyState("No registrations yet", "Register an ioeventfd; its signals are kept here for 30 days."));
        return;
      }
      draw();
    } catch (err) {
      body.replaceChildren(emptyState("Could not load registrations", err.message));
    }
  }
  regSelect.addEventListener("change", draw);
  rangeSelect.addEventListener("change", draw);
  loadRegs();
  return () => drawn && Plotly.purge(chart);
}
