// Site view: buildings → devices → points, with online/offline/fault state and live values.
// One innerHTML pass for the whole tree; later SSE values touch only the changed cells.
import { on, state as live } from "../live.js";
import { t, nameOf } from "../i18n.js";
import { esc, errorText } from "../util.js";
import { loadSite, pointIdOf, shortIdOf, pointText, currentValue, alarmsByDevice, deviceStatus, statusLabel } from "./sitedata.js";

let firstRenderMarked = false;

// A long device (a fire panel has 41 points) shows its first points; the rest fold away, and
// unfold by themselves when one of them is in alarm.
const SHOWN = 12;

function alarmedPoints() {
  const out = new Set();
  for (const row of live.alarms.values()) if (row.point && row.state !== "shelved") out.add(row.point);
  return out;
}

function deviceHtml(siteId, d, alarms, alarmed) {
  const points = d.points || [];
  const info = alarms.get(d.id);
  const status = deviceStatus(d, info, points);
  const meta = [d.floor ? `${t("floor")} ${d.floor}` : "", d.zone || "", d.location || ""].filter(Boolean).join(" · ");
  let restAlarmed = false;
  const items = points.map((p, i) => {
    const pid = pointIdOf(siteId, d, p);
    const [value, quality] = currentValue(pid, p);
    const inAlarm = alarmed.has(pid);
    if (inAlarm && i >= SHOWN) restAlarmed = true;
    return `<li${inAlarm ? ' class="pt-alarm"' : ""}><span title="${esc(shortIdOf(p))}">${esc(nameOf(p))}</span><span class="pv q-${esc(quality || "none")}"
 data-testid="point-value" data-point="${esc(pid)}" title="${esc(quality || "")}">${esc(pointText(p, value))}</span></li>`;
  });
  const rest = items.length > SHOWN + 2 ? items.splice(SHOWN) : [];
  const rows =
    items.join("") +
    (rest.length
      ? `<li class="more"><details${restAlarmed ? " open" : ""}><summary>${esc(t("more_points", { n: rest.length }))}</summary>
         <ul class="pts">${rest.join("")}</ul></details></li>`
      : "");
  return `<article class="dev st-${status}" data-testid="device-row" data-device="${esc(d.id)}" data-search="${esc(
    `${d.id} ${d.name || ""} ${d.name_zh || ""} ${d.zone || ""} ${points.map((p) => `${shortIdOf(p)} ${p.name || ""} ${p.name_zh || ""}`).join(" ")}`.toLowerCase(),
  )}">
  <div class="dev-head"><a href="#/device/${encodeURIComponent(d.id)}">${esc(nameOf(d))}</a>
    <span class="dev-state"><span class="dot ${status === "off" ? "off" : status === "fault" ? "fault" : status === "unknown" ? "" : "on"}"></span>${esc(
      statusLabel(status),
    )}${info && info.count ? ` <span class="alarm-pill">${esc(t("alarms_n", { n: info.count }))}</span>` : ""}</span></div>
  <div class="dev-meta">${esc(d.id)}${meta ? ` · ${esc(meta)}` : ""} · ${esc(t("points_n", { n: points.length }))}</div>
  <ul class="pts">${rows}</ul></article>`;
}

export function mount(el) {
  el.innerHTML = `<div class="toolbar"><h1>${esc(t("site_title"))}</h1><span class="muted" id="site-sum"></span>
    <div class="spacer"></div><input type="search" id="site-filter" placeholder="${esc(t("site_filter"))}" data-testid="site-filter"></div>
    <div class="site-tree" id="site-tree" data-testid="site-tree"><p class="muted">${esc(t("loading"))}</p></div>`;
  const tree = el.querySelector("#site-tree");
  let site = null;
  let cells = new Map();
  let pointOf = new Map();
  let offs = [];
  let alive = true;

  function render() {
    const alarms = alarmsByDevice();
    const alarmed = alarmedPoints();
    const siteId = site.site && site.site.id ? site.site.id : site.site || "";
    let nDev = 0;
    let nPts = 0;
    // A redraw keeps the folds the user opened.
    const opened = new Set(Array.from(tree.querySelectorAll(".dev details[open]"), (el) => el.closest(".dev").dataset.device));
    tree.innerHTML = (site.buildings || [])
      .map((b) => {
        nDev += b.devices.length;
        for (const d of b.devices) nPts += (d.points || []).length;
        return `<section class="bld" data-building="${esc(b.id || "")}"><h2>${esc(b.id || t("no_building"))}
          <small>${esc(t("devices_n", { n: b.devices.length }))}</small></h2>
          <div class="devs">${b.devices.map((d) => deviceHtml(siteId, d, alarms, alarmed)).join("")}</div></section>`;
      })
      .join("");
    el.querySelector("#site-sum").textContent = `${t("devices_n", { n: nDev })} · ${t("points_n", { n: nPts })}`;
    for (const id of opened) {
      const fold = tree.querySelector(`.dev[data-device="${CSS.escape(id)}"] details`);
      if (fold) fold.open = true;
    }
    cells = new Map();
    pointOf = new Map();
    for (const b of site.buildings || []) for (const d of b.devices) for (const p of d.points || []) pointOf.set(pointIdOf(siteId, d, p), p);
    for (const cell of tree.querySelectorAll("[data-point]")) cells.set(cell.dataset.point, cell);
    applyFilter();
    if (!firstRenderMarked) {
      firstRenderMarked = true;
      performance.mark("gh:site-rendered", { detail: { points: nPts } });
    }
  }

  function updateValues(changed) {
    for (const id of changed) {
      const cell = cells.get(id);
      if (!cell) continue;
      const v = live.values.get(id);
      if (!v) continue; // dropped by a newer snapshot since it was pushed
      const [value, quality] = v;
      cell.textContent = pointText(pointOf.get(id), value);
      cell.className = `pv q-${quality || "none"}`;
      cell.title = quality || "";
    }
  }

  function applyFilter() {
    const q = el.querySelector("#site-filter").value.trim().toLowerCase();
    for (const card of tree.querySelectorAll(".dev")) card.hidden = Boolean(q) && !card.dataset.search.includes(q);
  }

  el.querySelector("#site-filter").addEventListener("input", applyFilter);
  loadSite(true)
    .then((data) => {
      if (!alive) return;
      site = data;
      render();
      let pending = null;
      const rerender = () => {
        // Device state and alarm pills change rarely; redraw the tree at most once a second.
        if (pending) return;
        pending = setTimeout(() => {
          pending = null;
          if (alive) render();
        }, 1000);
      };
      offs = [on("values", updateValues), on("device", rerender), on("alarms", rerender)];
    })
    .catch((err) => {
      tree.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    });
  return () => {
    alive = false;
    for (const off of offs) off();
  };
}
