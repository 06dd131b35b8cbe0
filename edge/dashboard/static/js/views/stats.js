// Alarm statistics (R5.6): alarms per day by class, the class mix and the most frequent alarms.
import { get } from "../api.js";
import { t, pick } from "../i18n.js";
import { esc, errorText } from "../util.js";
import { stackedBars, pie, CLASS_COLOURS } from "../charts.js";
import { classLabel } from "./alarmrow.js";

const KNOWN = ["fire", "supervisory", "fault", "security"];

const DAY_MS = 86_400_000;

/** Every day of the period on the axis, the quiet ones as zero (the server lists only days with alarms). */
function fillDays(rows, days) {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const now = new Date();
  const today = Date.UTC(now.getFullYear(), now.getMonth(), now.getDate());
  const latest = rows.reduce((m, r) => Math.max(m, Date.parse(`${r.day}T00:00:00Z`) || 0), today);
  const out = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(latest - i * DAY_MS).toISOString().slice(0, 10);
    out.push(byDay.get(day) || { day });
  }
  return out;
}

export function mount(el) {
  el.innerHTML = `
    <div class="toolbar"><h1>${esc(t("stats_title"))}</h1>
      <label class="field inline"><span>${esc(t("stats_days"))}</span>
        <select id="days">${[7, 30, 90].map((d) => `<option${d === 30 ? " selected" : ""}>${d}</option>`).join("")}</select></label></div>
    <div id="stats-body"><p class="muted">${esc(t("loading"))}</p></div>`;
  const body = el.querySelector("#stats-body");

  async function load() {
    const days = Number(el.querySelector("#days").value);
    try {
      const data = await get(`/api/alarms/stats?days=${days}`);
      const perDay = fillDays(data.per_day || [], days);
      const classes = new Set();
      for (const d of perDay) for (const k of Object.keys(d)) if (k !== "day" && typeof d[k] === "number") classes.add(k);
      const ordered = KNOWN.filter((k) => classes.has(k)).concat([...classes].filter((k) => !KNOWN.includes(k)));
      const series = ordered.map((k) => ({
        key: k,
        label: classLabel(k === "other" ? null : k),
        colour: CLASS_COLOURS[k] || CLASS_COLOURS.other,
      }));
      const totals = series.map((s) => ({ ...s, value: perDay.reduce((n, d) => n + (d[s.key] || 0), 0) }));
      const legend = `<div class="legend">${totals
        .map((s) => `<span><i style="background:${s.colour}"></i>${esc(s.label)} ${s.value}</span>`)
        .join("")}</div>`;
      const top = data.top || [];
      // The bar chart is drawn at its card's width (half the view on a wide screen).
      const barWidth = Math.max(300, (el.clientWidth > 700 ? el.clientWidth / 2 : el.clientWidth) - 40);
      body.innerHTML = `
        <div class="grid2">
          <section class="card"><h2>${esc(t("stats_per_day"))}</h2>
            ${perDay.length ? stackedBars(perDay.map((d) => d.day), series, (day, key) => {
              const row = perDay.find((d) => d.day === day);
              return row ? row[key] : 0;
            }, { testid: "stats-bars", width: barWidth }) : `<p class="muted">${esc(t("no_data"))}</p>`}
            ${legend}</section>
          <section class="card"><h2>${esc(t("stats_mix"))}</h2>
            <div style="display:flex;gap:1rem;align-items:center;flex-wrap:wrap">${pie(totals, { testid: "stats-pie" })}${legend}</div></section>
        </div>
        <section class="card" style="margin-top:.8rem"><h2>${esc(t("stats_top"))}</h2>
          ${top.length ? `<div class="tbl-wrap"><table class="tbl" data-testid="stats-top"><thead><tr><th>#</th><th>${esc(t("col_message"))}</th>
          <th>${esc(t("col_location"))}</th><th class="num">${esc(t("stats_count"))}</th></tr></thead><tbody>${top
            .map((r, i) => `<tr><td>${i + 1}</td><td>${esc(pick(r.message) || r.key)}</td>
              <td class="muted">${esc(String(r.key).split("/").slice(1).join("/"))}</td><td class="num">${r.count}</td></tr>`)
            .join("")}</tbody></table></div>` : `<p class="muted">${esc(t("no_data"))}</p>`}
        </section>`;
    } catch (err) {
      body.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    }
  }
  el.querySelector("#days").addEventListener("change", load);
  load();
}
