// Batch audit: the batches central refused (bad signature, replay, unknown gateway, …) and the
// gap records of data a gateway had to evict before central acknowledged it, per gateway.
import { get } from "../api.js";
import { t, label } from "../i18n.js";
import { esc, fmtTime, query, errorText } from "../util.js";

export async function render(root) {
  root.innerHTML = `
    <div class="toolbar">
      <input list="audit-gateways" data-testid="audit-gateway" placeholder="${esc(t("all_gateways"))}">
      <datalist id="audit-gateways"></datalist>
      <button class="btn" data-testid="audit-go">${esc(t("search"))}</button>
    </div>
    <div class="grid2">
      <div class="panel"><h2>${esc(t("rejected"))}</h2><div class="error" data-testid="rejected-error"></div>
        <div data-testid="rejected-counts"></div>
        <div class="scroll"><table data-testid="rejected-list"><thead><tr>
          <th>${esc(t("time"))}</th><th>${esc(t("gateway"))}</th><th>${esc(t("lane"))}</th><th>${esc(t("seq"))}</th>
          <th>${esc(t("reason"))}</th><th>${esc(t("transport"))}</th><th>${esc(t("detail"))}</th>
        </tr></thead><tbody></tbody></table></div></div>
      <div class="panel"><h2>${esc(t("gaps"))}</h2><div class="error" data-testid="gaps-error"></div>
        <div class="scroll"><table data-testid="gap-list"><thead></thead><tbody></tbody></table></div></div>
    </div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);

  async function load() {
    const gateway = $("audit-gateway").value.trim();
    $("rejected-error").textContent = "";
    $("gaps-error").textContent = "";
    try {
      const audit = await get(`/api/v1/audit/rejected${query({ gateway, limit: 500 })}`);
      $("rejected-counts").innerHTML = Object.entries(audit.counts || {})
        .map(([r, n]) => `<span class="badge cls-other">${esc(label("r", r))} ${n}</span>`)
        .join("");
      root.querySelector('[data-testid="rejected-list"] tbody').innerHTML = (audit.items || [])
        .map(
          (r) => `<tr data-testid="rejected-row" data-reason="${esc(r.reason)}"><td>${esc(fmtTime(r.received_at))}</td><td>${esc(r.gateway_id)}</td>
            <td>${esc(r.lane)}</td><td>${esc(r.seq ?? "—")}</td><td>${esc(label("r", r.reason))}</td><td>${esc(r.transport)}</td>
            <td class="wrap">${esc(r.detail)}</td></tr>`,
        )
        .join("");
    } catch (err) {
      $("rejected-error").textContent = errorText(err);
    }
    try {
      const data = await get(`/api/v1/audit/gaps${query({ gateway, limit: 500 })}`);
      const gaps = Array.isArray(data) ? data : data.items || [];
      const keys = gaps.length ? Object.keys(gaps[0]) : [];
      root.querySelector('[data-testid="gap-list"] thead').innerHTML = `<tr>${keys.map((k) => `<th>${esc(k)}</th>`).join("")}</tr>`;
      root.querySelector('[data-testid="gap-list"] tbody').innerHTML = gaps
        .map((g) => `<tr data-testid="gap-row">${keys.map((k) => `<td>${esc(/(_at|^ts|time)$/.test(k) && typeof g[k] === "number" ? fmtTime(g[k]) : typeof g[k] === "object" ? JSON.stringify(g[k]) : g[k])}</td>`).join("")}</tr>`)
        .join("") || `<tr><td class="muted">${esc(t("no_data"))}</td></tr>`;
    } catch (err) {
      $("gaps-error").textContent = errorText(err);
    }
  }

  $("audit-go").addEventListener("click", load);
  get("/api/v1/gateways")
    .then((gws) => {
      root.querySelector("#audit-gateways").innerHTML = gws.map((g) => `<option value="${esc(g.gateway_id)}">`).join("");
    })
    .catch(() => {});
  await load();
}
