// Random draws after manualSeed equal PyTorch's (fixtures: scripts/make_fixtures.py, random.json).
import * as torch from '../lib';
import { describeParity, fixture, flat, FixtureTensor } from './helpers';

const R = fixture('random.json');
const cases = (R.cases ?? {}) as Record<string, FixtureTensor & { expr: string }>;

function expectExact(t: torch.Tensor, f: FixtureTensor): void {
  expect(t.shape).toEqual(f.shape);
  expect(t.dtype).toBe(f.dtype);
  // Bit for bit: float32 values survive JSON as exact doubles.
  expect(flat(t)).toEqual(f.data.map(Number));
}

describe('random: throw cases', () => {
  test('bad seeds and generators', () => {
    expect(() => torch.manualSeed(1.5)).toThrow(/Expected an integer or bigint for seed but received 1.5/);
    expect(() => torch.manualSeed('1' as any)).toThrow(TypeError);
    expect(() => torch.rand([2], { generator: {} as any })).toThrow(/Expected a Generator for generator/);
    expect(() => torch.randperm(-1)).toThrow(/non-negative integer for n/);
    expect(() => new torch.Generator({ device: 'cuda' as any })).toThrow(TypeError);
  });
});

describeParity('random: parity with torch.manual_seed(0)', () => {
  const run: Record<string, () => torch.Tensor> = {
    rand_5: () => torch.rand(5),
    rand_2x3: () => torch.rand(2, 3),
    randn_7: () => torch.randn(7),
    randn_20: () => torch.randn(20),
    randn_3x8: () => torch.randn([3, 8]),
    randperm_10: () => torch.randperm(10),
    randperm_100: () => torch.randperm(100),
    randint_0_10_8: () => torch.randint(0, 10, [8]),
    uniform_6_m2_3: () => torch.empty(6).uniform_(-2, 3),
    normal_20_1_2: () => torch.empty(20).normal_(1, 2),
    rand_20_f64: () => torch.rand([20], { dtype: 'float64' }),
  };
  for (const [key, make] of Object.entries(run)) {
    test(`${key}: ${cases[key]?.expr}`, () => {
      torch.manualSeed(0);
      expectExact(make(), cases[key]);
    });
  }

  test('a Generator of its own: randperm then rand from Generator().manual_seed(42)', () => {
    const g = new torch.Generator().manualSeed(42);
    expectExact(torch.randperm(10, { generator: g }), R.generator_42.randperm_10);
    expectExact(torch.rand([4], { generator: g }), R.generator_42.rand_4);
    expect(g.initialSeed()).toBe(42n);
  });

  test('the int64 seed draw the DataLoader makes', () => {
    torch.manualSeed(0);
    const draw = torch.empty([], { dtype: 'int64' }).random_().item({ bigint: true });
    expect(String(draw)).toBe(R.dataloader_seed.seed);
    const g = new torch.Generator().manualSeed(BigInt(R.dataloader_seed.seed));
    expectExact(torch.randperm(20, { generator: g }), R.dataloader_seed.randperm_20);
  });

  test('generator state round-trips', () => {
    const g = new torch.Generator().manualSeed(7);
    const state = g.getState();
    const a = flat(torch.rand([5], { generator: g }));
    g.setState(state);
    expect(flat(torch.rand([5], { generator: g }))).toEqual(a);
  });
});
