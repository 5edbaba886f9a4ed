// End to end: the seed's program on 600 MNIST images, checked against real
// PyTorch (fixture seed_cnn_train.json from scripts/make_fixtures.py).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as torch from '../lib';
import { train, evaluate, nn, datasets } from '../lib';
import { parseTrainArgs } from '../lib/cli/train';
import { epochLine, formatPy } from '../lib/cli/format';
import { N } from '../lib/native';
import { fixture, testParity } from './helpers';

const S = fixture('seed_cnn_train.json');

describe('train: throw cases', () => {
  test('bad options name the option and the value', async () => {
    await expect(train({ epochs: 0 })).rejects.toThrow(/Expected an integer >= 1 for epochs but received 0/);
    await expect(train({ lr: -1 })).rejects.toThrow(/Expected a positive number for lr but received -1/);
    await expect(train({ device: 'tpu' as any })).rejects.toThrow(/for device but received 'tpu'/);
    await expect(train({ optimizer: 'rmsprop' as any })).rejects.toThrow(/for optimizer but received 'rmsprop'/);
    await expect(train({ bogus: 1 } as any)).rejects.toThrow(/Unknown option 'bogus'/);
    await expect(train({ dataRoot: '/nonexistent-dir' })).rejects.toThrow(/nonexistent-dir/);
    if (!torch.cuda.isAvailable()) await expect(train({ device: 'cuda' })).rejects.toThrow(/CUDA is not available/);
    const ac = new AbortController();
    ac.abort();
    await expect(train({ signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
  test('CLI argument errors', () => {
    expect(() => parseTrainArgs(['--epochs', 'x'])).toThrow(/--epochs expects an integer >= 1 but received 'x'/);
    expect(() => parseTrainArgs(['--device', 'gpu'])).toThrow(/--device expects/);
    expect(() => parseTrainArgs(['--what'])).toThrow(/Unknown option '--what'/);
    expect(parseTrainArgs(['--seed', '0', '--limit', '600', '--lr', '0.5']).options).toMatchObject({ seed: 0, limit: 600, lr: 0.5 });
    expect(parseTrainArgs(['--channels-last']).options.memoryFormat).toBe('channels_last');
    expect(parseTrainArgs([]).options.memoryFormat).toBeUndefined();
  });
});

describe('train', () => {
  // With 2 threads the Linear layers' products are split across them (native/linear.cc)
  // where the BLAS allows it: the losses must still be PyTorch's, to the bit.
  (S.threads_1 ? test.each([1, 2]) : test.skip.each([1, 2]))('the seed program on 600 images equals PyTorch, batch by batch (%i thread(s))', async (threads) => {
    const ref = threads === 1 ? S.threads_1 : S.threads_2;
    const losses: number[] = [];
    const splitBefore = N.linearSplitInfo().calls;
    const result = await train({
      seed: 0,
      limit: 600,
      epochs: 1,
      batchSize: 100,
      threads,
      testLimit: 1000,
      onBatch: (e) => losses.push(e.loss),
    });
    // The same libtorch kernels with the same threads: exact, to float32 bits.
    expect(losses).toEqual(ref.batch_losses);
    expect(result.history[0].cost).toBe(Math.fround(ref.epoch_cost));
    expect(epochLine(1, result.history[0].cost)).toBe(ref.epoch_cost_printed);
    expect(result.accuracy).toBe(Math.fround(ref.test_accuracy));
    expect(result.history[0].samples).toBe(600);
    expect(result.model.stateDict().size).toBe(8);
    // With 2 threads on the reference BLAS, fc.0's products were split (and still exact).
    if (threads === 2 && N.linearSplitInfo().enabled) expect(N.linearSplitInfo().calls).toBeGreaterThan(splitBefore);
  });

  test("memoryFormat 'channels_last' trains the same model to nearly the same losses", async () => {
    const common = { seed: 0, limit: 300, epochs: 1, batchSize: 100, threads: 1, testLimit: 500 };
    const plain = await train(common);
    // In this thread, to see the layout (train() copies its model back from the worker).
    const cl = await torch.trainInThisThread({ ...common, memoryFormat: 'channels_last' });
    expect(cl.model.parameters()[2].isContiguous('channels_last')).toBe(true); // layer2's conv weight
    expect(Math.abs(cl.history[0].cost - plain.history[0].cost)).toBeLessThan(1e-4);
    expect(Math.abs(cl.accuracy! - plain.accuracy!)).toBeLessThanOrEqual(0.01);
    await expect(train({ ...common, memoryFormat: 'nhwc' as any })).rejects.toThrow(
      "Expected 'contiguous_format' or 'channels_last' for memoryFormat but received 'nhwc'",
    );
  });

  test('evaluate restores training mode and counts correctly', () => {
    torch.manualSeed(0);
    const model = new nn.CNN();
    const test = new datasets.MNIST({ train: false, limit: 200 });
    model.train();
    const acc = evaluate(model, test, { batchSize: 64 });
    expect(acc).toBeGreaterThanOrEqual(0);
    expect(acc).toBeLessThanOrEqual(1);
    expect(model.training).toBe(true);
    expect(evaluate(model, test, { batchSize: 200 })).toBe(acc);
  });

  test('formatPy matches Python', () => {
    expect(formatPy(0.629913926)).toBe('0.629913926');
    expect(formatPy(0.5)).toBe('0.5');
    expect(formatPy(2.42005754)).toBe('2.42005754');
    expect(formatPy(1.5e-5)).toBe('1.5e-05');
    expect(formatPy(3)).toBe('3.0');
  });

  testParity('npm run train prints the seed lines and exits 2 on bad options', () => {
    const cli = path.join(__dirname, '..', 'dist', 'cli', 'train.js');
    const bad = spawnSync(process.execPath, [cli, '--batch-size', '0'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--batch-size expects an integer >= 1 but received '0'/);
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--epochs N/);
    const ok = spawnSync(process.execPath, [cli, '--seed', '0', '--limit', '600', '--epochs', '1', '--threads', '1', '--test-limit', '1000'], {
      encoding: 'utf8',
    });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain(S.threads_1.epoch_cost_printed);
    expect(ok.stdout).toContain(`Learning Finished!\nAccuracy: ${S.threads_1.test_accuracy.toFixed(4)}\n`);
  }, 60000);
});
