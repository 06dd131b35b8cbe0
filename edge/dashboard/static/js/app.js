// The one-page app: session, shell (header, navigation, fire banner) and the hash router.
import { get, post, setCsrf, setUnauthorizedHandler } from "./api.js";
import { t, lang, setLang, onLangChange, nameOf } from "./i18n.js";
import { connect, disconnect, on, counts, state as live, setSessionGoneHandler, isStale } from "./live.js";
import { startAlert, stopAlert, silence } from "./alert.js";
import { startTrust, stopTrust, rerenderTrust } from "./trust.js";
import { esc, fmtTime, errorText } from "./util.js";
import { toast } from "./dialog.js";

// Views load on first use (dynamic import, still all from this folder): the first page then
// waits only for the shell and its own view. index.html preloads the duty view's modules.
const VIEWS = {
  login: () => import("./views/login.js"),
  duty: () => import("./views/duty.js"),
  history: () => import("./views/history.js"),
  stats: () => import("./views/stats.js"),
  site: () => import("./views/site.js"),
  device: () => import("./views/device.js"),
  zones: () => import("./views/zones.js"),
  health: () => import("./views/health.js"),
  tech: () => import("./views/tech.js"),
  admin: () => import("./views/admin.js"),
  devices: () => import("./views/devices.js"),
};

const ROUTES = [
  { re: /^\/setup$/, view: "login", arg: "setup", open: true },
  { re: /^\/login$/, view: "login", arg: "login", open: true },
  { re: /^\/duty$/, view: "duty", nav: "duty" },
  { re: /^\/history$/, view: "history", nav: "history" },
  { re: /^\/stats$/, view: "stats", nav: "stats" },
  { re: /^\/site$/, view: "site", nav: "site" },
  { re: /^\/device\/(.+)$/, view: "device", nav: "site" },
  { re: /^\/zones$/, view: "zones", nav: "zones" },
  { re: /^\/health$/, view: "health", nav: "health" },
  { re: /^\/tech(?:\/(.+))?$/, view: "tech", nav: "tech", perm: "commission" },
  { re: /^\/admin\/users$/, view: "admin", arg: "users", nav: "admin", perm: "users" },
  { re: /^\/admin\/audit$/, view: "admin", arg: "audit", nav: "audit", perm: "audit" },
  { re: /^\/admin\/devices$/, view: "devices", nav: "devices", perm: "config" },
];

const NAV = [
  { id: "duty", href: "#/duty" },
  { id: "history", href: "#/history" },
  { id: "stats", href: "#/stats" },
  { id: "site", href: "#/site" },
  { id: "zones", href: "#/zones" },
  { id: "health", href: "#/health" },
  { id: "tech", href: "#/tech", perm: "commission" },
  { id: "admin", href: "#/admin/users", perm: "users" },
  { id: "audit", href: "#/admin/audit", perm: "audit" },
  { id: "devices", href: "#/admin/devices", perm: "config" },
];

export const session = { user: null, site: null, setupNeeded: false, version: "" };
let cleanup = null;
let routeSeq = 0;

export function can(permission) {
  return Boolean(session.user && session.user.permissions && session.user.permissions.includes(permission));
}

async function loadSession() {
  const data = await get("/api/session");
  session.user = data.user || null;
  session.site = data.site || null;
  session.setupNeeded = Boolean(data.setup_needed);
  session.version = data.version || "";
  setCsrf(data.csrf);
  return data;
}

/** After a successful login or setup: the user's own language wins over the browser's. */
export async function signedIn() {
  // Responses fetched before signing in belong to no session.
  window.__ghPrefetch = null;
  await loadSession();
  if (session.user && session.user.lang && session.user.lang !== lang()) setLang(session.user.lang);
  if (!session.user) {
    location.hash = "#/login";
    return;
  }
  connect();
  startAlert(document.getElementById("banner"));
  startTrust(document.getElementById("revoked"));
  renderShell();
  location.hash = "#/duty";
  route();
}

function renderShell() {
  const top = document.getElementById("top");
  if (!session.user) {
    top.hidden = true;
    return;
  }
  top.hidden = false;
  document.getElementById("site-name").textContent = session.site ? nameOf(session.site) : t("app_title");
  document.title = `${session.site ? nameOf(session.site) : ""} · ${t("app_title")}`;
  const nav = document.getElementById("nav");
  nav.innerHTML = NAV.filter((item) => !item.perm || can(item.perm))
    .map(
      (item) =>
        `<a href="${item.href}" data-nav="${item.id}" data-testid="nav-${item.id}">${esc(t(`nav_${item.id}`))}${
          item.id === "duty" ? '<span class="badge" id="unacked-badge" hidden></span>' : ""
        }</a>`,
    )
    .join("");
  document.getElementById("lang-switch").textContent = t("lang_other");
  document.getElementById("logout").textContent = t("logout");
  const u = session.user;
  document.getElementById("who").textContent = `${u.name || u.username} · ${t(`role_${u.role}`)}`;
  updateBadge();
  updateConn();
  markNav();
}

function updateBadge() {
  const badge = document.getElementById("unacked-badge");
  if (!badge) return;
  const n = counts().unacked;
  const stale = isStale() && live.link !== "connecting";
  // A count the page cannot vouch for reads "?", never a reassuring 0.
  badge.hidden = n === 0 && !stale;
  badge.textContent = stale ? `${n}?` : String(n);
  badge.classList.toggle("stale", stale);
}

/** The full-width "no connection — state unknown" bar: shown on every view while the page
 *  cannot know the gateway's state (stream down or silent, or resynchronising). */
function updateConn() {
  const el = document.getElementById("conn");
  const link = live.link;
  el.textContent = link === "live" ? t("conn_live") : link === "connecting" ? t("loading") : t("conn_lost");
  el.className = link === "live" ? "conn conn-ok" : "conn conn-lost";
  const bar = document.getElementById("nolink");
  const show = Boolean(session.user) && (link === "lost" || (link === "resync" && live.lostAt != null));
  bar.hidden = !show;
  document.body.classList.toggle("no-link", show);
  document.body.dataset.link = link;
  if (!show) {
    bar.innerHTML = "";
    updateBadge();
    return;
  }
  const since = live.lostAt != null ? fmtTime(live.lostAt).slice(11) : "—";
  bar.innerHTML = `<div class="nolink-text">
      <strong data-testid="nolink-title">${esc(t("nolink_title", { t: since }))}</strong>
      <span>${esc(link === "resync" ? t("nolink_resync") : t("nolink_hint"))}</span>
    </div>
    <div class="nolink-actions">${document.body.dataset.tone === "fault" ? `<button class="btn" data-act="silence" data-testid="nolink-silence">${esc(t("silence"))}</button>` : ""}</div>`;
  updateBadge();
}

function markNav(navId) {
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.nav === navId);
}

function route() {
  const path = (location.hash || "#/duty").slice(1) || "/duty";
  const seq = ++routeSeq;
  if (session.setupNeeded && path !== "/setup") {
    location.hash = "#/setup";
    return;
  }
  if (!session.setupNeeded && !session.user && path !== "/login") {
    location.hash = "#/login";
    return;
  }
  let match = null;
  let found = null;
  for (const r of ROUTES) {
    match = path.match(r.re);
    if (match) {
      found = r;
      break;
    }
  }
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
    cleanup = null;
  }
  // Each view gets a fresh element, so listeners a view put on it go away with it.
  const main = document.getElementById("view");
  main.innerHTML = "";
  window.scrollTo(0, 0);
  const el = document.createElement("div");
  el.className = "view";
  main.appendChild(el);
  if (!found) {
    el.innerHTML = `<p class="pad">${esc(t("not_found"))}</p>`;
    return;
  }
  if (found.open && session.user) {
    location.hash = "#/duty";
    return;
  }
  if (found.perm && !can(found.perm)) {
    el.innerHTML = `<p class="pad">${esc(t("err_forbidden"))}</p>`;
    return;
  }
  markNav(found.nav);
  const ctx = { session, can, arg: found.arg, params: match.slice(1).map((p) => (p ? decodeURIComponent(p) : p)), signedIn };
  VIEWS[found.view]()
    .then((view) => {
      if (seq !== routeSeq) return; // the user has moved on meanwhile
      const result = view.mount(el, ctx);
      if (typeof result === "function") cleanup = result;
    })
    .catch((err) => {
      el.innerHTML = `<p class="pad error">${esc(errorText({ body: { error: "network", detail: String(err) } }))}</p>`;
    });
}

function sessionLost(body) {
  if (!session.user) return;
  session.user = null;
  disconnect();
  stopAlert();
  stopTrust();
  renderShell();
  location.hash = "#/login";
  toast(errorText({ body }), "error");
}

async function logout() {
  try {
    await post("/api/logout");
  } catch {
    // The session is gone either way: the server forgets it or it had expired.
  }
  session.user = null;
  disconnect();
  stopAlert();
  stopTrust();
  renderShell();
  location.hash = "#/login";
}

async function switchLang() {
  const next = lang() === "zh" ? "en" : "zh";
  setLang(next);
  if (session.user) post("/api/me/lang", { lang: next }).catch(() => {});
}

function tickClock() {
  const el = document.getElementById("clock");
  if (el) el.textContent = fmtTime(Date.now() / 1000 + live.serverSkewS).slice(5);
}

async function boot() {
  setUnauthorizedHandler(sessionLost);
  setSessionGoneHandler(sessionLost);
  document.getElementById("lang-switch").addEventListener("click", switchLang);
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  onLangChange(() => {
    renderShell();
    rerenderTrust();
    route();
  });
  on("alarms", updateBadge);
  on("alarms", updateConn);
  on("conn", updateConn);
  document.getElementById("nolink").addEventListener("click", (event) => {
    if (event.target.closest("[data-act=silence]")) {
      silence();
      updateConn();
    }
  });
  setInterval(tickClock, 1000);
  try {
    await loadSession();
  } catch (err) {
    document.getElementById("view").innerHTML = `<p class="pad error">${esc(errorText(err))}</p>`;
    return;
  }
  if (session.user) {
    if (session.user.lang && session.user.lang !== lang() && !localStorage.getItem("gh_lang")) setLang(session.user.lang);
    connect();
    startAlert(document.getElementById("banner"));
    startTrust(document.getElementById("revoked"));
  }
  renderShell();
  tickClock();
  route();
  // Every view's code in the cache once the first page is up: a view opened while the gateway
  // is unreachable must still show its last known state, not a load error.
  setTimeout(() => {
    for (const load of Object.values(VIEWS)) load().catch(() => {});
  }, 2000);
}

boot();
