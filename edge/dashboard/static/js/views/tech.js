// Technician view: raw registers of a device, a test write behind a confirmation dialog (the
// point is then under manual control: linkage leaves it alone until it is released here),
// simulator scenario injection and the configuration check.
import { get, post } from "../api.js";
import { t, nameOf } from "../i18n.js";
import { esc, fmtValue, errorText } from "../util.js";
import { confirmDialog, toast } from "../dialog.js";
import { loadSite, devicesOf, shortIdOf } from "./sitedata.js";

function registersHtml(data) {
  const blocks = (data.blocks || [])
    .map((b) => `<tr><td>${esc(b.table)}</td><td class="num mono">${esc(b.start)}</td><td class="num">${esc(b.count)}</td>
      <td class="mono" style="overflow-wrap:anywhere">${b.error ? `<span class="error">${esc(b.error)}</span>` : esc((b.values || []).join(" "))}</td></tr>`)
    .join("");
  const points = (data.points || [])
    .map((p) => `<tr><td class="mono">${esc(String(p.id).split("/").pop())}</td><td>${esc(p.table)}</td><td class="num mono">${esc(p.address)}</td>
      <td>${esc(p.type || "")}</td><td class="mono">${esc((p.raw || []).join(" "))}</td><td class="num q-${esc(p.quality || "none")}">${esc(fmtValue(p.value))}</td></tr>`)
    .join("");
  return `<div class="tbl-wrap"><table class="tbl" data-testid="tech-blocks"><thead><tr><th>${esc(t("table"))}</th><th class="num">${esc(t("address"))}</th>
    <th class="num">n</th><th>${esc(t("raw"))}</th></tr></thead><tbody>${blocks}</tbody></table></div>
    <div class="tbl-wrap" style="margin-top:.6rem"><table class="tbl" data-testid="tech-points"><thead><tr><th>${esc(t("trend_point"))}</th><th>${esc(t("table"))}</th>
    <th class="num">${esc(t("address"))}</th><th>${esc(t("type"))}</th><th>${esc(t("raw"))}</th><th class="num">${esc(t("value"))}</th></tr></thead><tbody>${points}</tbody></table></div>`;
}

function parseValue(text, boolean) {
  const s = text.trim().toLowerCase();
  if (s === "true" || (boolean && ["1", "on", "是", "开"].includes(s))) return true;
  if (s === "false" || (boolean && ["0", "off", "否", "关"].includes(s))) return false;
  if (s !== "" && !Number.isNaN(Number(s))) return Number(s);
  return s;
}

export function mount(el, ctx) {
  const { can } = ctx;
  let deviceId = ctx.params[0] || "";
  el.innerHTML = `
    <div class="toolbar"><h1>${esc(t("tech_title"))}</h1>
      <label class="field inline"><span>${esc(t("tech_pick"))}</span><select id="tdev" data-testid="tech-device"></select></label></div>
    <div class="grid2">
      <section class="card"><h2>${esc(t("test_write"))}</h2>
        <form id="twrite" class="filters">
          <label class="field"><span>${esc(t("trend_point"))}</span><select name="point" data-testid="tech-write-point"></select></label>
          <label class="field"><span>${esc(t("value"))}</span><input name="value" size="10" required placeholder="${esc(t("write_placeholder"))}" data-testid="tech-write-value"></label>
          <button class="btn btn-danger" type="submit" data-testid="tech-write" ${can("write") ? "" : "disabled"}>${esc(t("write"))}</button>
        </form><p id="twrite-result" class="muted"></p></section>
      <section class="card"><h2>${esc(t("overrides_title"))}</h2><div id="tover" data-testid="tech-overrides"></div></section>
      <section class="card"><h2>${esc(t("scenarios"))}</h2><div id="tscen"><p class="muted">${esc(t("loading"))}</p></div></section>
    </div>
    <section class="card" style="margin-top:.8rem"><div class="toolbar"><h2>${esc(t("registers"))}</h2></div><div id="tregs"></div></section>
    <section class="card" style="margin-top:.8rem"><div class="toolbar"><h2>${esc(t("config_check"))}</h2>
      <button class="btn" id="tcheck" data-testid="tech-check">${esc(t("run_check"))}</button></div><div id="tcheck-out"></div></section>`;
  const sel = el.querySelector("#tdev");
  let devices = [];
  let scen = null;

  async function loadRegisters() {
    const box = el.querySelector("#tregs");
    if (!deviceId) return;
    box.innerHTML = `<p class="muted">${esc(t("loading"))}</p>`;
    try {
      box.innerHTML = registersHtml(await get(`/api/tech/${encodeURIComponent(deviceId)}/registers`));
    } catch (err) {
      box.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    }
  }

  async function loadOverrides() {
    const box = el.querySelector("#tover");
    try {
      const rows = (await get("/api/tech/overrides")).overrides || [];
      box.innerHTML = rows.length
        ? `<p class="muted">${esc(t("overrides_hint"))}</p><ul style="list-style:none;padding:0;margin:0">${rows
            .map((r) => `<li data-testid="tech-override"><span class="mono">${esc(r.point)}</span> · ${esc(r.by)}
              <button class="btn" data-release="${esc(r.point)}" data-testid="tech-release" ${can("write") ? "" : "disabled"}>${esc(t("override_release"))}</button></li>`)
            .join("")}</ul>`
        : `<p class="muted">${esc(t("overrides_none"))}</p>`;
    } catch (err) {
      box.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    }
  }

  el.querySelector("#tover").addEventListener("click", async (event) => {
    const point = event.target.dataset && event.target.dataset.release;
    if (!point) return;
    if (!(await confirmDialog(t("overrides_title"), t("override_release_q", { p: point }), { ok: t("override_release") }))) return;
    try {
      await post("/api/tech/release", { point });
      toast(`${t("override_released")}: ${point}`);
    } catch (err) {
      toast(errorText(err), "error");
    }
    loadOverrides();
  });

  function fillWritePoints() {
    const d = devices.find((x) => x.id === deviceId);
    const pts = d ? (d.points || []).filter((p) => p.writable) : [];
    el.querySelector('[name="point"]').innerHTML = pts
      .map((p) => `<option value="${esc(shortIdOf(p))}">${esc(nameOf(p))} (${esc(shortIdOf(p))})</option>`)
      .join("");
  }

  function renderScenarios() {
    const box = el.querySelector("#tscen");
    if (!scen || !scen.available) {
      box.innerHTML = `<p class="muted">${esc(t("scenarios_off"))}</p>`;
      return;
    }
    const simIds = Object.keys(scen.devices || {});
    const simId = simIds.includes(deviceId) ? deviceId : simIds[0];
    const family = simId ? scen.devices[simId].family : null;
    const names = family && scen.scenarios ? Object.entries(scen.scenarios[family] || {}) : [];
    const active = simId ? scen.devices[simId].active || {} : {};
    box.innerHTML = `<form id="tinj" class="filters">
      <label class="field"><span>${esc(t("device"))}</span><select name="device" data-testid="tech-inject-device">${simIds
        .map((id) => `<option${id === simId ? " selected" : ""}>${esc(id)}</option>`)
        .join("")}</select></label>
      <label class="field"><span>${esc(t("scenario"))}</span><select name="scenario" data-testid="tech-inject-scenario">${names
        .map(([n, desc]) => `<option value="${esc(n)}" title="${esc(desc)}">${esc(n)}</option>`)
        .join("")}</select></label>
      <label class="field"><span>${esc(t("params"))}</span><input name="params" value="{}" size="14" data-testid="tech-inject-params"></label>
      <button class="btn btn-danger" type="submit" data-testid="tech-inject" ${can("simulate") ? "" : "disabled"}>${esc(t("inject"))}</button>
    </form><p class="muted">${esc(Object.keys(active).length ? `${t("injected")}: ${Object.keys(active).join(", ")}` : "")}</p>`;
  }

  async function loadScenarios() {
    try {
      scen = await get("/api/tech/scenarios");
    } catch (err) {
      scen = null;
      el.querySelector("#tscen").innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
      return;
    }
    renderScenarios();
  }

  sel.addEventListener("change", () => {
    deviceId = sel.value;
    history.replaceState(null, "", `#/tech/${encodeURIComponent(deviceId)}`);
    fillWritePoints();
    loadRegisters();
    renderScenarios();
  });

  el.querySelector("#twrite").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = new FormData(event.target);
    const point = String(f.get("point") || "");
    const d = devices.find((x) => x.id === deviceId);
    const p = d ? (d.points || []).find((x) => shortIdOf(x) === point) : null;
    const value = parseValue(String(f.get("value") || ""), Boolean(p && typeof p.value === "boolean"));
    if (!point) return;
    const ok = await confirmDialog(t("test_write"), t("write_q", { d: deviceId, p: point, v: JSON.stringify(value) }), { ok: t("write") });
    if (!ok) return;
    const out = el.querySelector("#twrite-result");
    try {
      const r = await post(`/api/tech/${encodeURIComponent(deviceId)}/write`, { point, value, confirm: true });
      out.textContent = `${t("write_ok", { v: JSON.stringify(r.read_back) })} ${t("write_overridden")}`;
      out.className = "";
      loadRegisters();
      loadOverrides();
    } catch (err) {
      out.textContent = errorText(err);
      out.className = "error";
    }
  });

  el.querySelector("#tscen").addEventListener("change", (event) => {
    if (event.target.name === "device") {
      deviceId = event.target.value;
      renderScenarios();
    }
  });
  el.querySelector("#tscen").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = new FormData(event.target);
    let params;
    try {
      params = JSON.parse(String(f.get("params") || "{}"));
    } catch {
      toast(t("bad_json"), "error");
      return;
    }
    const device = String(f.get("device"));
    const scenario = String(f.get("scenario"));
    if (!(await confirmDialog(t("scenarios"), t("inject_q", { d: device, s: scenario }), { ok: t("inject") }))) return;
    try {
      await post("/api/tech/scenarios/inject", { device, scenario, params });
      toast(`${t("injected")}: ${device} / ${scenario}`);
      loadScenarios();
    } catch (err) {
      toast(errorText(err), "error");
    }
  });

  el.querySelector("#tcheck").addEventListener("click", async () => {
    const out = el.querySelector("#tcheck-out");
    out.innerHTML = `<p class="muted">${esc(t("loading"))}</p>`;
    try {
      const r = await get("/api/tech/check");
      out.innerHTML = r.ok
        ? `<p style="color:var(--ok)" data-testid="tech-check-ok">✔ ${esc(t("check_ok"))}${r.file ? ` <small>${esc(r.file)}</small>` : ""}</p>`
        : `<ul class="error mono" data-testid="tech-check-problems">${(r.problems || []).map((p) => `<li>${esc(p)}</li>`).join("")}</ul>`;
    } catch (err) {
      out.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    }
  });

  loadSite()
    .then((site) => {
      devices = devicesOf(site);
      if (!deviceId && devices.length) deviceId = devices[0].id;
      sel.innerHTML = devices
        .map((d) => `<option value="${esc(d.id)}"${d.id === deviceId ? " selected" : ""}>${esc(nameOf(d))} (${esc(d.id)})</option>`)
        .join("");
      fillWritePoints();
      loadRegisters();
      loadScenarios();
      loadOverrides();
    })
    .catch((err) => {
      el.querySelector("#tregs").innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    });
}
