// The Live page's Hot doorbells table: the busiest addresses the guest writes with no ioeventfd,
// each with a button that opens the register dialog prefilled. Rows are updated in place, at most
// once a second, so a button stays under the pointer.

import { api } from "./api.js";
import { addrKey, addrText, emptyState, h, rate } from "./format.js";
import { openRegisterDialog } from "./regform.js";

const ROWS = 10;
const keyOf = (e) => addrKey(e.space, e.addr, e.len);

export class HotDoorbells {
  /** `regs()` gives the VM's registrations (the form's collision check); `onRegistered` follows one. */
  constructor(ctx, regs, onRegistered) {
    Object.assign(this, { ctx, regs, onRegistered, shownAt: 0 });
    this.rows = new Map(); // addrKey -> <tr>
    this.body = h("tbody");
    this.empty = emptyState("No hot doorbells", "Nothing is exiting to userspace. Edit the workload to ring a doorbell.");
    this.table = h("table", { id: "hot-table", hidden: true },
      h("thead", {}, h("tr", {}, h("th", {}, "Address"), h("th", { class: "num" }, "Exits/s"),
        h("th", { class: "num" }, "Exits (tick)"), h("th", { class: "write" }, ""))),
      this.body);
    this.section = h("section", { class: "card", id: "hot-doorbells" }, h("h2", {}, "Hot doorbells"),
      h("p", { class: "hint" }, "The busiest addresses the guest writes with no ioeventfd: each write is a userspace exit."),
      h("div", { class: "table-wrap" }, this.table), this.empty);
  }

  /** Until the first tick arrives, the last few seconds of exits fill the table. */
  prefill() {
    api.get(`/api/vms/${this.ctx.vmId}/exits?since=-10s`)
      .then((exits) => !this.rows.size && this.render(exits))
      .catch(() => {});
  }

  /** One tick's exits at time `t`; a steady table (1 Hz) is easier to read and click. */
  tick(t, exits) {
    if (t - this.shownAt < 1000 && this.rows.size) return;
    this.shownAt = t;
    this.render(exits);
  }

  render(exits) {
    const hot = exits.filter((e) => !e.registered && e.rate_hz > 0)
      .sort((a, b) => b.rate_hz - a.rate_hz).slice(0, ROWS);
    const keep = new Set(hot.map(keyOf));
    for (const [key, tr] of this.rows) if (!keep.has(key)) (tr.remove(), this.rows.delete(key));
    for (const e of hot) {
      const tr = this.rows.get(keyOf(e)) ?? this.newRow(e);
      tr.querySelector(".rate").textContent = rate(e.rate_hz);
      tr.querySelector(".exits").textContent = e.exits;
      this.body.append(tr); // re-appending keeps the busiest first
    }
    this.empty.hidden = hot.length > 0;
    this.table.hidden = hot.length === 0;
  }

  newRow({ space, addr, len }) {
    const where = addrText(space, addr, len);
    const button = h("button", { type: "button", class: "primary", "aria-label": `Register ioeventfd for ${where}`,
      onclick: () => openRegisterDialog(this.ctx, { space, addr, len }, this.regs, this.onRegistered) },
    "Register ioeventfd");
    const tr = h("tr", { dataset: { key: addrKey(space, addr, len) } }, h("td", { class: "mono" }, where),
      h("td", { class: "num rate" }), h("td", { class: "num exits" }), h("td", { class: "write" }, button));
    this.rows.set(addrKey(space, addr, len), tr);
    return tr;
  }
}
