/**
 * Tiny inline-SVG charts for the training report: line charts (linear or log y, epoch
 * boundaries) and bar charts, with axes, ticks, labels, a title, and `<title>`/`<desc>`
 * for screen readers. No scripts, no external resources.
 */
import { checkKeys } from '../errors';
import { escapeHtml as esc } from './html';

export interface LineSeries {
  name: string;
  /** [x, y] points, x ascending. */
  points: [number, number][];
  color: string;
  /** Stroke width (default 2). */
  width?: number;
  opacity?: number;
  /** Draw a dot at each point (and its value when `labels`). */
  markers?: boolean;
  labels?: boolean;
}

export interface LineChartOptions {
  /** Prefix for the ids of `<title>`/`<desc>`; unique in the page. */
  id: string;
  title: string;
  /** A sentence for screen readers: what the chart shows. */
  description: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** Dashed vertical lines (epoch boundaries). */
  vlines?: { x: number; label: string }[];
  /** Logarithmic y axis (every y must be > 0). */
  logY?: boolean;
  /** Only integer x ticks (epochs). */
  integerX?: boolean;
  width?: number;
  height?: number;
  yFormat?: (v: number) => string;
}

export interface BarChartOptions {
  id: string;
  title: string;
  description: string;
  xLabel: string;
  yLabel: string;
  labels: string[];
  values: number[];
  /** y range (default [0, max]). */
  yDomain?: [number, number];
  /** A dashed horizontal reference line. */
  refLine?: { y: number; label: string };
  yFormat?: (v: number) => string;
  /** Text above each bar (default yFormat of the value). */
  barLabel?: (v: number) => string;
  color?: string;
  width?: number;
  height?: number;
}

const M = { left: 62, right: 18, top: 44, bottom: 50 };
const AXIS = '#6b7280';
const GRID = '#e5e7eb';
const TEXT = '#374151';

const r1 = (v: number) => (Math.round(v * 10) / 10).toString();

/** Round steps of 1, 2 or 5 times a power of ten, about `count` of them over [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => raw <= s) ?? 10 * mag;
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9) * step;
  for (let v = first; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const mult = b - a <= 3 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let e = a; e <= b; e++) for (const m of mult) {
    const v = Number((m * 10 ** e).toPrecision(6));
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
  }
  return out;
}

/** Formats ticks with as many decimals as the step needs (0.25 -> 2), the same for every tick. */
function tickFormat(ticks: number[]): (v: number) => string {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(ticks[0]) || 1;
  let decimals = 0;
  while (decimals < 6 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6 * 10 ** decimals) decimals++;
  return (v) => (Math.abs(v) >= 1000 && decimals === 0 ? Math.round(v).toLocaleString('en-US') : v.toFixed(decimals));
}

function logFormat(v: number): string {
  if (v >= 1000) return v.toLocaleString('en-US');
  return String(Number(v.toPrecision(3)));
}

function frame(o: { id: string; title: string; description: string; width: number; height: number }, body: string): string {
  return (
    `<svg class="chart" viewBox="0 0 ${o.width} ${o.height}" role="img" aria-labelledby="${esc(o.id)}-t ${esc(o.id)}-d" preserveAspectRatio="xMidYMid meet">` +
    `<title id="${esc(o.id)}-t">${esc(o.title)}</title><desc id="${esc(o.id)}-d">${esc(o.description)}</desc>` +
    `<text x="${M.left}" y="22" class="ct">${esc(o.title)}</text>` +
    body +
    '</svg>'
  );
}

function axisLabels(width: number, height: number, xLabel: string, yLabel: string): string {
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom;
  return (
    `<text x="${r1(M.left + pw / 2)}" y="${height - 10}" text-anchor="middle" class="al">${esc(xLabel)}</text>` +
    `<text transform="translate(16 ${r1(M.top + ph / 2)}) rotate(-90)" text-anchor="middle" class="al">${esc(yLabel)}</text>`
  );
}

/**
 * A line chart as an inline `<svg>` string.
 * @example lineChart({ id: 'loss', title: 'Loss', description: '...', xLabel: 'batch', yLabel: 'loss', series: [{ name: 'loss', points, color: '#2563eb' }] })
 */
export function lineChart(o: LineChartOptions): string {
  checkKeys(o, ['id', 'title', 'description', 'xLabel', 'yLabel', 'series', 'vlines', 'logY', 'integerX', 'width', 'height', 'yFormat'], 'lineChart');
  const width = o.width ?? 640;
  const height = o.height ?? 320;
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom;
  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
  if (all.length === 0) {
    return frame({ ...o, width, height }, `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="al">no data</text>`);
  }
  let x0 = Math.min(...all.map((p) => p[0]));
  let x1 = Math.max(...all.map((p) => p[0]));
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  } else if (o.integerX) {
    // Room for the end points' markers and labels.
    const pad = Math.max(0.25, (x1 - x0) * 0.04);
    x0 -= pad;
    x1 += pad;
  }
  let y0 = Math.min(...all.map((p) => p[1]));
  let y1 = Math.max(...all.map((p) => p[1]));
  let yTicks: number[];
  let fmt: (v: number) => string;
  if (o.logY) {
    y0 /= 1.15;
    y1 = y1 * 1.15;
    yTicks = logTicks(y0, y1);
    fmt = o.yFormat ?? logFormat;
  } else {
    if (y0 > 0 && y0 < (y1 - y0) * 0.5) y0 = 0; // start at zero when zero is near
    if (y1 === y0) {
      y0 -= 1;
      y1 += 1;
    }
    yTicks = niceTicks(y0, y1, 5);
    y0 = Math.min(y0, yTicks[0]);
    const step = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
    if (yTicks[yTicks.length - 1] < y1) yTicks.push(Number((yTicks[yTicks.length - 1] + step).toPrecision(12)));
    y1 = yTicks[yTicks.length - 1];
    fmt = o.yFormat ?? tickFormat(yTicks);
  }
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = o.logY
    ? (y: number) => M.top + ph - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * ph
    : (y: number) => M.top + ph - ((y - y0) / (y1 - y0)) * ph;

  let xTicks = niceTicks(x0, x1, 6);
  if (o.integerX) {
    xTicks = xTicks.filter((v) => Number.isInteger(v));
    if (xTicks.length === 0) xTicks = [Math.round((x0 + x1) / 2)];
  }
  const xf = tickFormat(xTicks);
  const parts: string[] = [];
  for (const t of yTicks) {
    const y = r1(sy(t));
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="${GRID}"/>`);
    parts.push(`<text x="${M.left - 8}" y="${y}" dy="0.32em" text-anchor="end" class="tk">${esc(fmt(t))}</text>`);
  }
  for (const t of xTicks) {
    const x = r1(sx(t));
    parts.push(`<line x1="${x}" x2="${x}" y1="${M.top + ph}" y2="${M.top + ph + 5}" stroke="${AXIS}"/>`);
    parts.push(`<text x="${x}" y="${M.top + ph + 18}" text-anchor="middle" class="tk">${esc(xf(t))}</text>`);
  }
  for (const v of o.vlines ?? []) {
    if (v.x < x0 || v.x > x1) continue;
    const x = r1(sx(v.x));
    parts.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}" stroke="#9ca3af" stroke-dasharray="4 4"/>`);
    parts.push(`<text x="${x}" y="${M.top - 5}" text-anchor="middle" class="vl">${esc(v.label)}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="${AXIS}"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="${AXIS}"/>`);
  for (const s of o.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
    if (pts.length === 0) continue;
    const d = pts.map(([x, y]) => `${r1(sx(x))},${r1(sy(y))}`).join(' ');
    const op = s.opacity === undefined ? '' : ` stroke-opacity="${s.opacity}"`;
    parts.push(`<polyline points="${d}" fill="none" stroke="${esc(s.color)}" stroke-width="${s.width ?? 2}" stroke-linejoin="round"${op}><title>${esc(s.name)}</title></polyline>`);
    if (s.markers) {
      for (const [x, y] of pts) {
        parts.push(`<circle cx="${r1(sx(x))}" cy="${r1(sy(y))}" r="4" fill="#fff" stroke="${esc(s.color)}" stroke-width="2"><title>${esc(`${s.name} at ${x}: ${y}`)}</title></circle>`);
        if (s.labels) parts.push(`<text x="${r1(sx(x))}" y="${r1(sy(y) - 10)}" text-anchor="middle" class="pl">${esc(fmt === logFormat ? logFormat(y) : y.toPrecision(4))}</text>`);
      }
    }
  }
  if (o.series.length > 1) {
    // The legend sits on the title's line, right-aligned, clear of the data.
    let lx = M.left + pw;
    const items = o.series.slice().reverse().map((s) => {
      lx -= 30 + s.name.length * 6.2;
      return `<g transform="translate(${r1(lx)} 18)"><line x1="0" x2="18" y1="0" y2="0" stroke="${esc(s.color)}" stroke-width="3"/><text x="23" y="0" dy="0.32em" class="lg">${esc(s.name)}</text></g>`;
    });
    parts.push(...items);
  }
  parts.push(axisLabels(width, height, o.xLabel, o.yLabel));
  return frame({ ...o, width, height }, parts.join(''));
}

/**
 * A vertical bar chart as an inline `<svg>` string.
 * @example barChart({ id: 'acc', title: 'Accuracy per class', description: '...', xLabel: 'digit', yLabel: 'accuracy', labels, values })
 */
export function barChart(o: BarChartOptions): string {
  checkKeys(o, ['id', 'title', 'description', 'xLabel', 'yLabel', 'labels', 'values', 'yDomain', 'refLine', 'yFormat', 'barLabel', 'color', 'width', 'height'], 'barChart');
  const width = o.width ?? 640;
  const height = o.height ?? 320;
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom;
  const finite = o.values.filter(Number.isFinite);
  const [y0, y1] = o.yDomain ?? [0, Math.max(1e-12, ...finite)];
  const yTicks = niceTicks(y0, y1, 5);
  const fmt = o.yFormat ?? tickFormat(yTicks);
  const label = o.barLabel ?? fmt;
  const sy = (y: number) => M.top + ph - ((Math.min(Math.max(y, y0), y1) - y0) / (y1 - y0)) * ph;
  const n = Math.max(1, o.values.length);
  const band = pw / n;
  const bw = band * 0.68;
  const parts: string[] = [];
  for (const t of yTicks) {
    const y = r1(sy(t));
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="${GRID}"/>`);
    parts.push(`<text x="${M.left - 8}" y="${y}" dy="0.32em" text-anchor="end" class="tk">${esc(fmt(t))}</text>`);
  }
  o.values.forEach((v, i) => {
    const cx = M.left + band * (i + 0.5);
    parts.push(`<text x="${r1(cx)}" y="${M.top + ph + 18}" text-anchor="middle" class="tk">${esc(o.labels[i] ?? String(i))}</text>`);
    if (!Number.isFinite(v)) return;
    const top = sy(v);
    parts.push(
      `<rect x="${r1(cx - bw / 2)}" y="${r1(top)}" width="${r1(bw)}" height="${r1(M.top + ph - top)}" rx="2" fill="${esc(o.color ?? '#60a5fa')}"><title>${esc(`${o.labels[i] ?? i}: ${label(v)}`)}</title></rect>`,
      `<text x="${r1(cx)}" y="${r1(top - 5)}" text-anchor="middle" class="pl">${esc(label(v))}</text>`,
    );
  });
  if (o.refLine && Number.isFinite(o.refLine.y)) {
    const y = r1(sy(o.refLine.y));
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="#dc2626" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    parts.push(`<line x1="${r1(M.left + pw - 150)}" x2="${r1(M.left + pw - 132)}" y1="18" y2="18" stroke="#dc2626" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${r1(M.left + pw - 126)}" y="18" dy="0.32em" class="rl">${esc(o.refLine.label)}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="${AXIS}"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="${AXIS}"/>`);
  parts.push(axisLabels(width, height, o.xLabel, o.yLabel));
  return frame({ ...o, width, height }, parts.join(''));
}
