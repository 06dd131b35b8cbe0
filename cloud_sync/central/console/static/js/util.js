// Escaping for the one-pass innerHTML builders, formatting, and error sentences.
import { t, lang } from "./i18n.js";

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function esc(value) {
  if (value == null) return "";
  return String(value).replace(/[&<>"']/g, (c) => ESC[c]);
}

const pad = (n) => String(n).padStart(2, "0");

/** "2026-12-01 20:45:03" in the browser's local time. */
export function fmtTime(wallS) {
  if (wallS == null) return "—";
  const d = new Date(wallS * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
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

export function fmtValue(value) {
  if (value == null) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 3);
  return String(value);
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
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
    case "forbidden":
      return t("err_forbidden");
    case "session":
      return t("err_session");
    case "network":
      return t("err_network");
    default:
      if (err && err.status === 404) return t("err_not_available");
      return t("err_generic", { e: body.detail || body.error || (err && err.message) || "?" });
  }
}

/** Run `fn` at most once per animation frame however often it is asked for. */
export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

/** The sum of a {key: number} object (a backlog per lane), or null. */
export function total(obj) {
  if (obj == null) return null;
  if (typeof obj === "number") return obj;
  let sum = 0;
  for (const v of Object.values(obj)) if (typeof v === "number") sum += v;
  return sum;
}
