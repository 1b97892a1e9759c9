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

/** An HTTP error whose message is the API's sentence (app/api/errors.py: detail and errno). */
export class ApiError extends Error {
  constructor(status, body) {
    super(describeDetail(body, status));
    this.status = status;
  }
}

/**
 * One readable sentence from an error body: `{detail, errno}` (plus `errors` for a 422 of the
 * request's shape), or the plain text a proxy or a crashed server may answer with.
 */
function describeDetail(body, status) {
  const text = String(body?.detail || (typeof body === "string" && body) || `HTTP ${status}`);
  // The kernel's errno name leads (EEXIST...); a plain rule failure (422 with `errors`) needs none.
  const errno = !body?.errors && body?.errno;
  return errno && !text.includes(errno) ? `${errno}: ${text}` : text;
}

// Listeners for 401 (ask for a token) and 403 (this token may not write).
const authListeners = new Set();
export function onAuthProblem(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

/** The response's JSON, its text if it is not JSON, or null when empty. */
async function readBody(resp) {
  const text = await resp.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
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
  const data = await readBody(resp);
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

/**
 * Downloads `path` (with the token header) as a file; links can't carry a bearer token. With a
 * `body` it is a POST of that JSON (the ad-hoc panel data export).
 */
export async function download(path, filename, body) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const init = body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) };
  const resp = await fetch(path, init);
  if (!resp.ok) throw new ApiError(resp.status, await readBody(resp));
  const url = URL.createObjectURL(await resp.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Who am I: {tokensRequired, role}; with no tokens on the server the role is "editor". */
export async function whoami() {
  const me = await api.get("/api/auth"); // never 401: an unknown token gets role null
  return { tokensRequired: me.tokens_required, role: me.role };
}

/** Query string asking for registrations in every state (the API's default hides removed). */
export const ALL_STATES_QUERY = ["pending", "active", "failed", "removing", "removed"]
  .map((s) => `state=${s}`).join("&");
