// Modal dialogs on the native <dialog> element: the form's named fields come back as an object,
// or null when cancelled. Confirmation dialogs put the dangerous choice on a red button.
import { t } from "./i18n.js";
import { esc } from "./util.js";

/**
 * @param {{title: string, body?: string, ok?: string, danger?: boolean, testid?: string,
 *          validate?: (values: object) => string}} opts  body: HTML of the form fields
 * @returns {Promise<object|null>}
 */
export function dialog(opts) {
  return new Promise((resolve) => {
    const dlg = document.createElement("dialog");
    dlg.className = "dlg";
    if (opts.testid) dlg.dataset.testid = opts.testid;
    dlg.innerHTML = `
      <form method="dialog">
        <h2>${esc(opts.title)}</h2>
        <div class="dlg-body">${opts.body || ""}</div>
        <p class="dlg-error" role="alert" hidden></p>
        <div class="dlg-actions">
          <button type="button" class="btn" value="cancel" data-testid="dialog-cancel">${esc(t("cancel"))}</button>
          <button type="submit" class="btn ${opts.danger ? "btn-danger" : "btn-primary"}" value="ok"
            data-testid="dialog-ok">${esc(opts.ok || t("ok"))}</button>
        </div>
      </form>`;
    document.body.appendChild(dlg);
    const form = dlg.querySelector("form");
    const errorEl = dlg.querySelector(".dlg-error");
    let result = null;
    form.addEventListener("submit", (event) => {
      const values = Object.fromEntries(new FormData(form).entries());
      const problem = opts.validate ? opts.validate(values) : "";
      if (problem) {
        event.preventDefault();
        errorEl.textContent = problem;
        errorEl.hidden = false;
        return;
      }
      result = values;
    });
    dlg.querySelector('[value="cancel"]').addEventListener("click", () => dlg.close());
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(result);
    });
    dlg.showModal();
    const first = dlg.querySelector("input, select, textarea");
    if (first) first.focus();
  });
}

export async function confirmDialog(title, message, { ok, danger = true } = {}) {
  const result = await dialog({ title, body: `<p>${esc(message)}</p>`, ok, danger, testid: "confirm-dialog" });
  return result !== null;
}

/** A short message at the bottom of the screen (errors stay longer). */
export function toast(message, kind = "info") {
  let host = document.getElementById("toasts");
  if (!host) {
    host = document.createElement("div");
    host.id = "toasts";
    host.setAttribute("aria-live", "polite");
    document.body.appendChild(host);
  }
  const el = document.createElement("div");
  el.className = `toast toast-${kind}`;
  el.dataset.testid = "toast";
  el.textContent = message;
  host.appendChild(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 3500);
}
