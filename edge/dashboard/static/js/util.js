// Small helpers shared by the views: escaping for the one-pass innerHTML builders, formatting.
import { lang, t, pick, nameOf } from "./i18n.js";

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape text for HTML content and attribute values. */
export function esc(value) {
  if (value == null) return "";
  return String(value).replace(/[&<>"']/g, (c) => ESC[c]);
}

const pad = (n) => String(n).padStart(2, "0");

/** "2026-12-01 20:45:03" in the browser's local time (the control room's time zone). */
export function fmtTime(wallS) {
  if (wallS == null) return "—";
  const d = new Date(wallS * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}`;
}

/** Time only when it is today, else the full date and time. */
export function fmtShort(wallS) {
  if (wallS == null) return "—";
  const d = new Date(wallS * 1000);
  const now = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return time;
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

export function fmtValue(value, unit) {
  if (value == null) return "—";
  let text;
  if (typeof value === "boolean") text = value ? t("on") : t("off");
  else if (typeof value === "number") text = Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 2);
  else text = String(value);
  return unit ? `${text} ${unit}` : text;
}

// Enum points by full point id ("site/device/point"), learnt from the site tree and the device
// detail: an alarm row carries only the point id and the raw code, and shows the code's label too.
const enumPoints = new Map();

/** Remember the enum points of `[[fullId, point], ...]`. */
export function learnEnumPoints(entries) {
  for (const [id, point] of entries) if (point && point.enum) enumPoints.set(id, point);
}

/** The label of an enum code in the current language: the `enum` (English) label, translated
 *  through `enum_zh` (English label -> Chinese label) in Chinese; null when there is none. */
export function enumText(point, value) {
  if (!point || !point.enum || value == null || typeof value === "boolean") return null;
  if (!Object.hasOwn(point.enum, String(value))) return null;
  const label = point.enum[String(value)];
  if (typeof label === "object") return pick(label);
  const text = String(label);
  if (lang() === "zh" && point.enum_zh && Object.hasOwn(point.enum_zh, text)) return point.enum_zh[text];
  return text;
}

/** A value recorded with an alarm: its enum label when the point is known, else the number. */
export function alarmValueText(pointId, value) {
  const label = enumText(enumPoints.get(pointId), value);
  return label == null ? fmtValue(value) : label;
}

export function fmtBytes(n) {
  if (n == null) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function fmtDuration(s) {
  if (s == null) return "—";
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (lang() === "zh") return d ? `${d}天${h}小时` : h ? `${h}小时${m}分` : `${m}分${s % 60}秒`;
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

export function fmtPct(v) {
  return v == null ? "—" : `${Number(v).toFixed(1)}%`;
}

/** Local date/time input value ("YYYY-MM-DDTHH:MM") ↔ wall seconds. */
export function toLocalInput(wallS) {
  const d = new Date(wallS * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function fromLocalInput(text) {
  if (!text) return null;
  const ms = new Date(text).getTime();
  return Number.isNaN(ms) ? null : ms / 1000;
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** The device id of a point id "site/device/point". */
export function deviceOfPoint(pointId) {
  const parts = String(pointId || "").split("/");
  return parts.length >= 3 ? parts[1] : null;
}

/** A user-facing sentence for an ApiError (or any error). */
export function errorText(err) {
  const body = (err && err.body) || {};
  switch (body.error) {
    case "bad_credentials":
      return body.attempts_left != null ? t("err_bad_credentials", { n: body.attempts_left }) : t("err_bad_credentials_plain");
    case "locked":
      return body.locked_until ? t("err_locked_until", { t: fmtTime(body.locked_until) }) : t("err_locked");
    case "throttled":
      return t("err_throttled", { n: body.retry_after_s || 1 });
    case "setup_code":
      return t("err_setup_code");
    case "expired":
      return t("err_expired");
    case "disabled":
      return t("err_disabled");
    case "session":
      return t("err_session");
    case "forbidden":
      return t("err_forbidden");
    case "csrf":
      return t("err_csrf");
    case "network":
      return t("err_network");
    default:
      return t("err_generic", { e: body.detail || body.error || (err && err.message) || "?" });
  }
}

/** Where an alarm is, in the words people use: "zone name · device name · building floor room"
 *  (the server adds the names from the site file; ids only when there are none). */
export function placeOf(row) {
  const zone =
    pick({ zh: row.zone_name_zh || row.zone_name, en: row.zone_name || row.zone_name_zh }) ||
    (row.zone ? t("zone_n", { z: row.zone }) : "");
  const device = row.device_name || row.device_name_zh ? nameOf({ name: row.device_name, name_zh: row.device_name_zh }) : row.device || "";
  const where = [row.building, row.floor ? t("floor_n", { f: row.floor }) : "", row.location].filter(Boolean).join(" ");
  return [zone, device, where].filter(Boolean).join(" · ");
}
