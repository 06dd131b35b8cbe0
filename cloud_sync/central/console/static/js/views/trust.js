// Enrolment and revocation (administrators with every estate: the "trust" permission).
// A token is shown once, with the exact command to run on the gateway; central keeps a hash.
import { get, post } from "../api.js";
import { t } from "../i18n.js";
import { esc, fmtTime, errorText } from "../util.js";

const HOURS = [1, 24, 72, 168];

export async function render(root) {
  root.innerHTML = `
    <div class="panel">
      <h2>${esc(t("trust_new_token"))}</h2>
      <form class="toolbar" data-testid="token-form">
        <input data-testid="token-gateway" placeholder="${esc(t("gateway"))}" autocomplete="off" required>
        <input data-testid="token-estate" placeholder="${esc(t("estate"))}">
        <input data-testid="token-name" placeholder="${esc(t("name"))}">
        <select data-testid="token-expires">${HOURS.map((h) => `<option value="${h}" ${h === 24 ? "selected" : ""}>${esc(t("trust_valid_hours", { h }))}</option>`).join("")}</select>
        <button class="btn" data-testid="token-submit">${esc(t("trust_issue"))}</button>
      </form>
      <div class="error" data-testid="trust-error"></div>
      <div data-testid="token-shown" hidden>
        <p>${esc(t("trust_token_once"))}</p>
        <pre class="wrap" data-testid="token-command"></pre>
      </div>
    </div>
    <div class="panel" style="margin-top:12px"><h2>${esc(t("trust_gateways"))}</h2>
      <div class="scroll"><table data-testid="trust-gateways"><thead><tr>
        <th>${esc(t("gateway"))}</th><th>${esc(t("estate"))}</th><th>${esc(t("state"))}</th>
        <th>${esc(t("trust_keys"))}</th><th>${esc(t("trust_cert_until"))}</th><th>${esc(t("trust_e2e"))}</th><th></th>
      </tr></thead><tbody></tbody></table></div></div>
    <div class="panel" style="margin-top:12px"><h2>${esc(t("trust_tokens"))}</h2>
      <div class="scroll"><table data-testid="trust-tokens"><thead><tr>
        <th>${esc(t("gateway"))}</th><th>${esc(t("estate"))}</th><th>${esc(t("state"))}</th>
        <th>${esc(t("by"))}</th><th>${esc(t("trust_expires"))}</th><th>${esc(t("trust_used"))}</th>
      </tr></thead><tbody></tbody></table></div></div>
    <div class="panel" style="margin-top:12px"><h2>${esc(t("trust_audit"))}</h2>
      <div class="scroll"><table data-testid="trust-audit"><thead><tr>
        <th>${esc(t("time"))}</th><th>${esc(t("action"))}</th><th>${esc(t("gateway"))}</th>
        <th>${esc(t("user"))}</th><th>${esc(t("ip"))}</th><th>${esc(t("detail"))}</th>
      </tr></thead><tbody></tbody></table></div></div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const fail = (err) => ($("trust-error").textContent = errorText(err));

  async function load() {
    const [gateways, tokens, audit] = await Promise.all([
      get("/api/v1/trust/gateways"),
      get("/api/v1/enrollment-tokens?limit=100"),
      get("/api/v1/trust/audit?limit=100"),
    ]);
    $("trust-gateways").querySelector("tbody").innerHTML = gateways
      .map(
        (g) => `<tr data-testid="trust-gateway" data-gateway="${esc(g.id)}">
          <td>${esc(g.id)}${g.name ? ` <span class="muted">${esc(g.name)}</span>` : ""}</td>
          <td>${esc(g.estate || "—")}</td>
          <td>${g.status === "revoked"
            ? `<span class="error">${esc(t("trust_revoked"))}</span> <span class="muted">${esc(fmtTime(g.revoked_at))} · ${esc(g.revoked_by || "")}: ${esc(g.revoked_reason || "")}</span>`
            : esc(t("trust_enrolled"))}</td>
          <td>${g.keys.map((k) => `<code>${esc(k.kid)}</code>${k.valid_until ? ` <span class="muted">(${esc(t("trust_old_key", { until: fmtTime(k.valid_until) }))})</span>` : ""}`).join("<br>")}</td>
          <td>${esc(g.cert_not_after ? fmtTime(g.cert_not_after) : "—")}</td>
          <td>${esc(g.e2e ? g.encrypt : t("trust_e2e_off"))}</td>
          <td>${g.status === "revoked" ? "" : `<button class="btn btn-ghost btn-small" data-act="revoke">${esc(t("trust_revoke"))}</button>`}</td>
        </tr>`,
      )
      .join("");
    $("trust-tokens").querySelector("tbody").innerHTML = tokens
      .map(
        (k) => `<tr data-testid="trust-token"><td>${esc(k.gateway_id)}</td><td>${esc(k.estate || "—")}</td>
          <td>${esc(t(`trust_token_${k.state}`))}</td><td>${esc(k.created_by)}</td>
          <td>${esc(fmtTime(k.expires_at))}</td>
          <td>${k.used_at ? `${esc(fmtTime(k.used_at))} · ${esc(k.used_from || "")}` : "—"}</td></tr>`,
      )
      .join("");
    $("trust-audit").querySelector("tbody").innerHTML = audit
      .map(
        (a) => `<tr><td>${esc(fmtTime(a.at))}</td><td>${esc(a.event)}</td><td>${esc(a.gateway_id || "—")}</td>
          <td>${esc(a.actor || "")}</td><td>${esc(a.source || "")}</td>
          <td class="wrap">${esc([a.reason, a.detail].filter(Boolean).join(" · "))}</td></tr>`,
      )
      .join("");
    for (const row of root.querySelectorAll('[data-testid="trust-gateway"]')) {
      row.querySelector('[data-act="revoke"]')?.addEventListener("click", async () => {
        const id = row.dataset.gateway;
        const reason = prompt(t("trust_revoke_confirm", { gw: id }));
        if (!reason || !reason.trim()) return;
        $("trust-error").textContent = "";
        try {
          await post(`/api/v1/gateways/${encodeURIComponent(id)}/revoke`, { reason: reason.trim() });
          await load();
        } catch (err) {
          fail(err);
        }
      });
    }
  }

  $("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("trust-error").textContent = "";
    $("token-shown").hidden = true;
    try {
      const issued = await post("/api/v1/enrollment-tokens", {
        gateway_id: $("token-gateway").value.trim(),
        estate: $("token-estate").value.trim() || null,
        name: $("token-name").value.trim() || null,
        expires_in_s: Number($("token-expires").value) * 3600,
      });
      // The API answers with the base URL this browser used; gateways may need another.
      $("token-command").textContent = issued.enroll_command;
      $("token-shown").hidden = false;
      ev.target.reset();
      await load();
    } catch (err) {
      fail(err);
    }
  });
  await load().catch(fail);
}
