// Alarm history search (R2.8): filters, pages of 100 and a CSV export of the same query.
import { get } from "../api.js";
import { t, pick, has } from "../i18n.js";
import { esc, fmtTime, alarmValueText, query, toLocalInput, fromLocalInput, errorText } from "../util.js";
import { classOf, classLabel, location } from "./alarmrow.js";
import { loadSite } from "./sitedata.js";

const PAGE = 100;

function options(values, labelOf, selected) {
  return [`<option value="">${esc(t("f_all"))}</option>`]
    .concat(values.map((v) => `<option value="${v}"${v === selected ? " selected" : ""}>${esc(labelOf(v))}</option>`))
    .join("");
}

export function mount(el) {
  const now = Date.now() / 1000;
  // The points' enums (for the labels of enum alarm values), fetched alongside the first page;
  // without them a value shows as its code.
  const siteReady = loadSite().catch(() => null);
  el.innerHTML = `
    <div class="toolbar"><h1>${esc(t("history_title"))}</h1></div>
    <form class="filters card" id="hfilters" data-testid="history-filters">
      <label class="field"><span>${esc(t("f_since"))}</span><input type="datetime-local" name="since" value="${toLocalInput(now - 86400)}"></label>
      <label class="field"><span>${esc(t("f_until"))}</span><input type="datetime-local" name="until"></label>
      <label class="field"><span>${esc(t("f_prio"))}</span><select name="priority">${options(
        ["critical", "high", "medium", "low"],
        (p) => t(`prio_${p}`),
      )}</select></label>
      <label class="field"><span>${esc(t("f_class"))}</span><select name="class">${options(
        ["fire", "supervisory", "fault"],
        (c) => classLabel(c),
      )}</select></label>
      <label class="field"><span>${esc(t("f_device"))}</span><input name="device" size="14"></label>
      <label class="field"><span>${esc(t("f_text"))}</span><input name="text" size="14" type="search"></label>
      <button class="btn btn-primary" type="submit" data-testid="history-search">${esc(t("search"))}</button>
      <a class="btn" id="csv" data-testid="history-csv" download>${esc(t("export_csv"))}</a>
    </form>
    <div class="tbl-wrap"><table class="tbl" data-testid="history-table"><thead><tr>
      <th>${esc(t("col_time"))}</th><th>${esc(t("col_event"))}</th><th>${esc(t("col_class"))}</th>
      <th>${esc(t("col_prio"))}</th><th>${esc(t("col_message"))}</th><th>${esc(t("col_location"))}</th>
      <th>${esc(t("col_by"))}</th><th>${esc(t("col_comment"))}</th></tr></thead><tbody id="hrows"></tbody></table></div>
    <div class="pager"><button class="btn" id="prev">${esc(t("prev_page"))}</button>
      <span id="hcount" class="muted"></span><button class="btn" id="next">${esc(t("next_page"))}</button></div>`;
  const form = el.querySelector("#hfilters");
  const body = el.querySelector("#hrows");
  const csv = el.querySelector("#csv");
  // Paged by key: cursors[i] is the `before` of page i (null: the newest rows), so going back
  // re-reads a page the server finds by index rather than by counting skipped rows.
  let cursors = [null];
  let page = 0;
  let next = null;

  function params() {
    const f = new FormData(form);
    return {
      since: fromLocalInput(f.get("since")),
      until: fromLocalInput(f.get("until")),
      priority: f.get("priority"),
      class: f.get("class"),
      device: String(f.get("device") || "").trim(),
      text: String(f.get("text") || "").trim(),
    };
  }

  async function load() {
    const p = params();
    csv.href = `/api/alarms/history.csv${query(p)}`;
    body.innerHTML = `<tr><td colspan="8" class="muted">${esc(t("loading"))}</td></tr>`;
    try {
      const before = cursors[page];
      const data = await get(`/api/alarms/history${query({ ...p, limit: PAGE, ...(before ? { before } : {}) })}`);
      await siteReady;
      const rows = data.rows || [];
      body.innerHTML = rows.length
        ? rows
            .map((r) => {
              const tr = has(`tr_${r.transition}`) ? t(`tr_${r.transition}`) : r.transition;
              const value = r.value != null && typeof r.value !== "boolean" ? ` = ${alarmValueText(r.point, r.value)}` : "";
              return `<tr data-testid="history-row"><td class="mono">${esc(fmtTime(r.ts))}</td><td>${esc(tr)}</td>
              <td><b class="tag c-${classOf(r)}">${esc(classLabel(r.class))}</b></td>
              <td>${esc(has(`prio_${r.priority}`) ? t(`prio_${r.priority}`) : r.priority || "")}</td>
              <td>${esc(pick(r.message))}${esc(value)}</td><td>${esc(location(r))}</td><td>${esc(r.by || "")}</td>
              <td>${esc(r.comment || "")}</td></tr>`;
            })
            .join("")
        : `<tr><td colspan="8" class="muted">${esc(t("no_data"))}</td></tr>`;
      const offset = page * PAGE;
      next = data.next || null;
      el.querySelector("#hcount").textContent = `${offset + (rows.length ? 1 : 0)}–${offset + rows.length} · ${t("rows_n", { n: offset + rows.length })}`;
      el.querySelector("#prev").disabled = page === 0;
      el.querySelector("#next").disabled = !next;
    } catch (err) {
      body.innerHTML = `<tr><td colspan="8" class="error">${esc(errorText(err))}</td></tr>`;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    page = 0;
    load();
  });
  el.querySelector("#prev").addEventListener("click", () => {
    page = Math.max(0, page - 1);
    load();
  });
  el.querySelector("#next").addEventListener("click", () => {
    if (!next) return;
    cursors[page + 1] = next;
    page += 1;
    load();
  });
  load();
}
