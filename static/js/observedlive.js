// The Live page of an observed VM (another VMM's, watched by `iosignal observe`): per address,
// the guest's writes split into in-kernel and userspace (stacked bars, the newest second), the
// totals over the last minute, and the hot doorbells that still exit to userspace. Read-only:
// iosignal registers nothing in another process's VM. Fed by the stream's `observed` figures.

import { api } from "./api.js";
import { h } from "./format.js";
import { LatencyCard } from "./latencychart.js";
import { LiveChart } from "./livechart.js";
import { ExitingTable, SplitChart, splitNote } from "./observedparts.js";

const SHOW_EVERY_MS = 1000; // a steady chart and table are easier to read than 5 redraws a second
const DIAGNOSE_EVERY_MS = 5000; // registrations change rarely; the stream carries no diagnosis
const EXITING_HINT = "Each of these writes is a heavy exit to the VMM. An ioeventfd on the address " +
  "would keep it in the kernel; that is for the VMM to register (iosignal only watches this VM).";

function heading(vm) {
  const who = `${vm.comm || "VMM"}${vm.pid ? ` (pid ${vm.pid})` : ""}`;
  return [h("h1", {}, "Live", ` · ${vm.name}`),
    h("p", { class: "hint", id: "observed-note" }, h("span", { class: "badge kind-observed" }, "observed"),
      ` ${who} on ${vm.host}: another VMM's VM, watched read-only by iosignal observe. `,
      vm.ended_at ? `Its process ended at ${new Date(vm.ended_at).toLocaleString()}.` : "")];
}

/** Mounts the Live page of an observed VM; returns its cleanup. */
export function mountObserved(root, ctx, vm) {
  const splitDiv = h("div", { class: "chart", id: "chart-split" });
  const totalsDiv = h("div", { class: "chart", id: "chart-observed" });
  const note = h("p", { class: "hint", id: "split-note" }, "Waiting for the observer's first tick…");
  const table = new ExitingTable(EXITING_HINT, { diagnosis: true });
  root.append(...heading(vm), h("div", { class: "grid two" },
    h("section", { class: "card" }, note, splitDiv), h("section", { class: "card" }, totalsDiv)),
  h("section", { class: "card", id: "exiting-doorbells" }, table.parts));
  const latency = new LatencyCard(ctx, vm.id);
  root.append(latency.section);
  const split = new SplitChart(splitDiv);
  const totals = new LiveChart(totalsDiv, "Guest writes/s: in-kernel and userspace", "writes/s");
  let shownAt = 0;

  function show(observed) {
    split.show(observed);
    table.show(observed);
    note.textContent = splitNote(observed);
  }

  function onRates(tick) {
    const observed = tick.observed || [];
    const t = new Date(tick.t);
    const sum = (key) => observed.reduce((s, o) => s + o[key], 0);
    totals.push(t, [{ key: "in-kernel", name: "in-kernel", y: sum("in_kernel_hz") },
      { key: "userspace", name: "userspace", y: sum("userspace_hz") }], true);
    if (t - shownAt < SHOW_EVERY_MS) return;
    shownAt = t;
    show(observed);
  }

  // Until the first tick arrives, the last ten seconds fill the chart and table; the
  // diagnoses (why a doorbell still exits) come from the same rows, refreshed every few seconds.
  const exits = () => api.get(`/api/vms/${vm.id}/exits?since=-10s`);
  exits().then((rows) => {
    if (!shownAt) show(rows.filter((r) => r.writes).sort((a, b) => b.writes_hz - a.writes_hz));
    table.diagnose(rows);
  }).catch((err) => ctx.toast(`Exits: ${err.message}`, "error"));
  // a failed refresh keeps the last diagnoses shown; the next one tries again
  const timer = setInterval(() => exits().then((rows) => table.diagnose(rows)).catch(() => {}), DIAGNOSE_EVERY_MS);
  const off = ctx.stream.on("rates", onRates);
  return () => {
    clearInterval(timer);
    off();
    split.destroy();
    totals.destroy();
    latency.destroy();
  };
}
