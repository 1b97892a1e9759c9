// The Live page's answered doorbells: each doorbell a device answers with an interrupt (the
// workload's `answered`), its kicks/s and the device's interrupts/s from each `rates` tick, as
// two lines per doorbell and a table of the last tick. Equal lines: every kick answered.

import { addrKey, addrText, h } from "./format.js";
import { LiveChart } from "./livechart.js";

const rate = (v) => v.toLocaleString("en-US", { maximumFractionDigits: 0 });

export class AnsweredDoorbells {
  constructor() {
    this.div = h("div", { class: "chart", id: "chart-answers" });
    this.note = h("p", { class: "hint", id: "answers-note" },
      "No answered doorbell: mark one \u201canswered\u201d on the Workload page and the device " +
      "answers each of its writes with an interrupt the guest waits for.");
    this.body = h("tbody");
    this.table = h("table", { id: "answers-table", hidden: true },
      h("thead", {}, h("tr", {}, h("th", {}, "Doorbell"), h("th", { class: "num" }, "Kicks/s"),
        h("th", { class: "num" }, "Interrupts/s"), h("th", { class: "num" }, "Unanswered (tick)"))),
      this.body);
    this.section = h("section", { class: "card", id: "answers-card" },
      h("h2", {}, "Answered doorbells"), this.note, h("div", { class: "table-wrap" }, this.table), this.div);
  }

  /** Draws the chart; once `section` is on the page (Plotly sizes it from the layout). */
  draw() {
    this.chart = new LiveChart(this.div, "Kicks/s and interrupts/s per answered doorbell", "per second");
    return this;
  }

  /** One tick's `answers` ([{space, addr, len, kicks, interrupts, kicks_hz, interrupts_hz}]). */
  tick(t, answers) {
    const points = answers.flatMap((a) => {
      const key = addrKey(a.space, a.addr, a.len);
      const name = addrText(a.space, a.addr, a.len);
      return [
        { key: `${key}:kicks`, name: `${name} kicks/s`, y: a.kicks_hz },
        // Same colour, dashed: on top of the kicks line when every kick is answered.
        { key: `${key}:interrupts`, name: `${name} interrupts/s`, y: a.interrupts_hz, colourKey: `${key}:kicks`, dash: "dash" },
      ];
    });
    this.chart.push(t, points, true); // an idle doorbell is left out of the tick: 0
    if (!answers.length) return;
    this.table.hidden = false;
    this.note.textContent = `${answers.length} answered doorbell(s): each kick should bring one interrupt.`;
    this.body.replaceChildren(...answers.map((a) => h("tr", { "data-key": addrKey(a.space, a.addr, a.len) },
      h("td", { class: "mono" }, addrText(a.space, a.addr, a.len)),
      h("td", { class: "num kicks" }, rate(a.kicks_hz)),
      h("td", { class: "num interrupts" }, rate(a.interrupts_hz)),
      h("td", { class: "num" }, String(a.kicks - a.interrupts)))));
  }

  destroy() {
    this.chart.destroy();
  }
}
