// The workload editor: the doorbells the guest rings (space, address, width, value, rate). Saved
// with PUT .../workload; the worker rewrites the guest's table between passes.

import { api } from "../api.js";
import { emptyState, h, hex, observedState } from "../format.js";
import { checkWorkload } from "../validate.js";

export const title = "Workload";

const NEW_DOORBELL = { space: "pio", addr: "0x6000", len: 2, value: "0x1", rate_hz: 1000 };

function rowEditor(bell, rules, onRemove, readOnly) {
  const input = (name, value, cls = "narrow mono") =>
    h("input", { name, value, class: cls, disabled: readOnly, "aria-label": name });
  const select = (name, options, value) => h("select", { name, disabled: readOnly, "aria-label": name },
    options.map((o) => h("option", { value: o, selected: String(o) === String(value) }, String(o))));
  const lens = [...new Set(Object.values(rules.write_lens).flat())].sort((a, b) => a - b);
  return h("tr", {},
    h("td", {}, select("space", rules.spaces, bell.space)),
    h("td", {}, input("addr", hex(bell.addr), "addr mono")),
    h("td", {}, select("len", lens, bell.len)),
    h("td", {}, input("value", hex(bell.value ?? 0))),
    h("td", {}, input("rate_hz", bell.rate_hz, "narrow")),
    h("td", {}, h("input", { type: "checkbox", name: "answered", checked: Boolean(bell.answered),
      disabled: readOnly, "aria-label": "answered" })),
    h("td", { class: "write" }, h("button", { type: "button", class: "danger", onclick: onRemove }, "Remove")));
}

function readRow(tr) {
  const get = (name) => tr.querySelector(`[name=${name}]`).value;
  return {
    space: get("space"), addr: get("addr"), len: get("len"), value: get("value"), rate_hz: get("rate_hz"),
    answered: tr.querySelector("[name=answered]").checked,
  };
}

function limitsText(rules) {
  const n = (v) => v.toLocaleString("en-US");
  return `Limits: at most ${n(rules.max_doorbells)} doorbells, ${n(rules.max_doorbell_rate_hz)} Hz each, ` +
    `${n(rules.max_total_rate_hz)} Hz in total (every exit costs the host a few µs of a core); ` +
    `an answered doorbell at most ${n(rules.max_answered_rate_hz)} Hz (each write waits for its interrupt).`;
}

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  root.append(h("h1", {}, "Workload"));
  if (ctx.vmId === null) {
    root.append(emptyState("No VM yet", "The workload is what a VM's guest rings; start a worker first."));
    return null;
  }
  if (ctx.vm()?.kind === "observed") return void root.append(observedState(ctx.vm(), "changes workloads"));
  const { rules } = ctx;
  // MMIO doorbells must lie outside this VM's RAM (the worker reports its size).
  const memSize = ctx.vm().mem_size ?? rules.default_mem_size;
  const tbody = h("tbody");
  const errors = h("ul", { class: "errors", role: "alert" });
  const empty = emptyState("The guest rings nothing", "Add a doorbell: the guest writes it at the rate you set.");
  const version = h("span", { class: "muted" });
  const table = h("table", { id: "workload-table" },
    h("thead", {}, h("tr", {}, ["Space", "Address", "Len", "Value", "Rate (Hz)", "Answered"].map((t) => h("th", {}, t)),
      h("th", { class: "write" }, ""))), tbody);
  // Editing waits for the saved rows: loading them replaces the table.
  const save = h("button", { type: "submit", class: "primary write", disabled: true }, "Save workload");
  const add = h("button", { type: "button", class: "write", disabled: true, onclick: () => addRow(NEW_DOORBELL) },
    "Add doorbell");
  const form = h("form", { novalidate: true, onsubmit: onSave }, h("div", { class: "table-wrap" }, table), empty,
    h("div", { class: "row", style: "margin-top:0.8rem" }, add, save, version), errors);
  root.append(h("section", { class: "card" }, h("h2", {}, "Doorbells the guest rings"),
    h("p", { class: "hint" }, "Each doorbell is written at its rate. A registered address signals its " +
      "ioeventfd; any other address exits to userspace (and shows on the Live page as a hot doorbell). " +
      "An answered doorbell has a device of its own that answers each write with an interrupt the " +
      "guest waits for; the Live page shows its kicks/s and interrupts/s."),
    h("p", { class: "hint" }, limitsText(rules)), form));

  function sync() {
    const n = tbody.children.length;
    table.hidden = n === 0;
    empty.hidden = n > 0;
  }
  function rowOf(bell) {
    const tr = rowEditor(bell, rules, () => (tr.remove(), sync()), !ctx.canWrite);
    return tr;
  }
  function addRow(bell) {
    tbody.append(rowOf(bell));
    sync();
  }

  let recheck = null;
  /** Shows the newest version's rows (unless only its state is wanted) and whether it is applied. */
  async function load({ rows = true, tries = 0 } = {}) {
    clearTimeout(recheck);
    try {
      const wl = await api.get(`/api/vms/${ctx.vmId}/workload`);
      if (rows) tbody.replaceChildren(...wl.doorbells.map(rowOf));
      version.textContent = wl.version ? `version ${wl.version}${wl.applied ? ", applied by the worker" : ", not yet applied"}` : "";
      // The worker applies a new version within a poll: look again (rows left as edited) until it says so.
      if (wl.version && !wl.applied && tries < 20) recheck = setTimeout(() => load({ rows: false, tries: tries + 1 }), 500);
      add.disabled = save.disabled = false;
      sync();
    } catch (err) {
      errors.replaceChildren(h("li", {}, `Could not load the workload: ${err.message}`));
    }
  }

  async function onSave(ev) {
    ev.preventDefault();
    const { errors: problems, doorbells } = checkWorkload([...tbody.children].map(readRow), rules, memSize);
    errors.replaceChildren(...problems.map((e) => h("li", {}, e)));
    if (problems.length) return;
    save.disabled = true;
    try {
      await api.put(`/api/vms/${ctx.vmId}/workload`, { doorbells });
      ctx.toast(`Workload saved: ${doorbells.length} doorbell(s).`);
      load();
    } catch (err) {
      errors.replaceChildren(h("li", {}, err.message)); // the API's rule, e.g. a rate limit
    } finally {
      save.disabled = false;
    }
  }
  sync();
  load();
  return () => clearTimeout(recheck);
}
