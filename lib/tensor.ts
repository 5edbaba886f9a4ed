/**
 * The Tensor class and its factories: libtorch tensors with PyTorch's names and
 * semantics. Every op returns a new Tensor (or `this` for in-place `op_` forms).
 */
import { describe, expected, TorchError, argTypeError, outOfRangeError, codedError, checkKeys, ERROR_CODES } from './errors';
import { track } from './memory';
import { N, NativeGenerator, NativeTensor } from './native';
import { Index, IndexDeps, indexGet, indexSet } from './indexing';

/** Every dtype torchnode passes to libtorch, with PyTorch's names (`torch.float32` -> 'float32'). */
export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool'
  | 'complex64' | 'complex128';
export type DeviceType = 'cpu' | 'cuda' | `cuda:${number}`;
export type Shape = readonly number[];
export type Scalar = number | boolean | bigint;
export type TypedArrayData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int16Array | Int8Array | Uint16Array;
export type NestedArray = Scalar | NestedArray[];

export const DTYPES: readonly DType[] = [
  'float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'complex64', 'complex128',
];
/** PyTorch's aliases (`torch.float`, `torch.long`, ...), accepted wherever a dtype is. */
export const DTYPE_ALIASES: Readonly<Record<string, DType>> = {
  float: 'float32', double: 'float64', half: 'float16', long: 'int64', int: 'int32', short: 'int16', cfloat: 'complex64', cdouble: 'complex128',
};

// Dtype constants as in PyTorch: `torch.float32`, `torch.long`, ... (each is its dtype's name).
export const float32 = 'float32', float64 = 'float64', float16 = 'float16', bfloat16 = 'bfloat16';
export const int64 = 'int64', int32 = 'int32', int16 = 'int16', int8 = 'int8', uint8 = 'uint8', bool = 'bool';
export const complex64 = 'complex64', complex128 = 'complex128';
export const float = 'float32', double = 'float64', half = 'float16', long = 'int64', int = 'int32', short = 'int16';
export const cfloat = 'complex64', cdouble = 'complex128';

/**
 * A device, checked, as PyTorch's `torch.device`: `device('cuda:0')`, `device('cuda', 1)`,
 * `device('cpu')`. Devices are their names, so the result goes wherever a device string does.
 */
export function device(type: string, index?: number): DeviceType {
  if (typeof type !== 'string') expected("'cpu', 'cuda' or 'cuda:N'", 'type', type);
  if (index !== undefined) {
    if (!Number.isInteger(index) || index < 0) expected('a non-negative integer', 'index', index);
    if (type !== 'cuda') expected("'cuda' with an index", 'type', type);
    return `cuda:${index}`;
  }
  if (!/^(cpu|cuda(:\d{1,3})?)$/.test(type)) expected("'cpu', 'cuda' or 'cuda:N'", 'type', type);
  return type as DeviceType;
}

/**
 * The dtype factories use for JS numbers and when no dtype is given (float32 unless
 * changed), like `torch.get_default_dtype()`.
 */
export function getDefaultDtype(): DType {
  return N.getDefaultDtype() as DType;
}
/** Sets the default floating-point dtype (float32, float64, float16 or bfloat16), process-wide, like `torch.set_default_dtype`. */
export function setDefaultDtype(dtype: DType): void {
  N.setDefaultDtype(checkDtype(dtype) ?? expected('a floating-point dtype', 'dtype', dtype));
}
/**
 * How a tensor's elements lie in memory, with PyTorch's names: `contiguous_format`
 * (row-major, NCHW for images), `channels_last` (4-D, stored N, H, W, C),
 * `channels_last_3d` (5-D), and, for `to()`, `preserve_format` (keep the input's).
 */
export type MemoryFormat = 'contiguous_format' | 'channels_last' | 'channels_last_3d' | 'preserve_format';
export const MEMORY_FORMATS: readonly MemoryFormat[] = ['contiguous_format', 'channels_last', 'channels_last_3d', 'preserve_format'];
/** @internal */
export function checkMemoryFormat(v: unknown, name = 'memoryFormat'): MemoryFormat | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string' && (MEMORY_FORMATS as readonly string[]).includes(v)) return v as MemoryFormat;
  return expected(`one of ${MEMORY_FORMATS.map((f) => `'${f}'`).join(', ')}`, name, v);
}
const FLOAT_DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16']);

/** Anything that identifies a generator: ours, or none for the global one. */
export interface GeneratorLike {
  /** @internal */ readonly _g: NativeGenerator;
}

export interface TensorOptions {
  dtype?: DType;
  device?: DeviceType;
  requiresGrad?: boolean;
}
export interface RandomOptions extends TensorOptions {
  generator?: GeneratorLike;
}

// ---- argument checks --------------------------------------------------------

/** @internal */
export function checkDtype(v: unknown, name = 'dtype'): DType | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_ALIASES, v)) return DTYPE_ALIASES[v];
  if (typeof v !== 'string' || !(DTYPES as readonly string[]).includes(v)) {
    expected(`one of ${DTYPES.join(', ')}`, name, v);
  }
  return v as DType;
}

/** @internal */
export function checkDevice(v: unknown, name = 'device'): DeviceType | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !/^(cpu|cuda(:\d{1,3})?)$/.test(v)) expected(`'cpu', 'cuda' or 'cuda:N'`, name, v);
  if (v.startsWith('cuda') && !N.cudaIsAvailable()) {
    throw Object.assign(
      new TorchError(`Cannot use device '${v}': CUDA is not available (this libtorch build has no CUDA support or no GPU was found; check cuda.isAvailable())`),
      { code: ERROR_CODES.device },
    );
  }
  return v as DeviceType;
}

/** @internal Accepts `f(2, 3)`, `f([2, 3])`; returns the integer list. */
export function checkShape(v: unknown, name = 'size'): number[] {
  const arr = typeof v === 'number' ? [v] : v;
  if (!Array.isArray(arr)) expected('an array of non-negative integers', name, v);
  for (let i = 0; i < arr.length; i++) {
    const d = arr[i];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) expected('a non-negative integer', `${name}[${i}]`, d);
  }
  return arr as number[];
}

/** @internal */
export function checkInt(v: unknown, name: string, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    expected(min === -Infinity ? 'an integer' : min === 0 ? 'a non-negative integer' : `an integer >= ${min}`, name, v);
  }
  return v;
}

/** @internal */
export function checkNumber(v: unknown, name: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) expected('a number', name, v);
  return v;
}

/** @internal The native handle of a Tensor argument, or a scalar as is. */
export function h(v: unknown, name: string): NativeTensor {
  if (v instanceof Tensor) return v.handle;
  return expected('a Tensor', name, v);
}
function hOpt(v: unknown, name: string): NativeTensor | null {
  return v === undefined || v === null ? null : h(v, name);
}
// The generator that random ops of this thread use when none is passed. null
// means ATen's process-wide default generator. Worker threads that train set
// their own, so concurrent jobs never share (and race on) one generator.
let threadGenerator: GeneratorLike | null = null;

/** @internal Sets this thread's default generator (null: ATen's global one). */
export function setThreadGenerator(g: GeneratorLike | null): void {
  threadGenerator = g;
}
/** @internal */
export function getThreadGenerator(): GeneratorLike | null {
  return threadGenerator;
}

/** @internal The generator for a random op on `device`: the one given, else this thread's (CPU only). */
export function gen(g: GeneratorLike | undefined, name = 'generator', device?: string | null): NativeGenerator | null {
  if (g === undefined || g === null) {
    return threadGenerator && (device === undefined || device === null || device === 'cpu') ? threadGenerator._g : null;
  }
  if (typeof g !== 'object' || !('_g' in g)) expected('a Generator', name, g);
  return g._g;
}

/** @internal Wraps a native handle. */
export function wrap(n: NativeTensor): Tensor {
  return new Tensor(n);
}

// ---- the Tensor class ------------------------------------------------------------

/**
 * A libtorch tensor. Create one with `tensor()`, `zeros()`, `randn()` and the other
 * factories; free its memory with `dispose()` or `tidy()`.
 * @example
 * const x = torch.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
 * x.matmul(x).sum().item(); // 54
 */
export class Tensor {
  private _h: NativeTensor | null;

  /** @internal Use the factories; this wraps a native handle. */
  constructor(handle: NativeTensor) {
    this._h = handle;
    track(this);
  }

  /** @internal The native handle; throws when disposed. */
  get handle(): NativeTensor {
    if (this._h === null) throw codedError(ERROR_CODES.disposed, 'Tensor has been disposed');
    return this._h;
  }

  /** Frees the native memory now (idempotent). Using the tensor afterwards throws. */
  dispose(): void {
    if (this._h) {
      N.dispose(this._h);
      this._h = null;
    }
  }

  get isDisposed(): boolean {
    return this._h === null;
  }

  // ---- facts ----
  /** The sizes of each dimension. */
  get shape(): number[] {
    return N.shape(this.handle);
  }
  /** Alias of shape (PyTorch's `size()`); with a dim, that dimension's size. */
  size(): number[];
  size(dim: number): number;
  size(dim?: number): number[] | number {
    const s = this.shape;
    if (dim === undefined) return s;
    checkInt(dim, 'dim');
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) {
      throw outOfRangeError(`Dimension out of range (expected to be in range of [${-s.length}, ${s.length - 1}], but got ${dim})`);
    }
    return s[d];
  }
  get dtype(): DType {
    return N.dtype(this.handle) as DType;
  }
  get device(): DeviceType {
    return N.device(this.handle) as DeviceType;
  }
  get isCuda(): boolean {
    return this.device.startsWith('cuda');
  }
  numel(): number {
    return N.numel(this.handle);
  }
  dim(): number {
    return this.shape.length;
  }
  get ndim(): number {
    return this.dim();
  }
  stride(): number[] {
    return N.strides(this.handle);
  }
  /** Whether the elements lie in `memoryFormat`'s order without gaps (default `contiguous_format`). */
  isContiguous(memoryFormat: Exclude<MemoryFormat, 'preserve_format'> = 'contiguous_format'): boolean {
    return N.isContiguous(this.handle, checkMemoryFormat(memoryFormat));
  }
  isFloatingPoint(): boolean {
    return FLOAT_DTYPES.has(N.dtype(this.handle));
  }
  isComplex(): boolean {
    return N.dtype(this.handle).startsWith('complex');
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return N.requiresGrad(this.handle);
  }
  set requiresGrad(v: boolean) {
    this.requiresGrad_(v);
  }
  get isLeaf(): boolean {
    return N.isLeaf(this.handle);
  }
  /** Marks the tensor as a leaf that accumulates gradients. Returns this. */
  requiresGrad_(requiresGrad = true): this {
    if (typeof requiresGrad !== 'boolean') expected('a boolean', 'requiresGrad', requiresGrad);
    N.requiresGrad_(this.handle, requiresGrad);
    return this;
  }
  /** The accumulated gradient, or null. Each read returns a new handle to the same memory. */
  get grad(): Tensor | null {
    const g = N.grad(this.handle);
    return g ? wrap(g) : null;
  }
  set grad(g: Tensor | null) {
    N.setGrad(this.handle, hOpt(g, 'grad'));
  }
  /**
   * Computes gradients of this tensor with respect to graph leaves.
   * @param gradient required unless this tensor holds one element
   */
  backward(gradient?: Tensor | null, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    checkKeys(options, ['retainGraph', 'createGraph'], 'backward');
    N.backward(this.handle, hOpt(gradient, 'gradient'), options.retainGraph ?? null, options.createGraph ?? false);
  }
  /** A new tensor sharing storage, cut from the autograd graph. */
  detach(): Tensor {
    return wrap(N.detach(this.handle));
  }

  // ---- data out ----
  /** The single value of a one-element tensor (int64 as number; pass `{bigint: true}` for exact). */
  item(options?: { bigint?: false }): number | boolean;
  item(options: { bigint: true }): number | boolean | bigint;
  item(options: { bigint?: boolean } = {}): number | boolean | bigint {
    checkKeys(options, ['bigint'], 'item');
    const v = N.item(this.handle, options.bigint ?? false);
    if (Array.isArray(v)) throw argTypeError(`item(): a ${this.dtype} value is no JS number; toArray() gives it as [re, im] (${v[0]}, ${v[1]})`);
    return v;
  }
  /** A copy of the data, flattened, as the TypedArray matching the dtype (bool -> Uint8Array, int64 -> BigInt64Array). */
  toTypedArray(): TypedArrayData {
    return N.toTypedArray(this.handle);
  }
  /**
   * A copy of the data as nested arrays of numbers (or booleans), like `tolist()`.
   * float16 and bfloat16 give numbers; a complex element gives `[re, im]`.
   */
  toArray(): NestedArray {
    const shape = this.shape;
    const dt = this.dtype;
    let flat: ArrayLike<unknown>;
    if (dt === 'float16' || dt === 'bfloat16') {
      const f = this.to('float32');
      flat = f.toTypedArray();
      f.dispose();
    } else flat = this.toTypedArray();
    const complex = dt === 'complex64' || dt === 'complex128';
    let pos = 0;
    const next: () => Scalar | NestedArray =
      dt === 'bool' ? () => flat[pos++] !== 0
      : dt === 'int64' ? () => Number(flat[pos++])
      : complex ? () => [flat[pos++] as number, flat[pos++] as number]
      : () => flat[pos++] as number;
    if (shape.length === 0) return next();
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = new Array(shape[d]);
      for (let i = 0; i < shape[d]; i++) out[i] = d === shape.length - 1 ? next() : build(d + 1);
      return out;
    };
    return build(0);
  }
  /** PyTorch-style repr, e.g. `tensor([1., 2.], requires_grad=True)`. */
  toString(): string {
    if (this.isDisposed) return 'tensor(<disposed>)';
    return formatTensor(this);
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // ---- layout and indexing ----
  /**
   * This tensor if already laid out in `memoryFormat` (default `contiguous_format`), else
   * a copy that is. PyTorch's keyword form (`{ memoryFormat }`) and the format alone both work.
   */
  contiguous(memoryFormat: Exclude<MemoryFormat, 'preserve_format'> | { memoryFormat?: Exclude<MemoryFormat, 'preserve_format'> } = 'contiguous_format'): Tensor {
    const f = typeof memoryFormat === 'object' && memoryFormat !== null
      ? checkKeys(memoryFormat, ['memoryFormat'], 'contiguous').memoryFormat ?? 'contiguous_format'
      : memoryFormat;
    return wrap(N.contiguous(this.handle, checkMemoryFormat(f)));
  }
  /**
   * PyTorch's `x[...]`, with the same index forms: an integer selects, a slice
   * (`'1:3'`, `'::2'`, `':'` or `new Slice(1, 3)`) slices, `null` adds a dim (None),
   * `'...'` stands for the dims not named, and an integer or boolean Tensor (or an
   * array of integers) indexes by value. Basic forms give a view.
   * @example x.index(0); x.index(':', '1:3'); x.index('...', null); x.index(x.gt(0))
   */
  index(...indices: Index[]): Tensor {
    return indexGet(this, indices, INDEX_DEPS);
  }
  /**
   * PyTorch's `x[indices] = values`, in place, with `index()`'s index forms; `values` is
   * a Tensor (broadcast) or a number. `accumulate: true` adds instead (index_put_'s).
   * Returns this. (torch.ops.indexPut_ is ATen's own form, where null means a whole dim.)
   * @example x.indexPut_([mask], 0); x.indexPut_([':', 0], torch.ones(3))
   */
  indexPut_(indices: Index[], values: Tensor | Scalar, accumulate = false): this {
    indexSet(this, indices, values, INDEX_DEPS, accumulate);
    return this;
  }
  /** The dims reversed (`x.T`); for a matrix its transpose. */
  get T(): Tensor {
    const n = this.dim();
    return this.permute(Array.from({ length: n }, (_, i) => n - 1 - i));
  }
  /** The last two dims transposed (`x.mT`), for batches of matrices. */
  get mT(): Tensor {
    if (this.dim() < 2) throw codedError(ERROR_CODES.value, `mT: expected a tensor of at least 2 dims but this has ${this.dim()}`);
    return this.transpose(-2, -1);
  }
  /** PyTorch's `tolist()`: the same as `toArray()`. */
  tolist(): NestedArray {
    return this.toArray();
  }

  // ---- ops ----
  // Every ATen op whose first argument is `Tensor self` is a method, generated from
  // libtorch's schemas (lib/ops/generated.ts): `x.add(y, { alpha: 2 })`, `x.sum(1, true)`,
  // `x.max(0).values`, `x.addcmul_(a, b, { value: 0.5 })`. Only what is not an ATen op,
  // or gives more than ATen's form, is written here.

  // ---- conversion ----
  /**
   * Converts dtype and/or device: `to('float64')`, `to('cuda')`, `to({dtype, device})`.
   * When nothing changes, the result is a new handle to the same memory (like PyTorch's `self`).
   */
  /**
   * Converts dtype, device and/or memory layout; returns this tensor's handle again
   * when nothing changes (unless `copy`).
   * @example x.to('float64'); x.to({ device: 'cuda', memoryFormat: 'channels_last' })
   */
  to(target: DType | DeviceType | { dtype?: DType; device?: DeviceType; memoryFormat?: MemoryFormat; copy?: boolean }): Tensor {
    const { dtype, device, memoryFormat } = parseToTarget(target);
    const copy = typeof target === 'object' && !!target?.copy;
    return wrap(N.to(this.handle, dtype ?? null, device ?? null, false, copy, memoryFormat ?? null));
  }
  cpu(): Tensor { return this.to('cpu'); }
  cuda(device?: number): Tensor { return this.to((device === undefined ? 'cuda' : `cuda:${checkInt(device, 'device', 0)}`) as DeviceType); }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
}

/** What `to()` accepts: a dtype, a device, or both. */
export type ToTarget = DType | DeviceType | { dtype?: DType; device?: DeviceType; memoryFormat?: MemoryFormat };

/** @internal Parses and checks a `to()` argument (Tensor.to and Module.to). */
export function parseToTarget(target: unknown): { dtype?: DType; device?: DeviceType; memoryFormat?: MemoryFormat } {
  if (typeof target === 'string') {
    if ((DTYPES as readonly string[]).includes(target)) return { dtype: target as DType };
    return { device: checkDevice(target, 'target') };
  }
  if (target && typeof target === 'object') {
    const t = checkKeys(target as { dtype?: unknown; device?: unknown; memoryFormat?: unknown }, ['dtype', 'device', 'memoryFormat', 'copy'], 'to');
    return { dtype: checkDtype(t.dtype), device: checkDevice(t.device), memoryFormat: checkMemoryFormat(t.memoryFormat) };
  }
  return expected('a dtype, a device or {dtype, device, memoryFormat}', 'target', target);
}

// ---- factories ---------------------------------------------------------------------

const TENSOR_OPTIONS = ['dtype', 'device', 'requiresGrad'];
const RANDOM_OPTIONS = [...TENSOR_OPTIONS, 'generator'];

function applyOptions(t: Tensor, o: TensorOptions | undefined): Tensor {
  if (o?.requiresGrad) t.requiresGrad_(true);
  return t;
}

function splitShapeArgs<O extends object>(args: unknown[], fn: string, known = TENSOR_OPTIONS): [number[], O] {
  let opts = {} as O;
  let rest = args;
  const last = args[args.length - 1];
  if (last !== null && typeof last === 'object' && !Array.isArray(last)) {
    opts = checkKeys(last as O, known, fn);
    rest = args.slice(0, -1);
  }
  const shape = rest.length === 1 && Array.isArray(rest[0]) ? rest[0] : rest;
  return [checkShape(shape), opts];
}

type ShapeArgs<O> = [number[], O?] | number[] | [...number[], O];

/** A tensor of zeros: `zeros(2, 3)`, `zeros([2, 3], {dtype: 'int64'})`. */
export function zeros(...args: ShapeArgs<TensorOptions>): Tensor {
  const [s, o] = splitShapeArgs<TensorOptions>(args, 'zeros');
  return applyOptions(wrap(N.zeros(s, checkDtype(o.dtype), checkDevice(o.device))), o);
}
/** A tensor of ones. */
export function ones(...args: ShapeArgs<TensorOptions>): Tensor {
  const [s, o] = splitShapeArgs<TensorOptions>(args, 'ones');
  return applyOptions(wrap(N.ones(s, checkDtype(o.dtype), checkDevice(o.device))), o);
}
/** An uninitialised tensor. */
export function empty(...args: ShapeArgs<TensorOptions>): Tensor {
  const [s, o] = splitShapeArgs<TensorOptions>(args, 'empty');
  return applyOptions(wrap(N.empty(s, checkDtype(o.dtype), checkDevice(o.device))), o);
}
/** A tensor filled with `fillValue`; dtype follows the value (int64 for integers, like PyTorch). */
export function full(size: number[], fillValue: Scalar | Tensor, options: TensorOptions = {}): Tensor {
  // A 0-dim tensor that needs no grad stands for its value, as for every Scalar argument
  // (lib/ops/runtime.ts): a float tensor's value is a number, an int64 one's a BigInt.
  if (fillValue instanceof Tensor && !fillValue.isDisposed && fillValue.dim() === 0 && !fillValue.requiresGrad && !fillValue.isComplex()) {
    fillValue = fillValue.item({ bigint: true });
  }
  if (!['number', 'boolean', 'bigint'].includes(typeof fillValue)) expected('a number or a 0-dim tensor', 'fillValue', fillValue);
  checkKeys(options, TENSOR_OPTIONS, 'full');
  return applyOptions(wrap(N.full(checkShape(size), fillValue as Scalar, checkDtype(options.dtype), checkDevice(options.device))), options);
}
/** Values from `start` to `end` (exclusive) by `step`: `arange(5)`, `arange(1, 4)`, `arange(0, 1, 0.25)`. */
export function arange(end: number, options?: TensorOptions): Tensor;
export function arange(start: number, end: number, step?: number, options?: TensorOptions): Tensor;
export function arange(a: number, b?: number | TensorOptions, c?: number | TensorOptions, d?: TensorOptions): Tensor {
  let start = 0, end: number, step = 1, o: TensorOptions = {};
  if (typeof b !== 'number') { end = a; o = b ?? {}; }
  else { start = a; end = b; if (typeof c === 'number') { step = c; o = d ?? {}; } else o = c ?? {}; }
  checkKeys(o, TENSOR_OPTIONS, 'arange');
  checkNumber(start, 'start'); checkNumber(end, 'end'); checkNumber(step, 'step');
  if (step === 0) throw outOfRangeError('Expected a non-zero step for arange but received 0');
  return applyOptions(wrap(N.arange(start, end, step, checkDtype(o.dtype), checkDevice(o.device))), o);
}
/** Uniform random values in [0, 1), drawn like `torch.rand`. */
export function rand(...args: ShapeArgs<RandomOptions>): Tensor {
  const [s, o] = splitShapeArgs<RandomOptions>(args, 'rand', RANDOM_OPTIONS);
  return applyOptions(wrap(N.rand(s, checkDtype(o.dtype), checkDevice(o.device), gen(o.generator, 'generator', o.device))), o);
}
/** Standard normal random values, drawn like `torch.randn`. */
export function randn(...args: ShapeArgs<RandomOptions>): Tensor {
  const [s, o] = splitShapeArgs<RandomOptions>(args, 'randn', RANDOM_OPTIONS);
  return applyOptions(wrap(N.randn(s, checkDtype(o.dtype), checkDevice(o.device), gen(o.generator, 'generator', o.device))), o);
}
/** Random integers in [low, high), int64 by default. */
export function randint(low: number, high: number, size: number[], options: RandomOptions = {}): Tensor {
  checkKeys(options, RANDOM_OPTIONS, 'randint');
  checkInt(low, 'low');
  checkInt(high, 'high');
  if (high <= low) throw outOfRangeError(`Expected high > low for randint but received low=${low}, high=${high}`);
  return wrap(N.randint(low, high, checkShape(size), checkDtype(options.dtype), checkDevice(options.device), gen(options.generator, 'generator', options.device)));
}
/** A random permutation of 0..n-1 (int64), drawn like `torch.randperm`. */
export function randperm(n: number, options: RandomOptions = {}): Tensor {
  checkKeys(options, RANDOM_OPTIONS, 'randperm');
  return wrap(N.randperm(checkInt(n, 'n', 0), checkDtype(options.dtype), checkDevice(options.device), gen(options.generator, 'generator', options.device)));
}
export function randLike(t: Tensor, options: RandomOptions = {}): Tensor {
  h(t, 'input');
  checkKeys(options, RANDOM_OPTIONS, 'randLike');
  return rand(t.shape, { dtype: options.dtype ?? t.dtype, device: options.device ?? t.device, ...options });
}
export function randnLike(t: Tensor, options: RandomOptions = {}): Tensor {
  h(t, 'input');
  checkKeys(options, RANDOM_OPTIONS, 'randnLike');
  return randn(t.shape, { dtype: options.dtype ?? t.dtype, device: options.device ?? t.device, ...options });
}

/**
 * A CPU tensor from a TypedArray or Buffer. The data is copied once, straight from
 * JS memory into libtorch's, so the tensor never depends on the JS buffer's lifetime
 * and later writes to either side are not seen by the other. A Buffer (or any
 * Uint8Array) gives uint8 unless `dtype` says otherwise (conversion happens after the copy).
 * @example fromBuffer(new Float32Array([1, 2, 3, 4]), [2, 2])
 */
export function fromBuffer(data: ArrayBufferView, shape: number[], options: TensorOptions = {}): Tensor {
  if (!ArrayBuffer.isView(data) || data instanceof DataView) expected('a TypedArray or Buffer', 'data', data);
  checkKeys(options, TENSOR_OPTIONS, 'fromBuffer');
  const dtype = checkDtype(options.dtype);
  let t = wrap(N.fromBuffer(data, checkShape(shape, 'shape'), dtype ?? null));
  if (options.device && options.device !== 'cpu') t = t.to(checkDevice(options.device)!);
  return applyOptions(t, options);
}

function inferNested(data: unknown, name: string): { shape: number[]; flat: unknown[] } {
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const flat: unknown[] = [];
  const walk = (v: unknown, d: number, path: string): void => {
    if (d === shape.length) {
      if (Array.isArray(v)) throw argTypeError(`Expected a number at ${path} but received an array (ragged nested array)`);
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[d]) {
      throw argTypeError(
        `Expected an array of length ${shape[d]} at ${path} but received ${Array.isArray(v) ? `length ${v.length}` : describe(v)} (ragged nested array)`,
      );
    }
    for (let i = 0; i < v.length; i++) walk(v[i], d + 1, `${path}[${i}]`);
  };
  walk(data, 0, name);
  return { shape, flat };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** `data[1][2]` for flat index 6 of shape [2, 4]. */
function elementPath(name: string, flatIndex: number, shape: number[]): string {
  let idx = '';
  for (let d = shape.length - 1; d >= 0; d--) {
    idx = `[${flatIndex % shape[d]}]` + idx;
    flatIndex = Math.floor(flatIndex / shape[d]);
  }
  return idx ? name + idx : name;
}

/**
 * A tensor from nested arrays, a scalar or a TypedArray (copied). The dtype is
 * inferred like PyTorch: integers -> int64, any fraction -> float32, booleans -> bool.
 * @example tensor([[1, 2], [3, 4]]) // int64, shape [2, 2]
 */
export function tensor(data: NestedArray | ArrayBufferView, options: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    if (data instanceof DataView) expected('nested arrays or a TypedArray', 'data', data);
    return fromBuffer(data, [(data as unknown as { length: number }).length], options);
  }
  checkKeys(options, TENSOR_OPTIONS, 'tensor');
  const { shape, flat } = inferNested(data, 'data');
  // JS has no int literals: numbers are floats (the default dtype, float32, as
  // torch.tensor([1., 2.])); BigInts are int64 (torch.tensor([1, 2])); booleans bool.
  let kind: 'bool' | 'int' | 'float' = flat.length ? 'bool' : 'float';
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v === 'boolean') continue;
    if (typeof v === 'bigint') { if (kind === 'bool') kind = 'int'; continue; }
    if (typeof v !== 'number') expected('a number, boolean or bigint', `data element ${i}`, v);
    kind = 'float';
  }
  const inferred: DType = kind === 'bool' ? 'bool' : kind === 'int' ? 'int64' : getDefaultDtype();
  const dtype = checkDtype(options.dtype) ?? inferred;
  let buf: ArrayBufferView;
  if (inferred === 'int64') {
    // BigInt64Array.from wraps modulo 2**64 (1n << 70n would become 0), so every
    // value must fit int64 first; a float dtype takes them as float64, like torch.tensor.
    const ints = flat.map((v) => (typeof v === 'bigint' ? v : BigInt(v as number | boolean as number)));
    const bad = ints.findIndex((v) => v < INT64_MIN || v > INT64_MAX);
    if (bad >= 0 && (dtype === 'float32' || dtype === 'float64')) buf = Float64Array.from(flat, (v) => Number(v));
    else if (bad >= 0) {
      throw outOfRangeError(
        `Expected ${elementPath('data', bad, shape)} to be an integer in int64's range [-(2n ** 63n), 2n ** 63n - 1n] ` +
          `but received ${describe(flat[bad])} (pass dtype: 'float32' or 'float64' to store it as a float)`,
      );
    } else buf = BigInt64Array.from(ints);
  }
  else if (inferred === 'bool') buf = Uint8Array.from(flat, (v) => (v ? 1 : 0));
  else buf = Float64Array.from(flat, (v) => Number(v));
  // float data goes in as float64 so float64 requests keep full precision; float32 rounds once.
  let t = wrap(N.fromBuffer(buf, shape, inferred === 'bool' ? 'bool' : dtype));
  if (options.device && options.device !== 'cpu') t = t.to(checkDevice(options.device)!);
  return applyOptions(t, options);
}

/** torch.cat for the repr (which must not depend on the generated ops being loaded). */
function catInternal(tensors: Tensor[]): Tensor {
  return wrap(N.cat(tensors.map((t) => t.handle), 0));
}
export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

const INDEX_DEPS: IndexDeps = {
  isTensor,
  makeIndex: (xs) => tensor(xs.map((x) => BigInt(x))),
  wrap,
  handle: (t) => h(t, 'index'),
  scalarLike: (v, like) => full([], v, { dtype: like.dtype, device: like.device as DeviceType }),
};

// ---- repr ------------------------------------------------------------------------
// torch._tensor_str with the default print options: above `threshold` elements the
// tensor is summarised to `edgeitems` per side of every dimension longer than
// 2*edgeitems, and only those elements are copied out of libtorch, so printing costs
// O(shown elements) however big the tensor is. Vectors wrap at `linewidth` columns.
const PRINT = { precision: 4, threshold: 1000, edgeitems: 3, linewidth: 80 };

// Python's '{:.Nf}' / '{:.Ne}': round half to even on the exact binary value (JS's
// toFixed/toExponential round ties up), a '-' on -0, and at least two exponent digits.
function pyTies(x: number, digits: number, exp: boolean): string {
  const a = Math.abs(x);
  const long = exp ? a.toExponential(digits + 30) : a.toFixed(digits + 30);
  const e = exp ? long.indexOf('e') : long.length;
  const mant = long.slice(0, e);
  const cut = mant.indexOf('.') + 1 + digits - (digits === 0 ? 1 : 0);
  const rest = mant.slice(digits === 0 ? cut + 1 : cut);
  const last = mant[cut - 1];
  if (/^50*$/.test(rest) && '02468'.includes(last)) return mant.slice(0, cut) + long.slice(e);
  return exp ? a.toExponential(digits) : a.toFixed(digits);
}
function pyFixed(x: number, digits: number): string {
  return (x < 0 || Object.is(x, -0) ? '-' : '') + pyTies(x, digits, false);
}
function pyExp(x: number, digits: number): string {
  const s = (x < 0 || Object.is(x, -0) ? '-' : '') + pyTies(x, digits, true);
  return s.replace(/e([+-])(\d)$/, 'e$10$2');
}

/**
 * The elements that the repr shows, flattened in row-major order: every summarised
 * dimension keeps only its first and last `edgeitems` indices. Reads nothing else:
 * the leading dimensions are walked with select() (views), and the innermost
 * summarised one is cut with narrow() before anything is copied.
 */
function shownValues(t: Tensor, shape: number[], summarized: boolean[]): ArrayLike<number | bigint> {
  const E = PRINT.edgeitems;
  const k = summarized.lastIndexOf(true);
  const owned: Tensor[] = [];
  try {
    const base = t.detach();
    owned.push(base);
    if (k < 0) {
      const c = base.cpu();
      owned.push(c);
      return readable(c, owned);
    }
    const parts: Tensor[] = [];
    const walk = (x: Tensor, d: number): void => {
      const n = shape[d];
      if (d === k) {
        const head = x.narrow(0, 0, E), tail = x.narrow(0, n - E, E);
        owned.push(head, tail);
        const p = catInternal([head, tail]).reshape(-1);
        owned.push(p);
        parts.push(p);
        return;
      }
      for (let j = 0; j < (summarized[d] ? 2 * E : n); j++) {
        const i = summarized[d] && j >= E ? n - 2 * E + j : j;
        const s = x.select(0, i);
        owned.push(s);
        walk(s, d + 1);
      }
    };
    walk(base, 0);
    const all = parts.length === 1 ? parts[0] : catInternal(parts);
    if (all !== parts[0]) owned.push(all);
    const c = all.cpu();
    owned.push(c);
    return readable(c, owned);
  } finally {
    for (const o of owned) o.dispose();
  }
}

/** The values as numbers: float16/bfloat16 via float32 (JS has no 16-bit floats); complex as interleaved [re, im]. */
function readable(c: Tensor, owned: Tensor[]): ArrayLike<number | bigint> {
  if (c.dtype === 'float16' || c.dtype === 'bfloat16') {
    const f = c.to('float32');
    owned.push(f);
    return f.toTypedArray() as ArrayLike<number>;
  }
  return c.toTypedArray() as ArrayLike<number | bigint>;
}

/** _Formatter for floating values: one width and mode (fixed, int-like or scientific) for all shown values. */
function floatFormatter(vals: ArrayLike<number>): { width: number; fmt: (x: number) => string } {
  let width = 1;
  let min = Infinity, max = 0, intMode = true, any = false;
  for (let i = 0; i < vals.length; i++) {
    const x = vals[i];
    if (!Number.isFinite(x) || x === 0) continue;
    any = true;
    const a = Math.abs(x);
    if (a < min) min = a;
    if (a > max) max = a;
    if (intMode && x !== Math.ceil(x)) intMode = false;
  }
  const sci = any && (max / min > 1000 || max > 1e8 || (!intMode && min < 1e-4));
  const core = (x: number) => (sci ? pyExp(x, PRINT.precision) : intMode ? `${pyFixed(x, 0)}.` : pyFixed(x, PRINT.precision));
  if (any) {
    for (let i = 0; i < vals.length; i++) {
      const x = vals[i];
      if (Number.isFinite(x) && x !== 0) width = Math.max(width, core(x).length);
    }
  }
  const fmt = (x: number) => {
    if (Number.isNaN(x)) return 'nan';
    if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
    return core(x);
  };
  return { width, fmt };
}

function formatTensor(t: Tensor): string {
  const shape = t.shape;
  const dt = t.dtype;
  const numel = shape.reduce((a, b) => a * b, 1);
  const suffix: string[] = [];
  if (t.device !== 'cpu') suffix.push(`device='${t.device}'`);
  const isFloat = FLOAT_DTYPES.has(dt);
  const complex = dt === 'complex64' || dt === 'complex128';
  // The repr leaves out the default float dtype, its complex counterpart, int64 and bool.
  const dflt = getDefaultDtype();
  const dfltComplex = dflt === 'float64' ? 'complex128' : 'complex64';
  const defaultDtype = dt === dflt || dt === 'int64' || dt === 'bool' || dt === dfltComplex;
  if (!defaultDtype || (numel === 0 && dt !== dflt)) suffix.push(`dtype=torch.${dt}`);
  if (numel === 0) {
    if (shape.length !== 1) suffix.unshift(`size=(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`);
    return `tensor([]${suffix.length ? ', ' + suffix.join(', ') : ''})`;
  }
  if (t.requiresGrad) suffix.push('requires_grad=True');
  const E = PRINT.edgeitems;
  const summarize = numel > PRINT.threshold;
  const summarized = shape.map((n) => summarize && n > 2 * E);
  let vals = shownValues(t, shape, summarized);

  // _Formatter: the width and mode come from the shown elements only.
  let width = 1;
  let fmt: (v: number | bigint) => string;
  if (dt === 'bool') {
    for (let i = 0; i < vals.length; i++) width = Math.max(width, vals[i] ? 4 : 5);
    fmt = (v) => (v ? 'True' : 'False');
  } else if (complex) {
    // _Formatter's complex mode: one formatter for the real parts, one for the imaginary
    // parts' magnitudes, each padded to its own width; `a+bj`.
    const n = vals.length / 2;
    const re = Float64Array.from({ length: n }, (_, i) => vals[2 * i] as number);
    const im = Float64Array.from({ length: n }, (_, i) => vals[2 * i + 1] as number);
    const fr = floatFormatter(re);
    const fi = floatFormatter(im.map(Math.abs));
    const cells = Array.from({ length: n }, (_, i) => {
      const sign = im[i] < 0 || Object.is(im[i], -0) ? '-' : '+';
      return `${fr.fmt(re[i]).padStart(fr.width)}${sign}${fi.fmt(Math.abs(im[i])).padStart(fi.width)}j`;
    });
    vals = cells as unknown as ArrayLike<number>;
    for (const c of cells) width = Math.max(width, c.length);
    fmt = (v) => v as unknown as string;
  } else if (!isFloat) {
    for (let i = 0; i < vals.length; i++) width = Math.max(width, String(vals[i]).length);
    fmt = (v) => String(v);
  } else {
    const f = floatFormatter(vals as ArrayLike<number>);
    width = f.width;
    fmt = (v) => f.fmt(v as number);
  }
  const pad = (s: string) => s.padStart(width);
  const tail = (body: string): string => {
    // _add_suffixes: a suffix that would pass linewidth goes on its own line.
    let out = `tensor(${body}`;
    let lastLen = out.length - out.lastIndexOf('\n') + 1;
    for (const s of suffix) {
      if (lastLen + s.length + 2 > PRINT.linewidth) {
        out += `,\n${' '.repeat('tensor('.length)}${s}`;
        lastLen = 'tensor('.length + s.length;
      } else {
        out += `, ${s}`;
        lastLen += s.length + 2;
      }
    }
    return out + ')';
  };
  if (shape.length === 0) return tail(fmt(vals[0]));
  let pos = 0;
  const build = (d: number, indent: number): string => {
    const count = summarized[d] ? 2 * E : shape[d];
    if (d === shape.length - 1) {
      const items: string[] = [];
      for (let i = 0; i < count; i++) {
        items.push(pad(fmt(vals[pos++])));
        if (summarized[d] && i === E - 1) items.push(' ...');
      }
      const perLine = Math.max(1, Math.floor((PRINT.linewidth - indent) / (width + 2)));
      const lines: string[] = [];
      for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(', '));
      return `[${lines.join(',\n' + ' '.repeat(indent + 1))}]`;
    }
    const rows: string[] = [];
    for (let i = 0; i < count; i++) {
      rows.push(build(d + 1, indent + 1));
      if (summarized[d] && i === E - 1) rows.push('...');
    }
    const sep = ',' + '\n'.repeat(shape.length - 1 - d) + ' '.repeat(indent + 1);
    return `[${rows.join(sep)}]`;
  };
  return tail(build(0, 'tensor('.length));
}

// The generated ops install themselves as Tensor methods when lib/ops/generated.ts loads;
// loaded here, last, so that every Tensor has them however this module was reached.
// eslint-disable-next-line @typescript-eslint/no-var-requires
require('./ops/generated');
