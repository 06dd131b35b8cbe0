// The fire alert: a banner on every view that flashes while any fire alarm is unacknowledged, and
// a WebAudio beep loop (no sound file needed) until those alarms are acknowledged or silenced.
// "Silence" (消音) stops the sound for the fire alarms present now; a new fire alarm sounds again.
import { on, state, counts } from "./live.js";
import { t, pick, onLangChange } from "./i18n.js";
import { esc } from "./util.js";

let ctx = null;
let timer = null;
let beepHigh = true;
const silenced = new Set();
let banner = null;

function audio() {
  if (!ctx) {
    const Ctor = window.AudioContext || window.webkitAudioContext;
    if (!Ctor) return null;
    ctx = new Ctor();
  }
  return ctx;
}

/** Browsers start audio only after a user gesture: every click tries to resume it. */
export function unlockAudio() {
  const c = audio();
  if (c && c.state === "suspended") c.resume().then(render, () => {});
}

function beep() {
  const c = audio();
  if (!c || c.state !== "running") {
    render();
    return;
  }
  // Two alternating tones, the usual fire sounder pattern; loud enough, not piercing.
  const osc = c.createOscillator();
  const gain = c.createGain();
  osc.type = "square";
  osc.frequency.value = beepHigh ? 960 : 760;
  beepHigh = !beepHigh;
  const now = c.currentTime;
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.15, now + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.4);
  osc.connect(gain).connect(c.destination);
  osc.start(now);
  osc.stop(now + 0.45);
}

function unackedFire() {
  const rows = [];
  for (const row of state.alarms.values()) {
    if (row.class === "fire" && row.unacked && row.state !== "shelved") rows.push(row);
  }
  rows.sort((a, b) => (a.raised_at || 0) - (b.raised_at || 0));
  return rows;
}

function update() {
  const fires = unackedFire();
  const keys = new Set(fires.map((r) => r.key));
  for (const k of silenced) if (!keys.has(k)) silenced.delete(k);
  const sounding = fires.some((r) => !silenced.has(r.key));
  if (sounding && !timer) {
    beep();
    timer = setInterval(beep, 700);
  } else if (!sounding && timer) {
    clearInterval(timer);
    timer = null;
  }
  document.body.dataset.beeping = sounding ? "1" : "0";
  render();
}

export function silence() {
  for (const row of unackedFire()) silenced.add(row.key);
  update();
}

function render() {
  if (!banner) return;
  const fires = unackedFire();
  if (!fires.length) {
    banner.hidden = true;
    banner.innerHTML = "";
    document.body.classList.remove("fire-alert");
    return;
  }
  banner.hidden = false;
  document.body.classList.add("fire-alert");
  const blocked = timer && ctx && ctx.state !== "running";
  banner.innerHTML = `
    <div class="banner-text">
      <strong>${esc(t("fire_banner", { n: fires.length }))}</strong>
      <span>${esc(t("fire_banner_first", { m: pick(fires[0].message) }))}</span>
    </div>
    <div class="banner-actions">
      ${blocked ? `<button class="btn" data-act="sound">${esc(t("sound_blocked"))}</button>` : ""}
      ${timer ? `<button class="btn" data-act="silence" data-testid="alarm-silence">${esc(t("silence"))}</button>` : ""}
      <a class="btn" href="#/duty">${esc(t("nav_duty"))}</a>
    </div>`;
}

let started = false;

export function startAlert(bannerEl) {
  banner = bannerEl;
  if (started) {
    update();
    return;
  }
  started = true;
  banner.addEventListener("click", (event) => {
    const act = event.target.closest("[data-act]")?.dataset.act;
    if (act === "silence") silence();
    if (act === "sound") unlockAudio();
  });
  document.addEventListener("click", unlockAudio, { capture: true });
  document.addEventListener("keydown", unlockAudio, { capture: true });
  on("alarms", update);
  onLangChange(render);
  update();
}

export function stopAlert() {
  if (timer) clearInterval(timer);
  timer = null;
  silenced.clear();
  document.body.classList.remove("fire-alert");
  if (banner) banner.hidden = true;
}

export { counts };
