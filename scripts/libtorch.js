'use strict';
/**
 * torchnode's libtorch resolver (install time). Plain CommonJS, Node built-ins only.
 *
 * Order (the first that applies wins):
 *   1. LIBTORCH=/path                 an unpacked libtorch (never falls through when set)
 *   2. the download cache             <TORCHNODE_CACHE>/libtorch-<version>-<variant>/, checked against
 *                                     the manifest written when it was unpacked
 *   3. LIBTORCH_USE_PYTORCH=1         the libtorch inside python's `torch` package
 *   4. a system libtorch              CMAKE_PREFIX_PATH, Torch_DIR, /usr/lib/<triplet>/cmake/Torch, ...
 *                                     (plus apt-get install libgloo-dev when Gloo's headers are missing)
 *   5. the official download          PINNED below, or LIBTORCH_URL
 *   6. apt-get install                Debian/Ubuntu, as root: libtorch-dev and libgloo-dev, then step 4 again
 * The result is one small JSON record (libtorch.json) that the CMake and gyp builds
 * and the runtime read.
 */

const fs = require('fs');
const path = require('path');
const os = require('os');
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');
const crypto = require('crypto');
const url = require('url');
const { spawn, spawnSync } = require('child_process');
const { Transform } = require('stream');
const { pipeline } = require('stream/promises');

const PACKAGE_ROOT = path.resolve(__dirname, '..');
/** Default location of the record; TORCHNODE_CONFIG overrides it (see configPath). */
const CONFIG_PATH = path.join(PACKAGE_ROOT, 'libtorch.json');

/**
 * The one table that pins which libtorch torchnode downloads.
 * Official builds: cxx11 ABI, shared-with-deps zips.
 *
 * sha256: a null pinned checksum means the download is verified only when
 * LIBTORCH_SHA256 is given (a warning line is printed otherwise). Fill these in
 * (sha256sum of each zip, or the LIBTORCH_SHA256=<hex> line install prints after a
 * download) when the addresses can be reached.
 */
const PINNED = {
  version: '2.9.1',
  builds: {
    'linux-x64': {
      cpu: {
        cuda: null,
        url: 'https://download.pytorch.org/libtorch/cpu/libtorch-shared-with-deps-2.9.1%2Bcpu.zip',
        sha256: null,
      },
      cu126: {
        cuda: '12.6',
        url: 'https://download.pytorch.org/libtorch/cu126/libtorch-shared-with-deps-2.9.1%2Bcu126.zip',
        sha256: null,
      },
      cu128: {
        cuda: '12.8',
        url: 'https://download.pytorch.org/libtorch/cu128/libtorch-shared-with-deps-2.9.1%2Bcu128.zip',
        sha256: null,
      },
      cu130: {
        cuda: '13.0',
        url: 'https://download.pytorch.org/libtorch/cu130/libtorch-shared-with-deps-2.9.1%2Bcu130.zip',
        sha256: null,
      },
    },
    'darwin-arm64': {
      cpu: {
        cuda: null,
        url: 'https://download.pytorch.org/libtorch/cpu/libtorch-macos-arm64-2.9.1.zip',
        sha256: null,
      },
    },
  },
};

/** Values TORCHNODE_VARIANT accepts. */
const VARIANTS = ['auto', 'cpu', 'cu126', 'cu128', 'cu130'];

/** CUDA variants with the CUDA version each needs, highest first. */
const CUDA_VARIANTS = [
  { variant: 'cu130', cuda: '13.0' },
  { variant: 'cu128', cuda: '12.8' },
  { variant: 'cu126', cuda: '12.6' },
];

/**
 * Minimum Linux driver for each CUDA toolkit (NVIDIA's CUDA release notes, "toolkit
 * driver version" table). Used only when nvidia-smi's output has no "CUDA Version".
 */
const DRIVER_CUDA = [
  ['580.65.06', '13.0'],
  ['575.51.03', '12.9'],
  ['570.26', '12.8'],
  ['560.28.03', '12.6'],
  ['555.42.02', '12.5'],
  ['550.54.14', '12.4'],
  ['545.23.06', '12.3'],
  ['535.54.03', '12.2'],
  ['530.30.02', '12.1'],
  ['525.60.13', '12.0'],
  ['520.61.05', '11.8'],
  ['515.43.04', '11.7'],
  ['510.39.01', '11.6'],
  ['495.29.05', '11.5'],
  ['470.42.01', '11.4'],
];

const DEFAULT_CONNECT_TIMEOUT_MS = 15000;
const DEFAULT_IDLE_TIMEOUT_MS = 30000;
const MAX_REDIRECTS = 5;

// ---------------------------------------------------------------------------
// small helpers

/** An error whose message is the whole story: install.js prints it without a stack. */
class InstallError extends Error {
  constructor(message, code, extra) {
    super(message);
    this.name = 'InstallError';
    this.expected = true;
    if (code) this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

function truthy(v) {
  return v != null && /^(1|true|yes|on)$/i.test(String(v).trim());
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function readText(p) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

function uniq(list) {
  return [...new Set(list.filter(Boolean))];
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function intEnv(env, name, dflt) {
  const raw = env[name];
  if (raw == null || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    throw new InstallError(`${name}=${raw} is not a positive number of milliseconds`);
  }
  return n;
}

/** Where relative paths given by the user are relative to: npm's INIT_CWD, else cwd. */
function userCwd(env) {
  return env.INIT_CWD || process.cwd();
}

function homeDir(env) {
  return env.HOME || os.homedir();
}

/** Find an executable on PATH (or accept an absolute/relative path). */
function which(cmd, env = process.env) {
  if (!cmd) return null;
  if (cmd.includes('/')) {
    try {
      fs.accessSync(cmd, fs.constants.X_OK);
      return isFile(cmd) ? path.resolve(cmd) : null;
    } catch {
      return null;
    }
  }
  for (const dir of String(env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (isFile(p)) return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function platformKey(platform = process.platform, arch = process.arch) {
  return `${platform}-${arch}`;
}

function libFileNames() {
  return process.platform === 'darwin'
    ? ['libtorch.dylib', 'libtorch.so']
    : ['libtorch.so', 'libtorch.dylib'];
}

function tailText(s, n = 600) {
  s = String(s || '').trim();
  return s.length > n ? '...' + s.slice(-n) : s;
}

// ---------------------------------------------------------------------------
// record file

/** The record path: TORCHNODE_CONFIG if set, else CONFIG_PATH (libtorch.json at the package root). */
function configPath(env = process.env) {
  return env.TORCHNODE_CONFIG ? path.resolve(env.TORCHNODE_CONFIG) : CONFIG_PATH;
}

/** Write the record atomically (temp file + rename). */
function writeRecord(record, file = configPath()) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n');
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* ignore */
    }
    throw new InstallError(`could not write ${file}: ${e.message}`);
  }
  return file;
}

/** Read a record; null when the file does not exist; an error naming the file when it is not valid. */
function readRecord(file = configPath()) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw new InstallError(`could not read ${file}: ${e.message}`);
  }
  let rec;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    throw new InstallError(`${file} is not valid JSON (${e.message}); delete it and run npm install again`);
  }
  if (!rec || typeof rec !== 'object' || typeof rec.cmakeDir !== 'string' || typeof rec.libDir !== 'string') {
    throw new InstallError(`${file} is not a torchnode libtorch record (no cmakeDir/libDir); delete it and run npm install again`);
  }
  return rec;
}

/** The fields a native build depends on, as one comparable string. */
function recordKey(rec) {
  if (!rec) return '';
  const key = [rec.path, rec.cmakeDir, rec.libDir, rec.includeDirs, rec.version, rec.variant, !!rec.cuda];
  // a downloaded copy replaced by a different zip (same folder) is another libtorch
  if (rec.sha256) key.push(rec.sha256);
  return JSON.stringify(key);
}

/**
 * What the last native build was made from: the libtorch record, and whether Gloo's
 * headers were there (native/distributed.cc compiles c10d in only when they are, so
 * installing libgloo-dev later must rebuild even though no source changed).
 */
function buildKey(rec, opts = {}) {
  if (!rec) return '';
  const gloo = hasGloo({ includeDirs: rec.includeDirs || [] }, opts);
  return recordKey(rec) + (gloo ? ' +gloo' : ' -gloo');
}

/** The one line install prints. */
function describeRecord(rec) {
  return `torchnode: using libtorch ${rec.version} (${rec.variant}) from ${rec.path} (${rec.how}: ${rec.reason})`;
}

/** The line install prints after that one for a downloaded (or cached download) libtorch: the zip's sha256, ready to pin. */
function checksumLine(rec) {
  if (!rec || !rec.sha256) return null;
  return `torchnode: sha256 of the libtorch zip: LIBTORCH_SHA256=${rec.sha256} ${rec.sha256Verified ? '(verified)' : '(not verified; set LIBTORCH_SHA256 to this value to pin it)'}`;
}

/** download: { sha256, verified } of the zip the copy came from (steps 2 and 5), else null. */
function makeRecord(layout, how, reason, download = null) {
  return {
    path: layout.path,
    cmakeDir: layout.cmakeDir,
    libDir: layout.libDir,
    includeDirs: layout.includeDirs,
    version: layout.version,
    variant: layout.variant,
    cuda: layout.cuda,
    how,
    reason,
    sha256: download ? download.sha256 : null,
    sha256Verified: download ? !!download.verified : false,
    resolvedAt: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------
// layout inspection

let tripletCache = null;
/** Multiarch triplets: `gcc -print-multiarch` plus the folders of /usr/lib that hold cmake/Torch. */
function triplets() {
  if (tripletCache) return tripletCache;
  const list = [];
  try {
    const r = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 0 && r.stdout.trim()) list.push(r.stdout.trim());
  } catch {
    /* no gcc */
  }
  const guess = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu' }[process.arch];
  if (process.platform === 'linux' && guess) list.push(guess);
  tripletCache = uniq(list);
  return tripletCache;
}

/** Where TorchConfig.cmake may be under a prefix. */
function cmakeDirCandidates(prefix) {
  const c = [
    path.join(prefix, 'share', 'cmake', 'Torch'),
    path.join(prefix, 'lib', 'cmake', 'Torch'),
    path.join(prefix, 'lib64', 'cmake', 'Torch'),
  ];
  for (const t of triplets()) c.push(path.join(prefix, 'lib', t, 'cmake', 'Torch'));
  let entries = [];
  try {
    entries = fs.readdirSync(path.join(prefix, 'lib'));
  } catch {
    /* no lib */
  }
  for (const e of entries) {
    if (e === 'cmake') continue;
    c.push(path.join(prefix, 'lib', e, 'cmake', 'Torch'));
  }
  return uniq(c);
}

function parseBuildVersion(text) {
  const s = String(text || '').trim().split(/\s+/)[0];
  if (!s) return null;
  const [version, local] = s.split('+');
  return { version, local: local || null };
}

function readVersion(prefix, cmakeDir, includeDir) {
  const bv = parseBuildVersion(readText(path.join(prefix, 'build-version')));
  if (bv && bv.version) return { ...bv, source: 'build-version' };
  const cv = readText(path.join(cmakeDir, 'TorchConfigVersion.cmake'));
  const m = cv && /set\s*\(\s*PACKAGE_VERSION\s+"([^"]+)"\s*\)/.exec(cv);
  if (m) return { version: m[1], local: null, source: 'TorchConfigVersion.cmake' };
  const vh = includeDir && readText(path.join(includeDir, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'));
  if (vh) {
    const g = (k) => {
      const r = new RegExp(`#define\\s+TORCH_VERSION_${k}\\s+(\\d+)`).exec(vh);
      return r ? r[1] : null;
    };
    if (g('MAJOR') != null && g('MINOR') != null) {
      return { version: `${g('MAJOR')}.${g('MINOR')}.${g('PATCH') || 0}`, local: null, source: 'version.h' };
    }
  }
  return { version: 'unknown', local: null, source: null };
}

/**
 * Describe the libtorch whose TorchConfig.cmake is in cmakeDir.
 * Returns { ok, path, cmakeDir, libDir, includeDirs, version, variant, cuda, missing: [...] }.
 */
function layoutFromCmakeDir(cmakeDir) {
  cmakeDir = path.resolve(cmakeDir);
  const up = (n) => path.resolve(cmakeDir, ...Array(n).fill('..'));
  const missing = [];
  let prefix;
  let libCandidates;
  const parent = up(1); // .../cmake
  const x = up(2); // share | lib | lib64 | lib/<triplet>
  if (path.basename(parent) === 'cmake' && path.basename(x) === 'share') {
    prefix = up(3);
    libCandidates = [path.join(prefix, 'lib'), path.join(prefix, 'lib64'), ...triplets().map((t) => path.join(prefix, 'lib', t))];
  } else if (path.basename(parent) === 'cmake' && /^lib(64)?$/.test(path.basename(x))) {
    prefix = up(3);
    libCandidates = [x];
  } else if (path.basename(parent) === 'cmake' && /^lib(64)?$/.test(path.basename(path.dirname(x)))) {
    prefix = up(4);
    libCandidates = [x, path.dirname(x)];
  } else {
    prefix = up(3);
    libCandidates = [path.join(prefix, 'lib'), x];
  }
  if (!isFile(path.join(cmakeDir, 'TorchConfig.cmake'))) missing.push(path.join(cmakeDir, 'TorchConfig.cmake'));
  let libDir = null;
  for (const d of uniq(libCandidates)) {
    if (libFileNames().some((n) => isFile(path.join(d, n)))) {
      libDir = d;
      break;
    }
  }
  if (!libDir) missing.push(`${libFileNames()[0]} in ${uniq(libCandidates).join(' or ')}`);
  const includeDir = path.join(prefix, 'include');
  if (!isDir(includeDir)) missing.push(`${includeDir}/`);
  const v = readVersion(prefix, cmakeDir, includeDir);
  const hasCudaLib = !!libDir && ['libtorch_cuda.so', 'libtorch_cuda.dylib'].some((n) => isFile(path.join(libDir, n)));
  const localCuda = !!(v.local && /^cu\d+/.test(v.local));
  const cuda = hasCudaLib || localCuda;
  let variant;
  if (v.local && /^(cpu|cu\d+|rocm[\d.]+)$/.test(v.local)) variant = v.local;
  else variant = cuda ? 'cuda' : 'cpu';
  return {
    ok: missing.length === 0,
    missing,
    path: prefix,
    cmakeDir,
    libDir,
    includeDirs: [includeDir, path.join(includeDir, 'torch', 'csrc', 'api', 'include')],
    version: v.version,
    versionSource: v.source,
    variant,
    cuda,
  };
}

/** Look for libtorch under a prefix. Returns the layout, or { ok:false, looked:[...] }. */
function inspectPrefix(prefix) {
  prefix = path.resolve(prefix);
  const looked = [];
  for (const c of cmakeDirCandidates(prefix)) {
    looked.push(c);
    if (isFile(path.join(c, 'TorchConfig.cmake'))) return { ...layoutFromCmakeDir(c), looked };
  }
  return { ok: false, looked, missing: ['TorchConfig.cmake'] };
}

/** The official zip's `libtorch/` root inside an unpacked folder (searched up to 3 levels deep). */
function findLibtorchRoot(dir, depth = 3) {
  const queue = [[dir, 0]];
  const found = [];
  while (queue.length) {
    const [d, lvl] = queue.shift();
    if (isFile(path.join(d, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'))) {
      found.push(d);
      continue;
    }
    if (lvl >= depth) continue;
    let entries = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) if (e.isDirectory()) queue.push([path.join(d, e.name), lvl + 1]);
  }
  return found.find((d) => path.basename(d) === 'libtorch') || found[0] || null;
}

// ---------------------------------------------------------------------------
// step 1: LIBTORCH

function fromLibtorchEnv(value, env) {
  const p = path.resolve(userCwd(env), value);
  if (!fs.existsSync(p)) {
    throw new InstallError(`LIBTORCH=${value}: ${p} does not exist. Point LIBTORCH at an unpacked libtorch (the libtorch/ folder of the official zip, with share/cmake/Torch, lib/ and include/).`);
  }
  if (!isDir(p)) {
    throw new InstallError(`LIBTORCH=${value}: ${p} is not a folder (a .zip? unpack it first and point LIBTORCH at its libtorch/ folder).`);
  }
  let layout = null;
  let note = '';
  if (isFile(path.join(p, 'TorchConfig.cmake'))) {
    layout = layoutFromCmakeDir(p);
    note = 'LIBTORCH names the CMake package folder itself';
  } else {
    const direct = inspectPrefix(p);
    if (direct.cmakeDir) layout = direct;
    else {
      const nested = inspectPrefix(path.join(p, 'libtorch'));
      if (nested.cmakeDir) {
        layout = nested;
        note = `found in ${path.join(p, 'libtorch')}`;
      } else {
        throw new InstallError(
          `LIBTORCH=${value}: no libtorch in ${p}. Looked for TorchConfig.cmake in ${direct.looked.slice(0, 3).concat(path.join(p, 'lib', '<triplet>', 'cmake', 'Torch')).join(', ')} ` +
            `(and under ${path.join(p, 'libtorch')}). Point LIBTORCH at the folder that holds share/, lib/ and include/ (the libtorch/ folder of the official zip), or unset it.`,
        );
      }
    }
  }
  if (!layout.ok) {
    throw new InstallError(`LIBTORCH=${value}: ${layout.cmakeDir}/TorchConfig.cmake found, but the libtorch there is incomplete: missing ${layout.missing.join(', ')}.`);
  }
  const fromBv = layout.versionSource === 'build-version' ? 'build-version' : layout.versionSource || 'no version file';
  const kind = layout.cmakeDir === path.join(layout.path, 'share', 'cmake', 'Torch') && isFile(path.join(layout.path, 'build-version')) ? 'official zip layout' : 'CMake package';
  return makeRecord(layout, 'LIBTORCH', `LIBTORCH=${value} set; ${kind} at ${layout.cmakeDir}, version from ${fromBv}${note ? '; ' + note : ''}`);
}

// ---------------------------------------------------------------------------
// variant choice

function cmpVersion(a, b) {
  const pa = String(a).split('.').map((n) => parseInt(n, 10) || 0);
  const pb = String(b).split('.').map((n) => parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Highest CUDA version a Linux driver version supports (null when older than the table). */
function cudaForDriver(driver) {
  for (const [min, cuda] of DRIVER_CUDA) if (cmpVersion(driver, min) >= 0) return cuda;
  return null;
}

/**
 * Pure: from nvidia-smi's output (plain `nvidia-smi`, and/or
 * `nvidia-smi --query-gpu=driver_version --format=csv,noheader`; null when it is missing
 * or failed) to { variant, cuda, driver, reason }.
 */
function explainVariant(nvidiaSmiText) {
  if (nvidiaSmiText == null || !String(nvidiaSmiText).trim()) {
    return { variant: 'cpu', cuda: null, driver: null, reason: 'no NVIDIA driver found (nvidia-smi missing or failed)' };
  }
  const text = String(nvidiaSmiText);
  let driver = null;
  const dm = /Driver Version\s*:\s*(\d+(?:\.\d+)+)/i.exec(text);
  if (dm) driver = dm[1];
  else {
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => /^\d+\.\d+(\.\d+)*$/.test(l));
    if (lines.length) driver = lines.sort(cmpVersion)[0]; // several GPUs: the lowest
  }
  let cuda = null;
  let from = '';
  const cm = /CUDA Version\s*:\s*(\d+\.\d+)/i.exec(text);
  if (cm) {
    cuda = cm[1];
    from = `nvidia-smi reports CUDA Version ${cuda}`;
  } else if (driver) {
    cuda = cudaForDriver(driver);
    from = cuda ? `driver ${driver} supports CUDA ${cuda}` : `driver ${driver} is older than CUDA 11.4's`;
  }
  if (!cuda) {
    return { variant: 'cpu', cuda: null, driver, reason: driver ? `${from}; no CUDA build fits, using cpu` : 'nvidia-smi output has no driver or CUDA version' };
  }
  for (const v of CUDA_VARIANTS) {
    if (cmpVersion(v.cuda, cuda) <= 0) {
      return { variant: v.variant, cuda, driver, reason: `${from}${driver && cm ? ` (driver ${driver})` : ''}, so ${v.variant} (CUDA ${v.cuda})` };
    }
  }
  const lowest = CUDA_VARIANTS[CUDA_VARIANTS.length - 1];
  return { variant: 'cpu', cuda, driver, reason: `${from}, older than the oldest CUDA build (${lowest.variant} needs CUDA ${lowest.cuda}), so cpu` };
}

/** Pure: the variant to download for this nvidia-smi output (null = none). */
function chooseVariant(nvidiaSmiText) {
  return explainVariant(nvidiaSmiText).variant;
}

/** Run nvidia-smi (NVIDIA_SMI overrides the binary); its output text, or null. */
function runNvidiaSmi(env = process.env) {
  const bin = env.NVIDIA_SMI || 'nvidia-smi';
  const run = (args) => {
    try {
      const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 15000, env });
      if (r.error || r.status !== 0) return null;
      return r.stdout || null;
    } catch {
      return null;
    }
  };
  const plain = run([]);
  if (plain && /CUDA Version\s*:/i.test(plain)) return plain;
  const q = run(['--query-gpu=driver_version', '--format=csv,noheader']);
  const out = [plain, q].filter(Boolean).join('\n');
  return out || null;
}

/** The official build for this platform and variant: { url, sha256, cuda } or throws. */
function officialBuild(variant, platform = process.platform, arch = process.arch) {
  const key = platformKey(platform, arch);
  const table = PINNED.builds[key];
  if (!table) {
    throw new InstallError(`there is no official libtorch ${PINNED.version} download for ${key} (only ${Object.keys(PINNED.builds).join(', ')})`);
  }
  const b = table[variant];
  if (!b) {
    throw new InstallError(`there is no official libtorch ${PINNED.version} ${variant} build for ${key} (${key} has ${Object.keys(table).join(', ')})`);
  }
  return b;
}

/**
 * What step 2 and step 5 look for: { version, variant, variantReason, url, sha256, urlSource, downloadable, notDownloadableReason }.
 */
function requestedBuild(env = process.env, opts = {}) {
  const raw = (env.TORCHNODE_VARIANT || 'auto').trim().toLowerCase();
  if (!VARIANTS.includes(raw)) {
    throw new InstallError(`TORCHNODE_VARIANT=${env.TORCHNODE_VARIANT} is not one of ${VARIANTS.join(', ')}`);
  }
  let variant;
  let variantReason;
  if (raw === 'auto') {
    const platform = opts.platform || process.platform;
    if (platform !== 'linux') {
      variant = 'cpu';
      variantReason = `auto: no CUDA builds for ${platform}`;
    } else {
      const text = opts.nvidiaSmiText !== undefined ? opts.nvidiaSmiText : runNvidiaSmi(env);
      const ex = explainVariant(text);
      variant = ex.variant;
      variantReason = `auto: ${ex.reason}`;
    }
  } else {
    variant = raw;
    variantReason = `TORCHNODE_VARIANT=${raw}`;
  }
  const req = { version: PINNED.version, variant, variantReason, url: null, sha256: null, urlSource: null, downloadable: true, notDownloadableReason: null };
  const shaEnv = env.LIBTORCH_SHA256 ? env.LIBTORCH_SHA256.trim().toLowerCase() : null;
  if (env.LIBTORCH_URL) {
    req.url = normalizeUrl(env.LIBTORCH_URL, env);
    req.urlSource = 'LIBTORCH_URL';
    req.sha256 = shaEnv;
  } else {
    try {
      const b = officialBuild(variant, opts.platform, opts.arch);
      req.url = b.url;
      req.sha256 = shaEnv || b.sha256 || null;
      req.urlSource = 'pinned';
    } catch (e) {
      req.downloadable = false;
      req.notDownloadableReason = e.message;
    }
  }
  return req;
}

/** Accept http(s)://, file:// and plain paths (made file:// URLs). */
function normalizeUrl(value, env = process.env) {
  const v = String(value).trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    let u;
    try {
      u = new URL(v);
    } catch {
      throw new InstallError(`LIBTORCH_URL=${value} is not a valid URL`);
    }
    if (!['http:', 'https:', 'file:'].includes(u.protocol)) {
      throw new InstallError(`LIBTORCH_URL=${value}: only http://, https:// and file:// are supported`);
    }
    return u.href;
  }
  return url.pathToFileURL(path.resolve(userCwd(env), v)).href;
}

// ---------------------------------------------------------------------------
// step 2: cache

function cacheDir(env = process.env) {
  if (env.TORCHNODE_CACHE) return path.resolve(userCwd(env), env.TORCHNODE_CACHE);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(homeDir(env), '.cache');
  return path.join(base, 'torchnode');
}

function cacheEntryDir(cache, version, variant) {
  return path.join(cache, `libtorch-${version}-${variant}`);
}

const MARKER = '.torchnode-download.json';

// -- what was unpacked, checked each time the cached copy is reused
//
// The zip's sha256 can be checked only once, when it is downloaded: the zip is deleted after
// unpacking, because keeping it would double the cache (0.2 GB for cpu, several GB for CUDA).
// So the marker also holds a manifest of the tree as unpacked from the checked zip, and a
// reuse compares the tree with it:
//   - every file's path and size: a deleted, added, truncated or replaced file shows;
//   - the full sha256 of each file up to MANIFEST_FULL_HASH_MAX (8 MiB): the CMake config
//     files, build-version, build-hash, the headers and the small libraries (some tens of
//     MB in all);
//   - for bigger files (libtorch_cpu.so and most CUDA libraries, up to 1.5 GB each), the sha256
//     of the first and last MANIFEST_SAMPLE bytes (the ELF or Mach-O headers at the start,
//     the ELF section table at the end), with the size.
// Hashing the big libraries in full would cost seconds on every `npm install` (tens of
// seconds for CUDA builds); this costs one stat per file and reading the small files. What it
// misses is a same-size change inside a big library away from both ends.
const MANIFEST_FULL_HASH_MAX = 8 * 1048576;
const MANIFEST_SAMPLE = 65536;

/** sha256 of a file's content; for one over fullMax bytes, of its first and last `sample` bytes. */
function fileFingerprint(file, size, fullMax, sample) {
  const hash = crypto.createHash('sha256');
  if (size <= fullMax) return hash.update(fs.readFileSync(file)).digest('hex');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(sample);
    for (const pos of [0, size - sample]) {
      const n = fs.readSync(fd, buf, 0, sample, pos);
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * The manifest of the tree under dir (the marker left out):
 * { fullHashMax, sample, files: { 'lib/libc10.so': '<size> <sha256>', 'lib/x.so': '-> <link target>', ... } }.
 */
function makeManifest(dir, fullHashMax = MANIFEST_FULL_HASH_MAX, sample = MANIFEST_SAMPLE) {
  const files = {};
  const walk = (rel) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      if (!rel && name === MARKER) continue;
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, r);
      const st = fs.lstatSync(abs);
      if (st.isDirectory()) walk(r);
      else if (st.isSymbolicLink()) files[r] = `-> ${fs.readlinkSync(abs)}`;
      else files[r] = `${st.size} ${fileFingerprint(abs, st.size, fullHashMax, sample)}`;
    }
  };
  walk('');
  return { fullHashMax, sample, files };
}

/** How the tree under dir differs from its manifest: a list of short descriptions, empty when it does not. */
function manifestChanges(dir, manifest) {
  let now;
  try {
    now = new Map(Object.entries(makeManifest(dir, manifest.fullHashMax, manifest.sample).files));
  } catch (e) {
    return [`cannot be read (${e.message})`];
  }
  const was = new Map(Object.entries(manifest.files || {}));
  const size = (entry) => (/^\d+ /.test(entry) ? entry.split(' ')[0] : null); // null for a link
  const changes = [];
  for (const [f, entry] of was) {
    const cur = now.get(f);
    if (cur == null) changes.push(`${f} is missing`);
    else if (cur !== entry) changes.push(size(cur) && size(entry) && size(cur) !== size(entry) ? `${f} is ${size(cur)} bytes, was ${size(entry)}` : `${f} changed`);
  }
  for (const f of now.keys()) if (!was.has(f)) changes.push(`${f} was added`);
  return changes;
}

/**
 * A complete cached copy matching the request: { layout, reason, download } (download: the
 * zip's { sha256, verified }, null for a copy placed by hand), or { layout:null, note, changed }.
 */
function findCached(cache, req) {
  const dir = cacheEntryDir(cache, req.version, req.variant);
  if (!isDir(dir)) return { layout: null, note: `no ${dir}` };
  const layout = inspectPrefix(dir);
  if (!layout.ok) return { layout: null, note: `${dir} is incomplete (missing ${layout.missing.join(', ')}); it will be replaced` };
  let marker = null;
  try {
    marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8'));
  } catch {
    marker = null;
  }
  if (marker) {
    if (req.url && marker.url !== req.url) {
      return { layout: null, note: `${dir} was downloaded from ${marker.url}, but ${req.url} is configured now` };
    }
    if (req.sha256 && marker.sha256 !== req.sha256) {
      return { layout: null, note: `${dir} has sha256 ${marker.sha256}, not the configured ${req.sha256}` };
    }
    let checked;
    if (marker.manifest && marker.manifest.files) {
      const changes = manifestChanges(dir, marker.manifest);
      if (changes.length) {
        const shown = changes.slice(0, 3).join('; ') + (changes.length > 3 ? `; and ${changes.length - 3} more` : '');
        return { layout: null, changed: true, note: `${dir} changed since it was downloaded (${shown}), so it is not used; the next download replaces it` };
      }
      checked = `unchanged since (${Object.keys(marker.manifest.files).length} files checked)`;
    } else {
      checked = 'not checked (no manifest: downloaded by an older torchnode; delete it to download again)';
    }
    return {
      layout,
      download: { sha256: marker.sha256, verified: !!marker.verified || (!!req.sha256 && marker.sha256 === req.sha256) },
      reason: `${dir}, downloaded earlier from ${marker.url}, ${checked}, matches libtorch ${req.version} ${req.variant} (${req.variantReason})`,
    };
  }
  // placed by hand: trust it only when its own build-version (if any) agrees
  const bv = parseBuildVersion(readText(path.join(dir, 'build-version')));
  if (bv && (bv.version !== req.version || (bv.local && bv.local !== req.variant))) {
    return { layout: null, note: `${dir} holds libtorch ${bv.version}${bv.local ? '+' + bv.local : ''}, not ${req.version} ${req.variant}` };
  }
  return { layout, reason: `${dir} (placed in the cache) matches libtorch ${req.version} ${req.variant} (${req.variantReason})` };
}

// ---------------------------------------------------------------------------
// step 3: python's torch

const PY_QUERY = 'import torch,sys; print(torch.__version__); print(torch.utils.cmake_prefix_path); print(torch.version.cuda)';

function pythonCandidates(env) {
  return uniq([env.PYTHON, 'python3', '/usr/bin/python3']);
}

function fromPytorch(env, opts = {}) {
  const tried = [];
  for (const py of opts.pythonCandidates || pythonCandidates(env)) {
    const r = spawnSync(py, ['-c', PY_QUERY], { encoding: 'utf8', timeout: 120000, env });
    if (r.error) {
      tried.push(`${py}: ${r.error.code === 'ENOENT' ? 'not found' : r.error.message}`);
      continue;
    }
    if (r.status !== 0) {
      const lastLine = tailText(r.stderr, 300).split('\n').pop();
      tried.push(`${py}: ${lastLine || 'exit ' + r.status}`);
      continue;
    }
    const [pyVersion, prefixPath, cudaRaw] = r.stdout.trim().split(/\r?\n/).map((s) => s.trim());
    const cudaVer = cudaRaw && cudaRaw !== 'None' ? cudaRaw : null;
    const variant = cudaVer ? `cu${cudaVer.replace(/\./g, '')}` : 'cpu';
    const version = (pyVersion || 'unknown').split('+')[0];
    const finish = (layout, why) => {
      const rec = makeRecord({ ...layout, version, variant, cuda: !!cudaVer || layout.cuda }, 'pytorch', why);
      return rec;
    };
    const cmakeDir = path.join(prefixPath || '', 'Torch');
    if (prefixPath && isFile(path.join(cmakeDir, 'TorchConfig.cmake'))) {
      const layout = layoutFromCmakeDir(cmakeDir);
      if (layout.ok) return finish(layout, `LIBTORCH_USE_PYTORCH=1; torch ${pyVersion} of ${py}, CMake package at ${cmakeDir}`);
      tried.push(`${py}: torch ${pyVersion} at ${layout.path} is incomplete (missing ${layout.missing.join(', ')})`);
      continue;
    }
    // Debian's python3-torch ships no CMake package; its lib/ links to the system libtorch.
    const torchDir = prefixPath ? path.resolve(prefixPath, '..', '..') : null;
    let linked = null;
    if (torchDir) {
      for (const n of libFileNames()) {
        try {
          const real = fs.realpathSync(path.join(torchDir, 'lib', n));
          const sysCmake = path.join(path.dirname(real), 'cmake', 'Torch');
          if (isFile(path.join(sysCmake, 'TorchConfig.cmake'))) {
            linked = { real, sysCmake };
            break;
          }
        } catch {
          /* not there */
        }
      }
    }
    if (linked) {
      const layout = layoutFromCmakeDir(linked.sysCmake);
      if (layout.ok) {
        return finish(layout, `LIBTORCH_USE_PYTORCH=1; torch ${pyVersion} of ${py} has no CMake package, but its libtorch is ${linked.real}, whose CMake package is ${linked.sysCmake}`);
      }
    }
    tried.push(`${py}: torch ${pyVersion} has no ${path.join(cmakeDir, 'TorchConfig.cmake')}`);
  }
  throw new InstallError(
    `LIBTORCH_USE_PYTORCH=1, but no python with a usable torch package was found (${tried.join('; ')}). ` +
      `Set PYTHON=/path/to/python (a python where "import torch" works), install torch for it (pip install torch), or unset LIBTORCH_USE_PYTORCH.`,
  );
}

// ---------------------------------------------------------------------------
// step 4: system

/** Places CMake would find libtorch, in order. */
function systemCandidates(env = process.env) {
  const c = [];
  if (env.Torch_DIR) c.push(path.resolve(env.Torch_DIR));
  for (const entry of String(env.CMAKE_PREFIX_PATH || '').split(path.delimiter)) {
    if (!entry) continue;
    const e = path.resolve(entry);
    c.push(e); // the Torch dir itself
    c.push(path.join(e, 'Torch')); // e.g. torch.utils.cmake_prefix_path
    c.push(...cmakeDirCandidates(e));
  }
  for (const t of triplets()) c.push(path.join('/usr/lib', t, 'cmake', 'Torch'));
  try {
    for (const e of fs.readdirSync('/usr/lib')) c.push(path.join('/usr/lib', e, 'cmake', 'Torch'));
  } catch {
    /* none */
  }
  c.push('/usr/local/share/cmake/Torch', '/usr/local/lib/cmake/Torch');
  for (const t of triplets()) c.push(path.join('/usr/local/lib', t, 'cmake', 'Torch'));
  c.push('/usr/share/cmake/Torch', '/usr/lib/cmake/Torch', '/usr/lib64/cmake/Torch');
  if (process.platform === 'darwin') c.push('/opt/homebrew/share/cmake/Torch', '/opt/homebrew/lib/cmake/Torch');
  return uniq(c);
}

/** { layout, reason } for the first complete system libtorch, or { layout:null, note }. */
function findSystemLibtorch(env = process.env, opts = {}) {
  const candidates = opts.systemCandidates || systemCandidates(env);
  const incomplete = [];
  for (const c of candidates) {
    if (!isFile(path.join(c, 'TorchConfig.cmake'))) continue;
    const layout = layoutFromCmakeDir(c);
    if (layout.ok) {
      return { layout, reason: `CMake package found at ${layout.cmakeDir}` };
    }
    incomplete.push(`${c} (missing ${layout.missing.join(', ')})`);
  }
  const shown = ['CMAKE_PREFIX_PATH', 'Torch_DIR', '/usr/lib/<triplet>/cmake/Torch', '/usr/local/share/cmake/Torch', '/usr/local/lib/cmake/Torch', '/usr/share/cmake/Torch'];
  return {
    layout: null,
    note: `no TorchConfig.cmake in ${opts.systemCandidates ? candidates.join(', ') : shown.join(', ')}${incomplete.length ? `; incomplete: ${incomplete.join('; ')}` : ''}`,
  };
}

// ---------------------------------------------------------------------------
// step 5: download

function proxyFor(u, env) {
  const isHttps = u.protocol === 'https:';
  const raw = isHttps
    ? env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy
    : env.HTTP_PROXY || env.http_proxy;
  if (!raw) return null;
  if (bypassProxy(u, env.NO_PROXY || env.no_proxy)) return null;
  let p;
  try {
    p = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new InstallError(`proxy setting ${raw} is not a valid URL`);
  }
  if (p.protocol !== 'http:' && p.protocol !== 'https:') {
    throw new InstallError(`proxy ${p.protocol}//${p.host}: only http:// and https:// proxies are supported`);
  }
  return p;
}

function bypassProxy(u, list) {
  if (!list) return false;
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  for (let entry of String(list).split(/[\s,]+/)) {
    entry = entry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let h = entry;
    let p = null;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (m) {
      h = m[1].replace(/^\[|\]$/g, '');
      p = m[2] || null;
    }
    if (p && p !== port) continue;
    h = h.replace(/^\*/, '');
    if (h.startsWith('.')) {
      if (host.endsWith(h) || host === h.slice(1)) return true;
    } else if (host === h || host.endsWith('.' + h)) return true;
  }
  return false;
}

function proxyAuth(p) {
  if (!p.username) return {};
  const cred = `${decodeURIComponent(p.username)}:${decodeURIComponent(p.password || '')}`;
  return { 'Proxy-Authorization': `Basic ${Buffer.from(cred).toString('base64')}` };
}

function showProxy(p) {
  return `${p.protocol}//${p.host}`;
}

function retryable(err) {
  err.retryable = true;
  return err;
}

function netError(shown, e, proxy) {
  const via = proxy ? ` (via proxy ${showProxy(proxy)})` : '';
  const msg = e && e.message ? e.message : String(e);
  const code = e && e.code && !msg.includes(e.code) ? `${e.code} ` : '';
  return retryable(new InstallError(`${shown}: ${code}${msg}${via}`, 'ETORCHNODE_NETWORK'));
}

/**
 * One HTTP(S) GET, directly or through a proxy (absolute-form for http, CONNECT for https).
 * Resolves { res, failure } once headers arrive. Connect timeout covers TCP (+ proxy CONNECT
 * + TLS handshake); the idle timeout is the socket's inactivity timeout from then on.
 */
function openResponse(u, o) {
  const shown = o.shown;
  return new Promise((resolve, reject) => {
    let settled = false;
    let failure = null;
    let cancel = () => {};
    const finish = (fn, v) => {
      if (!settled) {
        settled = true;
        fn(v);
      }
    };
    let proxy;
    try {
      proxy = proxyFor(u, o.env);
    } catch (e) {
      finish(reject, e);
      return;
    }
    const fail = (e) => {
      if (!failure) failure = e;
      cancel(e);
      finish(reject, e);
    };
    const connectTimer = setTimeout(() => {
      fail(retryable(new InstallError(`${shown}: no connection within ${o.connectTimeoutMs} ms${proxy ? ` (via proxy ${showProxy(proxy)})` : ''} (TORCHNODE_CONNECT_TIMEOUT_MS)`, 'ETORCHNODE_TIMEOUT')));
    }, o.connectTimeoutMs);
    const idleError = () => retryable(new InstallError(`${shown}: no data received for ${o.idleTimeoutMs} ms (TORCHNODE_IDLE_TIMEOUT_MS)`, 'ETORCHNODE_TIMEOUT'));

    const isHttps = u.protocol === 'https:';
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || (isHttps ? 443 : 80));
    const headers = { 'User-Agent': `torchnode-installer (node ${process.version})`, Accept: '*/*' };
    const servername = net.isIP(host) ? undefined : host;

    const start = (tunnelSocket) => {
      let mod;
      let ropts;
      if (proxy && !isHttps) {
        mod = proxy.protocol === 'https:' ? https : http;
        ropts = {
          host: proxy.hostname.replace(/^\[|\]$/g, ''),
          port: Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80)),
          path: u.href,
          headers: { ...headers, Host: u.host, ...proxyAuth(proxy) },
          agent: false,
          ca: o.ca,
        };
      } else {
        mod = isHttps ? https : http;
        ropts = { host, port, path: `${u.pathname}${u.search}`, headers: { ...headers, Host: u.host }, ca: o.ca, servername };
        if (tunnelSocket) ropts.createConnection = () => tunnelSocket;
        else ropts.agent = false;
      }
      let req;
      try {
        req = mod.request(ropts);
      } catch (e) {
        clearTimeout(connectTimer);
        finish(reject, netError(shown, e, proxy));
        return;
      }
      cancel = (e) => req.destroy(e);
      req.on('socket', (sock) => {
        const connected = () => {
          clearTimeout(connectTimer);
          sock.setTimeout(o.idleTimeoutMs);
        };
        sock.on('timeout', () => fail(idleError()));
        if (tunnelSocket) connected();
        else sock.once(sock instanceof tls.TLSSocket ? 'secureConnect' : 'connect', connected);
      });
      req.on('response', (res) => {
        clearTimeout(connectTimer);
        finish(resolve, { res, req, failure: () => failure });
      });
      req.on('error', (e) => {
        clearTimeout(connectTimer);
        finish(reject, failure || netError(shown, e, proxy));
      });
      req.end();
    };

    if (proxy && isHttps) {
      // CONNECT tunnel, then TLS to the origin over it
      const pmod = proxy.protocol === 'https:' ? https : http;
      const target = `${u.hostname}:${port}`;
      let creq;
      try {
        creq = pmod.request({
          host: proxy.hostname.replace(/^\[|\]$/g, ''),
          port: Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80)),
          method: 'CONNECT',
          path: target,
          headers: { Host: target, 'User-Agent': headers['User-Agent'], ...proxyAuth(proxy) },
          agent: false,
          ca: o.ca,
        });
      } catch (e) {
        clearTimeout(connectTimer);
        finish(reject, netError(shown, e, proxy));
        return;
      }
      cancel = (e) => creq.destroy(e);
      creq.on('connect', (res, socket, head) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          clearTimeout(connectTimer);
          const hint = res.statusCode === 407 ? ' (proxy authentication required: put user:password in the proxy URL)' : '';
          finish(reject, new InstallError(`${shown}: proxy ${showProxy(proxy)} answered CONNECT ${target} with HTTP ${res.statusCode} ${res.statusMessage || ''}${hint}`.trim(), 'ETORCHNODE_PROXY'));
          return;
        }
        if (head && head.length) socket.unshift(head);
        const tsock = tls.connect({ socket, host, servername, ca: o.ca });
        let ready = false;
        cancel = (e) => tsock.destroy(e);
        tsock.once('secureConnect', () => {
          ready = true;
          start(tsock);
        });
        tsock.on('error', (e) => {
          if (ready) return; // from here on the request reports its own errors
          clearTimeout(connectTimer);
          finish(reject, failure || netError(shown, e, proxy));
        });
      });
      creq.on('error', (e) => {
        clearTimeout(connectTimer);
        finish(reject, failure || netError(shown, e, proxy));
      });
      creq.end();
    } else {
      start(null);
    }
  });
}

function meterStream(onChunk) {
  return new Transform({
    transform(chunk, _enc, cb) {
      onChunk(chunk);
      cb(null, chunk);
    },
  });
}

/** Progress: a redrawn bar on a TTY, a plain line every 10% otherwise. */
function makeProgress(stream, label) {
  if (!stream) return { update() {}, done() {} };
  const tty = !!stream.isTTY;
  const mb = (n) => (n / 1048576).toFixed(1);
  let lastPct = -1;
  let lastBytesLine = 0;
  let lastDraw = 0;
  let started = false;
  return {
    update(received, total) {
      if (!started) {
        started = true;
        stream.write(`${label}${total ? ` (${mb(total)} MB)` : ''}\n`);
      }
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 100 && received !== total) return;
        lastDraw = now;
        if (total) {
          const frac = Math.min(1, received / total);
          const width = 30;
          const fill = Math.round(frac * width);
          stream.write(`\r  [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${mb(received)}/${mb(total)} MB`);
        } else {
          stream.write(`\r  ${mb(received)} MB`);
        }
      } else if (total) {
        const pct = Math.floor((received / total) * 10) * 10;
        if (pct > lastPct && pct > 0) {
          lastPct = pct;
          stream.write(`torchnode: download ${pct}% (${mb(received)}/${mb(total)} MB)\n`);
        }
      } else if (received - lastBytesLine >= 25 * 1048576) {
        lastBytesLine = received;
        stream.write(`torchnode: downloaded ${mb(received)} MB\n`);
      }
    },
    done() {
      if (tty && started) stream.write('\n');
    },
  };
}

async function fetchOnce(startUrl, dest, o) {
  let current = startUrl;
  const progress = makeProgress(o.progressStream, `torchnode: downloading ${startUrl}`);
  for (let hop = 0; ; hop++) {
    const u = new URL(current);
    const shown = current === startUrl ? startUrl : `${current} (redirected from ${startUrl})`;
    if (u.protocol === 'file:') {
      if (hop > 0) throw new InstallError(`${startUrl}: redirect to ${current} refused (only http and https redirects are followed)`);
      const file = url.fileURLToPath(u);
      let st;
      try {
        st = fs.statSync(file);
      } catch (e) {
        throw new InstallError(`${startUrl}: ${e.code === 'ENOENT' ? 'no such file' : e.message} (${file})`, 'ETORCHNODE_FILE');
      }
      if (!st.isFile()) throw new InstallError(`${startUrl}: ${file} is not a file`, 'ETORCHNODE_FILE');
      const hash = crypto.createHash('sha256');
      let received = 0;
      await pipeline(
        fs.createReadStream(file),
        meterStream((c) => {
          hash.update(c);
          received += c.length;
          progress.update(received, st.size);
        }),
        fs.createWriteStream(dest),
      );
      progress.done();
      return { sha256: hash.digest('hex'), bytes: received, finalUrl: current };
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new InstallError(`${shown}: unsupported URL scheme ${u.protocol} (use http://, https:// or file://)`);
    }
    const { res, req, failure } = await openResponse(u, { ...o, shown });
    const status = res.statusCode;
    if ([301, 302, 303, 307, 308].includes(status)) {
      res.resume();
      req.destroy();
      const loc = res.headers.location;
      if (!loc) throw new InstallError(`${shown}: HTTP ${status} redirect without a Location header`, 'ETORCHNODE_HTTP');
      if (hop + 1 > MAX_REDIRECTS) throw new InstallError(`${startUrl}: more than ${MAX_REDIRECTS} redirects (last to ${new URL(loc, current).href})`, 'ETORCHNODE_HTTP');
      const next = new URL(loc, current);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new InstallError(`${shown}: redirect to ${next.href} refused (only http and https redirects are followed)`, 'ETORCHNODE_HTTP');
      }
      current = next.href;
      continue;
    }
    if (status !== 200) {
      res.resume();
      req.destroy();
      const err = new InstallError(`${shown}: HTTP ${status} ${res.statusMessage || ''}`.trim(), 'ETORCHNODE_HTTP', { status });
      if (status >= 500 || status === 429 || status === 408) retryable(err);
      throw err;
    }
    const total = res.headers['content-length'] != null ? Number(res.headers['content-length']) : null;
    const hash = crypto.createHash('sha256');
    let received = 0;
    try {
      await pipeline(
        res,
        meterStream((c) => {
          hash.update(c);
          received += c.length;
          progress.update(received, total);
        }),
        fs.createWriteStream(dest),
      );
    } catch (e) {
      progress.done();
      if (failure()) throw failure();
      if (e && e.expected) throw e;
      throw retryable(new InstallError(`${shown}: connection lost after ${received}${total != null ? ` of ${total}` : ''} bytes (${e && (e.code || e.message)})`, 'ETORCHNODE_TRUNCATED'));
    }
    progress.done();
    if (failure()) throw failure();
    if (total != null && received !== total) {
      throw retryable(new InstallError(`${shown}: connection closed after ${received} of ${total} bytes`, 'ETORCHNODE_TRUNCATED'));
    }
    return { sha256: hash.digest('hex'), bytes: received, finalUrl: current };
  }
}

/** GET url into dest with one retry (network errors, timeouts, truncation, 5xx). */
async function fetchToFile(u, dest, o) {
  const attempts = 1 + (o.retries == null ? 1 : o.retries);
  let last;
  for (let i = 1; i <= attempts; i++) {
    try {
      return await fetchOnce(u, dest, o);
    } catch (e) {
      last = e;
      if (!e.retryable || i === attempts) break;
      o.log(`torchnode: ${e.message}; retrying (${i + 1}/${attempts})`);
      await sleep(o.retryDelayMs == null ? 1000 : o.retryDelayMs);
    }
  }
  throw last;
}

// -- unzip

/** { tool: 'unzip'|'python', bin } for the first unpacker that exists. */
function findUnzipper(env = process.env, prefer) {
  const unzip = which('unzip', env);
  const py = which('python3', env) || which('/usr/bin/python3', env);
  if (prefer === 'python') return py ? { tool: 'python', bin: py } : null;
  if (prefer === 'unzip') return unzip ? { tool: 'unzip', bin: unzip } : null;
  if (unzip) return { tool: 'unzip', bin: unzip };
  if (py) return { tool: 'python', bin: py };
  return null;
}

/** Unpack zip into dest with the system unzip, else `python3 -m zipfile -e`. */
function unzipFile(zip, dest, { env = process.env, tool } = {}) {
  const u = findUnzipper(env, tool);
  if (!u) {
    return Promise.reject(new InstallError(`cannot unpack ${zip}: neither unzip nor python3 is installed (apt-get install unzip)`, 'ETORCHNODE_UNZIP'));
  }
  const args = u.tool === 'unzip' ? ['-q', '-o', zip, '-d', dest] : ['-m', 'zipfile', '-e', zip, dest];
  fs.mkdirSync(dest, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn(u.bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      if (err.length > 20000) err = err.slice(-10000);
    });
    child.on('error', (e) => reject(new InstallError(`cannot unpack ${zip} with ${u.bin}: ${e.message}`, 'ETORCHNODE_UNZIP')));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(u.tool);
      else reject(new InstallError(`${u.bin} ${args.join(' ')} failed (${signal || 'exit ' + code}): ${tailText(err, 400)}`, 'ETORCHNODE_UNZIP'));
    });
  });
}

// -- temp folders

const liveTemps = new Set();
let exitHook = false;
function trackTemp(dir) {
  liveTemps.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const d of liveTemps) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          /* ignore */
        }
      }
    });
  }
}

function removeTemp(dir) {
  liveTemps.delete(dir);
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    /* ignore */
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** Remove .tmp-<pid>-* folders left by installs that are no longer running. */
function cleanStaleTemps(cache) {
  let entries = [];
  try {
    entries = fs.readdirSync(cache);
  } catch {
    return;
  }
  for (const e of entries) {
    const m = /^\.tmp-(\d+)-/.exec(e);
    if (!m) continue;
    const pid = Number(m[1]);
    const full = path.join(cache, e);
    let old = false;
    try {
      old = Date.now() - fs.statSync(full).mtimeMs > 24 * 3600 * 1000;
    } catch {
      continue;
    }
    if ((pid !== process.pid && !pidAlive(pid)) || old) {
      try {
        fs.rmSync(full, { recursive: true, force: true });
      } catch {
        /* ignore */
      }
    }
  }
}

function newTempDir(cache) {
  const dir = path.join(cache, `.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir);
  trackTemp(dir);
  return dir;
}

/**
 * Download, verify, unpack and atomically place one libtorch archive in the cache.
 * Resolves { dir, layout, url, finalUrl, sha256, verified, bytes, unzipTool }.
 */
async function downloadLibtorch(options) {
  const {
    url: theUrl,
    sha256 = null,
    cacheDir: cache,
    version,
    variant,
    env = process.env,
    log = (m) => process.stderr.write(m + '\n'),
    progressStream = process.stderr,
    ca,
    unzipTool,
    retries = 1,
    retryDelayMs = 1000,
  } = options || {};
  if (!theUrl) throw new InstallError('downloadLibtorch: no url given');
  if (!cache) throw new InstallError('downloadLibtorch: no cacheDir given');
  if (!version || !variant) throw new InstallError('downloadLibtorch: version and variant are required');
  const expected = sha256 ? String(sha256).trim().toLowerCase() : null;
  if (expected && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new InstallError(`sha256 "${sha256}" (LIBTORCH_SHA256) is not 64 hex digits`, 'ETORCHNODE_CHECKSUM');
  }
  const src = normalizeUrl(theUrl, env);
  const connectTimeoutMs = options.connectTimeoutMs || intEnv(env, 'TORCHNODE_CONNECT_TIMEOUT_MS', DEFAULT_CONNECT_TIMEOUT_MS);
  const idleTimeoutMs = options.idleTimeoutMs || intEnv(env, 'TORCHNODE_IDLE_TIMEOUT_MS', DEFAULT_IDLE_TIMEOUT_MS);
  try {
    fs.mkdirSync(cache, { recursive: true });
  } catch (e) {
    throw new InstallError(`cannot create the cache folder ${cache}: ${e.message} (set TORCHNODE_CACHE to a writable folder)`);
  }
  cleanStaleTemps(cache);
  const finalDir = cacheEntryDir(cache, version, variant);
  let tmp;
  try {
    tmp = newTempDir(cache);
  } catch (e) {
    throw new InstallError(`cannot write in the cache folder ${cache}: ${e.message} (set TORCHNODE_CACHE to a writable folder)`);
  }
  try {
    if (!expected) {
      log(`torchnode: warning: no sha256 pinned or given for ${src}; the download is not verified (set LIBTORCH_SHA256=<sha256> to verify it)`);
    }
    const zip = path.join(tmp, 'libtorch.zip');
    const got = await fetchToFile(src, zip, { env, log, progressStream, ca, connectTimeoutMs, idleTimeoutMs, retries, retryDelayMs });
    if (expected && got.sha256 !== expected) {
      throw new InstallError(
        `checksum mismatch for ${src}: expected sha256 ${expected}, got ${got.sha256} (${got.bytes} bytes). The download was deleted and nothing was unpacked.`,
        'ETORCHNODE_CHECKSUM',
      );
    }
    const out = path.join(tmp, 'unpacked');
    const tool = await unzipFile(zip, out, { env, tool: unzipTool });
    fs.rmSync(zip, { force: true });
    const root = findLibtorchRoot(out);
    if (!root) {
      throw new InstallError(`${src}: the archive holds no libtorch (no share/cmake/Torch/TorchConfig.cmake inside)`, 'ETORCHNODE_ARCHIVE');
    }
    const check = inspectPrefix(root);
    if (!check.ok) {
      throw new InstallError(`${src}: the libtorch in the archive is incomplete (missing ${check.missing.join(', ')})`, 'ETORCHNODE_ARCHIVE');
    }
    const marker = {
      url: src,
      finalUrl: got.finalUrl,
      sha256: got.sha256,
      verified: !!expected,
      bytes: got.bytes,
      version,
      variant,
      downloadedAt: new Date().toISOString(),
      // what the checked zip unpacked to; findCached compares the copy with it on every reuse
      manifest: makeManifest(root),
    };
    fs.writeFileSync(path.join(root, MARKER), JSON.stringify(marker, null, 2) + '\n');
    // atomic placement: only a complete copy ever appears under its final name
    try {
      fs.renameSync(root, finalDir);
    } catch (e) {
      if (!['ENOTEMPTY', 'EEXIST', 'EISDIR', 'ENOTDIR'].includes(e.code)) throw e;
      const old = path.join(tmp, 'replaced');
      fs.renameSync(finalDir, old);
      fs.renameSync(root, finalDir);
    }
    const layout = inspectPrefix(finalDir);
    if (layout.versionSource === 'build-version' && (layout.version !== version || layout.variant !== variant)) {
      log(`torchnode: warning: ${src} holds libtorch ${layout.version} (${layout.variant}), not the requested ${version} (${variant}); kept as ${finalDir}`);
    }
    return { dir: finalDir, layout, url: src, finalUrl: got.finalUrl, sha256: got.sha256, verified: !!expected, bytes: got.bytes, unzipTool: tool };
  } finally {
    removeTemp(tmp);
  }
}

// ---------------------------------------------------------------------------
// step 6: apt (and Gloo for step 4)

/** What the apt fallback installs: libtorch, and Gloo's headers, which c10d (distributed training) needs at build time. */
const APT_PACKAGES = ['libtorch-dev', 'libgloo-dev'];

/** Why apt-get may not run (null when it may): only as root on Debian/Ubuntu, and not with TORCHNODE_NO_APT=1. */
function aptPossible(env, opts, packages = APT_PACKAGES) {
  if (truthy(env.TORCHNODE_NO_APT)) return 'disabled by TORCHNODE_NO_APT=1';
  const debian = opts.isDebian != null ? opts.isDebian : fs.existsSync('/etc/debian_version');
  if (!debian) return 'not Debian/Ubuntu';
  const root = opts.isRoot != null ? opts.isRoot : typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root) return `not root (run: sudo apt-get install ${packages.join(' ')})`;
  return null;
}

/** apt-get install -y <packages>; after a failure, apt-get update and once more. Throws an InstallError. */
function runApt(env, opts, log, packages = APT_PACKAGES) {
  const bin = opts.aptGet || 'apt-get';
  const childEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => {
    log(`torchnode: running ${bin} ${args.join(' ')}`);
    const r = spawnSync(bin, args, { stdio: ['ignore', 'inherit', 'pipe'], env: childEnv, encoding: 'utf8', timeout: 30 * 60 * 1000 });
    if (r.stderr && r.stderr.trim()) log(r.stderr.replace(/\s+$/, ''));
    if (r.error) return `${bin}: ${r.error.message}`;
    if (r.status !== 0) return `${bin} ${args.join(' ')} exited ${r.status}: ${tailText(r.stderr, 300)}`;
    return null;
  };
  let err = run(['install', '-y', ...packages]);
  if (err) {
    const upd = run(['update']);
    if (upd) throw new InstallError(`${err}; then ${upd}`);
    err = run(['install', '-y', ...packages]);
    if (err) throw new InstallError(err);
  }
}

/**
 * The folders that may hold Gloo's headers (gloo/algorithm.h) for this libtorch: the same
 * places scripts/gyp-config.js looks (opts.systemIncludeDirs replaces /usr/include and
 * /usr/local/include, for tests).
 */
function glooIncludeDirs(layout, opts) {
  return uniq([...layout.includeDirs, ...(opts.systemIncludeDirs || ['/usr/include', '/usr/local/include'])]);
}

function hasGloo(layout, opts) {
  return glooIncludeDirs(layout, opts).some((d) => isFile(path.join(d, 'gloo', 'algorithm.h')));
}

/**
 * Step 4 found a libtorch without Gloo's headers (Debian's libtorch-dev does not depend on
 * libgloo-dev): install libgloo-dev where apt-get may run, else say in one line what is lost
 * and how to get it. Never fails the install: everything but distributed training builds.
 */
function ensureGloo(layout, env, opts, log) {
  if (hasGloo(layout, opts)) return;
  const lost = `distributed training will be unavailable (no gloo/algorithm.h in ${glooIncludeDirs(layout, opts).join(', ')})`;
  const noApt = aptPossible(env, opts, ['libgloo-dev']);
  if (noApt) {
    log(`torchnode: note: ${lost}; to get it, install Gloo's headers (Debian/Ubuntu: sudo apt-get install libgloo-dev) and run npm rebuild torchnode`);
    return;
  }
  log('torchnode: the system libtorch has no Gloo headers, which distributed training needs; installing libgloo-dev with apt-get');
  try {
    runApt(env, opts, log, ['libgloo-dev']);
  } catch (e) {
    if (!e.expected) throw e;
    log(`torchnode: warning: ${e.message}; ${lost}`);
    return;
  }
  if (!hasGloo(layout, opts)) log(`torchnode: warning: libgloo-dev is installed, but ${lost}`);
}

// ---------------------------------------------------------------------------
// the resolver

function optionsHelp(req, cache) {
  const v = req ? `${req.version}-${req.variant}` : `${PINNED.version}-cpu`;
  return [
    '  LIBTORCH=/path/to/libtorch npm install          use an unpacked libtorch (the libtorch/ folder of the official zip, or any prefix with share/cmake/Torch or lib/cmake/Torch)',
    '  LIBTORCH_USE_PYTORCH=1 npm install              use the libtorch inside python\'s torch package (PYTHON=/path/to/python picks the interpreter)',
    '  sudo apt-get install libtorch-dev libgloo-dev   Debian/Ubuntu system libtorch (found through CMake) and Gloo (for distributed training), then npm install again',
    `  TORCHNODE_VARIANT=cpu|cu126|cu128|cu130         which official libtorch ${PINNED.version} build to download (default auto, from nvidia-smi)`,
    '  LIBTORCH_URL=https://mirror/libtorch.zip        download from a mirror, or LIBTORCH_URL=file:///path/libtorch.zip for a local copy (LIBTORCH_SHA256=<sha256> to verify it)',
    `  TORCHNODE_CACHE=/path                           where downloads are kept (now ${cache}); an unpacked copy placed there as libtorch-${v}/ is used offline`,
    '  HTTPS_PROXY=http://proxy:port                   if the download needs a proxy (TORCHNODE_CONNECT_TIMEOUT_MS / TORCHNODE_IDLE_TIMEOUT_MS for slow links)',
  ].join('\n');
}

/**
 * Resolve libtorch (see the top of this file for the order). Returns the record; writes nothing
 * except the download cache (and what apt-get installs). opts (mostly for tests): log, progressStream,
 * ca, unzipTool, retryDelayMs, nvidiaSmiText, platform, arch, systemCandidates, systemIncludeDirs,
 * pythonCandidates, aptGet, isRoot, isDebian.
 */
async function resolveLibtorch(env = process.env, opts = {}) {
  const log = opts.log || ((m) => process.stderr.write(m + '\n'));
  const tried = [];

  // 1. LIBTORCH
  if (env.LIBTORCH) return fromLibtorchEnv(env.LIBTORCH, env);
  tried.push('LIBTORCH: not set');

  const req = requestedBuild(env, opts);
  const cache = cacheDir(env);

  // 2. cache
  const cached = findCached(cache, req);
  if (cached.layout) return makeRecord(cached.layout, 'cache', cached.reason, cached.download);
  if (cached.changed) log(`torchnode: warning: ${cached.note}`);
  tried.push(`cache: ${cached.note}`);

  // 3. python's torch
  if (truthy(env.LIBTORCH_USE_PYTORCH)) return fromPytorch(env, opts);
  tried.push('LIBTORCH_USE_PYTORCH: not set');

  // 4. system
  if (truthy(env.TORCHNODE_NO_SYSTEM)) tried.push('system: skipped (TORCHNODE_NO_SYSTEM=1)');
  else {
    const sys = findSystemLibtorch(env, opts);
    if (sys.layout) {
      ensureGloo(sys.layout, env, opts, log);
      return makeRecord(sys.layout, 'system', sys.reason);
    }
    tried.push(`system: ${sys.note}`);
  }

  // 5. download
  if (truthy(env.TORCHNODE_NO_DOWNLOAD)) tried.push('download: skipped (TORCHNODE_NO_DOWNLOAD=1)');
  else if (!req.downloadable) tried.push(`download: ${req.notDownloadableReason}`);
  else {
    try {
      const dl = await downloadLibtorch({
        url: req.url,
        sha256: req.sha256,
        cacheDir: cache,
        version: req.version,
        variant: req.variant,
        env,
        log,
        progressStream: opts.progressStream === undefined ? process.stderr : opts.progressStream,
        ca: opts.ca,
        unzipTool: opts.unzipTool,
        retryDelayMs: opts.retryDelayMs,
      });
      return makeRecord(
        dl.layout,
        'download',
        `downloaded ${dl.url}${req.urlSource === 'LIBTORCH_URL' ? ' (LIBTORCH_URL)' : ''}, sha256 ${dl.verified ? 'verified' : 'NOT verified'}, into ${dl.dir}; ${req.variantReason}`,
        dl,
      );
    } catch (e) {
      // a checksum mismatch is not a reason to quietly install something else
      if (e.code === 'ETORCHNODE_CHECKSUM' || !e.expected) throw e;
      log(`torchnode: download failed: ${e.message}`);
      tried.push(`download: ${e.message}`);
    }
  }

  // 6. apt
  const noApt = truthy(env.TORCHNODE_NO_SYSTEM) ? 'skipped (TORCHNODE_NO_SYSTEM=1)' : aptPossible(env, opts);
  if (noApt) tried.push(`apt: ${noApt}`);
  else {
    const pkgs = APT_PACKAGES.join(' ');
    log(`torchnode: no libtorch found and the download failed; installing the distribution's ${pkgs} with apt-get`);
    try {
      runApt(env, opts, log);
      const sys = findSystemLibtorch(env, opts);
      if (sys.layout) return makeRecord(sys.layout, 'apt', `installed ${pkgs} with apt-get; ${sys.reason}`);
      tried.push(`apt: ${pkgs} installed, but still ${sys.note}`);
    } catch (e) {
      if (!e.expected) throw e;
      tried.push(`apt: ${e.message}`);
    }
  }

  throw new InstallError(
    `torchnode: could not find or download libtorch ${req.version} (${req.variant}).\nTried:\n${tried.map((t) => `  - ${t}`).join('\n')}\nUse one of:\n${optionsHelp(req, cache)}`,
    'ETORCHNODE_NOT_FOUND',
  );
}

module.exports = {
  PINNED,
  VARIANTS,
  CONFIG_PATH,
  PACKAGE_ROOT,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  InstallError,
  resolveLibtorch,
  writeRecord,
  readRecord,
  recordKey,
  buildKey,
  describeRecord,
  checksumLine,
  configPath,
  chooseVariant,
  explainVariant,
  cudaForDriver,
  runNvidiaSmi,
  requestedBuild,
  officialBuild,
  downloadLibtorch,
  unzipFile,
  findUnzipper,
  cacheDir,
  cacheEntryDir,
  findCached,
  makeManifest,
  manifestChanges,
  inspectPrefix,
  layoutFromCmakeDir,
  findLibtorchRoot,
  findSystemLibtorch,
  systemCandidates,
  fromPytorch,
  proxyFor,
  bypassProxy,
  which,
  truthy,
};
