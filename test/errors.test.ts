// Every error torchnode throws carries a stable `code` (lib/errors.ts ERROR_CODES), so
// programs and the CLI tell them apart without reading messages.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as torch from '../lib';
import { ERROR_CODES, TorchError, ValueError, optim, data, serialize } from '../lib';
import { N } from '../lib/native';
import { IdxError, readIdx } from '../lib/data/idx';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  throw new Error('did not throw');
};

describe('errors: stable codes', () => {
  test('the TS layer: wrong types, ranges, values, disposed tensors, libtorch errors', () => {
    expect(codeOf(() => torch.zeros(['a' as any]))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => torch.tensor([1n << 70n]))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new optim.SGD([], { lr: 0.1 }))).toBe('ERR_TORCHNODE_VALUE');
    expect(codeOf(() => new optim.SGD([torch.zeros(1).requiresGrad_()], { lr: 0.1, lrr: 1 } as any))).toBe('ERR_INVALID_ARG_TYPE');
    const t = torch.ones(2);
    t.dispose();
    expect(codeOf(() => t.add(1))).toBe('ERR_TORCHNODE_DISPOSED');
    expect(codeOf(() => torch.ones(2).matmul(torch.ones(3)))).toBe('ERR_TORCH');
    expect(codeOf(() => new data.DataLoader(new data.TensorDataset(torch.ones(4)), { batchSize: 2, shuffle: true, sampler: [0, 1] as any }))).toBe('ERR_TORCHNODE_VALUE');
    expect(new TorchError('x').code).toBe(ERROR_CODES.torch);
    expect(new ValueError('x').code).toBe(ERROR_CODES.value);
    expect(Object.values(ERROR_CODES).every((c) => /^(ERR_[A-Z_]+|ABORT_ERR)$/.test(c))).toBe(true);
  });

  test('the native layer: its own TypeErrors and RangeErrors carry the same codes', () => {
    expect(codeOf(() => N.zeros('x' as any, null, null))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => N.zeros([-1], null, null))).toMatch(/^ERR_(INVALID_ARG_TYPE|OUT_OF_RANGE)$/);
  });

  test('files: IDX, pickle, zip and checkpoints', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tn-codes-'));
    try {
      const f = path.join(dir, 'x');
      fs.writeFileSync(f, Buffer.from([1, 2, 3]));
      expect(codeOf(() => readIdx(f))).toBe('ERR_TORCHNODE_IDX');
      expect(new IdxError('x').code).toBe('ERR_TORCHNODE_IDX');
      const c = codeOf(() => serialize.load(f));
      expect(['ERR_TORCHNODE_ZIP', 'ERR_TORCHNODE_PICKLE', 'ERR_TORCHNODE_CHECKPOINT']).toContain(c);
      expect(codeOf(() => torch.loadCheckpoint(f))).toBe('ERR_TORCHNODE_CHECKPOINT');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a cancelled job rejects with ABORT_ERR, across the worker thread', async () => {
    const job = torch.startTraining({ epochs: 1, limit: 2000, testLimit: 100, batchSize: 50, threads: 1 });
    job.cancel();
    await expect(job.result).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
  }, 60000);
});
