// Fleet overview: every estate and gateway, one page of 100 rows at a time (1,000 gateways
// stay fast: the rows are fetched once, filtered in memory, and only one page is in the DOM).
import { ApiError, get, getAll } from "../api.js";
import { t, label } from "../i18n.js";
import { esc, fmtTime, fmtDuration, total, query, errorText } from "../util.js";

const PAGE = 100;
const CLASSES = ["fire", "supervisory", "fault", "security", "other"];

/** The fleet rows; a central without /api/v1/fleet yet answers from /api/v1/gateways. */
async function loadFleet() {
  try {
    return await getAll(`/api/v1/fleet${query({ limit: 1000 })}`);
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 405)) throw err;
  }
  const gateways = await get("/api/v1/gateways");
  return gateways.map((g) => ({
    gateway_id: g.gateway_id,
    estate: g.estate || g.gateway_id,
    name: g.name || null,
    online: g.online,
    state: g.state,
    last_seen: g.last_seen,
    last_batch_at: null,
    backlog: g.backlog,
    oldest_unacked_age_s: null,
    firmware_version: null,
    config_version: null,
    active_alarms: {},
  }));
}

export function alarmBadges(counts) {
  if (!counts) return "";
  return Object.entries(counts)
    .filter(([, n]) => n)
    .sort((a, b) => CLASSES.indexOf(a[0]) - CLASSES.indexOf(b[0]))
    .map(([cls, n]) => `<span class="badge cls-${esc(cls)}" title="${esc(label("cls", cls))}">${esc(label("cls", cls))} ${n}</span>`)
    .join("");
}

function stateDot(row) {
  const cls = row.online ? "on" : row.last_seen == null ? "unknown" : "off";
  return `<span class="dot ${cls}"></span>${esc(t(row.online ? "online" : row.last_seen == null ? "unknown" : "offline"))}`;
}

export async function render(root) {
  root.innerHTML = `
    <div class="cards" data-testid="estate-cards"></div>
    <div class="toolbar">
      <input class="grow" type="search" data-testid="fleet-filter" placeholder="${esc(t("filter"))}">
      <select data-testid="fleet-estate"><option value="">${esc(t("all_estates"))}</option></select>
      <select data-testid="fleet-state">
        <option value="">${esc(t("any_state"))}</option>
        <option value="online">${esc(t("online"))}</option>
        <option value="offline">${esc(t("offline"))}</option>
      </select>
    </div>
    <div class="error" data-testid="fleet-error"></div>
    <table data-testid="fleet-table">
      <thead><tr>
        <th>${esc(t("estate"))}</th><th>${esc(t("gateway"))}</th><th>${esc(t("state"))}</th>
        <th>${esc(t("last_seen"))}</th><th>${esc(t("last_batch"))}</th><th>${esc(t("backlog"))}</th>
        <th>${esc(t("oldest_unacked"))}</th><th>${esc(t("firmware"))}</th><th>${esc(t("config_version"))}</th>
        <th>${esc(t("active_alarms"))}</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    <div class="pager">
      <button class="btn btn-ghost btn-small" data-testid="fleet-prev">${esc(t("prev"))}</button>
      <span data-testid="fleet-count" class="muted"></span>
      <button class="btn btn-ghost btn-small" data-testid="fleet-next">${esc(t("next"))}</button>
    </div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  let rows = [];
  let page = 0;
  let shown = [];

  function filtered() {
    const text = $("fleet-filter").value.trim().toLowerCase();
    const estate = $("fleet-estate").value;
    const state = $("fleet-state").value;
    return rows.filter(
      (r) =>
        (!estate || r.estate === estate) &&
        (!state || (state === "online") === Boolean(r.online)) &&
        (!text || `${r.gateway_id} ${r.name || ""} ${r.estate || ""}`.toLowerCase().includes(text)),
    );
  }

  function draw() {
    shown = filtered();
    page = Math.min(page, Math.max(0, Math.ceil(shown.length / PAGE) - 1));
    const slice = shown.slice(page * PAGE, (page + 1) * PAGE);
    root.querySelector("tbody").innerHTML = slice
      .map(
        (r) => `<tr data-testid="fleet-row" data-gateway="${esc(r.gateway_id)}" data-estate="${esc(r.estate)}">
          <td>${esc(r.estate)}</td>
          <td>${r.name ? `${esc(r.name)} <span class="muted">${esc(r.gateway_id)}</span>` : esc(r.gateway_id)}</td>
          <td>${stateDot(r)}</td>
          <td>${esc(fmtTime(r.last_seen))}</td>
          <td>${esc(fmtTime(r.last_batch_at))}</td>
          <td>${esc(total(r.backlog) ?? "—")}</td>
          <td>${esc(fmtDuration(r.oldest_unacked_age_s))}</td>
          <td>${esc(r.firmware_version || "—")}</td>
          <td>${esc(r.config_version || "—")}</td>
          <td>${alarmBadges(r.active_alarms)}</td>
        </tr>`,
      )
      .join("");
    const a = shown.length ? page * PAGE + 1 : 0;
    $("fleet-count").textContent = t("shown_of", { a, b: page * PAGE + slice.length, n: shown.length });
    $("fleet-prev").disabled = page === 0;
    $("fleet-next").disabled = (page + 1) * PAGE >= shown.length;
  }

  function drawEstates(estates) {
    $("estate-cards").innerHTML = estates
      .map(
        (e) => `<div class="card" data-testid="estate-card" data-estate="${esc(e.estate)}">
          <h3>${esc(e.estate)}</h3>
          <div><span class="big">${e.online}</span> / ${e.gateways} ${esc(t("online"))}</div>
          <div>${alarmBadges(e.active_alarms)}</div></div>`,
      )
      .join("");
    const select = $("fleet-estate");
    for (const e of estates) select.insertAdjacentHTML("beforeend", `<option value="${esc(e.estate)}">${esc(e.estate)}</option>`);
  }

  let timer = null;
  $("fleet-filter").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      page = 0;
      draw();
    }, 120);
  });
  for (const id of ["fleet-estate", "fleet-state"]) $(id).addEventListener("change", () => ((page = 0), draw()));
  $("fleet-prev").addEventListener("click", () => ((page = Math.max(0, page - 1)), draw()));
  $("fleet-next").addEventListener("click", () => ((page += 1), draw()));

  try {
    // the estate cards from the rows themselves: one request, not two competing for central
    rows = await loadFleet();
    drawEstates(summarise(rows));
    draw();
    root.dataset.loaded = "1";
    $("fleet-table").dataset.loaded = String(rows.length);
    performance.mark("ghc:fleet-rendered"); // read by bench/central_dashboard.py
  } catch (err) {
    $("fleet-error").textContent = errorText(err);
  }
  return () => clearTimeout(timer);
}

/** Estate cards from the fleet rows (what /api/v1/estates answers, without a second request). */
function summarise(rows) {
  const by = new Map();
  for (const r of rows) {
    const e = by.get(r.estate) || { estate: r.estate, gateways: 0, online: 0, offline: 0, active_alarms: {} };
    e.gateways += 1;
    if (r.online) e.online += 1;
    else e.offline += 1;
    for (const [cls, n] of Object.entries(r.active_alarms || {})) e.active_alarms[cls] = (e.active_alarms[cls] || 0) + n;
    by.set(r.estate, e);
  }
  return [...by.values()].sort((a, b) => a.estate.localeCompare(b.estate));
}
