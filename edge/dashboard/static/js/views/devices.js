// Device management for administrators (R5.3): every device of the site file in one table, a
// filter, a selection that survives filtering, and disable / enable / delete of the selection.
// Each action needs a second click on the same button; the server edits the site file, checks it
// with the loader, audits the change and answers once the gateway runs the new configuration,
// so the result panel says what runs now — or, when the loader refused, each of its problems.
// (The single-device page with its points and statistics is views/device.js.)
import { get, post } from "../api.js";
import { on, state as live } from "../live.js";
import { t, has, nameOf } from "../i18n.js";
import { esc, fmtTime, errorText } from "../util.js";

const ACTIONS = ["disable", "enable", "delete"];
const ARM_MS = 6000;

function busTypeText(type) {
  return has(`bt_${type}`) ? t(`bt_${type}`) : type || "—";
}

/** "online" | "offline" | "unknown" | "disabled": what the row's state column says. */
function stateOf(d) {
  if (!d.enabled) return "disabled";
  const online = live.online.has(d.id) ? live.online.get(d.id) : d.online;
  return online === true ? "online" : online === false ? "offline" : "unknown";
}

function stateCell(d) {
  const st = stateOf(d);
  const dot = st === "online" ? "on" : st === "offline" ? "off" : "";
  return `<span class="dot ${dot}"></span>${esc(t(`dm_st_${st}`))}`;
}

function searchText(d) {
  return [d.id, d.name, d.name_zh, d.bus, d.bus_type, busTypeText(d.bus_type), d.profile, d.zone, d.building, d.floor, d.location]
    .filter(Boolean)
    .join(" ")
    .toLowerCase();
}

function optionList(values, current, label) {
  return [`<option value="">${esc(t("dm_all"))}</option>`]
    .concat(values.map((v) => `<option value="${esc(v)}"${v === current ? " selected" : ""}>${esc(label(v))}</option>`))
    .join("");
}

export function mount(el) {
  el.innerHTML = `<div class="toolbar"><h1>${esc(t("dm_title"))}</h1><span class="muted" id="dm-sum" data-testid="devices-summary"></span>
    <div class="spacer"></div>
    <a class="btn" href="/api/admin/devices/export.csv" download data-testid="devices-export">${esc(t("dm_export"))}</a></div>
    <form class="filters card" id="dm-filters" data-testid="devices-filters">
      <label class="field"><span>${esc(t("search"))}</span><input type="search" name="q" size="22" placeholder="${esc(t("dm_search_hint"))}" data-testid="devices-search"></label>
      <label class="field"><span>${esc(t("dm_bus"))}</span><select name="bus" data-testid="devices-bus"></select></label>
      <label class="field"><span>${esc(t("dm_protocol"))}</span><select name="type" data-testid="devices-type"></select></label>
      <label class="field"><span>${esc(t("state"))}</span><select name="state" data-testid="devices-state"></select></label>
    </form>
    <div class="toolbar" id="dm-actions">
      <button class="btn" type="button" data-sel="filtered" data-testid="devices-select-filtered"></button>
      <button class="btn" type="button" data-sel="none" data-testid="devices-select-none">${esc(t("dm_select_none"))}</button>
      <span class="muted" id="dm-selected" data-testid="devices-selected"></span>
      <div class="spacer"></div>
      ${ACTIONS.map((a) => `<button class="btn${a === "delete" ? " btn-danger" : ""}" type="button" data-act="${a}" data-testid="devices-${a}" disabled>${esc(t(`dm_${a}`))}</button>`).join("")}
    </div>
    <p class="hint" id="dm-warn" data-testid="devices-warning" hidden></p>
    <div class="card" id="dm-result" data-testid="devices-result" role="status" hidden></div>
    <div class="tbl-wrap"><table class="tbl" data-testid="devices-table"><thead><tr>
      <th><input type="checkbox" id="dm-all" aria-label="${esc(t("dm_select_filtered_short"))}" data-testid="devices-check-all"></th>
      <th>ID</th><th>${esc(t("dm_name"))}</th><th>${esc(t("dm_bus"))}</th><th>${esc(t("dm_protocol"))}</th><th>${esc(t("dm_profile"))}</th>
      <th>${esc(t("lk_zone"))}</th><th>${esc(t("dm_place"))}</th><th>${esc(t("state"))}</th><th>${esc(t("dm_enabled"))}</th></tr></thead>
      <tbody id="dm-rows"><tr><td colspan="10" class="muted">${esc(t("loading"))}</td></tr></tbody></table></div>
    <div id="dm-deleted" data-testid="devices-deleted"></div>`;

  const form = el.querySelector("#dm-filters");
  const rowsEl = el.querySelector("#dm-rows");
  const resultEl = el.querySelector("#dm-result");
  const warnEl = el.querySelector("#dm-warn");
  let devices = [];
  let deleted = {};
  let keepDays = 180;
  const selected = new Set();
  let busy = false;
  const timers = new Map();

  const filters = () => {
    const f = new FormData(form);
    return { q: String(f.get("q") || "").trim().toLowerCase(), bus: f.get("bus") || "", type: f.get("type") || "", state: f.get("state") || "" };
  };
  const matches = (d, f) =>
    (!f.bus || d.bus === f.bus) && (!f.type || d.bus_type === f.type) && (!f.state || stateOf(d) === f.state) && (!f.q || searchText(d).includes(f.q));
  const filtered = () => {
    const f = filters();
    return devices.filter((d) => matches(d, f));
  };

  const fillFilters = () => {
    const f = filters();
    const buses = [...new Set(devices.map((d) => d.bus))].sort();
    const types = [...new Set(devices.map((d) => d.bus_type))].sort();
    form.elements.bus.innerHTML = optionList(buses, f.bus, (b) => b);
    form.elements.type.innerHTML = optionList(types, f.type, busTypeText);
    form.elements.state.innerHTML = optionList(["online", "offline", "unknown", "disabled"], f.state, (s) => t(`dm_st_${s}`));
  };

  const disarm = () => {
    for (const [button, timer] of timers) {
      clearTimeout(timer);
      button.classList.remove("armed");
      button.textContent = t(`dm_${button.dataset.act}`);
    }
    timers.clear();
    warnEl.hidden = true;
  };

  const renderCounts = () => {
    const shown = filtered();
    const hidden = [...selected].filter((id) => !shown.some((d) => d.id === id)).length;
    el.querySelector("#dm-sum").textContent = t("dm_summary", {
      n: devices.length,
      d: devices.filter((d) => !d.enabled).length,
      s: shown.length,
    });
    el.querySelector("#dm-selected").textContent =
      t("dm_selected", { n: selected.size }) + (hidden ? t("dm_selected_hidden", { n: hidden }) : "");
    el.querySelector("[data-sel=filtered]").textContent = t("dm_select_filtered", { n: shown.length });
    for (const button of el.querySelectorAll("[data-act]")) button.disabled = busy || selected.size === 0;
    const all = el.querySelector("#dm-all");
    const picked = shown.filter((d) => selected.has(d.id)).length;
    all.checked = shown.length > 0 && picked === shown.length;
    all.indeterminate = picked > 0 && picked < shown.length;
  };

  const renderRows = () => {
    const shown = filtered();
    rowsEl.innerHTML = shown.length
      ? shown
          .map((d) => {
            const place = [d.building, d.floor ? t("floor_n", { f: d.floor }) : "", d.location].filter(Boolean).join(" ");
            return `<tr data-device="${esc(d.id)}" data-testid="devices-row" data-enabled="${d.enabled}" class="${d.enabled ? "" : "muted"}">
              <td><input type="checkbox" data-pick="${esc(d.id)}"${selected.has(d.id) ? " checked" : ""} aria-label="${esc(d.id)}"></td>
              <td class="mono">${esc(d.id)}</td><td>${esc(nameOf(d))}</td><td class="mono">${esc(d.bus)}</td><td>${esc(busTypeText(d.bus_type))}</td>
              <td class="mono">${esc(d.profile || "—")}</td><td>${esc(d.zone || "—")}</td><td>${esc(place || "—")}</td>
              <td data-state="${esc(d.id)}">${stateCell(d)}</td>
              <td data-testid="devices-enabled" class="${d.enabled ? "" : "error"}">${esc(d.enabled ? t("dm_yes") : t("dm_no"))}</td></tr>`;
          })
          .join("")
      : `<tr><td colspan="10" class="muted">${esc(t("no_data"))}</td></tr>`;
    renderCounts();
  };

  const renderDeleted = () => {
    const entries = Object.entries(deleted).sort((a, b) => b[1] - a[1]);
    el.querySelector("#dm-deleted").innerHTML = entries.length
      ? `<h2>${esc(t("dm_deleted_title", { d: keepDays }))}</h2><div class="tbl-wrap"><table class="tbl"><thead><tr><th>ID</th>
          <th>${esc(t("dm_deleted_at"))}</th><th>${esc(t("dm_history_until"))}</th></tr></thead><tbody>${entries
            .map(([id, at]) => `<tr><td class="mono">${esc(id)}</td><td class="mono">${esc(fmtTime(at))}</td><td class="mono">${esc(fmtTime(at + keepDays * 86400))}</td></tr>`)
            .join("")}</tbody></table></div>`
      : "";
  };

  const load = async () => {
    try {
      const data = await get("/api/admin/devices");
      devices = data.devices || [];
      deleted = data.deleted || {};
      keepDays = data.deleted_history_days || keepDays;
    } catch (err) {
      rowsEl.innerHTML = `<tr><td colspan="10" class="error">${esc(errorText(err))}</td></tr>`;
      return;
    }
    // Ids that no longer exist (deleted meanwhile) leave the selection.
    for (const id of [...selected]) if (!devices.some((d) => d.id === id)) selected.delete(id);
    fillFilters();
    renderRows();
    renderDeleted();
  };

  const showResult = (ok, html) => {
    resultEl.hidden = false;
    resultEl.className = `card ${ok ? "" : "error"}`;
    resultEl.dataset.outcome = ok ? "ok" : "refused";
    resultEl.innerHTML = html;
  };

  const run = async (action) => {
    const ids = [...selected].sort();
    busy = true;
    renderCounts();
    showResult(true, `<div class="muted">${esc(t("dm_applying", { n: ids.length }))}</div>`);
    try {
      const r = await post("/api/admin/devices/batch", { action, devices: ids });
      const done = t(`dm_done_${action}`, { n: r.devices.length });
      const applied = r.applied
        ? t("dm_applied", { r: r.running, d: (r.disabled || []).length, n: r.total })
        : r.reloaded
          ? t("dm_reload_pending")
          : t("dm_written_only");
      showResult(true, `<div><strong>${esc(done)}</strong> <span class="mono">${esc(r.devices.join(", "))}</span></div><div>${esc(applied)}</div>`);
      selected.clear();
    } catch (err) {
      const body = (err && err.body) || {};
      if (body.error === "invalid_site") {
        const items = (body.problems || []).map((p) => `<li class="mono">${esc(p)}</li>`).join("");
        showResult(false, `<div><strong>${esc(t("dm_refused"))}</strong></div><ul>${items}</ul>`);
      } else if (body.error === "unknown_device") {
        showResult(false, `<div>${esc(t("dm_unknown", { d: (body.devices || []).join(", ") }))}</div>`);
      } else showResult(false, `<div>${esc(errorText(err))}</div>`);
    }
    busy = false;
    await load();
  };

  el.querySelector("#dm-actions").addEventListener("click", (event) => {
    const sel = event.target.closest("[data-sel]");
    if (sel) {
      disarm();
      if (sel.dataset.sel === "filtered") for (const d of filtered()) selected.add(d.id);
      else selected.clear();
      renderRows();
      return;
    }
    const button = event.target.closest("[data-act]");
    if (!button || button.disabled) return;
    const action = button.dataset.act;
    if (!button.classList.contains("armed")) {
      // First click: say exactly what the second one will do.
      disarm();
      button.classList.add("armed");
      button.textContent = t(`dm_confirm_${action}`, { n: selected.size });
      warnEl.textContent = action === "delete" ? t("dm_delete_warning", { d: keepDays }) : t("dm_reload_warning");
      warnEl.hidden = false;
      timers.set(button, setTimeout(disarm, ARM_MS));
      return;
    }
    disarm();
    run(action);
  });

  rowsEl.addEventListener("change", (event) => {
    const box = event.target.closest("[data-pick]");
    if (!box) return;
    disarm();
    if (box.checked) selected.add(box.dataset.pick);
    else selected.delete(box.dataset.pick);
    renderCounts();
  });
  el.querySelector("#dm-all").addEventListener("change", (event) => {
    disarm();
    for (const d of filtered()) {
      if (event.target.checked) selected.add(d.id);
      else selected.delete(d.id);
    }
    renderRows();
  });
  form.addEventListener("input", () => {
    disarm();
    renderRows();
  });
  form.addEventListener("submit", (event) => event.preventDefault());

  const off = on("device", (ids) => {
    for (const id of ids || []) {
      const cell = rowsEl.querySelector(`[data-state="${CSS.escape(id)}"]`);
      const d = devices.find((x) => x.id === id);
      if (cell && d) cell.innerHTML = stateCell(d);
    }
  });
  load();
  return () => {
    off();
    disarm();
  };
}
