// fetch wrapper for the console: JSON in and out, the CSRF header on every change, the next
// cursor of a list (X-Next-Cursor), and {"error"}/{"detail"} bodies as ApiError.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.error || body.detail)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

/** The response js/prefetch.js started for `path` before the modules loaded, once. */
function takePrefetched(path) {
  const store = window.__ghcPrefetch;
  if (!store || !store[path]) return null;
  const promise = store[path];
  delete store[path];
  return promise;
}

/** Forget what was fetched before signing in (it belongs to no session). */
export function dropPrefetched() {
  window.__ghcPrefetch = null;
}

/** {data, next, status} of one request; throws ApiError on a non-2xx answer. */
export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = cookie("ghc_csrf");
    headers["X-Requested-With"] = "gatehouse";
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    const early = method === "GET" ? takePrefetched(path) : null;
    response = await (early || fetch(path, init));
  } catch (err) {
    throw new ApiError(0, { error: "network", detail: String(err) });
  }
  let data = null;
  if ((response.headers.get("content-type") || "").includes("json")) data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    const quiet = path.startsWith("/console/api/login") || path.startsWith("/console/api/setup");
    if (response.status === 401 && !quiet) onUnauthorized(error.body);
    throw error;
  }
  return { data, next: response.headers.get("X-Next-Cursor"), status: response.status };
}

export const get = async (path) => (await request("GET", path)).data;
export const post = async (path, body) => (await request("POST", path, body === undefined ? {} : body)).data;
export const patch = async (path, body) => (await request("PATCH", path, body)).data;

/** Every page of a cursor-paginated list, up to `max` rows. */
export async function getAll(path, { max = 100000 } = {}) {
  const rows = [];
  let cursor = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const url = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
    const { data, next } = await request("GET", url);
    rows.push(...(Array.isArray(data) ? data : data.items || []));
    if (!next || rows.length >= max) return rows;
    cursor = next;
  }
}
