// The demo workload (GET/POST/DELETE /api/demo): a few labelled doorbells on one VM so a fresh
// install's charts move in the first minute. Started and removed only by a click, never by itself.

import { api } from "./api.js";
import { h } from "./format.js";

let state = { active: false, vm_id: null };
const listeners = new Set();

async function load() {
  try {
    state = await api.get("/api/demo");
  } catch {
    state = { active: false, vm_id: null }; // an older API: no demo to offer
  }
  listeners.forEach((fn) => fn(state));
  return state;
}

async function change(ctx, method) {
  try {
    if (method === "POST") await api.post("/api/demo", { vm_id: ctx.vmId });
    else await api.del("/api/demo");
    ctx.toast(method === "POST" ? "Demo workload started: its doorbells ring within seconds."
      : "Demo workload removed.");
  } catch (err) {
    ctx.toast(`Demo: ${err.message}`, "error");
  }
  await load();
}

/** The header badge saying a demo runs, with its one-click removal; on every page. */
export class DemoBadge {
  constructor(ctx) {
    this.ctx = ctx;
    this.el = document.getElementById("demo-badge");
    listeners.add((s) => this.render(s));
  }

  /** Asks the API again (the health poll calls this). */
  refresh() {
    return load();
  }

  render(s) {
    this.el.hidden = !s.active;
    if (!s.active) return;
    this.el.replaceChildren(`Demo workload on ${this.ctx.vmName(s.vm_id)}`,
      h("button", { type: "button", class: "link write", onclick: () => change(this.ctx, "DELETE") }, "Remove demo"));
  }
}

/**
 * The first-run card: what the demo does, and a Start (or Remove) button for editors. Returns
 * {card, stop}; the card follows the demo's state while it is shown.
 */
export function demoCard(ctx) {
  const body = h("div", { class: "row" });
  const card = h("section", { class: "card demo-card", id: "demo-card" }, body);
  const render = (s) => {
    const vm = ctx.vmName(s.active ? s.vm_id : ctx.vmId);
    body.replaceChildren(s.active
      ? h("p", {}, h("strong", {}, "Demo workload running"), ` on ${vm}: three doorbells ring and one is registered ` +
        "(label \"demo: registered doorbell\"). Remove it when you are done.")
      : h("p", {}, h("strong", {}, "Nothing moving yet?"), ` Start the demo workload on ${vm}: the guest rings three ` +
        "doorbells (pio 0x6000, pio 0x6004, mmio 0xd0000000) and one is registered, so these charts move within a minute."),
    s.active
      ? h("button", { type: "button", class: "write danger", onclick: () => change(ctx, "DELETE") }, "Remove demo")
      : h("button", { type: "button", class: "write primary", disabled: ctx.vmId === null,
        onclick: () => change(ctx, "POST") }, "Start demo workload"));
  };
  listeners.add(render);
  render(state);
  load();
  return { card, stop: () => listeners.delete(render) };
}
