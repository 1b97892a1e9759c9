// Keeps a live dashboard moving between reloads: every VM's `rates` ticks (signals/s per
// registration, exits/s per hot address) are kept for the panels that show those series,
// aggregates from the latest value of each of their series, and drawn once a second (one redraw
// per panel, however fast the ticks). Only where the panel's step is a few seconds at most: a
// per-minute line gains nothing from 1 s ticks, it reloads instead.

import { hex } from "./format.js";
import { refKey } from "./seriespicker.js";
import { extendChart } from "./timechart.js";

export const MAX_STREAM_STEP_S = 5;
const MAX_STREAMS = 4; // each stream holds a connection; browsers allow six per server
const FLUSH_MS = 1000;
const AGGREGATE = { sum: (vs) => vs.reduce((a, b) => a + b, 0), max: (vs) => Math.max(...vs) };

/** The values a tick gives, keyed as the panels' series are (refKey). */
function tickValues(vmId, tick) {
  const values = new Map();
  for (const r of tick.registrations) values.set(refKey({ ioeventfd_id: r.id }), r.rate_hz);
  for (const e of tick.exits) values.set(refKey({ vm_id: vmId, space: e.space, addr: hex(e.addr), len: e.len }), e.rate_hz);
  return values;
}

export class DashLive {
  constructor(ctx, view) {
    Object.assign(this, { ctx, view, offs: [], latest: new Map(), pending: [], timer: null });
  }

  /** Follows the stream for the panels of `data` (null: stop following). */
  follow(data) {
    this.offs.forEach((off) => off());
    this.offs = [];
    clearInterval(this.timer);
    this.latest.clear();
    if (!data || data.step_s > MAX_STREAM_STEP_S) return;
    // The saved panels name the series an aggregate is over (none: every series of its metric).
    this.panels = data.panels.map((p, i) => {
      const spec = this.view.specs?.[i] ?? {};
      const aggregate = spec.aggregate && spec.aggregate !== "none" ? spec.aggregate : null;
      return { metric: p.metric, aggregate, over: spec.series?.length ? new Set(spec.series.map(refKey)) : null };
    });
    this.pending = this.panels.map(() => new Map());
    if (!this.panels.some((p) => ["signals", "exits"].includes(p.metric))) return;
    for (const vm of this.ctx.vms.slice(0, MAX_STREAMS)) {
      const stream = this.ctx.streamFor(vm.id);
      if (stream) this.offs.push(stream.on("rates", (tick) => this.onTick(vm.id, tick)));
    }
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
  }

  onTick(vmId, tick) {
    const values = tickValues(vmId, tick);
    values.forEach((v, k) => this.latest.set(k, v));
    const t = new Date(tick.t).getTime();
    this.panels.forEach((panel, i) => {
      const add = panel.aggregate ? this.aggregate(panel) : values;
      add.forEach((v, key) => {
        if (!this.pending[i].has(key)) this.pending[i].set(key, []);
        this.pending[i].get(key).push([t, v]);
      });
    });
  }

  /** Draws what the ticks brought and slides every panel to the window ending now. */
  flush() {
    const span = this.view.slideTo(Date.now());
    this.view.cards.forEach((card, i) => {
      if (card.drawn && this.pending[i]) extendChart(card.chart, this.pending[i], span);
      this.pending[i]?.clear();
    });
  }

  /** {agg key -> sum/max of the latest values of the panel's series}. */
  aggregate(panel) {
    const prefix = panel.metric === "signals" ? "r" : "a";
    const mine = ([k]) => (panel.over ? panel.over.has(k) : k.startsWith(prefix));
    const values = [...this.latest.entries()].filter(mine).map(([, v]) => v);
    if (!values.length) return new Map();
    return new Map([[`agg:${panel.aggregate}`, AGGREGATE[panel.aggregate](values)]]);
  }
}
