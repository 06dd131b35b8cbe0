// Point explorer: search points across estates, the latest value with its quality, a history
// chart downsampled by central (step= buckets, min/avg/max) and a CSV export of the range.
import { get } from "../api.js";
import { t, label } from "../i18n.js";
import { esc, fmtTime, fmtValue, query, errorText } from "../util.js";
import { lineChart } from "../charts.js";

const RANGES = { last_hour: 3600, last_day: 86400, last_week: 7 * 86400, last_month: 30 * 86400 };
// About this many buckets across the chart: enough for its width, few enough to stay fast.
const BUCKETS = 300;

export async function render(root, selected) {
  root.innerHTML = `
    <div class="toolbar">
      <input class="grow" type="search" data-testid="point-search" placeholder="${esc(t("search_points"))}">
      <select data-testid="point-estate"><option value="">${esc(t("all_estates"))}</option></select>
      <button class="btn" data-testid="point-search-go">${esc(t("search"))}</button>
    </div>
    <div class="error" data-testid="point-error"></div>
    <div class="grid2">
      <div class="panel"><div class="muted" data-testid="point-count"></div>
        <div class="scroll"><table data-testid="point-list"><thead><tr>
          <th>${esc(t("point"))}</th><th>${esc(t("gateway"))}</th><th>${esc(t("value"))}</th><th>${esc(t("quality"))}</th><th>${esc(t("time"))}</th>
        </tr></thead><tbody></tbody></table></div></div>
      <div class="panel" data-testid="point-detail"><p class="muted">${esc(t("pick_point"))}</p></div>
    </div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  let points = [];

  async function search() {
    $("point-error").textContent = "";
    try {
      points = await get(`/api/v1/points${query({ q: $("point-search").value.trim(), estate: $("point-estate").value, limit: 500 })}`);
      $("point-count").textContent = t("points_found", { n: points.length });
      root.querySelector("tbody").innerHTML = points
        .map(
          (p) => `<tr data-testid="point-row" data-point="${esc(p.point_id)}">
            <td><a href="#/points/${encodeURIComponent(p.point_id)}">${esc(p.point_id)}</a></td><td>${esc(p.gateway_id)}</td>
            <td>${esc(fmtValue(p.value))}</td><td class="q-${esc(p.quality)}">${esc(label("q", p.quality))}</td><td>${esc(fmtTime(p.ts))}</td></tr>`,
        )
        .join("");
    } catch (err) {
      $("point-error").textContent = errorText(err);
    }
  }

  async function detail(pointId) {
    const panel = $("point-detail");
    const latest = points.find((p) => p.point_id === pointId);
    panel.innerHTML = `
      <h2>${esc(t("history_of", { p: pointId }))}</h2>
      <div data-testid="point-latest">${latest ? `${esc(fmtValue(latest.value))} · <span class="q-${esc(latest.quality)}">${esc(label("q", latest.quality))}</span> · ${esc(fmtTime(latest.ts))}` : ""}</div>
      <div class="toolbar">
        <select data-testid="point-range">${Object.keys(RANGES).map((k) => `<option value="${k}" ${k === "last_hour" ? "selected" : ""}>${esc(t(k))}</option>`).join("")}</select>
        <a class="btn btn-ghost btn-small" data-testid="point-csv" download>${esc(t("export_csv"))}</a>
      </div>
      <div data-testid="point-chart-box"></div>`;
    const draw = async () => {
      const span = RANGES[panel.querySelector('[data-testid="point-range"]').value];
      const to = Math.ceil(Date.now() / 1000);
      const from = to - span;
      const step = Math.max(1, Math.round(span / BUCKETS));
      const path = `/api/v1/points/${pointId.split("/").map(encodeURIComponent).join("/")}/history`;
      panel.querySelector('[data-testid="point-csv"]').href = `${path}${query({ from, to, format: "csv" })}`;
      try {
        const history = await get(`${path}${query({ from, to, step })}`);
        const rows = (history.buckets || [])
          .filter((b) => b.avg != null)
          .map((b) => ({ ts: b.ts + step / 2, v: b.avg, lo: b.min, hi: b.max }));
        panel.querySelector('[data-testid="point-chart-box"]').innerHTML = lineChart(rows, from, to, {
          testid: "point-chart",
          empty: t("no_data"),
          width: Math.max(320, panel.clientWidth - 24),
        });
      } catch (err) {
        panel.querySelector('[data-testid="point-chart-box"]').innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
      }
    };
    panel.querySelector('[data-testid="point-range"]').addEventListener("change", draw);
    await draw();
  }

  $("point-search-go").addEventListener("click", search);
  $("point-search").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") search();
  });
  get("/api/v1/estates")
    .then((estates) => {
      for (const e of estates) $("point-estate").insertAdjacentHTML("beforeend", `<option value="${esc(e.estate)}">${esc(e.estate)}</option>`);
    })
    .catch(() => {});
  if (selected) $("point-search").value = selected;
  await search();
  if (selected) await detail(selected);
}
