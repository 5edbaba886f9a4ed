// train() in a worker thread: a Node service's event loop stays free, progress
// streams, AbortSignal cancels, concurrent jobs are independent.
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as torch from '../lib';
import { train, startTraining, nn, runInWorker } from '../lib';
import { fixture, testParity } from './helpers';

const S = fixture('seed_cnn_train.json');
const tinyNet = path.join(__dirname, 'fixtures', 'models', 'tiny-net.js');
// A user's model file requires the built package (dist/), as `require('torchnode')`
// would; jobs that rebuild such a model on this thread must use that same copy.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const built: typeof torch = require('../dist');

function workerHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker').length;
}

describe('train job: throw cases', () => {
  test('bad options fail before a thread starts', async () => {
    await expect(train({ epochs: -1 })).rejects.toThrow(/epochs/);
    await expect(train({ model: {} as any })).rejects.toThrow(/Expected a Module for model/);
    await expect(train({ model: new nn.CNN(), modelFile: tinyNet })).rejects.toThrow(/either model or modelFile/);
    await expect(train({ optimizer: (() => null) as any })).rejects.toThrow(/cannot cross into the training worker/);
    class Mine extends nn.Module { forward(x: torch.Tensor) { return x; } }
    await expect(train({ model: new Mine() })).rejects.toThrow(/user-defined Module: .*modelFile/);
    await expect(runInWorker({ file: 'relative.js' })).rejects.toThrow(/absolute path/);
  });
  test('an error inside one job rejects that job only', async () => {
    const bad = built.train({ modelFile: tinyNet, modelExport: 'Broken', limit: 200, epochs: 1, threads: 1, testData: null });
    const good = built.train({ modelFile: tinyNet, modelExport: 'TinyNet', limit: 200, epochs: 1, threads: 1, testLimit: 100, seed: 1 });
    await expect(bad).rejects.toThrow(/Broken.forward failed on purpose/);
    const r = await good;
    expect(r.history).toHaveLength(1);
    expect(r.accuracy).not.toBeNull();
  });
  test('a missing modelFile export is a clear error', async () => {
    await expect(train({ modelFile: tinyNet, modelExport: 'Nope', limit: 100, epochs: 1, testData: null })).rejects.toThrow(
      /export a Module class named 'Nope'/,
    );
  });
});

describe('train job', () => {
  test('the event loop stays free while training runs on all cores (p99 < 20 ms)', async () => {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const r = await train({ limit: 3000, epochs: 1, threads: 2, testLimit: 1000, seed: 0 });
    clearInterval(timer);
    h.disable();
    const p99ms = h.percentile(99) / 1e6;
    expect(r.history[0].samples).toBe(3000);
    expect(ticks).toBeGreaterThan(10);
    expect(p99ms).toBeLessThan(20);
  }, 120000);

  testParity('two jobs at once both give PyTorch numbers (they run concurrently)', async () => {
    const batches: number[][] = [[], []];
    const opts = (i: number) => ({ seed: 0, limit: 600, epochs: 1, threads: 1, testLimit: 1000, onBatch: (e: torch.BatchEvent) => batches[i].push(e.loss) });
    const [a, b] = await Promise.all([train(opts(0)), train(opts(1))]);
    expect(batches[0]).toEqual(S.threads_1.batch_losses);
    expect(batches[1]).toEqual(S.threads_1.batch_losses);
    expect(a.accuracy).toBe(Math.fround(S.threads_1.test_accuracy));
    expect(b.accuracy).toBe(a.accuracy);
  }, 60000);

  test('progress as events and as an async iterator', async () => {
    const job = startTraining({ limit: 500, epochs: 2, batchSize: 100, threads: 1, testLimit: 100 });
    const epochsSeen: number[] = [];
    job.on('epoch', (e) => epochsSeen.push(e.epoch));
    const kinds: string[] = [];
    for await (const e of job) {
      kinds.push(e.type);
      if (e.type === 'batch') {
        expect(e.loss).toBeGreaterThan(0);
        expect(e.samplesPerSec).toBeGreaterThan(0);
        expect(e.batches).toBe(5);
      }
    }
    const r = await job.result;
    expect(job.state).toBe('succeeded');
    expect(kinds.filter((k) => k === 'batch')).toHaveLength(10);
    expect(kinds.filter((k) => k === 'epoch')).toHaveLength(2);
    expect(epochsSeen).toEqual([1, 2]);
    expect(r.model).toBeInstanceOf(nn.CNN);
    expect(r.optimizerState.param_groups[0].lr).toBe(0.01);
  }, 60000);

  test('AbortSignal cancels within one batch and leaves no thread behind', async () => {
    const before = workerHandles();
    const ac = new AbortController();
    let abortedAt = 0;
    let batchesAfterAbort = 0;
    const p = train({
      limit: 6000, epochs: 3, threads: 1, signal: ac.signal,
      onBatch: (e) => {
        if (abortedAt) batchesAfterAbort++;
        if (e.batch === 3 && !abortedAt) {
          abortedAt = Date.now();
          ac.abort();
        }
      },
    });
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - abortedAt).toBeLessThan(3000);
    expect(batchesAfterAbort).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(workerHandles()).toBeLessThanOrEqual(before);
  }, 60000);

  test("a library-built model is trained in place; a user's class by file", async () => {
    torch.manualSeed(3);
    const model = new nn.Sequential(new nn.Flatten(), new nn.Linear(784, 32), new nn.ReLU(), new nn.Linear(32, 10));
    const w0 = model.stateDict().get('1.weight')!.clone();
    const r = await train({ model, limit: 1000, epochs: 1, threads: 1, testLimit: 500, lr: 0.005 });
    expect(r.model).toBe(model);
    expect(model.stateDict().get('1.weight')!.equal(w0)).toBe(false);
    expect(r.accuracy!).toBeGreaterThan(0.5);

    const rngBefore = built.defaultGenerator.getState();
    const r2 = await built.train({ modelFile: tinyNet, modelExport: 'TinyNet', modelArgs: [24], limit: 1000, epochs: 2, threads: 1, testLimit: 500, seed: 0 });
    expect(r2.model.constructor.name).toBe('TinyNet');
    expect(r2.accuracy!).toBeGreaterThan(0.3);
    // Rebuilding the result model on this thread did not consume our random draws.
    expect(built.defaultGenerator.getState().equal(rngBefore)).toBe(true);
  }, 60000);
});
