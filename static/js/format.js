// Small helpers shared by the pages: DOM building, number formats, colours.

/** Builds an element: h("button", {class: "x", onclick}, "text", child...). Text is never HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** 0x-prefixed hex of an address or value (numbers or numeric strings). */
export function hex(n) {
  if (n === null || n === undefined || n === "") return "";
  try {
    return "0x" + BigInt(n).toString(16);
  } catch {
    return String(n);
  }
}

/** "pio 0x6000/2" — how a doorbell address is written everywhere on the page. */
export function addrText(space, addr, len) {
  return `${space} ${hex(addr)}/${len}`;
}

/** A stable key for one (space, addr, len). */
export function addrKey(space, addr, len) {
  return `${space}:${hex(addr)}:${len}`;
}

/** A registration's legend name: its label (if any) and its address. */
export function regName(reg) {
  const where = addrText(reg.space, reg.addr, reg.len);
  const dm = reg.datamatch === null || reg.datamatch === undefined ? "" : ` =${hex(reg.datamatch)}`;
  return reg.label ? `${reg.label} (${where}${dm})` : `#${reg.id} ${where}${dm}`;
}

/** 12345.6 -> "12.3k/s". */
export function rate(hz) {
  if (hz === null || hz === undefined || Number.isNaN(Number(hz))) return "–";
  const v = Number(hz);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k/s`;
  return `${v.toFixed(v < 10 ? 1 : 0)}/s`;
}

/** A share 0..1 as "87.5%" ("–" for none: nothing was written). */
export function share(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 1000) / 10}%`;
}

/** A count with thousands separators. */
export function count(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

/** Local time of an ISO timestamp, short. */
export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

// Okabe–Ito's distinguishable hues, with its two light ones (orange, sky blue) swapped for darker
// colours so every line keeps at least 3:1 contrast against the white plot.
export const PALETTE = [
  "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#6A3D9A", "#A6761D", "#000000", "#56606B",
];

/** A colour per key, stable for the page's life so a registration keeps its colour. */
const assigned = new Map();
export function colourFor(key) {
  if (!assigned.has(key)) assigned.set(key, PALETTE[assigned.size % PALETTE.length]);
  return assigned.get(key);
}

/** Base Plotly layout for every chart: light, readable, legend below. */
export function baseLayout(extra = {}) {
  return {
    margin: { l: 64, r: 16, t: 36, b: 48 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    font: { family: "system-ui, sans-serif", size: 13, color: "#1b1f24" },
    legend: { orientation: "h", y: -0.2 },
    hovermode: "x unified",
    ...extra,
  };
}

export const PLOT_CONFIG = { responsive: true, displaylogo: false };

/** The empty state of a page that changes a VM, for a VM iosignal only watches (another VMM's). */
export function observedState(vm, what) {
  const who = `${vm.comm || "another VMM"}${vm.pid ? ` (pid ${vm.pid})` : ""}`;
  return h("div", { class: "empty", id: "observed-only" }, h("strong", {}, `${vm.name} is observed, not owned`),
    h("p", {}, `It belongs to ${who}; iosignal only watches it and never ${what} in another process's VM. `,
      "Its doorbells are on its ", h("a", { href: `/#/live?vm=${vm.id}` }, "Live page"), "."));
}

/** An empty-state box with a title and a hint. */
export function emptyState(title, hint) {
  return h("div", { class: "empty" }, h("strong", {}, title), hint ? h("p", {}, hint) : null);
}

/**
 * `text` for a Plotly title, legend or hover label: Plotly reads a few HTML tags in its strings,
 * so <, > and & are escaped and names always show as the text they are.
 */
export function plotText(text) {
  return String(text ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
