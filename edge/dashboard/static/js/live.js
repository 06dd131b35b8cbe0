// The live state pushed by the server (GET /api/events): active alarms, point values, device
// online state and linkage steps. Bursts of events are coalesced into one update per animation
// frame, so a flood of alarms or values costs one render, not one per event.
import { get } from "./api.js";

export const state = {
  alarms: new Map(), // key → alarm row
  flood: false,
  loaded: false,
  values: new Map(), // point id → [value, quality, ts]
  online: new Map(), // device id → true | false | null
  connected: false,
  serverSkewS: 0,
};

const subscribers = { alarms: new Set(), values: new Set(), device: new Set(), linkage: new Set(), conn: new Set() };
const pending = { alarms: false, values: new Set(), device: new Set(), linkage: [], conn: false };
let scheduled = false;
let source = null;
let reloadSeq = 0;

/** Subscribe to "alarms" | "values" | "device" | "linkage" | "conn"; returns an unsubscribe. */
export function on(topic, fn) {
  subscribers[topic].add(fn);
  return () => subscribers[topic].delete(fn);
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  // A hidden tab gets no animation frames; a timer keeps the alert logic running there.
  if (document.hidden) setTimeout(flush, 250);
  else requestAnimationFrame(flush);
}

function flush() {
  scheduled = false;
  if (pending.conn) {
    pending.conn = false;
    for (const fn of subscribers.conn) fn(state.connected);
  }
  if (pending.alarms) {
    pending.alarms = false;
    for (const fn of subscribers.alarms) fn();
  }
  if (pending.values.size) {
    const changed = pending.values;
    pending.values = new Set();
    for (const fn of subscribers.values) fn(changed);
  }
  if (pending.device.size) {
    const changed = pending.device;
    pending.device = new Set();
    for (const fn of subscribers.device) fn(changed);
  }
  if (pending.linkage.length) {
    const rows = pending.linkage;
    pending.linkage = [];
    for (const fn of subscribers.linkage) fn(rows);
  }
}

export async function reloadAlarms() {
  const seq = ++reloadSeq;
  const data = await get("/api/alarms");
  if (seq !== reloadSeq) return; // a newer reload is under way
  const sig = signature(data.alarms) + String(Boolean(data.flood));
  if (state.loaded && sig === loadedSig && sig === signature(state.alarms.values()) + String(state.flood)) return;
  loadedSig = sig;
  state.alarms = new Map(data.alarms.map((row) => [row.key, row]));
  state.flood = Boolean(data.flood);
  state.loaded = true;
  pending.alarms = true;
  schedule();
}

let loadedSig = "";

/** What a redraw depends on: an identical reload (the usual case on connect) redraws nothing. */
function signature(rows) {
  let out = "";
  for (const r of rows) out += `${r.key}|${r.state}|${r.unacked}|${r.shelved_until}|${r.value};`;
  return out;
}

function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return null;
  }
}

export function connect() {
  wanted = true;
  if (source) return;
  // Load the list at once rather than after the stream's hello; the hello reloads it again so
  // that nothing raised between this load and the subscription is missed.
  if (!state.loaded) reloadAlarms().catch(() => {});
  source = new EventSource("/api/events", { withCredentials: true });
  source.addEventListener("hello", (event) => {
    const data = parse(event);
    if (data && data.server_time) state.serverSkewS = data.server_time - Date.now() / 1000;
    state.connected = true;
    pending.conn = true;
    schedule();
    // Whatever happened while disconnected is only in the full list.
    reloadAlarms().catch(() => {});
  });
  source.addEventListener("alarm", (event) => {
    const data = parse(event);
    if (!data || !data.key) return;
    if (data.row) state.alarms.set(data.key, { ...data.row, transition: data.transition });
    else state.alarms.delete(data.key);
    pending.alarms = true;
    schedule();
  });
  source.addEventListener("values", (event) => {
    const data = parse(event);
    if (!data || !Array.isArray(data.points)) return;
    for (const [id, value, quality, ts] of data.points) {
      state.values.set(id, [value, quality, ts]);
      pending.values.add(id);
    }
    schedule();
  });
  source.addEventListener("device", (event) => {
    const data = parse(event);
    if (!data || !data.id) return;
    state.online.set(data.id, data.online);
    pending.device.add(data.id);
    schedule();
  });
  source.addEventListener("linkage", (event) => {
    const data = parse(event);
    if (!data) return;
    pending.linkage.push(data);
    schedule();
  });
  source.onerror = () => {
    if (state.connected) {
      state.connected = false;
      pending.conn = true;
      schedule();
    }
    // EventSource retries by itself unless the server refused the stream (e.g. 401 after the
    // session ended): then it is CLOSED and we decide — sign-in again, or retry a bit later.
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(() => {
        if (source || !wanted) return;
        get("/api/session")
          .then((s) => {
            if (s.user) connect();
            else onSessionGone({ error: "session" });
          })
          .catch(() => setTimeout(() => wanted && connect(), 3000));
      }, 1000);
    }
  };
}

let wanted = false;
let onSessionGone = () => {};

/** Called when the event stream finds the session gone. */
export function setSessionGoneHandler(fn) {
  onSessionGone = fn;
}

export function disconnect() {
  wanted = false;
  if (source) source.close();
  source = null;
  state.connected = false;
  state.alarms = new Map();
  state.loaded = false;
}

const PRIORITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };

/** Most urgent first: priority, then newest first. */
export function sortedAlarms() {
  const rows = Array.from(state.alarms.values());
  rows.sort((a, b) => {
    const pa = PRIORITY_RANK[a.priority] ?? 9;
    const pb = PRIORITY_RANK[b.priority] ?? 9;
    if (pa !== pb) return pa - pb;
    return (b.raised_at || 0) - (a.raised_at || 0);
  });
  return rows;
}

export function isShelved(row) {
  return row.state === "shelved";
}

export function counts() {
  let unacked = 0;
  let active = 0;
  let shelved = 0;
  const byClass = {};
  for (const row of state.alarms.values()) {
    if (isShelved(row)) {
      shelved++;
      continue;
    }
    active++;
    if (row.unacked) unacked++;
    const k = row.class || "other";
    byClass[k] = (byClass[k] || 0) + 1;
  }
  return { unacked, active, shelved, byClass };
}
