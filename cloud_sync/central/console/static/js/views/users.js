// Console accounts (administrators with every estate) and the console's audit log.
import { get, post, patch } from "../api.js";
import { t } from "../i18n.js";
import { esc, fmtTime, errorText } from "../util.js";

const ROLES = ["admin", "operator", "viewer"];
const estatesOf = (text) => {
  const list = text.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);
  return list.length ? list : null;
};

export async function render(root) {
  root.innerHTML = `
    <div class="panel">
      <h2>${esc(t("add_user"))}</h2>
      <form class="toolbar" data-testid="user-form">
        <input data-testid="new-username" placeholder="${esc(t("username"))}" autocomplete="off">
        <input data-testid="new-name" placeholder="${esc(t("name"))}">
        <input data-testid="new-password" type="password" placeholder="${esc(t("password"))}" autocomplete="new-password">
        <select data-testid="new-role">${ROLES.map((r) => `<option value="${r}">${esc(t(`role_${r}`))}</option>`).join("")}</select>
        <input class="grow" data-testid="new-estates" placeholder="${esc(t("estates_hint"))}">
        <button class="btn" data-testid="new-submit">${esc(t("add_user"))}</button>
      </form>
      <div class="error" data-testid="user-error"></div>
    </div>
    <div class="panel" style="margin-top:12px"><h2>${esc(t("users"))}</h2>
      <table data-testid="user-list"><thead><tr>
        <th>${esc(t("username"))}</th><th>${esc(t("name"))}</th><th>${esc(t("role"))}</th><th>${esc(t("estates"))}</th>
        <th>${esc(t("locked_from"))}</th><th></th>
      </tr></thead><tbody></tbody></table></div>
    <div class="panel" style="margin-top:12px"><h2>${esc(t("console_audit"))}</h2>
      <div class="scroll"><table data-testid="console-audit"><thead><tr>
        <th>${esc(t("time"))}</th><th>${esc(t("user"))}</th><th>${esc(t("ip"))}</th><th>${esc(t("action"))}</th>
        <th>${esc(t("target"))}</th><th>${esc(t("result"))}</th><th>${esc(t("detail"))}</th>
      </tr></thead><tbody></tbody></table></div></div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const fail = (err) => ($("user-error").textContent = errorText(err));

  async function load() {
    const [{ users }, { items }] = await Promise.all([get("/console/api/users"), get("/console/api/audit?limit=200")]);
    root.querySelector('[data-testid="user-list"] tbody').innerHTML = users
      .map(
        (u) => `<tr data-testid="user-row" data-user="${esc(u.username)}">
          <td>${esc(u.username)}${u.disabled ? ` <span class="muted">(${esc(t("disabled"))})</span>` : ""}</td>
          <td>${esc(u.name)}</td>
          <td><select data-act="role">${ROLES.map((r) => `<option value="${r}" ${r === u.role ? "selected" : ""}>${esc(t(`role_${r}`))}</option>`).join("")}</select></td>
          <td><input data-act="estates" value="${esc((u.estates || []).join(", "))}" placeholder="${esc(t("all_estates"))}"></td>
          <td>${esc((u.locked_from || []).join(", ") || "—")}</td>
          <td>
            <button class="btn btn-small" data-act="save">${esc(t("save"))}</button>
            <button class="btn btn-ghost btn-small" data-act="toggle">${esc(t(u.disabled ? "enable" : "disable"))}</button>
            ${u.locked ? `<button class="btn btn-ghost btn-small" data-act="unlock" data-testid="unlock-${esc(u.username)}">${esc(t("unlock"))}</button>` : ""}
            <button class="btn btn-ghost btn-small" data-act="password">${esc(t("reset_password"))}</button>
          </td></tr>`,
      )
      .join("");
    root.querySelector('[data-testid="console-audit"] tbody').innerHTML = items
      .map(
        (a) => `<tr data-testid="audit-row"><td>${esc(fmtTime(a.ts))}</td><td>${esc(a.user)}</td><td>${esc(a.ip)}</td>
          <td>${esc(a.action)}</td><td>${esc(a.target)}</td><td>${esc(a.result)}</td><td class="wrap">${esc(a.detail)}</td></tr>`,
      )
      .join("");
    for (const row of root.querySelectorAll('[data-testid="user-row"]')) {
      const user = users.find((u) => u.username === row.dataset.user);
      const name = encodeURIComponent(user.username);
      const act = (what, fn) => row.querySelector(`[data-act="${what}"]`)?.addEventListener("click", async () => {
        $("user-error").textContent = "";
        try {
          await fn();
          await load();
        } catch (err) {
          fail(err);
        }
      });
      act("save", () => {
        const estates = estatesOf(row.querySelector('[data-act="estates"]').value);
        return patch(`/console/api/users/${name}`, {
          role: row.querySelector('[data-act="role"]').value,
          ...(estates ? { estates } : { all_estates: true }),
        });
      });
      act("toggle", () => patch(`/console/api/users/${name}`, { disabled: !user.disabled }));
      act("unlock", () => post(`/console/api/users/${name}/unlock`));
      act("password", () => {
        const password = prompt(t("new_password"));
        return password ? post(`/console/api/users/${name}/password`, { password }) : null;
      });
    }
  }

  $("user-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("user-error").textContent = "";
    try {
      await post("/console/api/users", {
        username: $("new-username").value.trim(),
        name: $("new-name").value.trim(),
        password: $("new-password").value,
        role: $("new-role").value,
        estates: estatesOf($("new-estates").value),
      });
      ev.target.reset();
      await load();
    } catch (err) {
      fail(err);
    }
  });
  await load().catch(fail);
}
