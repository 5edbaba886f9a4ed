/**
 * nn.init and the default initialisation of Conv2d / Linear, against PyTorch 1.13
 * (test/fixtures/init.json from scripts/make_fixtures.py). After manualSeed the
 * float32 values must be equal bit for bit; float64 sums agree to 1e-9 relative.
 */
import * as torch from '../lib';
import { Tensor } from '../lib';
import * as nn from '../lib/nn';
import { init } from '../lib/nn';
import { describeParity, fixture } from './helpers';

const fx = fixture('init.json');

function values(t: Tensor): number[] {
  return Array.from(t.toTypedArray() as Float32Array);
}
function sum64(t: Tensor): number {
  return values(t).reduce((a, b) => a + b, 0);
}
function expectSum(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-9 * Math.abs(expected));
}

describe('nn.init: throw cases', () => {
  test('bad arguments name the argument', () => {
    expect(() => init.kaimingUniform_('x' as any)).toThrow(new TypeError("Expected a Tensor for tensor but received 'x'"));
    expect(() => init.calculateFanInAndFanOut(torch.zeros(3))).toThrow(
      /Fan in and fan out can not be computed for tensor with fewer than 2 dimensions \(got shape \[3\]\)/,
    );
    expect(() => init.kaimingUniform_(torch.zeros(3))).toThrow(RangeError);
    expect(() => init.kaimingUniform_(torch.zeros(2, 2), { mode: 'fan_avg' as any })).toThrow(
      /Expected 'fan_in' or 'fan_out' for mode but received 'fan_avg'/,
    );
    expect(() => init.calculateGain('gelu' as any)).toThrow(/for nonlinearity but received 'gelu'/);
    expect(() => init.uniform_(torch.zeros(2), 'a' as any)).toThrow(/Expected a number for a but received 'a'/);
  });
});

describeParity('nn.init', () => {
  test('Conv2d then Linear initialise bit for bit like PyTorch', () => {
    const f = fx.conv_then_linear;
    torch.manualSeed(0);
    const conv = new nn.Conv2d(1, 32, 3, { stride: 1, padding: 1 });
    const lin = new nn.Linear(7 * 7 * 64, 100);
    expect(conv.weight.shape).toEqual(f.conv_weight.shape);
    expect(values(conv.weight)).toEqual(f.conv_weight.data);
    expect(values(conv.bias!)).toEqual(f.conv_bias.data);
    expect(lin.weight.shape).toEqual(f.linear_weight.shape);
    expect(lin.weight.numel()).toBe(f.linear_weight.numel);
    expect(values(lin.weight).slice(0, 50)).toEqual(f.linear_weight.first);
    expectSum(sum64(lin.weight), f.linear_weight.sum);
    expect(values(lin.bias!)).toEqual(f.linear_bias.data);
  });

  test('the seed CNN initialises bit for bit like PyTorch CNN()', () => {
    const f = fx.seed_cnn;
    torch.manualSeed(0);
    const model = new nn.CNN();
    const sd = model.stateDict();
    expect([...sd.keys()]).toEqual(f.keys);
    for (const k of f.keys) {
      const want = f.params[k];
      const t = sd.get(k)!;
      expect({ key: k, shape: t.shape, numel: t.numel(), dtype: t.dtype }).toEqual({ key: k, shape: want.shape, numel: want.numel, dtype: want.dtype });
      expect(values(t).slice(0, want.first.length)).toEqual(want.first);
      expectSum(sum64(t), want.sum);
    }
    expect(model.numParameters()).toBe(f.total_params);
  });

  test('resetParameters draws the same values again after re-seeding', () => {
    torch.manualSeed(3);
    const lin = new nn.Linear(5, 4);
    const w = values(lin.weight);
    const b = values(lin.bias!);
    torch.manualSeed(3);
    lin.resetParameters();
    expect(values(lin.weight)).toEqual(w);
    expect(values(lin.bias!)).toEqual(b);
    // a = sqrt(5) makes the weight bound 1/sqrt(fan_in)
    const bound = 1 / Math.sqrt(5);
    expect(w.every((v) => Math.abs(v) <= bound)).toBe(true);
  });

  test('xavierUniform_, kaimingNormal_ and kaimingUniform_ match PyTorch draws', () => {
    // torch.manual_seed(0); xavier_uniform_(empty(3, 4)); kaiming_normal_(empty(2, 3, 2), mode='fan_out',
    // nonlinearity='relu'); kaiming_uniform_(empty(5, 2))  (PyTorch 1.13, values printed with .tolist())
    torch.manualSeed(0);
    expect(values(init.xavierUniform_(torch.empty(3, 4)))).toEqual([
      -0.006931448820978403, 0.4966502785682678, -0.7619917392730713, -0.681347131729126, -0.3565836548805237,
      0.24826547503471375, -0.01834344118833542, 0.7340730428695679, -0.08216102421283722, 0.24498362839221954,
      -0.27979493141174316, -0.18198418617248535,
    ]);
    expect(values(init.kaimingNormal_(torch.empty(2, 3, 2), { mode: 'fan_out', nonlinearity: 'relu' }))).toEqual([
      0.2852092981338501, 0.5925741195678711, -0.508591890335083, -0.28520694375038147, -0.4218849241733551,
      0.1287192404270172, -0.605760395526886, 0.77824467420578, -0.7574438452720642, 0.08676287531852722,
      -0.40044692158699036, 0.26383188366889954,
    ]);
    expect(values(init.kaimingUniform_(torch.empty(5, 2)))).toEqual([
      -1.0110681056976318, 1.4888674020767212, 0.7728728652000427, 0.8394774794578552, 0.09109125286340714,
      -0.8879938721656799, 0.29303646087646484, -1.6172066926956177, -1.2515214681625366, -0.8929241299629211,
    ]);
  });

  test('a generator option draws from that generator', () => {
    // torch.empty(4).uniform_(-1, 1, generator=torch.Generator().manual_seed(7))
    const g = new torch.Generator().manualSeed(7);
    expect(values(init.uniform_(torch.empty(4), -1, 1, { generator: g }))).toEqual([
      0.06984508037567139, -0.602393627166748, 0.31842339038848877, 0.3137805461883545,
    ]);
    const a = init.kaimingUniform_(torch.empty(3, 3), { generator: new torch.Generator().manualSeed(1) });
    const b = init.kaimingUniform_(torch.empty(3, 3), { generator: new torch.Generator().manualSeed(1) });
    expect(a.equal(b)).toBe(true);
  });

  test('gains, fans and the simple fillers', () => {
    expect(init.calculateGain('leaky_relu', Math.sqrt(5))).toBe(0.5773502691896257); // PyTorch's value
    expect(init.calculateGain('leaky_relu')).toBe(Math.sqrt(2 / (1 + 0.01 * 0.01)));
    expect(init.calculateGain('relu')).toBe(Math.SQRT2);
    expect(init.calculateGain('tanh')).toBe(1.6666666666666667);
    expect(init.calculateGain('selu')).toBe(0.75);
    expect(init.calculateGain('conv2d')).toBe(1);
    expect(init.calculateFanInAndFanOut(torch.empty(64, 32, 3, 3))).toEqual([288, 576]);
    expect(init.calculateFanInAndFanOut(torch.empty(100, 3136))).toEqual([3136, 100]);
    const p = new nn.Parameter(torch.empty(2, 2));
    // works on parameters that require grad (runs under noGrad) and returns the same object
    expect(init.ones_(p)).toBe(p);
    expect(values(p)).toEqual([1, 1, 1, 1]);
    expect(values(init.zeros_(p))).toEqual([0, 0, 0, 0]);
    expect(values(init.constant_(p, 0.5))).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(p.requiresGrad).toBe(true);
    expect(init.kaimingUniform_(torch.empty(0, 3)).shape).toEqual([0, 3]); // empty: left as is
    const n = init.normal_(torch.empty(10000), 2, 0.5);
    expect(n.mean().item()).toBeCloseTo(2, 1);
  });
});
