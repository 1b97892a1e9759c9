// An observed VM's registrations, read-only: every KVM_IOEVENTFD / KVM_IRQFD call the observer
// saw its VMM make (GET /api/vms/{id}/ioeventfds, source "observed"). Calls made before the
// host's observer started are unknown, and the page says since when it knows.

import { ALL_STATES_QUERY, api } from "./api.js";
import { emptyState, h, hex, when } from "./format.js";

const REFRESH_MS = 5000;

function where(reg) {
  if (reg.kind === "irqfd") return `gsi ${reg.gsi}`;
  return `${reg.space} ${hex(reg.addr)} len ${reg.len}`;
}

function stateCell(reg) {
  const text = reg.state === "failed" ? `refused: ${reg.errno}` : reg.state;
  return h("td", {}, h("span", { class: `state ${reg.state}` }, text));
}

function row(reg) {
  return h("tr", { dataset: { id: reg.id } }, h("td", {}, reg.kind), h("td", { class: "mono" }, where(reg)),
    h("td", { class: "mono" }, reg.kind === "irqfd" ? "" : reg.datamatch === null ? "any" : hex(reg.datamatch)),
    h("td", { class: "num" }, reg.eventfd), stateCell(reg),
    h("td", {}, reg.since ? when(reg.since) : "before the observer started"),
    h("td", {}, reg.deassigned_at ? when(reg.deassigned_at) : ""));
}

/** Mounts the read-only list into `root`; returns its cleanup. */
export function mountObservedRegs(root, vm) {
  const known = h("p", { class: "hint", id: "observed-known-since" }, "Loading…");
  const tbody = h("tbody");
  const table = h("table", { id: "observed-reg-table", hidden: true },
    h("thead", {}, h("tr", {}, ["Kind", "Address", "Datamatch"].map((t) => h("th", {}, t)),
      h("th", { class: "num" }, "eventfd"), ["State", "Assigned", "Deassigned"].map((t) => h("th", {}, t)))),
    tbody);
  const empty = h("div");
  root.append(h("section", { class: "card", id: "observed-registrations" },
    h("h2", {}, "What its VMM registered (observed, read-only)"), known,
    h("div", { class: "table-wrap" }, table), empty));

  async function load() {
    try {
      const regs = await api.get(`/api/vms/${vm.id}/ioeventfds?${ALL_STATES_QUERY}`);
      const since = regs[0]?.known_since;
      known.textContent = since
        ? `Known since ${new Date(since).toLocaleString()} (the observer's start): calls made before it are unknown.`
        : "Known since the observer started: calls made before it are unknown.";
      tbody.replaceChildren(...regs.reverse().map(row));
      table.hidden = regs.length === 0;
      empty.replaceChildren(regs.length ? "" : emptyState("No registration seen",
        "The observer has seen this VMM make no KVM_IOEVENTFD or KVM_IRQFD call since it started."));
    } catch (err) {
      empty.replaceChildren(emptyState("Could not load its registrations", err.message));
    }
  }

  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
