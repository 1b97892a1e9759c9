// The dashboard shell: VM picker, routing (nav.js: every view is a link), the shared event
// streams, and the header's buttons. Each page module exports {title, mount(root, ctx) -> cleanup}
// and reads its state from ctx.params, writing changes back with ctx.setParams.

import { api, onAuthProblem } from "./api.js";
import { DemoBadge } from "./demo.js";
import { h } from "./format.js";
import { copyLink, currentRoute, redirect, reroute, routeUrl, setParams, startRouting } from "./nav.js";
import { openNoteDialog } from "./notes.js";
import { applyAuth, onAuthError, setBadge, streamStatus, toast, wireTokenDialog } from "./shell.js";
import { Stream } from "./stream.js";
import * as dashboards from "./pages/dashboards.js";
import * as dashboard from "./pages/dashboard.js";
import * as live from "./pages/live.js";
import * as registrations from "./pages/registrations.js";
import * as history from "./pages/history.js";
import * as workload from "./pages/workload.js";
import * as benchmarks from "./pages/benchmarks.js";
import * as hosts from "./pages/hosts.js";

const PAGES = { dashboards, dashboard, hosts, live, registrations, history, workload, benchmarks };
const $ = (sel) => document.querySelector(sel);

const ctx = {
  vms: [],
  vmId: null,
  rules: null, // GET /api/rules: every rule's numbers and the benchmark paths
  role: null,
  stream: null,
  params: new URLSearchParams(), // the mounted page's state, from the URL
  slug: null,
  extraStreams: new Map(), // vm id -> Stream, for pages that chart several VMs
  get canWrite() {
    return this.role === "editor";
  },
  toast,
  setParams,
  vm() {
    return this.vms.find((v) => v.id === this.vmId) || null;
  },
  vmName(id) {
    return this.vms.find((v) => v.id === id)?.name ?? `vm ${id}`;
  },
  /** The event stream of `vmId`: the shared one, or one opened until the page unmounts. */
  streamFor(vmId) {
    if (vmId === this.vmId) return this.stream;
    if (!this.extraStreams.has(vmId)) this.extraStreams.set(vmId, new Stream(vmId, () => {}));
    return this.extraStreams.get(vmId);
  },
};

let unmount = null;
const demo = new DemoBadge(ctx);

/** Polls /api/health: worker liveness for the badge, and new VMs appearing. */
async function pollHealth() {
  try {
    const health = await api.get("/api/health");
    const vm = health.vms.find((v) => v.id === ctx.vmId);
    if (!vm) setBadge("#worker-badge", "no worker yet", "warn");
    else if (vm.kind === "observed") {
      // another VMM's VM: the observer heartbeats it while its process runs
      setBadge("#worker-badge", vm.alive ? "observed, running" : "observed, not running", vm.alive ? "ok" : "warn");
    } else if (vm.alive) setBadge("#worker-badge", "worker alive", "ok");
    else setBadge("#worker-badge", "worker not alive", "bad");
    const known = new Set(ctx.vms.map((v) => v.id));
    if (health.vms.some((v) => !known.has(v.id))) await loadVms(true);
    await demo.refresh();
  } catch (err) {
    if (err.status !== 401) setBadge("#worker-badge", "API unreachable", "bad");
  }
}

async function loadVms(remount = false) {
  // Rules once (the forms check with the server's rules), VMs every time: asked together.
  [ctx.rules, ctx.vms] = await Promise.all([ctx.rules ?? api.get("/api/rules"), api.get("/api/vms")]);
  const known = (id) => ctx.vms.some((v) => v.id === id);
  const candidates = [Number(currentRoute().params.get("vm")), ctx.vmId, Number(localStorage.getItem("iosignal.vm"))];
  const previous = ctx.vmId;
  // A first visit opens an owned VM (one iosignal can steer) before any observed one.
  const first = ctx.vms.find((v) => v.kind !== "observed") ?? ctx.vms[0];
  ctx.vmId = candidates.find(known) ?? first?.id ?? null;
  $("#vm-select").replaceChildren(
    ...ctx.vms.map((v) => h("option", { value: v.id, selected: v.id === ctx.vmId },
      v.kind === "observed" ? `${v.name} (observed)` : v.name)),
  );
  $("#vm-select").disabled = ctx.vms.length < 2;
  $("#vm-select").closest("label").hidden = ctx.vms.length === 0;
  if (ctx.vmId !== previous || remount) selectVm(ctx.vmId);
}

function selectVm(vmId) {
  ctx.vmId = vmId;
  if (vmId !== null) localStorage.setItem("iosignal.vm", String(vmId));
  $("#vm-select").value = String(vmId);
  if (ctx.stream) ctx.stream.close();
  ctx.stream = vmId === null ? null : new Stream(vmId, streamStatus);
  if (vmId === null) setBadge("#stream-badge", "no VM", "warn");
  if (currentRoute().page) setParams({ vm: vmId });
  reroute();
}

/** A bare "/" opens the Overview dashboard while there is one, else the dashboards list. */
async function home() {
  try {
    const list = await api.get("/api/dashboards");
    if (list.some((d) => d.slug === "overview")) return routeUrl("dashboard", {}, "overview");
    return routeUrl("dashboards");
  } catch {
    return routeUrl("live");
  }
}

function mountPage(route) {
  if (!route.page) return void home().then(redirect);
  const vm = Number(route.params.get("vm"));
  if (vm && vm !== ctx.vmId && ctx.vms.some((v) => v.id === vm)) return void selectVm(vm);
  const page = PAGES[route.page] ? route.page : "live";
  const navPage = page === "dashboard" ? "dashboards" : page;
  document.querySelectorAll("nav a").forEach((a) => {
    a.setAttribute("aria-current", a.dataset.page === navPage ? "page" : "false");
  });
  if (unmount) unmount();
  ctx.extraStreams.forEach((s) => s.close());
  ctx.extraStreams.clear();
  Object.assign(ctx, { params: route.params, slug: route.slug });
  if (ctx.vmId !== null && route.params.get("vm") !== String(ctx.vmId)) setParams({ vm: ctx.vmId });
  const root = $("#page");
  root.replaceChildren();
  document.title = `${PAGES[page].title} · iosignal`;
  unmount = PAGES[page].mount(root, ctx) || null;
}

async function start() {
  if (!(await applyAuth(ctx))) return;
  await loadVms(true);
  await pollHealth();
}

function startOrShow() {
  start().catch((err) => {
    toast(`Could not load: ${err.message}`, "error");
    reroute(); // still show the page, with its own empty state
  });
}

wireTokenDialog(startOrShow);
$("#vm-select").addEventListener("change", (ev) => selectVm(Number(ev.target.value)));
$("#copy-link").addEventListener("click", () => copyLink(toast));
$("#note-button").addEventListener("click", () => openNoteDialog(ctx));
onAuthProblem((err) => onAuthError(ctx, err));
setInterval(pollHealth, 2000);
startRouting(mountPage);
startOrShow();
