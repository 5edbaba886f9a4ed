// Issue 13 (hardening), the service and training jobs: cross-origin requests, DNS
// rebinding and tokens; bounded threads and jobs; bounded event logs; cancel during
// evaluation; SSE clients that go away. Each test failed on the code before the fix.
// All traffic goes to 127.0.0.1 (one server listens on 0.0.0.0 to need a token; it is
// reached over loopback only).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTraining, train, trainInThisThread, evaluate, nn, datasets } from '../lib';
import { createServer, Service } from '../examples/service/server';

// A user's model file requires the built package (dist/); jobs that rebuild such a
// model on this thread must use that same copy (as in job.test.ts).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const built: typeof import('../lib') = require('../dist');
const tinyNet = path.join(__dirname, 'fixtures', 'models', 'tiny-net.js');

const cores = os.availableParallelism?.() ?? os.cpus().length;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** One request to 127.0.0.1:port with exactly these headers (Host and Origin included). */
function request(port: number, method: string, p: string, headers: Record<string, string> = {}, body?: unknown): Promise<Reply> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const h: Record<string, string> = { host: `127.0.0.1:${port}`, ...headers };
  if (data !== undefined) Object.assign(h, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) });
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON (an event stream)
        }
        resolve({ status: res.statusCode!, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

function expectError(r: Reply, status: number, code: string): string {
  expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status, code });
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  return r.body.error.message as string;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Parses a whole text/event-stream body: events (id, event, data) and comment lines. */
function parseSse(text: string): { events: { id: number; event: string; data: any }[]; comments: string[] } {
  const events: { id: number; event: string; data: any }[] = [];
  const comments: string[] = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    const ev = { id: 0, event: 'message', data: null as any };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else if (line.startsWith('id: ')) ev.id = Number(line.slice(4));
      else if (line.startsWith('event: ')) ev.event = line.slice(7);
      else if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
    }
    if (ev.data !== null) events.push(ev);
  }
  return { events, comments };
}

/** Sets environment variables for the duration of fn. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T> | T): Promise<T> {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

let dataDir: string;
const services: Service[] = [];

async function start(options: Parameters<typeof createServer>[0] = {}, host = '127.0.0.1') {
  const service = createServer({ dataDir, ...options });
  services.push(service);
  const addr = await service.listen(0, host);
  return { service, ...addr };
}

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-hardening-'));
});

afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('cross-origin requests, DNS rebinding and the token', () => {
  test('an empty-body cross-origin POST /train is 403 and starts nothing; so are DELETE and Sec-Fetch-Site: cross-site', async () => {
    const { port } = await start();
    const evil = await request(port, 'POST', '/train', { origin: 'http://evil.example' });
    expect(expectError(evil, 403, 'cross_origin')).toMatch(/POST from origin "http:\/\/evil\.example" is refused/);
    for (const origin of ['null', `http://127.0.0.1:${port + 1}`, `http://localhost:${port}`, 'file://', `ftp://127.0.0.1:${port}`]) {
      expectError(await request(port, 'POST', '/train', { origin }), 403, 'cross_origin');
    }
    expectError(await request(port, 'POST', '/train', { 'sec-fetch-site': 'cross-site' }), 403, 'cross_origin');
    expectError(await request(port, 'POST', '/train', { 'sec-fetch-site': 'same-site' }), 403, 'cross_origin');
    expectError(await request(port, 'DELETE', '/jobs/job-1', { origin: 'http://evil.example' }), 403, 'cross_origin');
    expectError(await request(port, 'POST', '/predict', { origin: 'http://evil.example' }, { pixels: [] }), 403, 'cross_origin');
    expect((await request(port, 'GET', '/health')).body.jobs).toEqual({ running: 0, total: 0 });
  });

  test('the service’s own origin, requests without Origin, and allowed origins pass the check', async () => {
    const { port } = await start();
    // Same origin, as the bundled page sends it (a bad option shows the request got through to validation).
    const own = await request(port, 'POST', '/train', { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' }, { epochs: 'x' });
    expectError(own, 400, 'invalid_option');
    const viaName = await request(port, 'POST', '/train', { host: `localhost:${port}`, origin: `http://localhost:${port}` }, { epochs: 'x' });
    expectError(viaName, 400, 'invalid_option');
    expectError(await request(port, 'POST', '/train', {}, { epochs: 'x' }), 400, 'invalid_option'); // curl, scripts
    expectError(await request(port, 'DELETE', '/jobs/job-nope', { origin: `http://127.0.0.1:${port}` }), 404, 'job_not_found');

    const allowed = await start({ allowedOrigins: ['http://app.example:8080'] });
    expectError(await request(allowed.port, 'POST', '/train', { origin: 'http://app.example:8080' }, { epochs: 'x' }), 400, 'invalid_option');
    expectError(await request(allowed.port, 'POST', '/train', { origin: 'http://app.example:8081' }), 403, 'cross_origin');
    const fromEnv = await withEnv({ TORCHNODE_ALLOWED_ORIGINS: 'https://a.example, https://b.example' }, () => start());
    expectError(await request(fromEnv.port, 'POST', '/train', { origin: 'https://b.example' }, { epochs: 'x' }), 400, 'invalid_option');
    expectError(await request(fromEnv.port, 'POST', '/train', { origin: 'https://c.example' }), 403, 'cross_origin');
  });

  test('an unknown Host header (DNS rebinding) is 403 on every route; loopback names and the allowlist pass', async () => {
    const { port } = await start();
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost.evil.example:${port}`, 'a b', `x@127.0.0.1:${port}`]) {
      for (const [method, p] of [['GET', '/health'], ['GET', '/jobs'], ['GET', '/'], ['GET', '/models'], ['POST', '/train']]) {
        const r = await request(port, method, p, { host });
        expect({ host, p, status: r.status, code: r.body?.error?.code }).toEqual({ host, p, status: 403, code: 'forbidden_host' });
      }
    }
    // No Host header at all (HTTP/1.0): refused as well.
    const noHost = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.end('GET /health HTTP/1.0\r\n\r\n'));
      let text = '';
      sock.on('data', (d) => (text += d.toString('latin1')));
      sock.on('end', () => resolve(text));
      sock.on('error', reject);
    });
    expect(noHost).toMatch(/^HTTP\/1\.1 403 [^]*forbidden_host/);
    // Same-origin from the rebound name is still refused: the Host check comes first.
    expectError(await request(port, 'POST', '/train', { host: `evil.example:${port}`, origin: `http://evil.example:${port}` }), 403, 'forbidden_host');
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, `127.0.0.2:${port}`, 'localhost']) {
      expect({ host, status: (await request(port, 'GET', '/health', { host })).status }).toEqual({ host, status: 200 });
    }
    // Another IP literal is refused while the service listens on loopback.
    expectError(await request(port, 'GET', '/health', { host: `10.1.2.3:${port}` }), 403, 'forbidden_host');

    const named = await start({ allowedHosts: ['models.internal', 'gpu.internal:9000'] });
    expect((await request(named.port, 'GET', '/health', { host: 'models.internal:1234' })).status).toBe(200);
    expect((await request(named.port, 'GET', '/health', { host: 'gpu.internal:9000' })).status).toBe(200);
    expectError(await request(named.port, 'GET', '/health', { host: 'gpu.internal:9001' }), 403, 'forbidden_host');
    const fromEnv = await withEnv({ TORCHNODE_ALLOWED_HOSTS: 'svc.example' }, () => start());
    expect((await request(fromEnv.port, 'GET', '/health', { host: 'svc.example' })).status).toBe(200);
    expectError(await request(fromEnv.port, 'GET', '/health', { host: 'other.example' }), 403, 'forbidden_host');
    expect(() => createServer({ dataDir, allowedHosts: ['a/b'] })).toThrow(/allowedHosts/);
  });

  test('off loopback a token is generated and required (Bearer, ?token= and the cookie it sets); loopback needs none', async () => {
    const local = await start();
    expect(local.token).toBeNull();
    expect(local.service.token).toBeNull();

    const open = await start({}, '0.0.0.0');
    expect(open.token).toMatch(/^[0-9a-f]{48}$/);
    const port = open.port;
    for (const [method, p] of [['GET', '/health'], ['GET', '/jobs'], ['GET', '/'], ['POST', '/train'], ['DELETE', '/jobs/job-1']]) {
      const r = await request(port, method, p);
      expect({ p, status: r.status, code: r.body?.error?.code }).toEqual({ p, status: 401, code: 'unauthorized' });
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    expectError(await request(port, 'GET', '/health', { authorization: 'Bearer wrong-token-value' }), 401, 'unauthorized');
    expectError(await request(port, 'GET', '/health?token=nope'), 401, 'unauthorized');
    expect((await request(port, 'GET', '/health', { authorization: `Bearer ${open.token}` })).status).toBe(200);
    const page = await request(port, 'GET', `/?token=${open.token}`);
    expect(page.status).toBe(200);
    const cookie = String(page.headers['set-cookie']).split(';')[0];
    expect(String(page.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await request(port, 'GET', '/app.js', { cookie })).status).toBe(200);
    expectError(await request(port, 'POST', '/train', { cookie }, { epochs: 'x' }), 400, 'invalid_option');
    // The cookie does not make a cross-origin POST acceptable.
    expectError(await request(port, 'POST', '/train', { cookie, origin: 'http://evil.example' }), 403, 'cross_origin');
    // Off loopback, IP literals are accepted Host names (a rebinding attack needs a name); names still need the list.
    expect((await request(port, 'GET', '/health', { host: `192.0.2.7:${port}`, cookie })).status).toBe(200);
    expectError(await request(port, 'GET', '/health', { host: `evil.example:${port}`, cookie }), 403, 'forbidden_host');

    // An explicit token (option or TORCHNODE_TOKEN) is required on loopback too.
    const given = await start({ token: 'secret-token-123' });
    expect(given.token).toBe('secret-token-123');
    expectError(await request(given.port, 'GET', '/health'), 401, 'unauthorized');
    expect((await request(given.port, 'GET', '/health', { authorization: 'Bearer secret-token-123' })).status).toBe(200);
    const env = await withEnv({ TORCHNODE_TOKEN: 'env-token-4567' }, () => start());
    expect((await request(env.port, 'GET', '/health?token=env-token-4567')).status).toBe(200);
    expectError(await request(env.port, 'GET', '/health'), 401, 'unauthorized');
  });
});

describe('threads and concurrent jobs are bounded', () => {
  test('train() refuses more threads than cores, naming the value and the limit; TORCHNODE_MAX_THREADS overrides', async () => {
    const over = cores + 1;
    const msg = new RegExp(`threads is ${over}, more than the ${cores} core\\(s\\) available`);
    await expect(train({ threads: over, limit: 100, epochs: 1, testData: null })).rejects.toThrow(msg);
    await expect(train({ threads: 1000, limit: 100, epochs: 1, testData: null })).rejects.toThrow(/threads is 1000/);
    await expect(trainInThisThread({ threads: 1000, limit: 100, epochs: 1, testData: null })).rejects.toThrow(/threads is 1000/);
    const job = startTraining({ threads: 1000, limit: 100, epochs: 1, testData: null });
    await expect(job.result).rejects.toThrow(RangeError);
    expect(job.state).toBe('failed');
    await withEnv({ TORCHNODE_MAX_THREADS: String(over) }, async () => {
      const r = await train({ threads: over, limit: 100, epochs: 1, testData: null });
      expect(r.history).toHaveLength(1);
      await expect(train({ threads: over + 1, limit: 100, epochs: 1, testData: null })).rejects.toThrow(
        new RegExp(`threads is ${over + 1}, more than the limit TORCHNODE_MAX_THREADS=${over}`),
      );
    });
    await withEnv({ TORCHNODE_MAX_THREADS: 'lots' }, async () => {
      await expect(train({ threads: 1, limit: 100, epochs: 1, testData: null })).rejects.toThrow(/TORCHNODE_MAX_THREADS but received 'lots'/);
    });
  });

  test('the service: too many threads is 400; while it is full, invalid options are still 400 and only valid ones 429', async () => {
    const { port } = await withEnv({ TORCHNODE_MAX_JOBS: '1' }, () => start());
    expect(expectError(await request(port, 'POST', '/train', {}, { threads: 1000 }), 400, 'invalid_option')).toMatch(
      new RegExp(`threads is 1000, more than the ${cores} core`),
    );
    expect((await request(port, 'GET', '/health')).body.jobs.total).toBe(0);
    const long = await request(port, 'POST', '/train', {}, { limit: 6000, epochs: 3, threads: 1, seed: 0 });
    expect(long.status).toBe(202);
    try {
      for (const body of [{ epochs: 'x' }, { threads: 1000 }, { lr: -1 }, { device: 'tpu' }, { foo: 1 }, { save: '../x' }]) {
        const r = await request(port, 'POST', '/train', {}, body);
        expect({ body, status: r.status }).toEqual({ body, status: 400 });
      }
      const full = await request(port, 'POST', '/train', {}, { limit: 100, epochs: 1, threads: 1 });
      expectError(full, 429, 'too_many_jobs');
      expect(full.body.error.message).toMatch(/^1 training jobs are running/);
    } finally {
      await request(port, 'DELETE', long.headers.location!);
      await waitFor('the long job to end', async () => ((await request(port, 'GET', long.headers.location!)).body.state !== 'running' ? true : undefined));
    }
    await expect(withEnv({ TORCHNODE_MAX_JOBS: '0' }, () => createServer({ dataDir }))).rejects.toThrow(/TORCHNODE_MAX_JOBS/);
  });
});

describe('job events are kept in a bounded window', () => {
  test('TrainingJob.events keeps every epoch and the latest 1000 batch events (keepBatchEvents); the iterator follows', async () => {
    const tiny = { modelFile: tinyNet, modelExport: 'TinyNet', threads: 1, testData: null, seed: 0 };
    const job = built.startTraining({ ...tiny, limit: 1100, batchSize: 1, epochs: 1 });
    let batches = 0;
    job.on('batch', () => batches++);
    const seen: string[] = [];
    const follow = (async () => {
      for await (const e of job) seen.push(e.type === 'batch' ? `b${e.epoch}.${e.batch}` : `e${e.epoch}`);
    })();
    await job.result;
    await follow;
    expect(batches).toBe(1100);
    const kept = job.events.filter((e) => e.type === 'batch');
    expect(kept).toHaveLength(1000);
    expect(job.droppedBatchEvents).toBe(100);
    expect([kept[0], kept[999]].map((e) => (e as { batch: number }).batch)).toEqual([101, 1100]);
    expect(job.events[job.events.length - 1]).toMatchObject({ type: 'epoch', epoch: 1, samples: 1100 });
    // A consumer that kept up saw (nearly) every batch, in order, then the epoch.
    expect(seen.length).toBeGreaterThan(1000);
    expect(seen[seen.length - 1]).toBe('e1');

    const small = built.startTraining({ ...tiny, limit: 200, batchSize: 2, epochs: 3, keepBatchEvents: 50 });
    await small.result;
    expect(small.events.map((e) => e.type).filter((t) => t === 'epoch')).toHaveLength(3);
    expect(small.events.filter((e) => e.type === 'batch')).toHaveLength(50);
    expect(small.droppedBatchEvents).toBe(250);
    const late: string[] = [];
    for await (const e of small) late.push(e.type === 'batch' ? `b${e.epoch}.${e.batch}` : `e${e.epoch}`);
    expect(late).toEqual(['e1', 'e2', ...Array.from({ length: 50 }, (_, i) => `b3.${51 + i}`), 'e3']);
    await expect(train({ limit: 100, epochs: 1, testData: null, keepBatchEvents: -1 })).rejects.toThrow(/keepBatchEvents/);
  });

  test('SSE replay keeps the last maxBatchEvents batches plus every epoch and the end; ids stay, Last-Event-ID works', async () => {
    const { port } = await start({ maxBatchEvents: 20 });
    const s = await request(port, 'POST', '/train', {}, { limit: 100, batchSize: 2, epochs: 2, threads: 1, testLimit: 100 });
    expect(s.status).toBe(202);
    // A client following from the start sees every batch live; one that connects later gets the bounded replay.
    await waitFor('the job to end', async () => ((await request(port, 'GET', s.headers.location!)).body.state === 'running' ? undefined : true), 60000);
    const replay = parseSse((await request(port, 'GET', `${s.headers.location}/events`)).body);
    const all = replay.events;
    expect(all.map((e) => e.event)).toEqual(['epoch', ...Array(20).fill('batch'), 'epoch', 'done']);
    // Ids are not renumbered: 50 batches, epoch 51, batches 52..101, epoch 102, done 103.
    expect(all.map((e) => e.id)).toEqual([51, ...Array.from({ length: 20 }, (_, i) => 82 + i), 102, 103]);
    expect(replay.comments.join('\n')).toMatch(/80 older batch events are not kept/);
    const after = parseSse((await request(port, 'GET', `${s.headers.location}/events`, { 'last-event-id': '100' })).body).events;
    expect(after.map((e) => e.id)).toEqual([101, 102, 103]);
    const job = (await request(port, 'GET', s.headers.location!)).body;
    expect(job.history).toHaveLength(2);
    expect(job.lastBatch).toMatchObject({ epoch: 2, batch: 50 });
  });
});

describe('cancelling during evaluation', () => {
  test('a job cancelled after its last training batch, while it evaluates, ends cancelled (AbortError)', async () => {
    const job = startTraining({ limit: 200, epochs: 1, threads: 1, testLimit: 10000 });
    let cancelledAt = 0;
    job.on('epoch', () => {
      cancelledAt = Date.now();
      job.cancel();
    });
    const err = await job.result.then(() => null, (e) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(job.state).toBe('cancelled');
    expect(Date.now() - cancelledAt).toBeLessThan(3000);
  });

  test('DELETE during evaluation: 202, then the job is cancelled, not succeeded', async () => {
    const { port } = await start();
    const r = await request(port, 'POST', '/train', {}, { limit: 200, epochs: 1, threads: 1, testLimit: 10000 });
    const id = r.body.id as string;
    // Follow the stream; at the epoch event (the last training batch is done) send DELETE.
    let t0 = 0;
    const del = await new Promise<Reply>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: `/jobs/${id}/events`, agent: false }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          buf += c;
          if (/event: epoch/.test(buf)) {
            res.destroy();
            t0 = Date.now();
            request(port, 'DELETE', `/jobs/${id}`).then(resolve, reject);
          }
        });
      });
      req.on('error', () => undefined);
    });
    expect(del.status).toBe(202);
    const job = await waitFor('the job to end', async () => {
      const j = (await request(port, 'GET', `/jobs/${id}`)).body;
      return j.state === 'running' ? undefined : j;
    });
    expect({ state: job.state, accuracy: job.accuracy }).toEqual({ state: 'cancelled', accuracy: null });
    // Within an evaluation batch, not after the whole evaluation or the worker's 10 s kill timer.
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(job.error).toMatch(/cancelled by DELETE/);
  });

  test('evaluate() checks its signal', () => {
    const ac = new AbortController();
    ac.abort();
    const data = new datasets.MNIST({ train: false, limit: 10 });
    expect(() => evaluate(new nn.CNN(), data, { signal: ac.signal })).toThrow(expect.objectContaining({ name: 'AbortError' }));
    expect(() => evaluate(new nn.CNN(), data, { signal: {} as AbortSignal })).toThrow(/AbortSignal for signal/);
  });
});

describe('SSE clients that go away', () => {
  test('a stream whose socket is full waits for drain, then resumes from the log: every event once, in order', async () => {
    const { service, port } = await start({ heartbeatMs: 20 });
    // A slow socket, simulated: every write of an event stream reports a full buffer,
    // and 'drain' comes 5 ms later. The stream must write nothing more until then.
    let writes = 0;
    let early = 0;
    service.server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (!/\/events$/.test(req.url ?? '')) return;
      const write = res.write.bind(res) as (chunk: unknown) => boolean;
      let full = false;
      (res as unknown as { write: (chunk: unknown) => boolean }).write = (chunk: unknown) => {
        if (full) early++;
        writes++;
        write(chunk);
        full = true;
        setTimeout(() => {
          full = false;
          res.emit('drain');
        }, 5);
        return false;
      };
    });
    const s = await request(port, 'POST', '/train', {}, { limit: 400, batchSize: 2, epochs: 1, threads: 1, testLimit: 100 });
    expect(s.status).toBe(202);
    const id = s.body.id as string;
    // One client follows the running job from the start, one connects after it ended (the whole log as replay).
    const live = request(port, 'GET', `/jobs/${id}/events`);
    await waitFor('the job to end', async () => ((await request(port, 'GET', `/jobs/${id}`)).body.state === 'running' ? undefined : true), 60000);
    const late = await request(port, 'GET', `/jobs/${id}/events`);
    const all = Array.from({ length: 202 }, (_, i) => i + 1); // 200 batches, the epoch, done
    expect(parseSse(late.body).events.map((e) => e.id)).toEqual(all);
    expect(parseSse((await live).body).events.map((e) => e.id)).toEqual(all);
    expect(writes).toBeGreaterThan(2);
    expect(early).toBe(0);
    expect((await request(port, 'GET', '/health')).body.streams).toBe(0);
  });

  test('after 200 aborted event streams the job’s listeners and the open streams return to their baseline', async () => {
    const { port } = await start();
    const r = await request(port, 'POST', '/train', {}, { limit: 6000, epochs: 3, threads: 1 });
    const id = r.body.id as string;
    const watchers = async () => (await request(port, 'GET', `/jobs/${id}`)).body.watchers;
    const streams = async () => (await request(port, 'GET', '/health')).body.streams;
    await waitFor('a batch', async () => ((await request(port, 'GET', `/jobs/${id}`)).body.lastBatch ? true : undefined));
    const base = { watchers: await watchers(), streams: await streams() };
    expect(base).toEqual({ watchers: 0, streams: 0 });
    const abortOne = (i: number) =>
      new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/jobs/${id}/events`, agent: false }, (res) => {
          // Half go away at once, half after the replay has started arriving.
          if (i % 2) res.destroy();
          else res.once('data', () => res.destroy());
          res.on('close', () => resolve());
        });
        req.on('error', () => resolve());
        if (i % 10 === 9) setImmediate(() => req.destroy()); // some before any answer
      });
    // The count is live: 10 streams that stay open are 10 watchers.
    const held: http.ClientRequest[] = [];
    for (let i = 0; i < 10; i++) held.push(http.get({ host: '127.0.0.1', port, path: `/jobs/${id}/events`, agent: false }).on('error', () => undefined));
    await waitFor('10 watchers', async () => ((await watchers()) === 10 && (await streams()) === 10 ? true : undefined), 5000);
    for (const req of held) req.destroy();
    for (let i = 0; i < 200; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => abortOne(i + k)));
    await waitFor('the listeners to go', async () => ((await watchers()) === base.watchers && (await streams()) === base.streams ? true : undefined), 5000);
    expect((await request(port, 'GET', `/jobs/${id}`)).body.state).toBe('running');
    await request(port, 'DELETE', `/jobs/${id}`);
  });
});
