// The live state pushed by the server (GET /api/events): active alarms, point values, device
// online state and linkage steps. Bursts of events are coalesced into one update per animation
// frame, so a flood of alarms or values costs one render, not one per event.
//
// Unknown is not normal (GB 4717: a panel never shows "normal" for a part it cannot supervise).
// The link is "live" only after the stream said hello AND the alarm snapshot that followed it was
// loaded; a stream that errors, or that goes quiet for three heartbeats (a pulled cable or a hung
// gateway leave it open but silent), makes the link "lost" at once. While lost, whatever is shown
// is the last known state, marked stale, and nothing may read "all normal".
import { get } from "./api.js";

export const state = {
  alarms: new Map(), // key → alarm row
  commFaults: [], // devices / buses the gateway cannot reach (from the snapshot)
  unverified: [], // devices not heard from yet: their state is not known, so not "normal"
  drills: [], // zones or the site in drill mode
  flood: false,
  loaded: false,
  values: new Map(), // point id → [value, quality, ts]
  online: new Map(), // device id → true | false | null
  connected: false, // true only while "live"
  link: "connecting", // "connecting" | "resync" | "live" | "lost"
  lostAt: null, // wall seconds (local clock) of the last sign of life before the loss
  lastHeardMs: 0,
  heartbeatS: 5,
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

export async function reloadAlarms(force = false) {
  const seq = ++reloadSeq;
  const data = await get("/api/alarms");
  if (seq !== reloadSeq) return; // a newer reload is under way
  const sig = signature(data.alarms) + String(Boolean(data.flood)) + JSON.stringify(data.comm_faults || []) + JSON.stringify(data.drills || []) + JSON.stringify(data.unverified || []);
  if (!force && state.loaded && sig === loadedSig && sig === currentSig()) return;
  loadedSig = sig;
  state.alarms = new Map(data.alarms.map((row) => [row.key, row]));
  state.flood = Boolean(data.flood);
  state.commFaults = data.comm_faults || [];
  state.unverified = data.unverified || [];
  state.drills = data.drills || [];
  state.loaded = true;
  pending.alarms = true;
  schedule();
}

function currentSig() {
  return signature(state.alarms.values()) + String(state.flood) + JSON.stringify(state.commFaults) + JSON.stringify(state.drills) + JSON.stringify(state.unverified);
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

function setLink(link) {
  if (state.link === link) return;
  state.link = link;
  state.connected = link === "live";
  if (link === "lost" && state.lostAt == null) state.lostAt = (state.lastHeardMs || Date.now()) / 1000;
  if (link === "live") state.lostAt = null;
  pending.conn = true;
  pending.alarms = true; // every list and count redraws: stale, or fresh again
  schedule();
}

/** The stream is dead or silent: say so, and start over with a new one. */
function linkLost() {
  setLink("lost");
  if (source) source.close();
  source = null;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    if (!source && wanted) connect();
  }, 2000);
}

let retryTimer = null;
let openedMs = 0; // when the current stream was opened
let watchdog = null;
// Three missed heartbeats, plus a second for the network.
const missedBeats = 3;

function heard() {
  state.lastHeardMs = Date.now();
}

function watch() {
  if (watchdog) return;
  watchdog = setInterval(() => {
    if (!wanted || !source) return;
    const silentMs = Date.now() - Math.max(state.lastHeardMs, openedMs);
    if (silentMs > (missedBeats * state.heartbeatS + 1) * 1000) linkLost();
  }, 1000);
}

/** Within ``ms``, or fail: a hung gateway must not hold the resynchronisation forever. */
function within(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms))]);
}

export function connect() {
  wanted = true;
  if (source) return;
  watch();
  openedMs = Date.now();
  // Load the list at once rather than after the stream's hello; the hello reloads it again so
  // that nothing raised between this load and the subscription is missed.
  if (!state.loaded) reloadAlarms().catch(() => {});
  const es = new EventSource("/api/events", { withCredentials: true });
  source = es;
  const mine = (fn) => (event) => {
    if (source !== es) return; // an old stream the watchdog gave up on
    heard();
    fn(event);
  };
  es.addEventListener(
    "hello",
    mine((event) => {
      const data = parse(event);
      if (data && data.server_time) state.serverSkewS = data.server_time - Date.now() / 1000;
      if (data && data.heartbeat_s) state.heartbeatS = Number(data.heartbeat_s) || 5;
      // Not live yet: whatever happened while disconnected is only in the full list, and
      // nothing is called normal before that list is here.
      if (state.link !== "live") setLink("resync");
      within(reloadAlarms(true), (missedBeats * state.heartbeatS + 1) * 1000).then(
        () => {
          if (source === es) setLink("live");
        },
        () => {
          if (source === es) linkLost();
        },
      );
    }),
  );
  es.addEventListener("heartbeat", mine(() => {}));
  es.addEventListener(
    "alarm",
    mine((event) => {
      const data = parse(event);
      if (!data || !data.key) return;
      if (data.row) state.alarms.set(data.key, { ...data.row, transition: data.transition });
      else state.alarms.delete(data.key);
      pending.alarms = true;
      schedule();
      // the pushed row has no names yet: the snapshot has them
      reloadSoon();
    }),
  );
  es.addEventListener(
    "values",
    mine((event) => {
      const data = parse(event);
      if (!data || !Array.isArray(data.points)) return;
      for (const [id, value, quality, ts] of data.points) {
        state.values.set(id, [value, quality, ts]);
        pending.values.add(id);
      }
      schedule();
    }),
  );
  es.addEventListener(
    "device",
    mine((event) => {
      const data = parse(event);
      if (!data || !data.id) return;
      state.online.set(data.id, data.online);
      pending.device.add(data.id);
      schedule();
      reloadSoon(); // the communication-fault rows come with the snapshot
    }),
  );
  es.addEventListener(
    "linkage",
    mine((event) => {
      const data = parse(event);
      if (!data) return;
      pending.linkage.push(data);
      schedule();
    }),
  );
  es.addEventListener(
    "drill",
    mine(() => reloadSoon()),
  );
  es.onerror = () => {
    if (source !== es) return;
    // EventSource retries by itself, but until it is back the state is unknown.
    setLink("lost");
    // Refused (e.g. 401 after the session ended): CLOSED, and we decide — sign-in again, or
    // retry a bit later.
    if (es.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(() => {
        if (source || !wanted) return;
        get("/api/session")
          .then((s) => {
            if (s.user) connect();
            else onSessionGone({ error: "session" });
          })
          .catch(() => setTimeout(() => wanted && !source && connect(), 3000));
      }, 1000);
    }
  };
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    if (state.link === "live") reloadAlarms().catch(() => {});
  }, 250);
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
  state.link = "connecting";
  state.lostAt = null;
  state.alarms = new Map();
  state.commFaults = [];
  state.unverified = [];
  state.drills = [];
  state.loaded = false;
}

/** True while what the page shows is the last known state, not the present one. */
export function isStale() {
  return state.link !== "live";
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
