// The owned VM's observer card, "As the host's observer sees it": while `iosignal observe` counts
// this VM's writes (the stream's ticks carry them in `observed`), the same split chart and
// exiting-doorbells table as an observed VM's page, and per doorbell the worker counts, whether
// the observer's figures agree with the worker's own counters (agreement.js). An observer that
// watches the VM while it writes nothing is one line saying so (the VM's `observer_age_s`: the
// observer stamps every VM it sees each tick); without an observer it is one line saying how to
// start one, and the rest of the page is as it was.

import { api } from "./api.js";
import { h, hex, rate } from "./format.js";
import { ExitingTable, SplitChart, splitNote } from "./observedparts.js";
import { TickWindow } from "./agreement.js";

const SHOW_EVERY_MS = 1000; // the chart and tables redraw once a second, as on the observed page
const ASK_EVERY_MS = 2000; // how often the card asks whether an observer still watches the VM
const WATCHED_S = 5; // an observer that saw the VM this lately watches it (its writes commit ~1 s late)
const AGREEMENT_ROWS = 24; // as many doorbells as a tick lists of the observer's
const EXITING_HINT = "Each of these writes is a heavy exit to the worker. Register an ioeventfd on the " +
  "address (Hot doorbells, above) and the observer sees its writes stay in the kernel.";
const AGREEMENT_HINT = "The worker and the observer count the same writes and must agree exactly; they " +
  "read their counters at different instants, so the counts may be apart by one tick's writes at the window's " +
  "edges. Any more is shown as the difference. The guest's pass-done port, which ends each pass of the " +
  "workload, exits too but is no doorbell: the worker does not count it.";

const WATCHING = "The host's observer (iosignal observe) counts this VM's writes in the kernel, read-only.";
const IDLE = "The host's observer (iosignal observe) watches this VM and sees no writes from it lately.";

/** "+12.0/s (+1.2%)": how far the observer is from the worker. */
function difference({ observer, worker }, seconds) {
  const sign = observer >= worker ? "+" : "−";
  const pct = worker ? ` (${sign}${(Math.abs(observer - worker) / worker * 100).toFixed(1)}%)` : "";
  return `${sign}${rate(Math.abs(observer - worker) / seconds)}${pct}`;
}

/** The agreement table: one row per doorbell the worker counts, rebuilt each second. */
class AgreementTable {
  constructor() {
    this.body = h("tbody");
    this.table = h("table", { id: "agreement-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Doorbell"),
        ...["In-kernel writes/s (observer)", "Eventfd signals/s (worker)", "Userspace exits/s (observer)",
          "Exit counter/s (worker)"].map((name) => h("th", { class: "num" }, name)),
        h("th", {}, "Agreement"))), this.body);
    this.span = h("span", { id: "agreement-span" });
    this.parts = [h("h2", {}, "Agreement with the worker's own counters"),
      h("p", { class: "hint" }, "Over the last ", this.span, ". ", AGREEMENT_HINT),
      h("div", { class: "table-wrap" }, this.table)];
  }

  /** `rows` from TickWindow.agreement(): each figure is a count of the verdict's over its seconds. */
  show(rows, spanMs) {
    this.span.textContent = `${Math.round(rows.length ? rows[0].seconds : spanMs / 1000)} s`;
    const cell = (c, side, s) => h("td", { class: `num ${side}` }, c ? rate(c[side] / s) : "–");
    this.body.replaceChildren(...rows.slice(0, AGREEMENT_ROWS).map((r) => {
      const sides = [["in-kernel", r.inKernel], ["userspace", r.userspace]].filter(([, c]) => c);
      const off = sides.filter(([, c]) => c.differs);
      const apart = off.map(([name, c]) => `${name} ${difference(c, r.seconds)}`);
      const state = off.length ? "differs" : sides.every(([, c]) => c.agrees) ? "agrees" : "pending";
      const verdict = { differs: `differs: ${apart.join(", ")}`, agrees: "agrees",
        pending: "too few writes yet to tell" }[state];
      const counts = [["in-kernel", r.inKernel], ["userspace", r.userspace]].filter(([, c]) => c)
        .map(([name, c]) => `${name}: observer ${c.observer}, worker ${c.worker} (one tick's edge: ${c.slack})`);
      return h("tr", { dataset: { key: r.key } }, h("td", { class: "mono" }, r.label),
        cell(r.inKernel, "observer", r.seconds), cell(r.inKernel, "worker", r.seconds),
        cell(r.userspace, "observer", r.seconds), cell(r.userspace, "worker", r.seconds),
        h("td", { class: `agreement ${state}`, title: counts.join("; ") }, verdict));
    }));
  }
}

export class ObserverCard {
  /** The card for the page's owned VM; `section` is the element to place on the page. */
  constructor(ctx) {
    const vmId = ctx.vmId;
    // the guest's pass-done port: an exit the worker handles, never counts (GET /api/rules)
    this.controlKey = ctx.rules?.control_port === undefined ? null : `pio:${hex(ctx.rules.control_port)}`;
    Object.assign(this, { shownAt: 0, seenAt: null, mountedAt: Date.now(), quietMs: 3000, watchedAt: null });
    this.window = new TickWindow();
    this.status = h("p", { class: "hint", id: "observer-status" }, "Looking for the host observer's figures…");
    this.body = h("div", { hidden: true });
    this.section = h("section", { class: "card", id: "observer-card" },
      h("h2", {}, "As the host's observer sees it"), this.status, this.body);
    this.built = null;
    this.timer = setInterval(() => this.showState(), 1000);
    let told = false; // one toast for a run of failed asks, not one every two seconds
    this.askVm = () => api.get(`/api/vms/${vmId}`).then((vm) => (told = false, this.watched(vm.observer_age_s)))
      .catch((err) => told || (told = true, ctx.toast(`Observer state: ${err.message}`, "error")));
    this.asking = setInterval(this.askVm, ASK_EVERY_MS);
    this.askVm();
    // The last ten seconds decide at once whether an observer is counting this VM.
    api.get(`/api/vms/${vmId}/exits?since=-10s`)
      .then((rows) => this.prefill(rows.filter((r) => r.writes).sort((a, b) => b.writes_hz - a.writes_hz)))
      .catch((err) => ctx.toast(`Observer figures: ${err.message}`, "error"));
  }

  /** Made on first use: a Plotly chart drawn in a hidden card would have no size. */
  parts() {
    if (this.built) return this.built;
    const splitDiv = h("div", { class: "chart", id: "chart-split" });
    const note = h("p", { class: "hint", id: "split-note" });
    const exiting = new ExitingTable(EXITING_HINT);
    const agreement = new AgreementTable();
    this.body.hidden = false;
    this.body.append(
      h("div", { class: "grid two" }, h("div", {}, note, splitDiv), h("div", { id: "agreement" }, agreement.parts)),
      h("div", { id: "exiting-doorbells" }, exiting.parts));
    this.built = { note, split: new SplitChart(splitDiv), exiting, agreement };
    return this.built;
  }

  prefill(rows) {
    if (!rows.length || this.seenAt) return;
    this.seenAt = Date.now();
    this.drawObserved(rows);
    this.showState();
  }

  drawObserved(observed) {
    const { note, split, exiting } = this.parts();
    split.show(observed);
    exiting.show(observed);
    note.textContent = splitNote(observed);
  }

  /** One `rates` tick of the owned VM. */
  tick(tick) {
    const now = Date.now();
    this.quietMs = Math.max(3000, 3000 * (tick.interval_s || 0)); // three ticks, three seconds at least
    if ((tick.observed ?? []).length) {
      if (!this.watching(now)) this.window.clear(); // the observer's first rows count from its start
      this.seenAt = now;
    }
    this.window.push(tick);
    if (now - this.shownAt < SHOW_EVERY_MS || !this.watching(now)) return;
    this.shownAt = now;
    this.drawObserved(this.window.recentObserved(SHOW_EVERY_MS));
    const rows = this.window.agreement().filter((r) => r.key !== this.controlKey);
    this.parts().agreement.show(rows, this.window.spanMs);
    this.showState();
  }

  /** The VM's observer_age_s: seconds since an observer's tick saw the VM (null: never). */
  watched(ageS) {
    this.watchedAt = ageS !== null && ageS !== undefined && ageS < WATCHED_S ? Date.now() - ageS * 1000 : null;
    this.showState();
  }

  /** The observer counted this VM's writes lately (in three ticks, or three seconds). */
  watching(now) {
    return this.seenAt !== null && now - this.seenAt < this.quietMs;
  }

  showState() {
    const now = Date.now();
    const on = this.watching(now);
    if (this.built) this.body.hidden = !on;
    if (on) this.status.textContent = WATCHING;
    else if (this.watchedAt !== null && now - this.watchedAt < WATCHED_S * 1000) this.status.textContent = IDLE;
    else if (now - this.mountedAt >= this.quietMs) {
      this.status.replaceChildren("No observer is counting this VM's writes; to see them as the host's kernel does, " +
        "start one on this host: ", h("code", {}, "sudo iosignal observe"), ".");
    }
  }

  destroy() {
    clearInterval(this.timer);
    clearInterval(this.asking);
    this.built?.split.destroy();
  }
}
