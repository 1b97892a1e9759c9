// One dashboard panel: its title, a note of what is missing, and its time chart; a panel with
// nothing to draw says why (the API's `missing`) instead of showing a blank box.

import { showAnnotations } from "./annotations.js";
import { emptyState, h } from "./format.js";
import { drawTimeChart, missingText } from "./timechart.js";
import { onUserZoom } from "./timerange.js";

export class PanelCard {
  /** A card for panel number `index`; `onZoom(range|null)` gets the user's zooms. */
  constructor(index, onZoom) {
    this.onZoom = onZoom;
    this.heading = h("h2", {});
    this.note = h("p", { class: "hint panel-note" });
    this.chart = h("div", { class: "chart panel-chart", id: `panel-${index}` });
    this.legend = h("ul", { class: "legend-html", "aria-label": "Series" });
    this.body = h("div", {}, this.chart, this.legend);
    this.element = h("section", { class: "card panel", dataset: { panel: index } }, this.heading, this.note, this.body);
    this.drawn = false;
  }

  /** Draws `panel` (one panel of the data response) over `span` with `annotations`. */
  async render(panel, span, annotations) {
    this.heading.textContent = panel.title || panel.metric;
    const missing = missingText(panel.series);
    const points = panel.series.some((s) => s.t.length);
    this.note.textContent = missing.join(" · ");
    this.series = panel.series;
    if (!points) return this.empty(panel, missing);
    if (!this.drawn) this.body.replaceChildren(this.chart, this.legend);
    await drawTimeChart(this.chart, panel.series, span, { yTitle: panel.unit, unit: panel.unit, annotations, legend: this.legend });
    if (!this.drawn) onUserZoom(this.chart, this.onZoom);
    this.drawn = true;
  }

  empty(panel, missing) {
    this.purge();
    this.note.textContent = ""; // the empty box says it
    const why = missing.length ? missing.join("; ")
      : panel.series.length ? "No samples in this range." : "No series: nothing of this metric exists yet.";
    this.body.replaceChildren(emptyState("Nothing to draw", why));
  }

  /** Redraws the markers only. */
  annotate(list) {
    if (this.drawn) showAnnotations(this.chart, list);
  }

  purge() {
    if (this.drawn) Plotly.purge(this.chart);
    this.drawn = false;
  }
}
