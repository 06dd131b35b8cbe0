// Administration: user accounts (role, validity, session timeout, login attempts, lock) and the
// audit log of every operation.
import { get, post, patch } from "../api.js";
import { t, has } from "../i18n.js";
import { esc, fmtTime, query, toLocalInput, fromLocalInput, errorText } from "../util.js";
import { dialog, toast } from "../dialog.js";

const ROLES = ["viewer", "operator", "technician", "admin"];

function userForm(u) {
  const roleOpts = ROLES.map((r) => `<option value="${r}"${u && u.role === r ? " selected" : ""}>${esc(t(`role_${r}`))}</option>`).join("");
  return `${u ? "" : `<label class="field"><span>${esc(t("username"))}</span><input name="username" required data-testid="user-username"></label>`}
    <label class="field"><span>${esc(t("name"))}</span><input name="name" value="${esc(u ? u.name : "")}"></label>
    <label class="field"><span>${esc(t("phone"))}</span><input name="phone" type="tel" value="${esc(u ? u.phone : "")}"></label>
    <label class="field"><span>${esc(t("role"))}</span><select name="role" data-testid="user-role">${roleOpts}</select></label>
    <label class="field"><span>${esc(t("valid_until"))}</span><input name="valid_until" type="datetime-local" value="${u && u.valid_until ? toLocalInput(u.valid_until) : ""}"></label>
    <label class="field"><span>${esc(t("session_timeout"))}</span><input name="session_timeout_min" type="number" min="1" value="${u && u.session_timeout_min ? u.session_timeout_min : ""}"></label>
    <label class="field"><span>${esc(t("max_attempts"))}</span><input name="max_login_attempts" type="number" min="1" max="20" value="${u && u.max_login_attempts ? u.max_login_attempts : ""}"></label>
    ${u ? `<label class="field inline"><input type="checkbox" name="disabled"${u.disabled ? " checked" : ""}><span>${esc(t("disabled"))}</span></label>` : ""}
    ${u && u.locked ? `<label class="field inline"><input type="checkbox" name="unlock" checked><span>${esc(t("unlock"))}</span></label>` : ""}
    <label class="field"><span>${esc(u ? t("new_password") : t("password"))}</span><input name="password" type="password" autocomplete="new-password" ${u ? "" : "required"} data-testid="user-password"></label>`;
}

function formBody(values, existing) {
  const body = {
    name: values.name || "",
    phone: values.phone || "",
    role: values.role,
    valid_until: fromLocalInput(values.valid_until),
  };
  if (values.session_timeout_min) body.session_timeout_min = Number(values.session_timeout_min);
  if (values.max_login_attempts) body.max_login_attempts = Number(values.max_login_attempts);
  if (values.password) body.password = values.password;
  if (existing) {
    body.disabled = values.disabled === "on";
    if (values.unlock === "on") body.unlock = true;
  } else body.username = String(values.username || "").trim();
  return body;
}

function usersView(el) {
  el.innerHTML = `<div class="toolbar"><h1>${esc(t("users_title"))}</h1><div class="spacer"></div>
    <button class="btn btn-primary" id="uadd" data-testid="user-add">${esc(t("add_user"))}</button></div>
    <div class="tbl-wrap"><table class="tbl" data-testid="users-table"><thead><tr><th>${esc(t("username"))}</th><th>${esc(t("name"))}</th>
    <th>${esc(t("phone"))}</th><th>${esc(t("role"))}</th><th>${esc(t("valid_until"))}</th><th>${esc(t("state"))}</th><th></th></tr></thead>
    <tbody id="urows"></tbody></table></div>`;
  let users = [];
  const load = async () => {
    try {
      users = (await get("/api/admin/users")).users || [];
    } catch (err) {
      el.querySelector("#urows").innerHTML = `<tr><td colspan="7" class="error">${esc(errorText(err))}</td></tr>`;
      return;
    }
    el.querySelector("#urows").innerHTML = users
      .map((u) => {
        const st = u.locked ? t("locked") : u.disabled ? t("disabled") : u.valid_until && u.valid_until < Date.now() / 1000 ? t("err_expired") : t("active_user");
        return `<tr data-user="${esc(u.username)}" data-testid="user-row"><td class="mono">${esc(u.username)}</td><td>${esc(u.name)}</td><td>${esc(u.phone)}</td>
          <td>${esc(t(`role_${u.role}`))}</td><td>${esc(u.valid_until ? fmtTime(u.valid_until) : "—")}</td>
          <td class="${u.locked || u.disabled ? "error" : ""}">${esc(st)}</td><td><button class="btn" data-edit>${esc(t("edit"))}</button></td></tr>`;
      })
      .join("");
  };
  const edit = async (u) => {
    const values = await dialog({
      title: u ? `${t("edit_user")} · ${u.username}` : t("add_user"),
      body: userForm(u),
      ok: t("save"),
      testid: "user-dialog",
      validate: (v) => (v.password && v.password.length < 8 ? t("err_pw_short") : ""),
    });
    if (!values) return;
    try {
      if (u) await patch(`/api/admin/users/${encodeURIComponent(u.username)}`, formBody(values, true));
      else await post("/api/admin/users", formBody(values, false));
      toast(t("saved"));
    } catch (err) {
      toast(errorText(err), "error");
    }
    load();
  };
  el.querySelector("#uadd").addEventListener("click", () => edit(null));
  el.querySelector("#urows").addEventListener("click", (event) => {
    const row = event.target.closest("[data-edit]") && event.target.closest("[data-user]");
    if (row) edit(users.find((u) => u.username === row.dataset.user));
  });
  load();
}

function auditView(el) {
  el.innerHTML = `<div class="toolbar"><h1>${esc(t("audit_title"))}</h1></div>
    <form class="filters card" id="afilters">
      <label class="field"><span>${esc(t("f_since"))}</span><input type="datetime-local" name="since" value="${toLocalInput(Date.now() / 1000 - 7 * 86400)}"></label>
      <label class="field"><span>${esc(t("user"))}</span><input name="user" size="12"></label>
      <label class="field"><span>${esc(t("action"))}</span><input name="action" size="12"></label>
      <button class="btn btn-primary" type="submit">${esc(t("search"))}</button></form>
    <div class="tbl-wrap"><table class="tbl" data-testid="audit-table"><thead><tr><th>${esc(t("col_time"))}</th><th>${esc(t("user"))}</th>
    <th>${esc(t("client_ip"))}</th><th>${esc(t("action"))}</th><th>${esc(t("target"))}</th><th>${esc(t("result"))}</th><th>${esc(t("details"))}</th></tr></thead>
    <tbody id="arows"></tbody></table></div>`;
  const form = el.querySelector("#afilters");
  const load = async () => {
    const f = new FormData(form);
    const q = query({ since: fromLocalInput(f.get("since")), user: String(f.get("user")).trim(), action: String(f.get("action")).trim(), limit: 500 });
    const body = el.querySelector("#arows");
    try {
      const rows = (await get(`/api/admin/audit${q}`)).rows || [];
      body.innerHTML = rows.length
        ? rows.map((r) => `<tr data-testid="audit-row"><td class="mono">${esc(fmtTime(r.ts))}</td><td>${esc(r.user)}</td><td class="mono">${esc(r.ip)}</td>
            <td title="${esc(r.action)}">${esc(has(`act_${r.action}`) ? t(`act_${r.action}`) : r.action)}</td><td>${esc(r.target)}</td><td class="${r.result === "ok" ? "" : "error"}">${esc(r.result)}</td><td>${esc(r.detail || "")}</td></tr>`).join("")
        : `<tr><td colspan="7" class="muted">${esc(t("no_data"))}</td></tr>`;
    } catch (err) {
      body.innerHTML = `<tr><td colspan="7" class="error">${esc(errorText(err))}</td></tr>`;
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
}

export function mount(el, ctx) {
  if (ctx.arg === "audit") auditView(el);
  else usersView(el);
}
