// Dashboards: the saved, shared dashboards (GET /api/dashboards), each opened at /d/{slug};
// editors create one, import one from a JSON file, export or delete one.

import { api, download } from "../api.js";
import { emptyState, h, when } from "../format.js";
import { go, routeUrl } from "../nav.js";

export const title = "Dashboards";

/** POSTs a dashboard; on a slug clash asks for another slug once. Resolves the stored one. */
export async function createDashboard(ctx, body) {
  try {
    return (await api.post("/api/dashboards", body)).data;
  } catch (err) {
    if (err.status !== 409) throw err;
    const slug = window.prompt(`${err.message}. Save it under which slug?`, `${body.slug || "dashboard"}-2`);
    if (!slug) throw err;
    return (await api.post("/api/dashboards", { ...body, slug })).data;
  }
}

/** Reads a picked JSON file (an export) and imports it; resolves the stored dashboard. */
async function importFile(ctx, file) {
  let body;
  try {
    body = JSON.parse(await file.text());
  } catch (err) {
    throw new Error(`${file.name} is not JSON: ${err.message}`);
  }
  return createDashboard(ctx, body);
}

function toolbar(ctx, reload) {
  const name = h("input", { name: "name", placeholder: "e.g. Storage hosts", maxlength: 120, required: true });
  const create = h("form", { class: "inline", id: "new-dashboard", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const dash = await createDashboard(ctx, { name: name.value.trim(), panels: [] });
      go(routeUrl("dashboard", { edit: 1 }, dash.slug));
    } catch (err) {
      ctx.toast(`New dashboard: ${err.message}`, "error");
    }
  } }, h("label", {}, "Name", name), h("button", { type: "submit", class: "primary" }, "New dashboard"));
  const file = h("input", { type: "file", accept: "application/json,.json", id: "import-file", onchange: async () => {
    try {
      const dash = await importFile(ctx, file.files[0]);
      ctx.toast(`Imported "${dash.name}".`);
      go(routeUrl("dashboard", {}, dash.slug));
    } catch (err) {
      ctx.toast(`Import: ${err.message}`, "error");
      file.value = "";
      reload();
    }
  } });
  return h("section", { class: "card write row" }, create, h("label", {}, "Import JSON (an export)", file));
}

function row(ctx, d, reload) {
  const remove = async () => {
    if (!window.confirm(`Delete dashboard "${d.name}"? Links to /d/${d.slug} will stop working.`)) return;
    try {
      await api.del(`/api/dashboards/${encodeURIComponent(d.slug)}`);
      ctx.toast(`Deleted "${d.name}".`);
    } catch (err) {
      ctx.toast(`Delete: ${err.message}`, "error");
    }
    reload();
  };
  const exportIt = () => download(`/api/dashboards/${encodeURIComponent(d.slug)}?download=1`, `${d.slug}.json`)
    .catch((err) => ctx.toast(err.message, "error"));
  return h("tr", { dataset: { slug: d.slug } },
    h("td", {}, h("a", { href: routeUrl("dashboard", {}, d.slug) }, d.name)), h("td", { class: "mono" }, d.slug),
    h("td", { class: "num" }, d.panels), h("td", {}, when(d.updated_at)),
    h("td", {}, h("button", { type: "button", onclick: exportIt }, "Export JSON"), " ",
      h("button", { type: "button", class: "danger write", onclick: remove }, "Delete")));
}

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  const body = h("tbody");
  const empty = h("div");
  const table = h("table", { id: "dashboards-table" }, h("thead", {}, h("tr", {},
    ["Name", "Slug"].map((t) => h("th", {}, t)), h("th", { class: "num" }, "Panels"), h("th", {}, "Updated"), h("th", {}, ""))), body);
  async function reload() {
    try {
      const list = await api.get("/api/dashboards");
      body.replaceChildren(...list.map((d) => row(ctx, d, reload)));
      table.hidden = !list.length;
      empty.replaceChildren(list.length ? "" : emptyState("No dashboards yet",
        ctx.canWrite ? "Create one above, or import an exported JSON file." : "An editor can create one."));
    } catch (err) {
      table.hidden = true;
      empty.replaceChildren(emptyState("Could not load dashboards", err.message));
    }
  }
  root.append(h("h1", {}, "Dashboards"), toolbar(ctx, reload),
    h("section", { class: "card" }, h("div", { class: "table-wrap" }, table), empty));
  reload();
  return null;
}
