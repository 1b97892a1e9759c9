// Host view: every host, every VM on it (owned by an iosignal worker or observed by
// `iosignal observe`), each with pid and command, state, writes/s, the share of its writes that
// stayed in the kernel and its busiest doorbells. GET /api/hosts every two seconds; the host,
// kind and window shown live in the URL (#/hosts?host=a&kind=observed&since=-1m).

import { api } from "../api.js";
import { addrText, emptyState, h, rate, share } from "../format.js";
import { routeUrl } from "../nav.js";

export const title = "Hosts";

const REFRESH_MS = 2000;
const KINDS = { "": "owned and observed", owned: "owned", observed: "observed" };
// "" is the default window, -10s
const WINDOWS = { "": "last 10 s", "-1m": "last minute", "-5m": "last 5 minutes", "-1h": "last hour" };

function who(vm) {
  const comm = vm.comm || (vm.kind === "owned" ? "iosignal worker" : "?");
  return vm.pid ? `${comm} · pid ${vm.pid}` : comm;
}

function stateText(vm) {
  if (vm.ended_at) return `ended ${new Date(vm.ended_at).toLocaleTimeString()}`;
  return vm.alive ? vm.state : `${vm.state} (no heartbeat)`;
}

/** One doorbell of the busiest list: address, writes/s, in-kernel share (or exits/s alone). */
function doorbell(row) {
  const where = addrText(row.space, row.addr, row.len);
  const figures = row.writes_hz === null || row.writes_hz === undefined
    ? `${rate(row.rate_hz)} exits`
    : `${rate(row.writes_hz)} · ${share(row.in_kernel_share)} in-kernel`;
  return h("li", { dataset: { key: `${row.space}:${row.addr}:${row.len}` } },
    h("span", { class: "mono" }, where), " ", h("span", { class: "muted" }, figures));
}

/** How many of its doorbells have a diagnosis, and the first one's (see /exits). */
function diagnosisCell(vm) {
  const top = vm.top_diagnosis;
  if (!top) return h("td", { class: "diagnosis muted" }, "–");
  const more = vm.diagnoses > 1 ? ` (+${vm.diagnoses - 1} more)` : "";
  return h("td", { class: "diagnosis" }, h("span", { class: "mono" }, addrText(top.space, top.addr, top.len)),
    " ", top.diagnosis.text, h("span", { class: "muted" }, more));
}

function vmRow(vm) {
  const quiet = vm.observed ? "nothing written" : "not observed";
  return h("tr", { dataset: { vmId: vm.id, kind: vm.kind } },
    h("td", {}, h("a", { href: routeUrl("live", { vm: vm.id }), title: vm.cmdline || vm.name }, vm.name)),
    h("td", {}, h("span", { class: `badge kind-${vm.kind}` }, vm.kind)),
    h("td", { class: "mono who" }, who(vm)),
    h("td", { class: `state ${vm.alive ? "active" : "removed"}` }, stateText(vm)),
    h("td", { class: "num writes" }, vm.writes_hz === null ? "–" : rate(vm.writes_hz)),
    h("td", { class: "num exits" }, rate(vm.userspace_hz ?? vm.exits_hz)),
    h("td", { class: "num share" }, share(vm.in_kernel_share)),
    h("td", {}, vm.busiest.length ? h("ul", { class: "busiest" }, vm.busiest.map(doorbell))
      : h("span", { class: "muted" }, quiet)),
    diagnosisCell(vm));
}

function hostCard(host, vms) {
  const kinds = ["owned", "observed"].map((k) => `${vms.filter((v) => v.kind === k).length} ${k}`).join(", ");
  return h("section", { class: "card host", dataset: { host } },
    h("div", { class: "row" }, h("h2", {}, host || "(no host name)"), h("span", { class: "muted" }, kinds)),
    h("div", { class: "table-wrap" }, h("table", { class: "host-vms" },
      h("thead", {}, h("tr", {}, h("th", {}, "VM"), h("th", {}, "Kind"), h("th", {}, "Process"),
        h("th", {}, "State"), h("th", { class: "num" }, "Writes/s"), h("th", { class: "num" }, "Userspace exits/s"),
        h("th", { class: "num" }, "In-kernel"), h("th", {}, "Busiest doorbells"), h("th", {}, "Diagnosis"))),
      h("tbody", {}, vms.map(vmRow)))));
}

/** A <select> over `options` ({value: text}) kept in the URL as `param`. */
function picker(ctx, param, options, label, onChange) {
  const chosen = ctx.params.get(param) ?? "";
  const select = h("select", { "aria-label": label, id: `hosts-${param}`, onchange: () => {
    ctx.setParams({ [param]: select.value || null });
    onChange();
  } }, Object.entries(options).map(([v, t]) => h("option", { value: v, selected: v === chosen }, t)));
  return select;
}

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  let hosts = [];
  const since = () => windowSelect.value || "-10s";
  const list = h("div", { id: "host-list" });
  // ctx.params is the URL at mount; later choices live in the selects (and the URL, for links).
  // The host list comes with the data, so the wanted host is kept apart until it is there.
  let wantedHost = ctx.params.get("host") ?? "";
  const hostSelect = picker(ctx, "host", { "": "every host" }, "Host", () => {
    wantedHost = hostSelect.value;
    render();
  });
  const kindSelect = picker(ctx, "kind", KINDS, "Kind", () => render());
  const windowSelect = picker(ctx, "since", WINDOWS, "Window", () => load());
  const updated = h("span", { class: "muted", id: "hosts-updated" });
  root.append(h("h1", {}, "Hosts"),
    h("section", { class: "card" }, h("div", { class: "row" },
      h("label", { class: "inline" }, "Host", hostSelect), h("label", { class: "inline" }, "Kind", kindSelect),
      h("label", { class: "inline" }, "Rates over the", windowSelect), h("span", { class: "spacer" }), updated),
    h("p", { class: "hint" }, "Every VM on each host: the ones iosignal's workers own and every other KVM VM ",
      h("code", {}, "iosignal observe"), " watches (QEMU, Firecracker, any VMM), read-only. In-kernel is the share ",
      "of guest writes an ioeventfd or in-kernel device took without a userspace exit.")),
    list);

  function render() {
    const kind = kindSelect.value;
    hostSelect.replaceChildren(h("option", { value: "" }, "every host"),
      ...hosts.map((x) => h("option", { value: x.host, selected: x.host === wantedHost }, x.host)));
    const shown = hosts.filter((x) => !wantedHost || x.host === wantedHost)
      .map((x) => [x.host, x.vms.filter((v) => !kind || v.kind === kind)])
      .filter(([, vms]) => vms.length);
    list.replaceChildren(...(shown.length ? shown.map(([host, vms]) => hostCard(host, vms))
      : [emptyState("No VM here yet", "Start a worker (iosignal run) for a VM of its own, or run " +
        "iosignal observe as root to see every KVM VM on the host.")]));
  }

  let timer = null;
  let alive = true;
  async function load() {
    clearTimeout(timer);
    try {
      hosts = await api.get(`/api/hosts?since=${encodeURIComponent(since())}`);
      if (!alive) return;
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
      render();
    } catch (err) {
      if (alive) list.replaceChildren(emptyState("Could not load the hosts", err.message));
    }
    if (alive) timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
