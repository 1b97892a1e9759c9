// "Add note": a note (POST /api/annotations) at now or over a time span, for the current VM or
// for every VM. Charts listen for ANNOTATIONS_CHANGED and fetch their markers again.

import { api } from "./api.js";
import { h } from "./format.js";

export const ANNOTATIONS_CHANGED = "iosignal:annotations";
const MAX_TEXT = 500;

/** "2024-05-01T12:30" in local time, as a datetime-local input wants it. */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

/** ISO 8601 of a datetime-local value, or "" when it is not a time. */
function isoOf(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function noteBody(form, ctx) {
  const text = form.elements.text.value.trim();
  const body = { text, vm_id: form.elements.scope.value === "vm" ? ctx.vmId : null };
  if (form.elements.when.value === "span") {
    body.time = isoOf(form.elements.from.value);
    body.time_end = isoOf(form.elements.to.value);
  }
  return body;
}

function problems(body) {
  const out = [];
  if (!body.text) out.push("text must not be empty");
  if (body.text.length > MAX_TEXT) out.push(`text must be at most ${MAX_TEXT} characters`);
  if (body.time === "" || body.time_end === "") out.push("a span needs both its start and its end");
  else if (body.time && Date.parse(body.time_end) < Date.parse(body.time)) {
    out.push("the span must end after it starts");
  }
  return out;
}

/** Opens the note dialog; on success it tells the charts to reload their markers. */
export function openNoteDialog(ctx) {
  const now = Date.now();
  const errors = h("ul", { class: "errors", role: "alert" });
  const span = h("div", { class: "row", hidden: true },
    h("label", {}, "From", h("input", { type: "datetime-local", name: "from", value: localInput(now - 300_000) })),
    h("label", {}, "To", h("input", { type: "datetime-local", name: "to", value: localInput(now) })));
  const radio = (name, value, text, checked) => h("label", { class: "check" },
    h("input", { type: "radio", name, value, checked }), text);
  const vm = ctx.vm();
  const form = h("form", { method: "dialog", class: "note-form" },
    h("h2", {}, "Add a note"),
    h("label", {}, "Text", h("textarea", { name: "text", rows: 3, cols: 48, maxlength: MAX_TEXT, required: true })),
    h("fieldset", { class: "paths", onchange: () => (span.hidden = form.elements.when.value !== "span") },
      h("legend", {}, "When"), radio("when", "now", "now", true), radio("when", "span", "a time span", false)),
    span,
    h("fieldset", { class: "paths" }, h("legend", {}, "For"),
      radio("scope", "vm", vm ? `this VM (${vm.name})` : "this VM", Boolean(vm)), radio("scope", "global", "every VM", !vm)),
    errors,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Add note")));
  const dialog = h("dialog", { class: "note-dialog", "aria-label": "Add a note" }, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = noteBody(form, ctx);
    const found = problems(body);
    errors.replaceChildren(...found.map((e) => h("li", {}, e)));
    if (found.length) return;
    try {
      await api.post("/api/annotations", body);
      dialog.close();
      ctx.toast("Note added: it shows on every time chart of its range.");
      window.dispatchEvent(new Event(ANNOTATIONS_CHANGED));
    } catch (err) {
      errors.replaceChildren(h("li", {}, err.message));
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  form.elements.text.focus();
}
