// The Live page of an observed VM (another VMM's, watched by `iosignal observe`): per address,
// the guest's writes split into in-kernel and userspace (stacked bars, the newest second), the
// totals over the last minute, and the hot doorbells that still exit to userspace. Read-only:
// iosignal registers nothing in another process's VM. Fed by the stream's `observed` figures.

import { api } from "./api.js";
import { addrKey, addrText, baseLayout, emptyState, h, plotText, PLOT_CONFIG, rate, share } from "./format.js";
import { LiveChart } from "./livechart.js";

const BARS = 16; // addresses in the split chart, most written first
const ROWS = 10;
const SHOW_EVERY_MS = 1000; // a steady chart and table are easier to read than 5 redraws a second
const IN_KERNEL = "#009E73";
const USERSPACE = "#D55E00";

/** The stacked bar chart: one bar per address, in-kernel and userspace writes/s. */
class SplitChart {
  constructor(div) {
    this.div = div;
    const layout = baseLayout({
      title: { text: "Writes/s per address: in-kernel and userspace", x: 0, xanchor: "left", font: { size: 15 } },
      barmode: "stack", hovermode: "y unified", margin: { l: 150, r: 16, t: 36, b: 48 },
      xaxis: { title: { text: "writes/s" }, rangemode: "tozero", tickformat: "~s" },
      yaxis: { type: "category", autorange: "reversed", automargin: true },
    });
    Plotly.newPlot(div, this.traces([]), layout, PLOT_CONFIG);
  }

  traces(rows) {
    const y = rows.map((o) => plotText(addrText(o.space, o.addr, o.len)));
    const bar = (name, colour, key) => ({
      type: "bar", orientation: "h", name, y, x: rows.map((o) => o[key]),
      marker: { color: colour }, hovertemplate: "%{x:.4~s}/s",
    });
    return [bar("in-kernel", IN_KERNEL, "in_kernel_hz"), bar("userspace", USERSPACE, "userspace_hz")];
  }

  show(rows) {
    Plotly.react(this.div, this.traces(rows.slice(0, BARS)), this.div.layout, PLOT_CONFIG);
  }

  destroy() {
    Plotly.purge(this.div);
  }
}

/** The table of hot doorbells that exit to userspace, busiest first, updated in place. */
class ExitingTable {
  constructor() {
    this.rows = new Map();
    this.body = h("tbody");
    this.table = h("table", { id: "exiting-table", hidden: true },
      h("thead", {}, h("tr", {}, h("th", {}, "Address"), h("th", { class: "num" }, "Userspace exits/s"),
        h("th", { class: "num" }, "Writes/s"), h("th", { class: "num" }, "In-kernel"))), this.body);
    this.empty = emptyState("No doorbell exits to userspace",
      "Every write this guest made lately stayed in the kernel (an ioeventfd or in-kernel device took it).");
    this.section = h("section", { class: "card", id: "exiting-doorbells" },
      h("h2", {}, "Hot doorbells that exit to userspace"),
      h("p", { class: "hint" }, "Each of these writes is a heavy exit to the VMM. An ioeventfd on the address " +
        "would keep it in the kernel; that is for the VMM to register (iosignal only watches this VM)."),
      h("div", { class: "table-wrap" }, this.table), this.empty);
  }

  show(observed) {
    const hot = observed.filter((o) => o.userspace_hz > 0).sort((a, b) => b.userspace_hz - a.userspace_hz).slice(0, ROWS);
    const keep = new Set(hot.map((o) => addrKey(o.space, o.addr, o.len)));
    for (const [key, tr] of this.rows) if (!keep.has(key)) (tr.remove(), this.rows.delete(key));
    for (const o of hot) {
      const key = addrKey(o.space, o.addr, o.len);
      if (!this.rows.has(key)) {
        this.rows.set(key, h("tr", { dataset: { key } }, h("td", { class: "mono" }, addrText(o.space, o.addr, o.len)),
          h("td", { class: "num userspace" }), h("td", { class: "num writes" }), h("td", { class: "num share" })));
      }
      const tr = this.rows.get(key);
      tr.querySelector(".userspace").textContent = rate(o.userspace_hz);
      tr.querySelector(".writes").textContent = rate(o.writes_hz);
      tr.querySelector(".share").textContent = share(o.in_kernel_share);
      this.body.append(tr); // re-appending keeps the busiest first
    }
    this.table.hidden = hot.length === 0;
    this.empty.hidden = hot.length > 0;
  }
}

function heading(vm) {
  const who = `${vm.comm || "VMM"}${vm.pid ? ` (pid ${vm.pid})` : ""}`;
  return [h("h1", {}, "Live", ` · ${vm.name}`),
    h("p", { class: "hint", id: "observed-note" }, h("span", { class: "badge kind-observed" }, "observed"),
      ` ${who} on ${vm.host}: another VMM's VM, watched read-only by iosignal observe. `,
      vm.ended_at ? `Its process ended at ${new Date(vm.ended_at).toLocaleString()}.` : "")];
}

/** Mounts the Live page of an observed VM; returns its cleanup. */
export function mountObserved(root, ctx, vm) {
  const splitDiv = h("div", { class: "chart", id: "chart-split" });
  const totalsDiv = h("div", { class: "chart", id: "chart-observed" });
  const note = h("p", { class: "hint", id: "split-note" }, "Waiting for the observer's first tick…");
  const table = new ExitingTable();
  root.append(...heading(vm), h("div", { class: "grid two" },
    h("section", { class: "card" }, note, splitDiv), h("section", { class: "card" }, totalsDiv)), table.section);
  const split = new SplitChart(splitDiv);
  const totals = new LiveChart(totalsDiv, "Guest writes/s: in-kernel and userspace", "writes/s");
  let shownAt = 0;

  function show(observed) {
    split.show(observed);
    table.show(observed);
    const writes = observed.reduce((s, o) => s + o.writes_hz, 0);
    const inKernel = observed.reduce((s, o) => s + o.in_kernel_hz, 0);
    note.textContent = observed.length ? `${observed.length} address(es) written: ${rate(writes)}, ` +
      `${share(writes ? inKernel / writes : null)} in-kernel` : "No writes in the last tick.";
  }

  function onRates(tick) {
    const observed = tick.observed || [];
    const t = new Date(tick.t);
    const sum = (key) => observed.reduce((s, o) => s + o[key], 0);
    totals.push(t, [{ key: "in-kernel", name: "in-kernel", y: sum("in_kernel_hz") },
      { key: "userspace", name: "userspace", y: sum("userspace_hz") }], true);
    if (t - shownAt < SHOW_EVERY_MS) return;
    shownAt = t;
    show(observed);
  }

  // Until the first tick arrives, the last ten seconds fill the chart and table.
  api.get(`/api/vms/${vm.id}/exits?since=-10s`)
    .then((rows) => !shownAt && show(rows.filter((r) => r.writes).sort((a, b) => b.writes_hz - a.writes_hz)))
    .catch((err) => ctx.toast(`Exits: ${err.message}`, "error"));
  const off = ctx.stream.on("rates", onRates);
  return () => {
    off();
    split.destroy();
    totals.destroy();
  };
}
