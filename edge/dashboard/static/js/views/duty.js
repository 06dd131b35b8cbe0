// The duty view: live alarm list (SSE, most urgent first), counts, acknowledge-all and the
// linkage panel. The list is rebuilt in one innerHTML pass per animation frame at most.
import { get, post } from "../api.js";
import { on, state, sortedAlarms, counts, reloadAlarms, isStale } from "../live.js";
import { t, pick, has } from "../i18n.js";
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

function linkageHtml(data, can) {
  const rules = data.rules || [];
  const log = (data.log || []).slice(0, 20);
  const canAct = can("confirm_linkage");
  const rulesHtml = rules.length
    ? rules
        .map((r) => {
          const waiting = r.state === "awaiting_confirm";
          const busy = waiting || r.state === "running";
          const buttons = canAct
            ? `${waiting ? `<button class="btn btn-primary" data-lk="confirm" data-testid="linkage-confirm">${esc(t("linkage_confirm"))}</button>` : ""}
               ${busy ? `<button class="btn" data-lk="cancel" data-testid="linkage-cancel">${esc(t("linkage_cancel"))}</button>` : ""}`
            : "";
          const mode = has(`mode_${r.mode}`) ? t(`mode_${r.mode}`) : r.mode || "";
          const moving = r.state === "running" || r.state === "restoring";
          const step =
            moving && r.step != null
              ? ` · ${esc(t("step_n", { i: Number(r.step) + 1, n: r.steps ?? "?" }))}${r.step_name ? ` ${esc(pick(r.step_name))}` : ""}`
              : "";
          return `<li class="lk lk-${esc(r.state)}" data-rule="${esc(r.id)}" data-testid="linkage-rule">
            <div><b>${esc(pick(r.name) || r.id)}</b><small>${esc(mode)}</small></div>
            <div class="lk-state">${esc(linkageState(r.state))}${step}</div>
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
        : `<p class="all-clear" data-testid="no-alarms">${esc(t("no_alarms"))}</p>`;
    countsEl.innerHTML = countsHtml(stale);
    floodEl.hidden = !state.flood;
    if (!firstRenderMarked) {
      firstRenderMarked = true;
      performance.mark("gh:duty-rendered", { detail: { rows: rows.length } });
    }
  }

  async function loadLinkage() {
    try {
      linkageEl.innerHTML = linkageHtml(await get("/api/linkage"), can);
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
    const button = event.target.closest("[data-lk]");
    if (!button) return;
    const rule = button.closest("[data-rule]").dataset.rule;
    const name = button.closest("[data-rule]").querySelector("b").textContent;
    const confirm = button.dataset.lk === "confirm";
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
