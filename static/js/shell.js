// The page's frame around every page: toasts, status badges and the token dialog.

import { getToken, setToken, whoami } from "./api.js";
import { h } from "./format.js";

const $ = (sel) => document.querySelector(sel);

/** Shows a short message at the bottom right; errors stay until clicked. */
export function toast(message, kind = "info") {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  el.addEventListener("click", () => el.remove());
  $("#toasts").append(el);
  if (kind !== "error") setTimeout(() => el.remove(), 4000);
}

/** Sets a header badge's text and colour (ok, warn, bad). */
export function setBadge(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.className = `badge ${kind}`;
}

/** The stream badge for a Stream's state. */
export function streamStatus(state) {
  const map = { live: ["stream live", "ok"], connecting: ["connecting…", "warn"] };
  const [text, kind] = map[state] || ["stream reconnecting…", "bad"];
  setBadge("#stream-badge", text, kind);
}

/** Opens the token dialog saying why. */
export function askToken(reason) {
  const dialog = $("#token-dialog");
  $("#token-reason").textContent = reason;
  $("#token-input").value = getToken();
  if (!dialog.open) dialog.showModal();
}

/** Asks the API who we are and shows write controls to editors; false if a token is needed. */
export async function applyAuth(ctx) {
  const me = await whoami();
  ctx.role = me.role;
  document.body.classList.toggle("can-write", ctx.role === "editor");
  $("#role-badge").textContent = me.tokensRequired ? `token: ${ctx.role || "none"}` : "no tokens";
  $("#role-badge").hidden = !me.tokensRequired;
  if (me.tokensRequired && !ctx.role) {
    askToken(getToken() ? "The stored token was not accepted (unknown or revoked). Paste a valid token."
      : "This server requires an API token. Paste a viewer or editor token.");
    return false;
  }
  return true;
}

/** Wires the token dialog and button; `restart()` runs after a new token is saved. */
export function wireTokenDialog(restart) {
  $("#token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("#token-input").value.trim());
    $("#token-dialog").close();
    restart();
  });
  $("#token-button").addEventListener("click", () => askToken("Change or forget the stored token."));
}

/** A 401 asks for a token; a 403 on a write means a viewer's token: hide the write buttons. */
export function onAuthError(ctx, err) {
  if (err.status === 401) askToken("The server refused the token (401). Paste a valid token.");
  else if (ctx.role === "editor") {
    ctx.role = "viewer";
    document.body.classList.remove("can-write");
    toast("This token may only read (viewer): write buttons hidden.", "error");
  }
}
