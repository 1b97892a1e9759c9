// Live view of one VM: signals/s per registration and userspace exits/s per address, fed by the
// `rates` events of /api/stream, the Hot doorbells table (busiest unregistered addresses), and
// kicks/s and interrupts/s of the answered doorbells, and how the host's observer sees the VM
// (ownedobserver.js: its figures and their agreement with the worker's, or how to start one).
// An observed VM (another VMM's) gets observedlive.js instead: writes split in-kernel/userspace.

import { keepAnnotated } from "../annotations.js";
import { AnsweredDoorbells } from "../answers.js";
import { api } from "../api.js";
import { addrKey, addrText, emptyState, h, regName } from "../format.js";
import { HotDoorbells } from "../hotdoorbells.js";
import { LiveChart, MAX_SERIES } from "../livechart.js";
import { mountObserved } from "../observedlive.js";
import { ObserverCard } from "../ownedobserver.js";
import { LatencyCard } from "../latencychart.js";

export const title = "Live";

function heading(vm) {
  return h("h1", {}, "Live", vm ? ` · ${vm.name}` : "",
    vm && vm.host ? h("span", { class: "muted", style: "font-weight:400;font-size:0.9rem" },
      `  ${vm.host} · ${vm.kernel}`) : null);
}

/** A card with a note above a chart's div; `note(text)` rewrites the note. */
function chartCard(name) {
  const div = h("div", { class: "chart", id: `chart-${name}` });
  const text = h("p", { class: "hint", id: `${name}-note` }, "Waiting for the first sample…");
  return { card: h("section", { class: "card" }, text, div), div, note: (t) => (text.textContent = t) };
}

/** What the notes above the charts say about one tick. */
function tickNotes(tick) {
  const regs = tick.registrations.length;
  const shown = regs > MAX_SERIES ? ` (the first ${MAX_SERIES} drawn)` : "";
  return {
    signals: regs ? `${regs} active registration(s)${shown}` :
      "No active registration: register a hot doorbell below to see its signals.",
    exits: tick.exits.length ? `${tick.exits.length} address(es) exiting` : "No userspace exits in the last tick.",
  };
}

/** Mounts the page; returns the cleanup that stops listening and frees the charts. */
export function mount(root, ctx) {
  const vm = ctx.vm();
  if (vm?.kind === "observed") return mountObserved(root, ctx, vm); // read-only: no registering
  root.append(heading(vm));
  if (ctx.vmId === null) {
    root.append(emptyState("No VM yet", "Start a worker (iosignal run, or iosignal worker) and it appears here."));
    return null;
  }
  const sigCard = chartCard("signals");
  const exitCard = chartCard("exits");
  let regs = [];
  const hot = new HotDoorbells(ctx, () => regs, loadRegs);
  const answered = new AnsweredDoorbells();
  const observer = new ObserverCard(ctx);
  const latency = new LatencyCard(ctx, ctx.vmId);
  root.append(h("div", { class: "grid two" }, sigCard.card, exitCard.card), hot.section, answered.section,
    observer.section, latency.section);
  answered.draw();
  const signals = new LiveChart(sigCard.div, "Signals/s per registration (ioeventfd)", "signals/s");
  const exits = new LiveChart(exitCard.div, "Userspace exits/s per address", "exits/s");

  async function loadRegs() {
    try {
      regs = await api.get(`/api/vms/${ctx.vmId}/ioeventfds`);
      regs.forEach((r) => signals.rename(`reg:${r.id}`, regName(r)));
    } catch (err) {
      ctx.toast(`Registrations: ${err.message}`, "error");
    }
  }

  function onRates(tick) {
    const t = new Date(tick.t);
    // The tick names a registration without its datamatch; the list has it.
    const known = (r) => regs.find((x) => x.id === r.id) ?? r;
    signals.push(t, tick.registrations.map((r) => ({ key: `reg:${r.id}`, name: regName(known(r)), y: r.rate_hz })), false);
    exits.push(t, tick.exits.map((e) => ({
      key: addrKey(e.space, e.addr, e.len), name: addrText(e.space, e.addr, e.len), y: e.rate_hz,
    })), true);
    const notes = tickNotes(tick);
    sigCard.note(notes.signals);
    exitCard.note(notes.exits);
    hot.tick(t, tick.exits);
    answered.tick(t, tick.answers ?? []);
    observer.tick(tick);
  }

  // Markers over the last minute (a little more, so one just left of the edge still shows).
  const marks = keepAnnotated(() => [signals, exits, answered.chart], () => [Date.now() - 120_000, Date.now() + 5_000], ctx.vmId);

  function onRegistration(reg) {
    // A removed registration's line stops; its legend entry says why.
    if (reg.state === "removed") signals.rename(`reg:${reg.id}`, `${regName(reg)} — removed`);
    loadRegs();
    marks.refresh(); // applied/removed/failed are annotations too
  }

  loadRegs();
  hot.prefill();
  const offs = [ctx.stream.on("rates", onRates), ctx.stream.on("registration", onRegistration)];
  return () => {
    marks.stop();
    offs.forEach((off) => off());
    signals.destroy();
    exits.destroy();
    answered.destroy();
    observer.destroy();
    latency.destroy();
  };
}
