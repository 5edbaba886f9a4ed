/**
 * buildReport(): the training report as one self-contained HTML page: inline CSS,
 * inline SVG charts and PNG images as data: URIs; no scripts, fonts or network.
 */
import { describe, expected, argTypeError, outOfRangeError } from '../errors';
import type { FeatureMap } from '../visualize';
import type { ShapeInfo } from '../nn/summary';
import { formatPy } from '../cli/format';
import { escapeHtml as esc, commas, percent, duration } from './html';
import { grayPng, pngDataUri, divergingColor } from './png';
import { lineChart, barChart } from './svg';
import type { ReportData, ReportSettings, ReportDigitMaps, BatchLoss } from './types';

const CSS = `
:root{--bg:#f5f6f8;--card:#fff;--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--accent:#2563eb;--bad:#c2410c}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1140px;margin:0 auto;padding:0 20px}
header.top{background:linear-gradient(180deg,#e8eefc 0%,var(--bg) 100%);border-bottom:1px solid var(--line);padding:30px 0 16px}
h1{font-size:1.75rem;line-height:1.2;margin:0 0 6px;letter-spacing:-.01em}
h2{font-size:1.3rem;margin:0 0 6px;letter-spacing:-.005em}
h3{font-size:1rem;margin:18px 0 8px}
.sub{color:var(--muted);margin:0}
nav.toc{display:flex;flex-wrap:wrap;gap:4px 16px;margin-top:12px;font-size:.92rem}
nav.toc a{color:var(--accent);text-decoration:none}
nav.toc a:hover{text-decoration:underline}
main{padding-bottom:24px}
section.panel{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:20px 22px;margin:18px 0;box-shadow:0 1px 2px rgba(16,24,40,.04)}
p.lead{color:#4b5563;margin:0 0 14px;max-width:80ch}
.note{color:var(--muted);font-size:.86rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(158px,1fr));gap:12px;margin:18px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:14px 16px}
.card .k{color:var(--muted);font-size:.76rem;text-transform:uppercase;letter-spacing:.05em}
.card .v{font-size:1.55rem;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.3}
.card .d{color:var(--muted);font-size:.82rem}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,430px),1fr));gap:18px;align-items:start}
figure{margin:0}
figcaption{color:var(--muted);font-size:.85rem;margin-top:6px}
svg.chart{width:100%;height:auto;display:block;background:#fff}
svg.chart text{font-family:inherit}
svg .ct{font-size:16px;font-weight:600;fill:#111827}
svg .tk{font-size:12px;fill:#6b7280}
svg .al{font-size:13px;fill:#374151}
svg .vl{font-size:10px;fill:#6b7280}
svg .pl,svg .lg{font-size:11px;fill:#374151}
svg .pl{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .rl{font-size:11px;fill:#dc2626}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.cm{margin:4px 0}
table.cm th,table.cm td{min-width:2.9em;height:2.3em;padding:0 4px;text-align:center;font-size:.82rem;border:2px solid #fff}
table.cm th{color:var(--muted);font-weight:600;background:#f9fafb}
table.cm th.corner{font-size:.72rem;font-weight:500;white-space:nowrap;padding:0 8px}
table.cm td.z{color:#c7cbd1}
table.cm td.sum,table.cm th.sum{background:#f3f4f6;color:#374151}
table.cm td.acc{background:#f3f4f6;font-weight:600;color:#111827;min-width:4.4em}
table.cm caption{caption-side:bottom;text-align:left;color:var(--muted);font-size:.82rem;padding-top:6px}
.axis-note{color:var(--muted);font-size:.8rem}
ul.pairs{margin:6px 0 0;padding-left:18px;color:#374151}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:10px}
.gallery figure{background:#fafafa;border:1px solid var(--line);border-radius:10px;padding:6px 4px 4px;text-align:center}
.gallery img{width:84px;height:84px;display:block;margin:0 auto;border-radius:4px}
.gallery figcaption{margin-top:4px;font-size:.8rem;color:#374151;line-height:1.3}
.gallery figcaption .p{color:var(--bad);font-weight:650}
.gallery figcaption .t{font-weight:650}
.gallery figcaption small{color:var(--muted);display:block;font-size:.72rem}
img{image-rendering:pixelated;image-rendering:crisp-edges}
img.px{image-rendering:pixelated}
.kernels{display:grid;grid-template-columns:repeat(auto-fill,minmax(54px,1fr));gap:8px 6px;max-width:960px}
.kernels.c16{grid-template-columns:repeat(16,minmax(0,1fr))}
.kernels figure{text-align:center}
.kernels img{width:100%;max-width:48px;height:auto;border:1px solid var(--line);border-radius:3px}
.kernels figcaption{margin:0;font-size:.7rem}
.colorbar{display:flex;align-items:center;gap:8px;font-size:.8rem;color:var(--muted);margin:12px 0 0}
.colorbar span.bar{display:inline-block;width:180px;height:12px;border-radius:3px;border:1px solid var(--line)}
.digit{display:grid;grid-template-columns:120px 1fr;gap:18px;padding:16px 0;border-top:1px solid var(--line)}
.digit:first-of-type{border-top:0}
.digit .input{text-align:center}
.digit .input img{width:112px;height:112px;border-radius:6px;display:block;margin:0 auto}
.digit .input .cap{font-size:.85rem;color:#374151;margin-top:6px}
.layer h4{margin:0 0 6px;font-size:.88rem;font-weight:600;color:#374151}
.layer h4 span{color:var(--muted);font-weight:400}
.layer + .layer{margin-top:12px}
.maps{display:grid;grid-template-columns:repeat(auto-fill,minmax(40px,1fr));gap:3px;max-width:900px}
.maps.c16{grid-template-columns:repeat(16,minmax(0,1fr))}
.maps.c8{grid-template-columns:repeat(8,minmax(0,1fr));max-width:460px}
.maps img{width:100%;height:auto;display:block;border-radius:2px}
table.summary{width:100%;font-size:.88rem}
table.summary th,table.summary td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
table.summary th{color:var(--muted);font-weight:600;font-size:.78rem;text-transform:uppercase;letter-spacing:.04em}
table.summary td.n{text-align:right}
table.summary td.f{color:var(--muted);font-size:.8rem}
table.summary tr.leaf td:first-child{color:#374151}
table.summary tr.total td{font-weight:650;border-bottom:0;border-top:2px solid #d1d5db}
table.summary code{font-size:.85em}
dl.settings{display:grid;grid-template-columns:max-content 1fr;gap:6px 18px;margin:0;font-size:.9rem}
dl.settings dt{color:var(--muted)}
dl.settings dd{margin:0;overflow-wrap:anywhere;font-variant-numeric:tabular-nums}
details{margin-top:12px}
details summary{cursor:pointer;color:var(--accent);font-size:.9rem}
pre{background:#f9fafb;border:1px solid var(--line);border-radius:8px;padding:10px 12px;overflow-x:auto;font-size:.78rem;line-height:1.4}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
footer{color:var(--muted);font-size:.82rem;padding:8px 0 36px}
@media (max-width:640px){
  body{font-size:14px}
  .wrap{padding:0 12px}
  h1{font-size:1.4rem}
  section.panel{padding:14px 14px;border-radius:12px}
  .card .v{font-size:1.3rem}
  .digit{grid-template-columns:1fr}
  .gallery{grid-template-columns:repeat(auto-fill,minmax(78px,1fr));gap:6px}
  .gallery img{width:64px;height:64px}
  .gallery figcaption small{font-size:.66rem}
  table.cm th,table.cm td{min-width:2.3em;height:2em;font-size:.74rem;padding:0 2px}
  .digit .input img{width:84px;height:84px}
  .maps.c16,.kernels.c16{grid-template-columns:repeat(8,minmax(0,1fr))}
}
@media print{body{background:#fff}section.panel{box-shadow:none;break-inside:avoid}nav.toc{display:none}}
`;

// ---------------------------------------------------------------- validation

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkFeatureMap(m: unknown, name: string): asserts m is FeatureMap {
  if (!isObject(m) || !Array.isArray(m.shape) || m.shape.length !== 3 || !m.data || typeof (m.data as ArrayLike<number>).length !== 'number') {
    expected('a feature map {name, shape: [c, h, w], data}', name, m);
  }
  const [c, h, w] = m.shape as number[];
  if ((m.data as ArrayLike<number>).length !== c * h * w) {
    throw outOfRangeError(`${name}: shape [${c}, ${h}, ${w}] needs ${c * h * w} values but data has ${(m.data as ArrayLike<number>).length}`);
  }
}

function checkImage(v: Record<string, unknown>, name: string): void {
  const w = v.width as number, h = v.height as number;
  if (!Number.isInteger(w) || !Number.isInteger(h) || !v.pixels || (v.pixels as ArrayLike<number>).length !== w * h) {
    throw argTypeError(`Expected width x height pixels for ${name} but received ${describe(v.pixels)} for ${describe(w)}x${describe(h)}`);
  }
}

/** @internal Throws a TypeError naming the first field of `data` that is not what buildReport() needs. */
export function checkReportData(data: unknown): asserts data is ReportData {
  if (!isObject(data)) expected('a ReportData object', 'data', data);
  if (typeof data.title !== 'string') expected('a string', 'data.title', data.title);
  if (typeof data.createdAt !== 'string') expected('an ISO date string', 'data.createdAt', data.createdAt);
  if (!isObject(data.settings)) expected('an object', 'data.settings', data.settings);
  if (!Array.isArray(data.history)) expected('an array of epoch records', 'data.history', data.history);
  data.history.forEach((e, i) => {
    if (!isObject(e) || typeof e.epoch !== 'number' || typeof e.cost !== 'number') expected('an epoch record {epoch, cost, ...}', `data.history[${i}]`, e);
  });
  if (!Array.isArray(data.batchLosses)) expected('an array of {epoch, batch, loss}', 'data.batchLosses', data.batchLosses);
  data.batchLosses.forEach((b, i) => {
    if (!isObject(b) || typeof b.epoch !== 'number' || typeof b.batch !== 'number' || typeof b.loss !== 'number') {
      expected('a batch loss {epoch, batch, loss}', `data.batchLosses[${i}]`, b);
    }
  });
  if (data.accuracy !== null && typeof data.accuracy !== 'number') expected('a number or null', 'data.accuracy', data.accuracy);
  if (data.summary !== null) {
    const s = data.summary;
    if (!isObject(s) || !Array.isArray(s.layers) || typeof s.totalParams !== 'number') expected('a model summary or null', 'data.summary', s);
  }
  if (data.confusion !== null) {
    const c = data.confusion;
    if (!isObject(c) || !Array.isArray(c.matrix) || !Array.isArray(c.perClass) || !Array.isArray(c.misclassified)) {
      expected('a confusion matrix or null', 'data.confusion', c);
    }
  }
  if (!Array.isArray(data.misclassified)) expected('an array of images', 'data.misclassified', data.misclassified);
  data.misclassified.forEach((m, i) => {
    if (!isObject(m)) expected('a misclassified image', `data.misclassified[${i}]`, m);
    checkImage(m, `data.misclassified[${i}]`);
  });
  if (data.kernels !== null) checkFeatureMap(data.kernels, 'data.kernels');
  if (!Array.isArray(data.featureMaps)) expected('an array of digits with their feature maps', 'data.featureMaps', data.featureMaps);
  data.featureMaps.forEach((d, i) => {
    if (!isObject(d) || !Array.isArray(d.maps)) expected('a digit with its feature maps', `data.featureMaps[${i}]`, d);
    checkImage(d, `data.featureMaps[${i}]`);
    (d.maps as unknown[]).forEach((m, j) => checkFeatureMap(m, `data.featureMaps[${i}].maps[${j}]`));
  });
}

// ---------------------------------------------------------------- pieces

const img = (png: Buffer, alt: string, w: number, h: number, cls = 'px') =>
  `<img class="${cls}" src="${pngDataUri(png)}" width="${w}" height="${h}" alt="${esc(alt)}">`;

function shapeText(s: ShapeInfo): string {
  if (s === null || s === undefined) return '--';
  if (s.every((x) => typeof x === 'number')) return `[${s.join(', ')}]`;
  return s.map((x) => shapeText(x as ShapeInfo)).join(', ');
}

/** Values a..b of a typed or plain array, as numbers. */
const part = (data: ArrayLike<number>, a: number, b: number): number[] => Array.prototype.slice.call(data, a, b).map(Number);

const plural = (n: number, one: string, many = `${one}s`) => `${commas(n)} ${n === 1 ? one : many}`;

/** Centred moving average over a window of `w` points. */
function smooth(ys: number[], w: number): number[] {
  if (w <= 1) return ys.slice();
  const half = Math.floor(w / 2);
  const pre = [0];
  for (const y of ys) pre.push(pre[pre.length - 1] + y);
  return ys.map((_, i) => {
    const a = Math.max(0, i - half);
    const b = Math.min(ys.length, i + half + 1);
    return (pre[b] - pre[a]) / (b - a);
  });
}

/** At most `max` points: the mean of each bucket. */
function downsample(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const size = points.length / max;
  for (let i = 0; i < max; i++) {
    const a = Math.floor(i * size);
    const b = Math.max(a + 1, Math.floor((i + 1) * size));
    let sx = 0, sy = 0;
    for (let j = a; j < b; j++) {
      sx += points[j][0];
      sy += points[j][1];
    }
    out.push([sx / (b - a), sy / (b - a)]);
  }
  return out;
}

function batchChart(batches: BatchLoss[]): string {
  const sorted = batches.slice().sort((a, b) => a.epoch - b.epoch || a.batch - b.batch);
  const raw: [number, number][] = sorted.map((b, i) => [i + 1, b.loss]);
  const vlines: { x: number; label: string }[] = [];
  const starts: number[] = [];
  sorted.forEach((b, i) => {
    if (i > 0 && b.epoch !== sorted[i - 1].epoch) starts.push(i);
  });
  const every = Math.max(1, Math.ceil(starts.length / 12));
  starts.forEach((i, k) => vlines.push({ x: i + 0.5, label: k % every === every - 1 || starts.length <= 12 ? `epoch ${sorted[i].epoch}` : '' }));
  const ys = raw.map((p) => p[1]);
  const pos = ys.filter((y) => y > 0 && Number.isFinite(y));
  const logY = pos.length === ys.length && pos.length > 1 && Math.max(...pos) / Math.min(...pos) > 20;
  const window = Math.max(1, Math.min(51, Math.round(raw.length / 40) | 1));
  const smoothed = smooth(ys, window).map((y, i) => [raw[i][0], y] as [number, number]);
  const epochs = new Set(sorted.map((b) => b.epoch)).size;
  return lineChart({
    id: 'chart-batch',
    title: 'Training loss per batch',
    description: `Cross-entropy loss of each of the ${commas(raw.length)} training batches over ${plural(epochs, 'epoch')}, ` +
      `${logY ? 'on a logarithmic axis, ' : ''}with a moving average over ${window} batches${vlines.length ? ' and dashed lines where each epoch starts' : ''}. ` +
      (ys.length ? `First batch ${formatPy(ys[0], 4)}, last ${formatPy(ys[ys.length - 1], 4)}.` : ''),
    xLabel: 'batch (all epochs)',
    yLabel: logY ? 'loss (log scale)' : 'loss',
    logY,
    vlines,
    series: [
      { name: 'each batch', points: downsample(raw, 2400), color: '#93c5fd', width: 1, opacity: 0.9 },
      ...(window > 1 ? [{ name: `mean of ${window}`, points: downsample(smoothed, 2400), color: '#1d4ed8', width: 2 }] : []),
    ],
  });
}

function epochChart(data: ReportData): string {
  const pts = data.history.map((e) => [e.epoch, e.cost] as [number, number]);
  return lineChart({
    id: 'chart-epoch',
    title: 'Cost per epoch',
    description: `Mean batch loss of each epoch, the figure printed as [Epoch] cost: ${data.history.map((e) => `epoch ${e.epoch} ${formatPy(e.cost, 6)}`).join(', ') || 'none'}.`,
    xLabel: 'epoch',
    yLabel: 'cost (mean batch loss)',
    integerX: true,
    series: [{ name: 'cost', points: pts, color: '#7c3aed', width: 2.5, markers: true, labels: pts.length <= 12 }],
  });
}

function accuracyChart(data: ReportData): string {
  const c = data.confusion!;
  const acc = data.accuracy ?? c.accuracy;
  // Zoom in when every digit is above 50 %, so the differences between digits show; the axis says so.
  const finite = c.perClass.map((p) => p.accuracy).filter(Number.isFinite);
  const lowest = Math.min(acc, ...finite);
  const y0 = lowest >= 0.5 ? Math.max(0, Math.floor((lowest - 0.01) * 20) / 20) : 0;
  return barChart({
    id: 'chart-accuracy',
    title: 'Test accuracy per digit',
    description: `Share of each digit's test images classified correctly; overall ${percent(acc)} over ${commas(c.total)} images. ` +
      c.perClass.map((p) => `${p.label}: ${percent(p.accuracy, 1)}`).join(', ') + '.',
    xLabel: 'true digit',
    yLabel: y0 > 0 ? `accuracy (axis from ${Math.round(y0 * 100)} %)` : 'accuracy',
    labels: c.perClass.map((p) => String(p.label)),
    values: c.perClass.map((p) => p.accuracy),
    yDomain: [y0, 1],
    yFormat: (v) => `${Number((v * 100).toFixed(1))} %`,
    barLabel: (v) => `${(v * 100).toFixed(1)}`,
    refLine: { y: acc, label: `overall ${percent(acc)}` },
    color: '#60a5fa',
  });
}

function mix(a: [number, number, number], b: [number, number, number], t: number): string {
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function confusionTable(data: ReportData): string {
  const c = data.confusion!;
  const k = c.numClasses;
  const rowTotals = c.matrix.map((r) => r.reduce((a, b) => a + b, 0));
  const colTotals = Array.from({ length: k }, (_, j) => c.matrix.reduce((a, r) => a + r[j], 0));
  let maxOff = 0;
  c.matrix.forEach((r, i) => r.forEach((v, j) => {
    if (i !== j && rowTotals[i]) maxOff = Math.max(maxOff, v / rowTotals[i]);
  }));
  const head = `<tr><th scope="col" class="corner">true ↓ · predicted →</th>${Array.from({ length: k }, (_, j) => `<th scope="col">${j}</th>`).join('')}<th scope="col" class="sum">total</th><th scope="col" class="sum">accuracy</th></tr>`;
  const rows = c.matrix.map((r, i) => {
    const cells = r.map((v, j) => {
      const f = rowTotals[i] ? v / rowTotals[i] : 0;
      const title = `true ${i}, predicted ${j}: ${commas(v)} of ${commas(rowTotals[i])}`;
      if (v === 0) return `<td class="z" title="${esc(title)}">0</td>`;
      let bg: string;
      let fg = '#111827';
      if (i === j) {
        bg = mix([239, 246, 255], [29, 78, 216], Math.min(1, f));
        if (f > 0.55) fg = '#fff';
      } else {
        const t = maxOff > 0 ? Math.sqrt(f / maxOff) : 0;
        bg = mix([255, 247, 237], [234, 88, 12], 0.15 + 0.85 * t);
        if (t > 0.75) fg = '#fff';
      }
      return `<td style="background:${bg};color:${fg}" title="${esc(title)}">${commas(v)}</td>`;
    });
    const p = c.perClass[i];
    return `<tr><th scope="row">${i}</th>${cells.join('')}<td class="sum">${commas(rowTotals[i])}</td><td class="acc">${esc(percent(p?.accuracy ?? NaN, 1))}</td></tr>`;
  });
  const foot = `<tr><th scope="row" class="sum">total</th>${colTotals.map((v) => `<td class="sum">${commas(v)}</td>`).join('')}<td class="sum">${commas(c.total)}</td><td class="acc">${esc(percent(c.accuracy, 2))}</td></tr>`;
  return (
    `<div class="scroll"><table class="cm" aria-label="Confusion matrix: rows are the true digits, columns the predicted ones">` +
    `<caption>Rows: true digit; columns: predicted digit. Blue cells (the diagonal) are correct, their shade the share of the row; ` +
    `orange cells are confusions, darker for a larger share of the row. The last column is each digit's accuracy (recall).</caption>` +
    `<thead>${head}</thead><tbody>${rows.join('')}${foot}</tbody></table></div>`
  );
}

function topConfusions(data: ReportData): string {
  const c = data.confusion!;
  const pairs: [number, number, number][] = [];
  c.matrix.forEach((r, i) => r.forEach((v, j) => {
    if (i !== j && v > 0) pairs.push([v, i, j]);
  }));
  pairs.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  const ranked = c.perClass.filter((p) => p.count > 0).sort((a, b) => b.accuracy - a.accuracy || a.label - b.label);
  const extremes = ranked.length > 1
    ? `<p class="note">Easiest digit: <b>${ranked[0].label}</b> (${percent(ranked[0].accuracy, 1)} right); hardest: <b>${ranked[ranked.length - 1].label}</b> (${percent(ranked[ranked.length - 1].accuracy, 1)}).</p>`
    : '';
  if (pairs.length === 0) return `<p class="note">No confusions: every test image was classified correctly.</p>${extremes}`;
  return `<h3 style="margin-top:0">Most frequent confusions</h3><ul class="pairs">${pairs.slice(0, 8).map(([v, i, j]) => `<li>a <b>${i}</b> read as <b>${j}</b>: ${plural(v, 'time')}</li>`).join('')}</ul>${extremes}`;
}

function misclassifiedGrid(data: ReportData): string {
  const c = data.confusion;
  const total = c ? c.misclassified.length : data.misclassified.length;
  if (data.misclassified.length === 0) return '<p class="note">No misclassified test images.</p>';
  const figs = data.misclassified.map((m) => {
    const scale = Math.max(1, Math.round(84 / Math.max(m.width, m.height)));
    const png = grayPng(m.pixels, m.width, m.height, { scale, min: 0, max: 1 });
    const alt = `Test image ${m.index}: a ${m.label} the model read as ${m.predicted}`;
    return (
      `<figure>${img(png, alt, m.width * scale, m.height * scale)}` +
      `<figcaption><span class="t">${esc(m.label)}</span> → <span class="p">${esc(m.predicted)}</span>` +
      `<small>#${esc(m.index)} · ${esc(percent(m.confidence, 0))}</small></figcaption></figure>`
    );
  });
  const shown = data.misclassified.length < total ? `the first ${commas(data.misclassified.length)} of ${commas(total)}` : `all ${commas(total)}`;
  return (
    `<p class="lead">The test images the model got wrong (${shown}, in test-set order). Under each: the true digit → the prediction, ` +
    `the image's index in the test set and the softmax probability the model gave its wrong answer.</p>` +
    `<div class="gallery">${figs.join('')}</div>`
  );
}

function kernelsSection(data: ReportData): string {
  const k = data.kernels!;
  const [n, kh, kw] = k.shape;
  let lim = 0;
  for (let i = 0; i < k.data.length; i++) lim = Math.max(lim, Math.abs(k.data[i]));
  if (!(lim > 0)) lim = 1;
  const scale = Math.max(1, Math.min(64, Math.round(48 / Math.max(kh, kw))));
  const figs: string[] = [];
  for (let c = 0; c < n; c++) {
    const vals = part(k.data, c * kh * kw, (c + 1) * kh * kw);
    const png = grayPng(vals, kw, kh, { scale, min: -lim, max: lim, diverging: true });
    figs.push(`<figure>${img(png, `kernel ${c}: ${vals.map((v) => v.toFixed(2)).join(' ')}`, kw * scale, kh * scale)}<figcaption>${c}</figcaption></figure>`);
  }
  const grad = [0, 0.25, 0.5, 0.75, 1].map((t) => `rgb(${divergingColor(t).join(',')}) ${t * 100}%`).join(',');
  return (
    `<p class="lead">Each square is one of the ${n} ${kh}×${kw} kernels (filters) of the first convolution <code>${esc(k.name)}</code>, as learned. ` +
    `Sliding a kernel over the image and summing the element-wise products gives one feature map: red weights add where the pixel is bright, ` +
    `blue weights subtract, so a kernel with red on one side and blue on the other responds to an edge in that direction.</p>` +
    `<div class="kernels${n % 16 === 0 ? ' c16' : ''}">${figs.join('')}</div>` +
    `<div class="colorbar"><span>${esc(formatPy(-lim, 3))}</span><span class="bar" style="background:linear-gradient(90deg,${grad})"></span><span>+${esc(formatPy(lim, 3))}</span><span>(one scale for all kernels; white is 0)</span></div>`
  );
}

function digitMaps(d: ReportDigitMaps): string {
  const scale = Math.max(1, Math.round(112 / Math.max(d.width, d.height)));
  const input = grayPng(d.pixels, d.width, d.height, { scale, min: 0, max: 1 });
  const pred = d.predicted === null ? '' : d.predicted === d.label ? `, predicted ${esc(d.predicted)} ✓` : `, predicted <b style="color:var(--bad)">${esc(d.predicted)}</b>`;
  const layers = d.maps.map((m) => {
    const [c, h, w] = m.shape;
    const s = Math.max(1, Math.round(56 / Math.max(h, w)));
    const imgs: string[] = [];
    for (let i = 0; i < c; i++) {
      const vals = part(m.data, i * h * w, (i + 1) * h * w);
      let lo = 0, hi = 0;
      for (const v of vals) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const png = grayPng(vals, w, h, { scale: s, min: lo, max: hi > lo ? hi : lo + 1 });
      imgs.push(img(png, `${m.name} map ${i}${hi === 0 && lo === 0 ? ' (all zero)' : ''}`, w * s, h * s));
    }
    return `<div class="layer"><h4>${esc(m.name)} <span>· ${plural(c, 'map')} of ${h}×${w}</span></h4><div class="maps${c % 16 === 0 ? ' c16' : c % 8 === 0 ? ' c8' : ''}">${imgs.join('')}</div></div>`;
  });
  return (
    `<div class="digit"><div class="input">${img(input, `test image ${d.index}, a ${d.label}`, d.width * scale, d.height * scale)}` +
    `<div class="cap">test #${esc(d.index)}: a <b>${esc(d.label)}</b>${pred}</div></div><div>${layers.join('')}</div></div>`
  );
}

function featureMapsSection(data: ReportData): string {
  const first = data.featureMaps[0];
  const desc = first.maps.map((m) => `<code>${esc(m.name)}</code> gives ${plural(m.shape[0], 'map')} of ${m.shape[1]}×${m.shape[2]}`).join(', ');
  return (
    `<p class="lead">What the network sees: each test digit below goes through the layers, and every small square is one channel's output, ` +
    `a feature map (${desc}). After <code>layer1</code> (convolution, ReLU, 2×2 max-pooling) the maps still look like the digit: ` +
    `each one highlights the strokes and edges its kernel detects. After <code>layer2</code> they are coarser and more abstract, ` +
    `combining the first layer's features into parts of digits; the fully connected layers classify from these. ` +
    `Each map is scaled to its own maximum (white); a black square means the ReLU zeroed that channel everywhere for this image.</p>` +
    data.featureMaps.map(digitMaps).join('')
  );
}

function summarySection(data: ReportData): string {
  const s = data.summary!;
  const rows = s.layers.map((l) => {
    const indent = (l.depth - 1) * 16;
    return `<tr class="${l.params ? 'leaf' : ''}"><td style="padding-left:${10 + indent}px"><code>${esc(l.name)}</code></td><td>${esc(l.type)}</td><td><code>${esc(shapeText(l.outputShape))}</code></td>` +
      `<td class="n">${l.params ? commas(l.params) : '--'}</td><td class="f">${l.formula ? esc(l.formula) : ''}</td></tr>`;
  });
  const input = Array.isArray(s.inputShape[0]) ? (s.inputShape as number[][]).map((x) => `[${x.join(', ')}]`).join(', ') : `[${(s.inputShape as number[]).join(', ')}]`;
  return (
    `<p class="lead">The layers of <code>${esc(s.model)}</code> with the shape each produces for one input of ${esc(input)} ` +
    `(from <code>summary(model, ${esc(input)})</code>). A convolution has (K<sub>h</sub>×K<sub>w</sub>)×(C<sub>in</sub>×C<sub>out</sub>) weights plus one bias per output channel; ` +
    `a feature map's side is O = ⌊(I − K + 2P)/S⌋ + 1.</p>` +
    `<div class="scroll"><table class="summary"><thead><tr><th scope="col">Layer</th><th scope="col">Type</th><th scope="col">Output shape</th><th scope="col">Params</th><th scope="col">How</th></tr></thead>` +
    `<tbody>${rows.join('')}<tr class="total"><td colspan="3">Total params</td><td class="n">${commas(s.totalParams)}</td><td class="f">${commas(s.trainableParams)} trainable · ${(s.paramsBytes / 1e6).toFixed(2)} MB</td></tr></tbody></table></div>` +
    (s.text ? `<details><summary>The same, as <code>summary().toString()</code> prints it</summary><pre>${esc(s.text)}</pre></details>` : '')
  );
}

const SETTINGS: [keyof ReportSettings, string, (v: never) => string][] = [
  ['model', 'Model', (v: string) => v],
  ['epochs', 'Epochs', (v: number) => commas(v)],
  ['batchSize', 'Batch size', (v: number) => commas(v)],
  ['lr', 'Learning rate', (v: number) => String(v)],
  ['optimizer', 'Optimizer', (v: string) => v],
  ['seed', 'Seed', (v: number | null) => (v === null ? 'unseeded' : String(v))],
  ['threads', 'Threads', (v: number) => String(v)],
  ['device', 'Device', (v: string) => v],
  ['trainSamples', 'Training images', (v: number) => commas(v)],
  ['testSamples', 'Test images', (v: number) => commas(v)],
  ['dataRoot', 'Data', (v: string) => v],
  ['resumedFrom', 'Resumed from', (v: string) => v],
  ['savedTo', 'Saved to', (v: string) => v],
  ['seconds', 'Elapsed time', (v: number) => duration(v)],
  ['libtorchVersion', 'libtorch', (v: string) => v],
  ['torchnodeVersion', 'torchnode', (v: string) => v],
  ['command', 'Command', (v: string) => v],
];

function settingsSection(settings: ReportSettings): string {
  const items = SETTINGS.filter(([k]) => settings[k] !== undefined).map(
    ([k, label, f]) => `<dt>${esc(label)}</dt><dd>${k === 'command' || k === 'dataRoot' || k === 'savedTo' || k === 'resumedFrom' ? `<code>${esc(f(settings[k] as never))}</code>` : esc(f(settings[k] as never))}</dd>`,
  );
  return `<dl class="settings">${items.join('')}</dl>`;
}

function card(k: string, v: string, d = ''): string {
  return `<div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div>${d ? `<div class="d">${esc(d)}</div>` : ''}</div>`;
}

// ---------------------------------------------------------------- the page

/**
 * The training report as one self-contained HTML document (a pure function of `data`):
 * loss per batch and per epoch, test accuracy per digit, the confusion matrix, the
 * misclassified digits, first-layer kernels, feature maps, the model summary and the
 * run's settings. Every interpolated value is HTML-escaped.
 * @example fs.writeFileSync('report.html', buildReport(collectReportData({ model, history, batchLosses, accuracy, testData })));
 */
export function buildReport(data: ReportData): string {
  checkReportData(data);
  const s = data.settings;
  const last = data.history[data.history.length - 1];
  const cm = data.confusion;
  const sections: { id: string; title: string; html: string }[] = [];

  const training: string[] = [];
  if (data.batchLosses.length) training.push(`<figure class="chart-box">${batchChart(data.batchLosses)}<figcaption>Every batch's loss; the dark line is a moving average. Dashed lines mark the start of each epoch.</figcaption></figure>`);
  if (data.history.length) training.push(`<figure class="chart-box">${epochChart(data)}<figcaption>The mean batch loss of each epoch, as printed in <code>[Epoch: N] cost = …</code>.</figcaption></figure>`);
  sections.push({
    id: 'training',
    title: 'Training',
    html: training.length
      ? `<p class="lead">How the cross-entropy loss fell while the optimizer updated the weights, batch by batch and epoch by epoch.</p><div class="grid2">${training.join('')}</div>`
      : '<p class="note">No training batches were recorded in this run.</p>',
  });
  if (cm) {
    sections.push({
      id: 'accuracy',
      title: 'Test accuracy',
      html:
        `<p class="lead">The trained model classified ${commas(cm.total)} test images it never saw in training: ${commas(cm.correct)} correctly ` +
        `(${percent(data.accuracy ?? cm.accuracy)}), ${commas(cm.total - cm.correct)} wrongly.</p>` +
        `<div class="grid2"><figure class="chart-box">${accuracyChart(data)}<figcaption>Bars: accuracy of each true digit; dashed line: overall accuracy.</figcaption></figure>` +
        `<div>${topConfusions(data)}</div></div>` +
        `<h3>Confusion matrix</h3><p class="lead">How often each true digit (row) was predicted as each digit (column). A perfect classifier fills only the diagonal.</p>${confusionTable(data)}`,
    });
    sections.push({ id: 'errors', title: 'Misclassified digits', html: misclassifiedGrid(data) });
  } else if (data.accuracy !== null) {
    sections.push({ id: 'accuracy', title: 'Test accuracy', html: `<p class="lead">Test accuracy: <b>${percent(data.accuracy)}</b>.</p>` });
  }
  if (data.kernels) sections.push({ id: 'kernels', title: 'First-layer kernels', html: kernelsSection(data) });
  if (data.featureMaps.length) sections.push({ id: 'maps', title: 'Feature maps', html: featureMapsSection(data) });
  if (data.summary) sections.push({ id: 'model', title: 'Model', html: summarySection(data) });
  sections.push({ id: 'settings', title: 'Settings', html: settingsSection(s) });

  const cards = [
    data.accuracy !== null ? card('Test accuracy', percent(data.accuracy), cm ? `${commas(cm.correct)} of ${commas(cm.total)} images` : '') : '',
    cm ? card('Misclassified', commas(cm.total - cm.correct), `${percent(1 - cm.correct / cm.total)} error rate`) : '',
    last ? card('Final cost', formatPy(last.cost, 4), `epoch ${last.epoch}`) : '',
    data.summary ? card('Parameters', commas(data.summary.totalParams), `${(data.summary.paramsBytes / 1e6).toFixed(2)} MB`) : '',
    s.seconds !== undefined ? card('Training time', duration(s.seconds), last ? `${commas(Math.round(last.samplesPerSec))} samples/s in the last epoch` : '') : '',
  ].join('');

  const subtitle = [
    s.model,
    s.epochs !== undefined ? plural(s.epochs, 'epoch') : data.history.length ? plural(data.history.length, 'epoch') : '',
    s.trainSamples !== undefined ? `${commas(s.trainSamples)} training images` : '',
    s.device,
    data.createdAt ? `generated ${data.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC')}` : '',
  ].filter(Boolean).join(' · ');

  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light">',
    `<meta name="generator" content="torchnode${s.torchnodeVersion ? ' ' + esc(s.torchnodeVersion) : ''}">`,
    `<title>${esc(data.title)}</title>`,
    '<link rel="icon" href="data:,">',
    `<style>${CSS}</style></head><body>`,
    `<header class="top"><div class="wrap"><h1>${esc(data.title)}</h1><p class="sub">${esc(subtitle)}</p>`,
    `<nav class="toc" aria-label="Sections">${sections.map((x) => `<a href="#${x.id}">${esc(x.title)}</a>`).join('')}</nav></div></header>`,
    '<main class="wrap">',
    cards ? `<div class="cards">${cards}</div>` : '',
    ...sections.map((x) => `<section class="panel" id="${x.id}" aria-labelledby="${x.id}-h"><h2 id="${x.id}-h">${esc(x.title)}</h2>${x.html}</section>`),
    '</main>',
    `<footer class="wrap">Made by torchnode${s.torchnodeVersion ? ' ' + esc(s.torchnodeVersion) : ''}${s.libtorchVersion ? ` on libtorch ${esc(s.libtorchVersion)}` : ''}. ` +
      'This file is self-contained: it loads nothing from the network.</footer>',
    '</body></html>',
    '',
  ].join('\n');
}
