// Zone map: buildings as bands, their zones as boxes, each device as a dot. A zone with an
// active alarm takes its class colour (fire flashes) and the devices in alarm stand out.
import { get } from "../api.js";
import { on, state as live } from "../live.js";
import { t, nameOf } from "../i18n.js";
import { esc, deviceOfPoint, errorText } from "../util.js";
import { loadSite, devicesOf, onlineOf, alarmsByDevice } from "./sitedata.js";
import { classLabel } from "./alarmrow.js";

const W = 1000;
const BOX_W = 230;
const GAP = 12;
const LINE = 18;
const MAX_LINES = 8;
const RANK = { fire: 0, supervisory: 1, fault: 2 };

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

function layout(site, zones) {
  const byId = new Map(devicesOf(site).map((d) => [d.id, d]));
  const deviceZone = new Map();
  const groups = new Map(); // building → [{id, devices}]
  const placed = new Set();
  for (const z of zones) {
    const devs = z.devices.map((id) => byId.get(id)).filter(Boolean);
    for (const d of devs) {
      placed.add(d.id);
      if (d.zone) deviceZone.set(d.id, d.zone);
    }
    const count = new Map();
    for (const d of devs) count.set(d.building || "", (count.get(d.building || "") || 0) + 1);
    const building = [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] || "";
    if (!groups.has(building)) groups.set(building, []);
    groups.get(building).push({ id: z.id, devices: devs });
  }
  for (const d of byId.values()) {
    if (placed.has(d.id)) continue;
    const b = d.building || "";
    if (!groups.has(b)) groups.set(b, []);
    let rest = groups.get(b).find((z) => z.id === "");
    if (!rest) {
      rest = { id: "", devices: [] };
      groups.get(b).push(rest);
    }
    rest.devices.push(d);
  }
  return { groups, deviceZone };
}

function svg(site, zones) {
  const { groups, deviceZone } = layout(site, zones);
  const zAlarms = zoneAlarms(deviceZone);
  const dAlarms = alarmsByDevice();
  const perRow = Math.max(1, Math.floor((W - 20 + GAP) / (BOX_W + GAP)));
  const parts = [];
  let y = 10;
  for (const [building, zs] of [...groups.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0])))) {
    parts.push(`<text class="bldlabel" x="10" y="${y + 14}">${esc(building || t("no_building"))}</text>`);
    y += 24;
    let rowH = 0;
    zs.sort((a, b) => String(a.id).localeCompare(String(b.id)));
    zs.forEach((z, i) => {
      const col = i % perRow;
      if (col === 0 && i) {
        y += rowH + GAP;
        rowH = 0;
      }
      const n = Math.min(z.devices.length, MAX_LINES);
      const h = 32 + LINE * n + (z.devices.length > MAX_LINES ? LINE : 0);
      rowH = Math.max(rowH, h);
      const x = 10 + col * (BOX_W + GAP);
      const za = zAlarms.get(z.id);
      const cls = za ? ` alarm-${RANK[za.worst] !== undefined ? za.worst : "other"}` : "";
      const label = `${z.id || "—"}${za ? ` · ${classLabel(za.worst === "other" ? null : za.worst)} ${za.count}` : ""}`;
      parts.push(`<g data-zone="${esc(z.id)}" data-alarm="${za ? esc(za.worst) : ""}"><rect class="zbox${cls}" x="${x}" y="${y}" width="${BOX_W}" height="${h}" rx="6"/>`);
      parts.push(`<text x="${x + 10}" y="${y + 20}" font-weight="700">${esc(label)}</text>`);
      z.devices.slice(0, MAX_LINES).forEach((d, j) => {
        const da = dAlarms.get(d.id);
        const online = onlineOf(d);
        const dc = da ? "dv alarm" : online === false ? "dv off" : "dv";
        const cy = y + 36 + j * LINE;
        parts.push(`<a href="#/device/${encodeURIComponent(d.id)}" data-device="${esc(d.id)}"><circle class="${dc}" cx="${x + 16}" cy="${cy}" r="${da ? 6 : 5}"/>
          <text x="${x + 28}" y="${cy + 4}">${esc(nameOf(d).slice(0, 24))}</text><title>${esc(d.id)}</title></a>`);
      });
      if (z.devices.length > MAX_LINES)
        parts.push(`<text x="${x + 28}" y="${y + 36 + MAX_LINES * LINE + 4}">+${z.devices.length - MAX_LINES}</text>`);
      parts.push("</g>");
    });
    y += rowH + 20;
  }
  return `<svg class="zones" viewBox="0 0 ${W} ${Math.max(y, 100)}" data-testid="zone-svg" role="img">${parts.join("")}</svg>`;
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
