// Benchmarks: start one (progress bar while the worker runs it on a scratch VM), compare runs
// across hosts and kernels as grouped bars, the 2009 figures alongside.

import { api } from "../api.js";
import { drawBench, resultTable, runName } from "../benchchart.js";
import { emptyState, h, when } from "../format.js";

export const title = "Benchmarks";

/** Mounts the page; returns its cleanup. */
export function mount(root, ctx) {
  const benchPaths = ctx.rules?.bench_paths ?? {}; // no rules only while the API is unreachable
  let runs = [];
  const compare = new Set(); // run ids drawn side by side
  let pollTimer = null;
  let alive = true;

  const writes = h("input", { name: "writes", type: "number", min: 1, value: 20000, class: "narrow" });
  const repeat = h("input", { name: "repeat", type: "number", min: 1, value: 3, class: "narrow" });
  const pathBoxes = Object.keys(benchPaths).map((p) => h("label", { class: "check mono" },
    h("input", { type: "checkbox", name: "path", value: p, checked: true }), p));
  const progress = h("progress", { id: "bench-progress", max: 1, value: 0 });
  const progressText = h("span", { class: "muted", id: "bench-state" });
  const progressBox = h("div", { hidden: true }, progress, progressText);
  const errors = h("ul", { class: "errors", role: "alert" });
  const start = h("button", { type: "submit", class: "primary" }, "Start benchmark");
  const chart = h("div", { class: "chart tall", id: "chart-bench" });
  const details = h("div", { class: "table-wrap" });
  const runsBody = h("tbody");
  const runsEmpty = h("div", { id: "runs-empty" });
  const hostFilter = h("select", { "aria-label": "Host" });
  const kernelFilter = h("select", { "aria-label": "Kernel" });

  const form = h("form", { class: "inline", novalidate: true }, h("label", {}, "Writes per pass", writes),
    h("label", {}, "Passes", repeat), start);
  form.addEventListener("submit", onStart);
  root.append(
    h("h1", {}, "Benchmarks"),
    h("section", { class: "card write" }, h("h2", {}, "Run a benchmark"),
      h("p", { class: "hint" }, "The worker times each path on a scratch VM: userspace exits (the qemu path) " +
        "against ioeventfd. Small runs take seconds."),
      form, h("fieldset", { class: "paths" }, h("legend", {}, "Paths"), pathBoxes), progressBox, errors),
    h("section", { class: "card" }, chart, details),
    h("section", { class: "card" }, h("div", { class: "row" }, h("h2", {}, "Runs"),
      h("label", { class: "inline" }, "Host", hostFilter), h("label", { class: "inline" }, "Kernel", kernelFilter)),
    h("div", { class: "table-wrap" }, h("table", { id: "runs-table" }, h("thead", {}, h("tr", {},
      ["Compare", "#", "State", "Host", "Kernel", "Writes × passes", "Finished"].map((t) => h("th", {}, t)))), runsBody)),
    runsEmpty),
  );

  function redraw() {
    const chosen = runs.filter((r) => compare.has(r.id) && r.results.length);
    drawBench(chart, chosen, benchPaths);
    details.replaceChildren(...chosen.map((run) => resultTable(run, benchPaths)));
  }

  function renderRuns() {
    const options = (sel, key) => {
      const keep = sel.value;
      const values = [...new Set(runs.map((r) => r[key]).filter(Boolean))];
      sel.replaceChildren(h("option", { value: "" }, "all"), ...values.map((v) => h("option", { value: v, selected: v === keep }, v)));
    };
    options(hostFilter, "host");
    options(kernelFilter, "kernel");
    const shown = runs.filter((r) => (!hostFilter.value || r.host === hostFilter.value) &&
      (!kernelFilter.value || r.kernel === kernelFilter.value));
    runsBody.replaceChildren(...shown.map((r) => h("tr", { dataset: { id: r.id } },
      h("td", {}, h("input", { type: "checkbox", "aria-label": `compare ${runName(r)}`, checked: compare.has(r.id),
        disabled: r.state !== "done", onchange: (ev) => {
          ev.target.checked ? compare.add(r.id) : compare.delete(r.id);
          redraw();
        } })),
      h("td", {}, r.id), h("td", { class: `state ${r.state === "done" ? "active" : r.state}` },
        r.state === "failed" && r.error ? `failed: ${r.error}` : r.state),
      h("td", {}, r.host || "–"), h("td", {}, r.kernel || "–"), h("td", {}, `${r.writes} × ${r.repeat}`),
      h("td", {}, when(r.finished_at)))));
    runsBody.closest("table").hidden = shown.length === 0;
    runsEmpty.replaceChildren(shown.length ? "" : emptyState("No benchmark runs yet",
      `${ctx.canWrite ? "Start one above" : "An editor can start one"}: a worker runs it on a scratch VM. ` +
      "Runs from workers on other hosts that share this database show up here too."));
  }

  async function loadRuns() {
    try {
      runs = await api.get("/api/benchmarks"); // newest first, each with its results
      const latest = runs.find((r) => r.state === "done");
      if (!compare.size && latest) compare.add(latest.id);
      if (alive) (renderRuns(), redraw());
    } catch (err) {
      runsEmpty.replaceChildren(emptyState("Could not load benchmark runs", err.message));
    }
  }

  async function onStart(ev) {
    ev.preventDefault();
    const paths = pathBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    const problems = [];
    if (!(Number(writes.value) >= 1)) problems.push("writes must be at least 1");
    if (!(Number(repeat.value) >= 1)) problems.push("repeat must be at least 1");
    if (!paths.length) problems.push("pick at least one path");
    errors.replaceChildren(...problems.map((p) => h("li", {}, p)));
    if (problems.length) return;
    start.disabled = true;
    try {
      const body = { writes: Number(writes.value), repeat: Number(repeat.value), paths };
      if (ctx.vmId !== null) body.vm_id = ctx.vmId;
      const { data } = await api.post("/api/benchmarks", body);
      watch(data.id);
    } catch (err) {
      errors.replaceChildren(h("li", {}, err.message));
      start.disabled = false;
    }
  }

  function watch(id) {
    progressBox.hidden = false;
    const tick = async () => {
      try {
        const run = await api.get(`/api/benchmarks/${id}`);
        progress.value = run.progress;
        progressText.textContent = ` run #${id}: ${run.state} ${Math.round(run.progress * 100)}%`;
        if (run.state === "done" || run.state === "failed") {
          start.disabled = false;
          if (run.state === "failed") errors.replaceChildren(h("li", {}, `Run #${id} failed: ${run.error || "no reason given"}`));
          else compare.add(id);
          await loadRuns();
          return;
        }
      } catch (err) {
        progressText.textContent = ` ${err.message}`;
      }
      if (alive) pollTimer = setTimeout(tick, 400);
    };
    tick();
  }

  hostFilter.addEventListener("change", renderRuns);
  kernelFilter.addEventListener("change", renderRuns);
  drawBench(chart, [], benchPaths); // the 2009 reference alone until a run is chosen
  loadRuns();
  return () => {
    alive = false;
    clearTimeout(pollTimer);
    Plotly.purge(chart);
  };
}
