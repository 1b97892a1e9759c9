// Registrations of one VM: state (pending/active/failed with errno), the form, delete with
// confirmation. Refreshed on every `registration` event of the stream.

import { ALL_STATES_QUERY, api } from "../api.js";
import { count, emptyState, h, hex, observedState, when } from "../format.js";
import { mountObservedRegs } from "../observedregs.js";
import { registrationForm } from "../regform.js";

export const title = "Registrations";

const FILTERS = ["current", "all", "pending", "active", "failed", "removing", "removed"];

function stateCell(reg) {
  const text = reg.state === "failed" && reg.errno ? `failed: ${reg.errno}` : reg.state;
  return h("td", {}, h("span", { class: `state ${reg.state}`, title: reg.error || "" }, text),
    reg.state === "failed" && reg.error ? h("div", { class: "muted" }, reg.error) : null);
}

function rulesHint({ pio_max: pioMax, write_lens: lens }) {
  const list = (l) => `${l.slice(0, -1).join(", ")} or ${l.at(-1)}`;
  return `PIO ports up to ${hex(pioMax)} with len ${list(lens.pio)}; MMIO any address with len ` +
    `${list(lens.mmio)}. len 0 matches a write of any width (no datamatch). Blank datamatch matches any value.`;
}

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  root.append(h("h1", {}, "Registrations"));
  if (ctx.vmId === null) {
    root.append(emptyState("No VM yet", "Registrations belong to a VM; start a worker first."));
    return null;
  }
  if (ctx.vm()?.kind === "observed") {
    root.append(observedState(ctx.vm(), "registers ioeventfds"));
    return mountObservedRegs(root, ctx.vm());
  }
  let regs = [];
  let filter = FILTERS.includes(ctx.params.get("show")) ? ctx.params.get("show") : "current";
  const tbody = h("tbody");
  const empty = h("div");
  const table = h("table", { id: "reg-table" },
    h("thead", {}, h("tr", {}, ["#", "Label", "Space", "Address", "Len", "Datamatch", "State"]
      .map((t) => h("th", {}, t)), h("th", { class: "num" }, "Signals"), h("th", {}, "Created"),
      h("th", { class: "write" }, ""))),
    tbody);
  const filterSelect = h("select", { "aria-label": "Show", onchange: (ev) => {
    filter = ev.target.value;
    ctx.setParams({ show: filter === "current" ? null : filter });
    render();
  } }, FILTERS.map((f) => h("option", { value: f, selected: f === filter }, f === "current" ? "pending, active, failed, removing" : f)));

  async function remove(reg) {
    const what = reg.label ? `"${reg.label}" (${reg.space} ${hex(reg.addr)})` : `#${reg.id}`;
    if (!window.confirm(`Delete registration ${what}? Writes to it will exit to userspace again.`)) return;
    try {
      const { status } = await api.del(`/api/vms/${ctx.vmId}/ioeventfds/${reg.id}`);
      ctx.toast(status === 202 ? `Deletion of ${what} pending: the worker is away.` : `Deleted ${what}.`);
    } catch (err) {
      ctx.toast(`Delete failed: ${err.message}`, "error");
    }
    load();
  }

  function render() {
    const shown = regs.filter((r) => filter === "all" || r.state === filter ||
      (filter === "current" && r.state !== "removed"));
    tbody.replaceChildren(...shown.map((r) => h("tr", { dataset: { id: r.id } },
      h("td", {}, r.id), h("td", {}, r.label || ""), h("td", {}, r.space),
      h("td", { class: "mono" }, hex(r.addr)), h("td", {}, r.len),
      h("td", { class: "mono" }, r.datamatch === null ? "any" : hex(r.datamatch)),
      stateCell(r), h("td", { class: "num" }, count(r.signals_total)), h("td", {}, when(r.created_at)),
      h("td", { class: "write" }, ["removing", "removed"].includes(r.state) ? null :
        h("button", { type: "button", class: "danger", "aria-label": `Delete registration ${r.id}`,
          onclick: () => remove(r) }, "Delete")))));
    table.hidden = shown.length === 0;
    empty.replaceChildren(shown.length ? "" : emptyState("No registrations here",
      regs.length ? "Change the filter to see the others." :
        "Register an ioeventfd above, or from the Hot doorbells table on the Live page."));
  }

  async function load() {
    try {
      regs = await api.get(`/api/vms/${ctx.vmId}/ioeventfds?${ALL_STATES_QUERY}`);
      regs.sort((a, b) => b.id - a.id);
      render();
    } catch (err) {
      empty.replaceChildren(emptyState("Could not load registrations", err.message));
    }
  }

  root.append(
    h("section", { class: "card write" }, h("h2", {}, "New registration"),
      h("p", { class: "hint" }, rulesHint(ctx.rules)),
      registrationForm(ctx, { existing: () => regs, onDone: load })),
    h("section", { class: "card" }, h("div", { class: "row" }, h("h2", {}, "Registered"),
      h("label", { class: "inline" }, "Show", filterSelect)),
    h("div", { class: "table-wrap" }, table), empty),
  );
  load();
  const off = ctx.stream.on("registration", load);
  const timer = setInterval(load, 5000); // signal totals move without registration events
  return () => {
    off();
    clearInterval(timer);
  };
}
