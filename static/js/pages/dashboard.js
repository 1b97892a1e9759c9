// One saved dashboard at /d/{slug}: its panels over a shared range (a zoom or a picked range goes
// in the URL), export, and for editors edit (dashedit.js, drawn live from the draft) and delete.

import { api, download } from "../api.js";
import { DashEditor } from "../dashedit.js";
import { DashView } from "../dashview.js";
import { demoCard } from "../demo.js";
import { emptyState, h } from "../format.js";
import { go, redirect, routeUrl } from "../nav.js";
import { isLive, rangeFromParams, rangeSelect } from "../timerange.js";

export const title = "Dashboard";

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  const path = `/api/dashboards/${encodeURIComponent(ctx.slug)}`;
  let dash = null;
  let range = null;
  let draft = null; // the panels being edited, drawn instead of the saved ones
  const heading = h("h1", {}, "Dashboard");
  const tools = h("div", { class: "row dash-tools" });
  const editSlot = h("div");
  const view = new DashView(ctx, fetchData, setRange);
  const demo = ctx.slug === "overview" ? demoCard(ctx) : null;
  if (ctx.vmId === null) root.append(emptyState("No VM yet", "Start a worker (iosignal run, or iosignal worker): its VM shows up here."));
  root.append(heading, tools, demo?.card ?? "", editSlot, view.status, view.element);

  function fetchData(r) {
    const q = new URLSearchParams({ since: r.since });
    if (r.until) q.set("until", r.until);
    if (!draft) return api.get(`${path}/data?${q}`);
    if (!draft.panels.length) return Promise.resolve({ since: 0, until: 0, step_s: 0, panels: [] });
    return api.post("/api/panels/data", { since: r.since, until: r.until, panels: draft.panels }).then((res) => res.data);
  }

  /** A picked range or a zoom (null: back to the dashboard's own range), kept in the URL. */
  function setRange(next) {
    range = next ?? { ...dash.range };
    ctx.setParams({ since: next?.since ?? null, until: next?.until ?? null });
    renderTools();
    view.show(range, dash.refresh_s);
  }

  function renderTools() {
    const remove = async () => {
      if (!window.confirm(`Delete dashboard "${dash.name}"? Links to /d/${dash.slug} will stop working.`)) return;
      try {
        await api.del(path);
        ctx.toast(`Deleted "${dash.name}".`);
        go(routeUrl("dashboards"));
      } catch (err) {
        ctx.toast(`Delete: ${err.message}`, "error");
      }
    };
    tools.replaceChildren(h("label", { class: "inline" }, "Range", rangeSelect(range, setRange, { id: "dash-range" })),
      isLive(range) ? "" : h("button", { type: "button", onclick: () => setRange(null) }, "Back to live"),
      h("button", { type: "button", onclick: () => download(`${path}?download=1`, `${dash.slug}.json`)
        .catch((err) => ctx.toast(err.message, "error")) }, "Export JSON"),
      h("button", { type: "button", class: "write", id: "dash-edit", disabled: Boolean(draft), onclick: edit }, "Edit"),
      h("button", { type: "button", class: "write danger", onclick: remove }, "Delete"));
  }

  function edit() {
    draft = { panels: dash.panels };
    const editor = new DashEditor(ctx, dash, {
      onDraft(panels) {
        draft = { panels };
        view.specs = panels;
        view.show(range, null);
      },
      onDone(saved) {
        draft = null;
        editSlot.replaceChildren();
        if (saved && saved.slug !== dash.slug) return redirect(routeUrl("dashboard", {}, saved.slug));
        if (saved) [dash, range] = [saved, { ...saved.range }]; // its new range, not a zoom of the old
        ctx.setParams({ edit: null, ...(saved ? { since: null, until: null } : {}) });
        show();
      },
    });
    editSlot.replaceChildren(editor.element);
    renderTools();
  }

  function show(early = null) {
    heading.replaceChildren(dash.name, h("span", { class: "muted slug" }, ` /d/${dash.slug}`));
    document.title = `${dash.name} · iosignal`;
    view.specs = dash.panels;
    renderTools();
    view.show(range, dash.refresh_s, early);
  }

  async function load() {
    // The data is asked for with the dashboard itself: without a range in the URL, the API
    // answers for the dashboard's own, so the first paint waits for one round trip, not two.
    const urlRange = rangeFromParams(ctx.params, {}).since ? rangeFromParams(ctx.params, {}) : null;
    const early = urlRange ? fetchData(urlRange) : api.get(`${path}/data`);
    early.catch(() => {}); // a missing dashboard is said once, below
    try {
      dash = await api.get(path);
    } catch (err) {
      heading.textContent = "Dashboard";
      root.append(emptyState(err.status === 404 ? `No dashboard at /d/${ctx.slug}` : "Could not load the dashboard",
        err.status === 404 ? "It was deleted, renamed, or never existed. The Dashboards page lists them all." : err.message));
      return;
    }
    range = urlRange ?? { ...dash.range };
    show(early);
    if (ctx.params.get("edit") && ctx.canWrite) edit();
  }
  load();
  return () => {
    view.stop();
    demo?.stop();
  };
}
