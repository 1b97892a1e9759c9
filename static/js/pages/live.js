// Live view of one VM: signals/s per registration and userspace exits/s per address, fed by the
// `rates` events of /api/stream, and the Hot doorbells table (busiest unregistered addresses).

import { api } from "../api.js";
import { addrKey, addrText, emptyState, h, rate, regName } from "../format.js";
import { LiveChart, MAX_SERIES } from "../livechart.js";
import { openRegisterDialog } from "../regform.js";

export const title = "Live";

/** Mounts the page; returns the cleanup that stops listening and frees the charts. */
export function mount(root, ctx) {
  const vm = ctx.vm();
  root.append(h("h1", {}, "Live", vm ? ` · ${vm.name}` : "",
    vm && vm.host ? h("span", { class: "muted", style: "font-weight:400;font-size:0.9rem" },
      `  ${vm.host} · ${vm.kernel}`) : null));
  if (ctx.vmId === null) {
    root.append(emptyState("No VM yet", "Start a worker (iosignal run, or iosignal worker) and it appears here."));
    return null;
  }
  const sigDiv = h("div", { class: "chart", id: "chart-signals" });
  const exitDiv = h("div", { class: "chart", id: "chart-exits" });
  const sigNote = h("p", { class: "hint", id: "signals-note" }, "Waiting for the first sample…");
  const exitNote = h("p", { class: "hint", id: "exits-note" }, "Waiting for the first sample…");
  const hotBody = h("tbody");
  const hotEmpty = emptyState("No hot doorbells", "Nothing is exiting to userspace. Edit the workload to ring a doorbell.");
  const hotTable = h("table", { id: "hot-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Address"), h("th", { class: "num" }, "Exits/s"),
      h("th", { class: "num" }, "Exits (tick)"), h("th", { class: "write" }, ""))),
    hotBody);
  root.append(
    h("div", { class: "grid two" },
      h("section", { class: "card" }, sigNote, sigDiv),
      h("section", { class: "card" }, exitNote, exitDiv)),
    h("section", { class: "card", id: "hot-doorbells" },
      h("h2", {}, "Hot doorbells"),
      h("p", { class: "hint" }, "The busiest addresses the guest writes with no ioeventfd: each write is a userspace exit."),
      h("div", { class: "table-wrap" }, hotTable), hotEmpty),
  );
  const signals = new LiveChart(sigDiv, "Signals/s per registration (ioeventfd)", "signals/s");
  const exits = new LiveChart(exitDiv, "Userspace exits/s per address", "exits/s");

  let regs = [];
  const regById = new Map();
  const loadRegs = async () => {
    try {
      regs = await api.get(`/api/vms/${ctx.vmId}/ioeventfds`);
      regById.clear();
      regs.forEach((r) => regById.set(r.id, r));
      regs.forEach((r) => signals.rename(`reg:${r.id}`, regName(r)));
    } catch (err) {
      ctx.toast(`Registrations: ${err.message}`, "error");
    }
  };
  loadRegs();

  const hotRows = new Map(); // addrKey -> <tr>, updated in place so buttons stay put
  const renderHot = (list) => {
    const hot = list.filter((e) => !e.registered && e.rate_hz > 0)
      .sort((a, b) => b.rate_hz - a.rate_hz)
      .slice(0, 10);
    const keep = new Set(hot.map((e) => addrKey(e.space, e.addr, e.len)));
    for (const [key, tr] of hotRows) if (!keep.has(key)) (tr.remove(), hotRows.delete(key));
    hot.forEach((e) => {
      const key = addrKey(e.space, e.addr, e.len);
      let tr = hotRows.get(key);
      if (!tr) {
        const button = h("button", { type: "button", class: "primary",
          "aria-label": `Register ioeventfd for ${addrText(e.space, e.addr, e.len)}`,
          onclick: () => openRegisterDialog(ctx, { space: e.space, addr: e.addr, len: e.len }, () => regs, loadRegs) },
          "Register ioeventfd");
        tr = h("tr", { dataset: { key } }, h("td", { class: "mono" }, addrText(e.space, e.addr, e.len)),
          h("td", { class: "num rate" }), h("td", { class: "num exits" }), h("td", { class: "write" }, button));
        hotRows.set(key, tr);
      }
      tr.querySelector(".rate").textContent = rate(e.rate_hz);
      tr.querySelector(".exits").textContent = e.exits;
      hotBody.append(tr); // re-appending keeps the busiest first
    });
    hotEmpty.hidden = hot.length > 0;
    hotTable.hidden = hot.length === 0;
  };
  hotTable.hidden = true;
  // Until the first tick arrives, the last few seconds of exits fill the table.
  api.get(`/api/vms/${ctx.vmId}/exits?since=-10s`)
    .then((list) => !hotRows.size && renderHot(list))
    .catch(() => {});

  let lastHot = 0;
  const onRates = (tick) => {
    const t = new Date(tick.t);
    signals.push(t, tick.registrations.map((r) => ({
      key: `reg:${r.id}`, y: r.rate_hz, name: regName(regById.get(r.id) || r),
    })), false);
    exits.push(t, tick.exits.map((e) => ({
      key: addrKey(e.space, e.addr, e.len), name: addrText(e.space, e.addr, e.len), y: e.rate_hz,
    })), true);
    const regCount = tick.registrations.length;
    const shown = regCount > MAX_SERIES ? ` (the first ${MAX_SERIES} drawn)` : "";
    sigNote.textContent = regCount ? `${regCount} active registration(s)${shown}` :
      "No active registration: register a hot doorbell below to see its signals.";
    exitNote.textContent = tick.exits.length ? `${tick.exits.length} address(es) exiting` :
      "No userspace exits in the last tick.";
    if (t - lastHot >= 1000 || !hotRows.size) {
      lastHot = t; // a steady table (1 Hz) is easier to read and click than a flickering one
      renderHot(tick.exits);
    }
  };
  const offRates = ctx.stream.on("rates", onRates);
  const offReg = ctx.stream.on("registration", (reg) => {
    // A removed registration's line stops; its legend entry says why.
    if (reg.state === "removed") signals.rename(`reg:${reg.id}`, `${regName(reg)} — removed`);
    loadRegs();
  });
  return () => {
    offRates();
    offReg();
    signals.destroy();
    exits.destroy();
  };
}
