// The "register an ioeventfd" form: used on the Registrations page and, prefilled, in the dialog
// the Hot doorbells table opens. Client-side rules first, then the server's verdict as it says it.

import { api } from "./api.js";
import { h, hex, regName } from "./format.js";
import { checkRegistration } from "./validate.js";

/** What the API answered, in one sentence for a toast. */
function verdictText(status, reg) {
  if (status === 202 || reg.state === "pending") {
    return `Saved as pending: the worker is not alive; it applies ${regName(reg)} when it returns.`;
  }
  return `Registered ${regName(reg)}: ${reg.state}.`;
}

/**
 * A form for one registration. `prefill` sets fields; `existing()` returns the VM's current
 * registrations (for the collision check); `onDone(reg)` runs after the API accepts it.
 */
export function registrationForm(ctx, { prefill = {}, existing = () => [], onDone } = {}) {
  const field = (name, input) => h("label", {}, name, input);
  const space = h("select", { name: "space" },
    ctx.rules.spaces.map((s) => h("option", { value: s, selected: s === (prefill.space || "pio") }, s)));
  const addr = h("input", { name: "addr", class: "addr mono", placeholder: "0x6000",
    value: prefill.addr === undefined ? "" : hex(prefill.addr) });
  const len = h("select", { name: "len" },
    ctx.rules.registration_lens.map((n) => h("option", { value: n, selected: n === Number(prefill.len ?? 2) }, String(n))));
  const datamatch = h("input", { name: "datamatch", class: "narrow mono", placeholder: "any" });
  const label = h("input", { name: "label", placeholder: "e.g. virtio-net tx", maxlength: 128 });
  const submit = h("button", { type: "submit", class: "primary" }, "Register ioeventfd");
  const errors = h("ul", { class: "errors", role: "alert" });
  const form = h("form", { class: "inline regform", novalidate: true },
    field("space", space), field("addr", addr), field("len", len),
    field("datamatch", datamatch), field("label", label), submit);
  const wrap = h("div", {}, form, errors);

  const showErrors = (list) => errors.replaceChildren(...list.map((e) => h("li", {}, e)));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const values = { space: space.value, addr: addr.value, len: len.value,
      datamatch: datamatch.value, label: label.value };
    // The guest's RAM (MMIO inside it never exits): the size its worker reports.
    const memSize = ctx.vm()?.mem_size ?? ctx.rules.default_mem_size;
    const { errors: problems, body } = checkRegistration(values, existing(), ctx.rules, memSize);
    showErrors(problems);
    if (problems.length) return;
    submit.disabled = true;
    submit.textContent = "Waiting for the kernel…";
    try {
      const { status, data } = await api.post(`/api/vms/${ctx.vmId}/ioeventfds`, body);
      ctx.toast(verdictText(status, data));
      form.reset();
      if (onDone) onDone(data);
    } catch (err) {
      showErrors([err.message]); // the API's 422 rule or 409 errno, as it wrote it
    } finally {
      submit.disabled = false;
      submit.textContent = "Register ioeventfd";
    }
  });
  return wrap;
}

/** Opens a modal with the form prefilled (space/addr/len of a hot doorbell). */
export function openRegisterDialog(ctx, prefill, existing, onDone) {
  const dialog = h("dialog", { class: "register-dialog", "aria-label": "Register ioeventfd" });
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  const form = registrationForm(ctx, {
    prefill,
    existing,
    onDone: (reg) => {
      close();
      if (onDone) onDone(reg);
    },
  });
  dialog.append(
    h("h2", {}, "Register ioeventfd"),
    h("p", { class: "hint" },
      "Writes to this address will signal an eventfd in the kernel instead of exiting to userspace."),
    form,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: close }, "Cancel")),
  );
  dialog.addEventListener("cancel", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
