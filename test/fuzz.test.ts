// No input may crash the process: random shapes, dtypes, devices, disposed
// tensors and wrong types, 10,000+ calls; every failure must be a thrown JS error.
// The public API checks its arguments first, so the native exports are fuzzed
// directly as well: every native entry must check its own. Terminated workers are
// fuzzed in worker-terminate.test.ts (terminate() at 20 random points) and mismatched
// collectives in distributed-mismatch.test.ts (40 random rounds across two ranks),
// since both need other processes or threads.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as torch from '../lib';
import { F, Tensor, TorchError } from '../lib';
import { N, NativeTensor } from '../lib/native';

// Ops the raw-export tests call, through the generic native entry (as lib/ops does).
const allclose = N.opHandle('aten::allclose', '');
const expand = N.opHandle('aten::expand', '');
const transpose = N.opHandle('aten::transpose', 'int');
const sum = N.opHandle('aten::sum', '');

// A small deterministic PRNG so a failure reproduces (the one the child-process fuzzers use).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { mulberry32 } = require('./fixtures/prng') as { mulberry32: (seed: number) => () => number };

describe('fuzz: errors caught while the GC collects tensors', () => {
  test('a loop of failing native calls and garbage tensors runs for 4 s without a V8 fatal error', () => {
    const script = path.join(__dirname, 'fixtures', 'gc', 'throw-while-collecting.js');
    const r = spawnSync(process.execPath, [script, '4000'], { encoding: 'utf8', timeout: 60000 });
    expect({ status: r.status, signal: r.signal, fatal: /Fatal error|Check failed/.test(r.stderr) }).toEqual({ status: 0, signal: null, fatal: false });
    expect(Number(/caught (\d+)/.exec(r.stdout)![1])).toBeGreaterThan(10000);
  }, 90000);
});

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

  // ---- the raw native exports --------------------------------------------

  // A thrown value is acceptable when it is an Error the addon means to throw.
  const foreignError = (e: unknown): string | null => {
    const err = e as { name?: unknown; message?: unknown };
    if (typeof err !== 'object' || err === null || typeof err.message !== 'string') return `not an Error: ${String(e)}`;
    if (['TypeError', 'TorchError', 'RangeError'].includes(String(err.name)) || /disposed/.test(err.message)) return null;
    return `${String(err.name)}: ${err.message}`;
  };

  // Calls f, which must return or throw an acceptable Error; returns the error or null.
  const attempt = (f: () => unknown, foreign: string[], what: string): unknown => {
    try {
      const r = f();
      // (A promise from the addon is of Node's realm, not jest's: no instanceof.)
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).catch(() => undefined);
      return null;
    } catch (e) {
      const bad = foreignError(e);
      if (bad) foreign.push(`${what}: ${bad}`);
      return e;
    }
  };

  const t4 = () => N.randn([1, 2, 5, 5]);
  const w4 = () => N.randn([3, 2, 3, 3]);

  test('oneDNN convolution: empty, one-element and bad lists, ranks and groups are errors, not crashes', () => {
    const x = t4();
    const w = w4();
    const bad: [string, () => unknown][] = [
      ['empty lists', () => N.conv2dMkldnn(x, w, null, [], [], [], 1)],
      ['empty stride', () => N.conv2dMkldnn(x, w, null, [], [0, 0], [1, 1], 1)],
      ['empty padding', () => N.conv2dMkldnn(x, w, null, [1, 1], [], [1, 1], 1)],
      ['empty dilation', () => N.conv2dMkldnn(x, w, null, [1, 1], [0, 0], [], 1)],
      ['three-element lists', () => N.conv2dMkldnn(x, w, null, [1, 1, 1], [0, 0, 0], [1, 1, 1], 1)],
      ['zero stride', () => N.conv2dMkldnn(x, w, null, [0, 0], [0, 0], [1, 1], 1)],
      ['zero stride (one element)', () => N.conv2dMkldnn(x, w, null, [0], [0], [1], 1)],
      ['negative stride', () => N.conv2dMkldnn(x, w, null, [-1, 1], [0, 0], [1, 1], 1)],
      ['negative padding', () => N.conv2dMkldnn(x, w, null, [1, 1], [-5, -5], [1, 1], 1)],
      ['zero dilation', () => N.conv2dMkldnn(x, w, null, [1, 1], [0, 0], [0, 0], 1)],
      ['zero groups', () => N.conv2dMkldnn(x, w, null, [1, 1], [0, 0], [1, 1], 0)],
      ['groups not dividing', () => N.conv2dMkldnn(x, w, null, [1, 1], [0, 0], [1, 1], 2)],
      ['huge padding', () => N.conv2dMkldnn(x, w, null, [1, 1], [2 ** 40, 2 ** 40], [1, 1], 1)],
      ['kernel larger than input', () => N.conv2dMkldnn(N.randn([1, 2, 2, 2]), w, null, [1, 1], [0, 0], [1, 1], 1)],
      ['3-D input', () => N.conv2dMkldnn(N.randn([2, 5, 5]), w, null, [1, 1], [0, 0], [1, 1], 1)],
      ['1-D input', () => N.conv2dMkldnn(N.randn([5]), w, null, [1, 1], [0, 0], [1, 1], 1)],
      ['0-D weight', () => N.conv2dMkldnn(x, N.randn([]), null, [1, 1], [0, 0], [1, 1], 1)],
      ['2-D weight', () => N.conv2dMkldnn(x, N.randn([3, 2]), null, [1, 1], [0, 0], [1, 1], 1)],
      ['empty input', () => N.conv2dMkldnn(N.randn([0, 2, 5, 5]), w, null, [1, 1], [0, 0], [1, 1], 1)],
      ['int64 input', () => N.conv2dMkldnn(N.zeros([1, 2, 5, 5], 'int64'), w, null, [1, 1], [0, 0], [1, 1], 1)],
      ['wrong bias', () => N.conv2dMkldnn(x, w, N.randn([2, 2]), [1, 1], [0, 0], [1, 1], 1)],
      ['NaN stride', () => N.conv2dMkldnn(x, w, null, [NaN, 1], [0, 0], [1, 1], 1)],
      ['string lists', () => N.conv2dMkldnn(x, w, null, 'ab' as any, [0, 0], [1, 1], 1)],
      ['at::conv2d, empty lists', () => N.conv2d(x, w, null, [], [], [], 1)],
      ['at::conv2d, zero stride', () => N.conv2d(x, w, null, [0, 0], [0, 0], [1, 1], 1)],
      ['maxPool2d, empty kernel', () => N.maxPool2d(x, [], [], [], [], false)],
      ['avgPool2d, zero divisor', () => N.avgPool2d(x, [2, 2], [2, 2], [0, 0], false, true, 0)],
      ['adaptiveAvgPool2d, one negative', () => N.adaptiveAvgPool2d(x, [-1])],
    ];
    const foreign: string[] = [];
    const passed: string[] = [];
    for (const [what, f] of bad) {
      if (attempt(f, foreign, what) === null) passed.push(what);
    }
    expect(foreign).toEqual([]);
    expect(passed).toEqual([]);
    if (N.buildInfo().mkldnn) {
      // A one-element list is expanded to both dims, as at::conv2d does, with the same result.
      const a = N.conv2dMkldnn(x, w, null, [1], [1], [1], 1);
      const b = N.conv2d(x, w, null, [1, 1], [1, 1], [1, 1], 1);
      expect(N.shape(a)).toEqual([1, 3, 5, 5]);
      expect(N.callOp(allclose, a, b, 1e-4, 1e-5)).toBe(true);
      // A view (expanded, stride 0) is made dense first.
      const e = N.callOp(expand, N.randn([1, 2, 1, 5]), [1, 2, 5, 5]) as NativeTensor;
      expect(N.callOp(allclose, N.conv2dMkldnn(e, w, null, [1, 1], [0, 0], [1, 1], 1), N.conv2d(e, w, null, [1, 1], [0, 0], [1, 1], 1), 1e-4, 1e-5)).toBe(true);
    }
  });

  test('every native export, called directly with random junk, returns or throws an Error', () => {
    const rnd = mulberry32(4321);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const threads = N.getNumThreads();
    // Small tensors of every rank 0..5, dtypes, views that are not contiguous, one
    // that requires grad, one disposed; made afresh now and then (dispose() is fuzzed too).
    const makePool = (): NativeTensor[] => {
      const disposed = N.ones([2]);
      N.dispose(disposed);
      const shape = () => Array.from({ length: Math.floor(rnd() * 6) }, () => Math.floor(rnd() * 4));
      return [
        t4(), w4(), N.randn([1, 3, 4, 4]), N.randn(shape()), N.randn(shape()), N.randn(shape(), 'float64'),
        N.randint(0, 3, shape(), 'int64'), N.randint(0, 2, [3], 'int64'), N.zeros(shape(), 'bool'), N.ones([2, 3], 'uint8'),
        N.randn([]), N.randn([0, 3]), N.callOp(transpose, N.randn([3, 4]), 0, 1) as NativeTensor, N.callOp(expand, N.randn([1, 3]), [4, 3]) as NativeTensor,
        N.requiresGrad_(N.randn([2, 2]), true), N.randn([2, 2, 2, 2, 2]), disposed,
      ];
    };
    const lists: unknown[] = [
      [], [0], [1], [-1], [2], [1, 1], [0, 0], [-1, -1], [2, 3], [1, 2, 3], [0, 1, 2, 3], [3, 0], [7, -3],
      [2 ** 40], [2 ** 40, 2 ** 40], [2 ** 53 - 1], [-(2 ** 40)], [NaN], [1.5], ['1'], [null], [[1]], [1n], [2 ** 64],
      new Array(100).fill(1), new Array(100000).fill(0),
    ];
    const scalars: unknown[] = [
      undefined, null, NaN, Infinity, -Infinity, -1, 0, 1, 2, 3, 7, 1.5, -0.5, 2 ** 40, -(2 ** 40), 2 ** 53 - 1, 1e300,
      10n, -(2n ** 70n), true, false, 'cpu', 'cuda', 'cuda:7', 'float32', 'int64', 'bool', 'float16', 'mean', 'none', 'bad',
      'channels_last', 'preserve_format', '', {}, () => 1, Symbol('s'), new Float32Array(3), new Float64Array(0),
      new BigInt64Array(2), new Uint16Array(2), Buffer.from([1, 2, 3, 4]), new DataView(new ArrayBuffer(4)),
    ];
    const gen = new N.NativeGenerator();
    const names = Object.keys(N).filter((k) => typeof (N as any)[k] === 'function' && k !== 'NativeGenerator');
    const genMethods = ['manualSeed', 'initialSeed', 'seed', 'getState', 'setState'];
    let pool = makePool();
    const arg = (): unknown => {
      const r = rnd();
      if (r < 0.45) return pick(pool);
      if (r < 0.65) return pick(lists);
      if (r < 0.7) return [pick(pool), pick(pool)];
      if (r < 0.72) return gen;
      return pick(scalars);
    };
    const foreign: string[] = [];
    const called = new Set<string>();
    let errors = 0;
    let oks = 0;
    for (let i = 0; i < 12000; i++) {
      if (i % 40 === 0) {
        for (const t of pool) N.dispose(t);
        pool = makePool();
      }
      const args = Array.from({ length: Math.floor(rnd() * 8) }, arg);
      let what: string;
      let f: () => unknown;
      const r = rnd();
      if (r < 0.05) {
        const m = pick(genMethods);
        const self = pick([gen, pick(pool), {}, undefined, null, 1, Object.create(N.NativeGenerator.prototype)]);
        what = `NativeGenerator.prototype.${m}`;
        f = () => (N.NativeGenerator.prototype as any)[m].apply(self, args);
      } else if (r < 0.06) {
        what = 'new NativeGenerator';
        f = () => new (N.NativeGenerator as any)(...args);
      } else if (r < 0.3) {
        // The convolution and pooling exports with the right tensors, so the lists are what is wrong.
        what = pick(['conv2d', 'conv2dMkldnn', 'maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d']);
        const x = pick([pool[0], pool[2], pool[3], pool[15]]);
        const w = pick([pool[1], pool[1], pool[3]]);
        const l = () => pick(lists);
        const n = what;
        f =
          n === 'conv2d' || n === 'conv2dMkldnn'
            ? () => (N as any)[n](x, w, pick([null, null, pool[3]]), l(), l(), l(), pick([1, 1, 0, -1, 2, 3, 2 ** 40, NaN]))
            : () => (N as any)[n](x, l(), l(), l(), n === 'avgPool2d' ? pick([true, false]) : l(), pick([true, false, 1]), pick(scalars));
      } else {
        const name = pick(names);
        what = name;
        // No real rendezvous: the backend of distConnect is never a valid one.
        if (name === 'distConnect') args[0] = pick(['', 'mpi', 'cpu', 1, null]);
        f = () => (N as any)[name](...args);
      }
      called.add(what);
      if (attempt(f, foreign, what) === null) oks++;
      else errors++;
      // Undo what a call may have changed for the whole process.
      if (what === 'setErrorClass') N.setErrorClass(TorchError);
      if (N.getDefaultDtype() !== 'float32') N.setDefaultDtype('float32');
      if (N.getNumThreads() !== threads) N.setNumThreads(threads);
      while (N.isInferenceMode() && N.exitInferenceMode() > 0);
      if (!N.isGradEnabled()) N.setGradEnabled(true);
    }
    for (const t of pool) N.dispose(t);
    expect(foreign).toEqual([]);
    // Every export was reached, the convolutions many times.
    expect(names.filter((n) => !called.has(n))).toEqual([]);
    expect(errors).toBeGreaterThan(3000);
    expect(oks).toBeGreaterThan(500);
    // Still alive and computing, with the TorchError class in place.
    expect(N.item(N.callOp(sum, N.ones([2, 2])) as NativeTensor)).toBe(4);
    expect(() => N.view(N.ones([2]), [3])).toThrow(TorchError);
  }, 90000);
});
