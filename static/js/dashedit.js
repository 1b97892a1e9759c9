// Editing a dashboard (editors only): name, slug, saved range and refresh, and the panels (add,
// edit, reorder, remove). Every change of the panels is drawn at once from the draft; Save PUTs it.

import { api } from "./api.js";
import { h } from "./format.js";
import { openPanelDialog } from "./paneleditor.js";
import { cleanRef, METRICS } from "./seriespicker.js";
import { RANGES } from "./timerange.js";

const REFRESH = [["", "off"], ["5", "5 s"], ["10", "10 s"], ["30", "30 s"], ["60", "1 min"], ["300", "5 min"]];

export class DashEditor {
  /** `onDraft(panels)` redraws the page from the draft; `onDone(saved|null)` ends editing. */
  constructor(ctx, dash, { onDraft, onDone }) {
    const panels = dash.panels.map((p) => ({ ...p, series: p.series.map(cleanRef) }));
    Object.assign(this, { ctx, dash, onDraft, onDone, panels });
    const option = (value, text, current) => h("option", { value, selected: String(current ?? "") === value }, text);
    this.name = h("input", { name: "name", value: dash.name, maxlength: 120, required: true });
    this.slug = h("input", { name: "slug", value: dash.slug, maxlength: 64, class: "mono", pattern: "[a-z0-9][a-z0-9\\-]*" });
    const since = RANGES.some(([v]) => v === dash.range.since) ? dash.range.since : "-1h";
    this.since = h("select", { name: "since" }, RANGES.map(([v, t]) => option(v, t, since)));
    this.refresh = h("select", { name: "refresh_s" }, REFRESH.map(([v, t]) => option(v, t, dash.refresh_s)));
    this.list = h("tbody");
    this.errors = h("ul", { class: "errors", role: "alert" });
    this.element = h("section", { class: "card write", id: "dash-editor" }, h("h2", {}, "Edit dashboard"),
      h("div", { class: "row" }, h("label", {}, "Name", this.name), h("label", {}, "Slug", this.slug),
        h("label", {}, "Range", this.since), h("label", {}, "Refresh", this.refresh)),
      h("table", { id: "panel-list" }, h("thead", {}, h("tr", {},
        ["Panel", "Metric", "Series", "Aggregate", ""].map((t) => h("th", {}, t)))), this.list),
      this.errors,
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => this.edit(null) }, "Add panel"),
        h("span", { class: "spacer" }),
        h("button", { type: "button", onclick: () => onDone(null) }, "Cancel"),
        h("button", { type: "button", class: "primary", onclick: () => this.save() }, "Save dashboard")));
    this.render();
  }

  render() {
    const move = (i, by) => {
      const [p] = this.panels.splice(i, 1);
      this.panels.splice(i + by, 0, p);
      this.changed();
    };
    const button = (text, label, onclick, disabled = false) =>
      h("button", { type: "button", class: "small", "aria-label": label, onclick, disabled }, text);
    this.list.replaceChildren(...this.panels.map((p, i) => h("tr", { dataset: { panel: i } },
      h("td", {}, p.title || h("span", { class: "muted" }, "(no title)")), h("td", {}, METRICS[p.metric]?.label ?? p.metric),
      h("td", {}, p.series.length ? String(p.series.length) : "all"), h("td", {}, p.aggregate),
      h("td", {}, button("Edit", `Edit panel ${i + 1}`, () => this.edit(i)), " ",
        button("↑", `Move panel ${i + 1} up`, () => move(i, -1), i === 0), " ",
        button("↓", `Move panel ${i + 1} down`, () => move(i, 1), i === this.panels.length - 1), " ",
        button("Remove", `Remove panel ${i + 1}`, () => (this.panels.splice(i, 1), this.changed()))))));
  }

  changed() {
    this.render();
    this.onDraft(this.panels);
  }

  edit(i) {
    openPanelDialog(this.ctx, i === null ? null : this.panels[i], (panel) => {
      if (i === null) this.panels.push(panel);
      else this.panels[i] = panel;
      this.changed();
    });
  }

  body() {
    return { name: this.name.value.trim(), slug: this.slug.value.trim() || null,
      range: { since: this.since.value, until: null },
      refresh_s: this.refresh.value ? Number(this.refresh.value) : null, panels: this.panels };
  }

  async save() {
    try {
      const saved = (await api.put(`/api/dashboards/${encodeURIComponent(this.dash.slug)}`, this.body())).data;
      this.ctx.toast(`Saved "${saved.name}".`);
      this.onDone(saved);
    } catch (err) {
      this.errors.replaceChildren(h("li", {}, err.message));
    }
  }
}
