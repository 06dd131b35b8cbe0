// Alarm console across estates: the active alarms, filtered by estate/class/priority/state,
// kept live by central's alarm stream (Server-Sent Events, /api/v1/alarms/stream).
import { request, get } from "../api.js";
import { t, label } from "../i18n.js";
import { esc, fmtTime, query, errorText, coalesce } from "../util.js";
import { alarmBadges } from "./fleet.js";
import { can } from "../app.js";
import { alarmCommand } from "./commands.js";

// The newest this many active alarms are listed; the totals by class above count them all.
const MAX_ROWS = 500;
const CLASSES = ["fire", "supervisory", "fault", "security", "other"];
const STATES = ["active_unacked", "active_acked", "cleared_unacked", "shelved"];

export function alarmRow(a) {
  return `<tr data-testid="alarm-row" data-alarm-id="${esc(a.id)}" data-alarm-class="${esc(a.alarm_class)}" data-estate="${esc(a.estate)}">
    <td>${esc(fmtTime(a.raised_at))}</td>
    <td>${esc(a.estate)}</td>
    <td>${esc(a.gateway_id)}</td>
    <td>${esc(a.point_id)}</td>
    <td><span class="badge cls-${esc(a.alarm_class)}">${esc(label("cls", a.alarm_class))}</span></td>
    <td>${esc(a.priority)}</td>
    <td class="state-${esc(a.state)}">${esc(label("st", a.state))}</td>
    <td class="wrap">${esc(a.message)}</td>
  </tr>`;
}

export const alarmHead = () =>
  ["time", "estate", "gateway", "point", "class", "priority", "state", "message"].map((k) => `<th>${esc(t(k))}</th>`).join("");

// Operators acknowledge or shelve at the alarm's gateway: central sends a signed command, and
// the gateway's LAN dashboard shows who did it and from where. The list follows the stream.
const ACKABLE = new Set(["active_unacked", "cleared_unacked"]);

function withActions(a) {
  const buttons = [
    ACKABLE.has(a.state) ? `<button class="btn btn-small" data-act="alarm.ack" data-id="${esc(a.id)}" data-testid="alarm-ack">${esc(t("ack"))}</button>` : "",
    a.state !== "shelved" ? `<button class="btn btn-ghost btn-small" data-act="alarm.shelve" data-id="${esc(a.id)}" data-testid="alarm-shelve">${esc(t("shelve"))}</button>` : "",
  ];
  return alarmRow(a).replace(/<\/tr>\s*$/, `<td>${buttons.join(" ")}</td></tr>`);
}

export async function render(root) {
  const commands = can("commands");
  const options = (values, prefix) => values.map((v) => `<option value="${esc(v)}">${esc(prefix ? label(prefix, v) : v)}</option>`).join("");
  root.innerHTML = `
    <div class="cards" data-testid="alarm-summary"></div>
    <div class="toolbar">
      <select data-testid="alarm-estate"><option value="">${esc(t("all_estates"))}</option></select>
      <select data-testid="alarm-class"><option value="">${esc(t("any_class"))}</option>${options(CLASSES, "cls")}</select>
      <select data-testid="alarm-priority"><option value="">${esc(t("any_priority"))}</option>${options([1, 2, 3, 4])}</select>
      <select data-testid="alarm-state"><option value="">${esc(t("any_state"))}</option>${options(STATES, "st")}</select>
      <span class="grow"></span>
      <span class="live off" data-testid="stream-state">${esc(t("live_off"))}</span>
    </div>
    <div class="error" data-testid="alarm-error"></div>
    <div class="muted" data-testid="alarm-count"></div>
    <div class="muted" data-testid="alarm-command-sent"></div>
    <div class="scroll"><table data-testid="alarm-list"><thead><tr>${alarmHead()}${commands ? `<th></th>` : ""}</tr></thead><tbody></tbody></table></div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const alarms = new Map();
  let source = null;
  let closed = false;
  let loadSeq = 0;
  let lost = false;
  let truncated = false;
  let summaryStarted = false;
  // Changes streamed while a load is under way: applied on top of its (older) answer.
  let during = null;

  const filters = () => ({
    estate: $("alarm-estate").value,
    class: $("alarm-class").value,
    priority: $("alarm-priority").value,
    state: $("alarm-state").value,
  });

  function keep(a) {
    const f = filters();
    if (a.state === "closed") return false;
    return (!f.estate || a.estate === f.estate) && (!f.class || a.alarm_class === f.class) &&
      (!f.priority || String(a.priority) === f.priority) && (!f.state || a.state === f.state);
  }

  const draw = coalesce(() => {
    const rows = [...alarms.values()].sort((a, b) => (b.raised_at || 0) - (a.raised_at || 0)).slice(0, MAX_ROWS);
    root.querySelector("tbody").innerHTML = rows.length
      ? rows.map((a) => (commands ? withActions(a) : alarmRow(a))).join("")
      : `<tr><td colspan="${commands ? 9 : 8}" class="muted">${esc(t("no_alarms"))}</td></tr>`;
    // a full first page: more may be active than were loaded (the totals by class are above)
    $("alarm-count").textContent = truncated
      ? t("alarms_newest", { a: rows.length })
      : t("alarms_shown", { a: rows.length, n: alarms.size });
    if (root.dataset.loaded && !root.dataset.rendered) {
      root.dataset.rendered = "1";
      performance.mark("ghc:alarms-rendered"); // read by bench/central_dashboard.py
    }
  });

  function apply(a) {
    const old = alarms.get(a.id);
    if (old && (old.updated_at || 0) > (a.updated_at || 0)) return;
    if (keep(a)) alarms.set(a.id, a);
    else alarms.delete(a.id);
  }

  async function load() {
    const seq = ++loadSeq;
    during = new Map();
    $("alarm-error").textContent = "";
    try {
      const f = filters();
      const { data, next } = await request("GET", `/api/v1/alarms${query({ ...f, active: "true", limit: MAX_ROWS })}`);
      if (seq !== loadSeq) return;
      truncated = Boolean(next);
      alarms.clear();
      for (const a of data) if (keep(a)) alarms.set(a.id, a);
      for (const a of during.values()) apply(a);
      during = null;
      draw();
      root.dataset.loaded = "1";
      // the totals after the list: the first answer does not wait for a second request
      if (!summaryStarted) {
        summaryStarted = true;
        summary();
      }
    } catch (err) {
      $("alarm-error").textContent = errorText(err);
    }
  }

  function connect() {
    if (source) source.close();
    const f = filters();
    source = new EventSource(`/api/v1/alarms/stream${query({ estate: f.estate, class: f.class, priority: f.priority })}`);
    source.addEventListener("open", () => {
      $("stream-state").className = "live on";
      $("stream-state").textContent = t("live_on");
      // whatever changed while the stream was down
      if (lost) load();
      lost = false;
    });
    source.addEventListener("error", () => {
      if (closed) return;
      lost = true;
      $("stream-state").className = "live off";
      $("stream-state").textContent = t("live_off");
    });
    source.addEventListener("alarm", (ev) => {
      let a;
      try {
        a = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (during) during.set(a.id, a);
      apply(a);
      draw();
      // the totals by class, at most every 2 s however many alarms stream in
      if (!summaryTimer) summaryTimer = setTimeout(() => ((summaryTimer = null), summary()), 2000);
    });
  }

  let estatesListed = false;
  let summaryTimer = null;
  async function summary() {
    const estates = await get("/api/v1/estates").catch(() => null);
    if (!estates || closed) return;
    if (!estatesListed) {
      estatesListed = true;
      const select = $("alarm-estate");
      for (const e of estates) select.insertAdjacentHTML("beforeend", `<option value="${esc(e.estate)}">${esc(e.estate)}</option>`);
    }
    const sum = {};
    for (const e of estates) for (const [c, n] of Object.entries(e.active_alarms || {})) sum[c] = (sum[c] || 0) + n;
    $("alarm-summary").innerHTML = `<div class="card"><h3>${esc(t("active_alarms"))}</h3>${alarmBadges(sum) || esc(t("no_alarms"))}</div>`;
  }

  const restart = () => {
    lost = false;
    connect();
    load();
  };
  for (const id of ["alarm-estate", "alarm-class", "alarm-priority", "alarm-state"]) $(id).addEventListener("change", restart);
  root.querySelector("tbody").addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-act]");
    const alarm = button && alarms.get(Number(button.dataset.id));
    if (!alarm) return;
    const extra = {};
    if (button.dataset.act === "alarm.shelve") {
      const reason = prompt(t("shelve_reason"), "");
      if (reason === null) return;
      extra.reason = reason.trim() || t("shelve_default_reason");
      extra.minutes = 60;
    }
    button.disabled = true;
    try {
      const sent = await alarmCommand(alarm, button.dataset.act, extra);
      $("alarm-command-sent").textContent = t("alarm_command_sent", { gw: alarm.gateway_id, cseq: sent.cseq });
    } catch (err) {
      $("alarm-error").textContent = errorText(err);
      button.disabled = false;
    }
  });
  restart();
  return () => {
    closed = true;
    clearTimeout(summaryTimer);
    if (source) source.close();
  };
}
