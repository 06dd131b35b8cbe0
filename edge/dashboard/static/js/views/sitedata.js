// The site tree (GET /api/site), cached between views and kept live by SSE values and device
// events; helpers to read a point's current value and a device's state.
import { get } from "../api.js";
import { state as live } from "../live.js";
import { t } from "../i18n.js";
import { esc, fmtValue, deviceOfPoint, enumText, learnEnumPoints } from "../util.js";

let cache = null;
let cacheAt = 0;

export async function loadSite(force = false) {
  if (!force && cache && Date.now() - cacheAt < 60_000) return cache;
  cache = await get("/api/site");
  cacheAt = Date.now();
  const siteId = cache.site && cache.site.id ? cache.site.id : "";
  const devices = devicesOf(cache);
  adoptSnapshot(siteId, devices);
  learnEnumPoints(devices.flatMap((d) => (d.points || []).map((p) => [pointIdOf(siteId, d, p), p])));
  return cache;
}

/** A freshly fetched snapshot is newer than any value pushed before it: forget those, so that
 *  only values pushed after the fetch override the snapshot. */
export function adoptSnapshot(siteId, devices) {
  for (const d of devices) for (const p of d.points || []) live.values.delete(pointIdOf(siteId, d, p));
}

export function devicesOf(site) {
  const out = [];
  for (const b of site.buildings || []) for (const d of b.devices || []) out.push(d);
  return out;
}

/** The full point id "site/device/point" (the server's `id`; tolerant of either field). */
export function pointIdOf(siteId, device, point) {
  for (const v of [point.id, point.point_id]) if (typeof v === "string" && v.split("/").length >= 3) return v;
  return `${siteId}/${device.id}/${point.point_id || point.id}`;
}

/** The point's own id within its device. */
export function shortIdOf(point) {
  return String(point.point_id || point.id).split("/").pop();
}

/** Display a value, using the point's enum labels when it has them: the English label from
 *  `enum`, translated through `enum_zh` (English label -> Chinese label) in the Chinese UI. */
export function pointText(point, value) {
  const label = enumText(point, value);
  return label == null ? fmtValue(value, point ? point.unit : "") : label;
}

/** [value, quality, ts] of a point: the live SSE value when newer than the snapshot. */
export function currentValue(pointId, point) {
  const v = live.values.get(pointId);
  if (v) return v;
  return point ? [point.value, point.quality, point.ts] : [null, null, null];
}

export function onlineOf(device) {
  return live.online.has(device.id) ? live.online.get(device.id) : device.online;
}

/** Active (not shelved) alarms per device id, with the worst class. */
export function alarmsByDevice() {
  const out = new Map();
  const rank = { fire: 0, supervisory: 1, fault: 2 };
  for (const row of live.alarms.values()) {
    if (row.state === "shelved") continue;
    const dev = row.device || deviceOfPoint(row.point);
    if (!dev) continue;
    const entry = out.get(dev) || { count: 0, worst: null };
    entry.count++;
    const k = row.class || "other";
    if (entry.worst === null || (rank[k] ?? 9) < (rank[entry.worst] ?? 9)) entry.worst = k;
    out.set(dev, entry);
  }
  return out;
}

export function qualityLabel(q) {
  return q ? t(`q_${q}`) : "";
}

export function valueHtml(value, quality, unit) {
  return `${esc(fmtValue(value, unit))}`;
}

export function deviceStatus(device, alarmInfo, points) {
  const online = onlineOf(device);
  if (online === false) return "off";
  if (alarmInfo && alarmInfo.count) return "alarm";
  if (points && points.some((p) => p.quality === "bad")) return "fault";
  return online === true ? "on" : "unknown";
}

export function statusLabel(status) {
  return { off: t("offline"), on: t("online"), alarm: t("online"), fault: t("fault_state"), unknown: t("unknown") }[status];
}
