// No input may crash the process: random shapes, dtypes, devices, disposed
// tensors and wrong types, 10,000+ calls; every failure must be a thrown JS error.
import * as torch from '../lib';
import { F, Tensor } from '../lib';

// A small deterministic PRNG so a failure reproduces.
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fuzz', () => {
  test('10,000 random calls: every failure is a JS error, the process survives', () => {
    const rnd = mulberry32(1234);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const dtypes = ['float32', 'float64', 'int64', 'int32', 'uint8', 'bool'] as const;
    const disposed = torch.ones(2);
    disposed.dispose();
    const randomShape = (): number[] => Array.from({ length: Math.floor(rnd() * 5) }, () => Math.floor(rnd() * 5));
    const randomTensor = (): Tensor => {
      const s = randomShape();
      const dt = pick(dtypes);
      return dt === 'bool' || dt === 'uint8' || dt === 'int32' || dt === 'int64'
        ? torch.randint(0, 3, s, { dtype: dt === 'bool' ? 'uint8' : dt }).to(dt)
        : torch.randn(s, { dtype: dt });
    };
    const junk: unknown[] = [
      undefined, null, NaN, -1, 0, 1.5, 1e300, -(2 ** 60), 'cpu', 'cuda', 'cuda:7', 'float16', {}, [], [1, -2], [[1]],
      () => 1, Symbol('s'), 10n, true, new Float32Array(3), Buffer.from([1]), disposed,
    ];
    const arg = (): unknown => (rnd() < 0.6 ? randomTensor() : rnd() < 0.5 ? pick(junk) : Math.floor(rnd() * 7) - 3);
    const ops: ((...a: any[]) => unknown)[] = [
      (a, b) => (a as Tensor).add(b as any),
      (a, b) => (a as Tensor).matmul(b as any),
      (a, b) => (a as Tensor).view(b as any),
      (a, b) => (a as Tensor).sum(b as any),
      (a, b) => (a as Tensor).max(b as any),
      (a, b) => (a as Tensor).to(b as any),
      (a, b) => (a as Tensor).select(b as any, 0),
      (a, b) => (a as Tensor).indexSelect(0, b as any),
      (a, b) => (a as Tensor).permute(b as any),
      (a, b) => (a as Tensor).addcdiv_(b as any, a as any),
      (a, b) => (a as Tensor).copy_(b as any),
      (a) => (a as Tensor).item(),
      (a) => (a as Tensor).backward(),
      (a, b) => torch.cat([a as any, b as any]),
      (a, b) => torch.zeros(b as any, { dtype: a as any }),
      (a, b) => torch.randn(a as any, b as any),
      (a, b) => torch.fromBuffer(a as any, b as any),
      (a, b) => torch.tensor(a as any, b as any),
      (a, b) => F.conv2d(a as any, b as any, { padding: pick([0, 1, -1, 'x', [1, 2, 3]]) as any }),
      (a, b) => F.maxPool2d(a as any, b as any),
      (a, b) => F.avgPool2d(a as any, pick([1, 2, 0, [2, 2]]) as any, { stride: b as any }),
      (a, b) => F.linear(a as any, b as any),
      (a, b) => F.crossEntropy(a as any, b as any),
      (a, b) => F.nllLoss(a as any, b as any, { reduction: pick(['mean', 'sum', 'none', 'bad']) as any }),
      (a, b) => F.softmax(a as any, b as any),
      (a, b) => F.dropout(a as any, b as any),
      (a, b) => (a as Tensor).clamp(b as any, 1),
      (a) => (a as Tensor).toArray(),
      (a) => String(a),
    ];
    let errors = 0;
    let oks = 0;
    const foreign: unknown[] = [];
    for (let i = 0; i < 10000; i++) {
      const op = pick(ops);
      try {
        torch.tidy(() => {
          op(arg(), arg());
        });
        oks++;
      } catch (e) {
        errors++;
        // Errors thrown by the addon come from Node's main realm, not jest's sandbox,
        // so check names rather than instanceof.
        const err = e as { name?: unknown; message?: unknown };
        if (typeof err !== 'object' || err === null || typeof err.message !== 'string') foreign.push(e);
        else if (!['TypeError', 'TorchError', 'RangeError'].includes(String(err.name)) && !/disposed/.test(err.message)) {
          foreign.push(`${String(err.name)}: ${err.message}`);
        }
      }
    }
    expect(foreign).toEqual([]);
    expect(errors).toBeGreaterThan(1000);
    expect(oks).toBeGreaterThan(100);
    // Still alive and computing.
    expect(torch.ones(2).add(1).sum().item()).toBe(4);
  }, 60000);
});
