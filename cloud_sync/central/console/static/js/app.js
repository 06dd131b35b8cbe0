// The console shell: session, header and navigation, and the hash router.
import { dropPrefetched, get, post, setUnauthorizedHandler } from "./api.js";
import { t, lang, setLang, onLangChange } from "./i18n.js";
import { esc } from "./util.js";

const VIEWS = {
  login: () => import("./views/login.js"),
  fleet: () => import("./views/fleet.js"),
  alarms: () => import("./views/alarms.js"),
  history: () => import("./views/history.js"),
  points: () => import("./views/points.js"),
  audit: () => import("./views/audit.js"),
  users: () => import("./views/users.js"),
  commands: () => import("./views/commands.js"),
  trust: () => import("./views/trust.js"),
};

const ROUTES = [
  { re: /^\/setup$/, view: "login", arg: "setup", open: true },
  { re: /^\/login$/, view: "login", arg: "login", open: true },
  { re: /^\/fleet$/, view: "fleet", nav: "fleet" },
  { re: /^\/alarms$/, view: "alarms", nav: "alarms" },
  { re: /^\/history$/, view: "history", nav: "history" },
  { re: /^\/points(?:\/(.+))?$/, view: "points", nav: "points" },
  { re: /^\/audit$/, view: "audit", nav: "audit", perm: "batch_audit" },
  { re: /^\/users$/, view: "users", nav: "users", perm: "users" },
  { re: /^\/commands(?:\/(.+))?$/, view: "commands", nav: "commands", perm: "commands" },
  { re: /^\/trust$/, view: "trust", nav: "trust", perm: "trust" },
];

const NAV = [
  { id: "fleet" },
  { id: "alarms" },
  { id: "history" },
  { id: "points" },
  { id: "commands", perm: "commands" },
  { id: "audit", perm: "batch_audit" },
  { id: "users", perm: "console_audit" },
  { id: "trust", perm: "trust" },
];

export const session = { user: null, setupNeeded: false };
let cleanup = null;
let routeSeq = 0;

export function can(permission) {
  return Boolean(session.user && session.user.permissions.includes(permission));
}

async function loadSession() {
  const data = await get("/console/api/session");
  session.user = data.user || null;
  session.setupNeeded = Boolean(data.setup_needed);
}

/** After a successful login or setup: the account's own language wins over the browser's. */
export async function signedIn() {
  dropPrefetched();
  await loadSession();
  if (session.user && session.user.lang && session.user.lang !== lang()) setLang(session.user.lang);
  location.hash = "#/fleet";
  await route();
}

function renderShell() {
  const top = document.getElementById("top");
  top.hidden = !session.user;
  document.getElementById("brand").textContent = t("brand");
  document.getElementById("lang-switch").textContent = t("lang_other");
  document.getElementById("logout").textContent = t("logout");
  if (!session.user) return;
  const u = session.user;
  const where = u.estates ? ` · ${u.estates.join(", ")}` : "";
  document.getElementById("who").textContent = `${u.name || u.username} (${t(`role_${u.role}`)})${where}`;
  const current = (location.hash.slice(2).split("/")[0] || "fleet");
  document.getElementById("nav").innerHTML = NAV.filter((n) => !n.perm || can(n.perm))
    .map((n) => `<a href="#/${n.id}" data-testid="nav-${n.id}" class="${n.id === current ? "active" : ""}">${esc(t(`nav_${n.id}`))}</a>`)
    .join("");
}

async function route() {
  const seq = ++routeSeq;
  const path = location.hash.slice(1) || "/fleet";
  let match = null;
  let found = ROUTES[0];
  for (const r of ROUTES) {
    match = path.match(r.re);
    if (match) {
      found = r;
      break;
    }
  }
  if (!match) {
    location.hash = session.user ? "#/fleet" : "#/login";
    return;
  }
  if (!found.open && !session.user) {
    location.hash = session.setupNeeded ? "#/setup" : "#/login";
    return;
  }
  if (found.open && session.user) {
    location.hash = "#/fleet";
    return;
  }
  if (found.perm && !can(found.perm)) {
    location.hash = "#/fleet";
    return;
  }
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  renderShell();
  const view = document.getElementById("view");
  const module = await VIEWS[found.view]();
  if (seq !== routeSeq) return;
  // Each view gets a container of its own: a late answer to a view already left then lands in
  // its detached container, never in the next view's.
  const container = document.createElement("div");
  container.className = `view-${found.view}`;
  view.replaceChildren(container);
  const done = (await module.render(container, found.arg ?? (match[1] ? decodeURIComponent(match[1]) : null))) || null;
  if (seq === routeSeq) cleanup = done;
  else if (done) done(); // left while it was loading
}

async function start() {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  setUnauthorizedHandler(async () => {
    session.user = null;
    location.hash = "#/login";
  });
  document.getElementById("lang-switch").addEventListener("click", async () => {
    setLang(lang() === "zh" ? "en" : "zh");
    if (session.user) post("/console/api/me/lang", { lang: lang() }).catch(() => {});
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await post("/console/api/logout").catch(() => {});
    session.user = null;
    location.hash = "#/login";
  });
  onLangChange(() => route());
  window.addEventListener("hashchange", () => route());
  try {
    await loadSession();
  } catch (err) {
    document.getElementById("view").innerHTML = `<p class="pad error">${esc(String(err.message || err))}</p>`;
    return;
  }
  if (session.user && session.user.lang && session.user.lang !== lang()) setLang(session.user.lang);
  await route();
}

start();
