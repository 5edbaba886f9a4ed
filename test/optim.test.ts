// torch.optim: SGD and Adam against PyTorch 1.13's single-tensor (foreach=False) path,
// test/fixtures/optim.json (scripts/make_fixtures.py). Parameters must match to
// max |a - e| <= 1e-6 * max(1, |e|) and losses to 1e-6 relative; in practice they are bit-exact.
import * as torch from '../lib';
import { F, Tensor, setNumThreads } from '../lib';
import { Adam, Optimizer, SGD } from '../lib/optim';
import { pyPow } from '../lib/optim/optimizer';
import { describeParity, fixture, FIXTURE_DIR, FixtureTensor, fromFixture, flat, undisposed } from './helpers';

interface Config {
  ctor: string;
  losses: number[];
  final_loss: number;
  w: FixtureTensor;
  b: FixtureTensor;
}
interface OptimFixture {
  w0: FixtureTensor;
  b0: FixtureTensor;
  x: FixtureTensor;
  y: FixtureTensor;
  steps: number;
  configs: Record<string, Config>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  state_dicts: Record<string, any>;
}

const fx = fixture<OptimFixture>('optim.json');
setNumThreads(1);
const x = FIXTURE_DIR ? fromFixture(fx.x) : torch.zeros([1]);
const y = FIXTURE_DIR ? fromFixture(fx.y) : torch.zeros([1]);

const snakeToCamel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Turns the fixture's Python constructor, e.g.
 * `SGD([{'params': [w]}, {'params': [b], 'lr': 0.5}], lr=0.1, momentum=0.5, foreach=False)`,
 * into `{name, params, options}` (params hold the names 'w' / 'b'; foreach is dropped).
 */
function parseCtor(src: string): { name: string; params: any[]; options: Record<string, unknown> } {
  const m = /^(\w+)\((.*)\)$/s.exec(src.trim());
  if (!m) throw new Error(`cannot parse ${src}`);
  const json = m[2]
    .replace(/\bTrue\b/g, 'true')
    .replace(/\bFalse\b/g, 'false')
    .replace(/\bNone\b/g, 'null')
    .replace(/'/g, '"')
    .replace(/\(/g, '[')
    .replace(/\)/g, ']')
    .replace(/\b([wb])\b/g, '"$1"')
    .replace(/(\w+)=/g, '"$1":');
  const parsed = JSON.parse(`{"params": ${json}}`) as Record<string, any>;
  const { params, foreach: _foreach, ...rest } = parsed;
  const camel = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [snakeToCamel(k), v]));
  return {
    name: m[1],
    params: params.map((p: any) => (typeof p === 'string' ? p : camel(p))),
    options: camel(rest),
  };
}

function makeOptimizer(ctor: string, w: Tensor, b: Tensor): Optimizer<any> {
  const { name, params, options } = parseCtor(ctor);
  const byName = (n: string) => (n === 'w' ? w : n === 'b' ? b : (() => { throw new Error(n); })());
  const resolved = params.map((p: any) => (typeof p === 'string' ? byName(p) : { ...p, params: p.params.map(byName) }));
  if (name === 'SGD') return new SGD(resolved, options as any);
  if (name === 'Adam') return new Adam(resolved, options as any);
  throw new Error(`unknown optimizer ${name}`);
}

const lossOf = (w: Tensor, b: Tensor) => F.crossEntropy(x.matmul(w).add(b), y);

function train(opt: Optimizer<any>, w: Tensor, b: Tensor, steps: number): number[] {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    torch.tidy(() => {
      const loss = lossOf(w, b);
      losses.push(loss.item() as number);
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  }
  return losses;
}

function params(): [Tensor, Tensor] {
  // The throw cases need some parameters even where this engine has no fixture set.
  if (!FIXTURE_DIR) return [torch.zeros([3, 4]).requiresGrad_(), torch.zeros([3]).requiresGrad_()];
  return [fromFixture(fx.w0).requiresGrad_(), fromFixture(fx.b0).requiresGrad_()];
}

/** max |a - e| / max(1, |e|) */
function maxScaledDiff(actual: number[], expected: number[]): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  actual.forEach((a, i) => {
    const d = Math.abs(a - expected[i]) / Math.max(1, Math.abs(expected[i]));
    if (!(d <= worst)) worst = d;
  });
  return worst;
}

describe('optim: throw cases', () => {
  const [w, b] = params();

  test('invalid options name the option and the value', () => {
    expect(() => new SGD([w], { lr: -1 })).toThrow('Invalid learning rate: -1');
    expect(() => new SGD([w], {} as any)).toThrow(/required optimization parameter lr/);
    expect(() => new SGD([w], { lr: 0.1, momentum: -0.5 })).toThrow('Invalid momentum value: -0.5');
    expect(() => new SGD([w], { lr: 0.1, weightDecay: -1 })).toThrow('Invalid weight_decay value: -1');
    expect(() => new SGD([w], { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum and zero dampening .*momentum=0/);
    expect(() => new SGD([w], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/dampening=0.1/);
    expect(() => new SGD([w], { lr: '0.1' as any })).toThrow(new TypeError("Expected a number for lr but received '0.1'"));
    expect(() => new SGD([w], { lr: 0.1, momentom: 0.9 } as any)).toThrow(/Unknown option 'momentom' for SGD/);
    expect(() => new Adam([w], { lr: -0.01 })).toThrow('Invalid learning rate: -0.01');
    expect(() => new Adam([w], { betas: [1, 0.999] })).toThrow('Invalid beta parameter at index 0: 1');
    expect(() => new Adam([w], { betas: [0.9, -0.1] })).toThrow('Invalid beta parameter at index 1: -0.1');
    expect(() => new Adam([w], { betas: [0.9] as any })).toThrow(/Expected a pair of numbers \[beta1, beta2\] for betas/);
    expect(() => new Adam([w], { eps: -1 })).toThrow('Invalid epsilon value: -1');
    expect(() => new Adam([w], { weightDecay: -1 })).toThrow('Invalid weight_decay value: -1');
    expect(() => new Adam([w], { amsgrad: 1 as any })).toThrow(/Expected a boolean for amsgrad but received 1/);
    expect(() => new SGD([{ params: [w] }, { params: [b], lr: -2 }] as any, { lr: 0.1 })).toThrow('Invalid learning rate in param group 1: -2');
  });

  test('bad params: a bare Tensor, non-tensors, empty, non-leaf, duplicates', () => {
    expect(() => new SGD(w as any, { lr: 0.1 })).toThrow(/iterable of Tensors or parameter groups, but got a Tensor/);
    expect(() => new SGD([w, 3] as any, { lr: 0.1 })).toThrow(new TypeError('optimizer can only optimize Tensors, but params[1] in param group 0 is 3'));
    expect(() => new SGD(42 as any, { lr: 0.1 })).toThrow(TypeError);
    expect(() => new SGD([], { lr: 0.1 })).toThrow('optimizer got an empty parameter list');
    expect(() => new SGD([w.mul(2)], { lr: 0.1 })).toThrow(/can't optimize a non-leaf Tensor/);
    expect(() => new SGD([w, w], { lr: 0.1 })).toThrow(/duplicate parameters/);
    expect(() => new SGD([{ params: [w] }, { params: [w, b] }], { lr: 0.1 })).toThrow(/more than one parameter group/);
  });

  test('loadStateDict rejects a mismatched dict and changes nothing', () => {
    const one = new Adam([w, b]);
    const two = new Adam([{ params: [w] }, { params: [b] }]);
    expect(() => one.loadStateDict(two.stateDict())).toThrow('loaded state dict has 2 parameter groups but Adam has 1');
    const small = new Adam([w]);
    expect(() => one.loadStateDict(small.stateDict())).toThrow(
      "loaded state dict's parameter group 0 has 1 parameters but Adam's group 0 has 2",
    );
    expect(() => one.loadStateDict({} as any)).toThrow(/Expected a state dict \{state, param_groups\}/);
    const sd = one.stateDict();
    sd.state[0] = { step: torch.tensor(1, { dtype: 'float32' }), exp_avg: torch.zeros(3), exp_avg_sq: torch.zeros(3) };
    expect(() => one.loadStateDict(sd)).toThrow('loaded state for parameter 0 has exp_avg of shape [3] but the parameter has shape [5,3]');
    const bad = one.stateDict();
    bad.param_groups[0].betas = [2, 0.9];
    expect(() => one.loadStateDict(bad)).toThrow('Invalid beta parameter at index 0 in loaded param group 0: 2');
    expect(one.paramGroups[0].betas).toEqual([0.9, 0.999]);
    expect(one.state.size).toBe(0);
  });
});

describeParity('optim: numerics equal PyTorch (foreach=False)', () => {
  const keys = Object.keys(fx.configs);
  test('the fixture has every config', () => {
    expect(keys.sort()).toEqual(
      [
        'adam', 'adam_amsgrad', 'adam_amsgrad_lr01_beta2_05', 'adam_betas_eps_wd', 'adam_lr01_beta2_05',
        'sgd', 'sgd_momentum', 'sgd_momentum_dampening_wd', 'sgd_nesterov', 'sgd_param_groups',
      ].sort(),
    );
  });

  test.each(keys)('%s', (key) => {
    const cfg = fx.configs[key];
    const [w, b] = params();
    const opt = makeOptimizer(cfg.ctor, w, b);
    const losses = train(opt, w, b, fx.steps);
    const finalLoss = torch.noGrad(() => lossOf(w, b).item() as number);
    const wDiff = maxScaledDiff(flat(w), cfg.w.data.map(Number));
    const bDiff = maxScaledDiff(flat(b), cfg.b.data.map(Number));
    expect(wDiff).toBeLessThanOrEqual(1e-6);
    expect(bDiff).toBeLessThanOrEqual(1e-6);
    const lossRel = (a: number, e: number) => Math.abs(a - e) / Math.abs(e);
    losses.forEach((l, i) => expect(lossRel(l, cfg.losses[i])).toBeLessThanOrEqual(1e-6));
    expect(lossRel(finalLoss, cfg.final_loss)).toBeLessThanOrEqual(1e-6);
    // The single-tensor path is deterministic at one thread: expect bit-exact parameters.
    expect(flat(w)).toEqual(cfg.w.data.map(Number));
    expect(flat(b)).toEqual(cfg.b.data.map(Number));
  });

  test("Adam's bias corrections use Python's beta ** step bit for bit", () => {
    // Values printed by Python 3 (glibc pow) on this machine. V8's ** differs for the first
    // three; 0.9999 ** 19035 is one where glibc itself is not correctly rounded.
    const python: [number, number, number][] = [
      [0.9, 4, 0.6561], [0.9, 23, 0.08862938119652507], [0.9, 29, 0.047101286972462485],
      [0.999, 5000, 0.006721111959865588], [0.9999, 19035, 0.1490318583674261], [0.7, 248, 3.83984703035892e-39],
      [0.999, 3, 0.997002999], [0.9, 2, 0.81], [0.9, 1, 0.9],
    ];
    for (const [b, s, v] of python) expect([b, s, pyPow(b, s)]).toEqual([b, s, v]);
    expect(0.9 ** 4).not.toBe(0.6561);
  });

  test('the fixture config that exercises AMSGrad differs from plain Adam', () => {
    // Guards the amsgrad test against passing vacuously.
    expect(fx.configs.adam_amsgrad_lr01_beta2_05.w.data).not.toEqual(fx.configs.adam_lr01_beta2_05.w.data);
  });
});

describeParity('optim: groups, state and state dicts', () => {
  test('paramGroups carry filled-in defaults; accepts modules and iterables', () => {
    const [w, b] = params();
    const opt = new SGD([{ params: [w] }, { params: b, lr: 0.5 }], { lr: 0.1, momentum: 0.5 });
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([0.1, 0.5]);
    expect(opt.paramGroups[1]).toMatchObject({ momentum: 0.5, dampening: 0, weightDecay: 0, nesterov: false, maximize: false });
    expect(opt.paramGroups[1].params[0]).toBe(b);
    const model = { parameters: function* () { yield w; yield b; } };
    expect(new Adam(model).paramGroups[0].params).toEqual([w, b]);
    expect(new Adam(new Set([w, b])).paramGroups[0].params).toEqual([w, b]);
    const a = new Adam([w]);
    a.addParamGroup({ params: [b], lr: 0.1 });
    expect(a.paramGroups[1]).toMatchObject({ lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, amsgrad: false });
  });

  test('zeroGrad sets grads to null by default, or zeroes them in place', () => {
    const [w, b] = params();
    const opt = new SGD([w, b], { lr: 0.1 });
    lossOf(w, b).backward();
    opt.zeroGrad(false);
    expect(flat(w.grad!).every((v) => v === 0)).toBe(true);
    opt.zeroGrad();
    expect(w.grad).toBeNull();
    expect(b.grad).toBeNull();
    opt.step(); // no grads: nothing changes, no state
    expect(flat(w)).toEqual(fx.w0.data.map(Number));
  });

  // The layouts PyTorch's own state_dict() gives for the same optimizers (fixture
  // "state_dicts"): group keys, state keys, tensor shapes and dtypes, which differ between
  // versions (2.x adds `fused`, and its SGD keeps no state without momentum).
  const layout = (opt: Optimizer) => {
    const sd = opt.stateDict();
    const v = (x: unknown) => (x instanceof Tensor ? { shape: x.shape, dtype: x.dtype } : x);
    const state = Object.fromEntries(Object.entries(sd.state).map(([i, st]) => [i, Object.fromEntries(Object.entries(st).map(([k, x]) => [k, v(x)]))]));
    return { param_groups: sd.param_groups, state };
  };
  test('stateDict has the layout of PyTorch\'s state_dict (keys, indices, state)', () => {
    const [w, b] = params();
    const adam = new Adam([w, b], { lr: 0.01, amsgrad: true });
    train(adam, w, b, 2);
    expect(layout(adam)).toEqual(fx.state_dicts.adam_amsgrad);
    const step = adam.stateDict().state[1].step as Tensor;
    expect(step.item()).toBe(2);

    const [w2, b2] = params();
    const sgd = new SGD([{ params: [w2] }, { params: [b2], lr: 0.5 }], { lr: 0.1, momentum: 0.9, nesterov: true });
    train(sgd, w2, b2, 1);
    expect(layout(sgd)).toEqual(fx.state_dicts.sgd_groups_nesterov);
    const [w3, b3] = params();
    const plain = new SGD([w3], { lr: 0.1 });
    train(plain, w3, b3, 1);
    expect(layout(plain)).toEqual(fx.state_dicts.sgd_plain);
  });

  test.each([
    ['Adam amsgrad', (p: Tensor[]) => new Adam(p, { lr: 0.1, betas: [0.9, 0.5], amsgrad: true, weightDecay: 0.01 })],
    ['SGD nesterov', (p: Tensor[]) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true })],
    ['SGD groups', (p: Tensor[]) => new SGD([{ params: [p[0]] }, { params: [p[1]], lr: 0.5 }], { lr: 0.1, momentum: 0.5, dampening: 0.1 })],
  ])('%s: stateDict round trip (2 steps, save, load into a fresh optimizer, 3 more on both)', (_name, make) => {
    const [w, b] = params();
    const a = make([w, b]);
    train(a, w, b, 2);
    const w2 = w.detach().clone().requiresGrad_();
    const b2 = b.detach().clone().requiresGrad_();
    const fresh = make([w2, b2]);
    if (fresh instanceof SGD) fresh.paramGroups.forEach((g) => (g.lr = 123)); // overwritten by the load
    fresh.loadStateDict(a.stateDict());
    expect(fresh.paramGroups.map((g) => g.lr)).toEqual(a.paramGroups.map((g) => g.lr));
    // Loaded buffers are copies: stepping one optimizer leaves the other's state alone.
    for (const [p, s] of a.state) {
      const p2 = p === w ? w2 : b2;
      for (const [k, v] of Object.entries(s)) {
        if (v instanceof Tensor) expect(fresh.state.get(p2)![k]).not.toBe(v);
      }
    }
    const la = train(a, w, b, 3);
    const lb = train(fresh, w2, b2, 3);
    expect(lb).toEqual(la);
    expect(flat(w2)).toEqual(flat(w));
    expect(flat(b2)).toEqual(flat(b));
  });

  test('state survives a caller tidy and step leaves no temporaries behind', async () => {
    const [w, b] = params();
    const opt = new Adam([w, b], { amsgrad: true });
    torch.tidy(() => {
      lossOf(w, b).backward();
      opt.step();
    });
    expect((opt.state.get(w)!.exp_avg as Tensor).isDisposed).toBe(false);
    const before = undisposed();
    for (let i = 0; i < 3; i++) opt.step();
    expect(undisposed()).toBe(before);
  });

  test('step(closure) returns the closure loss; maximize flips the direction', () => {
    const [w, b] = params();
    const opt = new SGD([w, b], { lr: 0.1, maximize: true });
    const first = opt.step(() => {
      opt.zeroGrad();
      const l = lossOf(w, b);
      l.backward();
      return l.item() as number;
    });
    expect(first).toBeCloseTo(fx.configs.sgd.losses[0], 6);
    const after = torch.noGrad(() => lossOf(w, b).item() as number);
    expect(after).toBeGreaterThan(first);
  });
});
