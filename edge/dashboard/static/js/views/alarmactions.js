// What the alarm buttons do: acknowledge at once (one click matters in a fire), shelve and
// comment through dialogs. Shared by the duty view and the device detail.
import { post } from "../api.js";
import { reloadAlarms, state } from "../live.js";
import { dialog, toast } from "../dialog.js";
import { t, pick } from "../i18n.js";
import { esc, errorText } from "../util.js";

const SHELVE_MINUTES = [15, 30, 60, 120, 240, 480];

function durationLabel(m) {
  return m < 60 ? t("minutes_n", { n: m }) : t("hours_n", { n: m / 60 });
}

async function send(path, body) {
  try {
    await post(path, body);
    // The SSE event brings the new state; a reload also covers a missed event.
    await reloadAlarms();
    return true;
  } catch (err) {
    toast(errorText(err), "error");
    return false;
  }
}

export async function alarmAction(act, key) {
  const row = state.alarms.get(key);
  const label = row ? pick(row.message) : key;
  switch (act) {
    case "ack":
      return send("/api/alarms/ack", { key });
    case "reset":
      return send("/api/alarms/reset", { key });
    case "unshelve":
      return send("/api/alarms/unshelve", { key });
    case "shelve": {
      const values = await dialog({
        title: t("shelve_title"),
        testid: "shelve-dialog",
        body: `<p class="dlg-subject">${esc(label)}</p>
          <label class="field"><span>${esc(t("shelve_reason"))}</span>
            <input name="reason" required maxlength="200" data-testid="shelve-reason"></label>
          <label class="field"><span>${esc(t("shelve_minutes"))}</span>
            <select name="minutes" data-testid="shelve-minutes">${SHELVE_MINUTES.map(
              (m) => `<option value="${m}"${m === 60 ? " selected" : ""}>${esc(durationLabel(m))}</option>`,
            ).join("")}</select></label>`,
        ok: t("shelve"),
        validate: (v) => (String(v.reason || "").trim() ? "" : `${t("shelve_reason")}: ${t("required")}`),
      });
      if (!values) return false;
      return send("/api/alarms/shelve", { key, reason: values.reason.trim(), minutes: Number(values.minutes) });
    }
    case "comment": {
      const values = await dialog({
        title: t("comment_title"),
        testid: "comment-dialog",
        body: `<p class="dlg-subject">${esc(label)}</p>
          <label class="field"><span>${esc(t("comment"))}</span>
            <textarea name="text" rows="3" maxlength="500" required data-testid="comment-text"></textarea></label>`,
        ok: t("save"),
        validate: (v) => (String(v.text || "").trim() ? "" : `${t("comment")}: ${t("required")}`),
      });
      if (!values) return false;
      const ok = await send("/api/alarms/comment", { key, text: values.text.trim() });
      if (ok) toast(t("saved"));
      return ok;
    }
    default:
      return false;
  }
}
