// examples/service: the HTTP service, tested over real HTTP on an ephemeral port.
// The server requires the built package (dist/); this file uses lib/ only to read
// MNIST digits and write a model file, and passes plain data (numbers, files) across.
import * as fs from 'node:fs';
import * as nodeHttp from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { datasets, nn, version } from '../lib';
import { save } from '../lib/serialize';
import { createServer, Service } from '../examples/service/server';

interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/** fetch's Response, with json() typed for assertions. */
type Res = Omit<Response, 'json'> & { json(): Promise<any> };
const http = (url: string, init?: RequestInit): Promise<Res> => fetch(url, init);

let dataDir: string;
let service: Service;
let base: string;

const digits = new datasets.MNIST({ train: false, limit: 5 });
const digitBytes = digits.data.toTypedArray() as Uint8Array;
const labels = Array.from(digits.targets.toTypedArray() as BigInt64Array, Number);
const pixelsOf = (i: number): number[] => Array.from(digitBytes.subarray(784 * i, 784 * (i + 1)));

function api(p: string, init?: RequestInit): Promise<Res> {
  return http(base + p, init);
}

function postJson(p: string, body: unknown, url = base): Promise<Res> {
  return http(url + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Expects a JSON error with this status; returns its {code, message}. */
async function expectError(res: Res, status: number, code?: string): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect({ status: res.status, body }).toMatchObject({ status, body: { error: { code: code ?? expect.any(String), message: expect.any(String) } } });
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return body.error;
}

/** Reads a text/event-stream until it ends, or until `stop(event)` returns true (then disconnects). */
async function readSse(res: Res, stop?: (e: SseEvent) => boolean): Promise<SseEvent[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const ev: SseEvent = { event: 'message', data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue; // comment (keep-alive)
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') ev.event = val;
        else if (field === 'id') ev.id = val;
        else if (field === 'data') data.push(val);
      }
      if (!data.length) continue;
      ev.data = JSON.parse(data.join('\n'));
      events.push(ev);
      if (stop?.(ev)) {
        await reader.cancel();
        return events;
      }
    }
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function jobState(id: string, url = base): Promise<any> {
  return (await http(`${url}/jobs/${id}`)).json();
}

const health = async (): Promise<any> => (await api('/health')).json();

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-service-'));
  service = createServer({ dataDir });
  ({ url: base } = await service.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await service?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('service: throw cases', () => {
  test('a body over 1 MiB gets 413, with or without Content-Length', async () => {
    const big = JSON.stringify({ pixels: new Array(600000).fill(0) });
    expect(big.length).toBeGreaterThan(1024 * 1024);
    await expectError(await postJson('/predict', JSON.parse(big)), 413, 'payload_too_large');
    // Without Content-Length: a chunked upload that never ends. node:http's client (not
    // fetch) sees the early 413 even when the server then cuts the upload, which makes
    // fetch fail with EPIPE depending on timing.
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = nodeHttp.request(base + '/train', { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (t += d));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, text: t });
        });
        res.on('error', reject);
      });
      req.on('error', () => undefined); // EPIPE / ECONNRESET once the server stops reading
      const pump = () => {
        while (sent <= 64 * 1024 * 1024 && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'payload_too_large' } });
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });

  test('malformed JSON, a non-object body and a wrong content type', async () => {
    const bad = await api('/train', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"epochs": 1,' });
    expect((await expectError(bad, 400, 'invalid_json')).message).toMatch(/not valid JSON/);
    expect((await expectError(await postJson('/train', [1, 2]), 400, 'invalid_json')).message).toMatch(/JSON object/);
    const text = await api('/train', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'epochs=1' });
    expect((await expectError(text, 415, 'unsupported_media_type')).message).toMatch(/application\/json/);
  });

  test('unknown train options are named; options that reach the filesystem are not accepted', async () => {
    const e = await expectError(await postJson('/train', { epochs: 1, foo: 1, dataRoot: '/etc' }), 400, 'unknown_option');
    expect(e.message).toMatch(/'foo', 'dataRoot'/);
    expect((await health()).jobs.total).toBe(0);
  });

  test("wrong types get torchnode's validation message", async () => {
    const cases: [object, RegExp][] = [
      [{ epochs: 'x' }, /Expected an integer >= 1 for epochs but received 'x'/],
      [{ epochs: 0 }, /epochs/],
      [{ batchSize: 2.5 }, /batchSize/],
      [{ lr: -1 }, /Expected a positive number for lr but received -1/],
      [{ lr: null }, /lr but received null/],
      [{ optimizer: 'rmsprop' }, /Expected 'adam', 'sgd' or a function for optimizer but received 'rmsprop'/],
      [{ seed: -3 }, /seed/],
      [{ device: 'tpu' }, /device/],
      [{ save: 7 }, /model name .* for save but received 7/],
    ];
    for (const [body, msg] of cases) {
      const e = await expectError(await postJson('/train', body), 400);
      expect(e.message).toMatch(msg);
    }
    expect((await health()).jobs).toEqual({ running: 0, total: 0 });
  });

  test('predict before any model exists is 409', async () => {
    const e = await expectError(await postJson('/predict', { pixels: pixelsOf(0) }), 409, 'no_model');
    expect(e.message).toMatch(/no trained model yet/i);
  });

  test('bad pixels get 400 with the reason (with DATA_DIR/default.pt as the model)', async () => {
    save(new nn.CNN().stateDict(), path.join(dataDir, 'default.pt'));
    const ok = await postJson('/predict', { pixels: pixelsOf(0) });
    expect(ok.status).toBe(200);
    expect((await ok.json()).model).toBe('default');
    const cases: [unknown, RegExp][] = [
      [{ pixels: pixelsOf(0).slice(0, 783) }, /Expected 784 pixels \(28x28\) for image but received 783/],
      [{ pixels: [...pixelsOf(0).slice(0, 783), 'NaN'] }, /pixel values in 0\.\.255 or 0\.\.1 .* received NaN at index 783/],
      [{ pixels: [null, ...pixelsOf(0).slice(1)] }, /received null at index 0/],
      [{ pixels: [256, ...pixelsOf(0).slice(1)] }, /received 256 at index 0/],
      [{ pixels: 'abc' }, /Expected an array of 784 numbers .* for pixels but received "abc"/],
      [{ pixels: { length: 784 } }, /for pixels but received an object/],
      [{ pixels: [pixelsOf(0)] }, /784 numbers, or 28 rows of 28/],
      [{}, /Send pixels .* or png/],
      [{ pixels: pixelsOf(0), png: 'x' }, /either pixels or png/],
      [{ png: 'aGVsbG8gd29ybGQ=' }, /PNG signature/],
      [{ png: 5 }, /base64 PNG string for png but received 5/],
      [{ pixels: pixelsOf(0), extra: 1 }, /Unknown field 'extra'/],
    ];
    for (const [body, msg] of cases) {
      const e = await expectError(await postJson('/predict', body), 400);
      expect(e.message).toMatch(msg);
    }
  });

  test('model names with ../ or absolute paths get 400 and touch nothing outside DATA_DIR', async () => {
    for (const name of ['../../etc/passwd', '/etc/passwd', '..', 'a/b', 'x'.repeat(65), '', 'm1.pt']) {
      await expectError(await postJson('/predict', { pixels: pixelsOf(0), model: name }), 400, 'invalid_model_name');
      await expectError(await postJson('/train', { save: name }), 400, 'invalid_model_name');
    }
    // A symlink inside DATA_DIR that leads outside it is refused as well.
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-outside-'));
    try {
      fs.copyFileSync(path.join(dataDir, 'default.pt'), path.join(outside, 'evil.pt'));
      fs.symlinkSync(path.join(outside, 'evil.pt'), path.join(dataDir, 'evil.pt'));
      await expectError(await postJson('/predict', { pixels: pixelsOf(0), model: 'evil' }), 400, 'invalid_model_name');
    } finally {
      fs.rmSync(path.join(dataDir, 'evil.pt'), { force: true });
      fs.rmSync(outside, { recursive: true, force: true });
    }
    await expectError(await postJson('/predict', { pixels: pixelsOf(0), model: 'nope' }), 404, 'model_not_found');
    fs.writeFileSync(path.join(dataDir, 'junk.pt'), 'not a checkpoint');
    const junk = await expectError(await postJson('/predict', { pixels: pixelsOf(0), model: 'junk' }), 422, 'model_unreadable');
    expect(junk.message).toMatch(/junk/);
  });

  test('unknown routes 404, wrong methods 405 with Allow, unknown jobs 404', async () => {
    await expectError(await api('/nope'), 404, 'not_found');
    await expectError(await api('/jobs/'), 404, 'not_found');
    const m = await api('/health', { method: 'DELETE' });
    expect(m.headers.get('allow')).toBe('GET');
    await expectError(m, 405, 'method_not_allowed');
    const t = await api('/train');
    expect(t.headers.get('allow')).toBe('POST');
    await expectError(t, 405);
    const j = await api('/jobs/job-x', { method: 'PUT' });
    expect(j.headers.get('allow')).toBe('GET, DELETE');
    await expectError(j, 405);
    await expectError(await api('/jobs/job-999999'), 404, 'job_not_found');
    await expectError(await api('/jobs/job-999999', { method: 'DELETE' }), 404, 'job_not_found');
    await expectError(await api('/jobs/job-999999/events'), 404, 'job_not_found');
    await expectError(await api('/jobs/%E0%A4%A'), 400, 'bad_request');
  });

  test('an unexpected exception is a 500 JSON error and the server keeps running', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-service-'));
    const other = createServer({ dataDir: dir });
    const { url } = await other.listen();
    try {
      // DATA_DIR replaced by a file behind the server's back: listing it throws ENOTDIR.
      fs.rmSync(dir, { recursive: true });
      fs.writeFileSync(dir, '');
      const e = await expectError(await http(url + '/models'), 500, 'internal');
      expect(e.message).toMatch(/ENOTDIR/);
      expect((await http(url + '/health')).status).toBe(200);
    } finally {
      await other.close();
      fs.rmSync(dir, { force: true });
    }
  });
});

describe('service', () => {
  let m1: string;

  test('GET /health', async () => {
    const res = await api('/health');
    expect(res.status).toBe(200);
    const h = await res.json();
    expect(h).toMatchObject({ status: 'ok', version, jobs: { running: 0, total: 0 }, streams: 0 });
    expect(h.uptime).toBeGreaterThan(0);
  });

  test('POST /train runs a job; the SSE stream gets batch, epoch and done; the model is saved', async () => {
    const res = await postJson('/train', { limit: 500, epochs: 1, testLimit: 200, threads: 1, seed: 0, save: 'm1' });
    expect(res.status).toBe(202);
    const started = await res.json();
    expect(started).toMatchObject({ id: expect.any(String), state: 'running', links: { self: `/jobs/${started.id}`, events: `/jobs/${started.id}/events` } });
    expect(res.headers.get('location')).toBe(`/jobs/${started.id}`);
    m1 = started.id;

    const events = await readSse(await api(started.links.events)); // ends when the job does
    const types = events.map((e) => e.event);
    expect(types).toEqual(['batch', 'batch', 'batch', 'batch', 'batch', 'epoch', 'done']);
    expect(events.map((e) => Number(e.id))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(events.slice(0, 5).map((e) => e.data.batch)).toEqual([1, 2, 3, 4, 5]);
    expect(events[5].data).toMatchObject({ epoch: 1, samples: 500, cost: expect.any(Number) });
    expect(events[6].data).toMatchObject({ state: 'succeeded', model: 'm1', accuracy: expect.any(Number) });

    const job = await waitFor('m1 to succeed', async () => {
      const j = await jobState(m1);
      return j.state === 'running' ? undefined : j;
    });
    expect(job).toMatchObject({
      id: m1,
      state: 'succeeded',
      model: 'm1',
      error: null,
      options: { limit: 500, epochs: 1, save: 'm1' },
      lastBatch: { epoch: 1, batch: 5, batches: 5 },
    });
    expect(job.history).toHaveLength(1);
    expect(job.history[0]).toMatchObject({ epoch: 1, samples: 500 });
    expect(job.history[0].cost).toBe(events[5].data.cost);
    expect(job.accuracy).toBeGreaterThanOrEqual(0);
    expect(job.accuracy).toBeLessThanOrEqual(1);
    expect(Date.parse(job.finishedAt)).toBeGreaterThanOrEqual(Date.parse(job.createdAt));
    // 333,526 float32 parameters.
    expect(fs.statSync(path.join(dataDir, 'm1.pt')).size).toBeGreaterThan(333526 * 4);

    const list = await (await api('/jobs')).json();
    expect(list.jobs).toEqual([expect.objectContaining({ id: m1, state: 'succeeded', model: 'm1', epochs: 1 })]);
    const models = await (await api('/models')).json();
    expect(models.models.map((m: { name: string }) => m.name).sort()).toEqual(['default', 'junk', 'm1']);
    expect(models.default).toBe('m1');
  });

  test('a finished job replays its events (from Last-Event-ID) and closes; DELETE is 409', async () => {
    const all = await readSse(await api(`/jobs/${m1}/events`));
    expect(all.map((e) => e.event)).toEqual(['batch', 'batch', 'batch', 'batch', 'batch', 'epoch', 'done']);
    const rest = await readSse(await api(`/jobs/${m1}/events`, { headers: { 'last-event-id': '5' } }));
    expect(rest.map((e) => e.event)).toEqual(['epoch', 'done']);
    await expectError(await api(`/jobs/${m1}`, { method: 'DELETE' }), 409, 'job_finished');
  });

  test('POST /predict answers for MNIST digits: pixels, 0..1 pixels, rows, PNG, by model name, and after a reload from disk', async () => {
    const pixels = pixelsOf(0);
    const res = await postJson('/predict', { pixels });
    expect(res.status).toBe(200);
    const p = await res.json();
    expect(p.model).toBe('m1'); // the latest job's model, not default.pt
    expect(Number.isInteger(p.class) && p.class >= 0 && p.class <= 9).toBe(true);
    expect(p.probabilities).toHaveLength(10);
    expect(p.probabilities.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
    expect(p.probabilities.indexOf(Math.max(...p.probabilities))).toBe(p.class);

    const same = async (body: object, url = base) => {
      const r = await postJson('/predict', body, url);
      expect(r.status).toBe(200);
      const q = await r.json();
      expect(q.class).toBe(p.class);
      q.probabilities.forEach((v: number, i: number) => expect(v).toBeCloseTo(p.probabilities[i], 5));
      return q;
    };
    await same({ pixels, model: 'm1' });
    await same({ pixels: pixels.map((v) => v / 255) });
    await same({ pixels: Array.from({ length: 28 }, (_, r) => pixels.slice(28 * r, 28 * (r + 1))) });
    const png = new PNG({ width: 28, height: 28 });
    pixels.forEach((v, i) => png.data.set([v, v, v, 255], 4 * i));
    await same({ png: PNG.sync.write(png).toString('base64'), model: 'm1' });

    // default.pt is a different (untrained) model: asking for it by name uses it.
    const d = await (await postJson('/predict', { pixels, model: 'default' })).json();
    expect(d.model).toBe('default');
    expect(d.probabilities).not.toEqual(p.probabilities);

    // A second server on the same DATA_DIR has nothing cached: it loads m1.pt from disk.
    const fresh = createServer({ dataDir });
    const { url } = await fresh.listen();
    try {
      await same({ pixels, model: 'm1' }, url);
      // Every test digit gets an answer; the labels are real MNIST classes.
      for (let i = 0; i < labels.length; i++) {
        const q = await (await postJson('/predict', { pixels: pixelsOf(i), model: 'm1' }, url)).json();
        expect(q.class).toBeGreaterThanOrEqual(0);
        expect(q.class).toBeLessThanOrEqual(9);
      }
      expect(labels.every((l) => l >= 0 && l <= 9)).toBe(true);
    } finally {
      await fresh.close();
    }
  });

  test('DELETE /jobs/:id cancels a running job quickly; a full server answers 429; SSE disconnects leave no listeners', async () => {
    const busy = createServer({ dataDir, maxRunningJobs: 1 });
    const { url } = await busy.listen();
    try {
      const res = await postJson('/train', { limit: 6000, epochs: 3, threads: 1, seed: 0 }, url);
      expect(res.status).toBe(202);
      const { id } = await res.json();
      const refused = await postJson('/train', { limit: 100, epochs: 1 }, url);
      expect(refused.headers.get('retry-after')).toBe('5');
      await expectError(refused, 429, 'too_many_jobs');

      // One watcher disconnects after its first event; another stays to the end.
      const watcher = readSse(await http(`${url}/jobs/${id}/events`));
      const first = await readSse(await http(`${url}/jobs/${id}/events`), () => true);
      expect(first.map((e) => e.event)).toEqual(['batch']);
      await waitFor('the disconnected stream to be dropped', async () => ((await (await http(url + '/health')).json()).streams === 1 ? true : undefined), 5000);

      const t0 = Date.now();
      const del = await http(`${url}/jobs/${id}`, { method: 'DELETE' });
      expect(del.status).toBe(202);
      expect(await del.json()).toMatchObject({ id, cancelRequested: true });
      const job = await waitFor('the job to be cancelled', async () => {
        const j = await jobState(id, url);
        return j.state === 'running' ? undefined : j;
      }, 5000);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(job.state).toBe('cancelled');
      expect(job.error).toMatch(/cancelled/);
      expect(job.history.length).toBeLessThan(3);
      const seen = await watcher;
      expect(seen[seen.length - 1].event).toBe('cancelled');
      expect(seen.filter((e) => e.event === 'done')).toHaveLength(0);
      await expectError(await http(`${url}/jobs/${id}`, { method: 'DELETE' }), 409, 'job_finished');
      const h = await (await http(url + '/health')).json();
      expect(h).toMatchObject({ jobs: { running: 0, total: 1 }, streams: 0 });
    } finally {
      await busy.close();
    }
  });

  test('close() cancels running jobs, ends SSE streams and stops listening', async () => {
    const other = createServer({ dataDir });
    const { url } = await other.listen();
    const res = await postJson('/train', { limit: 6000, epochs: 3, threads: 1 }, url);
    const { id } = await res.json();
    const stream = await http(`${url}/jobs/${id}/events`);
    const events = readSse(stream);
    await waitFor('a batch', async () => ((await jobState(id, url)).lastBatch ? true : undefined));
    const t0 = Date.now();
    await other.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await events).length).toBeGreaterThan(0); // ended, not hanging
    expect(other.server.listening).toBe(false);
    await expect(http(url + '/health')).rejects.toThrow();
  });

  test('after all the hostile requests the server still answers', async () => {
    const h = await health();
    expect(h).toMatchObject({ status: 'ok', jobs: { running: 0, total: 1 }, streams: 0 });
  });
});
