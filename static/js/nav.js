// Where the page is, in the URL: a dashboard at /d/{slug}?{state}, every other page at
// /#/{page}?{state}. Pages write their state (VM, range, series, zoom) back with replaceState, so
// the address bar is always a link that reopens the same view; in-app links use pushState.

const DASHBOARD_PATH = /^\/d\/([a-z0-9][a-z0-9-]*)\/?$/;

/** The route of the current URL: {page, slug, params}; page is null at a bare "/". */
export function currentRoute() {
  const dash = location.pathname.match(DASHBOARD_PATH);
  if (dash) return { page: "dashboard", slug: dash[1], params: new URLSearchParams(location.search) };
  const [, page = null, query = ""] = location.hash.match(/^#\/(\w+)\??(.*)$/) || [];
  return { page, slug: null, params: new URLSearchParams(query) };
}

/** The URL of a route: `page` with `params` ({name: value or [values]}, empty ones dropped). */
export function routeUrl(page, params = {}, slug = null) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of [value].flat()) if (v !== null && v !== undefined && v !== "") q.append(key, String(v));
  }
  const query = q.toString();
  if (page === "dashboard") return `/d/${slug}${query ? `?${query}` : ""}`;
  return `/#/${page}${query ? `?${query}` : ""}`;
}

let onNavigate = () => {};
let routedHref = null;

/** Rewrites the current URL with `params` merged in (null drops one); no navigation, no history. */
export function setParams(params) {
  const { page, slug, params: now } = currentRoute();
  const merged = Object.fromEntries([...new Set(now.keys())].map((k) => [k, now.getAll(k)]));
  Object.assign(merged, params);
  history.replaceState(null, "", routeUrl(page || "live", merged, slug));
  routedHref = location.href;
}

/** Goes to `url` inside the app (a new history entry), then routes. */
export function go(url) {
  history.pushState(null, "", url);
  route();
}

/** Replaces the current URL with `url` (no new history entry), then routes. */
export function redirect(url) {
  history.replaceState(null, "", url);
  route();
}

/** Routes again even though the URL is unchanged (a new VM, a new token). */
export function reroute() {
  routedHref = null;
  route();
}

function route() {
  if (location.href === routedHref) return; // popstate and hashchange both fire for a #link
  routedHref = location.href;
  onNavigate(currentRoute());
}

/** Calls `fn(route)` on every navigation (back/forward, #links, in-app links) and reroute(). */
export function startRouting(fn) {
  onNavigate = fn;
  window.addEventListener("popstate", route);
  window.addEventListener("hashchange", route);
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest?.("a[href]");
    if (!a || a.target || a.hasAttribute("download") || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    const url = new URL(a.href);
    if (url.origin !== location.origin || !(url.pathname === "/" || DASHBOARD_PATH.test(url.pathname))) return;
    ev.preventDefault();
    go(url.pathname + url.search + url.hash);
  });
}

/** Copies the current URL to the clipboard; falls back to a prompt where the browser refuses. */
export async function copyLink(toast) {
  try {
    await navigator.clipboard.writeText(location.href);
    toast("Link copied: it reopens this view.");
  } catch {
    window.prompt("Copy this link:", location.href);
  }
}
