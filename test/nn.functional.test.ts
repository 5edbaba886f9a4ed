/**
 * nn.functional against PyTorch (test/fixtures/<version>/nn_ops.json, made by
 * scripts/make_fixtures.py with 1 thread): forward values and gradients of
 * conv2d, pooling, linear, relu, softmax, log_softmax, cross_entropy and nll_loss.
 *
 * Tolerance, float32 on CPU: |actual - expected| <= 1e-6 * |expected| + 1e-7, for
 * forward values and gradients alike (no case needs more).
 */
import * as torch from '../lib';
import { Tensor, TorchError } from '../lib';
import { F } from '../lib/nn';
import { describeParity, fixture } from './helpers';

interface FxTensor {
  shape: number[];
  dtype: string;
  data: number[];
}
const fx = fixture('nn_ops.json');
const RTOL = 1e-6;
const ATOL = 1e-7;

function load(f: FxTensor): Tensor {
  const data = f.dtype === 'int64' ? BigInt64Array.from(f.data, (v) => BigInt(v)) : Float32Array.from(f.data);
  return torch.fromBuffer(data, f.shape);
}
function input(name: string, requiresGrad = false): Tensor {
  const t = load(fx.inputs[name]);
  return requiresGrad ? t.requiresGrad_() : t;
}

/** Asserts shape and every value within the tolerance; reports the worst element. */
function expectClose(actual: Tensor | null, want: FxTensor, what: string): void {
  expect(actual).not.toBeNull();
  expect({ what, shape: actual!.shape }).toEqual({ what, shape: want.shape });
  const a = Array.from(actual!.detach().toTypedArray() as Float32Array);
  let worst = { i: -1, excess: 0 };
  a.forEach((v, i) => {
    const e = want.data[i];
    const excess = Math.abs(v - e) - (RTOL * Math.abs(e) + ATOL);
    if (!(excess <= worst.excess)) worst = { i, excess };
  });
  if (worst.i >= 0) {
    throw new Error(`${what}: element ${worst.i} is ${a[worst.i]}, PyTorch has ${want.data[worst.i]} (beyond tolerance by ${worst.excess})`);
  }
}

beforeAll(() => torch.setNumThreads(1));

describe('nn.functional: throw cases', () => {
  test('conv2d with a 3-channel input and a 1-channel weight names both shapes', () => {
    expect(() => F.conv2d(torch.zeros(1, 3, 8, 8), torch.zeros(4, 1, 3, 3))).toThrow(
      new TorchError('conv2d: input [1, 3, 8, 8] has 3 channels but weight [4, 1, 3, 3] with groups=1 expects 1'),
    );
    expect(() => F.conv2d(torch.zeros(8, 8), torch.zeros(4, 1, 3, 3))).toThrow(/expected a 3-D or 4-D input \[N, C, H, W\] but got \[8, 8\]/);
  });

  test('linear and the losses name the mismatched shapes', () => {
    expect(() => F.linear(torch.zeros(1, 4096), torch.zeros(100, 3136))).toThrow(
      /linear: input \[1, 4096\] has 4096 features in its last dim but weight \[100, 3136\] expects 3136/,
    );
    expect(() => F.crossEntropy(torch.zeros(4, 10), torch.zeros([3], { dtype: 'int64' }))).toThrow(
      /crossEntropy: input \[4, 10\] expects a target of shape \[4\] but got \[3\]/,
    );
  });

  test('wrong types give a TypeError naming the argument', () => {
    const x = torch.zeros(1, 1, 4, 4);
    expect(() => F.conv2d([1, 2] as any, torch.zeros(1, 1, 3, 3))).toThrow(new TypeError('Expected a Tensor for input but received [1, 2]'));
    expect(() => F.conv2d(x, 'w' as any)).toThrow(new TypeError("Expected a Tensor for weight but received 'w'"));
    expect(() => F.conv2d(x, torch.zeros(1, 1, 3, 3), { stride: 0 })).toThrow(/Expected an integer >= 1 for stride\[0\] but received 0/);
    expect(() => F.conv2d(x, torch.zeros(1, 1, 3, 3), { bias: 3 as any })).toThrow(/Expected a Tensor for bias but received 3/);
    expect(() => F.maxPool2d(x, 'a' as any)).toThrow(/for kernelSize but received 'a'/);
    expect(() => F.maxPool2d(x, 2, { padding: 2 })).toThrow(/pad should be at most half of kernel size/);
    expect(() => F.linear(x, null as any)).toThrow(/Expected a Tensor for weight but received null/);
    expect(() => F.softmax(x, 'dim' as any)).toThrow(/Expected an integer for dim but received 'dim'/);
    expect(() => F.crossEntropy(torch.zeros(2, 3), torch.zeros([2], { dtype: 'int64' }), { reduction: 'avg' as any })).toThrow(
      /Expected 'mean', 'sum' or 'none' for reduction but received 'avg'/,
    );
    expect(() => F.dropout(x, 2)).toThrow(/Expected a probability in \[0, 1\] for p but received 2/);
  });
});

describeParity('nn.functional matches PyTorch', () => {
  test('conv2d: every config forward; grads of the first', () => {
    for (const c of fx.conv2d.configs) {
      const grads = !!c.upstream;
      const x = input(c.input, grads);
      const w = input(c.weight, grads);
      const b = input(c.bias, grads);
      const out = F.conv2d(x, w, { bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups });
      expectClose(out, c.out, `conv2d ${c.name} out`);
      if (grads) {
        out.backward(input(c.upstream));
        expectClose(x.grad, c.grad_input, `conv2d ${c.name} grad_input`);
        expectClose(w.grad, c.grad_weight, `conv2d ${c.name} grad_weight`);
        expectClose(b.grad, c.grad_bias, `conv2d ${c.name} grad_bias`);
      }
    }
    expect(fx.conv2d.configs.length).toBe(4);
  });

  test('max_pool2d and avg_pool2d: forward and grad', () => {
    for (const p of fx.pool2d) {
      const x = input(p.input, true);
      const opts = { stride: p.stride, padding: p.padding, ceilMode: p.ceil_mode };
      const out =
        p.op === 'max_pool2d'
          ? F.maxPool2d(x, p.kernel_size, opts)
          : F.avgPool2d(x, p.kernel_size, { ...opts, countIncludePad: p.count_include_pad });
      expectClose(out, p.out, `${p.name} out`);
      out.backward(input(p.upstream));
      expectClose(x.grad, p.grad_input, `${p.name} grad_input`);
    }
    expect(fx.pool2d.map((p: { op: string }) => p.op)).toEqual(['max_pool2d', 'max_pool2d', 'avg_pool2d', 'avg_pool2d']);
  });

  test('linear: forward and grads', () => {
    const l = fx.linear;
    const x = input(l.input, true);
    const w = input(l.weight, true);
    const b = input(l.bias, true);
    const out = F.linear(x, w, b);
    expectClose(out, l.out, 'linear out');
    out.backward(input(l.upstream));
    expectClose(x.grad, l.grad_input, 'linear grad_input');
    expectClose(w.grad, l.grad_weight, 'linear grad_weight');
    expectClose(b.grad, l.grad_bias, 'linear grad_bias');
  });

  test('relu, softmax and log_softmax: forward and grad', () => {
    const r = fx.relu;
    const rx = input(r.input, true);
    const ro = F.relu(rx);
    expectClose(ro, r.out, 'relu out');
    ro.backward(input(r.upstream));
    expectClose(rx.grad, r.grad_input, 'relu grad_input');
    for (const [name, fn] of [['softmax', F.softmax], ['log_softmax', F.logSoftmax]] as const) {
      const s = fx[name];
      const sx = input(s.input, true);
      const out = fn(sx, s.dim);
      expectClose(out, s.out, `${name} out`);
      out.backward(input(s.upstream));
      expectClose(sx.grad, s.grad_input, `${name} grad_input`);
    }
  });

  test('cross_entropy with ignore_index -100: mean, sum, none', () => {
    const ce = fx.cross_entropy;
    for (const r of ['mean', 'sum', 'none'] as const) {
      const logits = input(ce.input, true);
      const out = F.crossEntropy(logits, input(ce.target), { reduction: r, ignoreIndex: ce.ignore_index });
      expectClose(out, ce.reductions[r].out, `cross_entropy ${r} out`);
      out.sum().backward();
      expectClose(logits.grad, ce.reductions[r].grad_logits, `cross_entropy ${r} grad_logits`);
      // the ignored row gets no gradient
      expect(Array.from(logits.grad!.select(0, ce.ignored_row).toTypedArray() as Float32Array)).toEqual([0, 0, 0, 0, 0]);
    }
  });

  test('nll_loss on log_softmax: mean, sum, none, grads through and at log-probabilities', () => {
    const nl = fx.nll_loss;
    expectClose(F.logSoftmax(input('logits'), 1), nl.logp, 'log_softmax(logits)');
    for (const r of ['mean', 'sum', 'none'] as const) {
      const logits = input('logits', true);
      const out = F.nllLoss(F.logSoftmax(logits, 1), input(nl.target), { reduction: r, ignoreIndex: nl.ignore_index });
      expectClose(out, nl.reductions[r].out, `nll_loss ${r} out`);
      out.sum().backward();
      expectClose(logits.grad, nl.reductions[r].grad_logits, `nll_loss ${r} grad_logits`);
      const lp = load(nl.logp).requiresGrad_();
      const out2 = F.nllLoss(lp, input(nl.target), { reduction: r, ignoreIndex: nl.ignore_index });
      out2.sum().backward();
      expectClose(lp.grad, nl.reductions[r].grad_logp, `nll_loss ${r} grad_logp`);
    }
  });

  test('convOutputSize is the seed formula O = floor((I - K + 2P) / S + 1)', () => {
    expect(F.convOutputSize(28, 3, { padding: 1 })).toBe(28);
    expect(F.convOutputSize(28, 2, { stride: 2 })).toBe(14);
    expect(F.convOutputSize(14, 2, { stride: 2 })).toBe(7);
    expect(F.convOutputSize(6, 3, { stride: 2, padding: 1, ceilMode: true })).toBe(4); // the pool2d fixture's size
  });
});
