/**
 * native/linear.cc splits Linear's matrix products across the intra-op threads when
 * libtorch's BLAS is netlib's reference implementation (Debian's libtorch). The
 * split must give the very bits at::linear and its autograd give: compared here
 * element for element, forward and every gradient, over shapes that leave uneven and
 * one-row slices, with and without bias, float32 and float64, 2 and 3 threads.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as torch from '../lib';
import { N } from '../lib/native';
import { Tensor, wrap } from '../lib/tensor';

const info = N.linearSplitInfo();
// Exactness is a property of the reference BLAS: elsewhere the split is off and only
// the switch itself is tested.
const exactTest = info.enabled ? test : test.skip;

function linearWith(split: boolean, x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  return wrap(N.linear(x.handle, w.handle, b ? b.handle : null, split));
}

function sameBits(a: Tensor | null, b: Tensor | null, what: string): void {
  expect({ what, defined: a !== null }).toEqual({ what, defined: b !== null });
  if (!a || !b) return;
  expect({ what, shape: a.shape }).toEqual({ what, shape: b.shape });
  const differ = torch.tidy(() => a.ne(b).sum().item());
  if (differ !== 0) {
    const worst = torch.tidy(() => a.sub(b).abs().max().item());
    throw new Error(`${what}: ${differ} elements differ (largest difference ${worst})`);
  }
}

const SHAPES: [number, number, number, boolean][] = [
  // rows, in, out, bias
  [100, 3136, 100, true], // the seed CNN's fc.0 at batch 100
  [1000, 3136, 100, true], // ... and at evaluation's batch 1000
  [101, 300, 17, false],
  [7, 33, 5, true],
  [5, 1, 3, false],
  [3, 64, 10, true],
  [2, 2, 2, true],
];

describe('Linear split across threads', () => {
  const prev = torch.getNumThreads();
  afterAll(() => torch.setNumThreads(prev));

  test('config() says whether it is on and why', () => {
    const c = torch.config();
    expect(c.linearSplit.enabled).toBe(info.enabled);
    expect(c.linearSplit.reason).toMatch(/^(on|off): /);
    expect(c.blas.length).toBeGreaterThan(0);
  });

  for (const threads of [2, 3]) {
    for (const dtype of ['float32', 'float64'] as const) {
      exactTest(`bit-identical to at::linear, forward and gradients (${threads} threads, ${dtype})`, () => {
        torch.setNumThreads(threads);
        torch.manualSeed(threads);
        for (const [rows, inF, outF, bias] of SHAPES) {
          torch.tidy(() => {
            const x = torch.randn([rows, inF], { dtype }).mul(3);
            const w = torch.randn([outF, inF], { dtype });
            const b = bias ? torch.randn([outF], { dtype }) : null;
            const g = torch.randn([rows, outF], { dtype });
            const run = (split: boolean) => {
              const xx = x.clone().requiresGrad_(true);
              const ww = w.clone().requiresGrad_(true);
              const bb = b ? b.clone().requiresGrad_(true) : null;
              const out = linearWith(split, xx, ww, bb);
              out.backward(g);
              return { out, gx: xx.grad, gw: ww.grad, gb: bb ? bb.grad : null };
            };
            const whole = run(false);
            const before = N.linearSplitInfo().calls;
            const split = run(true);
            expect(N.linearSplitInfo().calls).toBe(before + 1);
            const at = `[${rows}, ${inF}] x [${outF}, ${inF}]${bias ? ' + bias' : ''}`;
            sameBits(split.out, whole.out, `${at} output`);
            sameBits(split.gx, whole.gx, `${at} grad input`);
            sameBits(split.gw, whole.gw, `${at} grad weight`);
            sameBits(split.gb, whole.gb, `${at} grad bias`);
          });
        }
      });
    }
  }

  exactTest('only the gradients asked for: frozen weight, input without grad, no grad mode', () => {
    torch.setNumThreads(2);
    torch.tidy(() => {
      const x = torch.randn([64, 500]);
      const w = torch.randn([40, 500]);
      const b = torch.randn([40]);
      // Input without grad (the first layer of an MLP): weight and bias grads only.
      const ww = w.clone().requiresGrad_(true);
      const bb = b.clone().requiresGrad_(true);
      linearWith(true, x, ww, bb).sum().backward();
      const w2 = w.clone().requiresGrad_(true);
      const b2 = b.clone().requiresGrad_(true);
      linearWith(false, x, w2, b2).sum().backward();
      sameBits(ww.grad, w2.grad, 'grad weight');
      sameBits(bb.grad, b2.grad, 'grad bias');
      // Frozen weight: only the input's grad.
      const xx = x.clone().requiresGrad_(true);
      const out = linearWith(true, xx, w, b);
      expect(out.requiresGrad).toBe(true);
      out.sum().backward();
      const x2 = x.clone().requiresGrad_(true);
      linearWith(false, x2, w, b).sum().backward();
      sameBits(xx.grad, x2.grad, 'grad input');
      // No grad mode and inference mode: nothing recorded, same values.
      const plain = linearWith(false, x, w, b);
      sameBits(torch.noGrad(() => linearWith(true, xx, ww, bb)), plain, 'no-grad output');
      expect(torch.noGrad(() => linearWith(true, xx, ww, bb)).requiresGrad).toBe(false);
      sameBits(torch.inferenceMode(() => linearWith(true, x, w, b)), plain, 'inference-mode output');
    });
  });

  exactTest('nn.Linear takes the split by itself where it pays, and not with one thread', () => {
    torch.manualSeed(0);
    const fc = new torch.nn.Linear(3136, 100);
    torch.tidy(() => {
      const x = torch.randn([100, 3136]);
      torch.setNumThreads(2);
      let before = N.linearSplitInfo().calls;
      const y = fc.call(x);
      expect(N.linearSplitInfo().calls).toBe(before + 1);
      sameBits(y, linearWith(false, x, fc.weight, fc.bias), 'nn.Linear output');
      torch.setNumThreads(1);
      before = N.linearSplitInfo().calls;
      fc.call(x);
      expect(N.linearSplitInfo().calls).toBe(before);
      // Too small to be worth a thread: whole.
      torch.setNumThreads(2);
      before = N.linearSplitInfo().calls;
      new torch.nn.Linear(100, 10).call(torch.randn([100, 100]));
      expect(N.linearSplitInfo().calls).toBe(before);
    });
  });

  test('operands it does not split go to at::linear, errors included', () => {
    torch.setNumThreads(2);
    torch.tidy(() => {
      // 3-D input, transposed weight: whole, still correct.
      const x = torch.randn([4, 50, 300]);
      const w = torch.randn([300, 60]).t();
      const before = N.linearSplitInfo().calls;
      const y = linearWith(true, x, w, null);
      expect(N.linearSplitInfo().calls).toBe(before);
      expect(y.shape).toEqual([4, 50, 60]);
      // Mismatched features: libtorch's own error, as a TorchError.
      expect(() => linearWith(true, torch.randn([8, 5]), torch.randn([3, 6]), null)).toThrow(torch.TorchError);
    });
  });

  test('TORCHNODE_PARALLEL_LINEAR=0 turns it off', () => {
    const dist = path.join(__dirname, '..', 'dist');
    const code = `const t=require(${JSON.stringify(dist)});process.stdout.write(JSON.stringify(t.config().linearSplit))`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, TORCHNODE_PARALLEL_LINEAR: '0' } });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ enabled: false, reason: 'off: TORCHNODE_PARALLEL_LINEAR=0' });
  });
});
