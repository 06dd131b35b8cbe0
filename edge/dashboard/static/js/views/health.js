// Gateway health: uplink, outbox backlog, last central acknowledgement, per-device polling and
// the gateway's own CPU, memory and disk. Refreshed every 5 s while shown.
import { get } from "../api.js";
import { t, has } from "../i18n.js";
import { esc, fmtTime, fmtBytes, fmtPct, fmtDuration, errorText } from "../util.js";

function meter(pct) {
  const p = Math.max(0, Math.min(100, Number(pct) || 0));
  return `<div class="meter${p > 90 ? " bad" : p > 75 ? " warn" : ""}"><i style="width:${p}%"></i></div>`;
}

const wallOrRaw = (v) => (typeof v === "number" && v > 1e9 ? fmtTime(v) : v ?? "—");

// The uplink's state in words: a broker that refuses the login is not "offline" (trust.py).
function uplinkState(u, trust) {
  if (u.connected) return { text: t("connected"), ok: true };
  if (trust && trust.broker_refuses_credentials) return { text: t("broker_refuses"), ok: false, testid: "broker-refuses" };
  return { text: t("disconnected"), ok: false };
}

function identityHtml(id) {
  if (!id) return "";
  const state = `identity_${id.state}`;
  return `<dl class="kv" data-testid="identity" style="margin-top:.5rem"><dt>${esc(t("identity"))}</dt><dd>${esc(id.gateway_id)} · v${esc(id.version)} · <span class="mono">${esc(id.kid)}</span></dd>
    <dt>${esc(t("identity_state"))}</dt><dd class="${id.state === "ok" || id.state === "due" || id.state === "renewing" ? "" : "error"}" data-testid="identity-state">${esc(has(state) ? t(state) : id.state)}</dd>
    <dt>${esc(t("identity_not_after"))}</dt><dd>${esc(fmtTime(id.not_after))}</dd>
    <dt>${esc(t("identity_renew_after"))}</dt><dd>${esc(fmtTime(id.next_attempt_at ?? id.renew_after))}</dd>
    ${id.last_error ? `<dt>${esc(t("last_error"))}</dt><dd class="error">${esc(id.last_error)}</dd>` : ""}</dl>`;
}

function uplinkHtml(u, trust) {
  if (!u) return `<p class="muted">${esc(t("uplink_none"))}</p>`;
  const connected = Boolean(u.connected);
  const shown = uplinkState(u, trust);
  const lanes = Object.entries(u.lanes || {})
    .map(([lane, v]) => `<tr><td>${esc(has(`lane_${lane}`) ? t(`lane_${lane}`) : lane)}</td><td class="num">${esc(v.acked ?? "—")}</td>
      <td class="num">${esc(v.in_flight ?? "—")}</td><td class="num">${esc(v.refused ?? "—")}</td>
      <td class="mono">${esc(v.last_ack_at ? fmtTime(v.last_ack_at) : t("never"))}</td></tr>`)
    .join("");
  const counters = Object.entries(u.counters || {})
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
    .join("");
  return `<p class="big-num" style="color:var(${shown.ok ? "--ok" : "--bad"})" data-testid="uplink-state">${esc(shown.text)}</p>
    <dl class="kv"><dt>${esc(t("gateway_id"))}</dt><dd>${esc(u.gateway_id ?? "—")}</dd>
      <dt>${esc(t("connected_since"))}</dt><dd>${esc(connected ? wallOrRaw(u.connected_since) : "—")}</dd>
      ${u.last_error ? `<dt>${esc(t("last_error"))}</dt><dd class="error">${esc(u.last_error)}</dd>` : ""}
      ${u.last_refusal ? `<dt>${esc(t("last_refusal"))}</dt><dd class="error">${esc(typeof u.last_refusal === "object" ? JSON.stringify(u.last_refusal) : u.last_refusal)}</dd>` : ""}</dl>
    ${lanes ? `<table class="tbl" style="margin-top:.5rem"><thead><tr><th>${esc(t("lane"))}</th><th class="num">${esc(t("acked_n"))}</th>
      <th class="num">${esc(t("in_flight"))}</th><th class="num">${esc(t("refused"))}</th><th>${esc(t("last_ack"))}</th></tr></thead><tbody>${lanes}</tbody></table>` : ""}
    ${identityHtml(u.identity)}
    ${counters ? `<details><summary class="muted">${esc(t("counters"))}</summary><dl class="kv">${counters}</dl></details>` : ""}`;
}

function outboxHtml(o) {
  if (!o) return `<p class="muted">${esc(t("no_data"))}</p>`;
  const lanes = Object.entries(o.lanes || {}).filter(([, v]) => v && typeof v === "object");
  const rows = lanes
    .map(([lane, v]) => `<tr><td>${esc(has(`lane_${lane}`) ? t(`lane_${lane}`) : lane)}</td><td class="num">${esc(v.rows ?? v.records ?? "—")}</td>
      <td class="num">${esc(fmtBytes(v.batch_bytes ?? v.bytes))}</td>
      <td class="mono">${esc(v.oldest_ts != null ? fmtTime(v.oldest_ts) : v.oldest != null ? fmtTime(v.oldest) : "—")}</td></tr>`)
    .join("");
  const total = lanes.reduce((n, [, v]) => n + (Number(v.rows ?? v.records) || 0), 0);
  const extra = ["used_bytes", "queued", "commits", "failing"]
    .filter((k) => o[k] !== undefined && typeof o[k] !== "object")
    .map((k) => `<dt>${esc(k)}</dt><dd>${esc(k.endsWith("bytes") ? fmtBytes(o[k]) : o[k])}</dd>`)
    .join("");
  return `<p class="big-num" data-testid="outbox-records">${total} <small>${esc(t("records"))}</small></p>
    ${rows ? `<table class="tbl"><thead><tr><th>${esc(t("lane"))}</th><th class="num">${esc(t("records"))}</th>
    <th class="num">${esc(t("bytes"))}</th><th>${esc(t("oldest"))}</th></tr></thead><tbody>${rows}</tbody></table>` : ""}
    ${extra ? `<dl class="kv" style="margin-top:.5rem">${extra}</dl>` : ""}`;
}

// The dashboard's background loops: a crashed one is restarted by the gateway and listed here.
function tasksHtml(tasks) {
  const failed = (tasks || []).filter((x) => x.restarts > 0);
  if (!failed.length) return esc(t("bg_tasks_ok"));
  return failed
    .map(
      (x) => `<div class="${x.running ? "" : "error"}">${esc(x.name)}: ${esc(t("bg_task_restarts", { n: x.restarts }))}
        ${x.last_failed_at ? esc(fmtTime(x.last_failed_at)) : ""} <small>${esc(x.last_error || "")}</small></div>`,
    )
    .join("");
}

function render(h) {
  const s = h.system || {};
  const diskPct = s.disk_total_bytes ? 100 - (100 * s.disk_free_bytes) / s.disk_total_bytes : null;
  const devices = (h.devices || [])
    .map((d) => {
      const rate = d.success_rate == null ? null : d.success_rate <= 1 ? d.success_rate * 100 : d.success_rate;
      return `<tr><td><a href="#/device/${encodeURIComponent(d.id)}">${esc(d.id)}</a></td>
      <td><span class="dot ${d.online === true ? "on" : d.online === false ? "off" : ""}"></span>${esc(
        d.online === true ? t("online") : d.online === false ? t("offline") : t("unknown"),
      )}</td><td class="num">${esc(fmtPct(rate))}</td><td class="num">${esc(d.last_latency_ms == null ? "—" : `${Math.round(d.last_latency_ms)} ms`)}</td>
      <td class="num">${esc(d.polls_ok ?? "—")}</td><td class="num">${esc(d.polls_failed ?? "—")}</td></tr>`;
    })
    .join("");
  return `
    <div class="grid3">
      <section class="card" data-testid="health-uplink"><h2>${esc(t("uplink"))}</h2>${uplinkHtml(h.uplink, h.trust)}</section>
      <section class="card" data-testid="health-outbox"><h2>${esc(t("outbox"))}</h2>${outboxHtml(h.outbox)}</section>
      <section class="card" data-testid="health-system"><h2>${esc(t("system"))}</h2>
        <dl class="kv"><dt>${esc(t("last_ack"))}</dt><dd>${esc(h.last_ack_wall ? fmtTime(h.last_ack_wall) : t("never"))}</dd>
        <dt>${esc(t("cpu"))}</dt><dd>${esc(fmtPct(s.cpu_percent))}${meter(s.cpu_percent)}</dd>
        <dt>${esc(t("memory"))}</dt><dd>${esc(fmtPct(s.mem_percent))}${s.rss_mb ? ` <small>RSS ${Math.round(s.rss_mb)} MB</small>` : ""}${meter(s.mem_percent)}</dd>
        <dt>${esc(t("disk"))}</dt><dd>${esc(fmtBytes(s.disk_free_bytes))} / ${esc(fmtBytes(s.disk_total_bytes))}${diskPct == null ? "" : meter(diskPct)}</dd>
        <dt>${esc(t("load"))}</dt><dd>${esc((s.load_avg || []).map((x) => Number(x).toFixed(2)).join(" "))}</dd>
        <dt>${esc(t("uptime"))}</dt><dd>${esc(fmtDuration(h.uptime_s))}</dd>
        <dt>${esc(t("bg_tasks"))}</dt><dd data-testid="health-tasks">${tasksHtml((h.dashboard || {}).tasks)}</dd></dl></section>
    </div>
    <section style="margin-top:.8rem"><h2>${esc(t("device_polls"))}</h2><div class="tbl-wrap"><table class="tbl" data-testid="health-devices">
      <thead><tr><th>${esc(t("device"))}</th><th>${esc(t("state"))}</th><th class="num">${esc(t("success_rate"))}</th>
      <th class="num">${esc(t("latency"))}</th><th class="num">${esc(t("polls_ok"))}</th><th class="num">${esc(t("polls_failed"))}</th></tr></thead>
      <tbody>${devices}</tbody></table></div></section>`;
}

export function mount(el) {
  el.innerHTML = `<div class="toolbar"><h1>${esc(t("health_title"))}</h1></div><div id="hbody"><p class="muted">${esc(t("loading"))}</p></div>`;
  const body = el.querySelector("#hbody");
  let alive = true;
  const load = async () => {
    try {
      const h = await get("/api/health");
      if (alive) body.innerHTML = render(h);
    } catch (err) {
      if (alive) body.innerHTML = `<p class="error">${esc(errorText(err))}</p>`;
    }
  };
  load();
  const timer = setInterval(load, 5000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
