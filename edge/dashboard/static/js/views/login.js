// Sign-in and the first-start administrator setup (there is no default password; the setup
// needs the one-time code the gateway printed at start).
import { post } from "../api.js";
import { t, lang, setLang } from "../i18n.js";
import { esc, errorText } from "../util.js";
import { unlockAudio } from "../alert.js";

function field(id, label, type = "text", extra = "") {
  return `<label class="field"><span>${esc(label)}</span>
    <input id="${id}" name="${id}" type="${type}" data-testid="${id.replace("_", "-")}" ${extra}></label>`;
}

export function mount(el, ctx) {
  const setup = ctx.arg === "setup";
  const siteName = ctx.session.site ? (lang() === "zh" && ctx.session.site.name_zh) || ctx.session.site.name : "";
  const fields = setup
    ? field("setup_code", t("setup_code"), "text", 'autocomplete="off" required spellcheck="false" placeholder="XXXX-XXXX-XXXX"') +
      field("setup_username", t("username"), "text", 'autocomplete="username" required') +
      field("setup_name", t("name"), "text", 'autocomplete="name"') +
      field("setup_phone", t("phone"), "tel", 'autocomplete="tel"') +
      field("setup_password", t("password"), "password", 'autocomplete="new-password" required minlength="8"') +
      field("setup_password2", t("password_again"), "password", 'autocomplete="new-password" required minlength="8"')
    : field("login_username", t("username"), "text", 'autocomplete="username" required autofocus') +
      field("login_password", t("password"), "password", 'autocomplete="current-password" required');
  el.innerHTML = `
    <div class="login-wrap">
      <form class="card login-card" novalidate>
        <div class="login-head">
          <h1>${esc(setup ? t("setup_title") : t("login_title"))}</h1>
          <button type="button" class="btn btn-ghost" data-testid="lang-switch-login">${esc(t("lang_other"))}</button>
        </div>
        <p class="muted">${esc(siteName)}</p>
        ${setup ? `<p class="hint">${esc(t("setup_hint"))}</p><p class="hint">${esc(t("setup_code_hint"))}</p>` : ""}
        ${fields}
        <p class="error" data-testid="${setup ? "setup-error" : "login-error"}" role="alert" hidden></p>
        <button type="submit" class="btn btn-primary btn-big" data-testid="${setup ? "setup-submit" : "login-submit"}">
          ${esc(setup ? t("setup_submit") : t("login"))}</button>
      </form>
    </div>`;
  const form = el.querySelector("form");
  const errorEl = el.querySelector(".error");
  const showError = (text) => {
    errorEl.textContent = text;
    errorEl.hidden = !text;
  };
  el.querySelector('[data-testid="lang-switch-login"]').addEventListener("click", () =>
    setLang(lang() === "zh" ? "en" : "zh"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    unlockAudio();
    const v = (id) => form.querySelector(`#${id}`).value;
    const button = form.querySelector('[type="submit"]');
    showError("");
    try {
      button.disabled = true;
      if (setup) {
        if (v("setup_password").length < 8) return showError(t("err_pw_short"));
        if (v("setup_password") !== v("setup_password2")) return showError(t("err_pw_mismatch"));
        await post("/api/setup", {
          code: v("setup_code").trim(),
          username: v("setup_username").trim(),
          password: v("setup_password"),
          name: v("setup_name").trim(),
          phone: v("setup_phone").trim(),
        });
        // The server signs the new administrator in (cookies set by the setup response).
      } else {
        await post("/api/login", { username: v("login_username").trim(), password: v("login_password") });
      }
      await ctx.signedIn();
    } catch (err) {
      showError(errorText(err));
      const pw = form.querySelector('input[type="password"]');
      if (pw && !setup) {
        pw.value = "";
        pw.focus();
      }
    } finally {
      button.disabled = false;
    }
  });
}
