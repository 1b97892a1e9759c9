// How long this VM's in-kernel doorbells take to be heard (GET /api/vms/{id}/latency, issue 21):
// per doorbell, the consumer thread its kicks wake, kicks/s, wakes/s, and per minute the p50 (solid)
// and p99 (dotted) of each stage, on a log axis in microseconds. The observer writes one row per
// doorbell and minute, so the card asks again every REFRESH_MS rather than riding the stream.

import { api } from "./api.js";
import { baseLayout, colourFor, h, hex, rate, PLOT_CONFIG } from "./format.js";

const REFRESH_MS = 10_000;
const SINCE = "-15m";
const STAGE_NAMES = {
  kick_to_run: "kick → consumer running",
  kick_to_irq: "kick → interrupt",
  irq_to_vcpu: "interrupt → vCPU running",
};
const HINT = "Each guest write to an ioeventfd doorbell (a kick) wakes its consumer thread, which answers with " +
  "an interrupt into the VM. p50 solid, p99 dotted, per minute. Kicks that wake nobody found the consumer " +
  "already running (notification suppression). See docs/observer.md.";

function doorbellName(d) {
  return `${d.space} ${hex(d.addr)}/${d.len}`;
}

function consumerLine(d) {
  const who = `${d.consumer.comm} (tid ${d.consumer.tid}, ${d.consumer.process})`;
  const stages = Object.entries(d.stages).filter(([, s]) => s.count)
    .map(([k, s]) => `${STAGE_NAMES[k]} p50 ${s.p50_us} µs, p99 ${s.p99_us} µs`).join("; ");
  return h("li", {}, h("strong", {}, doorbellName(d)), ` → ${who}: ${rate(d.kicks_hz)} kicks, ` +
    `${rate(d.wakes_hz)} wakes, ${d.suppressed} kicks woke nobody. ${stages}`);
}

function traces(doorbells) {
  const out = [];
  for (const d of doorbells) {
    for (const stage of Object.keys(STAGE_NAMES)) {
      const points = d.minutes.filter((m) => m.stages[stage]?.count);
      if (!points.length) continue;
      const key = `${doorbellName(d)} ${stage}`;
      for (const [pct, dash] of [["p50_us", "solid"], ["p99_us", "dot"]]) {
        out.push({
          type: "scatter", mode: "lines+markers", name: `${doorbellName(d)} ${STAGE_NAMES[stage]} ${pct.slice(0, 3)}`,
          x: points.map((m) => new Date(m.minute_at)), y: points.map((m) => m.stages[stage][pct]),
          line: { color: colourFor(key), dash }, legendgroup: key,
        });
      }
    }
  }
  return out;
}

/** The latency card of one VM: mount `section`, call destroy() when leaving the page. */
export class LatencyCard {
  constructor(ctx, vmId) {
    this.ctx = ctx;
    this.vmId = vmId;
    this.div = h("div", { class: "chart tall", id: "chart-latency" });
    this.list = h("ul", { class: "hint", id: "latency-consumers" });
    this.note = h("p", { class: "hint", id: "latency-note" }, "Asking the observer's latency rows…");
    this.section = h("section", { class: "card", id: "latency" },
      h("h2", {}, "Doorbell latency"), h("p", { class: "hint" }, HINT), this.note, this.list, this.div);
    // drawn on the first answer, once the card is on the page (a plot made before sizes 700 px)
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  layout() {
    return baseLayout({
      title: { text: "Doorbell latency per minute (µs)", x: 0, xanchor: "left", font: { size: 15 } },
      xaxis: { type: "date" },
      yaxis: { title: { text: "µs" }, type: "log" },
      showlegend: true,
      legend: { orientation: "h", y: -0.2 },
    });
  }

  async refresh() {
    try {
      const body = await api.get(`/api/vms/${this.vmId}/latency?since=${SINCE}`);
      const doorbells = body.doorbells;
      this.note.textContent = doorbells.length
        ? `${doorbells.length} in-kernel doorbell(s) over the last 15 minutes.`
        : "No kick of an in-kernel doorbell seen in the last 15 minutes (is iosignal observe running?).";
      this.list.replaceChildren(...doorbells.map(consumerLine));
      await Plotly.react(this.div, traces(doorbells), this.layout(), PLOT_CONFIG);
    } catch (err) {
      this.note.textContent = `Latency: ${err.message}`;
    }
  }

  destroy() {
    clearInterval(this.timer);
    Plotly.purge(this.div);
  }
}
