// How an owned VM's own counters and the host observer's compare, per doorbell, over the last
// ten seconds (or thirty ticks, if longer) of stream ticks: the observer's in-kernel writes
// against the worker's eventfd signals (its registrations' signals and its answered doorbells'
// kicks), and the observer's userspace exits against the worker's exit counter. Counting the
// same writes, they must agree exactly.
//
// They read their counters at different instants, each on its own tick: the stream gives an owned
// VM's tick the observer rows taken since the tick before. Summed over a window, those offsets
// cancel except at its two edges, so the window's counts may be apart by the writes of one tick
// at an edge: the most either side counted in the window's first or last tick. Anything more is
// a real difference. The figures shown and the verdict are the same counts of the same ticks,
// and "agrees" needs that edge to be a small part of them (EDGE_SHARE): over a tick or two the
// edge is the whole window and would excuse any difference, so a short window says neither.

import { addrText, hex } from "./format.js";

const WINDOW_MS = 10_000;
const WINDOW_TICKS = 30; // slow ticks widen the window, so one tick's edge stays a small part
const EDGE_SHARE = 0.1; // "agrees" only where one tick's edge is at most this part of the counts
const keyOf = (space, addr) => `${space}:${hex(addr)}`; // a doorbell: any write width
const zero = () => ({ signals: 0, exits: 0, inKernel: 0, userspace: 0, registered: false });

/** One tick's counts per doorbell, and its observer rows as they came. */
function tickCounts(tick) {
  const doorbells = new Map();
  const labels = new Map();
  const at = (space, addr, len) => {
    const key = keyOf(space, addr);
    if (!doorbells.has(key)) doorbells.set(key, zero());
    if (len || !labels.has(key)) labels.set(key, addrText(space, addr, len));
    return doorbells.get(key);
  };
  const eventfd = (space, addr, len, signals) => {
    const d = at(space, addr, len);
    d.registered = true;
    d.signals += signals;
  };
  for (const r of tick.registrations ?? []) eventfd(r.space, r.addr, r.len, r.signals);
  for (const a of tick.answers ?? []) eventfd(a.space, a.addr, a.len, a.kicks); // each kick is one write
  for (const e of tick.exits ?? []) at(e.space, e.addr, e.len).exits += e.exits;
  for (const o of tick.observed ?? []) {
    const d = at(o.space, o.addr, o.len);
    d.inKernel += o.in_kernel;
    d.userspace += o.userspace;
  }
  return { t: Date.parse(tick.t), seconds: tick.interval_s, doorbells, labels, observed: tick.observed ?? [] };
}

/** The ticks of the window (and the one before them), oldest first. */
export class TickWindow {
  constructor() {
    this.ticks = [];
    this.spanMs = WINDOW_MS;
  }

  push(tick) {
    const counted = tickCounts(tick);
    this.ticks.push(counted);
    this.spanMs = Math.max(WINDOW_MS, WINDOW_TICKS * 1000 * (tick.interval_s || 0));
    while (this.ticks.length > 2 && counted.t - this.ticks[1].t >= this.spanMs) this.ticks.shift();
  }

  /** Forget every tick (the observer (re)started: its first rows count from its start). */
  clear() {
    this.ticks = [];
  }

  /** The observer's figures per address over the newest `ms` of ticks, most written first. */
  recentObserved(ms) {
    const newest = this.ticks.at(-1);
    if (!newest) return [];
    const recent = this.ticks.filter((t) => newest.t - t.t < ms);
    const seconds = recent.reduce((s, t) => s + t.seconds, 0);
    const sums = new Map();
    for (const o of recent.flatMap((t) => t.observed)) {
      const key = `${o.space}:${hex(o.addr)}:${o.len}`;
      const sum = sums.get(key) ?? { space: o.space, addr: o.addr, len: o.len, writes: 0, userspace: 0 };
      sum.writes += o.writes;
      sum.userspace += o.userspace;
      sums.set(key, sum);
    }
    const per = seconds > 0 ? 1 / seconds : 0;
    return [...sums.values()].map((s) => {
      const inKernel = s.writes - s.userspace;
      return { ...s, in_kernel: inKernel, writes_hz: s.writes * per, userspace_hz: s.userspace * per,
        in_kernel_hz: inKernel * per, in_kernel_share: s.writes ? inKernel / s.writes : null };
    }).sort((a, b) => b.writes - a.writes);
  }

  /**
   * Per doorbell the worker counts: {key, label, seconds, inKernel, userspace}, each comparison
   * {observer, worker, slack, agrees, differs} in counts over the window's ticks after the first
   * (inKernel null where the worker has no eventfd on the doorbell); neither agrees nor differs
   * while too few writes are in to tell. Busiest first; none until two ticks are in.
   */
  agreement() {
    if (this.ticks.length < 2) return [];
    const inside = this.ticks.slice(1); // the first tick only starts the window: its counts are before it
    const [first, last] = [inside[0], inside.at(-1)];
    const seconds = inside.reduce((s, t) => s + t.seconds, 0);
    const sums = new Map();
    const labels = new Map();
    for (const tick of inside) {
      for (const [key, d] of tick.doorbells) {
        const sum = sums.get(key) ?? zero();
        for (const k of ["signals", "exits", "inKernel", "userspace"]) sum[k] += d[k];
        sum.registered ||= d.registered;
        sums.set(key, sum);
        labels.set(key, tick.labels.get(key));
      }
    }
    // the most either side counted in the window's first or last tick
    const edge = (key, a, b) => Math.max(...[first, last].flatMap((t) => {
      const d = t.doorbells.get(key);
      return [d?.[a] ?? 0, d?.[b] ?? 0];
    }));
    const compare = (key, observer, worker, a, b) => {
      const slack = edge(key, a, b);
      const within = Math.abs(observer - worker) <= slack;
      const told = slack <= EDGE_SHARE * Math.max(observer, worker);
      return { observer, worker, slack, agrees: within && told, differs: !within };
    };
    const rows = [];
    for (const [key, s] of sums) {
      const counted = s.registered || s.exits > 0 || s.userspace > 0; // the worker counts it
      if (!counted || s.signals + s.exits + s.inKernel + s.userspace === 0) continue;
      rows.push({
        key, label: labels.get(key), seconds,
        inKernel: s.registered ? compare(key, s.inKernel, s.signals, "inKernel", "signals") : null,
        userspace: compare(key, s.userspace, s.exits, "userspace", "exits"),
      });
    }
    const busy = (r) => Math.max(r.inKernel?.worker ?? 0, r.inKernel?.observer ?? 0,
      r.userspace.worker, r.userspace.observer);
    return rows.sort((a, b) => busy(b) - busy(a));
  }
}
