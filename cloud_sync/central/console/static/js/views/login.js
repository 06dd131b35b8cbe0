// Sign-in, and the first run: the administrator account, guarded by the one-time setup code.
import { post } from "../api.js";
import { t } from "../i18n.js";
import { esc, errorText } from "../util.js";
import { signedIn } from "../app.js";

export async function render(root, mode) {
  const setup = mode === "setup";
  const field = (id, label, type = "text", extra = "") =>
    `<label for="${id}">${esc(t(label))}</label><input id="${id}" type="${type}" data-testid="${id}" ${extra}>`;
  root.innerHTML = `
    <form class="login" data-testid="${setup ? "setup-form" : "login-form"}" novalidate>
      <h1>${esc(t(setup ? "setup_title" : "login_title"))}</h1>
      ${setup ? `<p class="muted">${esc(t("setup_hint"))}</p>${field("setup-code", "setup_code", "text", 'autocomplete="off"')}` : ""}
      ${field(setup ? "setup-username" : "login-username", "username", "text", 'autocomplete="username"')}
      ${setup ? field("setup-name", "name") : ""}
      ${field(setup ? "setup-password" : "login-password", "password", "password", `autocomplete="${setup ? "new-password" : "current-password"}"`)}
      ${setup ? field("setup-password2", "password_again", "password", 'autocomplete="new-password"') : ""}
      <button class="btn" type="submit" data-testid="${setup ? "setup-submit" : "login-submit"}">${esc(t(setup ? "create_admin" : "login"))}</button>
      <div class="error" data-testid="${setup ? "setup-error" : "login-error"}" role="alert"></div>
    </form>`;
  const form = root.querySelector("form");
  const error = root.querySelector(".error");
  const value = (id) => root.querySelector(`#${id}`).value;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      if (setup) {
        if (value("setup-password") !== value("setup-password2")) {
          error.textContent = t("err_mismatch");
          return;
        }
        await post("/console/api/setup", {
          code: value("setup-code"),
          username: value("setup-username"),
          name: value("setup-name"),
          password: value("setup-password"),
        });
      } else {
        await post("/console/api/login", { username: value("login-username"), password: value("login-password") });
      }
      await signedIn();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  });
}
