// The fire indication, as a fire panel's: a red banner on every view, lit while any fire alarm is
// active, latched or not yet reset, whatever its acknowledgement; it names the first alarm and
// counts them all. A WebAudio sounder (no sound file needed) runs while a fire alarm is
// unacknowledged; "Silence" (消音) stops the sound only, and a new fire alarm sounds again. A lost
// link to the gateway sounds a slower fault tone (see live.js).
import { on, state, counts, isStale } from "./live.js";
import { t, pick, onLangChange } from "./i18n.js";
import { esc, fmtShort, placeOf } from "./util.js";

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

/** Every fire alarm that is not back to normal — active, latched or awaiting reset — whatever
 *  its acknowledgement: the fire indication stays lit until reset (GB 4717). Oldest first. */
export function fireAlarms() {
  const rows = [];
  for (const row of state.alarms.values()) {
    if (row.class === "fire" && row.state !== "shelved" && row.state !== "out_of_service") rows.push(row);
  }
  rows.sort((a, b) => (a.raised_at || 0) - (b.raised_at || 0));
  return rows;
}

function unackedFire() {
  return fireAlarms().filter((r) => r.unacked);
}

let linkSilenced = false;

function tone() {
  // Fire first; a lost link is a fault and sounds its own, slower tone (GB 4717 priorities).
  const fires = unackedFire();
  const keys = new Set(fires.map((r) => r.key));
  for (const k of silenced) if (!keys.has(k)) silenced.delete(k);
  if (!isStale()) linkSilenced = false;
  if (fires.some((r) => !silenced.has(r.key))) return "fire";
  if (state.link === "lost" && !linkSilenced) return "fault";
  return "";
}

let sounding = "";

function update() {
  const want = tone();
  if (want !== sounding) {
    if (timer) clearInterval(timer);
    timer = null;
    sounding = want;
    if (want === "fire") {
      beep();
      timer = setInterval(beep, 700);
    } else if (want === "fault") {
      faultBeep();
      timer = setInterval(faultBeep, 2000);
    }
  }
  document.body.dataset.beeping = sounding ? "1" : "0";
  document.body.dataset.tone = sounding;
  render();
}

function faultBeep() {
  const c = audio();
  if (!c || c.state !== "running") {
    render();
    return;
  }
  const osc = c.createOscillator();
  const gain = c.createGain();
  osc.type = "sine";
  osc.frequency.value = 520;
  const now = c.currentTime;
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.12, now + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.6);
  osc.connect(gain).connect(c.destination);
  osc.start(now);
  osc.stop(now + 0.65);
}

/** Silence (消音) stops the sounder only: the indications stay; a new alarm sounds again. */
export function silence() {
  for (const row of unackedFire()) silenced.add(row.key);
  if (state.link === "lost") linkSilenced = true;
  update();
}

function render() {
  if (!banner) return;
  const fires = fireAlarms();
  if (!fires.length) {
    banner.hidden = true;
    banner.innerHTML = "";
    document.body.classList.remove("fire-alert");
    return;
  }
  banner.hidden = false;
  document.body.classList.add("fire-alert");
  const blocked = timer && ctx && ctx.state !== "running";
  const first = fires[0];
  const unacked = fires.filter((r) => r.unacked).length;
  const latched = fires.filter((r) => r.state === "latched").length;
  const drill = fires.every((r) => r.drill);
  banner.classList.toggle("stale", isStale());
  banner.classList.toggle("drill", drill);
  banner.innerHTML = `
    <div class="banner-text">
      <strong data-testid="fire-count">${esc(t(drill ? "fire_banner_drill" : "fire_banner_n", { n: fires.length }))}</strong>
      <span class="banner-first" data-testid="fire-first">${esc(t("fire_banner_first", { m: `${fmtShort(first.raised_at)} ${pick(first.message)}` }))}
        <small>${esc(placeOf(first))}</small></span>
      <span class="banner-sub">${esc(t("fire_banner_status", { u: unacked, l: latched }))}${isStale() ? ` · ${esc(t("stale_mark"))}` : ""}</span>
    </div>
    <div class="banner-actions">
      ${blocked ? `<button class="btn" data-act="sound">${esc(t("sound_blocked"))}</button>` : ""}
      ${sounding === "fire" ? `<button class="btn" data-act="silence" data-testid="alarm-silence">${esc(t("silence"))}</button>` : ""}
      <a class="btn" href="#/duty">${esc(t("nav_duty"))}</a>
      <a class="btn" href="#/zones">${esc(t("nav_zones"))}</a>
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
  on("conn", update);
  onLangChange(render);
  update();
}

export function stopAlert() {
  if (timer) clearInterval(timer);
  timer = null;
  sounding = "";
  document.body.dataset.beeping = "0";
  document.body.dataset.tone = "";
  silenced.clear();
  document.body.classList.remove("fire-alert");
  if (banner) banner.hidden = true;
}

export { counts };
