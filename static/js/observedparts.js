// What `iosignal observe` shows of a VM, as parts both Live pages draw: the split chart (per
// address, the guest's writes split into in-kernel and userspace) and the table of hot doorbells
// that still exit to userspace. An observed VM's page (observedlive.js) is made of them; an owned
// VM's page shows them in its observer card (ownedobserver.js). Fed by the stream's `observed`.

import { addrKey, addrText, baseLayout, emptyState, h, plotText, PLOT_CONFIG, rate, share } from "./format.js";

const BARS = 16; // addresses in the split chart, most written first
const ROWS = 10;
const IN_KERNEL = "#009E73";
const USERSPACE = "#D55E00";

/** The stacked bar chart: one bar per address, in-kernel and userspace writes/s. */
export class SplitChart {
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

/**
 * The table of hot doorbells that exit to userspace, busiest first, updated in place. `hint`
 * says what to do about them: only the VMM that owns the VM can register an ioeventfd. With
 * `diagnosis`, a column says why each still exits (`diagnose` feeds it from /exits rows).
 */
export class ExitingTable {
  constructor(hint, { diagnosis = false } = {}) {
    this.rows = new Map();
    this.diagnoses = diagnosis ? new Map() : null;
    this.body = h("tbody");
    this.table = h("table", { id: "exiting-table", hidden: true },
      h("thead", {}, h("tr", {}, h("th", {}, "Address"), h("th", { class: "num" }, "Userspace exits/s"),
        h("th", { class: "num" }, "Writes/s"), h("th", { class: "num" }, "In-kernel"),
        diagnosis ? h("th", {}, "Diagnosis") : null)), this.body);
    this.empty = emptyState("No doorbell exits to userspace",
      "Every write this guest made lately stayed in the kernel (an ioeventfd or in-kernel device took it).");
    /** The table's heading, hint, table and empty state, for the page to place. */
    this.parts = [h("h2", {}, "Hot doorbells that exit to userspace"), h("p", { class: "hint" }, hint),
      h("div", { class: "table-wrap" }, this.table), this.empty];
  }

  show(observed) {
    const hot = observed.filter((o) => o.userspace_hz > 0).sort((a, b) => b.userspace_hz - a.userspace_hz).slice(0, ROWS);
    const keep = new Set(hot.map((o) => addrKey(o.space, o.addr, o.len)));
    for (const [key, tr] of this.rows) if (!keep.has(key)) (tr.remove(), this.rows.delete(key));
    for (const o of hot) {
      const key = addrKey(o.space, o.addr, o.len);
      if (!this.rows.has(key)) {
        this.rows.set(key, h("tr", { dataset: { key } }, h("td", { class: "mono" }, addrText(o.space, o.addr, o.len)),
          h("td", { class: "num userspace" }), h("td", { class: "num writes" }), h("td", { class: "num share" }),
          this.diagnoses ? h("td", { class: "diagnosis" }) : null));
      }
      const tr = this.rows.get(key);
      if (this.diagnoses) tr.querySelector(".diagnosis").textContent = this.diagnoses.get(key) ?? "";
      tr.querySelector(".userspace").textContent = rate(o.userspace_hz);
      tr.querySelector(".writes").textContent = rate(o.writes_hz);
      tr.querySelector(".share").textContent = share(o.in_kernel_share);
      this.body.append(tr); // re-appending keeps the busiest first
    }
    this.table.hidden = hot.length === 0;
    this.empty.hidden = hot.length > 0;
  }

  /** Keeps each address's diagnosis from `/exits` rows and writes it into the rows shown. */
  diagnose(rows) {
    this.diagnoses = new Map(rows.filter((r) => r.diagnosis)
      .map((r) => [addrKey(r.space, r.addr, r.len), r.diagnosis.text]));
    for (const [key, tr] of this.rows) tr.querySelector(".diagnosis").textContent = this.diagnoses.get(key) ?? "";
  }
}

/** "3 address(es) written: 1.6k/s, 81.3% in-kernel": the line above the split chart. */
export function splitNote(observed) {
  if (!observed.length) return "No writes in the last tick.";
  const writes = observed.reduce((s, o) => s + o.writes_hz, 0);
  const inKernel = observed.reduce((s, o) => s + o.in_kernel_hz, 0);
  return `${observed.length} address(es) written: ${rate(writes)}, ${share(writes ? inKernel / writes : null)} in-kernel`;
}
