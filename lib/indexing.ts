/**
 * PyTorch's indexing, as at::indexing applies it (`x[0, 1:3, ..., None, mask]`):
 * integers select, slices (`'1:3'`, `'::2'`, `':'`, or `new Slice(1, 3)`) slice,
 * `null` is None (a new dim of size 1), `'...'` stands for the dims not named, and
 * integer or boolean tensors (or arrays of integers) index by value. The basic forms
 * give a view; tensor indices then go through aten::index / aten::index_put_.
 */
import { argTypeError, codedError, describe, ERROR_CODES } from './errors';
import { N, NativeOp, NativeTensor } from './native';
import type { Tensor } from './tensor';

/** Python's `slice(start, stop, step)`: `new Slice(1, 3)` is `1:3`, `new Slice(null, null, 2)` is `::2`. */
export class Slice {
  constructor(
    readonly start: number | null = null,
    readonly stop: number | null = null,
    readonly step: number | null = null,
  ) {
    for (const [k, v] of [['start', start], ['stop', stop], ['step', step]] as const) {
      if (v !== null && !Number.isSafeInteger(v)) throw argTypeError(`Slice: expected an integer or null for ${k} but received ${describe(v)}`);
    }
    if (step !== null && step <= 0) throw codedError(ERROR_CODES.value, `Slice: step must be greater than zero but is ${step}`);
  }
  toString(): string {
    return `${this.start ?? ''}:${this.stop ?? ''}${this.step === null ? '' : `:${this.step}`}`;
  }
}

/** One index: see the module comment. */
export type Index = number | string | null | Slice | Tensor | readonly number[] | readonly bigint[];

const ELLIPSIS = Symbol('...');
type Parsed = { kind: 'int'; i: number } | { kind: 'slice'; s: Slice } | { kind: 'none' } | { kind: 'ellipsis' } | { kind: 'tensor'; t: Tensor; owned: boolean };

const SLICE_RE = /^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?$/;

function indexError(message: string): Error {
  // Python raises IndexError; the code says which kind of bad input it is.
  const e = codedError(ERROR_CODES.outOfRange, message);
  e.name = 'IndexError';
  return e;
}

function parse(v: unknown, at: number, isTensor: (x: unknown) => x is Tensor, makeIndex: (xs: readonly (number | bigint)[]) => Tensor): Parsed {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw argTypeError(`index: expected an integer for indices[${at}] but received ${describe(v)}`);
    return { kind: 'int', i: v };
  }
  if (v === null) return { kind: 'none' };
  if (v instanceof Slice) return { kind: 'slice', s: v };
  if (typeof v === 'string') {
    if (v.trim() === '...') return { kind: 'ellipsis' };
    const m = SLICE_RE.exec(v);
    if (!m) throw argTypeError(`index: expected a slice like '1:3', '::2' or ':', or '...', for indices[${at}] but received ${describe(v)}`);
    const n = (s: string | undefined) => (s === undefined ? null : Number(s));
    return { kind: 'slice', s: new Slice(n(m[1]), n(m[2]), n(m[3])) };
  }
  if (isTensor(v)) return { kind: 'tensor', t: v, owned: false };
  if (Array.isArray(v)) {
    // A list is an integer index tensor, as x[[0, 2]] is in PyTorch.
    if (!v.every((e) => (typeof e === 'number' && Number.isSafeInteger(e)) || typeof e === 'bigint')) {
      throw argTypeError(`index: expected integers in the list at indices[${at}] but received ${describe(v)}`);
    }
    return { kind: 'tensor', t: makeIndex(v as (number | bigint)[]), owned: true };
  }
  throw argTypeError(
    `index: expected an integer, a slice ('1:3', new Slice(...)), null, '...', a Tensor or a list of integers for indices[${at}] but received ${describe(v)}`,
  );
}

export interface IndexDeps {
  isTensor: (x: unknown) => x is Tensor;
  makeIndex: (xs: readonly (number | bigint)[]) => Tensor;
  wrap: (n: NativeTensor) => Tensor;
  handle: (t: Tensor) => NativeTensor;
  scalarLike: (value: number | boolean | bigint, like: Tensor) => Tensor;
}

let indexOp: NativeOp | null = null;
let aliasOp: NativeOp | null = null;
let indexPutOp: NativeOp | null = null;

/** The basic indexing as a view, and the tensor indices left for aten::index (null: this dim whole). */
function applyBasic(x: Tensor, indices: readonly unknown[], deps: IndexDeps, what: string): { view: Tensor; tensors: (Tensor | null)[]; temps: Tensor[] } {
  const parsed = indices.map((v, i) => parse(v, i, deps.isTensor, deps.makeIndex));
  const temps: Tensor[] = parsed.flatMap((p) => (p.kind === 'tensor' && p.owned ? [p.t] : []));
  let consumed = 0;
  let ellipses = 0;
  for (const p of parsed) {
    if (p.kind === 'ellipsis') ellipses++;
    else if (p.kind === 'tensor') consumed += p.t.dtype === 'bool' || p.t.dtype === 'uint8' ? Math.max(p.t.dim(), 1) : 1;
    else if (p.kind !== 'none') consumed++;
  }
  const ndim = x.dim();
  if (ellipses > 1) throw indexError(`${what}: an index can only have a single ellipsis ('...')`);
  if (consumed > ndim) throw indexError(`${what}: too many indices for tensor of dimension ${ndim} (${consumed} given)`);
  const expanded: Parsed[] = [];
  for (const p of parsed) {
    if (p.kind === 'ellipsis') for (let k = 0; k < ndim - consumed; k++) expanded.push({ kind: 'slice', s: new Slice() });
    else expanded.push(p);
  }
  let view = x;
  let d = 0;
  const tensors: (Tensor | null)[] = [];
  const step = (next: Tensor) => {
    if (view !== x) temps.push(view);
    view = next;
  };
  for (const p of expanded) {
    if (p.kind === 'int') {
      const size = view.shape[d];
      if (p.i < -size || p.i >= size) throw indexError(`${what}: index ${p.i} is out of bounds for dimension ${d} with size ${size}`);
      step(view.select(d, p.i));
    } else if (p.kind === 'slice') {
      step(view.slice(d, p.s.start, p.s.stop, p.s.step ?? 1));
      tensors.push(null);
      d++;
    } else if (p.kind === 'none') {
      step(view.unsqueeze(d));
      tensors.push(null);
      d++;
    } else if (p.kind === 'tensor') {
      tensors.push(p.t);
      d += p.t.dtype === 'bool' || p.t.dtype === 'uint8' ? Math.max(p.t.dim(), 1) : 1;
    }
  }
  while (tensors.length && tensors[tensors.length - 1] === null) tensors.pop();
  return { view, tensors, temps };
}

/** x.index(...indices): PyTorch's `x[indices]`. */
export function indexGet(x: Tensor, indices: readonly unknown[], deps: IndexDeps): Tensor {
  const { view, tensors, temps } = applyBasic(x, indices, deps, 'index');
  try {
    if (!tensors.length) {
      // A pure view; when nothing was indexed it is still a new Tensor, as x[...] is.
      if (view !== x) return view;
      aliasOp ??= N.opHandle('aten::alias', '');
      return deps.wrap(N.callOp(aliasOp, deps.handle(x)) as NativeTensor);
    }
    indexOp ??= N.opHandle('aten::index', 'Tensor');
    temps.push(view);
    return deps.wrap(N.callOp(indexOp, deps.handle(view), tensors.map((t) => (t ? deps.handle(t) : null))) as NativeTensor);
  } finally {
    for (const t of temps) if (t !== x) t.dispose();
  }
}

/** x.indexPut_(indices, values): PyTorch's `x[indices] = values`, in place; returns x. */
export function indexSet(x: Tensor, indices: readonly unknown[], values: unknown, deps: IndexDeps, accumulate = false): Tensor {
  if (!Array.isArray(indices)) throw argTypeError(`indexPut_: expected an array of indices for indices but received ${describe(indices)}`);
  if (typeof accumulate !== 'boolean') throw argTypeError(`indexPut_: expected a boolean for accumulate but received ${describe(accumulate)}`);
  const isScalar = typeof values === 'number' || typeof values === 'boolean' || typeof values === 'bigint';
  if (!isScalar && !deps.isTensor(values)) throw argTypeError(`indexPut_: expected a Tensor or a number for values but received ${describe(values)}`);
  const { view, tensors, temps } = applyBasic(x, indices, deps, 'indexPut_');
  try {
    const v = isScalar ? deps.scalarLike(values as number, view) : (values as Tensor);
    if (isScalar) temps.push(v);
    if (!tensors.length && !accumulate) {
      view.copy_(v);
    } else {
      indexPutOp ??= N.opHandle('aten::index_put_', '');
      N.callOp(indexPutOp, deps.handle(view), tensors.map((t) => (t ? deps.handle(t) : null)), deps.handle(v), accumulate);
    }
    if (view !== x) temps.push(view);
    return x;
  } finally {
    for (const t of temps) if (t !== x) t.dispose();
  }
}

export { ELLIPSIS };
