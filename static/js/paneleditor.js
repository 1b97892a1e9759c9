// The "panel" dialog: a title, one metric, the series (picked across VMs and hosts from the API's
// lists; none means every series of the metric) and an aggregate. Resolves a PanelIn.

import { addrText, h } from "./format.js";
import { METRICS, refKey, SeriesPicker, seriesChips } from "./seriespicker.js";

const MAX_SERIES = 48;

/** A name for a saved ref before its data names it. */
export function refName(ctx, ref) {
  if (ref.ioeventfd_id != null) return `registration #${ref.ioeventfd_id}`;
  if (ref.path != null) return `${ref.path}${ref.host ? ` on ${ref.host}` : " (any host)"}`;
  return `${ctx.vmName(ref.vm_id)}: ${addrText(ref.space, ref.addr, ref.len)}`;
}

/** Opens the dialog for `panel` (or a new one); `onSave(panel)` gets the result. */
export function openPanelDialog(ctx, panel, onSave) {
  const chosen = (panel?.series ?? []).map((ref) => ({ ref, name: refName(ctx, ref) }));
  const titleInput = h("input", { name: "title", maxlength: 120, size: 40, value: panel?.title ?? "" });
  const metric = h("select", { name: "metric", "aria-label": "Metric" },
    Object.entries(METRICS).map(([m, info]) => h("option", { value: m, selected: m === (panel?.metric ?? "signals") }, info.label)));
  const aggregate = h("select", { name: "aggregate", "aria-label": "Aggregate" },
    [["none", "none: one line per series"], ["sum", "sum of the series"], ["max", "max of the series"]]
      .map(([v, t]) => h("option", { value: v, selected: v === (panel?.aggregate ?? "none") }, t)));
  const chips = h("div", { class: "chosen" });
  const errors = h("ul", { class: "errors", role: "alert" });
  const picker = new SeriesPicker(ctx, [metric.value], (c) => {
    if (chosen.length >= MAX_SERIES) return void (errors.replaceChildren(h("li", {}, `at most ${MAX_SERIES} series in a panel`)));
    if (!chosen.some((x) => refKey(x.ref) === refKey(c.ref))) chosen.push(c);
    renderChips();
  });
  let kind = METRICS[metric.value].kind;
  metric.addEventListener("change", () => {
    // Refs of another kind mean nothing to this metric: a registration is no path.
    if (METRICS[metric.value].kind !== kind) chosen.splice(0);
    kind = METRICS[metric.value].kind;
    renderChips();
    picker.setMetrics([metric.value]);
  });
  function renderChips() {
    chips.replaceChildren(chosen.length ? seriesChips(chosen, (i) => (chosen.splice(i, 1), renderChips()))
      : h("p", { class: "hint" }, "No series chosen: the panel shows every series of its metric."));
  }

  const form = h("form", { method: "dialog", class: "panel-form" }, h("h2", {}, panel ? "Edit panel" : "Add panel"),
    h("div", { class: "row" }, h("label", {}, "Title", titleInput), h("label", {}, "Metric", metric),
      h("label", {}, "Aggregate", aggregate)),
    h("div", { class: "row" }, picker.element), chips, errors,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, panel ? "Save panel" : "Add panel")));
  const dialog = h("dialog", { class: "panel-dialog", "aria-label": "Panel" }, form);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    onSave({ title: titleInput.value.trim(), metric: metric.value, aggregate: aggregate.value, series: chosen.map((c) => c.ref) });
    dialog.close();
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  renderChips();
  picker.load();
  dialog.showModal();
}
