// Talks to the iosignal REST API: bearer token from localStorage, JSON in and out, errors that
// carry the server's detail and errno so pages can show them as the API wrote them.

const TOKEN_KEY = "iosignal.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An HTTP error with the API's `detail` (string or pydantic list) and `errno` name. */
export class ApiError extends Error {
  constructor(status, body) {
    super(describeDetail(body, status));
    this.status = status;
    this.body = body;
    this.errno = body && typeof body === "object" ? body.errno || null : null;
  }
}

/** One readable sentence from a FastAPI error body (string detail or a list of rule failures). */
export function describeDetail(body, status) {
  const detail = body && typeof body === "object" ? body.detail : body;
  let text;
  if (Array.isArray(detail)) {
    text = detail
      .map((d) => {
        const where = (d.loc || []).filter((p) => p !== "body").join(".");
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join("; ");
  } else if (detail && typeof detail === "object") {
    text = detail.message || JSON.stringify(detail);
  } else {
    text = detail || `HTTP ${status}`;
  }
  // The kernel's errno name leads (EEXIST...); a plain rule failure (422 with `errors`) needs none.
  const errno = body && typeof body === "object" && !Array.isArray(body.errors) && body.errno;
  return errno && !String(text).includes(errno) ? `${errno}: ${text}` : String(text);
}

// Listeners for 401 (ask for a token) and 403 (this token may not write).
const authListeners = new Set();
export function onAuthProblem(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

/** fetch + JSON with the stored token; resolves {status, data}, rejects with ApiError. */
export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (resp.status === 401 || resp.status === 403) authListeners.forEach((fn) => fn(err));
    throw err;
  }
  return { status: resp.status, data };
}

export const api = {
  get: (path) => request("GET", path).then((r) => r.data),
  post: (path, body) => request("POST", path, body),
  put: (path, body) => request("PUT", path, body),
  del: (path) => request("DELETE", path),
};

/** Downloads `path` (with the token header) as a file; links can't carry a bearer token. */
export async function download(path, filename) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(path, { headers });
  if (!resp.ok) throw new ApiError(resp.status, await resp.text());
  const url = URL.createObjectURL(await resp.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Who am I: {tokensRequired, role}. Uses GET /api/auth when the server has it; otherwise a 401 on
 * /api/vms means tokens are required, and with no way to ask, a token is assumed to be an editor's
 * until a write answers 403.
 */
export async function whoami() {
  try {
    const me = await api.get("/api/auth");
    const tokensRequired = Boolean(me.tokens_required);
    // With no tokens on the server anyone may write: act as an editor.
    return { tokensRequired, role: tokensRequired ? me.role || null : "editor" };
  } catch (err) {
    if (err.status === 401) return { tokensRequired: true, role: null };
    if (err.status !== 404 && err.status !== 405) throw err;
  }
  try {
    await api.get("/api/vms");
    return { tokensRequired: Boolean(getToken()), role: "editor" };
  } catch (err) {
    if (err.status === 401) return { tokensRequired: true, role: null };
    throw err;
  }
}

/** Query string asking for registrations in every state (the API's default hides removed). */
export const ALL_STATES = ["pending", "active", "failed", "removing", "removed"]
  .map((s) => `state=${s}`).join("&");
