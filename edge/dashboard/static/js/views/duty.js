// The duty view: live alarm list (SSE, most urgent first), counts, acknowledge-all and the
// linkage panel. The list is rebuilt in one innerHTML pass per animation frame at most.
import { get, post } from "../api.js";
import { on, state, sortedAlarms, counts, reloadAlarms, isStale } from "../live.js";
import { t, pick, has, nameOf } from "../i18n.js";
import { esc, fmtShort, errorText } from "../util.js";
import { confirmDialog, toast } from "../dialog.js";
import { alarmRowHtml, alarmHeadHtml, classLabel, commRowHtml } from "./alarmrow.js";
import { loadSite } from "./sitedata.js";
import { alarmAction } from "./alarmactions.js";

let firstRenderMarked = false;

function countsHtml(stale) {
  const c = counts();
  // Offline devices are faults too: the count never says fewer faults than the page shows.
  const comm = state.commFaults.length;
  const st = stale ? " stale" : "";
  const chips = [
    `<span class="chip chip-unacked${st}" data-testid="count-unacked">${esc(t("cnt_unacked"))} <b>${c.unacked}</b></span>`,
    `<span class="chip${st}" data-testid="count-active">${esc(t("cnt_active"))} <b>${c.active + comm}</b></span>`,
    `<span class="chip${st}" data-testid="count-shelved">${esc(t("cnt_shelved"))} <b>${c.shelved}</b></span>`,
  ];
  const byClass = { ...c.byClass };
  if (comm) byClass.fault = (byClass.fault || 0) + comm;
  for (const klass of ["fire", "supervisory", "fault"]) {
    if (byClass[klass]) chips.push(`<span class="chip c-${klass}${st}" data-testid="count-${klass}">${esc(classLabel(klass))} <b>${byClass[klass]}</b></span>`);
  }
  for (const [klass, n] of Object.entries(byClass)) {
    if (!["fire", "supervisory", "fault"].includes(klass))
      chips.push(`<span class="chip${st}">${esc(classLabel(klass === "other" ? null : klass))} <b>${n}</b></span>`);
  }
  return chips.join("");
}

function linkageState(s) {
  return has(`lk_${s}`) ? t(`lk_${s}`) : s || "";
}

/** The profile's word for a group of devices ("门禁"), falling back to the point id. */
function groupLabel(h) {
  const prof = String(h.profile || "").replace(/-/g, "_");
  if (has(`prof_${prof}`)) return t(`prof_${prof}`);
  if (/charg|terra|ev/.test(prof)) return t("prof_charger");
  return h.point;
}

/** What a write holds, in words: "已释放", "0 A", "迫降至 1 层". */
function holdWords(h) {
  const v = h.value === true ? "" : String(h.value);
  if (has(`hw_${h.point}`)) return t(`hw_${h.point}`, { v });
  if (/_emergency$/.test(h.point)) return t("hw_emergency_mode");
  if (/^output/.test(h.point)) return t("hw_output");
  return t("hw_generic", { v: String(h.value) });
}

function holdingHtml(rule) {
  if (!rule.holding || !rule.holding.length) return "";
  const items = rule.holding
    .map((h) => {
      const count = h.total > 1 ? ` ${h.ok}/${h.total}` : "";
      const extra = (h.pending ? t("lk_pending_n", { n: h.pending }) : "") + (h.skipped ? t("lk_skipped_n", { n: h.skipped }) : "");
      const fails = h.failed
        .map((f) => `<li class="bad" data-testid="linkage-failure">${esc(nameOf({ name: f.device_name, name_zh: f.device_name_zh, id: f.device }))}: ${esc(t("lk_failed_item", { r: f.reason || "?" }))}</li>`)
        .join("");
      const cls = h.failed.length ? "bad" : h.ok === h.total ? "ok" : "";
      return `<li class="${cls}" data-testid="linkage-holding"><span>${esc(groupLabel(h))}${esc(count)}</span><b>${esc(holdWords(h))}${esc(extra)}</b></li>${fails}`;
    })
    .join("");
  const failed = rule.holding.reduce((n, h) => n + h.failed.length, 0);
  return `<div class="lk-holds"><small>${esc(t("lk_holds"))}${failed ? ` · <span class="lk-fail">${esc(t("lk_failed_n", { n: failed }))}</span>` : ""}</small>
    <ul class="lk-sum" data-testid="linkage-summary">${items}</ul></div>`;
}

function linkageHtml(data, can) {
  const rules = data.rules || [];
  const log = (data.log || []).slice(0, 20);
  const canAct = can("confirm_linkage");
  const rulesHtml = rules.length
    ? rules
        .map((r) => {
          const waiting = r.state === "awaiting_confirm";
          const holds = r.state === "running" || r.state === "done";
          const buttons = canAct
            ? `${waiting ? `<button class="btn btn-primary" data-lk="confirm" data-testid="linkage-confirm">${esc(t("linkage_confirm"))}</button>` : ""}
               ${waiting ? `<button class="btn" data-lk="cancel" data-testid="linkage-cancel">${esc(t("linkage_cancel"))}</button>` : ""}
               ${r.state === "idle" || waiting ? `<button class="btn" data-lk="start" data-testid="linkage-start">${esc(t("lk_start"))}</button>` : ""}
               ${holds ? `<button class="btn" data-lk="restore" data-testid="linkage-restore">${esc(t("lk_restore"))}</button>` : ""}`
            : "";
          const mode = has(`mode_${r.mode}`) ? t(`mode_${r.mode}`) : r.mode || "";
          const zones = (r.zone_names || []).map((z) => pick({ zh: z.zone_name_zh || z.zone_name, en: z.zone_name || z.zone_name_zh }) || t("zone_n", { z: z.id })).join("、");
          const moving = r.state === "running" || r.state === "restoring";
          const step =
            moving && r.step != null
              ? ` · ${esc(t("step_n", { i: Number(r.step) + 1, n: r.steps ?? "?" }))}${r.step_name ? ` ${esc(pick(r.step_name))}` : ""}`
              : "";
          return `<li class="lk lk-${esc(r.state)}" data-rule="${esc(r.id)}" data-state="${esc(r.state)}" data-testid="linkage-rule">
            <div><b>${esc(pick(r.name) || r.id)}</b><small>${esc([zones, mode].filter(Boolean).join(" · "))}</small></div>
            <div class="lk-state">${esc(linkageState(r.state))}${step}</div>
            ${r.held_off ? `<small class="lk-fail">${esc(t("lk_held_off"))}</small>` : ""}
            ${holdingHtml(r)}
            <div class="lk-act">${buttons}</div></li>`;
        })
        .join("")
    : `<li class="muted">${esc(t("linkage_none"))}</li>`;
  const names = new Map(rules.map((r) => [r.id, pick(r.name) || r.id]));
  const logHtml = log
    .map(
      (e) => `<li class="lkk-${esc(e.kind)}"><span class="mono">${esc(fmtShort(e.ts))}</span> <b>${esc(names.get(e.rule) || e.rule)}</b>
        ${esc(has(`lkk_${e.kind}`) ? t(`lkk_${e.kind}`) : e.kind)}
        ${e.point ? `<small>${esc(String(e.point).split("/").slice(1).join("/"))}${e.value != null ? ` = ${esc(String(e.value))}` : ""}</small>` : ""}
        ${e.detail ? `<small>${esc(e.detail)}</small>` : ""}</li>`,
    )
    .join("");
  return `<h2>${esc(t("linkage_title"))}</h2><ul class="lk-rules">${rulesHtml}</ul>
    ${log.length ? `<h3>${esc(t("linkage_log"))}</h3><ul class="lk-log">${logHtml}</ul>` : ""}`;
}

/** The drill controls: scope, duration, whether linkage runs; every action takes two clicks. */
function drillFormHtml(zones, can) {
  if (!can("drill")) return "";
  const options = [`<option value="">${esc(t("drill_site"))}</option>`]
    .concat(zones.map((z) => `<option value="${esc(z.id)}">${esc(pick({ zh: z.name_zh || z.name, en: z.name || z.name_zh }) || t("zone_n", { z: z.id }))}</option>`))
    .join("");
  const active = state.drills
    .map(
      (d) => `<li data-drill="${esc(d.zone || "")}">${esc(d.zone ? pick({ zh: d.zone_name_zh || d.zone_name, en: d.zone_name || d.zone_name_zh }) || d.zone : t("drill_site"))}
        <button class="btn" data-drill-act="end" data-testid="drill-end">${esc(t("drill_end"))}</button></li>`,
    )
    .join("");
  return `<h2>${esc(t("drill_title"))}</h2>
    ${active ? `<ul class="lk-rules">${active}</ul>` : ""}
    <div class="lk-manual">
      <label>${esc(t("drill_scope"))} <select id="drill-zone" data-testid="drill-zone">${options}</select></label>
      <label>${esc(t("drill_minutes"))} <select id="drill-minutes" data-testid="drill-minutes">
        ${[15, 30, 60, 120].map((m) => `<option value="${m}"${m === 30 ? " selected" : ""}>${esc(t("minutes_n", { n: m }))}</option>`).join("")}</select></label>
      <label><input type="checkbox" id="drill-linkage" data-testid="drill-linkage"> ${esc(t("drill_linkage"))}</label>
      <button class="btn" data-drill-act="start" data-testid="drill-start">${esc(t("drill_start"))}</button>
    </div>`;
}

/** Two clicks for anything that moves field equipment or changes what the centre sees. */
function armed(button) {
  if (button.classList.contains("armed")) return true;
  const text = button.textContent;
  button.classList.add("armed");
  button.textContent = t("lk_click_again");
  setTimeout(() => {
    button.classList.remove("armed");
    button.textContent = text;
  }, 6000);
  return false;
}

function drillsHtml() {
  if (!state.drills.length) return "";
  return state.drills
    .map((d) => {
      const zone = d.zone ? pick({ zh: d.zone_name_zh || d.zone_name, en: d.zone_name || d.zone_name_zh }) || t("zone_n", { z: d.zone }) : t("drill_site");
      const l = d.linkage ? t("drill_with_linkage") : t("drill_no_linkage");
      return `<div class="drill-bar" data-testid="drill-bar" data-scope="${esc(d.scope)}"><b class="tag drill">${esc(t("drill_tag"))}</b>${esc(t("drill_bar", { z: zone, t: fmtShort(d.until), l }))}</div>`;
    })
    .join("");
}

export function mount(el, ctx) {
  const { can } = ctx;
  el.innerHTML = `
    <div class="duty">
      <section class="duty-main">
        <div class="toolbar">
          <h1>${esc(t("duty_title"))}</h1>
          <div class="counts" id="duty-counts"></div>
          <div class="spacer"></div>
          ${can("ack") ? `<button class="btn btn-ack" id="ack-all" data-testid="alarm-ack-all">${esc(t("ack_all"))}</button>` : ""}
        </div>
        <p class="stale-note" id="stale-note" data-testid="stale-note" hidden></p>
        <div id="drills"></div>
        <p class="flood-note" id="flood" hidden>${esc(t("flood"))}</p>
        <div class="alarm-table">
          ${alarmHeadHtml()}
          <div class="alarm-list" id="alarm-list" data-testid="alarm-list" aria-live="polite"></div>
        </div>
      </section>
      <aside class="duty-side card" id="linkage" data-testid="linkage-panel"></aside>
    </div>`;
  const listEl = el.querySelector("#alarm-list");
  const countsEl = el.querySelector("#duty-counts");
  const floodEl = el.querySelector("#flood");
  const linkageEl = el.querySelector("#linkage");
  let linkageTimer = null;

  const staleEl = el.querySelector("#stale-note");
  const drillsEl = el.querySelector("#drills");

  function render() {
    const stale = isStale() && state.link !== "connecting";
    staleEl.hidden = !stale;
    staleEl.textContent = stale ? t("state_unknown") : "";
    drillsEl.innerHTML = drillsHtml(can);
    if (!state.loaded) {
      listEl.innerHTML = stale
        ? `<p class="unknown-state" data-testid="state-unknown">${esc(t("state_unknown"))}</p>`
        : `<p class="muted pad">${esc(t("loading"))}</p>`;
      return;
    }
    const rows = sortedAlarms();
    const comm = state.commFaults.map((row) => commRowHtml(row, stale)).join("");
    // Fire first, then the rest; the communication faults follow the fire alarms.
    const fire = rows.filter((r) => r.class === "fire" && r.state !== "shelved");
    const rest = rows.filter((r) => !(r.class === "fire" && r.state !== "shelved"));
    const html = fire.map((row) => alarmRowHtml(row, can, stale)).join("") + comm + rest.map((row) => alarmRowHtml(row, can, stale)).join("");
    // "All normal" only when the page knows it: never while the link is down or resynchronising.
    listEl.innerHTML = html
      ? html
      : stale
        ? `<p class="unknown-state" data-testid="state-unknown">${esc(t("state_unknown"))}</p>`
        : state.unverified.length
          ? `<p class="unknown-state" data-testid="state-checking">${esc(t("state_checking", { n: state.unverified.length }))}</p>`
          : `<p class="all-clear" data-testid="no-alarms">${esc(t("no_alarms"))}</p>`;
    countsEl.innerHTML = countsHtml(stale);
    floodEl.hidden = !state.flood;
    if (!firstRenderMarked) {
      firstRenderMarked = true;
      performance.mark("gh:duty-rendered", { detail: { rows: rows.length } });
    }
  }

  async function loadLinkage() {
    // an armed (first-clicked) button must not vanish under the operator's finger
    if (linkageEl.querySelector(".armed")) {
      clearTimeout(linkageTimer);
      linkageTimer = setTimeout(loadLinkage, 1000);
      return;
    }
    try {
      const [data, drills] = await Promise.all([get("/api/linkage"), can("drill") ? get("/api/drills") : Promise.resolve({ zones: [] })]);
      linkageEl.innerHTML = linkageHtml(data, can) + drillFormHtml(drills.zones || [], can);
    } catch (err) {
      linkageEl.innerHTML = `<h2>${esc(t("linkage_title"))}</h2><p class="error">${esc(errorText(err))}</p>`;
    }
  }

  listEl.addEventListener("click", (event) => {
    const button = event.target.closest("[data-act]");
    if (!button) return;
    const key = button.closest("[data-key]").dataset.key;
    button.disabled = true;
    alarmAction(button.dataset.act, key).finally(() => {
      button.disabled = false;
    });
  });

  const ackAll = el.querySelector("#ack-all");
  if (ackAll)
    ackAll.addEventListener("click", async () => {
      const keys = sortedAlarms().filter((r) => r.unacked && r.state !== "shelved").map((r) => r.key);
      if (!keys.length) return;
      if (!(await confirmDialog(t("ack_all"), t("ack_all_q", { n: keys.length }), { danger: false }))) return;
      try {
        await post("/api/alarms/ack_all", { keys });
        await reloadAlarms();
      } catch (err) {
        toast(errorText(err), "error");
      }
    });

  linkageEl.addEventListener("click", async (event) => {
    const drillButton = event.target.closest("[data-drill-act]");
    if (drillButton) {
      if (!armed(drillButton)) return;
      try {
        if (drillButton.dataset.drillAct === "start") {
          const zone = linkageEl.querySelector("#drill-zone").value || null;
          const minutes = Number(linkageEl.querySelector("#drill-minutes").value);
          const linkage = linkageEl.querySelector("#drill-linkage").checked;
          await post("/api/drills/start", { zone, minutes, linkage });
        } else {
          const zone = drillButton.closest("[data-drill]").dataset.drill || null;
          await post("/api/drills/end", { zone });
        }
        await reloadAlarms(true);
      } catch (err) {
        toast(errorText(err), "error");
      }
      loadLinkage();
      return;
    }
    const button = event.target.closest("[data-lk]");
    if (!button) return;
    const rule = button.closest("[data-rule]").dataset.rule;
    const name = button.closest("[data-rule]").querySelector("b").textContent;
    const act = button.dataset.lk;
    if (act === "start" || act === "restore") {
      if (!armed(button)) return;
      try {
        await post(`/api/linkage/${act}`, { rule });
        toast(t(act === "start" ? "lk_started_ok" : "lk_restored_ok"), "ok");
      } catch (err) {
        toast(errorText(err), "error");
      }
      loadLinkage();
      return;
    }
    const confirm = act === "confirm";
    const ok = await confirmDialog(
      confirm ? t("linkage_confirm") : t("linkage_cancel"),
      confirm ? t("linkage_confirm_q", { r: name }) : t("linkage_cancel_q", { r: name }),
    );
    if (!ok) return;
    try {
      await post(confirm ? "/api/linkage/confirm" : "/api/linkage/cancel", { rule });
    } catch (err) {
      toast(errorText(err), "error");
    }
    loadLinkage();
  });

  render();
  loadLinkage();
  // The values of enum alarms show their labels once the points' enums are known (the site
  // tree); fetched after the first render so that the alarm list never waits for it. Until
  // then, or if it fails, a value shows as its code.
  let alive = true;
  loadSite().then(
    () => alive && render(),
    () => {},
  );
  const offAlarms = on("alarms", render);
  const offConn = on("conn", render);
  const offLinkage = on("linkage", () => {
    clearTimeout(linkageTimer);
    linkageTimer = setTimeout(loadLinkage, 300);
  });
  return () => {
    alive = false;
    offAlarms();
    offConn();
    offLinkage();
    clearTimeout(linkageTimer);
  };
}
