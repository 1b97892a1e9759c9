// Choosing series for a chart from the API's own lists: registrations (signals/s), addresses
// (exits/s and the observed metrics: hot exits, the workload's doorbells, registered addresses)
// and benchmark paths per host. A picker is a VM select plus a select whose choice is added.

import { ALL_STATES_QUERY, api } from "./api.js";
import { addrText, h, hex, regName } from "./format.js";

/** What a panel can chart, and which kind of series each metric takes. */
export const METRICS = {
  signals: { label: "signals/s of registrations", kind: "reg" },
  exits: { label: "userspace exits/s of addresses", kind: "addr" },
  writes: { label: "writes/s of addresses (observed VMs)", kind: "addr" },
  in_kernel_share: { label: "in-kernel share of addresses (observed VMs)", kind: "addr" },
  bench_iops: { label: "benchmark writes/s of paths", kind: "path" },
  bench_rtt: { label: "benchmark rtt µs of paths", kind: "path" },
};

/** A stable text for a series ref: its colour, its URL form and its identity in a list. */
export function refKey(ref) {
  if (ref.ioeventfd_id != null) return `r${ref.ioeventfd_id}`;
  if (ref.path != null) return `p.${ref.path}${ref.host ? `.${ref.host}` : ""}`;
  return `a${ref.vm_id}.${ref.space}.${hex(ref.addr)}.${ref.len}`;
}

/** A ref without the null fields a stored panel carries. */
export function cleanRef(ref) {
  return Object.fromEntries(Object.entries(ref).filter(([, v]) => v !== null && v !== undefined));
}

/** The ref a refKey() names, or null. */
export function parseRefKey(key) {
  let m = key.match(/^r(\d+)$/);
  if (m) return { ioeventfd_id: Number(m[1]) };
  m = key.match(/^a(\d+)\.(pio|mmio)\.(0x[0-9a-f]+)\.(\d)$/);
  if (m) return { vm_id: Number(m[1]), space: m[2], addr: m[3], len: Number(m[4]) };
  m = key.match(/^p\.([\w-]+)(?:\.(.+))?$/);
  return m ? (m[2] ? { path: m[1], host: m[2] } : { path: m[1] }) : null;
}

async function addresses(vmId) {
  const [hot, wl, regs] = await Promise.all([
    api.get(`/api/vms/${vmId}/exits?since=-1h`).catch(() => []),
    api.get(`/api/vms/${vmId}/workload`).catch(() => ({ doorbells: [] })),
    api.get(`/api/vms/${vmId}/ioeventfds`).catch(() => []),
  ]);
  const seen = new Map();
  for (const a of [...hot, ...wl.doorbells, ...regs]) {
    const ref = { vm_id: vmId, space: a.space, addr: hex(a.addr), len: Number(a.len) };
    if (!seen.has(refKey(ref))) seen.set(refKey(ref), { ref, name: addrText(a.space, a.addr, a.len) });
  }
  return [...seen.values()];
}

async function paths(ctx) {
  const runs = await api.get("/api/benchmarks").catch(() => []);
  const hosts = [...new Set(runs.map((r) => r.host).filter(Boolean))];
  return Object.keys(ctx.rules?.bench_paths ?? {}).flatMap((path) => [
    { ref: { path }, name: `${path} (any host)` },
    ...hosts.map((host) => ({ ref: { path, host }, name: `${path} on ${host}` })),
  ]);
}

/** The series of `kind` ("reg", "addr", "path") one can pick on `vmId`: [{ref, name}]. */
export async function candidates(ctx, kind, vmId) {
  if (kind === "path") return paths(ctx);
  if (kind === "addr") return addresses(vmId);
  const regs = await api.get(`/api/vms/${vmId}/ioeventfds?${ALL_STATES_QUERY}`);
  regs.sort((a, b) => b.id - a.id);
  return regs.map((r) => ({ ref: { ioeventfd_id: r.id }, name: `${regName(r)}${r.state === "active" ? "" : ` [${r.state}]`}` }));
}

/**
 * A VM select and a series select: picking a series calls `onPick({metric, ref, name})` and the
 * select returns to its prompt. `metrics` are the metrics offered (one group each).
 */
export class SeriesPicker {
  constructor(ctx, metrics, onPick, ids = {}) {
    Object.assign(this, { ctx, metrics, onPick });
    this.vm = h("select", { "aria-label": "VM", id: ids.vm, onchange: () => this.load() },
      ctx.vms.map((v) => h("option", { value: v.id, selected: v.id === ctx.vmId }, v.name)));
    this.series = h("select", { "aria-label": "Add a series", id: ids.series, onchange: () => this.pick() });
    this.element = h("span", { class: "picker row" }, h("label", {}, "VM", this.vm), h("label", {}, "Add a series", this.series));
    this.options = new Map();
  }

  /** Offers other metrics from now on (the panel editor's metric select). */
  setMetrics(metrics) {
    this.metrics = metrics;
    return this.load();
  }

  async load() {
    const vmId = Number(this.vm.value);
    const mine = (this.loads = (this.loads || 0) + 1);
    this.vm.closest("label").hidden = this.metrics.every((m) => METRICS[m].kind === "path");
    const groups = await Promise.all(this.metrics.map(async (metric) => {
      const list = await candidates(this.ctx, METRICS[metric].kind, vmId).catch(() => []);
      return { metric, list };
    }));
    if (mine !== this.loads) return; // another VM or metric was chosen meanwhile
    this.options.clear();
    this.series.replaceChildren(h("option", { value: "", selected: true }, "choose…"),
      ...groups.map(({ metric, list }) => h("optgroup", { label: METRICS[metric].label },
        list.length ? list.map((c) => {
          const value = `${metric}:${refKey(c.ref)}`;
          this.options.set(value, { metric, ...c });
          return h("option", { value }, c.name);
        }) : h("option", { disabled: true }, "none on this VM"))));
  }

  pick() {
    const chosen = this.options.get(this.series.value);
    this.series.value = "";
    if (chosen) this.onPick(chosen);
  }
}

/** Chips of the chosen series, each with a remove button: `onRemove(index)`. */
export function seriesChips(chosen, onRemove) {
  return h("ul", { class: "chips", "aria-label": "Chosen series" }, chosen.map((c, i) => h("li", { class: "chip" },
    h("span", {}, c.name), h("button", { type: "button", class: "link", "aria-label": `Remove ${c.name}`,
      onclick: () => onRemove(i) }, "×"))));
}
