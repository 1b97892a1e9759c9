// The dashboard shell: token prompt, VM picker, status badges, hash routing (#/live, ...), and
// the one shared event stream. Each page module exports {title, mount(root, ctx) -> cleanup}.

import { api, getToken, onAuthProblem, setToken, whoami } from "./api.js";
import { h } from "./format.js";
import { Stream } from "./stream.js";
import * as live from "./pages/live.js";
import * as registrations from "./pages/registrations.js";
import * as history from "./pages/history.js";
import * as workload from "./pages/workload.js";
import * as benchmarks from "./pages/benchmarks.js";

const PAGES = { live, registrations, history, workload, benchmarks };
const $ = (sel) => document.querySelector(sel);

const ctx = {
  vms: [],
  vmId: null,
  rules: null, // GET /api/rules: every rule's numbers and the benchmark paths
  role: null,
  stream: null,
  get canWrite() {
    return this.role === "editor";
  },
  toast,
  vm() {
    return this.vms.find((v) => v.id === this.vmId) || null;
  },
};

let unmount = null;

/** Shows a short message at the bottom right; errors stay until clicked. */
function toast(message, kind = "info") {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  el.addEventListener("click", () => el.remove());
  $("#toasts").append(el);
  if (kind !== "error") setTimeout(() => el.remove(), 4000);
}

function setBadge(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.className = `badge ${kind}`;
}

function streamStatus(state) {
  const map = { live: ["stream live", "ok"], connecting: ["connecting…", "warn"] };
  const [text, kind] = map[state] || ["stream reconnecting…", "bad"];
  setBadge("#stream-badge", text, kind);
}

/** Polls /api/health: worker liveness for the badge, and new VMs appearing. */
async function pollHealth() {
  try {
    const health = await api.get("/api/health");
    const vm = health.vms.find((v) => v.id === ctx.vmId);
    if (!vm) setBadge("#worker-badge", "no worker yet", "warn");
    else if (vm.alive) setBadge("#worker-badge", "worker alive", "ok");
    else setBadge("#worker-badge", "worker not alive", "bad");
    const known = new Set(ctx.vms.map((v) => v.id));
    if (health.vms.some((v) => !known.has(v.id))) await loadVms(true);
  } catch (err) {
    if (err.status !== 401) setBadge("#worker-badge", "API unreachable", "bad");
  }
}

async function loadVms(remount = false) {
  ctx.rules ??= await api.get("/api/rules"); // once: the forms check with the server's rules
  ctx.vms = await api.get("/api/vms");
  const select = $("#vm-select");
  const wanted = Number(localStorage.getItem("iosignal.vm")) || ctx.vmId;
  const previous = ctx.vmId;
  ctx.vmId = ctx.vms.some((v) => v.id === wanted) ? wanted : ctx.vms[0]?.id ?? null;
  select.replaceChildren(
    ...ctx.vms.map((v) => h("option", { value: v.id, selected: v.id === ctx.vmId }, v.name)),
  );
  select.disabled = ctx.vms.length < 2;
  select.closest("label").hidden = ctx.vms.length === 0;
  if (ctx.vmId !== previous || remount) selectVm(ctx.vmId);
}

function selectVm(vmId) {
  ctx.vmId = vmId;
  if (vmId !== null) localStorage.setItem("iosignal.vm", String(vmId));
  if (ctx.stream) ctx.stream.close();
  ctx.stream = vmId === null ? null : new Stream(vmId, streamStatus);
  if (vmId === null) setBadge("#stream-badge", "no VM", "warn");
  route();
}

function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const page = PAGES[name] ? name : "live";
  document.querySelectorAll("nav a").forEach((a) => {
    a.setAttribute("aria-current", a.dataset.page === page ? "page" : "false");
  });
  if (unmount) unmount();
  const root = $("#page");
  root.replaceChildren();
  document.title = `${PAGES[page].title} · iosignal`;
  unmount = PAGES[page].mount(root, ctx) || null;
}

function askToken(reason) {
  const dialog = $("#token-dialog");
  $("#token-reason").textContent = reason;
  $("#token-input").value = getToken();
  if (!dialog.open) dialog.showModal();
}

async function applyAuth() {
  const me = await whoami();
  ctx.role = me.role;
  document.body.classList.toggle("can-write", ctx.role === "editor");
  $("#role-badge").textContent = me.tokensRequired ? `token: ${ctx.role || "none"}` : "no tokens";
  $("#role-badge").hidden = !me.tokensRequired;
  if (me.tokensRequired && !ctx.role) {
    askToken(getToken() ? "The stored token was not accepted (unknown or revoked). Paste a valid token."
      : "This server requires an API token. Paste a viewer or editor token.");
    return false;
  }
  return true;
}

async function start() {
  if (!(await applyAuth())) return;
  await loadVms(true);
  await pollHealth();
}

$("#token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  setToken($("#token-input").value.trim());
  $("#token-dialog").close();
  start().catch((err) => {
    toast(err.message, "error");
    route();
  });
});
$("#token-button").addEventListener("click", () => askToken("Change or forget the stored token."));
$("#vm-select").addEventListener("change", (ev) => selectVm(Number(ev.target.value)));
window.addEventListener("hashchange", route);
onAuthProblem((err) => {
  if (err.status === 401) askToken("The server refused the token (401). Paste a valid token.");
  else if (ctx.role === "editor") {
    // A 403 on a write: this token is a viewer's. Hide the write buttons from now on.
    ctx.role = "viewer";
    document.body.classList.remove("can-write");
    toast("This token may only read (viewer): write buttons hidden.", "error");
  }
});

setInterval(pollHealth, 2000);
start().catch((err) => {
  toast(`Could not load: ${err.message}`, "error");
  route(); // still show the page, with its own empty state
});
