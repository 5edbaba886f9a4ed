'use strict';
/**
 * A node:http service that trains the seed CNN on MNIST in worker threads and
 * serves predictions: POST /train, GET /jobs[/:id[/events]], DELETE /jobs/:id,
 * POST /predict, GET /models, GET /health. JSON in and out; errors are
 * `{error: {code, message}}` with a 4xx/5xx status. GET / serves a live page
 * (public/) that trains, draws and predicts with these endpoints. See README.md here.
 *
 * Run: `npm run serve` (PORT, HOST, DATA_DIR), or in your own code:
 * @example
 * const { createServer } = require('./server');
 * const service = createServer({ dataDir: '/srv/models' });
 * await service.listen(3000, '127.0.0.1');
 * // ... later
 * await service.close();
 */
const http = require('node:http');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');

// This example runs from the torchnode repository, so it requires the built package;
// in your own project write `const torch = require('torchnode');`.
const torch = require('../../dist');
// torch.save / torch.load (PyTorch's zip format). Until lib/index.ts re-exports the
// serialize module, take them from it directly.
const { save, load } = typeof torch.save === 'function' ? torch : require('../../dist/serialize');
// train()'s own option checks, run before a job is admitted (so a bad request is 400 even when the service is full).
const { resolveTrainOptions, resolveDevice } = require('../../dist/train');

/** The train() options a client may set; `save` is the service's own. */
const TRAIN_OPTIONS = ['epochs', 'batchSize', 'lr', 'optimizer', 'momentum', 'seed', 'limit', 'testLimit', 'threads', 'device', 'save'];
const PREDICT_KEYS = ['pixels', 'png', 'model', 'features'];
/** The options createServer() reads; any other key is a TypeError, as everywhere in torchnode. */
const SERVICE_OPTIONS = [
  'dataDir', 'maxRunningJobs', 'maxBatchEvents', 'allowedHosts', 'allowedOrigins', 'token', 'maxBodyBytes',
  'maxFinishedJobs', 'modelCacheSize', 'heartbeatMs', 'idleReleaseMs', 'log', 'publicDir',
];
/** The layers whose feature maps `features: true` returns (the seed CNN's convolution blocks). */
const FEATURE_LAYERS = ['layer1', 'layer2'];
/** Static files: only these extensions are served, with these types. */
const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};
/** The page loads nothing from other origins; this keeps it so. */
const PAGE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const MODEL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const TERMINAL = new Set(['done', 'error', 'cancelled']);
/** The most bytes of events an event stream writes before it checks the socket took them. */
const STREAM_CHUNK = 64 * 1024;
/** Methods that change state: these need a same-origin (or allowed) Origin. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Host names always accepted (loopback IP literals are accepted too). */
const LOOPBACK_NAMES = ['localhost'];

/** A comma-separated list from an environment variable, lower-cased, empty entries dropped. */
function envList(name) {
  return String(process.env[name] ?? '')
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter(Boolean);
}

/** A positive integer option, else its environment variable, else the default; anything else throws. */
function positiveInt(value, envName, dflt, what) {
  const env = process.env[envName];
  const v = value ?? (env !== undefined && env !== '' ? Number(env) : dflt);
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new TypeError(`Expected a positive integer for ${what}${value === undefined ? ` (${envName})` : ''} but received ${JSON.stringify(value ?? env)}`);
  }
  return v;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses. */
function isLoopbackAddress(addr) {
  const a = String(addr).replace(/^\[|\]$/g, '').toLowerCase();
  if (net.isIPv4(a)) return a.startsWith('127.');
  if (a === '::1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return !!mapped && mapped[1].startsWith('127.');
}

/** `host` (a Host header or an origin's host) as {hostname, port}, or null when malformed. */
function parseHost(host, defaultPort) {
  if (typeof host !== 'string' || host === '' || /[\s/\\@?#]/.test(host)) return null;
  let u;
  try {
    u = new URL(`http://${host}`);
  } catch {
    return null;
  }
  const hostname = u.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  return { hostname, port: u.port === '' ? defaultPort : Number(u.port) };
}

/** Compares two strings in constant time (for tokens). */
function sameSecret(a, b) {
  const ha = crypto.createHash('sha256').update(String(a)).digest();
  const hb = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb);
}

class HttpError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {Record<string, string>} [headers]
   */
  constructor(status, code, message, headers) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** A short description of a client's value for error messages. */
function describe(v) {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 60)}...` : s;
}

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(res, err) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers = { ...(err.headers || {}) };
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, headers);
}

/**
 * Reads a JSON object body of at most `limit` bytes. An empty body is `{}`; a
 * non-empty one must be `application/json`. Over the limit: 413 and the connection
 * closes, so the rest is not read.
 */
function readJson(req, limit) {
  const tooLarge = () =>
    new HttpError(413, 'payload_too_large', `Request bodies are limited to ${limit} bytes`, { connection: 'close' });
  const declared = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (declared === undefined || Number(declared) === 0)) return Promise.resolve({});
  const type = String(req.headers['content-type'] || '');
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    return Promise.reject(
      new HttpError(415, 'unsupported_media_type', `Expected Content-Type application/json but received ${describe(type || 'none')}`, {
        connection: 'close',
      }),
    );
  }
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let done = false;
    const finish = (fn) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      fn();
    };
    const onData = (chunk) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        req.pause();
        finish(() => reject(tooLarge()));
      } else chunks.push(chunk);
    };
    const onEnd = () =>
      finish(() => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() === '') return resolve({});
        let value;
        try {
          value = JSON.parse(text);
        } catch (e) {
          return reject(new HttpError(400, 'invalid_json', `The body is not valid JSON: ${e.message}`));
        }
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          return reject(new HttpError(400, 'invalid_json', `Expected a JSON object for the body but received ${describe(value)}`));
        }
        resolve(value);
      });
    const onError = (e) => finish(() => reject(e));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * The 784 grey levels of a /predict input scaled to 0..1 the way predict() reads
 * them (0..255 unless every value is at most 1; a PNG is always 0..255). Called after
 * predict() has accepted the input, so it needs no checks of its own.
 */
function pixelsIn01(input) {
  if (Buffer.isBuffer(input)) return Float32Array.from(torch.decodePng(input), (v) => v / 255);
  const flat = Float32Array.from(input.length === 28 && Array.isArray(input[0]) ? input.flat() : input);
  let max = 0;
  for (const v of flat) if (v > max) max = v;
  if (max > 1) for (let i = 0; i < flat.length; i++) flat[i] /= 255;
  return flat;
}

/** Float32 activations as JSON numbers, rounded to 4 decimals (a third of the bytes; plenty for drawing). */
function roundedArray(data) {
  const out = new Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.round(data[i] * 1e4) / 1e4;
  return out;
}

function disposeTensors(value) {
  const values = value instanceof Map ? [...value.values()] : value && typeof value === 'object' ? Object.values(value) : [];
  for (const v of values) if (v instanceof torch.Tensor) v.dispose();
}

/**
 * Creates the service (not yet listening).
 * @param {object} [options]
 * @param {string} [options.dataDir] where models are saved as `<name>.pt` (created if missing; default examples/service/data)
 * @param {number} [options.maxRunningJobs] concurrent training jobs; more get 429 (default TORCHNODE_MAX_JOBS, else 2)
 * @param {number} [options.maxBatchEvents] batch events each job keeps for SSE replay, besides every epoch event (default 1000)
 * @param {string[]} [options.allowedHosts] Host names (or name:port) accepted besides localhost and loopback IPs; '*' accepts any (also TORCHNODE_ALLOWED_HOSTS, comma-separated)
 * @param {string[]} [options.allowedOrigins] origins (scheme://host[:port]) that may POST/DELETE besides the service's own (also TORCHNODE_ALLOWED_ORIGINS)
 * @param {string | false} [options.token] the access token (default TORCHNODE_TOKEN; else one is generated, required only off loopback); false: no token even off loopback
 * @param {number} [options.maxBodyBytes] request body limit (default 1 MiB)
 * @param {number} [options.maxFinishedJobs] finished jobs kept for GET /jobs (default 100)
 * @param {number} [options.modelCacheSize] loaded models kept in memory (default 8)
 * @param {number} [options.heartbeatMs] SSE comment interval that keeps proxies from timing out (default 15000)
 * @param {number} [options.idleReleaseMs] when no request has been open this long and no job runs, give freed memory back to the system (torch.releaseMemory; default 1000; 0: never)
 * @param {(line: string) => void} [options.log] one line per job start and end (default: silent)
 * @param {string | null} [options.publicDir] static files served at GET / and GET /<file> (default: public/ here; null: none)
 * @returns {{ server: http.Server, listen(port?: number, host?: string): Promise<{port: number, host: string, url: string}>, close(): Promise<void> }}
 */
function createServer(options = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw Object.assign(new TypeError(`createServer: expected an options object but received ${JSON.stringify(options)}`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  for (const key of Object.keys(options)) {
    if (!SERVICE_OPTIONS.includes(key)) {
      throw Object.assign(new TypeError(`createServer: unknown option '${key}' (it takes ${SERVICE_OPTIONS.join(', ')})`), { code: 'ERR_INVALID_ARG_TYPE' });
    }
  }
  const dataDir = path.resolve(options.dataDir ?? path.join(__dirname, 'data'));
  const maxRunningJobs = positiveInt(options.maxRunningJobs, 'TORCHNODE_MAX_JOBS', 2, 'maxRunningJobs');
  const maxBatchEvents = options.maxBatchEvents ?? 1000;
  if (!Number.isSafeInteger(maxBatchEvents) || maxBatchEvents < 0) {
    throw new TypeError(`Expected a non-negative integer for maxBatchEvents but received ${JSON.stringify(maxBatchEvents)}`);
  }
  if (options.allowedHosts !== undefined && !Array.isArray(options.allowedHosts)) throw new TypeError('Expected an array of host names for allowedHosts');
  if (options.allowedOrigins !== undefined && !Array.isArray(options.allowedOrigins)) throw new TypeError('Expected an array of origins for allowedOrigins');
  /** Host names, and name:port pairs, accepted in the Host header ('*': any). */
  const allowedHosts = new Set(LOOPBACK_NAMES);
  for (const entry of [...(options.allowedHosts ?? []), ...envList('TORCHNODE_ALLOWED_HOSTS')]) {
    const e = String(entry).trim().toLowerCase();
    const h = e === '*' ? null : parseHost(e, null);
    if (e !== '*' && !h) throw new TypeError(`Expected a host name or name:port in allowedHosts but received ${JSON.stringify(entry)}`);
    allowedHosts.add(h ? (h.port === null ? h.hostname : `${h.hostname}:${h.port}`) : '*');
  }
  /** Origins, besides the service's own, that may send POST and DELETE ('*': any). */
  const allowedOrigins = new Set(
    [...(options.allowedOrigins ?? []), ...envList('TORCHNODE_ALLOWED_ORIGINS')].map((o) => String(o).trim().toLowerCase().replace(/\/+$/, '')),
  );
  const givenToken = options.token !== undefined ? options.token : process.env.TORCHNODE_TOKEN || undefined;
  if (givenToken !== undefined && givenToken !== false && (typeof givenToken !== 'string' || givenToken.length < 8)) {
    throw new TypeError('Expected a string of at least 8 characters (or false) for token');
  }
  /** An explicit token is always required; a generated one only when listening off loopback. */
  const token = givenToken === false ? null : givenToken ?? crypto.randomBytes(24).toString('hex');
  let tokenRequired = typeof givenToken === 'string';
  let listensOnLoopback = true;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const maxFinishedJobs = options.maxFinishedJobs ?? 100;
  const modelCacheSize = options.modelCacheSize ?? 8;
  const heartbeatMs = options.heartbeatMs ?? 15000;
  const idleReleaseMs = options.idleReleaseMs ?? 1000;
  if (!Number.isSafeInteger(idleReleaseMs) || idleReleaseMs < 0) {
    throw new TypeError(`Expected a non-negative integer (milliseconds; 0: never) for idleReleaseMs but received ${JSON.stringify(idleReleaseMs)}`);
  }
  const log = options.log ?? (() => undefined);
  const publicDir = options.publicDir === null ? null : path.resolve(options.publicDir ?? path.join(__dirname, 'public'));
  fs.mkdirSync(dataDir, { recursive: true });
  const startedAt = Date.now();

  /** @type {Map<string, any>} id -> job record, oldest first */
  const jobs = new Map();
  /** @type {Map<string, {model: any, mtimeMs: number, size: number}>} name -> loaded model, least recently used first */
  const models = new Map();
  /** Open SSE responses, each with its cleanup. */
  const streams = new Map();
  /** The most recent successful job's model: the default for /predict. */
  let latest = null;
  let closing = null;

  const running = () => [...jobs.values()].filter((r) => r.state === 'running');

  // ---- models -------------------------------------------------------------

  function modelFile(name, what = 'model') {
    if (typeof name !== 'string' || !MODEL_NAME.test(name)) {
      throw new HttpError(400, 'invalid_model_name', `Expected a model name of 1-64 letters, digits, '_' or '-' for ${what} but received ${describe(name)}`);
    }
    const file = path.resolve(dataDir, `${name}.pt`);
    // The pattern already rules out separators; this keeps it true if the pattern changes.
    if (path.dirname(file) !== dataDir) throw new HttpError(400, 'invalid_model_name', `Model ${describe(name)} is outside DATA_DIR`);
    return file;
  }

  function remember(name, model, file) {
    const st = fs.statSync(file);
    models.delete(name);
    models.set(name, { model, mtimeMs: st.mtimeMs, size: st.size });
    while (models.size > modelCacheSize) models.delete(models.keys().next().value);
  }

  function loadModel(name) {
    const file = modelFile(name);
    let st;
    try {
      st = fs.statSync(file);
    } catch {
      st = null;
    }
    if (!st || !st.isFile()) throw new HttpError(404, 'model_not_found', `No model named '${name}' in DATA_DIR`);
    // A symlink inside DATA_DIR must not lead outside it.
    const real = fs.realpathSync(file);
    if (path.dirname(real) !== fs.realpathSync(dataDir)) throw new HttpError(400, 'invalid_model_name', `Model '${name}' resolves outside DATA_DIR`);
    const cached = models.get(name);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) {
      models.delete(name);
      models.set(name, cached);
      return cached.model;
    }
    let stateDict;
    const model = new torch.nn.CNN();
    try {
      stateDict = load(real);
      model.loadStateDict(stateDict);
    } catch (e) {
      throw new HttpError(422, 'model_unreadable', `Model '${name}' could not be loaded: ${e.message}`);
    } finally {
      disposeTensors(stateDict);
    }
    model.eval();
    models.delete(name);
    models.set(name, { model, mtimeMs: st.mtimeMs, size: st.size });
    while (models.size > modelCacheSize) models.delete(models.keys().next().value);
    return model;
  }

  function resolveModel(name) {
    if (name !== undefined) return { model: loadModel(name), name };
    if (latest) return latest;
    if (fs.existsSync(path.join(dataDir, 'default.pt'))) return { model: loadModel('default'), name: 'default' };
    throw new HttpError(409, 'no_model', 'No trained model yet: POST /train first, or pass model: NAME, or put default.pt in DATA_DIR');
  }

  // ---- jobs ---------------------------------------------------------------

  function links(id) {
    return { self: `/jobs/${id}`, events: `/jobs/${id}/events`, cancel: `/jobs/${id}` };
  }

  function jobJson(r) {
    return {
      id: r.id,
      state: r.state,
      options: r.options,
      model: r.model,
      history: r.history,
      lastBatch: r.lastBatch,
      accuracy: r.accuracy,
      seconds: r.seconds,
      error: r.error,
      cancelRequested: r.cancelRequested,
      watchers: r.subscribers.size,
      createdAt: new Date(r.createdAt).toISOString(),
      finishedAt: r.finishedAt === null ? null : new Date(r.finishedAt).toISOString(),
      links: links(r.id),
    };
  }

  /**
   * Records an event for replay and sends it to the job's streams. Replay keeps every
   * epoch and final event but only the latest `maxBatchEvents` batch events: a long job
   * holds a bounded window, and a new client does not replay every batch.
   */
  function publish(r, type, data) {
    const ev = { id: ++r.lastEventId, type, data };
    // Serialized once here, not once per client: 600 clients replaying 1000 events
    // otherwise make 600,000 strings (and heap that stays grown after they go).
    Object.defineProperty(ev, 'text', { value: `id: ${ev.id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n` });
    r.events.push(ev);
    if (type === 'batch' && ++r.batchEvents > maxBatchEvents) {
      // The oldest batch event follows at most the epoch events before it.
      r.events.splice(r.events.findIndex((e) => e.type === 'batch'), 1);
      r.batchEvents--;
      r.droppedBatchEvents++;
    }
    for (const sub of [...r.subscribers]) sub(ev);
  }

  function finish(r, state, type, data) {
    r.state = state;
    r.finishedAt = Date.now();
    publish(r, type, data);
    log(`${r.id} ${state}${r.error ? `: ${r.error}` : ''}`);
    // Keep the newest finished jobs only.
    const finished = [...jobs.values()].filter((j) => j.state !== 'running');
    for (let i = 0; i < finished.length - maxFinishedJobs; i++) jobs.delete(finished[i].id);
  }

  async function startJob(body) {
    const unknown = Object.keys(body).filter((k) => !TRAIN_OPTIONS.includes(k));
    if (unknown.length) {
      throw new HttpError(400, 'unknown_option', `Unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; known options: ${TRAIN_OPTIONS.join(', ')}`);
    }
    for (const [k, v] of Object.entries(body)) {
      // train() reads null as "use the default" for some options; a client sending null meant something else.
      if (v === null) throw new HttpError(400, 'invalid_option', `Expected a value for ${k} but received null (omit it for the default)`);
    }
    const { save: name, ...trainOptions } = body;
    const file = name === undefined ? null : modelFile(name, 'save');
    // torchnode's own checks, before the job limit: a bad request is 400 even while the service is full.
    try {
      const checked = resolveTrainOptions(trainOptions);
      resolveDevice(checked.dev);
    } catch (e) {
      throw new HttpError(400, 'invalid_option', e && e.message ? e.message : String(e));
    }
    if (name !== undefined && running().some((r) => r.model === name)) {
      throw new HttpError(409, 'model_busy', `A running job is already training model '${name}'`);
    }
    if (running().length >= maxRunningJobs) {
      throw new HttpError(429, 'too_many_jobs', `${maxRunningJobs} training jobs are running; try again when one ends`, { 'retry-after': '5' });
    }
    const job = torch.startTraining({ ...trainOptions, keepBatchEvents: maxBatchEvents });
    const r = {
      id: job.id,
      job,
      state: 'running',
      options: body,
      model: name ?? null,
      history: [],
      lastBatch: null,
      accuracy: null,
      seconds: null,
      error: null,
      cancelRequested: false,
      createdAt: Date.now(),
      finishedAt: null,
      events: [],
      lastEventId: 0,
      batchEvents: 0,
      droppedBatchEvents: 0,
      subscribers: new Set(),
    };
    // Registered now so the running-job limit holds while we wait below.
    jobs.set(r.id, r);
    job.on('progress', (ev) => {
      const { type, ...data } = ev;
      if (type === 'batch') r.lastBatch = data;
      else r.history.push(data);
      publish(r, type, data);
    });
    // torchnode checks the options before it starts a thread; a job that failed by the
    // next turn of the event loop was refused, so the client's request was bad.
    await new Promise((resolve) => setImmediate(resolve));
    if (job.state === 'failed') {
      jobs.delete(r.id);
      const err = await job.result.then(() => null, (e) => e);
      throw new HttpError(400, 'invalid_option', err ? err.message : 'The options were refused');
    }
    job.result.then(
      (result) => {
        try {
          if (file) {
            save(result.model.stateDict(), file);
            remember(name, result.model, file);
          }
        } catch (e) {
          r.error = `Saving ${name}.pt failed: ${e.message}`;
          finish(r, 'failed', 'error', { message: r.error });
          return;
        }
        r.history = result.history;
        r.accuracy = result.accuracy;
        r.seconds = result.seconds;
        latest = { model: result.model, name: name ?? r.id };
        finish(r, 'succeeded', 'done', { state: 'succeeded', accuracy: r.accuracy, seconds: r.seconds, history: r.history, model: r.model });
      },
      (e) => {
        r.error = e && e.message ? e.message : String(e);
        if (job.state === 'cancelled') finish(r, 'cancelled', 'cancelled', { state: 'cancelled', message: r.error });
        else finish(r, 'failed', 'error', { state: 'failed', message: r.error });
      },
    );
    log(`${r.id} started ${JSON.stringify(body)}`);
    return r;
  }

  function findJob(id) {
    const r = jobs.get(id);
    if (!r) throw new HttpError(404, 'job_not_found', `No job with id ${describe(id)}`);
    return r;
  }

  /** The index of the first of r.events with an id above `id` (ids only grow). */
  function firstAfter(r, id) {
    let lo = 0;
    let hi = r.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r.events[mid].id > id) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * An event stream. Events go out from the job's log (r.events) in chunks of at most
   * STREAM_CHUNK bytes, and only while the socket takes them: when res.write() says
   * the buffer is full, nothing more is written until 'drain', and then the stream
   * resumes from the log where it stopped. So a client holds at most about one chunk
   * in the service's memory, however many events it is behind: before, the whole
   * replay was queued at once, for clients that had already gone as well (600 aborted
   * streams left the service 50-100 MB larger). A client that falls behind the log's
   * window skips the batch events dropped meanwhile, as a late client does.
   */
  function streamEvents(req, res, r) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    /** The id of the last event written. */
    let sent = Number(req.headers['last-event-id']) || 0;
    let waiting = false;
    let closed = false;
    let heartbeat = null;
    const cleanup = () => {
      closed = true;
      r.subscribers.delete(pump);
      streams.delete(res);
      res.off('drain', onDrain);
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
    };
    const gone = () => closed || res.writableEnded || res.destroyed;
    function onDrain() {
      waiting = false;
      pump();
    }
    /** Writes text; false (and waits for 'drain') when the socket's buffer is full. */
    function send(text) {
      if (res.write(text)) return true;
      waiting = true;
      res.once('drain', onDrain);
      return false;
    }
    function pump() {
      if (waiting) return;
      while (!gone()) {
        let i = firstAfter(r, sent);
        if (i === r.events.length) {
          if (r.state !== 'running' && r.events.some((ev) => TERMINAL.has(ev.type))) {
            cleanup();
            res.end();
          }
          return;
        }
        let text = '';
        for (; i < r.events.length && text.length < STREAM_CHUNK; i++) {
          text += r.events[i].text;
          sent = r.events[i].id;
        }
        if (!send(text)) return;
      }
    }
    streams.set(res, cleanup);
    res.on('close', cleanup);
    // Batch events older than the window are gone; say so (a comment) rather than pretend.
    if (r.droppedBatchEvents > 0) {
      send(`: ${r.droppedBatchEvents} older batch events are not kept; epochs and the last ${maxBatchEvents} batches follow\n\n`);
    }
    pump();
    if (gone()) return;
    r.subscribers.add(pump);
    heartbeat = setInterval(() => {
      if (!waiting && !gone()) send(': keep-alive\n\n');
    }, heartbeatMs);
    heartbeat.unref();
  }

  // ---- handlers -----------------------------------------------------------

  const handlers = {
    health(req, res) {
      sendJson(res, 200, {
        status: 'ok',
        version: torch.version,
        jobs: { running: running().length, total: jobs.size },
        streams: streams.size,
        uptime: (Date.now() - startedAt) / 1000,
      });
    },
    async train(req, res) {
      const body = await readJson(req, maxBodyBytes);
      const r = await startJob(body);
      sendJson(res, 202, { id: r.id, state: r.state, links: links(r.id) }, { location: `/jobs/${r.id}` });
    },
    listJobs(req, res) {
      const list = [...jobs.values()].map((r) => ({
        id: r.id,
        state: r.state,
        model: r.model,
        epochs: r.history.length,
        accuracy: r.accuracy,
        createdAt: new Date(r.createdAt).toISOString(),
        finishedAt: r.finishedAt === null ? null : new Date(r.finishedAt).toISOString(),
        links: links(r.id),
      }));
      sendJson(res, 200, { jobs: list });
    },
    getJob(req, res, id) {
      sendJson(res, 200, jobJson(findJob(id)));
    },
    cancelJob(req, res, id) {
      const r = findJob(id);
      if (r.state !== 'running' || r.job.state !== 'running') {
        throw new HttpError(409, 'job_finished', `Job ${id} has already finished (${r.state === 'running' ? r.job.state : r.state})`);
      }
      r.cancelRequested = true;
      r.job.cancel(`Job ${id} was cancelled by DELETE /jobs/${id}`);
      sendJson(res, 202, jobJson(r));
    },
    events(req, res, id) {
      streamEvents(req, res, findJob(id));
    },
    async predict(req, res) {
      const body = await readJson(req, maxBodyBytes);
      const unknown = Object.keys(body).filter((k) => !PREDICT_KEYS.includes(k));
      if (unknown.length) {
        throw new HttpError(400, 'unknown_option', `Unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; known fields: ${PREDICT_KEYS.join(', ')}`);
      }
      const { pixels, png, features } = body;
      if (features !== undefined && typeof features !== 'boolean') {
        throw new HttpError(400, 'invalid_input', `Expected true or false for features but received ${describe(features)}`);
      }
      let input;
      if (pixels !== undefined && png !== undefined) throw new HttpError(400, 'invalid_input', 'Send either pixels or png, not both');
      if (pixels !== undefined) {
        if (!Array.isArray(pixels)) {
          throw new HttpError(400, 'invalid_input', `Expected an array of 784 numbers (0..255 or 0..1) for pixels but received ${describe(pixels)}`);
        }
        // A flat [784] array, or 28 rows of 28; nothing that predict() would read as a batch.
        if (pixels.some(Array.isArray) && !(pixels.length === 28 && pixels.every(Array.isArray))) {
          throw new HttpError(400, 'invalid_input', 'Expected 784 numbers, or 28 rows of 28, for pixels');
        }
        input = pixels;
      } else if (png !== undefined) {
        if (typeof png !== 'string') throw new HttpError(400, 'invalid_input', `Expected a base64 PNG string for png but received ${describe(png)}`);
        input = Buffer.from(png, 'base64');
        if (input.length <= PNG_MAGIC.length || !input.subarray(0, PNG_MAGIC.length).equals(PNG_MAGIC)) {
          throw new HttpError(400, 'invalid_input', 'Expected a base64 PNG for png but its bytes do not start with the PNG signature');
        }
      } else {
        throw new HttpError(400, 'invalid_input', 'Send pixels (784 numbers, 0..255 or 0..1) or png (a base64 28x28 PNG)');
      }
      const { model, name } = resolveModel(body.model);
      let p;
      try {
        p = torch.predict(model, input);
      } catch (e) {
        if (e instanceof TypeError || e instanceof RangeError) throw new HttpError(400, 'invalid_input', e.message);
        throw e;
      }
      const answer = { class: p.class, probabilities: p.probabilities, model: name };
      if (features) {
        // predict() moved its input to the model's device itself; featureMaps() needs it there.
        const device = model.parameters()[0]?.device ?? 'cpu';
        const maps = torch.tidy(() => {
          let x = torch.fromBuffer(pixelsIn01(input), [1, 1, 28, 28]);
          if (String(device) !== 'cpu') x = x.to(device);
          return torch.featureMaps(model, x, FEATURE_LAYERS);
        });
        answer.featureMaps = maps.map((m) => ({ name: m.name, shape: m.shape, data: roundedArray(m.data) }));
      }
      sendJson(res, 200, answer);
    },
    listModels(req, res) {
      const list = fs
        .readdirSync(dataDir, { withFileTypes: true })
        .filter((d) => d.isFile() && d.name.endsWith('.pt') && MODEL_NAME.test(d.name.slice(0, -3)))
        .map((d) => {
          const st = fs.statSync(path.join(dataDir, d.name));
          return { name: d.name.slice(0, -3), bytes: st.size, modified: st.mtime.toISOString() };
        });
      sendJson(res, 200, { models: list, default: latest ? latest.name : list.some((m) => m.name === 'default') ? 'default' : null });
    },
  };

  /**
   * GET / and GET /<file> from publicDir. Only regular files with a known extension,
   * inside publicDir after symlinks are followed, and no dot-files; anything else is
   * the usual 404, so the answer never tells what exists outside the folder.
   */
  function serveStatic(req, res, pathname) {
    const notFound = () => new HttpError(404, 'not_found', `No route ${req.method} ${pathname}`);
    const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
    const segments = rel.split(/[\\/]/);
    if (rel.includes('\0') || segments.some((seg) => seg === '' || seg.startsWith('.'))) throw notFound();
    const type = CONTENT_TYPES[path.extname(rel).toLowerCase()];
    if (!type) throw notFound();
    const file = path.resolve(publicDir, rel);
    if (!file.startsWith(publicDir + path.sep)) throw notFound();
    let real;
    let st;
    try {
      real = fs.realpathSync(file);
      st = fs.statSync(real);
    } catch {
      throw notFound();
    }
    if (!st.isFile() || !real.startsWith(fs.realpathSync(publicDir) + path.sep)) throw notFound();
    const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers = {
      'content-type': type,
      // Revalidate every time (cheap with the ETag) so an edited page shows at once.
      'cache-control': 'no-cache',
      etag,
      'last-modified': st.mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (type.startsWith('text/html')) headers['content-security-policy'] = PAGE_CSP;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const data = fs.readFileSync(real);
    res.writeHead(200, { ...headers, 'content-length': data.length });
    res.end(req.method === 'HEAD' ? undefined : data);
  }

  const routes = [
    { pattern: /^\/health$/, methods: { GET: handlers.health } },
    { pattern: /^\/train$/, methods: { POST: handlers.train } },
    { pattern: /^\/jobs$/, methods: { GET: handlers.listJobs } },
    { pattern: /^\/jobs\/([^/]+)$/, methods: { GET: handlers.getJob, DELETE: handlers.cancelJob } },
    { pattern: /^\/jobs\/([^/]+)\/events$/, methods: { GET: handlers.events } },
    { pattern: /^\/predict$/, methods: { POST: handlers.predict } },
    { pattern: /^\/models$/, methods: { GET: handlers.listModels } },
  ];

  // ---- access: Host allowlist, same-origin state changes, token -----------

  const boundPort = () => {
    const a = server.address();
    return a && typeof a === 'object' ? a.port : 0;
  };
  const cookieName = () => `torchnode-token-${boundPort()}`;

  /** DNS rebinding: a page on evil.example that resolves to 127.0.0.1 still sends `Host: evil.example`. */
  function hostAllowed(host) {
    if (allowedHosts.has('*') || allowedHosts.has(host.hostname) || allowedHosts.has(`${host.hostname}:${host.port}`)) return true;
    // An IP literal cannot be rebound (a rebinding attack needs a name it controls):
    // loopback ones always pass, others when the service listens off loopback.
    if (net.isIP(host.hostname)) return isLoopbackAddress(host.hostname) || !listensOnLoopback;
    return false;
  }

  /**
   * CSRF: a state-changing request must come from the service's own origin (same host
   * and port as the Host header), an allowed origin, or no browser page at all (no
   * Origin, and no Sec-Fetch-Site other than same-origin).
   */
  function checkOrigin(req) {
    const origin = req.headers.origin;
    if (origin === undefined) {
      const site = req.headers['sec-fetch-site'];
      if (site === undefined || site === 'same-origin' || site === 'none') return;
      throw new HttpError(403, 'cross_origin', `${req.method} from another site (Sec-Fetch-Site: ${describe(site)}) is refused`);
    }
    const o = String(origin).toLowerCase();
    if (allowedOrigins.has('*') || allowedOrigins.has(o)) return;
    let u = null;
    try {
      u = new URL(o);
    } catch {
      u = null;
    }
    if (u && (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o) {
      const dflt = u.protocol === 'https:' ? 443 : 80;
      const from = parseHost(u.host, dflt);
      const to = parseHost(req.headers.host, dflt);
      if (from && to && from.hostname === to.hostname && from.port === to.port) return;
    }
    throw new HttpError(
      403,
      'cross_origin',
      `${req.method} from origin ${describe(origin)} is refused: only the service's own origin, or one in allowedOrigins (TORCHNODE_ALLOWED_ORIGINS), may change state`,
    );
  }

  /** The token a request carries: `Authorization: Bearer`, `?token=`, or the cookie set by a `?token=` visit. */
  function presentedToken(req, url) {
    const auth = req.headers.authorization;
    if (typeof auth === 'string') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      return m ? m[1] : null;
    }
    if (url.searchParams.has('token')) return url.searchParams.get('token');
    const cookies = String(req.headers.cookie ?? '').split(/;\s*/);
    const prefix = `${cookieName()}=`;
    const c = cookies.find((v) => v.startsWith(prefix));
    return c ? decodeURIComponent(c.slice(prefix.length)) : null;
  }

  function checkAccess(req, res, url) {
    const host = parseHost(req.headers.host, 80);
    if (!host || !hostAllowed(host)) {
      throw new HttpError(
        403,
        'forbidden_host',
        `Host ${describe(req.headers.host ?? 'none')} is not allowed: use localhost or a loopback address, or add the name to allowedHosts (TORCHNODE_ALLOWED_HOSTS)`,
      );
    }
    if (!SAFE_METHODS.has(req.method)) checkOrigin(req);
    if (tokenRequired) {
      const got = presentedToken(req, url);
      if (got === null || !sameSecret(got, token)) {
        throw new HttpError(
          401,
          'unauthorized',
          `${got === null ? 'This service needs its token' : 'Wrong token'}: send Authorization: Bearer <token>, or open /?token=<token> once (the token was printed at start)`,
          { 'www-authenticate': 'Bearer realm="torchnode"' },
        );
      }
      // The page's own requests (fetch, EventSource) then carry it as a cookie that other sites cannot send.
      if (url.searchParams.has('token') && SAFE_METHODS.has(req.method)) {
        res.setHeader('set-cookie', `${cookieName()}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`);
      }
    }
  }

  async function handle(req, res) {
    if (closing) throw new HttpError(503, 'shutting_down', 'The server is shutting down', { connection: 'close' });
    let url;
    let pathname;
    try {
      url = new URL(req.url, 'http://localhost');
      pathname = decodeURIComponent(url.pathname);
    } catch {
      throw new HttpError(400, 'bad_request', `Malformed URL ${describe(req.url)}`);
    }
    checkAccess(req, res, url);
    for (const route of routes) {
      const m = route.pattern.exec(pathname);
      if (!m) continue;
      const fn = route.methods[req.method];
      if (!fn) {
        const allow = Object.keys(route.methods).join(', ');
        throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${pathname}; allowed: ${allow}`, { allow });
      }
      return fn(req, res, ...m.slice(1));
    }
    if (publicDir && (req.method === 'GET' || req.method === 'HEAD')) return serveStatic(req, res, pathname);
    throw new HttpError(404, 'not_found', `No route ${req.method} ${pathname}`);
  }

  // ---- memory: give it back when idle ---------------------------------------

  /** Requests (event streams included) not yet closed. */
  let inFlight = 0;
  let releaseTimer = null;
  /**
   * A burst of requests (1 MiB bodies, hundreds of event streams) leaves glibc's
   * arenas holding the memory they freed, fragmented so that it is not returned on
   * its own: measured 15-20 MB above the baseline for good. So once no request has
   * been open for idleReleaseMs, and no job is training (its thread is using the CPU
   * tensor cache), torch.releaseMemory() hands it back (malloc_trim, and the cache).
   * A job's own memory is released when its thread ends (TrainingJob).
   */
  function scheduleRelease() {
    if (idleReleaseMs === 0 || closing) return;
    if (releaseTimer) clearTimeout(releaseTimer);
    releaseTimer = setTimeout(() => {
      releaseTimer = null;
      if (inFlight === 0 && running().length === 0 && !closing) torch.releaseMemory();
    }, idleReleaseMs);
    releaseTimer.unref();
  }

  const server = http.createServer((req, res) => {
    inFlight++;
    res.once('close', () => {
      if (--inFlight === 0) scheduleRelease();
    });
    Promise.resolve()
      .then(() => handle(req, res))
      .catch((e) => {
        if (e instanceof HttpError) return sendError(res, e);
        log(`500 on ${req.method} ${req.url}: ${e && e.stack ? e.stack : e}`);
        sendError(res, new HttpError(500, 'internal', `Internal error: ${e && e.message ? e.message : String(e)}`));
      })
      .catch(() => res.destroy());
  });

  server.on('listening', () => {
    const a = server.address();
    // A Unix socket or pipe (a string) is local too.
    listensOnLoopback = typeof a === 'string' || (!!a && isLoopbackAddress(a.address));
    if (!listensOnLoopback && token !== null) tokenRequired = true;
  });

  function listen(port = 0, host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const a = server.address();
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve({ port: a.port, host: a.address, url: `http://${h}:${a.port}`, token: tokenRequired ? token : null });
      });
    });
  }

  /** Cancels running jobs (and waits for their threads to end), ends SSE streams, closes the server. */
  function close() {
    if (closing) return closing;
    closing = (async () => {
      if (releaseTimer) clearTimeout(releaseTimer);
      const active = running();
      for (const r of active) r.job.cancel('The server is shutting down');
      for (const [res, cleanup] of [...streams]) {
        cleanup();
        res.end();
      }
      const closed = new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
      server.closeIdleConnections();
      await Promise.all(active.map((r) => r.job.result.then(() => undefined, () => undefined)));
      server.closeAllConnections();
      await closed;
    })();
    return closing;
  }

  return {
    server,
    listen,
    close,
    /** The token requests must carry, or null when none is needed (loopback without an explicit token). */
    get token() {
      return tokenRequired ? token : null;
    },
  };
}

module.exports = { createServer };

if (require.main === module) {
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '127.0.0.1';
  const dataDir = process.env.DATA_DIR ?? path.join(__dirname, 'data');
  const service = createServer({ dataDir, log: (line) => console.log(line) });
  service.listen(port, host).then(
    ({ url, token }) => {
      console.log(`torchnode service on ${url} (libtorch ${torch.version}, DATA_DIR ${path.resolve(dataDir)})`);
      if (token) console.log(`Requests need the token: open ${url}/?token=${token}\nor send Authorization: Bearer ${token}`);
    },
    (e) => {
      console.error(`Could not listen on ${host}:${port}: ${e.message}`);
      process.exit(1);
    },
  );
  const stop = (signal) => {
    console.log(`${signal}: cancelling jobs and closing`);
    service.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
