#!/usr/bin/env node
'use strict';
/**
 * Resident memory of the example service (examples/service/) under the attacks of
 * issue 13: PNG bombs sent to POST /predict, and hundreds of event-stream clients
 * that go away. The service runs in a child process (so its RSS is its own); this
 * reads VmRSS and VmHWM from /proc/<pid>/status, and resets the peak before each
 * attack (echo 5 > /proc/<pid>/clear_refs) so each one's peak is its own.
 *
 *   node bench/service-rss.js            # figures as a table
 *   node bench/service-rss.js --json     # and as JSON on the last line
 *   node bench/service-rss.js --connections 600 --bombs 3
 *
 * dist/ must be built. Linux only (it reads /proc). test/service-memory.test.ts runs
 * the same attacks through the functions exported here.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const SERVER = path.join(__dirname, '..', 'examples', 'service', 'server.js');
const MiB = 1024 * 1024;

// ---- the service in a child process ---------------------------------------

/** Starts the service in a child process (`options`: createServer's, as JSON); resolves with {child, pid, port, stop()}. */
function startService({ dataDir, env = {}, execArgv = [], options = {} } = {}) {
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-rss-'));
  const code = `
    const { createServer } = require(${JSON.stringify(SERVER)});
    const s = createServer({ dataDir: ${JSON.stringify(dir)}, publicDir: null, ...${JSON.stringify(options)} });
    s.listen(0, '127.0.0.1').then((a) => process.stdout.write(JSON.stringify({ port: a.port }) + '\\n'));
    process.on('message', (m) => {
      if (m === 'close') s.close().then(() => process.exit(0));
      // Diagnostics: the JS side of the RSS, after a full GC and after releaseMemory() too.
      if (m === 'usage') process.send({ usage: process.memoryUsage() });
      if (m === 'gc') { global.gc?.(); process.send({ usage: process.memoryUsage() }); }
      if (m === 'trim') { require(${JSON.stringify(path.join(__dirname, '..', 'dist'))}).releaseMemory(); process.send({ usage: process.memoryUsage() }); }
    });
  `;
  const child = spawn(process.execPath, [...execArgv, '-e', code], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const { port } = JSON.parse(out.slice(0, nl));
      const stop = () =>
        new Promise((res) => {
          if (child.exitCode !== null || child.signalCode !== null) return res();
          const kill = setTimeout(() => child.kill('SIGKILL'), 15000);
          child.once('exit', () => {
            clearTimeout(kill);
            if (!dataDir) fs.rmSync(dir, { recursive: true, force: true });
            res();
          });
          child.send('close');
        });
      const ask = (m) => new Promise((res) => { child.once('message', (r) => res(r.usage)); child.send(m); });
      resolve({ child, pid: child.pid, port, stop, ask, stderr: () => stderr });
    });
    child.once('exit', (c, sig) => reject(new Error(`The service exited (${c ?? sig}) before listening: ${stderr}`)));
  });
}

/** {rss, hwm} in bytes from /proc/<pid>/status. */
function memoryOf(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets the process's peak RSS (VmHWM) to its current RSS; false where the kernel does not allow it. */
function resetPeak(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` and returns the peak RSS seen meanwhile: VmHWM after a reset, and also
 * a 10 ms sampler (the peak where clear_refs is refused).
 */
async function peakDuring(pid, fn) {
  const reset = resetPeak(pid);
  let sampled = memoryOf(pid).rss;
  const timer = setInterval(() => {
    try {
      sampled = Math.max(sampled, memoryOf(pid).rss);
    } catch {
      // the process went away; fn will say so
    }
  }, 10);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const m = memoryOf(pid);
  return Math.max(sampled, m.rss, reset ? m.hwm : 0);
}

/**
 * RSS once the service has had a moment: after `minMs` (longer than its idleReleaseMs,
 * 1000), sampled every 250 ms for up to `ms` more, the last value once two agree within 1 MiB.
 */
async function settledRss(pid, ms = 3000, minMs = 1500) {
  await new Promise((r) => setTimeout(r, minMs));
  let last = memoryOf(pid).rss;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    const now = memoryOf(pid).rss;
    if (Math.abs(now - last) < MiB) return now;
    last = now;
  }
  return last;
}

// ---- HTTP -------------------------------------------------------------------

function request(port, method, p, body) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const headers = { host: `127.0.0.1:${port}` };
  if (data !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // an event stream
        }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function waitFor(what, fn, timeoutMs = 120000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const jobEnded = (port, id) =>
  waitFor(`job ${id} to end`, async () => {
    const j = (await request(port, 'GET', `/jobs/${id}`)).body;
    return j.state === 'running' ? undefined : j;
  });

// ---- PNGs -------------------------------------------------------------------

function crc32(buf) {
  let crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    let c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const c = Buffer.alloc(4);
  c.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, c]);
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * A valid 8-bit grey PNG of zeros declaring width x height, whose image data
 * inflates to `rows` rows of `rowBytes` (filter byte included), built without
 * deflating it all (as test/hardening-data.test.ts does). 16000x16000: about
 * 250 KB that decodes to 256 MB of rows and a 1 GB RGBA buffer.
 */
function zeroPng(width, height, rows = height, rowBytes = width + 1) {
  const per = 250;
  const piece = zlib.deflateRawSync(Buffer.alloc(rowBytes * per), { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const parts = [Buffer.from([0x78, 0x9c])];
  for (let r = 0; r < rows; r += per) parts.push(piece);
  const n = rowBytes * Math.ceil(rows / per) * per;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0);
  parts.push(Buffer.from([0x03, 0x00]), adler);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * The largest image the service accepts: a 28x28 16-bit RGBA PNG (the most bytes
 * per pixel PNG has) of noise, stored uncompressed, padded with an ancillary
 * chunk so that its JSON body comes to just under the 1 MiB request limit.
 */
function largeAllowedPng(bodyLimit = MiB) {
  const rowBytes = 1 + 28 * 8;
  const raw = Buffer.alloc(28 * rowBytes);
  for (let i = 0; i < raw.length; i++) raw[i] = i % rowBytes === 0 ? 0 : (i * 2654435761) >>> 24;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(28, 0);
  ihdr.writeUInt32BE(28, 4);
  ihdr[8] = 16; // bit depth
  ihdr[9] = 6; // RGBA
  const head = Buffer.concat([SIGNATURE, chunk('IHDR', ihdr)]);
  const tail = Buffer.concat([chunk('IDAT', zlib.deflateSync(raw, { level: 0 })), chunk('IEND', Buffer.alloc(0))]);
  // base64 is 4/3 of the bytes; leave room for {"png":""} and the chunk's own 12 bytes.
  const pad = Math.floor(((bodyLimit - 64) * 3) / 4) - head.length - tail.length - 12;
  return Buffer.concat([head, chunk('zzZz', Buffer.alloc(pad, 0x41)), tail]);
}

// ---- the attacks ----------------------------------------------------------

/**
 * Warm-up: one small training job (by default with 1000 batch events, kept for
 * replay; `quick`: 500 images in batches of 64), then a few predictions. Resolves with the job id.
 */
async function warmUp(port, { quick = false } = {}) {
  const opts = quick ? { limit: 500 } : { limit: 1000, batchSize: 1 };
  const r = await request(port, 'POST', '/train', { ...opts, epochs: 1, testLimit: 100, threads: 1, seed: 0, save: 'warm' });
  if (r.status !== 202) throw new Error(`POST /train: ${r.status} ${JSON.stringify(r.body)}`);
  const job = await jobEnded(port, r.body.id);
  if (job.state !== 'succeeded') throw new Error(`The warm-up job ${job.state}: ${job.error}`);
  const pixels = Array.from({ length: 784 }, (_, i) => (i * 37) % 256);
  const { PNG } = require('pngjs');
  const small = PNG.sync.write(new PNG({ width: 28, height: 28 })).toString('base64');
  for (let i = 0; i < 3; i++) {
    for (const body of [{ pixels }, { png: small }, { pixels, features: true }]) {
      const p = await request(port, 'POST', '/predict', body);
      if (p.status !== 200) throw new Error(`POST /predict: ${p.status} ${JSON.stringify(p.body)}`);
    }
  }
  return r.body.id;
}

/** `count` PNG bombs (16000x16000 declared) to POST /predict, one after another; the replies' statuses. */
async function sendBombs(port, count = 3) {
  const png = zeroPng(16000, 16000).toString('base64');
  const statuses = [];
  for (let i = 0; i < count; i++) statuses.push((await request(port, 'POST', '/predict', { png })).status);
  return statuses;
}

/** `count` of the largest accepted PNG bodies to POST /predict, 4 at a time; the replies' statuses. */
async function sendLargeAllowed(port, count = 12) {
  const png = largeAllowedPng().toString('base64');
  const statuses = [];
  for (let i = 0; i < count; i += 4) {
    const wave = await Promise.all(Array.from({ length: Math.min(4, count - i) }, () => request(port, 'POST', '/predict', { png })));
    statuses.push(...wave.map((r) => r.status));
  }
  return statuses;
}

/**
 * `count` event-stream clients of job `id` that go away, `wave` at a time: a third
 * before any answer, a third at the first bytes of the replay (mid-stream), a third
 * at once when the headers arrive. Resolves when every one has closed.
 */
async function abortStreams(port, id, count = 600, wave = 50) {
  const one = (i) =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: `/jobs/${id}/events`, headers: { host: `127.0.0.1:${port}` }, agent: false }, (res) => {
        if (i % 3 === 1) res.once('data', () => res.destroy());
        else res.destroy();
        res.on('close', resolve);
      });
      req.on('error', resolve);
      req.on('close', resolve);
      if (i % 3 === 0) setImmediate(() => req.destroy());
    });
  for (let i = 0; i < count; i += wave) await Promise.all(Array.from({ length: Math.min(wave, count - i) }, (_, k) => one(i + k)));
}

/**
 * The whole measurement in one fresh service: baseline after the warm-up, then each
 * attack's peak and settled RSS. Returns {baseline, attacks: [{name, peak, after, ...}]}.
 */
async function measure({ bombs = 3, large = 12, connections = 600, env = {}, log = () => undefined } = {}) {
  const svc = await startService({ env });
  try {
    const { pid, port } = svc;
    const started = memoryOf(pid).rss;
    const warmJob = await warmUp(port);
    const baseline = await settledRss(pid);
    log(`started ${fmt(started)}, baseline after the warm-up ${fmt(baseline)}`);
    const attacks = [];
    const run = async (name, fn) => {
      let result;
      const peak = await peakDuring(pid, async () => {
        result = await fn();
      });
      const after = await settledRss(pid);
      const a = { name, peak, after, result };
      attacks.push(a);
      log(`${name}: peak ${fmt(peak)}, after ${fmt(after)} (${sign(after - baseline)} on the baseline)`);
      return a;
    };
    await run(`${bombs} PNG bombs (16000x16000 declared)`, () => sendBombs(port, bombs));
    await run(`${large} largest accepted PNGs (28x28 16-bit RGBA, ~1 MiB bodies)`, () => sendLargeAllowed(port, large));
    await run(`${connections} aborted event streams (finished job, 1000-event replay)`, async () => {
      await abortStreams(port, warmJob, connections);
      return (await request(port, 'GET', '/health')).body.streams;
    });
    await run(`${connections} aborted event streams (running job)`, async () => {
      const r = await request(port, 'POST', '/train', { limit: 6000, batchSize: 2, epochs: 1, testLimit: 100, threads: 1, seed: 1 });
      const id = r.body.id;
      await waitFor('batches', async () => ((await request(port, 'GET', `/jobs/${id}`)).body.lastBatch?.batch > 50 ? true : undefined));
      await abortStreams(port, id, connections);
      const streams = (await request(port, 'GET', '/health')).body.streams;
      await request(port, 'DELETE', `/jobs/${id}`);
      await jobEnded(port, id);
      return streams;
    });
    return { started, baseline, attacks };
  } finally {
    await svc.stop();
  }
}

const fmt = (b) => `${(b / MiB).toFixed(1)} MiB`;
const sign = (b) => `${b >= 0 ? '+' : '-'}${fmt(Math.abs(b))}`;

module.exports = { startService, memoryOf, resetPeak, peakDuring, settledRss, request, zeroPng, largeAllowedPng, warmUp, sendBombs, sendLargeAllowed, abortStreams, measure, MiB };

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    return i < 0 ? dflt : Number(args[i + 1]);
  };
  measure({ bombs: opt('bombs', 3), large: opt('large', 12), connections: opt('connections', 600), log: (l) => console.log(l) }).then(
    (m) => {
      console.log('\n| attack | baseline | peak | after | after - baseline |\n| --- | --- | --- | --- | --- |');
      for (const a of m.attacks) console.log(`| ${a.name} | ${fmt(m.baseline)} | ${fmt(a.peak)} | ${fmt(a.after)} | ${sign(a.after - m.baseline)} |`);
      if (args.includes('--json')) console.log(JSON.stringify(m));
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
