// The Benchmarks page's "Run a benchmark" card: writes, passes and paths; once queued, a progress
// bar follows the run (GET /api/benchmarks/{id}) until the worker says done or failed.

import { api } from "./api.js";
import { h } from "./format.js";

const POLL_MS = 400;

export class BenchForm {
  /** A form offering `paths` (the served bench_paths); `onEnd(run)` follows each finished run. */
  constructor(ctx, paths, onEnd) {
    Object.assign(this, { ctx, onEnd, timer: null, alive: true });
    this.writes = h("input", { name: "writes", type: "number", min: 1, value: 20000, class: "narrow" });
    this.repeat = h("input", { name: "repeat", type: "number", min: 1, value: 3, class: "narrow" });
    this.boxes = paths.map((p) => h("input", { type: "checkbox", name: "path", value: p, checked: true }));
    this.progress = h("progress", { id: "bench-progress", max: 1, value: 0 });
    this.state = h("span", { class: "muted", id: "bench-state" });
    this.progressBox = h("div", { hidden: true }, this.progress, this.state);
    this.errors = h("ul", { class: "errors", role: "alert" });
    this.start = h("button", { type: "submit", class: "primary" }, "Start benchmark");
    const form = h("form", { class: "inline", novalidate: true, onsubmit: (ev) => this.submit(ev) },
      h("label", {}, "Writes per pass", this.writes), h("label", {}, "Passes", this.repeat), this.start);
    this.section = h("section", { class: "card write" }, h("h2", {}, "Run a benchmark"),
      h("p", { class: "hint" }, "The worker times each path on a scratch VM: userspace exits (the qemu path) " +
        "against ioeventfd. Small runs take seconds."),
      form, h("fieldset", { class: "paths" }, h("legend", {}, "Paths"),
        this.boxes.map((box) => h("label", { class: "check mono" }, box, box.value))),
      this.progressBox, this.errors);
  }

  showErrors(list) {
    this.errors.replaceChildren(...list.map((e) => h("li", {}, e)));
  }

  async submit(ev) {
    ev.preventDefault();
    const body = { writes: Number(this.writes.value), repeat: Number(this.repeat.value),
      paths: this.boxes.filter((b) => b.checked).map((b) => b.value) };
    const problems = [];
    if (!(body.writes >= 1)) problems.push("writes must be at least 1");
    if (!(body.repeat >= 1)) problems.push("repeat must be at least 1");
    if (!body.paths.length) problems.push("pick at least one path");
    this.showErrors(problems);
    if (problems.length) return;
    if (this.ctx.vmId !== null) body.vm_id = this.ctx.vmId;
    this.start.disabled = true;
    try {
      const { data } = await api.post("/api/benchmarks", body);
      this.watch(data.id);
    } catch (err) {
      this.showErrors([err.message]);
      this.start.disabled = false;
    }
  }

  /** Polls run `id` into the progress bar until it ends. */
  async watch(id) {
    this.progressBox.hidden = false;
    try {
      const run = await api.get(`/api/benchmarks/${id}`);
      this.progress.value = run.progress;
      this.state.textContent = ` run #${id}: ${run.state} ${Math.round(run.progress * 100)}%`;
      if (run.state === "done" || run.state === "failed") {
        this.start.disabled = false;
        if (run.state === "failed") this.showErrors([`Run #${id} failed: ${run.error || "no reason given"}`]);
        this.onEnd(run);
        return;
      }
    } catch (err) {
      this.state.textContent = ` ${err.message}`;
    }
    if (this.alive) this.timer = setTimeout(() => this.watch(id), POLL_MS);
  }

  stop() {
    this.alive = false;
    clearTimeout(this.timer);
  }
}
