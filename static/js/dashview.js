// The panels of a dashboard over one shared range: one data request for all of them, a zoom on
// any panel re-ranges all, and while the range ends at now they follow the stream (dashlive.js)
// and reload every refresh_s.

import { fetchAnnotations } from "./annotations.js";
import { DashLive, MAX_STREAM_STEP_S } from "./dashlive.js";
import { h } from "./format.js";
import { PanelCard } from "./panelcard.js";
import { isLive, spanOf } from "./timerange.js";

export class DashView {
  /**
   * `fetchData(range)` resolves the data response for the panels; `onZoom(range|null)` hears a
   * zoom on any panel (the page puts it in the URL and calls setRange).
   */
  constructor(ctx, fetchData, onZoom) {
    Object.assign(this, { ctx, fetchData, onZoom, cards: [], annotations: [], seq: 0 });
    this.element = h("div", { class: "panels", id: "panels" });
    this.status = h("p", { class: "hint", id: "dash-status" });
    this.live = new DashLive(ctx, this);
  }

  /**
   * Draws the panels for `range`, refreshing every `refreshS` seconds while it ends at now;
   * `early` is the data already asked for (the page asks before it knows the dashboard's range).
   */
  async show(range, refreshS, early = null) {
    this.range = range;
    clearInterval(this.timer);
    const mine = ++this.seq;
    let data;
    let annotations;
    try {
      // The markers are asked for alongside the data: one round trip before the first paint.
      const marks = fetchAnnotations(...spanOf(range)).catch(() => this.annotations);
      [data, annotations] = await Promise.all([early ?? this.fetchData(range), marks]);
    } catch (err) {
      if (mine === this.seq) this.status.textContent = `Could not load the panels: ${err.message}`;
      return;
    }
    if (mine !== this.seq) return; // a newer range or draft is on its way
    if (!data.panels.length) {
      this.cards.splice(0).forEach((c) => c.purge());
      this.element.replaceChildren();
      this.status.textContent = `No panels yet.${this.ctx.canWrite ? " Edit to add one." : ""}`;
      return;
    }
    this.span = isLive(range) ? spanOf(range) : [data.since, data.until];
    this.annotations = annotations;
    await this.draw(data);
    this.status.textContent = `${data.panels.length} panel(s), one point per ${data.step_s} s` +
      (isLive(range) ? ", live" : ", zoomed: double-click a panel to go back");
    this.live.follow(isLive(range) ? data : null);
    // Coarse steps get no stream points: they reload once a step unless refresh_s says otherwise.
    const every = refreshS || (data.step_s > MAX_STREAM_STEP_S ? Math.max(data.step_s, 10) : null);
    if (isLive(range) && every) this.timer = setInterval(() => this.show(this.range, refreshS), every * 1000);
  }

  async draw(data) {
    while (this.cards.length > data.panels.length) this.cards.pop().purge();
    while (this.cards.length < data.panels.length) this.cards.push(new PanelCard(this.cards.length, this.onZoom));
    this.element.replaceChildren(...this.cards.map((c) => c.element));
    // One paint for all: the panels are drawn in parallel, not one after another.
    await Promise.all(data.panels.map((p, i) => this.cards[i].render(p, this.span, this.annotations)));
  }

  /** Moves the shared window to end at `now`; returns it (the live panels redraw with it). */
  slideTo(now) {
    const [start, end] = this.span;
    this.span = [start + (now - end), now];
    return this.span;
  }

  stop() {
    this.seq++;
    clearInterval(this.timer);
    this.live.follow(null);
    this.cards.forEach((c) => c.purge());
  }
}
