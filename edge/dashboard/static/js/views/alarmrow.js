// One alarm as an HTML string, shared by the duty view and the device detail. Strings, not DOM
// nodes: a thousand rows go into the page in one innerHTML pass.
import { t, pick, has, nameOf } from "../i18n.js";
import { esc, fmtShort, fmtTime, alarmValueText, placeOf } from "../util.js";

const KNOWN_CLASSES = new Set(["fire", "fault", "supervisory", "security"]);

export function classOf(row) {
  return KNOWN_CLASSES.has(row.class) ? row.class : "other";
}

export function classLabel(klass) {
  return has(`class_${klass}`) ? t(`class_${klass}`) : klass ? String(klass) : t("class_other");
}

// The alarm API documents short state names; the rules engine emits the ISA long ones.
const STATE_ALIASES = { unacked: "unacknowledged", acked: "acknowledged", rtn_unacked: "returned_unacknowledged" };

export function normState(state) {
  return STATE_ALIASES[state] || state || "normal";
}

export function stateLabel(state) {
  const s = normState(state);
  return has(`st_${s}`) ? t(`st_${s}`) : s;
}

export function location(row) {
  const place = placeOf(row);
  if (place && (row.device_name || row.device_name_zh || row.zone_name)) return place;
  const parts = [];
  if (place) parts.push(place);
  if (row.point) {
    const bits = String(row.point).split("/");
    parts.push(bits.slice(1).join("/") || row.point);
  } else if (row.device) parts.push(row.device);
  return parts.join(" · ");
}

/** Buttons a row offers to this user; each carries data-act for the list's one click handler. */
function actions(row, can) {
  const s = normState(row.state);
  const out = [];
  if (row.unacked && can("ack"))
    out.push(`<button class="btn btn-ack" data-act="ack" data-testid="alarm-ack">${esc(t("ack"))}</button>`);
  if (s === "latched" && !row.unacked && can("ack"))
    out.push(`<button class="btn" data-act="reset" data-testid="alarm-reset">${esc(t("reset"))}</button>`);
  if (can("shelve")) {
    if (s === "shelved")
      out.push(`<button class="btn" data-act="unshelve" data-testid="alarm-unshelve">${esc(t("unshelve"))}</button>`);
    else out.push(`<button class="btn" data-act="shelve" data-testid="alarm-shelve">${esc(t("shelve"))}</button>`);
  }
  if (can("comment"))
    out.push(`<button class="btn" data-act="comment" data-testid="alarm-comment">${esc(t("comment"))}</button>`);
  return out.join("");
}

export function alarmRowHtml(row, can, stale = false) {
  const klass = classOf(row);
  const s = normState(row.state);
  const flash = row.unacked && klass === "fire" && s !== "shelved" ? " flash" : "";
  const shelved = s === "shelved" && row.shelved_until ? ` · ${t("shelved_until", { t: fmtShort(row.shelved_until) })}` : "";
  const value = row.value != null && typeof row.value !== "boolean" ? ` = ${alarmValueText(row.point, row.value)}` : "";
  const drill = row.drill ? `<b class="tag drill" data-testid="drill-tag">${esc(t("drill_tag"))}</b>` : "";
  return `<div class="arow c-${klass} p-${esc(row.priority)} s-${esc(s)}${row.unacked ? " unacked" : ""}${flash}${stale ? " stale" : ""}"
 data-testid="alarm-row" data-key="${esc(row.key)}" data-state="${esc(s)}" data-class="${esc(klass)}" data-stale="${stale ? "1" : "0"}" data-drill="${row.drill ? "1" : "0"}">
<span class="a-time" title="${esc(fmtTime(row.raised_at))}">${esc(fmtShort(row.raised_at))}</span>
<span class="a-class"><b class="tag c-${klass}">${esc(classLabel(row.class))}</b>${drill}</span>
<span class="a-prio">${esc(has(`prio_${row.priority}`) ? t(`prio_${row.priority}`) : row.priority || "")}</span>
<span class="a-msg">${esc(pick(row.message))}${esc(value)}<small>${esc(location(row))}</small></span>
<span class="a-state" data-testid="alarm-state">${esc(stateLabel(s))}${esc(shelved)}</span>
<span class="a-act">${actions(row, can)}</span>
</div>`;
}

export function alarmHeadHtml() {
  return `<div class="arow ahead" aria-hidden="true"><span>${esc(t("col_time"))}</span><span>${esc(t("col_class"))}</span>
<span>${esc(t("col_prio"))}</span><span>${esc(t("col_message"))}</span><span>${esc(t("col_state"))}</span>
<span>${esc(t("col_actions"))}</span></div>`;
}

/** A device or a whole bus the gateway cannot reach: a fault row of its own, never silence. */
export function commRowHtml(row, stale = false) {
  const what =
    row.kind === "bus"
      ? t("comm_bus", { b: row.bus, n: row.count })
      : t("comm_device", { d: nameOf({ name: row.device_name, name_zh: row.device_name_zh, id: row.id }) });
  const since = row.since != null ? t("comm_since", { t: fmtShort(row.since) }) : "";
  return `<div class="arow comm c-fault${stale ? " stale" : ""}" data-testid="comm-fault-row" data-key="${esc(row.key)}" data-kind="${esc(row.kind)}" data-id="${esc(row.id)}">
<span class="a-time">${esc(row.since != null ? fmtShort(row.since) : "—")}</span>
<span class="a-class"><b class="tag c-fault">${esc(t("class_fault"))}</b></span>
<span class="a-prio">${esc(t("class_comm"))}</span>
<span class="a-msg">${esc(what)}<small>${esc([placeOf(row), since].filter(Boolean).join(" · "))}</small></span>
<span class="a-state">${esc(t("st_offline"))}</span>
<span class="a-act"></span>
</div>`;
}

