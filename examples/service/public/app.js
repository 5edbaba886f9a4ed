// The live page: trains through POST /train and watches GET /jobs/:id/events, draws
// a digit on a canvas and reads it with POST /predict {pixels, features: true}.
// Plain browser JavaScript, no dependencies, nothing loaded from elsewhere.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  // ---- small helpers -------------------------------------------------------

  /** fetch + JSON; resolves to {ok, status, body}; never throws for HTTP errors. */
  async function api(method, url, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, body: { error: { code: 'network', message: `The service did not answer (${e.message})` } } };
    }
    let json = null;
    try {
      json = await res.json();
    } catch {
      json = { error: { code: 'bad_response', message: `Unexpected answer (${res.status})` } };
    }
    return { ok: res.ok, status: res.status, body: json };
  }

  const errorText = (r) => (r.body && r.body.error ? r.body.error.message : `HTTP ${r.status}`);
  const fmt = (v, digits = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');
  const pct = (v, digits = 1) => `${(v * 100).toFixed(digits)} %`;

  function showError(el, message) {
    el.textContent = message || '';
    el.hidden = !message;
  }

  // ---- model status --------------------------------------------------------

  const model = { name: null, accuracy: null };

  function setModel(name, accuracy) {
    model.name = name;
    model.accuracy = accuracy ?? null;
    const status = $('model-status');
    if (name) {
      status.textContent = `Model: ${name}${model.accuracy !== null ? ` · ${pct(model.accuracy)} on the test images` : ''}`;
      status.dataset.state = 'ready';
    } else {
      status.textContent = 'No trained model yet';
      status.dataset.state = 'none';
    }
    $('no-model').hidden = Boolean(name);
  }

  // ---- the loss chart --------------------------------------------------------

  // Drawn in CSS pixels (the viewBox follows the element's width) so its text stays readable on a phone.
  const CHART = { w: 640, h: 240, left: 44, right: 12, top: 12, bottom: 28 };
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const chart = { points: [], totalBatches: 1, batchesPerEpoch: 1, epochs: 1, frame: 0 };

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** A round upper bound for the y axis and a tick step. */
  function niceMax(v) {
    if (!(v > 0)) return { max: 1, step: 0.25 };
    const steps = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 50];
    for (const step of steps) if (v / step <= 5) return { max: Math.ceil(v / step) * step, step };
    return { max: Math.ceil(v), step: Math.ceil(v / 5) };
  }

  function resetChart(epochs) {
    chart.points = [];
    chart.epochs = epochs;
    chart.batchesPerEpoch = 1;
    chart.totalBatches = 1;
    $('loss-line').setAttribute('points', '');
    $('loss-chart').dataset.points = '0';
    $('chart-empty').style.display = '';
    lastAxes = '';
    drawAxes(1, 1);
  }

  /** Grid lines and labels; with no points yet, only the base line (the empty-state text sits above it). */
  function drawAxes(yMax, step) {
    const { w, h, left, right, top, bottom } = CHART;
    const grid = $('chart-grid');
    grid.replaceChildren();
    const empty = chart.points.length === 0;
    for (let v = 0; v <= (empty ? 0 : yMax + 1e-9); v += step) {
      const y = top + (h - top - bottom) * (1 - v / yMax);
      grid.append(svgEl('line', { x1: left, x2: w - right, y1: y, y2: y, class: v === 0 ? 'axis' : '' }));
      grid.append(svgEl('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, step < 0.1 ? v.toFixed(2) : v.toFixed(step < 1 ? 1 : 0)));
    }
    grid.append(svgEl('text', { x: w - right, y: h - 8, 'text-anchor': 'end' }, `batch (${chart.totalBatches > 1 ? chart.totalBatches : '…'})`));
    const marks = $('chart-epochs');
    marks.replaceChildren();
    for (let e = 1; e < chart.epochs && chart.totalBatches > 1; e++) {
      const x = left + ((w - left - right) * e * chart.batchesPerEpoch) / chart.totalBatches;
      marks.append(svgEl('line', { x1: x, x2: x, y1: top, y2: h - bottom }));
      marks.append(svgEl('text', { x: x + 4, y: top + 10 }, `epoch ${e + 1}`));
    }
  }

  function sizeChart() {
    const svg = $('loss-chart');
    const w = Math.max(280, Math.round(svg.getBoundingClientRect().width) || 640);
    CHART.w = w;
    CHART.h = w < 480 ? 200 : 240;
    svg.setAttribute('viewBox', `0 0 ${CHART.w} ${CHART.h}`);
    const empty = $('chart-empty');
    empty.setAttribute('x', String((CHART.left + CHART.w - CHART.right) / 2));
    empty.setAttribute('y', String((CHART.top + CHART.h - CHART.bottom) / 2));
    lastAxes = '';
  }

  let lastAxes = '';
  function renderChart() {
    chart.frame = 0;
    const { w, h, left, right, top, bottom } = CHART;
    const pts = chart.points;
    const { max, step } = niceMax(Math.max(...pts.map((p) => p.y), 0.1) * 1.05);
    const key = `${max}/${step}/${chart.totalBatches}/${chart.epochs}/${w}`;
    if (key !== lastAxes) {
      drawAxes(max, step);
      lastAxes = key;
    }
    const sx = (w - left - right) / Math.max(1, chart.totalBatches);
    const sy = (h - top - bottom) / max;
    $('loss-line').setAttribute('points', pts.map((p) => `${(left + p.x * sx).toFixed(1)},${(h - bottom - p.y * sy).toFixed(1)}`).join(' '));
    $('loss-chart').dataset.points = String(pts.length);
    $('chart-empty').style.display = pts.length ? 'none' : '';
  }

  function addPoint(ev) {
    chart.batchesPerEpoch = ev.batches;
    chart.totalBatches = ev.batches * chart.epochs;
    chart.points.push({ x: (ev.epoch - 1) * ev.batches + ev.batch, y: ev.loss });
    if (!chart.frame) chart.frame = requestAnimationFrame(renderChart);
  }

  // ---- training jobs -------------------------------------------------------

  const job = { id: null, es: null, state: 'idle' };
  const form = $('train-form');

  function setJobState(state, text) {
    job.state = state;
    const badge = $('job-state');
    badge.textContent = state;
    badge.dataset.state = state;
    if (text !== undefined) $('train-status').textContent = text;
    const running = state === 'running' || state === 'starting' || state === 'cancelling';
    $('start').disabled = running;
    $('train-quick').disabled = running;
    $('cancel').disabled = !(state === 'running');
    for (const el of form.elements) if (el.tagName !== 'BUTTON') el.disabled = running;
  }

  function resetResults() {
    $('epoch-rows').replaceChildren(placeholderRow());
    $('accuracy').textContent = '–';
    $('accuracy').dataset.state = '';
  }

  function placeholderRow() {
    const tr = document.createElement('tr');
    tr.className = 'placeholder';
    const td = document.createElement('td');
    td.colSpan = 4;
    td.textContent = 'No epoch finished yet';
    tr.append(td);
    return tr;
  }

  function addEpochRow(ev) {
    const rows = $('epoch-rows');
    rows.querySelector('.placeholder')?.remove();
    const tr = document.createElement('tr');
    for (const text of [String(ev.epoch), fmt(ev.cost, 4), `${fmt(ev.seconds, 1)} s`, Math.round(ev.samplesPerSec).toLocaleString('en')]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    rows.append(tr);
  }

  /** The form as POST /train options: empty fields are left out (the service's defaults). */
  function formOptions() {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.value.trim() === '') continue;
      body[el.name] = el.type === 'number' ? Number(el.value) : el.value;
    }
    return body;
  }

  async function startTraining() {
    showError($('train-error'), '');
    const body = formOptions();
    setJobState('starting', 'Starting…');
    const r = await api('POST', '/train', body);
    if (!r.ok) {
      setJobState('idle', 'Not started.');
      showError($('train-error'), errorText(r));
      return;
    }
    watch(r.body.id, body.epochs ?? 3);
  }

  function watch(id, epochs) {
    if (job.es) job.es.close();
    job.id = id;
    resetChart(epochs);
    resetResults();
    setJobState('running', `${id}: waiting for the first batch…`);
    const es = new EventSource(`/jobs/${encodeURIComponent(id)}/events`);
    job.es = es;
    const data = (e) => JSON.parse(e.data);
    // After the last event the service ends the stream itself; closing it here as well
    // would abort a response that is already complete. So stop only the reconnect, when
    // the end arrives (or, should it not, a little later).
    let finished = false;
    const close = () => {
      es.close();
      if (job.es === es) job.es = null;
    };
    const end = () => {
      finished = true;
      setTimeout(close, 5000);
    };
    es.addEventListener('batch', (e) => {
      const ev = data(e);
      addPoint(ev);
      if (job.state === 'running') {
        $('train-status').textContent = `${id} · epoch ${ev.epoch}/${epochs} · batch ${ev.batch}/${ev.batches} · loss ${fmt(ev.loss)} · ${Math.round(ev.samplesPerSec).toLocaleString('en')} images/s`;
      }
    });
    es.addEventListener('epoch', (e) => addEpochRow(data(e)));
    es.addEventListener('done', (e) => {
      end();
      const ev = data(e);
      if (chart.frame) {
        cancelAnimationFrame(chart.frame);
        renderChart();
      }
      $('accuracy').textContent = ev.accuracy === null ? 'not evaluated' : pct(ev.accuracy, 2);
      $('accuracy').dataset.state = ev.accuracy === null ? 'none' : 'done';
      setJobState('succeeded', `${id} finished in ${fmt(ev.seconds, 1)} s.`);
      setModel(ev.model || id, ev.accuracy);
      if (pad.hasInk) readDrawing();
    });
    es.addEventListener('cancelled', () => {
      end();
      const last = chart.points.length ? `after ${chart.points.length} of ${chart.totalBatches} batches` : 'before its first batch';
      setJobState('cancelled', `${id} was cancelled ${last}.`);
    });
    // 'error' is both the service's event (with data) and EventSource's own connection error (without).
    es.addEventListener('error', (e) => {
      if (e instanceof MessageEvent && e.data) {
        end();
        setJobState('failed', `${id} failed.`);
        showError($('train-error'), data(e).message);
      } else if (finished) {
        close();
      } else if (es.readyState === EventSource.CLOSED) {
        close();
        setJobState('failed', `Lost the connection to ${id}.`);
      }
      // Otherwise the browser reconnects by itself and resumes from the last event id.
    });
  }

  async function cancelJob() {
    if (!job.id || job.state !== 'running') return;
    setJobState('cancelling', `Cancelling ${job.id}…`);
    const r = await api('DELETE', `/jobs/${encodeURIComponent(job.id)}`);
    if (!r.ok) {
      showError($('train-error'), errorText(r));
      if (job.state === 'cancelling') setJobState('running');
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    startTraining();
  });
  $('cancel').addEventListener('click', cancelJob);
  // The notice's button trains with the page's small defaults, whatever the form holds.
  $('train-quick').addEventListener('click', () => {
    form.reset();
    $('start').focus();
    startTraining();
  });

  // ---- the drawing pad -----------------------------------------------------

  const canvas = $('pad');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const pad = { drawing: false, last: null, hasInk: false, pointer: null };
  // A brush like MNIST's pen: a round white stroke about a tenth of a digit's height, with soft edges.
  const BRUSH = 20;

  function clearPad() {
    ctx.save();
    ctx.shadowBlur = 0;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.restore();
    pad.hasInk = false;
    const seen = $('seen').getContext('2d');
    seen.fillStyle = '#000';
    seen.fillRect(0, 0, 28, 28);
  }

  function padPoint(e) {
    const r = canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * canvas.width) / r.width, y: ((e.clientY - r.top) * canvas.height) / r.height };
  }

  function strokeTo(p) {
    ctx.beginPath();
    ctx.moveTo(pad.last.x, pad.last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    pad.last = p;
  }

  function setBrush() {
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineWidth = BRUSH;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.shadowColor = 'rgba(255,255,255,0.9)';
    ctx.shadowBlur = BRUSH / 3;
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || pad.drawing) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    pad.drawing = true;
    pad.pointer = e.pointerId;
    pad.last = padPoint(e);
    setBrush();
    ctx.beginPath();
    ctx.arc(pad.last.x, pad.last.y, BRUSH / 2, 0, 2 * Math.PI);
    ctx.fill();
    pad.hasInk = true;
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!pad.drawing || e.pointerId !== pad.pointer) return;
    const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    for (const c of events.length ? events : [e]) strokeTo(padPoint(c));
  });
  const endStroke = (e) => {
    if (!pad.drawing || e.pointerId !== pad.pointer) return;
    pad.drawing = false;
    pad.pointer = null;
    readDrawing();
  };
  canvas.addEventListener('pointerup', endStroke);
  canvas.addEventListener('pointercancel', endStroke);
  $('clear').addEventListener('click', () => {
    clearPad();
    clearPrediction();
  });
  $('predict').addEventListener('click', () => readDrawing());

  /**
   * The drawing as MNIST's 784 grey levels: the ink's bounding box scaled (by area
   * averaging) to fit 20x20, then placed in 28x28 so its centre of mass is the centre,
   * which is how MNIST's digits were prepared. Null when the pad is empty.
   */
  function mnistPixels() {
    const { width: W, height: H } = canvas;
    const img = ctx.getImageData(0, 0, W, H).data;
    const grey = new Float32Array(W * H);
    let x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (let i = 0; i < W * H; i++) {
      const v = img[4 * i];
      grey[i] = v;
      if (v > 16) {
        const x = i % W, y = (i / W) | 0;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    if (x1 < 0) return null;
    const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    const scale = 20 / Math.max(bw, bh);
    const tw = Math.max(1, Math.round(bw * scale)), th = Math.max(1, Math.round(bh * scale));
    const small = new Float32Array(tw * th);
    for (let ty = 0; ty < th; ty++) {
      const sy0 = y0 + Math.floor((ty * bh) / th), sy1 = Math.max(sy0 + 1, y0 + Math.floor(((ty + 1) * bh) / th));
      for (let tx = 0; tx < tw; tx++) {
        const sx0 = x0 + Math.floor((tx * bw) / tw), sx1 = Math.max(sx0 + 1, x0 + Math.floor(((tx + 1) * bw) / tw));
        let sum = 0;
        for (let y = sy0; y < sy1; y++) for (let x = sx0; x < sx1; x++) sum += grey[y * W + x];
        small[ty * tw + tx] = sum / ((sy1 - sy0) * (sx1 - sx0));
      }
    }
    let mass = 0, mx = 0, my = 0;
    for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) {
      const v = small[y * tw + x];
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    const ox = clamp(Math.round(14 - mx / mass), 0, 28 - tw);
    const oy = clamp(Math.round(14 - my / mass), 0, 28 - th);
    const out = new Array(784).fill(0);
    for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) out[(y + oy) * 28 + x + ox] = Math.min(255, Math.round(small[y * tw + x]));
    return out;
  }

  function showSeen(pixels) {
    const seen = $('seen').getContext('2d');
    const data = seen.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      data.data[4 * i] = data.data[4 * i + 1] = data.data[4 * i + 2] = pixels[i];
      data.data[4 * i + 3] = 255;
    }
    seen.putImageData(data, 0, 0);
  }

  // ---- predictions ---------------------------------------------------------

  let predictSeq = 0;

  function buildBars() {
    const list = $('bars');
    for (let d = 0; d < 10; d++) {
      const li = document.createElement('li');
      li.className = 'bar';
      li.dataset.digit = String(d);
      const label = document.createElement('span');
      label.className = 'bar-label';
      label.textContent = String(d);
      const track = document.createElement('span');
      track.className = 'bar-track';
      const fill = document.createElement('span');
      fill.className = 'bar-fill';
      track.append(fill);
      const value = document.createElement('span');
      value.className = 'bar-value';
      value.textContent = '–';
      li.append(label, track, value);
      list.append(li);
    }
  }

  function clearPrediction() {
    predictSeq++;
    $('pred-digit').textContent = '–';
    $('pred-digit').dataset.state = '';
    $('pred-conf').textContent = '';
    $('pred-live').textContent = '';
    showError($('pred-error'), '');
    for (const li of $('bars').children) {
      li.classList.remove('top');
      li.querySelector('.bar-fill').style.width = '0%';
      li.querySelector('.bar-value').textContent = '–';
    }
  }

  async function readDrawing() {
    const pixels = mnistPixels();
    if (!pixels) {
      clearPrediction();
      return;
    }
    showSeen(pixels);
    if (!model.name) {
      $('no-model').hidden = false;
      return;
    }
    const seq = ++predictSeq;
    const r = await api('POST', '/predict', { pixels, features: true });
    if (seq !== predictSeq) return; // a newer stroke (or Clear) came first
    if (!r.ok) {
      if (r.body && r.body.error && r.body.error.code === 'no_model') setModel(null);
      showError($('pred-error'), errorText(r));
      return;
    }
    showError($('pred-error'), '');
    showPrediction(r.body);
    showFeatureMaps(r.body.featureMaps || []);
  }

  function showPrediction(p) {
    const best = p.probabilities[p.class];
    $('pred-digit').textContent = String(p.class);
    $('pred-digit').dataset.state = 'done';
    $('pred-conf').textContent = `${pct(best)} sure`;
    $('pred-live').textContent = `The model reads ${p.class}, ${pct(best, 0)} sure.`;
    [...$('bars').children].forEach((li, d) => {
      const v = p.probabilities[d];
      li.classList.toggle('top', d === p.class);
      li.querySelector('.bar-fill').style.width = `${(v * 100).toFixed(2)}%`;
      li.querySelector('.bar-value').textContent = pct(v);
    });
  }

  // viridis at five stops, interpolated: dark = no response, yellow = strongest.
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const LUT = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (STOPS.length - 1);
    const k = Math.min(STOPS.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++) LUT[3 * i + c] = STOPS[k][c] + (STOPS[k + 1][c] - STOPS[k][c]) * f;
  }

  function showFeatureMaps(maps) {
    $('maps-empty').hidden = maps.length > 0;
    for (const m of maps) {
      const grid = $(`maps-${m.name}`);
      if (!grid) continue;
      const [c, h, w] = m.shape;
      $(`layer-${m.name}`).hidden = false;
      $(`maps-${m.name}-shape`).textContent = `· ${c} maps of ${h}×${w}`;
      grid.setAttribute('aria-label', `${c} feature maps of ${m.name}, ${h} by ${w} each`);
      while (grid.children.length > c) grid.lastChild.remove();
      while (grid.children.length < c) {
        const cv = document.createElement('canvas');
        cv.title = `${m.name} channel ${grid.children.length}`;
        grid.append(cv);
      }
      for (let k = 0; k < c; k++) {
        const cv = grid.children[k];
        if (cv.width !== w) cv.width = w;
        if (cv.height !== h) cv.height = h;
        const g = cv.getContext('2d');
        const img = g.createImageData(w, h);
        const off = k * h * w;
        let max = 0;
        for (let i = 0; i < h * w; i++) if (m.data[off + i] > max) max = m.data[off + i];
        for (let i = 0; i < h * w; i++) {
          const v = max > 0 ? Math.max(0, Math.round((m.data[off + i] / max) * 255)) : 0;
          img.data[4 * i] = LUT[3 * v];
          img.data[4 * i + 1] = LUT[3 * v + 1];
          img.data[4 * i + 2] = LUT[3 * v + 2];
          img.data[4 * i + 3] = 255;
        }
        g.putImageData(img, 0, 0);
      }
    }
  }

  // ---- start-up ------------------------------------------------------------

  async function init() {
    buildBars();
    clearPad();
    sizeChart();
    resetChart(Number($('f-epochs').value) || 1);
    let resizing = 0;
    window.addEventListener('resize', () => {
      cancelAnimationFrame(resizing);
      resizing = requestAnimationFrame(() => {
        sizeChart();
        if (chart.points.length) renderChart();
        else drawAxes(1, 1);
      });
    });
    setJobState('idle');
    const [models, jobs, health] = await Promise.all([api('GET', '/models'), api('GET', '/jobs'), api('GET', '/health')]);
    if (health.ok) $('version').textContent = `libtorch ${health.body.version}`;
    if (models.ok) setModel(models.body.default);
    else $('model-status').textContent = `Could not list models: ${errorText(models)}`;
    // A page opened while a job runs (another tab, a reload) follows that job.
    const runningJob = jobs.ok ? jobs.body.jobs.filter((j) => j.state === 'running').pop() : null;
    if (runningJob) {
      const detail = await api('GET', `/jobs/${encodeURIComponent(runningJob.id)}`);
      if (detail.ok && detail.body.state === 'running') watch(runningJob.id, detail.body.options.epochs ?? 3);
    }
    document.body.dataset.ready = 'true';
  }

  init();
})();
