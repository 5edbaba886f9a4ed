// The generic op path: native/dispatch.cc (opSchemas, opHandle, callOp), the calling
// convention of lib/ops/runtime.ts and the surface scripts/gen-ops.js generated.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as torch from '../lib';
import { Tensor, TorchError } from '../lib';
import { N } from '../lib/native';
import { camel, isDimnameArg, parseSchema, ParsedSchema } from '../lib/ops/schema';
import { GENERATED_FROM, GENERATED_FROM_ENGINES } from '../lib/ops/generated';
import { callOp, op } from '../lib/ops/runtime';

const ops = torch.ops as unknown as Record<string, (...a: unknown[]) => any>;
const arr = (t: Tensor) => t.toArray();

describe('ops: throw cases', () => {
  test('an unknown keyword is a TypeError naming the op and the key', () => {
    const x = torch.randn(2, 3);
    expect(() => x.topk(1, { dimm: 1 } as any)).toThrow(new TypeError("topk: unknown keyword argument 'dimm' (it takes k, dim, largest, sorted)"));
    expect(() => torch.linspace(0, 1, 3, { dtpye: 'float64' } as any)).toThrow(/^linspace: unknown keyword argument 'dtpye'/);
    // snake_case is not the convention: camelCase is.
    expect(() => torch.ops.zeros([2], { pin_memory: false } as any)).toThrow(/zeros: unknown keyword argument 'pin_memory'/);
  });

  test('a wrong JS type names the op, the argument, the schema type and the value', () => {
    const x = torch.randn(3);
    expect(() => x.topk('a' as any)).toThrow(TypeError);
    // 2.x declares k a SymInt, 1.13 an int: the message names the loaded engine's schema type.
    expect(() => x.topk('a' as any)).toThrow(/^topk: expected an integer for k \((int|SymInt)\) but received 'a'/);
    expect(() => ops.add(x, 'a')).toThrow(/add\(\) received an invalid combination of arguments: \(Tensor, 'a'\)/);
    expect(() => ops.add(x, 'a')).toThrow(/aten::add\.Tensor\(Tensor self, Tensor other, \*, Scalar alpha=…\): expected a Tensor for other \(Tensor\) but received 'a'/);
    expect(() => torch.eye(2.5 as any)).toThrow(/eye.*expected an integer for n \((int|SymInt)\) but received 2.5/s);
    expect(() => x.topk(1, 0, true, true, true as any)).toThrow(/takes 4 positional arguments but 5 were given/);
    expect(() => x.topk(1, { dim: 0, k: 1 } as any)).toThrow(/multiple values for argument k/);
    expect(() => ops.layerNorm(x)).toThrow(/missing argument normalized_shape \((int|SymInt)\[\]\)/);
  });

  test('the native entry checks every argument itself', () => {
    const x = torch.randn(3);
    const add = N.opHandle('aten::add', 'Scalar');
    expect(() => N.callOp(add, x.handle, 'a')).toThrow(new TypeError("Expected a number for aten::add.Scalar argument other (Scalar) but received 'a'"));
    expect(() => N.callOp(add)).toThrow(new TypeError('Missing aten::add.Scalar argument self (Tensor): it has no default'));
    expect(() => N.callOp(add, null, 1)).toThrow(/received null \(it is not optional\)/);
    expect(() => N.callOp(add, x.handle, 1, 1, 1)).toThrow(/takes 3 arguments but received 4/);
    expect(() => N.callOp(x.handle, 1)).toThrow(/Expected an op handle \(from opHandle\) but received a Tensor/);
    expect(() => N.callOp({}, 1)).toThrow(/Expected an op handle \(from opHandle\) but received an object/);
    const dims = N.opHandle('aten::sum', 'dim_DimnameList');
    expect(() => N.callOp(dims, x.handle, ['a'])).toThrow(/argument dim has schema type Dimname, which torchnode cannot pass yet/);
    const rs = N.opHandle('aten::record_stream', '');
    expect(() => N.callOp(rs, x.handle, 1)).toThrow(/argument s has schema type Stream, which torchnode cannot pass yet/);
    const d = torch.ones(2);
    d.dispose();
    expect(() => ops.neg(d)).toThrow(/disposed/);
  });

  test("libtorch's own errors are TorchErrors; an op the engine lacks names the op and the version", () => {
    const x = torch.randn(3);
    expect(() => torch.bmm(x, x)).toThrow(TorchError);
    expect(() => torch.bmm(x, x)).toThrow(/batch1 must be a 3D tensor/);
    expect(() => N.opHandle('aten::no_such_op', '')).toThrow(new TorchError(`op aten::no_such_op is not in libtorch ${torch.version.split('+')[0]}`));
    // Kernels that crash on inputs they do not check are checked first, or refused.
    expect(() => ops.alignTensors([])).toThrow(/expected at least one tensor/);
    expect(() => ops.pixelShuffle(torch.ones(1, 4, 2, 2), 2 ** 40)).toThrow(TorchError);
    expect(() => ops.thnnConv2d(x, x, 3)).toThrow(/not callable through torchnode: it is an internal kernel/);
  });

  test('an op the typed surface has but the loaded engine lacks is a TorchError naming the engines that have it', () => {
    const loaded = torch.version.split('+')[0];
    const missing = op('aten::only_in_another_version', [['', ['self:Tensor'], ['Tensor'], ['9.9.0']]]);
    expect(() => callOp(missing, [torch.ones(1)])).toThrow(TorchError);
    expect(() => callOp(missing, [torch.ones(1)])).toThrow(
      new TorchError(`torch.ops.onlyInAnotherVersion: aten::only_in_another_version is not in libtorch ${loaded} (it is in libtorch 9.9.0)`),
    );
    // No engines recorded for the overload: the ones the surface was generated from, less the loaded one.
    const others = GENERATED_FROM_ENGINES.filter((v) => v !== loaded);
    const unrecorded = op('aten::only_in_another_version', [['', ['self:Tensor'], ['Tensor']]]);
    const words = others.length < 2 ? others.join('') : `${others.slice(0, -1).join(', ')} and ${others[others.length - 1]}`;
    expect(() => callOp(unrecorded, [torch.ones(1)])).toThrow(
      others.length
        ? new TorchError(`torch.ops.onlyInAnotherVersion: aten::only_in_another_version is not in libtorch ${loaded} (it is in libtorch ${words})`)
        : new TorchError(`torch.ops.onlyInAnotherVersion: op aten::only_in_another_version is not in libtorch ${loaded}`),
    );
  });
});

describe('ops: coverage', () => {
  test("at least 95% of the engine's public non-backward ops are callable through the generic path", () => {
    const byOp = new Map<string, ParsedSchema[]>();
    for (const e of N.opSchemas()) {
      const s = parseSchema(e.schema);
      const short = s.name.slice(6);
      if (!s.name.startsWith('aten::') || short.startsWith('_') || /backward/.test(short)) continue;
      if (!byOp.has(s.name)) byOp.set(s.name, []);
      byOp.get(s.name)!.push(s);
    }
    const rest: Record<string, string> = {};
    let callable = 0;
    for (const [name, list] of byOp) {
      const js = camel(name.slice(6));
      const reasons: string[] = [];
      let ok = false;
      for (const s of list) {
        if (s.overload === 'out' || /(^|_)out$/.test(s.overload) || s.args.some((a) => a.writes && a.kwargOnly)) continue;
        const unsupported = N.opArgs(N.opHandle(s.name, s.overload)).filter((a) => !a.supported);
        if (unsupported.length === 0) ok = true;
        for (const a of unsupported) {
          const dimname = isDimnameArg(s.overload, { ...s.args.find((x) => x.name === a.name)!, base: 'str' });
          reasons.push(`${s.overload || '(default)'}: ${a.name} is ${dimname ? 'a Dimname (named tensors)' : a.type}`);
        }
      }
      const reachable = typeof ops[js] === 'function' || typeof ops[`${js}_op`] === 'function';
      if (ok && reachable) callable++;
      else rest[name] = reachable ? reasons.join('; ') : `not generated (${reasons.join('; ') || 'no overload'})`;
    }
    const fraction = callable / byOp.size;
    // The figure and the rest, for the record (also in the report of the task).
    console.log(
      `ops coverage on libtorch ${torch.version}: ${callable}/${byOp.size} public non-backward ops callable (${(100 * fraction).toFixed(1)}%); the rest:\n` +
        Object.entries(rest).map(([k, v]) => `  ${k}: ${v}`).join('\n'),
    );
    expect(fraction).toBeGreaterThanOrEqual(0.95);
  });

  test('the generated file records the engine it came from', () => {
    expect(GENERATED_FROM).toMatch(/^\d+\.\d+/);
  });
});

describe('ops: correctness', () => {
  test('factories: linspace, eye, zeros with varargs and keywords', () => {
    expect(arr(torch.linspace(0, 1, 5))).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(torch.linspace(0, 1, 5, { dtype: 'float64' }).dtype).toBe('float64');
    expect(arr(torch.eye(2, 3))).toEqual([[1, 0, 0], [0, 1, 0]]);
    expect(ops.zeros(2, 3).shape).toEqual([2, 3]);
    expect(ops.zeros([2, 3], { dtype: 'float16' }).dtype).toBe('float16');
    expect(ops.ones(2, { dtype: 'bfloat16', requiresGrad: true }).requiresGrad).toBe(true);
  });

  test('tril, topk with keywords and named returns, sort, cumsum, flip', () => {
    const x = torch.tensor([[3, 1, 2], [9, 7, 8]], { dtype: 'float32' });
    expect(arr(x.tril())).toEqual([[3, 0, 0], [9, 7, 0]]);
    expect(arr(torch.tril(x, -1))).toEqual([[0, 0, 0], [9, 0, 0]]);
    const tk = x.topk(2, { dim: 1, largest: false });
    expect(arr(tk[0])).toEqual([[1, 2], [7, 8]]);
    expect(arr(tk.indices)).toEqual([[1, 2], [1, 2]]);
    expect(tk.indices.dtype).toBe('int64');
    const [sorted, idx] = x.sort({ descending: true });
    expect(arr(sorted)).toEqual([[3, 2, 1], [9, 8, 7]]);
    expect(arr(idx)).toEqual([[0, 2, 1], [0, 2, 1]]);
    expect(arr(x.cumsum(1))).toEqual([[3, 4, 6], [9, 16, 24]]);
    expect(arr(x.flip(0))).toEqual([[9, 7, 8], [3, 1, 2]]);
    expect(arr(x.flip([0, 1]))).toEqual([[8, 7, 9], [2, 1, 3]]);
  });

  test('bmm, masked_select, nonzero, layer_norm, one_hot', () => {
    expect(arr(torch.bmm(torch.ones(2, 2, 3), torch.ones(2, 3, 1)))).toEqual([[[3], [3]], [[3], [3]]]);
    const x = torch.tensor([[3, 1], [9, 7]], { dtype: 'float32' });
    expect(arr(x.maskedSelect(x.gt(2)))).toEqual([3, 9, 7]);
    expect(arr(x.gt(2).nonzero())).toEqual([[0, 0], [1, 0], [1, 1]]);
    const ln = torch.layerNorm(torch.tensor([[1, 2, 3]], { dtype: 'float32' }), [3]).toArray() as number[][];
    expect(ln[0].map((v) => Number(v.toFixed(4)))).toEqual([-1.2247, 0, 1.2247]);
    expect(arr(torch.oneHot(torch.tensor([0n, 2n]), 3))).toEqual([[1, 0, 0], [0, 0, 1]]);
  });

  test('varargs and list forms, in-place forms return this, non-tensor returns', () => {
    const x = torch.arange(6).view(2, 3);
    expect(ops.permute(x, [1, 0]).shape).toEqual([3, 2]);
    expect(x.swapaxes(0, 1).shape).toEqual([3, 2]);
    expect(x.tile(2).shape).toEqual([2, 6]);
    const z = torch.zeros(3);
    expect(z.fill_(2)).toBe(z);
    expect(ops.add_(z, 1)).toBe(z);
    expect(arr(z)).toEqual([3, 3, 3]);
    expect(ops.size(x, 1)).toBe(3);
    expect(ops.isFloatingPoint(x)).toBe(false);
    expect(ops.resultType(x, 1.5)).toBe('float32');
    expect(ops.unbind(x).length).toBe(2);
    expect(torch.allclose(torch.ones(2), torch.ones(2))).toBe(true);
  });

  test('Tensor?[] indices (index, index_put_), Tensor[] and Scalar lists', () => {
    const x = torch.arange(6).view(2, 3);
    expect(arr(ops.index(x, [null, torch.tensor([2n, 0n])]))).toEqual([[2, 0], [5, 3]]);
    const y = torch.zeros(2, 3);
    expect(y.indexPut_([torch.tensor([1n]), torch.tensor([2n])], torch.tensor([7], { dtype: 'float32' }))).toBe(y);
    expect(arr(y)).toEqual([[0, 0, 0], [0, 0, 7]]);
    expect(torch.broadcastTensors([torch.ones(2, 1), torch.ones(1, 3)]).map((t) => t.shape)).toEqual([[2, 3], [2, 3]]);
    expect(arr(torch.ops.tensorSplit(torch.arange(5), 2)[1])).toEqual([3, 4]);
  });

  test("where the engine's schema differs from the generated one, the engine's wins", () => {
    // As if generated from a version whose topk had only (self, k).
    const topk = op('aten::topk', [['', ['self:Tensor', 'k:int'], ['values:Tensor', 'indices:Tensor']]]);
    const r = callOp(topk, [torch.tensor([1, 3, 2], { dtype: 'float32' }), 1, { largest: false }]) as Tensor[];
    expect(arr(r[0])).toEqual([1]);
  });

  test("random ops take a Generator, and this thread's generator by default", () => {
    const draw = (g: torch.Generator) => ops.randn([4], { generator: g }).toArray();
    expect(draw(new torch.Generator().manualSeed(5))).toEqual(draw(new torch.Generator().manualSeed(5)));
    try {
      torch.useThreadGenerator(new torch.Generator().manualSeed(7));
      const a = ops.normal(0, 1, [4]).toArray();
      torch.useThreadGenerator(new torch.Generator().manualSeed(7));
      expect(ops.normal(0, 1, [4]).toArray()).toEqual(a);
    } finally {
      torch.useThreadGenerator(null);
    }
  });

  test('a 0-dim tensor that needs no grad stands for a Scalar, with its type, as in PyTorch', () => {
    // Numbers from PyTorch 1.13: torch.full((2,), torch.tensor(3.)) is float, of torch.tensor(3) int64.
    const f = torch.ops.full([2], torch.tensor(3));
    expect([f.dtype, f.toArray()]).toEqual(['float32', [3, 3]]);
    const i = torch.ops.full([2], torch.tensor(3n));
    expect([i.dtype, i.toArray()]).toEqual(['int64', [3, 3]]);
    // The hand-written factory follows the same rule.
    expect([torch.full([2], torch.tensor(0.25)).dtype, torch.full([2], torch.tensor(0.25)).toArray()]).toEqual(['float32', [0.25, 0.25]]);
    expect(torch.full([2], torch.tensor(3n)).dtype).toBe('int64');
    expect(() => torch.full([2], torch.tensor([3]))).toThrow(/Expected a number or a 0-dim tensor for fillValue/);
    const x = torch.tensor([1, 2]);
    expect(x.add(1, { alpha: torch.tensor(2) }).toArray()).toEqual([3, 4]);
    expect(x.addcmul(x, x, { value: torch.tensor(0.5) }).toArray()).toEqual([1.5, 4]);
    // A Tensor overload still wins where there is one (clamp.Tensor, add.Tensor).
    expect(x.clamp(torch.tensor(1.5)).toArray()).toEqual([1.5, 2]);
    expect(x.add(torch.tensor(3)).toArray()).toEqual([4, 5]);
    // Not one that requires grad, nor one with elements: the usual TypeError.
    expect(() => torch.ops.full([2], torch.tensor(3).requiresGrad_())).toThrow(/full: expected a number for fillValue \(Scalar\) but received a Tensor/);
    expect(() => torch.ops.full([2], torch.tensor([3]))).toThrow(/full: expected a number for fillValue/);
  });

  test('autograd runs through the generic path', () => {
    const a = torch.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
    const y = ops.mul(a, a);
    expect(y.requiresGrad).toBe(true);
    torch.cumsum(y, 0).sum().backward();
    // d/da sum_k cumsum(a^2)_k = (n - i) * 2 a_i
    expect(arr(a.grad!)).toEqual([6, 8, 6]);
  });
});

describe('ops: fuzz', () => {
  test('random public ops with random arguments of every kind never crash the process', () => {
    const script = path.join(__dirname, 'fixtures', 'ops-fuzz.js');
    const dist = path.join(__dirname, '..', 'dist');
    for (const seed of [1, 2]) {
      const r = spawnSync(process.execPath, [script, dist, String(seed), '1500'], { encoding: 'utf8', timeout: 110000, maxBuffer: 64 << 20 });
      const lines = (r.stdout || '').trim().split('\n');
      const last = lines[lines.length - 1];
      if (r.status !== 0) throw new Error(`fuzz seed ${seed} died (status ${r.status}, signal ${r.signal}) at: ${lines[lines.length - 1]}`);
      expect(last).toMatch(/^DONE ok=\d+ errors=\d+$/);
    }
  }, 240000);
});
