// Hand-written SVG charts (no chart library, nothing fetched): stacked bars, a pie and a line
// chart with a min–max band. Each returns an SVG string for one innerHTML pass.
import { esc } from "./util.js";

export const CLASS_COLOURS = {
  fire: "#ff3b30",
  supervisory: "#ff9f0a",
  fault: "#ffd60a",
  security: "#bf7bff",
  other: "#4da3ff",
};

/** Stacked bars: categories along x, one stack per category; series: [{key, label, colour}]. */
export function stackedBars(categories, series, valueOf, { height = 240, width = 720, testid = "" } = {}) {
  const W = Math.max(300, Math.round(width));
  const H = height;
  const L = 36;
  const B = 26;
  const T = 8;
  const totals = categories.map((c) => series.reduce((s, se) => s + (valueOf(c, se.key) || 0), 0));
  const top = Math.max(1, ...totals);
  // Counts are whole numbers: a 1-2-5 step that gives at most five whole-number ticks.
  let unit = 1;
  for (let mag = 1; ; mag *= 10) {
    const found = [1, 2, 5].find((m) => top / (m * mag) <= 5);
    if (found) {
      unit = found * mag;
      break;
    }
  }
  const ticks = Math.ceil(top / unit);
  const max = ticks * unit;
  const plotH = H - B - T;
  const step = (W - L - 4) / Math.max(1, categories.length);
  const bw = Math.max(2, Math.min(36, step * 0.7));
  const parts = [];
  for (let i = 0; i <= ticks; i++) {
    const y = T + plotH - (plotH * i) / ticks;
    parts.push(`<line class="grid" x1="${L}" x2="${W}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text x="${L - 4}" y="${y + 4}" text-anchor="end">${Math.round((max * i) / ticks)}</text>`);
  }
  const labelEvery = Math.ceil(categories.length / 12);
  categories.forEach((c, i) => {
    const x = L + i * step + (step - bw) / 2;
    let y = T + plotH;
    for (const se of series) {
      const v = valueOf(c, se.key) || 0;
      if (!v) continue;
      const h = (plotH * v) / max;
      y -= h;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${se.colour}"><title>${esc(c)} ${esc(se.label)}: ${v}</title></rect>`);
    }
    if (i % labelEvery === 0)
      parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${H - 8}" text-anchor="middle">${esc(String(c).slice(5))}</text>`);
  });
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" ${testid ? `data-testid="${testid}"` : ""}>${parts.join("")}</svg>`;
}

/** Pie of [{label, value, colour}]. */
export function pie(items, { size = 220, testid = "" } = {}) {
  const total = items.reduce((s, it) => s + it.value, 0);
  const r = size / 2 - 6;
  const c = size / 2;
  if (!total) return `<svg class="chart" viewBox="0 0 ${size} ${size}" ${testid ? `data-testid="${testid}"` : ""}><circle cx="${c}" cy="${c}" r="${r}" fill="none" stroke="#2c3743" stroke-width="2"/></svg>`;
  const parts = [];
  let angle = -Math.PI / 2;
  for (const it of items) {
    if (!it.value) continue;
    const frac = it.value / total;
    if (frac >= 0.9999) {
      parts.push(`<circle cx="${c}" cy="${c}" r="${r}" fill="${it.colour}"><title>${esc(it.label)}: ${it.value}</title></circle>`);
      break;
    }
    const end = angle + frac * 2 * Math.PI;
    const x1 = c + r * Math.cos(angle);
    const y1 = c + r * Math.sin(angle);
    const x2 = c + r * Math.cos(end);
    const y2 = c + r * Math.sin(end);
    const large = frac > 0.5 ? 1 : 0;
    parts.push(`<path d="M${c},${c} L${x1.toFixed(2)},${y1.toFixed(2)} A${r},${r} 0 ${large} 1 ${x2.toFixed(2)},${y2.toFixed(2)} Z" fill="${it.colour}" stroke="#161c23" stroke-width="2"><title>${esc(it.label)}: ${it.value}</title></path>`);
    angle = end;
  }
  return `<svg class="chart" viewBox="0 0 ${size} ${size}" role="img" style="max-width:${size}px" ${testid ? `data-testid="${testid}"` : ""}>${parts.join("")}</svg>`;
}

const pad = (n) => String(n).padStart(2, "0");

function timeLabel(ts, spanS) {
  const d = new Date(ts * 1000);
  if (spanS > 2 * 86400) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Line chart of rows [[ts, min, avg, max], ...] over [since, until]. */
export function lineChart(rows, since, until, { unit = "", height = 280, width = 760, testid = "trend-chart", empty = "" } = {}) {
  // Drawn at the container's own width, so the text keeps its size on any screen.
  const W = Math.max(320, Math.round(width));
  const H = height;
  const L = 52;
  const B = 24;
  const T = 10;
  const R = 10;
  const plotW = W - L - R;
  const plotH = H - T - B;
  const head = `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" data-testid="${testid}" data-points="${rows.length}">`;
  if (!rows.length) return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle">${esc(empty)}</text></svg>`;
  let lo = Infinity;
  let hi = -Infinity;
  for (const [, mn, , mx] of rows) {
    if (mn < lo) lo = mn;
    if (mx > hi) hi = mx;
  }
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const span = hi - lo;
  lo -= span * 0.05;
  hi += span * 0.05;
  const x = (ts) => L + ((ts - since) / Math.max(1, until - since)) * plotW;
  const y = (v) => T + plotH - ((v - lo) / (hi - lo)) * plotH;
  const parts = [];
  // Enough decimals that neighbouring ticks differ (a flat tank level varies in the 3rd digit).
  const decimals = Math.min(4, Math.max(0, Math.ceil(-Math.log10((hi - lo) / 4)) + 1));
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    const yy = y(v);
    parts.push(`<line class="grid" x1="${L}" x2="${W - R}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}"/>`);
    parts.push(`<text x="${L - 5}" y="${(yy + 4).toFixed(1)}" text-anchor="end">${v.toFixed(decimals)}</text>`);
  }
  for (let i = 0; i <= 6; i++) {
    const ts = since + ((until - since) * i) / 6;
    const anchor = i === 0 ? "start" : i === 6 ? "end" : "middle";
    parts.push(`<text x="${x(ts).toFixed(1)}" y="${H - 6}" text-anchor="${anchor}">${timeLabel(ts, until - since)}</text>`);
  }
  const upper = rows.map((r) => `${x(r[0]).toFixed(1)},${y(r[3]).toFixed(1)}`);
  const lower = rows.map((r) => `${x(r[0]).toFixed(1)},${y(r[1]).toFixed(1)}`).reverse();
  parts.push(`<polygon points="${upper.concat(lower).join(" ")}" fill="#4da3ff" opacity=".18"/>`);
  parts.push(`<polyline points="${rows.map((r) => `${x(r[0]).toFixed(1)},${y(r[2]).toFixed(1)}`).join(" ")}" fill="none" stroke="#4da3ff" stroke-width="2"/>`);
  // The latest value as a dot, so that a short history is still visible on a long time axis.
  const last = rows[rows.length - 1];
  parts.push(`<circle cx="${x(last[0]).toFixed(1)}" cy="${y(last[2]).toFixed(1)}" r="4" fill="#4da3ff"><title>${last[2]}</title></circle>`);
  if (unit) parts.push(`<text x="${L + 6}" y="${T + 12}">${esc(unit)}</text>`);
  return `${head}${parts.join("")}</svg>`;
}
