// Op-by-op parity of the generic op layer (torch.ops.*) with real PyTorch: every case of
// test/fixtures/<major.minor>/ops_parity.json (scripts/make_op_parity.py, npm run fixtures:ops)
// is replayed through torch.ops.<camelName> (or the Tensor method) on the same fixed
// inputs, and its outputs, mutated self (in-place forms) and gradients are compared.
import * as fs from 'node:fs';
import * as torch from '../lib';
import { Tensor } from '../lib';
import { camel } from '../lib/ops/schema';
import { describeParity, FIXTURE_DIR, fixturePath } from './helpers';

interface FT { dtype: string; shape: number[]; values: (number | boolean | string)[] }
type Arg = { tensor: FT } | { dtype: string } | { str: string } | number | boolean | null | Arg[];
type Out = { tensor: FT } | { list: Out[] } | { scalar: number | boolean | string } | { none: true };
interface Tol { rtol: number; atol: number }
interface Case {
  id: string; op: string; name: string; method: boolean; inplace: boolean; spread?: boolean;
  args: Arg[]; kwargs: Record<string, Arg>; expected: Out; self_after?: FT; tol: Tol;
  grad?: { weights: FT[]; inputs: (number | string)[]; grads: (FT | null)[]; tol: Tol };
}
interface Fixture { generator: Record<string, unknown>; distinct_ops: number; grad_cases: number; cases: Case[]; skipped: { id: string; reason: string }[] }

// The version's file may be missing even where the other fixtures exist (then: a visible skip).
const FILE = FIXTURE_DIR && fs.existsSync(`${FIXTURE_DIR}/ops_parity.json`) ? fixturePath('ops_parity.json') : null;
const fx: Fixture = FILE ? JSON.parse(fs.readFileSync(FILE, 'utf8')) : { generator: {}, distinct_ops: 0, grad_cases: 0, cases: [], skipped: [] };
const describeOps = FILE ? describeParity : (name: string, fn: () => void) =>
  describe.skip(`${name} [skipped: no ops_parity.json for libtorch ${torch.version} (make it with that version's PyTorch: npm run fixtures:ops)]`, fn);

const ops = torch.ops as unknown as Record<string, (...a: unknown[]) => unknown>;
const FLOATS = new Set(['float32', 'float64', 'float16', 'bfloat16']);
const num = (v: number | boolean | string): number =>
  typeof v === 'string' ? (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v)) : Number(v);

function build(f: FT, grad = false): Tensor {
  const vals = f.values.map((v) => (f.dtype === 'bool' ? Boolean(v) : num(v)));
  const t = torch.tensor(vals as number[], { dtype: f.dtype as torch.DType }).reshape(f.shape);
  return grad ? t.requiresGrad_(true) : t;
}

function decode(a: Arg, grad = false): unknown {
  if (a === null || typeof a !== 'object') return a;
  if (Array.isArray(a)) return a.map((e) => decode(e, grad));
  if ('tensor' in a) return build(a.tensor, grad && FLOATS.has(a.tensor.dtype));
  if ('dtype' in a) return a.dtype;
  return a.str;
}

function values(t: Tensor): number[] {
  const c = FLOATS.has(t.dtype) ? t.to('float64') : t.dtype === 'bool' ? t.to('int64') : t.to('int64');
  return Array.from(c.toTypedArray() as ArrayLike<number | bigint>, Number);
}

function close(a: number, e: number, tol: Tol): boolean {
  if (Number.isNaN(e)) return Number.isNaN(a);
  if (!Number.isFinite(e)) return a === e;
  return Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
}

/** Why `got` differs from tensor `f` (null when it matches). */
function tensorDiff(got: unknown, f: FT, tol: Tol, where: string): string | null {
  if (!(got instanceof Tensor)) return `${where}: expected a Tensor but got ${typeof got}`;
  if (got.dtype !== f.dtype) return `${where}: dtype ${got.dtype}, expected ${f.dtype}`;
  if (JSON.stringify(got.shape) !== JSON.stringify(f.shape)) return `${where}: shape [${got.shape}], expected [${f.shape}]`;
  const a = values(got);
  const exact = !FLOATS.has(f.dtype);
  for (let i = 0; i < a.length; i++) {
    const e = num(f.values[i]);
    if (exact ? a[i] !== e : !close(a[i], e, tol)) {
      return `${where}: element ${i} is ${a[i]}, expected ${e} (${exact ? 'exact' : `rtol ${tol.rtol}, atol ${tol.atol}`})`;
    }
  }
  return null;
}

function outDiff(got: unknown, e: Out, tol: Tol, where: string): string | null {
  if ('tensor' in e) return tensorDiff(got, e.tensor, tol, where);
  if ('list' in e) {
    if (!Array.isArray(got)) return `${where}: expected a list of ${e.list.length} but got ${typeof got}`;
    if (got.length !== e.list.length) return `${where}: ${got.length} elements, expected ${e.list.length}`;
    for (let i = 0; i < got.length; i++) {
      const d = outDiff(got[i], e.list[i], tol, `${where}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if ('none' in e) return got === null || got === undefined ? null : `${where}: expected None but got ${String(got)}`;
  const s = e.scalar;
  if (typeof s === 'boolean') return got === s ? null : `${where}: ${String(got)}, expected ${s}`;
  const g = typeof got === 'bigint' ? Number(got) : got;
  if (typeof g !== 'number') return `${where}: expected a number but got ${typeof got}`;
  return close(g, num(s), tol) ? null : `${where}: ${g}, expected ${s}`;
}

function call(c: Case, all: unknown[], kw: Record<string, unknown>): unknown {
  const rest: unknown[] = Object.keys(kw).length ? [kw] : [];
  // Python's varargs form: the last positional list spread (`x.permute(2, 0, 1)`, `zeros(2, 3)`).
  const args = c.spread ? [...all.slice(0, -1), ...(all[all.length - 1] as unknown[])] : all;
  const fname = camel(c.name);
  if (c.method) {
    const self = args[0] as Tensor & Record<string, unknown>;
    const m = self[fname];
    if (typeof m !== 'function') throw new Error(`Tensor has no method ${fname}`);
    return (m as (...a: unknown[]) => unknown).apply(self, [...args.slice(1), ...rest]);
  }
  const f = ops[fname];
  if (typeof f !== 'function') throw new Error(`torch.ops has no ${fname}`);
  return f(...args, ...rest);
}

function camelKw(kwargs: Record<string, Arg>, grad = false): Record<string, unknown> {
  const kw: Record<string, unknown> = {};
  for (const k of Object.keys(kwargs)) kw[camel(k)] = decode(kwargs[k], grad);
  return kw;
}

function floatOutputs(o: unknown, acc: Tensor[]): Tensor[] {
  if (o instanceof Tensor) {
    if (FLOATS.has(o.dtype) && o.requiresGrad) acc.push(o);
  } else if (Array.isArray(o)) {
    for (const e of o) floatOutputs(e, acc);
  }
  return acc;
}

/** Every difference of case `c` from PyTorch's record, as messages naming the case. */
function check(c: Case): string[] {
  const problems: string[] = [];
  const args = c.args.map((a) => decode(a));
  const kw = camelKw(c.kwargs);
  const out = call(c, args, kw);
  const d = outDiff(out, c.expected, c.tol, 'output');
  if (d) problems.push(d);
  if (c.inplace && c.self_after) {
    const s = tensorDiff(args[0], c.self_after, c.tol, 'mutated self');
    if (s) problems.push(s);
    if (out !== args[0]) problems.push('an in-place form should return its self');
  }
  if (c.grad) {
    const g = c.grad;
    const want = new Set(g.inputs.map(String));
    // A Tensor[] argument's elements are "i.j".
    const gargs = c.args.map((a, i) =>
      Array.isArray(a) ? a.map((e, j) => decode(e, want.has(`${i}.${j}`))) : decode(a, want.has(String(i))));
    const gkw: Record<string, unknown> = {};
    for (const k of Object.keys(c.kwargs)) gkw[camel(k)] = decode(c.kwargs[k], want.has(k));
    const gout = call(c, gargs, gkw);
    const outs = floatOutputs(gout, []);
    if (outs.length !== g.weights.length) {
      problems.push(`grad: ${outs.length} differentiable outputs, expected ${g.weights.length}`);
      return problems;
    }
    let loss: Tensor | null = null;
    outs.forEach((o, i) => {
      const term = torch.ops.sum(torch.ops.mul(o, build(g.weights[i]))) as Tensor;
      loss = loss ? (torch.ops.add(loss, term) as Tensor) : term;
    });
    (loss as unknown as Tensor).backward();
    g.inputs.forEach((key, i) => {
      const dot = typeof key === 'string' ? /^(\d+)\.(\d+)$/.exec(key) : null;
      const t = (typeof key === 'number' ? gargs[key] : dot ? (gargs[Number(dot[1])] as Tensor[])[Number(dot[2])] : gkw[camel(key)]) as Tensor;
      const expected = g.grads[i];
      const where = `grad of ${typeof key === 'number' ? `argument ${key}` : key}`;
      if (expected === null) {
        if (t.grad !== null) problems.push(`${where}: expected none`);
        return;
      }
      const diff = tensorDiff(t.grad, expected, g.tol, where);
      if (diff) problems.push(diff);
    });
  }
  return problems;
}

describeOps('ops parity with PyTorch (ops_parity.json)', () => {
  const { cases } = fx;

  test('the fixture covers at least 300 distinct ops and 60 gradient cases, all replayed here', () => {
    const distinct = new Set(cases.map((c) => c.op));
    expect(distinct.size).toBeGreaterThanOrEqual(300);
    expect(cases.filter((c) => c.grad).length).toBeGreaterThanOrEqual(60);
    expect(distinct.size).toBe(fx.distinct_ops);
    // float16/bfloat16, integer dtypes and in-place forms are among them.
    const dtypes = new Set(cases.flatMap((c) => c.args.flatMap((a) => (a && typeof a === 'object' && 'tensor' in a ? [a.tensor.dtype] : []))));
    for (const d of ['float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']) expect(dtypes).toContain(d);
    expect(cases.filter((c) => c.inplace).length).toBeGreaterThanOrEqual(50);
  });

  // One test per case: a failure names the case, the call and what differs.
  test.each(cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    let problems: string[];
    try {
      problems = check(c);
    } catch (e) {
      problems = [`threw ${(e as Error).message}`];
    }
    if (problems.length) {
      const callText = `${c.method ? 'Tensor.' : 'torch.ops.'}${camel(c.name)}(${c.args.length} args${Object.keys(c.kwargs).length ? `, { ${Object.keys(c.kwargs).map(camel).join(', ')} }` : ''})`;
      throw new Error(`${c.id} (${callText}):\n  ${problems.join('\n  ')}`);
    }
  });
});
