// Host view: the fleet's VMs (owned by an iosignal worker or observed by `iosignal observe`), a
// page at a time, each with pid and command, state, writes/s, the share of its writes that
// stayed in the kernel and its busiest doorbells. GET /api/hosts (one page: the browser never
// holds every VM) every two seconds; host, kind, window, search, sort, order and page live in
// the URL (#/hosts?host=a&kind=observed&since=-1m&q=qemu&sort=writes&order=desc&page=2).

import { api } from "../api.js";
import { addrText, emptyState, h, rate, share } from "../format.js";
import { routeUrl } from "../nav.js";

export const title = "Hosts";

const REFRESH_MS = 2000;
const KINDS = { "": "owned and observed", owned: "owned", observed: "observed" };
// "" is the default window, -10s
const WINDOWS = { "": "last 10 s", "-1m": "last minute", "-5m": "last 5 minutes", "-1h": "last hour" };
// "" is the default sort, by host (owned first); the others are busiest first unless reversed
const SORTS = { "": "host", writes: "writes/s", userspace: "userspace exits/s", share: "in-kernel share" };
const ORDERS = { "": "default order", desc: "highest first", asc: "lowest first" };
const PER_PAGE = 50;
const SEARCH_WAIT_MS = 300;

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

function vmRow(vm, withHost) {
  const quiet = vm.observed ? "nothing written" : "not observed";
  return h("tr", { dataset: { vmId: vm.id, kind: vm.kind } },
    withHost ? h("td", { class: "host-name" }, vm.host) : null,
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

function vmTable(vms, withHost) {
  return h("div", { class: "table-wrap" }, h("table", { class: "host-vms" },
    h("thead", {}, h("tr", {}, withHost ? h("th", {}, "Host") : null, h("th", {}, "VM"), h("th", {}, "Kind"),
      h("th", {}, "Process"), h("th", {}, "State"), h("th", { class: "num" }, "Writes/s"),
      h("th", { class: "num" }, "Userspace exits/s"), h("th", { class: "num" }, "In-kernel"),
      h("th", {}, "Busiest doorbells"), h("th", {}, "Diagnosis"))),
    h("tbody", {}, vms.map((vm) => vmRow(vm, withHost)))));
}

/** A host's card: its VMs on this page, and its counts over every page. */
function hostCard(summary, vms) {
  const kinds = summary ? `${summary.owned} owned, ${summary.observed} observed` : "";
  return h("section", { class: "card host", dataset: { host: vms[0].host } },
    h("div", { class: "row" }, h("h2", {}, vms[0].host || "(no host name)"), h("span", { class: "muted" }, kinds)),
    vmTable(vms, false));
}

/** By host: a card per host on the page; by a figure: one table in that order. */
function pageCards(body) {
  const summaries = Object.fromEntries(body.hosts.map((x) => [x.host, x]));
  if (body.sort !== "host") {
    return [h("section", { class: "card host-sorted" }, h("h2", {}, `By ${SORTS[body.sort]}, ${body.order === "asc" ? "lowest" : "highest"} first`),
      vmTable(body.vms, true))];
  }
  const runs = [];
  for (const vm of body.vms) {
    const last = runs[runs.length - 1];
    if (last && last[0].host === vm.host) last.push(vm);
    else runs.push([vm]);
  }
  return runs.map((vms) => hostCard(summaries[vms[0].host], vms));
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
  let body = null;
  let pageNo = Math.max(1, Number(ctx.params.get("page")) || 1);
  const list = h("div", { id: "host-list" });
  // ctx.params is the URL at mount; later choices live in the controls (and the URL, for links).
  // The host list comes with the data, so the wanted host is kept apart until it is there.
  let wantedHost = ctx.params.get("host") ?? "";
  const firstPage = () => {
    pageNo = 1;
    ctx.setParams({ page: null });
  };
  const hostSelect = picker(ctx, "host", { "": "every host" }, "Host", () => {
    wantedHost = hostSelect.value;
    firstPage();
    load();
  });
  const kindSelect = picker(ctx, "kind", KINDS, "Kind", () => { firstPage(); load(); });
  const windowSelect = picker(ctx, "since", WINDOWS, "Window", () => load());
  const sortSelect = picker(ctx, "sort", SORTS, "Sort by", () => { firstPage(); load(); });
  const orderSelect = picker(ctx, "order", ORDERS, "Order", () => { firstPage(); load(); });
  let searchTimer = null;
  const search = h("input", { type: "search", id: "hosts-q", "aria-label": "Search",
    placeholder: "host, command, pid or address (0x6000)", value: ctx.params.get("q") ?? "",
    oninput: () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        ctx.setParams({ q: search.value.trim() || null });
        firstPage();
        load();
      }, SEARCH_WAIT_MS);
    } });
  const go = (delta) => {
    pageNo = Math.min(Math.max(1, pageNo + delta), body ? body.pages : 1);
    ctx.setParams({ page: pageNo > 1 ? String(pageNo) : null });
    load();
  };
  const prev = h("button", { type: "button", class: "secondary", id: "hosts-prev", onclick: () => go(-1) }, "‹ Previous");
  const next = h("button", { type: "button", class: "secondary", id: "hosts-next", onclick: () => go(1) }, "Next ›");
  const position = h("span", { class: "muted", id: "hosts-page" });
  const updated = h("span", { class: "muted", id: "hosts-updated" });
  root.append(h("h1", {}, "Hosts"),
    h("section", { class: "card" }, h("div", { class: "row" },
      h("label", { class: "inline" }, "Host", hostSelect), h("label", { class: "inline" }, "Kind", kindSelect),
      h("label", { class: "inline" }, "Rates over the", windowSelect), h("span", { class: "spacer" }), updated),
    h("div", { class: "row" }, h("label", { class: "inline" }, "Search", search),
      h("label", { class: "inline" }, "Sort by", sortSelect), orderSelect,
      h("span", { class: "spacer" }), prev, position, next),
    h("p", { class: "hint" }, "Every VM on each host: the ones iosignal's workers own and every other KVM VM ",
      h("code", {}, "iosignal observe"), " watches (QEMU, Firecracker, any VMM), read-only. In-kernel is the share ",
      "of guest writes an ioeventfd or in-kernel device took without a userspace exit. ",
      `${PER_PAGE} VMs a page.`)),
    list);

  function render() {
    hostSelect.replaceChildren(h("option", { value: "" }, "every host"),
      ...body.hosts.map((x) => h("option", { value: x.host, selected: x.host === wantedHost },
        `${x.host} (${x.owned + x.observed})`)));
    const first = body.total ? (body.page - 1) * body.per_page + 1 : 0;
    const last = Math.min(body.total, body.page * body.per_page);
    position.textContent = `${first}–${last} of ${body.total} VMs · page ${body.page} of ${body.pages}`;
    prev.disabled = body.page <= 1;
    next.disabled = body.page >= body.pages;
    list.replaceChildren(...(body.vms.length ? pageCards(body)
      : [emptyState(search.value.trim() ? "No VM matches" : "No VM here yet", search.value.trim()
        ? "Nothing on any host matches the search: host, command, pid or a doorbell's address."
        : "Start a worker (iosignal run) for a VM of its own, or run iosignal observe as root to see every KVM VM on the host.")]));
  }

  function query() {
    const params = { since: windowSelect.value || "-10s", page: pageNo, per_page: PER_PAGE };
    if (wantedHost) params.host = wantedHost;
    if (kindSelect.value) params.kind = kindSelect.value;
    if (search.value.trim()) params.q = search.value.trim();
    if (sortSelect.value) params.sort = sortSelect.value;
    if (orderSelect.value) params.order = orderSelect.value;
    return new URLSearchParams(params).toString();
  }

  let timer = null;
  let alive = true;
  let asked = 0;
  async function load() {
    clearTimeout(timer);
    const mine = ++asked; // a slower answer to an older question must not overwrite a newer one
    try {
      const got = await api.get(`/api/hosts?${query()}`);
      if (!alive || mine !== asked) return;
      body = got;
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
      render();
    } catch (err) {
      if (alive && mine === asked) list.replaceChildren(emptyState("Could not load the hosts", err.message));
    }
    if (alive && mine === asked) timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return () => {
    alive = false;
    clearTimeout(timer);
    clearTimeout(searchTimer);
  };
}
