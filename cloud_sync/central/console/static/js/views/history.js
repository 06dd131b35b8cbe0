// Alarm history and statistics (R2.8): counts by class (pie), by estate (bars) and over time
// (line), and the alarm records of the range.
import { get } from "../api.js";
import { t, label } from "../i18n.js";
import { esc, query, errorText } from "../util.js";
import { pieChart, barChart, lineChart, colourOf } from "../charts.js";
import { alarmRow, alarmHead } from "./alarms.js";

const RANGES = { last_hour: 3600, last_day: 86400, last_week: 7 * 86400, last_month: 30 * 86400 };

export async function render(root) {
  root.innerHTML = `
    <div class="toolbar">
      <label>${esc(t("range"))}</label>
      <select data-testid="history-range">${Object.keys(RANGES).map((k) => `<option value="${k}" ${k === "last_week" ? "selected" : ""}>${esc(t(k))}</option>`).join("")}</select>
      <select data-testid="history-estate"><option value="">${esc(t("all_estates"))}</option></select>
    </div>
    <div class="error" data-testid="history-error"></div>
    <div class="grid2">
      <div class="panel"><h2>${esc(t("by_class"))}</h2><div data-testid="stats-class"></div></div>
      <div class="panel"><h2>${esc(t("by_estate"))}</h2><div data-testid="stats-estate"></div></div>
      <div class="panel"><h2>${esc(t("over_time"))}</h2><div data-testid="stats-time"></div></div>
      <div class="panel"><h2>${esc(t("by_priority"))}</h2><div data-testid="stats-priority"></div></div>
    </div>
    <div class="panel" style="margin-top:12px"><h2>${esc(t("history"))}</h2>
      <div class="scroll"><table data-testid="history-list"><thead><tr>${alarmHead()}</tr></thead><tbody></tbody></table></div></div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  let seq = 0;

  async function load() {
    const mine = ++seq;
    const span = RANGES[$("history-range").value];
    const to = Date.now() / 1000;
    const from = to - span;
    const estate = $("history-estate").value;
    const base = { estate, from: from.toFixed(0), to: to.toFixed(0) };
    const by = span <= 2 * 86400 ? "hour" : "day";
    $("history-error").textContent = "";
    try {
      const [byClass, byEstate, byTime, byPriority, records] = await Promise.all([
        get(`/api/v1/alarms/stats${query({ ...base, by: "class" })}`),
        get(`/api/v1/alarms/stats${query({ ...base, by: "estate" })}`),
        get(`/api/v1/alarms/stats${query({ ...base, by })}`),
        get(`/api/v1/alarms/stats${query({ ...base, by: "priority" })}`),
        get(`/api/v1/alarms${query({ ...base, limit: 200 })}`),
      ]);
      if (mine !== seq) return;
      const items = (stats, prefix) =>
        stats.buckets.map((b, i) => ({ label: prefix ? label(prefix, b.key) : b.key, value: b.count, colour: colourOf(b.key, i) }));
      $("stats-class").innerHTML = pieChart(items(byClass, "cls"), { testid: "chart-class" });
      // drawn at the panel's own width, so the labels keep their size
      const width = (id) => Math.max(320, $(id).clientWidth || 0);
      $("stats-estate").innerHTML = barChart(items(byEstate), { testid: "chart-estate", width: width("stats-estate") });
      $("stats-priority").innerHTML = barChart(items(byPriority), { testid: "chart-priority", width: width("stats-priority") });
      const size = by === "hour" ? 3600 : 86400;
      $("stats-time").innerHTML = lineChart(timeRows(byTime.buckets, from, to, size), from, to, { testid: "chart-time", empty: t("no_data"), counts: true, width: width("stats-time") });
      root.querySelector("tbody").innerHTML = records.map(alarmRow).join("") || `<tr><td colspan="8" class="muted">${esc(t("no_data"))}</td></tr>`;
      root.dataset.loaded = "1";
    } catch (err) {
      $("history-error").textContent = errorText(err);
    }
  }

  $("history-range").addEventListener("change", load);
  $("history-estate").addEventListener("change", load);
  get("/api/v1/estates")
    .then((estates) => {
      for (const e of estates) $("history-estate").insertAdjacentHTML("beforeend", `<option value="${esc(e.estate)}">${esc(e.estate)}</option>`);
    })
    .catch(() => {});
  await load();
}

/** Buckets keyed by a UTC day ("2026-12-04") or hour ("2026-12-04T19:00") as line rows, one per
 *  bucket of the range (zero where nothing was raised), each at its bucket's middle. */
function timeRows(buckets, from, to, size) {
  const counts = new Map();
  for (const b of buckets) {
    const ts = Date.parse(b.key.length > 10 ? `${b.key}:00Z` : `${b.key}T00:00:00Z`) / 1000;
    if (Number.isFinite(ts)) counts.set(ts, b.count);
  }
  const rows = [];
  for (let ts = Math.floor(from / size) * size; ts < to; ts += size) {
    rows.push({ ts: Math.min(Math.max(ts + size / 2, from), to), v: counts.get(ts) || 0 });
  }
  return rows;
}
