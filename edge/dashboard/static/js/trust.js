// The revocation banner: shown on every view once central has revoked this gateway (or refused
// to renew it as revoked). Nothing the gateway collects reaches central any more, so duty staff
// must know at once and call whoever runs central. Polled, because it changes rarely and must
// survive a page reload; the health view shows the details (broker refusals, renewal).
import { get } from "./api.js";
import { t } from "./i18n.js";
import { esc, fmtTime } from "./util.js";

const EVERY_MS = 30000;
let el = null;
let timer = null;
let last = null;

export function trustState() {
  return last;
}

function render() {
  if (!el) return;
  const revoked = last && last.revoked;
  if (!revoked) {
    el.hidden = true;
    el.innerHTML = "";
    return;
  }
  el.hidden = false;
  const when = revoked.at ? ` · ${esc(fmtTime(revoked.at))}` : "";
  el.innerHTML = `<div class="revoked-text">
      <strong data-testid="revoked-title">${esc(t("revoked_banner"))}</strong>
      <span data-testid="revoked-reason">${esc(t("revoked_reason", { r: revoked.reason || "—" }))}${when}</span>
      <span>${esc(t("revoked_hint"))}</span></div>`;
}

async function load() {
  try {
    last = await get("/api/trust");
  } catch {
    return; // keep what was shown: a banner must not vanish because one poll failed
  }
  render();
}

export function startTrust(bannerEl) {
  el = bannerEl;
  stopTrust();
  load();
  timer = setInterval(load, EVERY_MS);
}

export function stopTrust() {
  if (timer) clearInterval(timer);
  timer = null;
}

export function rerenderTrust() {
  render();
}
