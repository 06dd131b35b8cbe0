// Zone map: buildings as bands, their zones as boxes, each device as a dot. A zone with an
// active alarm takes its class colour (fire flashes) and the devices in alarm stand out.
import { get } from "../api.js";
import { on, state as live } from "../live.js";
import { t, nameOf } from "../i18n.js";
import { esc, deviceOfPoint, errorText } from "../util.js";
import { loadSite, devicesOf, onlineOf, alarmsByDevice } from "./sitedata.js";
import { classLabel } from "./alarmrow.js";

const W = 1200;
const RANK = { fire: 0, supervisory: 1, fault: 2 };
const TILE_W = 150;
const TILE_H = 54;
const DOT = 22;

function zoneAlarms(deviceZone) {
  const out = new Map();
  for (const row of live.alarms.values()) {
    if (row.state === "shelved") continue;
    const z = row.zone || deviceZone.get(row.device || deviceOfPoint(row.point));
    if (!z) continue;
    const e = out.get(z) || { count: 0, worst: null };
    e.count++;
    const k = row.class || "other";
    if (e.worst === null || (RANK[k] ?? 9) < (RANK[e.worst] ?? 9)) e.worst = k;
    out.set(z, e);
  }
  return out;
}

/** Floors top-down as a building is drawn: roof, upper floors, ground, basements, unknown. */
function floorRank(f) {
  if (f == null || f === "") return -1e6;
  const s = String(f).toUpperCase();
  if (s === "R" || s === "RF") return 1e5;
  const b = s.match(/^B(\d+)$/);
  if (b) return -Number(b[1]);
  const n = Number.parseFloat(s);
  return Number.isNaN(n) ? 0 : n;
}

function alarmClass(worst) {
  return RANK[worst] !== undefined ? worst : "other";
}

function zoneTiles(zones, zAlarms, y0) {
  const perRow = Math.max(1, Math.floor((W - 20) / (TILE_W + 10)));
  const parts = [];
  zones.forEach((z, i) => {
    const x = 10 + (i % perRow) * (TILE_W + 10);
    const y = y0 + Math.floor(i / perRow) * (TILE_H + 10);
    const za = zAlarms.get(z.id);
    const cls = za ? ` alarm-${alarmClass(za.worst)}` : "";
    parts.push(`<g data-zone="${esc(z.id)}" data-alarm="${za ? esc(za.worst) : ""}">
      <rect class="zbox${cls}" x="${x}" y="${y}" width="${TILE_W}" height="${TILE_H}" rx="6"/>
      <text x="${x + 10}" y="${y + 22}" font-weight="700">${esc(z.id)}</text>
      <text x="${x + 10}" y="${y + 42}">${esc(za ? `${classLabel(za.worst === "other" ? null : za.worst)} × ${za.count}` : t("zone_ok"))}</text></g>`);
  });
  const rows = Math.ceil(zones.length / perRow);
  return { svg: parts.join(""), height: rows ? rows * (TILE_H + 10) : 0 };
}

function buildings(site, dAlarms, y0) {
  const groups = new Map();
  for (const d of devicesOf(site)) {
    const b = d.building || "";
    if (!groups.has(b)) groups.set(b, new Map());
    const floors = groups.get(b);
    const f = d.floor == null ? "" : String(d.floor);
    if (!floors.has(f)) floors.set(f, []);
    floors.get(f).push(d);
  }
  const names = [...groups.keys()].sort((a, b) => (a === "" ? 1 : b === "" ? -1 : a.localeCompare(b)));
  const colW = (W - 10) / Math.max(1, names.length);
  const perLine = Math.max(1, Math.floor((colW - 58) / DOT));
  const parts = [];
  let maxH = 0;
  names.forEach((name, i) => {
    const x = 10 + i * colW;
    let y = y0;
    parts.push(`<text class="bldlabel" x="${x + 4}" y="${y + 16}">${esc(name || t("no_building"))}</text>`);
    y += 26;
    const floors = [...groups.get(name).entries()].sort((a, b) => floorRank(b[0]) - floorRank(a[0]));
    for (const [floor, devs] of floors) {
      const lines = Math.ceil(devs.length / perLine);
      const h = 12 + lines * DOT;
      const worst = devs.map((d) => dAlarms.get(d.id)).filter(Boolean).sort((a, b) => (RANK[a.worst] ?? 9) - (RANK[b.worst] ?? 9))[0];
      const cls = worst ? ` alarm-${alarmClass(worst.worst)}` : "";
      parts.push(`<g data-floor="${esc(`${name}/${floor}`)}"><rect class="zbox${cls}" x="${x}" y="${y}" width="${colW - 10}" height="${h}" rx="4"/>
        <text x="${x + 8}" y="${y + 19}" font-weight="700">${esc(floor || "—")}</text>`);
      devs.forEach((d, j) => {
        const cx = x + 46 + (j % perLine) * DOT;
        const cy = y + 6 + Math.floor(j / perLine) * DOT + DOT / 2;
        const da = dAlarms.get(d.id);
        const online = onlineOf(d);
        const dc = da ? "dv alarm" : online === false ? "dv off" : "dv";
        parts.push(`<a href="#/device/${encodeURIComponent(d.id)}" data-device="${esc(d.id)}" data-alarm="${da ? esc(da.worst) : ""}">
          <circle class="${dc}" cx="${cx}" cy="${cy}" r="${da ? 8 : 6}"/><title>${esc(nameOf(d))} (${esc(d.id)})</title></a>`);
      });
      parts.push("</g>");
      y += h + 6;
    }
    maxH = Math.max(maxH, y - y0);
  });
  return { svg: parts.join(""), height: maxH };
}

function svg(site, zones) {
  const deviceZone = new Map();
  for (const d of devicesOf(site)) if (d.zone) deviceZone.set(d.id, d.zone);
  const zAlarms = zoneAlarms(deviceZone);
  const dAlarms = alarmsByDevice();
  const sorted = [...zones].sort((a, b) => String(a.id).localeCompare(String(b.id)));
  const tiles = zoneTiles(sorted, zAlarms, 10);
  const blds = buildings(site, dAlarms, 20 + tiles.height);
  // The devices in alarm, named under the map: they must stand out, not hide in a dot.
  const alarmed = devicesOf(site).filter((d) => dAlarms.has(d.id));
  let y = 30 + tiles.height + blds.height;
  const list = alarmed
    .map((d) => {
      const a = dAlarms.get(d.id);
      const row = `<a href="#/device/${encodeURIComponent(d.id)}"><circle class="dv alarm" cx="20" cy="${y - 4}" r="7"/>
        <text x="34" y="${y}" font-weight="700">${esc(nameOf(d))} · ${esc([d.building, d.floor, d.zone].filter(Boolean).join(" / "))} · ${esc(
          classLabel(a.worst === "other" ? null : a.worst),
        )} × ${a.count}</text></a>`;
      y += 22;
      return row;
    })
    .join("");
  return `<svg class="zones" viewBox="0 0 ${W} ${Math.max(y, 100)}" data-testid="zone-svg" role="img">${tiles.svg}${blds.svg}${list}</svg>`;
}

export function mount(el) {
  el.innerHTML = `<div class="toolbar"><h1>${esc(t("zones_title"))}</h1></div><div id="zmap"><p class="muted">${esc(t("loading"))}</p></div>`;
  const box = el.querySelector("#zmap");
  let alive = true;
  let offs = [];
  let data = null;
  const render = () => {
    if (alive && data) box.innerHTML = svg(data.site, data.zones);
  };
  Promise.all([loadSite(), get("/api/zones")])
    .then(([site, z]) => {
      data = { site, zones: z.zones || [] };
      render();
      offs = [on("alarms", render), on("device", render)];
    })
    .catch((err) => {
      box.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    });
  return () => {
    alive = false;
    for (const off of offs) off();
  };
}
