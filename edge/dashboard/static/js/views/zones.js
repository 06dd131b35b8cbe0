// Zone view, as a fire panel's zone lamps: one card per zone the site uses (the site file's
// `zones:`, by name), worst state first in colour — fire (red, flashing), fault or offline
// devices (yellow), supervisory (amber), normal (green) — with the devices in alarm named. A
// zone with a floor plan shows it with its devices as pins. Cards reflow to one column on a
// phone, so a 390 px screen reads as well as a desk. While the link to the gateway is down no
// zone reads "normal": every card says "unknown" and keeps its last alarms, marked stale.
import { get } from "../api.js";
import { on, state as live, isStale } from "../live.js";
import { t, pick, nameOf } from "../i18n.js";
import { esc, deviceOfPoint, errorText, placeOf } from "../util.js";
import { loadSite, devicesOf, onlineOf } from "./sitedata.js";
import { classLabel } from "./alarmrow.js";

const RANK = { fire: 0, fault: 1, supervisory: 2 };

function zoneName(z) {
  return pick({ zh: z.name_zh || z.name, en: z.name || z.name_zh }) || t("zone_n", { z: z.id });
}

/** Live alarms per zone id, from the SSE-fed alarm list (not the zone snapshot's counts). */
function zoneAlarms() {
  const out = new Map();
  for (const row of live.alarms.values()) {
    if (row.state === "shelved" || !row.zone) continue;
    const e = out.get(row.zone) || { rows: [], worst: null, fire: 0 };
    e.rows.push(row);
    const k = row.class || "other";
    if (k === "fire") e.fire++;
    if (e.worst === null || (RANK[k] ?? 9) < (RANK[e.worst] ?? 9)) e.worst = k;
    out.set(row.zone, e);
  }
  return out;
}

function cardHtml(z, za, devices, stale) {
  const offline = devices.filter((d) => onlineOf(d) === false);
  let cls = "";
  let stateKey = "normal";
  let text = t("zone_ok");
  if (za && za.fire) {
    cls = "alarm-fire";
    stateKey = "fire";
    text = t("zone_fire", { n: za.fire });
  } else if (za && za.worst) {
    cls = `alarm-${RANK[za.worst] !== undefined ? za.worst : "other"}`;
    stateKey = za.worst;
    text = t("zone_alarm", { c: classLabel(za.worst === "other" ? null : za.worst), n: za.rows.length });
  } else if (offline.length) {
    cls = "offline";
    stateKey = "offline";
    text = t("zone_offline", { n: offline.length });
  }
  if (stale && stateKey === "normal") {
    cls = "unknown";
    stateKey = "unknown";
    text = t("zone_unknown");
  } else if (stale) {
    text = `${text} · ${t("stale_mark")}`;
  }
  const drill = live.drills.some((d) => d.zone === z.id || !d.zone);
  const alarmed = (za ? za.rows : [])
    .slice()
    .sort((a, b) => (RANK[a.class] ?? 9) - (RANK[b.class] ?? 9))
    .slice(0, 6)
    .map((r) => `<li>${esc(classLabel(r.class))} · ${esc(pick(r.message))}<br><small>${esc(placeOf({ ...r, zone_name: null, zone_name_zh: null, zone: null }))}</small></li>`)
    .join("");
  const offlineList = offline
    .slice(0, 6)
    .map((d) => `<li>${esc(t("comm_device", { d: nameOf(d) }))}</li>`)
    .join("");
  const where = [z.building, z.floor ? t("floor_n", { f: z.floor }) : ""].filter(Boolean).join(" ");
  return `<section class="zcard ${cls}" data-testid="zone-card" data-zone="${esc(z.id)}" data-state="${esc(stateKey)}" data-alarm="${za ? esc(za.worst) : ""}">
    <h3>${esc(zoneName(z))}</h3>
    <div class="zid">${esc(t("zone_n", { z: z.id }))}${where ? ` · ${esc(where)}` : ""} · ${esc(t("zone_devices_n", { n: devices.length }))}${drill ? ` · <span class="drill-tag">${esc(t("drill_tag"))}</span>` : ""}</div>
    <div class="zstate" data-testid="zone-state">${esc(text)}</div>
    ${alarmed || offlineList ? `<ul>${alarmed}${offlineList}</ul>` : ""}
    ${z.plan ? planHtml(z, devices, za) : ""}
  </section>`;
}

function planHtml(z, devices, za) {
  const alarmedDevices = new Set((za ? za.rows : []).map((r) => r.device || deviceOfPoint(r.point)));
  const byId = new Map(devices.map((d) => [d.id, d]));
  const pins = Object.entries(z.positions || {})
    .map(([id, [x, y]]) => {
      const d = byId.get(id) || { id };
      const c = alarmedDevices.has(id) ? "pin alarm" : onlineOf(d) === false ? "pin off" : "pin";
      return `<a class="${c}" data-pin="${esc(id)}" data-x="${Number(x)}" data-y="${Number(y)}" href="#/device/${encodeURIComponent(id)}" title="${esc(nameOf(d))}"></a>`;
    })
    .join("");
  return `<div class="zplan" data-testid="zone-plan"><img alt="${esc(zoneName(z))}" src="/api/zones/${encodeURIComponent(z.id)}/plan">${pins}</div>`;
}

/** Pins are placed in image pixels; once the image is loaded they become percentages. */
function placePins(box) {
  for (const plan of box.querySelectorAll(".zplan")) {
    const img = plan.querySelector("img");
    const place = () => {
      const w = img.naturalWidth || 1;
      const h = img.naturalHeight || 1;
      for (const pin of plan.querySelectorAll(".pin")) {
        pin.style.left = `${(100 * Number(pin.dataset.x)) / w}%`;
        pin.style.top = `${(100 * Number(pin.dataset.y)) / h}%`;
      }
    };
    if (img.complete) place();
    else img.addEventListener("load", place, { once: true });
  }
}

export function mount(el) {
  el.innerHTML = `<div class="toolbar"><h1>${esc(t("zones_title"))}</h1></div><div id="zmap"><p class="muted">${esc(t("loading"))}</p></div>`;
  const box = el.querySelector("#zmap");
  let alive = true;
  let offs = [];
  let data = null;
  const render = () => {
    if (!alive || !data) return;
    const za = zoneAlarms();
    const stale = isStale() && live.link !== "connecting";
    const devices = devicesOf(data.site);
    const zones = [...data.zones];
    // an alarm is never hidden: a zone outside the list still gets a card while it has one
    for (const id of za.keys()) if (!zones.some((z) => z.id === id)) zones.push({ id, devices: [] });
    // Fire first, then the other alarms, then the rest in the order of the site file.
    const rank = (z) => {
      const a = za.get(z.id);
      return a && a.fire ? 0 : a ? 1 : 2;
    };
    zones.sort((a, b) => rank(a) - rank(b));
    box.innerHTML = `<div class="zcards" data-testid="zone-cards">${zones
      .map((z) => cardHtml(z, za.get(z.id), devices.filter((d) => (z.devices || []).includes(d.id)), stale))
      .join("")}</div>`;
    placePins(box);
  };
  Promise.all([loadSite(), get("/api/zones")])
    .then(([site, z]) => {
      data = { site, zones: z.zones || [] };
      render();
      offs = [on("alarms", render), on("device", render), on("conn", render)];
    })
    .catch((err) => {
      box.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    });
  return () => {
    alive = false;
    for (const off of offs) off();
  };
}
