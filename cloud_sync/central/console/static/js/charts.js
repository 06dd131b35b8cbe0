// SVG charts drawn here (no chart library, nothing fetched): pie, bars and a time line with an
// optional min–max band. Each returns one SVG string for an innerHTML pass.
import { esc } from "./util.js";

export const CLASS_COLOURS = { fire: "#ff3b30", supervisory: "#ff9f0a", fault: "#ffd60a", security: "#bf7bff", other: "#4da3ff" };
const PALETTE = ["#4da3ff", "#32d74b", "#ff9f0a", "#bf7bff", "#ff6482", "#64d2ff", "#ffd60a", "#ac8e68"];

export const colourOf = (key, i) => CLASS_COLOURS[key] || PALETTE[i % PALETTE.length];

function svg(w, h, testid, body, extra = "") {
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" role="img" data-testid="${esc(testid)}" ${extra}>${body}</svg>`;
}

/** A whole-number upper bound and tick step for counts up to `top` (at most `ticks` steps). */
function scale(top, ticks = 5) {
  const raw = Math.max(1, top) / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= raw));
  return { step, max: step * Math.ceil(Math.max(1, top) / step) };
}

/** A pie of [{label, value, colour}] with a legend. */
export function pieChart(items, { size = 200, testid = "pie" } = {}) {
  const sum = items.reduce((s, it) => s + it.value, 0);
  const c = size / 2;
  const r = c - 4;
  const parts = [];
  if (!sum) parts.push(`<circle cx="${c}" cy="${c}" r="${r}" fill="none" stroke="#2a3542"/>`);
  let a0 = -Math.PI / 2;
  for (const it of items) {
    if (!it.value) continue;
    const share = it.value / sum;
    const tip = `<title>${esc(it.label)}: ${it.value}</title>`;
    if (share > 0.9999) {
      parts.push(`<circle cx="${c}" cy="${c}" r="${r}" fill="${it.colour}">${tip}</circle>`);
      break;
    }
    const a1 = a0 + share * 2 * Math.PI;
    const p = (a) => `${(c + r * Math.cos(a)).toFixed(2)},${(c + r * Math.sin(a)).toFixed(2)}`;
    parts.push(`<path d="M${c},${c} L${p(a0)} A${r},${r} 0 ${share > 0.5 ? 1 : 0} 1 ${p(a1)} Z" fill="${it.colour}" stroke="#182029">${tip}</path>`);
    a0 = a1;
  }
  const legend = items.map((it) => `<span><i style="background:${it.colour}"></i>${esc(it.label)} ${it.value}</span>`).join("");
  return `<div style="max-width:${size}px">${svg(size, size, testid, parts.join(""), `data-total="${sum}"`)}</div><div class="legend">${legend}</div>`;
}

/** Vertical bars of [{label, value, colour}]. */
export function barChart(items, { width = 520, height = 220, testid = "bars" } = {}) {
  const L = 40, B = 34, T = 8;
  const { step, max } = scale(Math.max(0, ...items.map((i) => i.value)));
  const plotH = height - B - T;
  const slot = (width - L - 6) / Math.max(1, items.length);
  const bw = Math.max(3, Math.min(48, slot * 0.7));
  const parts = [];
  for (let i = 0; i * step <= max; i++) {
    const v = i * step;
    const y = T + plotH - (plotH * v) / max;
    parts.push(`<line class="grid" x1="${L}" x2="${width}" y1="${y}" y2="${y}"/><text x="${L - 4}" y="${y + 4}" text-anchor="end">${v}</text>`);
  }
  const every = Math.ceil(items.length / 10);
  items.forEach((it, i) => {
    const h = (plotH * it.value) / max;
    const x = L + i * slot + (slot - bw) / 2;
    parts.push(`<rect x="${x.toFixed(1)}" y="${(T + plotH - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${it.colour}"><title>${esc(it.label)}: ${it.value}</title></rect>`);
    if (i % every === 0) parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${height - 18}" text-anchor="middle">${esc(String(it.label).slice(0, 14))}</text>`);
  });
  return svg(width, height, testid, parts.join(""), `data-bars="${items.length}"`);
}

const pad = (n) => String(n).padStart(2, "0");
function tickLabel(ts, span) {
  const d = new Date(ts * 1000);
  return span > 2 * 86400 ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())}` : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A time line of rows [{ts, v, lo?, hi?}] over [from, to]; `lo`/`hi` draw a band. `counts`:
 *  whole numbers from zero on the axis (alarm counts). */
export function lineChart(rows, from, to, { width = 760, height = 260, testid = "line", empty = "", counts = false } = {}) {
  const L = 56, R = 10, T = 10, B = 24;
  const plotW = width - L - R, plotH = height - T - B;
  const extra = `data-points="${rows.length}"`;
  if (!rows.length) return svg(width, height, testid, `<text x="${width / 2}" y="${height / 2}" text-anchor="middle">${esc(empty)}</text>`, extra);
  let lo = Infinity, hi = -Infinity;
  for (const r of rows) {
    lo = Math.min(lo, r.lo ?? r.v);
    hi = Math.max(hi, r.hi ?? r.v);
  }
  let ticks = 4;
  if (counts) {
    const { step, max } = scale(hi, 4);
    lo = 0;
    hi = max;
    ticks = max / step;
  } else {
    if (lo === hi) { lo -= 1; hi += 1; }
    const margin = (hi - lo) * 0.05;
    lo -= margin; hi += margin;
  }
  const x = (ts) => L + ((ts - from) / Math.max(1e-9, to - from)) * plotW;
  const y = (v) => T + plotH - ((v - lo) / (hi - lo)) * plotH;
  const digits = counts ? 0 : Math.min(4, Math.max(0, Math.ceil(-Math.log10((hi - lo) / 4)) + 1));
  const parts = [];
  for (let i = 0; i <= ticks; i++) {
    const v = lo + ((hi - lo) * i) / ticks;
    parts.push(`<line class="grid" x1="${L}" x2="${width - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/><text x="${L - 5}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(digits)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const ts = from + ((to - from) * i) / 5;
    parts.push(`<text x="${x(ts).toFixed(1)}" y="${height - 6}" text-anchor="${i === 0 ? "start" : i === 5 ? "end" : "middle"}">${tickLabel(ts, to - from)}</text>`);
  }
  if (rows.some((r) => r.lo != null && r.hi != null)) {
    const top = rows.map((r) => `${x(r.ts).toFixed(1)},${y(r.hi ?? r.v).toFixed(1)}`);
    const bottom = rows.map((r) => `${x(r.ts).toFixed(1)},${y(r.lo ?? r.v).toFixed(1)}`).reverse();
    parts.push(`<polygon points="${top.concat(bottom).join(" ")}" fill="#4da3ff" opacity=".18"/>`);
  }
  parts.push(`<polyline points="${rows.map((r) => `${x(r.ts).toFixed(1)},${y(r.v).toFixed(1)}`).join(" ")}" fill="none" stroke="#4da3ff" stroke-width="2"/>`);
  const last = rows[rows.length - 1];
  parts.push(`<circle cx="${x(last.ts).toFixed(1)}" cy="${y(last.v).toFixed(1)}" r="3.5" fill="#4da3ff"><title>${last.v}</title></circle>`);
  return svg(width, height, testid, parts.join(""), extra);
}
