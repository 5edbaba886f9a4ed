/**
 * Install-time libtorch resolver (scripts/libtorch.js, scripts/install.js).
 * Everything runs against servers on 127.0.0.1 and temp folders; no other network.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as crypto from 'crypto';
import { spawn, spawnSync } from 'child_process';
import { pathToFileURL } from 'url';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const lt = require('../scripts/libtorch');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const installer = require('../scripts/install');

// The record's type is the runtime's (a type-only import: the addon is not loaded).
import type { LibtorchRecord } from '../lib/native';
/** The record with the downloaded zip's checksum (null / false when nothing was downloaded). */
type Rec = LibtorchRecord & { sha256: string | null; sha256Verified: boolean };

const REPO = path.resolve(__dirname, '..');
const FAKE_SMI = path.join(__dirname, 'fixtures', 'fake-nvidia-smi');
const DEBIAN_CMAKE = '/usr/lib/x86_64-linux-gnu/cmake/Torch';

jest.setTimeout(20000);

// ---------------------------------------------------------------------------
// fixtures

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-installer-'));
let tmpCount = 0;
function tmpDir(name = 'd'): string {
  const d = path.join(tmpRoot, `${name}-${++tmpCount}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function write(file: string, text: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/**
 * libtorch_cpu.so of the test zip: over the cache manifest's full-hash limit (8 MiB), so that
 * reuse checks it by size and sampled ends, as the real 0.5 GB one. Compresses to a few KB.
 */
const BIG_LIB = Buffer.alloc(9 * 1048576, 'fake libtorch_cpu ');

/** The files of the official zip's libtorch/ folder that makeFakeLibtorch writes (cpu build). */
const OFFICIAL_FILES = [
  'build-hash',
  'build-version',
  'include/ATen/ATen.h',
  'include/c10/macros/Macros.h',
  'include/torch/csrc/api/include/torch/torch.h',
  'include/torch/script.h',
  'lib/libc10.so',
  'lib/libtorch.so',
  'lib/libtorch_cpu.so',
  'share/cmake/Torch/TorchConfig.cmake',
  'share/cmake/Torch/TorchConfigVersion.cmake',
];

/**
 * A fake libtorch in the official zip layout under `root` (what the zip's libtorch/ folder
 * holds): share/cmake/Torch/TorchConfig{,Version}.cmake, lib/libtorch.so, lib/libtorch_cpu.so,
 * lib/libc10.so (and the CUDA libraries for a CUDA build), include/{torch,ATen,c10}/...,
 * build-version (e.g. `2.9.1+cpu`) and build-hash.
 */
function makeFakeLibtorch(root: string, opts: { buildVersion?: string | null; cudaLib?: boolean; bigLib?: boolean } = {}): string {
  write(path.join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'), '# fake TorchConfig.cmake\nset(TORCH_FOUND TRUE)\n');
  write(path.join(root, 'share', 'cmake', 'Torch', 'TorchConfigVersion.cmake'), 'set(PACKAGE_VERSION "2.9.1")\n');
  write(path.join(root, 'lib', 'libtorch.so'), 'not really a shared library\n');
  write(path.join(root, 'lib', 'libtorch_cpu.so'), opts.bigLib ? BIG_LIB : 'fake libtorch_cpu\n');
  write(path.join(root, 'lib', 'libc10.so'), 'fake libc10\n');
  if (opts.cudaLib) {
    write(path.join(root, 'lib', 'libtorch_cuda.so'), 'fake\n');
    write(path.join(root, 'lib', 'libc10_cuda.so'), 'fake\n');
  }
  write(path.join(root, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h'), '#pragma once\n');
  write(path.join(root, 'include', 'torch', 'script.h'), '#pragma once\n');
  write(path.join(root, 'include', 'ATen', 'ATen.h'), '#pragma once\n');
  write(path.join(root, 'include', 'c10', 'macros', 'Macros.h'), '#pragma once\n');
  const bv = opts.buildVersion === undefined ? '2.9.1+cpu' : opts.buildVersion;
  if (bv) {
    write(path.join(root, 'build-version'), `${bv}\n`);
    write(path.join(root, 'build-hash'), '5811a8d7da873dd699ff6687092c225caffcf1bb\n');
  }
  return root;
}

function findPython(): string | null {
  for (const p of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(p, ['-c', 'print(1)'], { encoding: 'utf8' });
    if (r.status === 0) return p;
  }
  return null;
}
const PYTHON = findPython();

/** Deflated, with folder entries, as the official zips are. */
const ZIP_PY = `import os, sys, zipfile
out, top = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
    for d, dirs, files in os.walk(top):
        dirs.sort()
        z.write(d)
        for f in sorted(files):
            z.write(os.path.join(d, f))
`;

/** zip `dir`'s entry `entry` (relative to dir) into `out` with python3's zipfile. */
function makeZip(dir: string, entry: string, out: string): Buffer {
  if (!PYTHON) throw new Error('python3 is needed to build the test zip');
  const r = spawnSync(PYTHON, ['-c', ZIP_PY, out, entry], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`zip failed: ${r.stderr}`);
  return fs.readFileSync(out);
}

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

// the official cpu zip's layout: libtorch/ with build-version 2.9.1+cpu
const zipSrc = tmpDir('zipsrc');
makeFakeLibtorch(path.join(zipSrc, 'libtorch'), { bigLib: true });
const ZIP_PATH = path.join(tmpRoot, 'libtorch-fake.zip');
const ZIP = makeZip(zipSrc, 'libtorch', ZIP_PATH);
const ZIP_SHA = sha256(ZIP);
// the official cu128 zip's layout: build-version 2.9.1+cu128, CUDA libraries in lib/
const cuSrc = tmpDir('cusrc');
makeFakeLibtorch(path.join(cuSrc, 'libtorch'), { buildVersion: '2.9.1+cu128', cudaLib: true });
const CU_ZIP = makeZip(cuSrc, 'libtorch', path.join(tmpRoot, 'libtorch-fake-cu128.zip'));
const CU_SHA = sha256(CU_ZIP);
const badSrc = tmpDir('badsrc');
write(path.join(badSrc, 'notlibtorch', 'README'), 'nothing here\n');
const BAD_ZIP = makeZip(badSrc, 'notlibtorch', path.join(tmpRoot, 'not-libtorch.zip'));

const ENV_DROP = /^(LIBTORCH|LIBTORCH_.*|TORCHNODE_.*|PYTHON|NVIDIA_SMI|CMAKE_PREFIX_PATH|Torch_DIR|XDG_CACHE_HOME|INIT_CWD|https?_proxy|HTTPS?_PROXY|ALL_PROXY|all_proxy|NO_PROXY|no_proxy)$/;

/** A clean env: no user settings, no apt, no GPU, a fresh cache and config in temp folders. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!ENV_DROP.test(k)) env[k] = v;
  Object.assign(env, {
    TORCHNODE_NO_APT: '1',
    NVIDIA_SMI: path.join(tmpRoot, 'no-such-nvidia-smi'),
    TORCHNODE_CACHE: tmpDir('cache'),
    TORCHNODE_CONFIG: path.join(tmpDir('cfg'), 'libtorch.json'),
    TORCHNODE_CONNECT_TIMEOUT_MS: '2000',
    TORCHNODE_IDLE_TIMEOUT_MS: '2000',
  });
  Object.assign(env, extra);
  return env;
}

const logs: string[] = [];
const quiet = { log: (m: string) => logs.push(m), progressStream: null, retryDelayMs: 50 };

function ls(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; status?: number }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** Like spawnSync, but keeps this process's event loop (and so the test servers) running. */
function runNode(args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

// ---------------------------------------------------------------------------
// servers on 127.0.0.1

const hits: Record<string, number> = {};
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const p = (req.url || '/').split('?')[0];
  hits[p] = (hits[p] || 0) + 1;
  const sendZip = (body: Buffer) => {
    res.writeHead(200, { 'Content-Type': 'application/zip', 'Content-Length': body.length });
    res.end(body);
  };
  const truncate = () => {
    res.writeHead(200, { 'Content-Type': 'application/zip', 'Content-Length': ZIP.length });
    res.write(ZIP.subarray(0, Math.floor(ZIP.length / 2)), () => req.socket.destroy());
  };
  switch (p) {
    case '/libtorch.zip':
    case '/install.zip':
    case '/cached.zip':
    case '/nosum.zip':
    case '/tamper.zip':
    case '/official/cpu.zip':
      return sendZip(ZIP);
    case '/official/cu128.zip':
      return sendZip(CU_ZIP);
    case '/not-libtorch.zip':
      return sendZip(BAD_ZIP);
    case '/redirect':
      res.writeHead(302, { Location: '/libtorch.zip' });
      return void res.end();
    case '/loop':
      res.writeHead(302, { Location: '/loop' });
      return void res.end();
    case '/broken':
      res.writeHead(500);
      return void res.end('boom');
    case '/truncate':
      return truncate();
    case '/stall':
      res.writeHead(200, { 'Content-Type': 'application/zip', 'Content-Length': ZIP.length });
      res.write(ZIP.subarray(0, 100)); // then nothing, connection kept open
      return;
    case '/flaky':
      return hits[p] === 1 ? truncate() : sendZip(ZIP);
    default:
      res.writeHead(404);
      res.end('not found');
  }
}

let server: http.Server;
let base = '';
// accepts connections and never answers
let silent: net.Server;
const silentSockets: net.Socket[] = [];
let silentPort = 0;
// a small forward proxy: absolute-form GET for http, CONNECT for https
let proxy: http.Server;
let proxyPort = 0;
const proxyLog: string[] = [];
const tunnelSockets: net.Socket[] = [];
let proxyAuthSeen: string | undefined;
// https origin with a self-signed certificate (when openssl is available)
let tlsServer: https.Server | null = null;
let tlsBase = '';
let tlsCert: string | null = null;

function listen(s: net.Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));
}

beforeAll(async () => {
  server = http.createServer(handler);
  base = `http://127.0.0.1:${await listen(server)}`;

  silent = net.createServer((sock) => {
    silentSockets.push(sock);
    sock.on('error', () => undefined);
  });
  silentPort = await listen(silent);

  proxy = http.createServer((req, res) => {
    proxyLog.push(`${req.method} ${req.url}`);
    const up = http.request(req.url as string, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode || 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    proxyLog.push(`CONNECT ${req.url}`);
    proxyAuthSeen = req.headers['proxy-authorization'] as string | undefined;
    const [host, port] = (req.url as string).split(':');
    const up = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    tunnelSockets.push(client, up);
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  proxyPort = await listen(proxy);

  const ssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (ssl.status === 0) {
    const d = tmpDir('tls');
    const r = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { cwd: d, encoding: 'utf8' },
    );
    if (r.status === 0) {
      tlsCert = fs.readFileSync(path.join(d, 'cert.pem'), 'utf8');
      tlsServer = https.createServer({ key: fs.readFileSync(path.join(d, 'key.pem')), cert: tlsCert }, handler);
      tlsBase = `https://127.0.0.1:${await listen(tlsServer)}`;
    }
  }
});

afterAll(async () => {
  for (const s of [...silentSockets, ...tunnelSockets]) s.destroy();
  for (const s of [server, proxy, tlsServer]) {
    if (!s) continue;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await new Promise((r) => silent.close(r));
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

beforeEach(() => {
  logs.length = 0;
});

// ===========================================================================
// failures first

describe('failures', () => {
  test('LIBTORCH pointing at a folder without libtorch throws, naming the folder and what was looked for', async () => {
    const empty = tmpDir('empty');
    fs.mkdirSync(path.join(empty, 'lib'));
    const e = await rejection(lt.resolveLibtorch(baseEnv({ LIBTORCH: empty }), quiet));
    expect(e.message).toContain(`LIBTORCH=${empty}`);
    expect(e.message).toContain('TorchConfig.cmake');
    expect(e.message).toContain(path.join(empty, 'share', 'cmake', 'Torch'));
    expect(e.message).toContain(path.join(empty, 'lib', 'cmake', 'Torch'));
  });

  test('LIBTORCH pointing at a missing path throws (no fall-through to the system libtorch)', async () => {
    const missing = path.join(tmpRoot, 'does-not-exist');
    const e = await rejection(lt.resolveLibtorch(baseEnv({ LIBTORCH: missing }), quiet));
    expect(e.message).toContain(missing);
    expect(e.message).toMatch(/does not exist/);
  });

  test('LIBTORCH with TorchConfig.cmake but no libtorch.so names what is missing', async () => {
    const p = makeFakeLibtorch(tmpDir('partial'));
    fs.rmSync(path.join(p, 'lib', 'libtorch.so'));
    const e = await rejection(lt.resolveLibtorch(baseEnv({ LIBTORCH: p }), quiet));
    expect(e.message).toContain('incomplete');
    expect(e.message).toContain('libtorch.so');
    expect(e.message).toContain(path.join(p, 'lib'));
  });

  test('TORCHNODE_VARIANT with an unknown value is rejected with the allowed values', () => {
    const e = thrown(() => lt.requestedBuild(baseEnv({ TORCHNODE_VARIANT: 'cu999' })));
    expect(e.message).toContain('TORCHNODE_VARIANT=cu999');
    expect(e.message).toContain('cpu, cu126, cu128, cu130');
  });

  test('wrong checksum: clear error, download deleted, nothing left in the cache (no temp folders)', async () => {
    const env = baseEnv({ LIBTORCH_URL: `${base}/libtorch.zip`, LIBTORCH_SHA256: '0'.repeat(64), TORCHNODE_NO_SYSTEM: '1' });
    const e = await rejection(lt.resolveLibtorch(env, quiet));
    expect(e.code).toBe('ETORCHNODE_CHECKSUM');
    expect(e.message).toContain(`${base}/libtorch.zip`);
    expect(e.message).toContain(`expected sha256 ${'0'.repeat(64)}`);
    expect(e.message).toContain(`got ${ZIP_SHA}`);
    expect(ls(env.TORCHNODE_CACHE as string)).toEqual([]);
  });

  test('a malformed LIBTORCH_SHA256 is rejected before downloading', async () => {
    const cache = tmpDir('cache');
    const before = hits['/libtorch.zip'] || 0;
    const e = await rejection(lt.downloadLibtorch({ url: `${base}/libtorch.zip`, sha256: 'abc', cacheDir: cache, version: '2.9.1', variant: 'cpu', ...quiet }));
    expect(e.message).toContain('64 hex digits');
    expect(hits['/libtorch.zip'] || 0).toBe(before);
  });

  test('HTTP 404: error names the URL and the status, no retry', async () => {
    const cache = tmpDir('cache');
    const u = `${base}/missing.zip`;
    const e = await rejection(lt.downloadLibtorch({ url: u, cacheDir: cache, version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet }));
    expect(e.message).toContain(u);
    expect(e.message).toContain('HTTP 404');
    expect(e.status).toBe(404);
    expect(hits['/missing.zip']).toBe(1);
    expect(ls(cache)).toEqual([]);
  });

  test('HTTP 500: error names the URL and the status after one retry', async () => {
    const cache = tmpDir('cache');
    const u = `${base}/broken`;
    const e = await rejection(lt.downloadLibtorch({ url: u, cacheDir: cache, version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet }));
    expect(e.message).toContain(u);
    expect(e.message).toContain('HTTP 500');
    expect(hits['/broken']).toBe(2);
    expect(ls(cache)).toEqual([]);
  });

  test('through resolveLibtorch a 404 ends in one error listing every option', async () => {
    const env = baseEnv({ LIBTORCH_URL: `${base}/gone.zip` });
    const e = await rejection(lt.resolveLibtorch(env, { ...quiet, systemCandidates: [] }));
    expect(e.code).toBe('ETORCHNODE_NOT_FOUND');
    expect(e.message).toContain(`${base}/gone.zip: HTTP 404`);
    for (const opt of ['LIBTORCH=', 'LIBTORCH_USE_PYTORCH=1', 'sudo apt-get install libtorch-dev libgloo-dev', 'TORCHNODE_VARIANT=', 'LIBTORCH_URL=', 'TORCHNODE_CACHE=', 'HTTPS_PROXY=']) {
      expect(e.message).toContain(opt);
    }
    expect(e.message).toContain('apt: disabled by TORCHNODE_NO_APT=1');
  });

  test('more than 5 redirects is an error naming the URL', async () => {
    const e = await rejection(lt.downloadLibtorch({ url: `${base}/loop`, cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet }));
    expect(e.message).toContain(`${base}/loop`);
    expect(e.message).toContain('more than 5 redirects');
  });

  test('a server that accepts and never answers: gives up within the idle timeout (one retry), resolve moves on', async () => {
    const u = `http://127.0.0.1:${silentPort}/libtorch.zip`;
    const env = baseEnv({ TORCHNODE_IDLE_TIMEOUT_MS: '300', TORCHNODE_CONNECT_TIMEOUT_MS: '300' });
    const cache = env.TORCHNODE_CACHE as string;
    const t0 = Date.now();
    const e = await rejection(lt.downloadLibtorch({ url: u, cacheDir: cache, version: '2.9.1', variant: 'cpu', env, ...quiet }));
    const elapsed = Date.now() - t0;
    expect(e.code).toBe('ETORCHNODE_TIMEOUT');
    expect(e.message).toContain(u);
    expect(e.message).toContain('no data received for 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(550); // two attempts
    expect(elapsed).toBeLessThan(3000);
    expect(ls(cache)).toEqual([]);

    // the resolver moves on to the next step (here: apt, disabled) and reports it
    const t1 = Date.now();
    const e2 = await rejection(lt.resolveLibtorch({ ...env, LIBTORCH_URL: u, TORCHNODE_NO_SYSTEM: '1' }, quiet));
    expect(Date.now() - t1).toBeLessThan(3000);
    expect(e2.code).toBe('ETORCHNODE_NOT_FOUND');
    expect(e2.message).toContain('TORCHNODE_IDLE_TIMEOUT_MS');
  });

  test('a body that stalls mid-way: idle timeout, nothing left in the cache', async () => {
    const env = baseEnv({ TORCHNODE_IDLE_TIMEOUT_MS: '300' });
    const cache = env.TORCHNODE_CACHE as string;
    const t0 = Date.now();
    const e = await rejection(lt.downloadLibtorch({ url: `${base}/stall`, cacheDir: cache, version: '2.9.1', variant: 'cpu', env, ...quiet }));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(e.message).toContain(`${base}/stall: no data received for 300 ms`);
    expect(hits['/stall']).toBe(2);
    expect(ls(cache)).toEqual([]);
  });

  test('a proxy that never answers CONNECT: connect timeout', async () => {
    const env = baseEnv({ HTTPS_PROXY: `http://127.0.0.1:${silentPort}`, TORCHNODE_CONNECT_TIMEOUT_MS: '300' });
    const t0 = Date.now();
    const e = await rejection(lt.downloadLibtorch({ url: 'https://127.0.0.1:9/libtorch.zip', cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env, ...quiet, retries: 0 }));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(e.message).toContain('no connection within 300 ms');
    expect(e.message).toContain(`via proxy http://127.0.0.1:${silentPort}`);
  });

  test('interrupted download (connection closed mid-body): error, nothing trusted in the cache', async () => {
    const env = baseEnv();
    const cache = env.TORCHNODE_CACHE as string;
    const u = `${base}/truncate`;
    const e = await rejection(lt.downloadLibtorch({ url: u, cacheDir: cache, version: '2.9.1', variant: 'cpu', env, ...quiet }));
    expect(e.code).toBe('ETORCHNODE_TRUNCATED');
    expect(e.message).toContain(u);
    expect(hits['/truncate']).toBe(2); // one retry
    expect(ls(cache)).toEqual([]);
    // a later offline resolve does not find anything to trust
    const e2 = await rejection(lt.resolveLibtorch({ ...env, TORCHNODE_NO_DOWNLOAD: '1', TORCHNODE_NO_SYSTEM: '1' }, quiet));
    expect(e2.message).toContain(`cache: no ${path.join(cache, 'libtorch-2.9.1-cpu')}`);
  });

  test('a half-unpacked copy left by a killed install is neither trusted nor kept', async () => {
    const env = baseEnv();
    const cache = env.TORCHNODE_CACHE as string;
    // pid far above pid_max: that install is gone
    const stale = path.join(cache, '.tmp-99999999-deadbeef');
    makeFakeLibtorch(path.join(stale, 'unpacked', 'libtorch'));
    const e = await rejection(lt.resolveLibtorch({ ...env, TORCHNODE_NO_DOWNLOAD: '1', TORCHNODE_NO_SYSTEM: '1' }, quiet));
    expect(e.code).toBe('ETORCHNODE_NOT_FOUND');
    // the next download sweeps it away
    await lt.downloadLibtorch({ url: `${base}/libtorch.zip`, sha256: ZIP_SHA, cacheDir: cache, version: '2.9.1', variant: 'cpu', env, ...quiet });
    expect(ls(cache)).toEqual(['libtorch-2.9.1-cpu']);
  });

  test('an archive without libtorch inside: clear error, cache left empty', async () => {
    const cache = tmpDir('cache');
    const u = `${base}/not-libtorch.zip`;
    const e = await rejection(lt.downloadLibtorch({ url: u, cacheDir: cache, version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet }));
    expect(e.code).toBe('ETORCHNODE_ARCHIVE');
    expect(e.message).toContain(u);
    expect(e.message).toContain('TorchConfig.cmake');
    expect(ls(cache)).toEqual([]);
  });

  test('file:// URL to a missing file names the path', async () => {
    const missing = path.join(tmpRoot, 'nope.zip');
    const e = await rejection(lt.downloadLibtorch({ url: pathToFileURL(missing).href, cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet }));
    expect(e.message).toContain(missing);
  });

  test('LIBTORCH_USE_PYTORCH=1 with no usable python torch throws, naming each python tried', async () => {
    const e = await rejection(lt.resolveLibtorch(baseEnv({ LIBTORCH_USE_PYTORCH: '1' }), { ...quiet, pythonCandidates: [path.join(tmpRoot, 'no-python')] }));
    expect(e.message).toContain('LIBTORCH_USE_PYTORCH=1');
    expect(e.message).toContain(path.join(tmpRoot, 'no-python'));
  });

  test('apt-get failing: apt is tried (install, update, install) and the final error says so', async () => {
    const d = tmpDir('apt');
    const calls = path.join(d, 'calls');
    const fakeApt = path.join(d, 'apt-get');
    write(fakeApt, `#!/bin/sh\necho "$*" >> "${calls}"\n[ "$1" = update ] && exit 0\necho "E: Unable to locate package libtorch-dev" >&2\nexit 100\n`);
    fs.chmodSync(fakeApt, 0o755);
    const env = baseEnv({ TORCHNODE_NO_DOWNLOAD: '1' });
    delete env.TORCHNODE_NO_APT;
    const e = await rejection(
      lt.resolveLibtorch(env, { ...quiet, aptGet: fakeApt, isRoot: true, isDebian: true, systemCandidates: [path.join(d, 'nowhere')] }),
    );
    expect(fs.readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['install -y libtorch-dev libgloo-dev', 'update', 'install -y libtorch-dev libgloo-dev']);
    expect(e.message).toContain('apt:');
    expect(e.message).toContain('Unable to locate package libtorch-dev');
    expect(e.message).toContain('sudo apt-get install libtorch-dev');
  });

  test('install.js: an expected failure exits 1 with the message and no stack trace', () => {
    const missing = path.join(tmpRoot, 'no-libtorch-here');
    const env = baseEnv({ LIBTORCH: missing, TORCHNODE_SKIP_BUILD: '1', TORCHNODE_SKIP_TS: '1' });
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'install.js')], { env, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`torchnode: LIBTORCH=${missing}`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(fs.existsSync(env.TORCHNODE_CONFIG as string)).toBe(false);
  });
});

// ===========================================================================
// normal cases

describe('download and cache', () => {
  test('correct checksum: unpacked into the cache (how=download); the second resolve uses the cache without contacting the server', async () => {
    const env = baseEnv({ LIBTORCH_URL: `${base}/cached.zip`, LIBTORCH_SHA256: ZIP_SHA, TORCHNODE_NO_SYSTEM: '1' });
    const cache = env.TORCHNODE_CACHE as string;
    const r1: LibtorchRecord = await lt.resolveLibtorch(env, quiet);
    expect(r1.how).toBe('download');
    expect(r1.version).toBe('2.9.1');
    expect(r1.variant).toBe('cpu');
    expect(r1.cuda).toBe(false);
    const dir = path.join(cache, 'libtorch-2.9.1-cpu');
    expect(r1.path).toBe(dir);
    expect(r1.cmakeDir).toBe(path.join(dir, 'share', 'cmake', 'Torch'));
    expect(r1.libDir).toBe(path.join(dir, 'lib'));
    expect(r1.includeDirs).toEqual([path.join(dir, 'include'), path.join(dir, 'include', 'torch', 'csrc', 'api', 'include')]);
    expect(r1.reason).toContain('sha256 verified');
    expect(ls(cache)).toEqual(['libtorch-2.9.1-cpu']);
    expect(fs.existsSync(path.join(dir, 'lib', 'libtorch.so'))).toBe(true);
    expect(hits['/cached.zip']).toBe(1);

    const r2: LibtorchRecord = await lt.resolveLibtorch(env, quiet);
    expect(r2.how).toBe('cache');
    expect(r2.path).toBe(dir);
    expect(lt.recordKey(r2)).toBe(lt.recordKey(r1));
    expect(hits['/cached.zip']).toBe(1);
    expect(lt.describeRecord(r2)).toMatch(/^torchnode: using libtorch 2\.9\.1 \(cpu\) from .* \(cache: /);
  });

  test('the cache is keyed by the configured URL: a copy from another URL is not reused', async () => {
    const env = baseEnv({ LIBTORCH_URL: `${base}/libtorch.zip`, TORCHNODE_NO_SYSTEM: '1' });
    await lt.resolveLibtorch(env, quiet);
    const r = await lt.resolveLibtorch({ ...env, LIBTORCH_URL: `${base}/nosum.zip` }, quiet);
    expect(r.how).toBe('download');
    expect(ls(env.TORCHNODE_CACHE as string)).toEqual(['libtorch-2.9.1-cpu']);
  });

  test('no pinned or given checksum: downloads with a warning line', async () => {
    const env = baseEnv({ LIBTORCH_URL: `${base}/nosum.zip`, TORCHNODE_NO_SYSTEM: '1' });
    const r: LibtorchRecord = await lt.resolveLibtorch(env, quiet);
    expect(r.how).toBe('download');
    expect(r.reason).toContain('NOT verified');
    expect(logs.some((l) => /warning: no sha256 pinned or given/.test(l) && l.includes('LIBTORCH_SHA256'))).toBe(true);
  });

  test('redirects are followed', async () => {
    const cache = tmpDir('cache');
    const dl = await lt.downloadLibtorch({ url: `${base}/redirect`, sha256: ZIP_SHA, cacheDir: cache, version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet });
    expect(dl.finalUrl).toBe(`${base}/libtorch.zip`);
    expect(dl.verified).toBe(true);
    expect(ls(cache)).toEqual(['libtorch-2.9.1-cpu']);
  });

  test('a dropped connection is retried once and then succeeds', async () => {
    const cache = tmpDir('cache');
    const dl = await lt.downloadLibtorch({ url: `${base}/flaky`, sha256: ZIP_SHA, cacheDir: cache, version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet });
    expect(dl.sha256).toBe(ZIP_SHA);
    expect(hits['/flaky']).toBe(2);
    expect(logs.some((l) => l.includes('retrying'))).toBe(true);
  });

  test('file:// URL works (and so does a plain path)', async () => {
    const env = baseEnv({ LIBTORCH_URL: pathToFileURL(ZIP_PATH).href, LIBTORCH_SHA256: ZIP_SHA, TORCHNODE_NO_SYSTEM: '1' });
    const r: LibtorchRecord = await lt.resolveLibtorch(env, quiet);
    expect(r.how).toBe('download');
    expect(r.version).toBe('2.9.1');
    const dl = await lt.downloadLibtorch({ url: ZIP_PATH, sha256: ZIP_SHA, cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env, ...quiet });
    expect(dl.url).toBe(pathToFileURL(ZIP_PATH).href);
  });

  test('unpacks with python3 -m zipfile when asked (the fallback when unzip is absent)', async () => {
    const cache = tmpDir('cache');
    const dl = await lt.downloadLibtorch({ url: `${base}/libtorch.zip`, sha256: ZIP_SHA, cacheDir: cache, version: '2.9.1', variant: 'cpu', env: baseEnv(), ...quiet, unzipTool: 'python' });
    expect(dl.unzipTool).toBe('python');
    expect(dl.layout.ok).toBe(true);
  });

  test('plain lines of progress when stderr is not a TTY', async () => {
    const lines: string[] = [];
    const sink = { isTTY: false, write: (s: string) => lines.push(s) };
    await lt.downloadLibtorch({ url: `${base}/libtorch.zip`, sha256: ZIP_SHA, cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env: baseEnv(), log: quiet.log, progressStream: sink });
    expect(lines[0]).toContain(`downloading ${base}/libtorch.zip`);
    expect(lines.some((l) => l.includes('download 100%'))).toBe(true);
    expect(lines.every((l) => !l.includes('\r'))).toBe(true);
  });

  test('HTTP_PROXY: http downloads go through the proxy; NO_PROXY bypasses it', async () => {
    proxyLog.length = 0;
    const env = baseEnv({ HTTP_PROXY: `http://127.0.0.1:${proxyPort}` });
    await lt.downloadLibtorch({ url: `${base}/libtorch.zip`, sha256: ZIP_SHA, cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env, ...quiet });
    expect(proxyLog).toEqual([`GET ${base}/libtorch.zip`]);

    proxyLog.length = 0;
    const env2 = baseEnv({ HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'localhost,127.0.0.1' });
    await lt.downloadLibtorch({ url: `${base}/libtorch.zip`, sha256: ZIP_SHA, cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env: env2, ...quiet });
    expect(proxyLog).toEqual([]);
  });

  test('HTTPS_PROXY: https downloads tunnel through CONNECT (with proxy credentials)', async () => {
    if (!tlsServer || !tlsCert) {
      console.log('skipped: openssl could not make a test certificate');
      return;
    }
    proxyLog.length = 0;
    proxyAuthSeen = undefined;
    const env = baseEnv({ HTTPS_PROXY: `http://user:p%40ss@127.0.0.1:${proxyPort}` });
    const before = hits['/libtorch.zip'] || 0;
    const dl = await lt.downloadLibtorch({ url: `${tlsBase}/libtorch.zip`, sha256: ZIP_SHA, cacheDir: tmpDir('cache'), version: '2.9.1', variant: 'cpu', env, ...quiet, ca: tlsCert });
    expect(dl.verified).toBe(true);
    expect(proxyLog).toEqual([`CONNECT ${tlsBase.replace('https://', '')}`]);
    expect(proxyAuthSeen).toBe(`Basic ${Buffer.from('user:p@ss').toString('base64')}`);
    expect(hits['/libtorch.zip']).toBe(before + 1);
  });
});

describe('the official zip (served locally from the pinned table)', () => {
  /** Point the pinned table's entry at the local server while fn runs. */
  async function withPinnedUrl<T>(variant: string, u: string, fn: () => Promise<T>): Promise<T> {
    const build = lt.PINNED.builds['linux-x64'][variant];
    const old = build.url;
    build.url = u;
    try {
      return await fn();
    } finally {
      build.url = old;
    }
  }
  const linux = { platform: 'linux', arch: 'x64', nvidiaSmiText: null };

  test('cpu: libtorch/ unpacked whole into libtorch-2.9.1-cpu/, and the record comes from its layout (version from build-version)', async () => {
    const env = baseEnv({ TORCHNODE_NO_SYSTEM: '1' });
    const cache = env.TORCHNODE_CACHE as string;
    const u = `${base}/official/cpu.zip`;
    const r: Rec = await withPinnedUrl('cpu', u, () => lt.resolveLibtorch(env, { ...quiet, ...linux }));
    const dir = path.join(cache, 'libtorch-2.9.1-cpu');
    expect(r).toMatchObject({
      path: dir,
      cmakeDir: path.join(dir, 'share', 'cmake', 'Torch'),
      libDir: path.join(dir, 'lib'),
      includeDirs: [path.join(dir, 'include'), path.join(dir, 'include', 'torch', 'csrc', 'api', 'include')],
      version: '2.9.1',
      variant: 'cpu',
      cuda: false,
      how: 'download',
      sha256: ZIP_SHA,
      sha256Verified: false,
    });
    expect(r.reason).toBe(`downloaded ${u}, sha256 NOT verified, into ${dir}; auto: no NVIDIA driver found (nvidia-smi missing or failed)`);
    expect(logs).toContain(`torchnode: warning: no sha256 pinned or given for ${u}; the download is not verified (set LIBTORCH_SHA256=<sha256> to verify it)`);
    expect(lt.checksumLine(r)).toBe(`torchnode: sha256 of the libtorch zip: LIBTORCH_SHA256=${ZIP_SHA} (not verified; set LIBTORCH_SHA256 to this value to pin it)`);
    // the whole tree, nothing else but the marker
    expect(ls(cache)).toEqual(['libtorch-2.9.1-cpu']);
    for (const f of OFFICIAL_FILES) expect(fs.existsSync(path.join(dir, f))).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'lib', 'libtorch_cpu.so')).equals(BIG_LIB)).toBe(true);
    const layout = lt.inspectPrefix(dir);
    expect(layout.versionSource).toBe('build-version');
    // the marker: the zip's sha256 and the manifest of what it unpacked to
    const marker = JSON.parse(fs.readFileSync(path.join(dir, '.torchnode-download.json'), 'utf8'));
    expect(marker).toMatchObject({ url: u, finalUrl: u, sha256: ZIP_SHA, verified: false, bytes: ZIP.length, version: '2.9.1', variant: 'cpu' });
    expect(Object.keys(marker.manifest.files).sort()).toEqual(OFFICIAL_FILES);
    expect(marker.manifest.files['build-version']).toBe(`10 ${sha256(Buffer.from('2.9.1+cpu\n'))}`);
    expect(marker.manifest.files['lib/libtorch_cpu.so']).toMatch(new RegExp(`^${BIG_LIB.length} [0-9a-f]{64}$`));
    expect(marker.manifest.files['lib/libtorch_cpu.so']).not.toContain(sha256(BIG_LIB)); // sampled, not hashed whole
    // libtorch.json round trip keeps every field
    lt.writeRecord(r, env.TORCHNODE_CONFIG);
    expect(lt.readRecord(env.TORCHNODE_CONFIG)).toEqual(r);
  });

  test('cu128: variant and CUDA from build-version 2.9.1+cu128 and lib/libtorch_cuda.so; reuse with LIBTORCH_SHA256 is verified', async () => {
    const env = baseEnv({ TORCHNODE_NO_SYSTEM: '1', TORCHNODE_VARIANT: 'cu128' });
    const dir = path.join(env.TORCHNODE_CACHE as string, 'libtorch-2.9.1-cu128');
    const u = `${base}/official/cu128.zip`;
    const r: Rec = await withPinnedUrl('cu128', u, () => lt.resolveLibtorch(env, { ...quiet, ...linux }));
    expect(r).toMatchObject({ path: dir, version: '2.9.1', variant: 'cu128', cuda: true, how: 'download', sha256: CU_SHA, sha256Verified: false });
    expect(r.reason).toContain('TORCHNODE_VARIANT=cu128');
    expect(fs.existsSync(path.join(dir, 'lib', 'libtorch_cuda.so'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'lib', 'libc10_cuda.so'))).toBe(true);

    const before = hits['/official/cu128.zip'];
    const r2: Rec = await withPinnedUrl('cu128', u, () => lt.resolveLibtorch({ ...env, LIBTORCH_SHA256: CU_SHA }, { ...quiet, ...linux }));
    expect(r2).toMatchObject({ path: dir, variant: 'cu128', cuda: true, how: 'cache', sha256: CU_SHA, sha256Verified: true });
    expect(r2.reason).toContain(`downloaded earlier from ${u}, unchanged since (13 files checked)`);
    expect(lt.checksumLine(r2)).toBe(`torchnode: sha256 of the libtorch zip: LIBTORCH_SHA256=${CU_SHA} (verified)`);
    expect(hits['/official/cu128.zip']).toBe(before);
  });
});

describe('reusing the cache: checked against the manifest', () => {
  /** A fresh cache with one unverified download of /tamper.zip. */
  async function downloaded(): Promise<{ env: NodeJS.ProcessEnv; dir: string }> {
    const env = baseEnv({ LIBTORCH_URL: `${base}/tamper.zip`, TORCHNODE_NO_SYSTEM: '1' });
    const r: Rec = await lt.resolveLibtorch(env, quiet);
    expect(r.how).toBe('download');
    return { env, dir: r.path };
  }
  const overwriteStart = (file: string, bytes: string) => {
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, bytes, 0);
    fs.closeSync(fd);
  };

  test('an intact copy is reused, with the zip\'s sha256 in the record', async () => {
    const { env, dir } = await downloaded();
    const before = hits['/tamper.zip'];
    const r: Rec = await lt.resolveLibtorch(env, quiet);
    expect(r).toMatchObject({ how: 'cache', path: dir, sha256: ZIP_SHA, sha256Verified: false });
    expect(r.reason).toContain(`unchanged since (${OFFICIAL_FILES.length} files checked)`);
    expect(lt.recordKey(r)).toContain(ZIP_SHA);
    expect(hits['/tamper.zip']).toBe(before);
  });

  test.each([
    ['a CMake file edited (same size)', (d: string) => {
      const f = path.join(d, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
      write(f, fs.readFileSync(f, 'utf8').replace('TRUE', 'OOPS'));
    }, 'share/cmake/Torch/TorchConfig.cmake changed'],
    ['build-version rewritten', (d: string) => write(path.join(d, 'build-version'), '2.9.1+cu128\n'), 'build-version is 12 bytes, was 10'],
    ['a library deleted', (d: string) => fs.rmSync(path.join(d, 'lib', 'libc10.so')), 'lib/libc10.so is missing'],
    ['a big library truncated', (d: string) => fs.truncateSync(path.join(d, 'lib', 'libtorch_cpu.so'), 1048576), `lib/libtorch_cpu.so is 1048576 bytes, was ${BIG_LIB.length}`],
    ['a big library\'s start overwritten', (d: string) => overwriteStart(path.join(d, 'lib', 'libtorch_cpu.so'), '\x7fELF'), 'lib/libtorch_cpu.so changed'],
    ['a file added', (d: string) => write(path.join(d, 'lib', 'libextra.so'), 'x'), 'lib/libextra.so was added'],
  ])('%s: detected, not used, downloaded again', async (_name, tamper, what) => {
    const { env, dir } = await downloaded();
    const before = hits['/tamper.zip'];
    tamper(dir);
    logs.length = 0;
    const r: Rec = await lt.resolveLibtorch(env, quiet);
    expect(r.how).toBe('download');
    expect(r.sha256).toBe(ZIP_SHA);
    expect(hits['/tamper.zip']).toBe(before + 1);
    expect(logs[0]).toBe(`torchnode: warning: ${dir} changed since it was downloaded (${what}), so it is not used; the next download replaces it`);
    // the fresh copy replaced it and is reused
    const r2: Rec = await lt.resolveLibtorch(env, quiet);
    expect(r2.how).toBe('cache');
    expect(hits['/tamper.zip']).toBe(before + 1);
    expect(ls(env.TORCHNODE_CACHE as string)).toEqual(['libtorch-2.9.1-cpu']);
  });

  test('a changed copy with no download possible: one error naming what changed', async () => {
    const { env, dir } = await downloaded();
    fs.rmSync(path.join(dir, 'lib', 'libc10.so'));
    write(path.join(dir, 'include', 'ATen', 'ATen.h'), '// edited\n');
    const e = await rejection(lt.resolveLibtorch({ ...env, TORCHNODE_NO_DOWNLOAD: '1' }, quiet));
    expect(e.code).toBe('ETORCHNODE_NOT_FOUND');
    expect(e.message).toContain(`cache: ${dir} changed since it was downloaded (include/ATen/ATen.h is 10 bytes, was 13; lib/libc10.so is missing)`);
    expect(e.message).toContain('download: skipped (TORCHNODE_NO_DOWNLOAD=1)');
  });

  test('LIBTORCH_SHA256 still rules on reuse: the matching value marks the copy verified, another one stops the install', async () => {
    const { env, dir } = await downloaded();
    const before = hits['/tamper.zip'];
    const ok: Rec = await lt.resolveLibtorch({ ...env, LIBTORCH_SHA256: ZIP_SHA }, quiet);
    expect(ok).toMatchObject({ how: 'cache', sha256: ZIP_SHA, sha256Verified: true });
    const e = await rejection(lt.resolveLibtorch({ ...env, LIBTORCH_SHA256: 'f'.repeat(64) }, quiet));
    expect(e.code).toBe('ETORCHNODE_CHECKSUM');
    expect(e.message).toContain(`expected sha256 ${'f'.repeat(64)}, got ${ZIP_SHA}`);
    expect(hits['/tamper.zip']).toBe(before + 1);
    // the mismatching download was not unpacked: the copy there is untouched
    expect((await lt.resolveLibtorch(env, quiet)).how).toBe('cache');
    expect(ls(env.TORCHNODE_CACHE as string)).toEqual([path.basename(dir)]);
  });

  test('a copy from an older torchnode (marker without a manifest) is reused, saying it was not checked', async () => {
    const { env, dir } = await downloaded();
    const file = path.join(dir, '.torchnode-download.json');
    const marker = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete marker.manifest;
    write(file, JSON.stringify(marker));
    const r: Rec = await lt.resolveLibtorch(env, quiet);
    expect(r).toMatchObject({ how: 'cache', sha256: ZIP_SHA });
    expect(r.reason).toContain('not checked (no manifest: downloaded by an older torchnode; delete it to download again)');
  });
});

describe('LIBTORCH, python torch, system', () => {
  test('LIBTORCH at a valid official-zip layout: how=LIBTORCH, version and variant from build-version', async () => {
    const p = makeFakeLibtorch(tmpDir('lt'), { buildVersion: '2.9.1+cu128', cudaLib: true });
    const r: LibtorchRecord = await lt.resolveLibtorch(baseEnv({ LIBTORCH: p }), quiet);
    expect(r.how).toBe('LIBTORCH');
    expect(r.path).toBe(p);
    expect(r.version).toBe('2.9.1');
    expect(r.variant).toBe('cu128');
    expect(r.cuda).toBe(true);
    expect(r.cmakeDir).toBe(path.join(p, 'share', 'cmake', 'Torch'));
    expect(r.libDir).toBe(path.join(p, 'lib'));
    expect(r.reason).toContain('official zip layout');
  });

  test('LIBTORCH also accepts the folder holding libtorch/, a relative path (from INIT_CWD), and lib/<triplet>/cmake/Torch prefixes', async () => {
    const d = tmpDir('outer');
    makeFakeLibtorch(path.join(d, 'libtorch'), { buildVersion: null });
    const r1: LibtorchRecord = await lt.resolveLibtorch(baseEnv({ LIBTORCH: path.basename(d), INIT_CWD: path.dirname(d) }), quiet);
    expect(r1.path).toBe(path.join(d, 'libtorch'));
    expect(r1.version).toBe('2.9.1'); // from TorchConfigVersion.cmake

    const prefix = tmpDir('prefix');
    write(path.join(prefix, 'lib', 'x86_64-linux-gnu', 'cmake', 'Torch', 'TorchConfig.cmake'), '#\n');
    write(path.join(prefix, 'lib', 'x86_64-linux-gnu', 'libtorch.so'), '#\n');
    write(path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'), '#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 4\n#define TORCH_VERSION_PATCH 1\n');
    const r2: LibtorchRecord = await lt.resolveLibtorch(baseEnv({ LIBTORCH: prefix }), quiet);
    expect(r2.path).toBe(prefix);
    expect(r2.libDir).toBe(path.join(prefix, 'lib', 'x86_64-linux-gnu'));
    expect(r2.version).toBe('2.4.1'); // from version.h
    expect(r2.variant).toBe('cpu');
  });

  test('CMAKE_PREFIX_PATH entries are searched first (how=system)', async () => {
    const p = makeFakeLibtorch(tmpDir('cpp'), { buildVersion: '2.7.0+cpu' });
    const r: LibtorchRecord = await lt.resolveLibtorch(baseEnv({ CMAKE_PREFIX_PATH: `/nonexistent${path.delimiter}${p}`, TORCHNODE_NO_DOWNLOAD: '1' }), quiet);
    expect(r.how).toBe('system');
    expect(r.path).toBe(p);
    expect(r.version).toBe('2.7.0');
    expect(r.reason).toBe(`CMake package found at ${path.join(p, 'share', 'cmake', 'Torch')}`);
  });

  const debian = fs.existsSync(path.join(DEBIAN_CMAKE, 'TorchConfig.cmake'));
  (debian ? test : test.skip)(
    `system detection finds Debian's ${DEBIAN_CMAKE}${debian ? '' : ' (skipped: libtorch-dev is not installed here)'}`,
    async () => {
      const env = baseEnv({ TORCHNODE_NO_DOWNLOAD: '1' });
      const r: LibtorchRecord = await lt.resolveLibtorch(env, quiet);
      expect(r.how).toBe('system');
      expect(r.cmakeDir).toBe(DEBIAN_CMAKE);
      expect(r.path).toBe('/usr');
      expect(r.libDir).toBe('/usr/lib/x86_64-linux-gnu');
      expect(r.includeDirs).toEqual(['/usr/include', '/usr/include/torch/csrc/api/include']);
      expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(r.variant).toBe('cpu');
      expect(lt.describeRecord(r)).toBe(`torchnode: using libtorch ${r.version} (cpu) from /usr (system: CMake package found at ${DEBIAN_CMAKE})`);
    },
  );

  test('LIBTORCH_USE_PYTORCH=1 with a (fake) pip torch: how=pytorch, variant from torch.version.cuda', async () => {
    const d = tmpDir('pip');
    const torchDir = path.join(d, 'site-packages', 'torch');
    makeFakeLibtorch(torchDir, { buildVersion: null });
    const fakePy = path.join(d, 'python');
    write(fakePy, `#!/bin/sh\nprintf '2.9.1+cu126\\n${path.join(torchDir, 'share', 'cmake')}\\n12.6\\n'\n`);
    fs.chmodSync(fakePy, 0o755);
    const r: LibtorchRecord = await lt.resolveLibtorch(baseEnv({ LIBTORCH_USE_PYTORCH: '1', PYTHON: fakePy }), quiet);
    expect(r.how).toBe('pytorch');
    expect(r.path).toBe(torchDir);
    expect(r.version).toBe('2.9.1');
    expect(r.variant).toBe('cu126');
    expect(r.cuda).toBe(true);
  });

  const debPy = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0 && debian;
  (debPy ? test : test.skip)(
    `LIBTORCH_USE_PYTORCH=1 with Debian's python3-torch links back to the system CMake package${debPy ? '' : ' (skipped: /usr/bin/python3 has no torch)'}`,
    async () => {
      const r: LibtorchRecord = await lt.resolveLibtorch(baseEnv({ LIBTORCH_USE_PYTORCH: '1', PYTHON: '/usr/bin/python3' }), quiet);
      expect(r.how).toBe('pytorch');
      expect(r.cmakeDir).toBe(DEBIAN_CMAKE);
      expect(r.variant).toBe('cpu');
    },
  );

  test('apt path: apt-get installs libtorch-dev and libgloo-dev, then the system search runs again (how=apt)', async () => {
    const d = tmpDir('apt-ok');
    const prefix = path.join(d, 'usr');
    const calls = path.join(d, 'calls');
    const fakeApt = path.join(d, 'apt-get');
    // the fake apt-get "installs" a libtorch (Debian-like: no Gloo headers of its own) and Gloo's headers at prefix
    write(
      fakeApt,
      `#!/bin/sh\necho "$*" >> "${calls}"\n[ "$1" = install ] || exit 0\nmkdir -p "${prefix}/share/cmake/Torch" "${prefix}/lib" "${prefix}/include/gloo"\n` +
        `echo '#' > "${prefix}/share/cmake/Torch/TorchConfig.cmake"\necho '#' > "${prefix}/lib/libtorch.so"\n` +
        `echo 'set(PACKAGE_VERSION "1.13.0")' > "${prefix}/share/cmake/Torch/TorchConfigVersion.cmake"\n` +
        `case " $* " in *" libgloo-dev "*) echo '#pragma once' > "${prefix}/include/gloo/algorithm.h";; esac\n`,
    );
    fs.chmodSync(fakeApt, 0o755);
    const env = baseEnv({ TORCHNODE_NO_DOWNLOAD: '1' });
    delete env.TORCHNODE_NO_APT;
    const r: Rec = await lt.resolveLibtorch(env, { ...quiet, aptGet: fakeApt, isRoot: true, isDebian: true, systemCandidates: [path.join(prefix, 'share', 'cmake', 'Torch')] });
    expect(r.how).toBe('apt');
    expect(r.version).toBe('1.13.0');
    expect(r.reason).toContain('installed libtorch-dev libgloo-dev with apt-get');
    expect(r.sha256).toBeNull();
    expect(fs.readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['install -y libtorch-dev libgloo-dev']);
    expect(logs).toContain("torchnode: no libtorch found and the download failed; installing the distribution's libtorch-dev libgloo-dev with apt-get");
    expect(fs.existsSync(path.join(prefix, 'include', 'gloo', 'algorithm.h'))).toBe(true);
  });
});

describe('system libtorch without Gloo headers (step 4)', () => {
  /**
   * A system-style libtorch without Gloo headers, and a fake apt-get that logs its calls and
   * "installs" libgloo-dev's headers into the prefix (or fails, with fail=true).
   * systemIncludeDirs: [] keeps this machine's /usr/include out of the check.
   */
  function systemLibtorch(name: string, { fail = false } = {}) {
    const d = tmpDir(name);
    const prefix = makeFakeLibtorch(path.join(d, 'usr'));
    const calls = path.join(d, 'calls');
    const aptGet = path.join(d, 'apt-get');
    write(
      aptGet,
      `#!/bin/sh\necho "$*" >> "${calls}"\n[ "$1" = update ] && exit 0\n` +
        (fail
          ? `echo "E: Unable to locate package libgloo-dev" >&2\nexit 100\n`
          : `case " $* " in *" libgloo-dev "*) mkdir -p "${prefix}/include/gloo" && echo '#pragma once' > "${prefix}/include/gloo/algorithm.h";; esac\n`),
    );
    fs.chmodSync(aptGet, 0o755);
    const aptCalls = (): string[] => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n') : []);
    const opts = { ...quiet, aptGet, systemCandidates: [path.join(prefix, 'share', 'cmake', 'Torch')], systemIncludeDirs: [] as string[] };
    const unavailable = `distributed training will be unavailable (no gloo/algorithm.h in ${path.join(prefix, 'include')}, ${path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include')})`;
    return { prefix, aptCalls, opts, unavailable };
  }
  const aptEnv = (): NodeJS.ProcessEnv => {
    const env = baseEnv();
    delete env.TORCHNODE_NO_APT;
    return env;
  };

  test('as root on Debian/Ubuntu: apt-get installs libgloo-dev, saying so', async () => {
    const s = systemLibtorch('gloo-apt');
    const r: Rec = await lt.resolveLibtorch(aptEnv(), { ...s.opts, isRoot: true, isDebian: true });
    expect(r.how).toBe('system');
    expect(r.path).toBe(s.prefix);
    expect(s.aptCalls()).toEqual(['install -y libgloo-dev']);
    expect(logs).toContain('torchnode: the system libtorch has no Gloo headers, which distributed training needs; installing libgloo-dev with apt-get');
    expect(fs.existsSync(path.join(s.prefix, 'include', 'gloo', 'algorithm.h'))).toBe(true);
    expect(logs.some((l) => l.includes('unavailable'))).toBe(false);
  });

  test.each([
    ['TORCHNODE_NO_APT=1', { TORCHNODE_NO_APT: '1' }, { isRoot: true, isDebian: true }],
    ['not root', {}, { isRoot: false, isDebian: true }],
    ['not Debian/Ubuntu', {}, { isRoot: true, isDebian: false }],
  ])('apt-get not allowed (%s): no apt-get, one line says distributed training is unavailable and how to get it', async (_name, extra, who) => {
    const s = systemLibtorch('gloo-noapt');
    const r: Rec = await lt.resolveLibtorch({ ...aptEnv(), ...extra }, { ...s.opts, ...who });
    expect(r.how).toBe('system');
    expect(s.aptCalls()).toEqual([]);
    expect(logs).toEqual([
      `torchnode: note: ${s.unavailable}; to get it, install Gloo's headers (Debian/Ubuntu: sudo apt-get install libgloo-dev) and run npm rebuild torchnode`,
    ]);
  });

  test('apt-get failing to install libgloo-dev: a warning, and libtorch is still used', async () => {
    const s = systemLibtorch('gloo-fail', { fail: true });
    const r: Rec = await lt.resolveLibtorch(aptEnv(), { ...s.opts, isRoot: true, isDebian: true });
    expect(r.how).toBe('system');
    expect(s.aptCalls()).toEqual(['install -y libgloo-dev', 'update', 'install -y libgloo-dev']);
    const warning = logs.find((l) => l.startsWith('torchnode: warning: '));
    expect(warning).toContain('Unable to locate package libgloo-dev');
    expect(warning).toContain(s.unavailable);
  });

  test('Gloo headers present: no apt-get, nothing said', async () => {
    const s = systemLibtorch('gloo-there');
    write(path.join(s.prefix, 'include', 'gloo', 'algorithm.h'), '#pragma once\n');
    const r: Rec = await lt.resolveLibtorch(aptEnv(), { ...s.opts, isRoot: true, isDebian: true });
    expect(r.how).toBe('system');
    expect(s.aptCalls()).toEqual([]);
    expect(logs).toEqual([]);
  });
});

describe('variant chooser', () => {
  const smi = (name: string): string => spawnSync(path.join(FAKE_SMI, name), [], { encoding: 'utf8' }).stdout;

  test.each([
    ['no nvidia-smi (null) -> cpu', null, 'cpu'],
    ['empty output -> cpu', '', 'cpu'],
    ['old driver, CUDA 11.8 -> cpu', smi('cuda-11.8'), 'cpu'],
    ['CUDA 12.6 -> cu126', smi('cuda-12.6'), 'cu126'],
    ['CUDA 12.9 -> cu128', smi('cuda-12.9'), 'cu128'],
    ['CUDA 13.0 -> cu130', smi('cuda-13.0'), 'cu130'],
    ['CUDA 12.4, too old for cu126 -> cpu', '| Driver Version: 550.54.14   CUDA Version: 12.4 |', 'cpu'],
    ['query output only, driver 570.124.06 -> cu128', '570.124.06\n', 'cu128'],
    ['query output only, driver 535.104.05 -> cpu', '535.104.05\n', 'cpu'],
    ['query output only, driver 580.95.05 -> cu130', '580.95.05\n', 'cu130'],
  ])('chooseVariant: %s', (_name, text, want) => {
    expect(lt.chooseVariant(text)).toBe(want);
  });

  test.each([
    ['no-such-binary', 'cpu'],
    ['no-driver', 'cpu'],
    ['cuda-11.8', 'cpu'],
    ['cuda-12.6', 'cu126'],
    ['cuda-12.9', 'cu128'],
    ['cuda-13.0', 'cu130'],
    ['driver-only-570', 'cu128'],
  ])('NVIDIA_SMI=fixtures/fake-nvidia-smi/%s -> %s', (name, want) => {
    const req = lt.requestedBuild(baseEnv({ NVIDIA_SMI: path.join(FAKE_SMI, name) }), { platform: 'linux', arch: 'x64' });
    expect(req.variant).toBe(want);
    expect(req.variantReason).toMatch(/^auto: /);
    expect(req.url).toBe(lt.PINNED.builds['linux-x64'][want].url);
  });

  test('TORCHNODE_VARIANT overrides the driver; the pinned table gives the URL', () => {
    const req = lt.requestedBuild(baseEnv({ TORCHNODE_VARIANT: 'cu130', NVIDIA_SMI: path.join(FAKE_SMI, 'no-driver') }), { platform: 'linux', arch: 'x64' });
    expect(req.variant).toBe('cu130');
    expect(req.version).toBe('2.9.1');
    expect(req.url).toBe('https://download.pytorch.org/libtorch/cu130/libtorch-shared-with-deps-2.9.1%2Bcu130.zip');
    expect(lt.PINNED.builds['linux-x64'].cpu.url).toBe('https://download.pytorch.org/libtorch/cpu/libtorch-shared-with-deps-2.9.1%2Bcpu.zip');
  });
});

describe('record file and install.js', () => {
  test('writeRecord/readRecord round trip; TORCHNODE_CONFIG moves the file; a missing file reads as null', () => {
    const file = path.join(tmpDir('rec'), 'libtorch.json');
    expect(lt.configPath({ TORCHNODE_CONFIG: file })).toBe(file);
    expect(lt.configPath({})).toBe(lt.CONFIG_PATH);
    expect(lt.CONFIG_PATH).toBe(path.join(REPO, 'libtorch.json'));
    expect(lt.readRecord(file)).toBeNull();
    const rec = { path: '/p', cmakeDir: '/p/share/cmake/Torch', libDir: '/p/lib', includeDirs: ['/p/include', '/p/include/torch/csrc/api/include'], version: '2.9.1', variant: 'cpu', cuda: false, how: 'LIBTORCH', reason: 'r', resolvedAt: new Date().toISOString() };
    lt.writeRecord(rec, file);
    expect(lt.readRecord(file)).toEqual(rec);
    fs.writeFileSync(file, '{not json');
    expect(() => lt.readRecord(file)).toThrow(file);
  });

  test('install.js resolves, writes libtorch.json and prints the one line', () => {
    const p = makeFakeLibtorch(tmpDir('inst'));
    const env = baseEnv({ LIBTORCH: p, TORCHNODE_SKIP_BUILD: '1', TORCHNODE_SKIP_TS: '1' });
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'install.js')], { env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`torchnode: using libtorch 2.9.1 (cpu) from ${p} (LIBTORCH: `);
    expect(r.stdout).not.toContain('LIBTORCH_SHA256='); // nothing was downloaded
    const rec = JSON.parse(fs.readFileSync(env.TORCHNODE_CONFIG as string, 'utf8'));
    expect(rec.how).toBe('LIBTORCH');
    expect(rec.sha256).toBeNull();
    expect(rec.cmakeDir).toBe(path.join(p, 'share', 'cmake', 'Torch'));
  });

  test('install.js builds once, then a second run does no download and no rebuild', async () => {
    // a scratch package: the real install.js + libtorch.js, a fake build-native.js
    const root = tmpDir('pkg');
    for (const f of ['install.js', 'libtorch.js']) write(path.join(root, 'scripts', f), fs.readFileSync(path.join(REPO, 'scripts', f), 'utf8'));
    const builds = path.join(root, 'builds.log');
    write(
      path.join(root, 'scripts', 'build-native.js'),
      `const fs = require('fs'); const path = require('path');\n` +
        `fs.appendFileSync(${JSON.stringify(builds)}, 'build\\n');\n` +
        `const out = path.join(__dirname, '..', 'build', 'Release'); fs.mkdirSync(out, { recursive: true });\n` +
        `fs.writeFileSync(path.join(out, 'torchnode.node'), 'addon');\n`,
    );
    write(path.join(root, 'CMakeLists.txt'), '# fake\n');
    write(path.join(root, 'native', 'addon.cc'), '// fake\n');
    const past = new Date(Date.now() - 60000);
    fs.utimesSync(path.join(root, 'CMakeLists.txt'), past, past);
    fs.utimesSync(path.join(root, 'native', 'addon.cc'), past, past);
    const env = baseEnv({ LIBTORCH_URL: `${base}/install.zip`, LIBTORCH_SHA256: ZIP_SHA, TORCHNODE_NO_SYSTEM: '1', TORCHNODE_SKIP_TS: '1' });
    delete env.TORCHNODE_CONFIG; // the package's own libtorch.json
    const serve = hits['/install.zip'] || 0;
    const run = () => runNode([path.join(root, 'scripts', 'install.js')], { env, cwd: root });
    const r1 = await run();
    expect(r1.status).toBe(0);
    expect(r1.stdout).toContain('(download: ');
    const sumLine = `torchnode: sha256 of the libtorch zip: LIBTORCH_SHA256=${ZIP_SHA} (verified)\n`;
    expect(r1.stdout).toContain(`)\n${sumLine}`); // right after the one line
    expect(r1.stdout).toContain('torchnode: building the native addon (build/Release/torchnode.node is missing)');
    const rec = JSON.parse(fs.readFileSync(path.join(root, 'libtorch.json'), 'utf8'));
    expect(rec).toMatchObject({ how: 'download', version: '2.9.1', variant: 'cpu', cuda: false, sha256: ZIP_SHA, sha256Verified: true });
    const r2 = await run();
    expect(r2.status).toBe(0);
    expect(r2.stdout).toContain('(cache: ');
    expect(r2.stdout).toContain(sumLine);
    expect(r2.stdout).toContain('torchnode: native addon up to date');
    expect(fs.readFileSync(builds, 'utf8')).toBe('build\n');
    expect(hits['/install.zip']).toBe(serve + 1);
    // touching a native source rebuilds
    write(path.join(root, 'native', 'addon.cc'), '// changed\n');
    const r3 = await run();
    expect(r3.stdout).toContain(`building the native addon (${path.join('native', 'addon.cc')} is newer`);
    expect(fs.readFileSync(builds, 'utf8')).toBe('build\nbuild\n');
  });

  test('native rebuild decision: missing addon, newer sources, changed libtorch; otherwise up to date', () => {
    const root = tmpDir('root');
    const rec = { path: '/a', cmakeDir: '/a/c', libDir: '/a/lib', includeDirs: [], version: '2.9.1', variant: 'cpu', cuda: false };
    const past = (sec: number) => new Date(Date.now() - sec * 1000);
    write(path.join(root, 'CMakeLists.txt'), '#\n');
    write(path.join(root, 'native', 'src', 'tensor.cc'), '//\n');
    fs.utimesSync(path.join(root, 'CMakeLists.txt'), past(100), past(100));
    fs.utimesSync(path.join(root, 'native', 'src', 'tensor.cc'), past(100), past(100));
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: rec })).toContain('missing');
    write(path.join(root, installer.ADDON), 'addon');
    fs.utimesSync(path.join(root, installer.ADDON), past(50), past(50));
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: rec })).toBeNull();
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: { ...rec, how: 'cache', reason: 'other' } })).toBeNull();
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: { ...rec, version: '2.9.2' } })).toContain('libtorch changed');
    fs.utimesSync(path.join(root, 'native', 'src', 'tensor.cc'), past(10), past(10));
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: rec })).toContain(path.join('native', 'src', 'tensor.cc'));
    // a stamp from the last build wins over the previous record
    fs.utimesSync(path.join(root, 'native', 'src', 'tensor.cc'), past(100), past(100));
    write(path.join(root, installer.STAMP), lt.recordKey({ ...rec, version: '1.0.0' }));
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: rec })).toContain('libtorch changed since the last build');
    // the same libtorch, but Gloo's headers came or went: rebuilt (c10d is compiled in only with them)
    write(path.join(root, installer.STAMP), lt.buildKey(rec));
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: rec })).toBeNull();
    const flipped = lt.buildKey(rec).endsWith(' +gloo') ? `${lt.recordKey(rec)} -gloo` : `${lt.recordKey(rec)} +gloo`;
    write(path.join(root, installer.STAMP), flipped);
    expect(installer.nativeBuildReason({ root, oldRecord: rec, newRecord: rec })).toContain("Gloo's headers appeared or went");
  });
});
