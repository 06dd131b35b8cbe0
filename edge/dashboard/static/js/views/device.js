// Device detail: its points with live values, a trend chart over hours or days (from the
// gateway's rolling history), its active alarms and its linkage log.
import { get } from "../api.js";
import { on, state as live, sortedAlarms } from "../live.js";
import { t, nameOf, has } from "../i18n.js";
import { esc, fmtTime, fmtPct, query, deviceOfPoint, errorText, learnEnumPoints } from "../util.js";
import { lineChart } from "../charts.js";
import { alarmRowHtml, alarmHeadHtml } from "./alarmrow.js";
import { alarmAction } from "./alarmactions.js";
import { currentValue, onlineOf, qualityLabel, pointIdOf, shortIdOf, pointText, adoptSnapshot } from "./sitedata.js";

const RANGES = [
  { id: "1h", s: 3600 },
  { id: "6h", s: 6 * 3600 },
  { id: "24h", s: 86400 },
  { id: "7d", s: 7 * 86400 },
];

export function mount(el, ctx) {
  const deviceId = ctx.params[0];
  el.innerHTML = `<p class="muted">${esc(t("loading"))}</p>`;
  let alive = true;
  let offs = [];
  let range = RANGES[0];
  let point = null;
  let dev = null;

  function pointRows() {
    return (dev.points || [])
      .map((p) => {
        const pid = p.full;
        const [value, quality, ts] = currentValue(pid, p);
        const numeric = typeof value === "number";
        return `<tr><td>${esc(nameOf(p))}<br><small class="mono">${esc(p.short)}</small></td>
          <td class="num"><span class="pv q-${esc(quality || "none")}" data-testid="point-value" data-point="${esc(pid)}">${esc(pointText(p, value))}</span></td>
          <td>${esc(qualityLabel(quality))}${p.reason ? ` <small>${esc(p.reason)}</small>` : ""}</td>
          <td class="mono">${esc(fmtTime(ts))}</td>
          <td>${numeric ? `<button class="btn" data-trend="${esc(pid)}">${esc(t("trend"))}</button>` : ""}</td></tr>`;
      })
      .join("");
  }

  function renderAlarms() {
    const box = el.querySelector("#dev-alarms");
    if (!box) return;
    const rows = sortedAlarms().filter((r) => (r.device || deviceOfPoint(r.point)) === deviceId);
    box.innerHTML = rows.length
      ? alarmHeadHtml() + rows.map((r) => alarmRowHtml(r, ctx.can)).join("")
      : `<p class="muted pad">${esc(t("no_alarms"))}</p>`;
  }

  async function loadTrend() {
    const box = el.querySelector("#trend");
    if (!point) {
      box.innerHTML = lineChart([], 0, 1, { empty: t("no_data"), width: box.clientWidth });
      return;
    }
    const until = Date.now() / 1000;
    const since = until - range.s;
    try {
      const data = await get(`/api/trend${query({ point, since, until, max_points: 500 })}`);
      const p = (dev.points || []).find((x) => x.full === point);
      box.innerHTML = lineChart(data.rows || [], since, until, {
        unit: p ? p.unit : "",
        empty: t("no_data"),
        width: box.clientWidth,
      });
    } catch (err) {
      box.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    }
  }

  function render(data) {
    dev = data;
    const siteId = ctx.session.site ? ctx.session.site.id : "";
    for (const p of dev.points || []) {
      p.full = pointIdOf(siteId, dev, p);
      p.short = shortIdOf(p);
    }
    learnEnumPoints((dev.points || []).map((p) => [p.full, p]));
    adoptSnapshot(siteId, [dev]);
    const numeric = (dev.points || []).filter((p) => typeof p.value === "number");
    const firstNumeric = numeric.find((p) => p.unit) || numeric[0];
    point = point || (firstNumeric ? firstNumeric.full : null);
    const online = onlineOf(dev);
    const stats = dev.stats || {};
    const statItems = Object.entries(stats)
      .filter(([, v]) => typeof v === "number" || typeof v === "string")
      .slice(0, 12)
      .map(([k, v]) => {
        let text = v;
        if (typeof v === "number" && k.includes("rate")) text = fmtPct(v * (v <= 1 ? 100 : 1));
        else if (typeof v === "number" && k.endsWith("_wall")) text = fmtTime(v);
        else if (typeof v === "number" && !Number.isInteger(v)) text = v.toFixed(1);
        return `<dt>${esc(has(`stat_${k}`) ? t(`stat_${k}`) : k)}</dt><dd>${esc(text)}</dd>`;
      })
      .join("");
    const log = (dev.linkage || dev.linkage_log || []).slice(0, 50);
    el.innerHTML = `
      <div class="toolbar"><a class="btn" href="#/site">← ${esc(t("back"))}</a>
        <h1>${esc(nameOf(dev))}</h1><span class="muted mono">${esc(dev.id)}</span>
        <span><span class="dot ${online === true ? "on" : online === false ? "off" : ""}"></span>${esc(
          online === true ? t("online") : online === false ? t("offline") : t("unknown"),
        )}</span>
        <span class="muted">${esc([dev.building, dev.floor && `${t("floor")} ${dev.floor}`, dev.zone, dev.location, dev.profile].filter(Boolean).join(" · "))}</span></div>
      <section class="card"><div class="toolbar"><h2>${esc(t("trend"))}</h2>
        <select id="trend-point" data-testid="trend-point">${(dev.points || [])
          .filter((p) => typeof p.value === "number" || p.unit)
          .map((p) => `<option value="${esc(p.full)}"${p.full === point ? " selected" : ""}>${esc(nameOf(p))}${p.unit ? ` (${esc(p.unit)})` : ""}</option>`)
          .join("")}</select>
        <div class="range-btns">${RANGES.map(
          (r) => `<button class="btn${r === range ? " active" : ""}" data-range="${r.id}" data-testid="trend-range-${r.id}">${esc(t(`range_${r.id}`))}</button>`,
        ).join("")}</div></div>
        <div id="trend"></div></section>
      <div class="grid2" style="margin-top:.8rem">
        <section><h2>${esc(t("device_alarms"))}</h2><div class="alarm-table" id="dev-alarms"></div></section>
        <section class="card"><h2>${esc(t("poll_stats"))}</h2><dl class="kv">${statItems || `<dd class="muted">${esc(t("no_data"))}</dd>`}</dl></section>
      </div>
      <section style="margin-top:.8rem"><div class="tbl-wrap"><table class="tbl" data-testid="device-points"><thead><tr>
        <th>${esc(t("trend_point"))}</th><th class="num">${esc(t("value"))}</th><th>${esc(t("state"))}</th><th>${esc(t("col_time"))}</th><th></th>
        </tr></thead><tbody id="dev-points">${pointRows()}</tbody></table></div></section>
      <section style="margin-top:.8rem"><h2>${esc(t("linkage_log"))}</h2><div class="tbl-wrap"><table class="tbl"><tbody>${
        log.length
          ? log.map((e) => `<tr><td class="mono">${esc(fmtTime(e.ts))}</td><td>${esc(e.rule)}</td><td>${esc(has(`lkk_${e.kind}`) ? t(`lkk_${e.kind}`) : e.kind)}</td>
              <td>${esc(e.point || "")}</td><td>${esc(e.value == null ? "" : String(e.value))}</td><td>${esc(e.detail || "")}</td></tr>`).join("")
          : `<tr><td class="muted">${esc(t("no_data"))}</td></tr>`
      }</tbody></table></div></section>`;
    renderAlarms();
    loadTrend();
  }

  el.addEventListener("click", (event) => {
    const r = event.target.closest("[data-range]");
    if (r) {
      range = RANGES.find((x) => x.id === r.dataset.range) || RANGES[0];
      for (const b of el.querySelectorAll("[data-range]")) b.classList.toggle("active", b === r);
      loadTrend();
      return;
    }
    const tr = event.target.closest("[data-trend]");
    if (tr) {
      point = tr.dataset.trend;
      el.querySelector("#trend-point").value = point;
      loadTrend();
      el.querySelector("#trend").scrollIntoView({ behavior: "smooth", block: "nearest" });
      return;
    }
    const act = event.target.closest("[data-act]");
    if (act) alarmAction(act.dataset.act, act.closest("[data-key]").dataset.key);
  });
  el.addEventListener("change", (event) => {
    if (event.target.id === "trend-point") {
      point = event.target.value;
      loadTrend();
    }
  });

  get(`/api/devices/${encodeURIComponent(deviceId)}`)
    .then((data) => {
      if (!alive) return;
      render(data);
      offs = [
        on("alarms", renderAlarms),
        on("values", (changed) => {
          for (const id of changed) {
            const cell = el.querySelector(`[data-point="${CSS.escape(id)}"]`);
            if (!cell) continue;
            const p = dev.points.find((x) => x.full === id);
            const v = live.values.get(id);
            if (!v) continue; // dropped by a newer snapshot since it was pushed
            const [value, quality] = v;
            cell.textContent = pointText(p, value);
            cell.className = `pv q-${quality || "none"}`;
          }
        }),
      ];
    })
    .catch((err) => {
      el.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    });
  const refresh = setInterval(() => alive && point && loadTrend(), 60_000);
  return () => {
    alive = false;
    clearInterval(refresh);
    for (const off of offs) off();
  };
}
