// examples/service over plain HTTP, no browser: the page's static files (types,
// caching, nothing outside public/) and POST /predict {features: true}. The server
// requires dist/; this file uses lib/ only to read MNIST digits, write a model file
// and compute the expected feature maps, and passes plain data across.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { datasets, featureMaps, nn } from '../../lib';
import { save } from '../../lib/serialize';
import { createServer, Service } from '../../examples/service/server';

let dataDir: string;
let service: Service;
let base: string;

const digits = new datasets.MNIST({ train: false, limit: 3 });
const digitBytes = digits.data.toTypedArray() as Uint8Array;
const pixelsOf = (i: number): number[] => Array.from(digitBytes.subarray(784 * i, 784 * (i + 1)));

/** fetch's Response, with json() typed for assertions. */
type Res = Omit<Response, 'json'> & { json(): Promise<any> };
const http = (url: string, init?: RequestInit): Promise<Res> => fetch(url, init);
const get = (p: string, init?: RequestInit) => http(base + p, init);
const post = (p: string, body: unknown) =>
  http(base + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** A raw request line, so the path reaches the server exactly as written (fetch would normalise ../). */
async function rawGet(target: string): Promise<{ status: number; body: string }> {
  const net = await import('node:net');
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), '127.0.0.1', () => sock.end(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    let text = '';
    sock.on('data', (d) => (text += d.toString('latin1')));
    sock.on('end', () => resolve({ status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
    sock.on('error', reject);
  });
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-page-'));
  service = createServer({ dataDir });
  ({ url: base } = await service.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await service?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('page files: throw cases', () => {
  test('nothing outside public/ is served: ../ in any spelling, absolute paths, dot-files, the server itself', async () => {
    const secret = fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8');
    const targets = [
      '/../package.json',
      '/../../package.json',
      '/..%2f..%2fpackage.json',
      '/%2e%2e/%2e%2e/package.json',
      '/%2E%2E%2F%2E%2E%2Fpackage.json',
      '/..%5c..%5cpackage.json',
      '/public/../server.js',
      '/%2fetc%2fpasswd',
      '//etc/passwd',
      '/server.js',
      '/.env',
      '/.git/config',
      '/app.js%00.css',
      '/style.css/',
      '/public',
    ];
    for (const t of targets) {
      const r = await rawGet(t);
      expect({ t, status: r.status }).toEqual({ t, status: expect.any(Number) });
      expect({ t, ok: r.status >= 400 && r.status < 500 }).toEqual({ t, ok: true });
      expect(r.body).not.toContain(secret.slice(0, 40));
      expect(r.body).not.toMatch(/root:x:0:0|createServer/);
    }
  });

  test('a symlink inside public/ that leads outside is not followed; unknown types and folders are 404', async () => {
    const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-pub-'));
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-out-'));
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'top secret');
    fs.writeFileSync(path.join(pub, 'index.html'), '<!doctype html><p>hi</p>');
    fs.writeFileSync(path.join(pub, 'notes.md'), '# not served');
    fs.mkdirSync(path.join(pub, 'dir.js'));
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(pub, 'link.txt'));
    const other = createServer({ dataDir, publicDir: pub });
    const { url } = await other.listen();
    try {
      for (const p of ['/link.txt', '/notes.md', '/dir.js']) {
        const r = await http(url + p);
        expect({ p, status: r.status }).toEqual({ p, status: 404 });
        expect(await r.text()).not.toContain('top secret');
      }
      expect((await http(url + '/')).status).toBe(200);
    } finally {
      await other.close();
      fs.rmSync(pub, { recursive: true, force: true });
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });

  test('publicDir: null serves no page; the API is unchanged; POST / is not a page', async () => {
    const other = createServer({ dataDir, publicDir: null });
    const { url } = await other.listen();
    try {
      const r = await http(url + '/');
      expect(r.status).toBe(404);
      expect((await r.json()).error.code).toBe('not_found');
      expect((await http(url + '/health')).status).toBe(200);
    } finally {
      await other.close();
    }
    const p = await http(base + '/', { method: 'POST' });
    expect(p.status).toBe(404);
    expect((await p.json()).error.code).toBe('not_found');
  });

  test('features must be a boolean; without a model it is 409 like any prediction', async () => {
    const noModel = await post('/predict', { pixels: pixelsOf(0), features: true });
    expect(noModel.status).toBe(409);
    save(new nn.CNN().stateDict(), path.join(dataDir, 'default.pt'));
    for (const features of ['yes', 1, null, {}]) {
      const r = await post('/predict', { pixels: pixelsOf(0), features });
      expect(r.status).toBe(400);
      const e = (await r.json()).error;
      expect(e.code).toBe('invalid_input');
      expect(e.message).toMatch(/Expected true or false for features but received/);
    }
    const bad = await post('/predict', { pixels: pixelsOf(0).slice(1), features: true });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/Expected 784 pixels/);
  });
});

describe('page files', () => {
  test('GET / is the page; app.js and style.css have their types; all three are local', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const html = await page.text();
    expect(html).toMatch(/<script src="app\.js"/);
    expect(html).toMatch(/<link rel="stylesheet" href="style\.css">/);
    // Works offline: nothing from another origin (no CDN, no web fonts).
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    const index = await get('/index.html');
    expect(await index.text()).toBe(html);
    const js = await get('/app.js');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    const css = await get('/style.css');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).not.toMatch(/@import|url\(\s*['"]?https?:/);
  });

  test('ETag revalidation answers 304; HEAD has headers and no body', async () => {
    const first = await get('/style.css');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^W\/"/);
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const again = await get('/style.css', { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    const head = await get('/app.js', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
    expect(await head.text()).toBe('');
  });

  test('POST /predict {features: true} returns layer1 and layer2 maps equal to featureMaps(), for pixels, rows and PNG', async () => {
    save(new nn.CNN().stateDict(), path.join(dataDir, 'default.pt'));
    const pixels = pixelsOf(1);
    const r = await post('/predict', { pixels, features: true });
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body.class).toEqual(expect.any(Number));
    expect(body.probabilities).toHaveLength(10);
    expect(body.featureMaps.map((m: any) => [m.name, m.shape, m.data.length])).toEqual([
      ['layer1', [32, 14, 14], 32 * 14 * 14],
      ['layer2', [64, 7, 7], 64 * 7 * 7],
    ]);
    // The same weights in lib/, the same image scaled to 0..1.
    const { load } = await import('../../lib/serialize');
    const model = new nn.CNN();
    model.loadStateDict(load(path.join(dataDir, 'default.pt')) as any);
    const want = featureMaps(model, pixels.map((v) => v / 255), ['layer1', 'layer2']);
    for (let l = 0; l < 2; l++) {
      const got: number[] = body.featureMaps[l].data;
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[l].data[i]));
      expect(worst).toBeLessThan(1e-4);
      expect(Math.max(...got)).toBeGreaterThan(0);
    }
    // Without features the answer is as before.
    expect(Object.keys(await (await post('/predict', { pixels })).json()).sort()).toEqual(['class', 'model', 'probabilities']);
    // 28 rows of 28 and a PNG of the same digit give the same maps.
    const rows = Array.from({ length: 28 }, (_, y) => pixels.slice(28 * y, 28 * y + 28));
    const fromRows = await (await post('/predict', { pixels: rows, features: true })).json();
    expect(fromRows.featureMaps).toEqual(body.featureMaps);
    const png = new PNG({ width: 28, height: 28 });
    pixels.forEach((v, i) => png.data.set([v, v, v, 255], 4 * i));
    const fromPng = await (await post('/predict', { png: PNG.sync.write(png).toString('base64'), features: true })).json();
    expect(fromPng.featureMaps).toEqual(body.featureMaps);
  });
});
