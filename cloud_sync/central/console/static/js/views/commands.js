// Commands to one gateway (operators and administrators): what was sent, by whom and from where,
// and its state as the gateway reported it; a form to send one (a site file push included).
// Central signs every command; the gateway runs it and answers with a command.result event.
import { request, get, post } from "../api.js";
import { t, label } from "../i18n.js";
import { esc, fmtTime, fmtValue, query, errorText } from "../util.js";

const STATES = ["pending", "done", "refused", "failed", "expired", "unsent"];
const BADGE = { pending: "#4da3ff", done: "#30d158", refused: "#ff9f0a", failed: "#ff3b30", expired: "#8e8e93", unsent: "#8e8e93" };
const REFRESH_MS = 2000;
const PAGE = 100;

// Per action: its form fields [name, kind, options]; `args` turns the form's values into the
// command's arguments exactly as cloud_sync/commands.py expects them.
const ACTIONS = {
  "point.write": {
    fields: [["point", "text"], ["value", "text"]],
    args: (v) => ({ point: v.point, value: typedValue(v.value) }),
  },
  "alarm.ack": {
    fields: [["key", "text"], ["comment", "text"]],
    args: (v) => ({ key: v.key, comment: v.comment }),
  },
  "alarm.shelve": {
    fields: [["key", "text"], ["minutes", "number", 60], ["reason", "text"]],
    args: (v) => ({ key: v.key, until: Date.now() / 1000 + 60 * Number(v.minutes), reason: v.reason }),
  },
  "log.level": {
    fields: [["level", ["debug", "info", "warning", "error"]], ["minutes", "number", 30]],
    args: (v) => ({ level: v.level, minutes: Number(v.minutes) }),
  },
  "outbox.resend": {
    fields: [["lane", ["event", "telemetry"]], ["first", "number", 1], ["last", "number", 1]],
    args: (v) => ({ lane: v.lane, first: Number(v.first), last: Number(v.last) }),
  },
  "config.push": {
    fields: [["version", "text"], ["health_s", "number", 120], ["text", "file"]],
    args: (v) => ({ text: v.text, version: v.version, health_s: Number(v.health_s) }),
  },
};

/** "true"/"false" as booleans, numbers as numbers, anything else as the text typed. */
function typedValue(text) {
  const s = String(text).trim();
  if (s === "true" || s === "false") return s === "true";
  if (s !== "" && Number.isFinite(Number(s))) return Number(s);
  return text;
}

function field([name, kind, initial]) {
  const id = `cmd-arg-${name}`;
  const title = esc(t(`arg_${name}`));
  if (Array.isArray(kind)) {
    return `<label>${title} <select data-testid="${id}" name="${name}">${kind.map((o) => `<option value="${esc(o)}">${esc(o)}</option>`).join("")}</select></label>`;
  }
  if (kind === "file") {
    return `<div style="flex-basis:100%"><label>${title} <input type="file" data-testid="cmd-file" accept=".yaml,.yml,text/yaml,text/plain"></label>
      <textarea data-testid="${id}" name="${name}" rows="10" spellcheck="false" style="width:100%;font-family:monospace" placeholder="site:\n  id: …"></textarea></div>`;
  }
  return `<label>${title} <input data-testid="${id}" name="${name}" type="${kind}" value="${esc(initial ?? "")}"></label>`;
}

function commandRow(c) {
  const args = Object.entries(c.args || {})
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" ");
  const versions = c.action === "config.push" ? `${c.config_version_before ?? "—"} → ${c.config_version_now ?? "—"}` : "";
  return `<tr data-testid="command-row" data-cid="${esc(c.cid)}" data-state="${esc(c.state)}">
    <td>${esc(fmtTime(c.issued_at))}</td>
    <td>${esc(c.cseq)}</td>
    <td>${esc(c.action)}</td>
    <td class="wrap">${esc(args)}</td>
    <td><span class="badge" style="background:${BADGE[c.state] || "#8e8e93"}" data-testid="command-state">${esc(label("cmd", c.state))}</span></td>
    <td class="wrap">${esc(c.detail || c.not_sent || "")}${c.value != null ? ` <span class="muted">(${esc(fmtValue(c.value))})</span>` : ""}</td>
    <td>${esc(versions)}</td>
    <td>${esc(c.by)} <span class="muted">${esc(c.from)}</span></td>
  </tr>`;
}

export async function render(root, gatewayArg) {
  const head = ["time", "cseq", "action", "args", "state", "detail", "config_version", "by"];
  root.innerHTML = `
    <div class="toolbar">
      <input list="cmd-gateways" data-testid="cmd-gateway" placeholder="${esc(t("gateway"))}" value="${esc(gatewayArg || "")}">
      <datalist id="cmd-gateways"></datalist>
      <select data-testid="cmd-state-filter"><option value="">${esc(t("any_state"))}</option>
        ${STATES.map((s) => `<option value="${s}">${esc(label("cmd", s))}</option>`).join("")}</select>
      <span class="grow"></span>
    </div>
    <div class="panel">
      <h2>${esc(t("send_command"))}</h2>
      <form data-testid="cmd-form" class="cmd-form">
        <div class="toolbar">
          <label>${esc(t("action"))} <select data-testid="cmd-action">${Object.keys(ACTIONS).map((a) => `<option value="${a}">${esc(label("act", a))}</option>`).join("")}</select></label>
          <span data-testid="cmd-fields" class="toolbar"></span>
          <label>${esc(t("arg_ttl_s"))} <input data-testid="cmd-ttl" type="number" min="1" max="86400" value="300"></label>
          <button class="btn" data-testid="cmd-send">${esc(t("send"))}</button>
        </div>
      </form>
      <div class="error" data-testid="cmd-error"></div>
      <div class="muted" data-testid="cmd-sent"></div>
    </div>
    <div class="panel" style="margin-top:12px">
      <h2>${esc(t("nav_commands"))}</h2>
      <div class="error" data-testid="cmd-list-error"></div>
      <div class="scroll"><table data-testid="command-list"><thead><tr>${head.map((k) => `<th>${esc(t(k))}</th>`).join("")}</tr></thead><tbody></tbody></table></div>
    </div>`;
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  let closed = false;
  let timer = null;
  let loadSeq = 0;

  function drawFields() {
    $("cmd-fields").innerHTML = ACTIONS[$("cmd-action").value].fields.map(field).join("");
    const file = $("cmd-file");
    if (file) {
      file.addEventListener("change", async () => {
        const chosen = file.files && file.files[0];
        if (chosen) $("cmd-arg-text").value = await chosen.text();
      });
    }
  }

  async function load() {
    const seq = ++loadSeq;
    clearTimeout(timer);
    const gateway = $("cmd-gateway").value.trim();
    try {
      const { data } = await request("GET", `/api/v1/commands${query({ gateway, state: $("cmd-state-filter").value, limit: PAGE })}`);
      if (seq !== loadSeq || closed) return;
      $("cmd-list-error").textContent = "";
      root.querySelector('[data-testid="command-list"] tbody').innerHTML =
        data.map(commandRow).join("") || `<tr><td colspan="${head.length}" class="muted">${esc(t("no_commands"))}</td></tr>`;
    } catch (err) {
      if (seq === loadSeq) $("cmd-list-error").textContent = errorText(err);
    }
    // Results arrive on the gateway's event lane: follow them while the view is open.
    if (!closed && seq === loadSeq) timer = setTimeout(load, REFRESH_MS);
  }

  async function send(ev) {
    ev.preventDefault();
    $("cmd-error").textContent = "";
    $("cmd-sent").textContent = "";
    const gateway = $("cmd-gateway").value.trim();
    if (!gateway) {
      $("cmd-error").textContent = t("pick_gateway");
      return;
    }
    const action = $("cmd-action").value;
    const values = {};
    for (const el of $("cmd-fields").querySelectorAll("[name]")) values[el.name] = el.value;
    const ttl = Number($("cmd-ttl").value) || 300;
    const spec = ACTIONS[action];
    try {
      const gw = encodeURIComponent(gateway);
      const args = spec.args(values);
      const sent = action === "config.push"
        ? await post(`/api/v1/gateways/${gw}/config`, { ...args, ttl_s: ttl })
        : await post(`/api/v1/gateways/${gw}/commands`, { action, args, ttl_s: ttl });
      $("cmd-sent").textContent = t("command_sent", { cseq: sent.cseq, state: label("cmd", sent.state) });
      load();
    } catch (err) {
      $("cmd-error").textContent = errorText(err);
    }
  }

  $("cmd-action").addEventListener("change", drawFields);
  $("cmd-form").addEventListener("submit", send);
  $("cmd-gateway").addEventListener("change", load);
  $("cmd-state-filter").addEventListener("change", load);
  drawFields();
  get("/api/v1/gateways")
    .then((gws) => {
      root.querySelector("#cmd-gateways").innerHTML = gws.map((g) => `<option value="${esc(g.gateway_id)}">`).join("");
    })
    .catch(() => {});
  await load();
  return () => {
    closed = true;
    clearTimeout(timer);
  };
}

/** Issue `alarm.ack` or `alarm.shelve` for an alarm (the alarm console's buttons). */
export async function alarmCommand(alarm, action, extra = {}) {
  const args = action === "alarm.ack" ? { key: alarm.alarm_key, comment: extra.comment || "" } : {
    key: alarm.alarm_key,
    until: Date.now() / 1000 + 60 * (extra.minutes || 60),
    reason: extra.reason || "shelved from central",
  };
  return post(`/api/v1/gateways/${encodeURIComponent(alarm.gateway_id)}/commands`, { action, args, ttl_s: 300 });
}
