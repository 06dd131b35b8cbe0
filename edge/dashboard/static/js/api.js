// fetch wrapper: JSON in and out, the double-submit CSRF header on every state-changing request,
// and one place that turns the server's {"error": ...} bodies into ApiError.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let csrfToken = "";
let onUnauthorized = () => {};

export function setCsrf(token) {
  csrfToken = token || "";
}

/** Called with the error body when the server says the session is gone (401). */
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

export function csrf() {
  return cookie("gh_csrf") || csrfToken;
}

/** The response a classic script started before the modules loaded (js/prefetch.js), once. */
function takePrefetched(path) {
  const store = window.__ghPrefetch;
  if (!store || !store[path]) return null;
  const promise = store[path];
  delete store[path];
  return promise;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = csrf();
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
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    const silent = path === "/api/login" || path === "/api/setup";
    if (response.status === 401 && !silent) onUnauthorized(error.body);
    throw error;
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => api("PATCH", path, body);
