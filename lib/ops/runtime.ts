/**
 * The calling convention of the generated ops (lib/ops/generated.ts), one rule for
 * every op: positional arguments in the schema's order, then an optional trailing
 * plain object of keyword arguments in camelCase; Python's varargs form for a lone
 * int list (`x.permute(1, 0)`, `zeros(2, 3)`). The first overload whose arguments
 * match the JS values is called through the native generic entry (native/dispatch.cc).
 * @internal
 */
import { describe, TorchError, argTypeError } from '../errors';
import { version as engineVersion } from '../device';
import { N, NativeTensor } from '../native';
import { getThreadGenerator, Tensor, wrap } from '../tensor';
import { camel, typeParts } from './schema';

/**
 * One overload as the generator records it: the overload name, its arguments as
 * `name:type` (`*` first: keyword-only; `=` last: has a default), its returns as
 * `type` or `type@i` when the return is argument i written in place, and the libtorch
 * versions that have it where not every engine the surface was generated from does.
 */
export type OverloadDef = readonly [overload: string, args: readonly string[], returns: readonly string[], versions?: readonly string[]];

// Argument kinds: what a JS value must be.
const enum K {
  Tensor, OptTensor, TensorList, OptTensorList,
  Int, OptInt, IntList, OptIntList,
  Float, OptFloat, FloatList, OptFloatList,
  Bool, OptBool, BoolList,
  Scalar, OptScalar, ScalarList,
  Dtype, OptDtype, Layout, OptLayout, Device, OptDevice, MemFormat, OptMemFormat,
  Str, OptStr, StrList, OptStrList, Gen, Unsupported,
}

const KINDS: Record<string, [K, K, K?, K?]> = {
  // base: [plain, optional, list, optional list]
  Tensor: [K.Tensor, K.OptTensor, K.TensorList, K.TensorList],
  int: [K.Int, K.OptInt, K.IntList, K.OptIntList],
  float: [K.Float, K.OptFloat, K.FloatList, K.OptFloatList],
  bool: [K.Bool, K.OptBool, K.BoolList, K.BoolList],
  Scalar: [K.Scalar, K.OptScalar, K.ScalarList, K.ScalarList],
  ScalarType: [K.Dtype, K.OptDtype],
  Layout: [K.Layout, K.OptLayout],
  Device: [K.Device, K.OptDevice],
  MemoryFormat: [K.MemFormat, K.OptMemFormat],
  str: [K.Str, K.OptStr, K.StrList, K.OptStrList],
  Generator: [K.Unsupported, K.Gen],
};

/** Every dtype name the engine knows (native/tensor.cc's table), PyTorch's spelling. */
export const OP_DTYPES = new Set([
  'float32', 'float64', 'int64', 'int32', 'uint8', 'bool', 'float16', 'bfloat16', 'int16', 'int8', 'complex64', 'complex128',
  'float', 'double', 'long', 'int', 'half', 'short', 'cfloat', 'cdouble',
]);
const LAYOUTS = new Set(['strided', 'sparse_coo', 'sparse_csr', 'sparse_csc', 'sparse_bsr', 'sparse_bsc', 'mkldnn']);
const MEMORY_FORMATS = new Set(['contiguous_format', 'channels_last', 'channels_last_3d', 'preserve_format']);
const DEVICE_RE = /^(cpu|cuda(:\d{1,3})?)$/;

interface Arg {
  name: string;
  type: string;
  kind: K;
  /** Fixed list length (`int[2]`). */
  n: number;
  hasDefault: boolean;
  kwargOnly: boolean;
}

interface Ret {
  type: string;
  /** Index of the argument this return is (written in place), else -1. */
  aliasOf: number;
  name?: string;
  tensors: boolean;
}

interface Overload {
  op: string;
  overload: string;
  args: Arg[];
  rets: Ret[];
  /** Number of arguments that may be given positionally. */
  npos: number;
  /** camelCase keyword -> argument index. */
  keys: Map<string, number>;
  /** Whether any argument has a type this layer cannot pass (then it never matches). */
  unsupported: boolean;
  /** A factory (has `pin_memory`): accepts `requiresGrad` like PyTorch's factories. */
  factory: boolean;
  handle: unknown;
  /** Set once the loaded engine's own schema was read (or found missing). */
  synced: boolean;
  /** Why the loaded engine has no such overload (a TorchError message). */
  missing?: string;
  /** The libtorch versions that have it, where not every one the surface came from does. */
  versions?: readonly string[];
}

/** An op's overloads, decoded on first use. */
export interface OpEntry {
  /** `aten::topk` */
  readonly name: string;
  readonly defs: readonly OverloadDef[];
  overloads?: Overload[];
}

let generatedFrom: readonly string[] = [];
/** Records which libtorch versions the typed surface was generated from (for "not in libtorch X" errors). */
export function setGeneratedFrom(versions: readonly string[]): void {
  generatedFrom = versions;
}

const listWords = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

function decodeArg(spec: string): Arg {
  const kwargOnly = spec.startsWith('*');
  const hasDefault = spec.endsWith('=');
  const body = spec.slice(kwargOnly ? 1 : 0, hasDefault ? -1 : undefined);
  const colon = body.indexOf(':');
  const name = body.slice(0, colon);
  const type = body.slice(colon + 1);
  const p = typeParts(type);
  const row = KINDS[p.base];
  let kind = K.Unsupported;
  if (row && !(p.elemOptional && p.base !== 'Tensor')) {
    const k = p.list ? (p.elemOptional ? K.OptTensorList : p.optional ? row[3] : row[2]) : p.optional ? row[1] : row[0];
    kind = k === undefined ? K.Unsupported : k;
  }
  return { name, type, kind, n: p.n, hasDefault, kwargOnly };
}

function shape(o: Overload, args: Arg[]): void {
  const keys = new Map<string, number>();
  args.forEach((a, i) => keys.set(camel(a.name), i));
  o.args = args;
  o.keys = keys;
  o.npos = args.filter((a) => !a.kwargOnly).length;
  o.unsupported = args.some((a) => a.kind === K.Unsupported);
  o.factory = args.some((a) => a.name === 'pin_memory');
}

/**
 * Binds the overload to the loaded engine: its handle, and the argument list from the
 * engine's own schema (which wins over the generated one where versions differ).
 */
function sync(o: Overload): void {
  if (o.synced) return;
  o.synced = true;
  try {
    o.handle = N.opHandle(o.op, o.overload);
  } catch (e) {
    if (!(e instanceof TorchError)) throw e;
    // "torch.ops.rmsNorm: aten::rms_norm is not in libtorch 1.13.0 (it is in libtorch 2.6.0)"
    const loaded = engineVersion.split('+')[0];
    const has = (o.versions ?? generatedFrom).filter((v) => v !== loaded);
    const q = o.overload ? `${o.op}.${o.overload}` : o.op;
    o.missing = `torch.ops.${shortName(o.op)}: ${has.length ? `${q} is not in libtorch ${loaded} (it is in libtorch ${listWords(has)})` : e.message}`;
    return;
  }
  const live = N.opArgs(o.handle);
  const same = live.length === o.args.length && live.every((a, i) => a.name === o.args[i].name && a.type === o.args[i].type);
  if (!same) {
    shape(o, live.map((a) => decodeArg(`${a.kwargOnly ? '*' : ''}${a.name}:${a.type}${a.hasDefault ? '=' : ''}`)));
  }
}

function decode(entry: OpEntry): Overload[] {
  return entry.defs.map(([overload, argSpecs, retSpecs, versions]) => {
    const args = argSpecs.map(decodeArg);
    const rets: Ret[] = retSpecs.map((r) => {
      const at = r.lastIndexOf('@');
      const colon = r.indexOf(':');
      const type = (at < 0 ? r : r.slice(0, at)).slice(colon + 1);
      return {
        type,
        name: colon < 0 ? undefined : r.slice(0, colon),
        aliasOf: at < 0 ? -1 : Number(r.slice(at + 1)),
        tensors: type.startsWith('Tensor'),
      };
    });
    const o: Overload = {
      op: entry.name, overload, args, rets, npos: 0, keys: new Map(), unsupported: false, factory: false,
      handle: undefined, synced: false, versions,
    };
    shape(o, args);
    return o;
  });
}

/** bind()'s "does not fit" without a reason (the fast path). */
const NO_FIT = '';

const isInt = (v: unknown): boolean => (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
const isScalar = (v: unknown): boolean => typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint';
const isGen = (v: unknown): boolean => typeof v === 'object' && v !== null && '_g' in v;

function isList(v: unknown, each: (e: unknown) => boolean): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (!each(v[i])) return false;
  return true;
}

/** Whether `v` (not undefined) can be passed as kind `k`. */
function accepts(a: Arg, v: unknown): boolean {
  if (v === null) {
    switch (a.kind) {
      case K.OptTensor: case K.OptInt: case K.OptIntList: case K.OptFloat: case K.OptFloatList: case K.OptBool:
      case K.OptScalar: case K.OptDtype: case K.OptLayout: case K.OptDevice: case K.OptMemFormat: case K.OptStr:
      case K.OptStrList: case K.Gen:
        return true;
      default:
        return false;
    }
  }
  switch (a.kind) {
    case K.Tensor: case K.OptTensor: return v instanceof Tensor;
    case K.TensorList: return isList(v, (e) => e instanceof Tensor);
    case K.OptTensorList: return isList(v, (e) => e === null || e instanceof Tensor);
    case K.Int: case K.OptInt: return isInt(v);
    // One number for a list only where the schema gives its length (`int[2]`, `int[1]? dim`),
    // as PyTorch's parser: `tensor_split(x, 2)` is sections, not indices [2].
    case K.IntList: case K.OptIntList: return (a.n > 0 && isInt(v)) || isList(v, isInt);
    case K.Float: case K.OptFloat: return typeof v === 'number';
    case K.FloatList: case K.OptFloatList: return (a.n > 0 && typeof v === 'number') || isList(v, (e) => typeof e === 'number');
    case K.Bool: case K.OptBool: return typeof v === 'boolean';
    case K.BoolList: return (a.n > 0 && typeof v === 'boolean') || isList(v, (e) => typeof e === 'boolean');
    case K.Scalar: case K.OptScalar: return isScalar(v);
    case K.ScalarList: return isList(v, isScalar);
    case K.Dtype: case K.OptDtype: return typeof v === 'string' && OP_DTYPES.has(v);
    case K.Layout: case K.OptLayout: return typeof v === 'string' && LAYOUTS.has(v);
    case K.Device: case K.OptDevice: return typeof v === 'string' && DEVICE_RE.test(v);
    case K.MemFormat: case K.OptMemFormat: return typeof v === 'string' && MEMORY_FORMATS.has(v);
    case K.Str: case K.OptStr: return typeof v === 'string';
    case K.StrList: case K.OptStrList: return isList(v, (e) => typeof e === 'string');
    case K.Gen: return isGen(v);
    default: return false;
  }
}

/** A tensor PyTorch's argument parser takes for a Scalar: 0-dim, real, needing no grad. */
function isScalarTensor(v: unknown): boolean {
  return v instanceof Tensor && !v.isDisposed && v.dim() === 0 && !v.requiresGrad && !v.isComplex();
}

/** The value the native entry takes for a matched JS value. */
function toNative(a: Arg, v: unknown): unknown {
  if (v === null || v === undefined) return v;
  switch (a.kind) {
    case K.Tensor: case K.OptTensor: return (v as Tensor).handle;
    case K.TensorList: return (v as Tensor[]).map((t) => t.handle);
    case K.OptTensorList: return (v as (Tensor | null)[]).map((t) => (t === null ? null : t.handle));
    case K.Gen: return (v as { _g: unknown })._g;
    case K.FloatList: case K.OptFloatList:
      return typeof v === 'number' ? new Array(Math.max(a.n, 1)).fill(v) : v;
    case K.BoolList: return typeof v === 'boolean' ? new Array(a.n).fill(v) : v;
    default: return v;
  }
}

function onCuda(values: readonly unknown[], kw: Record<string, unknown> | undefined): boolean {
  const cuda = (v: unknown): boolean =>
    (v instanceof Tensor && !v.isDisposed && v.device.startsWith('cuda')) || (typeof v === 'string' && v.startsWith('cuda'));
  return values.some(cuda) || (kw !== undefined && Object.values(kw).some(cuda));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

const KIND_WORDS: Partial<Record<K, string>> = {
  [K.Tensor]: 'a Tensor', [K.OptTensor]: 'a Tensor or null', [K.TensorList]: 'an array of Tensors',
  [K.OptTensorList]: 'an array of Tensors or nulls', [K.Int]: 'an integer', [K.OptInt]: 'an integer or null',
  [K.IntList]: 'an integer or an array of integers', [K.OptIntList]: 'an array of integers or null',
  [K.Float]: 'a number', [K.OptFloat]: 'a number or null', [K.Bool]: 'a boolean', [K.OptBool]: 'a boolean or null',
  [K.Scalar]: 'a number', [K.OptScalar]: 'a number or null', [K.Dtype]: 'a dtype name', [K.OptDtype]: 'a dtype name or null',
  [K.Device]: "'cpu', 'cuda' or 'cuda:N'", [K.OptDevice]: "'cpu', 'cuda', 'cuda:N' or null", [K.Str]: 'a string',
  [K.MemFormat]: 'a memory format name', [K.OptMemFormat]: 'a memory format name or null', [K.Gen]: 'a Generator or null',
};

/**
 * The bound native arguments, or why this overload does not fit: the reason when
 * `explain`, else just `NO_FIT` (reasons are only built once no overload fits).
 */
function bind(
  o: Overload, pos: readonly unknown[], kw: Record<string, unknown> | undefined, method: boolean, explain: boolean, loose = false,
): unknown[] | string {
  if (!explain && o.unsupported) return NO_FIT;
  if (o.unsupported) {
    const a = o.args.find((x) => x.kind === K.Unsupported)!;
    return explain ? `argument ${a.name} has schema type ${a.type}, which torchnode cannot pass yet` : NO_FIT;
  }
  const slots: unknown[] = new Array(o.args.length);
  let np = pos.length;
  if (np > o.npos) {
    // Python's varargs form: a lone int list after self (`x.view(2, 3)`, `zeros(2, 3)`).
    const first = method ? 1 : 0;
    const a = o.args[first];
    if (o.npos - first !== 1 || !a || (a.kind !== K.IntList && a.kind !== K.OptIntList)) {
      return explain ? `takes ${o.npos - first} positional arguments but ${np - first} were given` : NO_FIT;
    }
    for (let i = first; i < np; i++) if (!isInt(pos[i])) return explain ? `expected integers for ${a.name} but received ${describe(pos[i])}` : NO_FIT;
    for (let i = 0; i < first; i++) slots[i] = pos[i];
    slots[first] = pos.slice(first);
    np = first + 1;
  } else {
    for (let i = 0; i < np; i++) slots[i] = pos[i];
    // The varargs form with one value: `x.flip(0)`, `zeros(3)`.
    const first = method ? 1 : 0;
    const a = o.args[first];
    if (np === first + 1 && o.npos - first === 1 && a && (a.kind === K.IntList || a.kind === K.OptIntList) && isInt(pos[first])) {
      slots[first] = [pos[first]];
    }
  }
  if (kw) {
    for (const key in kw) {
      if (key === 'requiresGrad' && o.factory) continue;
      const idx = o.keys.get(key);
      if (idx === undefined) return explain ? `no argument ${key}` : NO_FIT;
      if (slots[idx] !== undefined) return explain ? `got multiple values for argument ${key}` : NO_FIT;
      slots[idx] = kw[key];
    }
  }
  for (let i = 0; i < o.args.length; i++) {
    const a = o.args[i];
    const v = slots[i];
    if (v === undefined) {
      if (a.kind === K.Gen) {
        // This thread's generator (a training worker's), as the hand-written random ops use
        // it: for CPU work only.
        const g = getThreadGenerator();
        if (g && !onCuda(pos, kw)) slots[i] = g._g;
        continue;
      }
      if (!a.hasDefault) return explain ? `missing argument ${a.name} (${a.type})` : NO_FIT;
      continue;
    }
    if (!accepts(a, v)) {
      if (loose && (a.kind === K.Scalar || a.kind === K.OptScalar) && isScalarTensor(v)) {
        slots[i] = (v as Tensor).handle; // native/dispatch.cc reads its value with its type
        continue;
      }
      return explain ? `expected ${KIND_WORDS[a.kind] ?? a.type} for ${camel(a.name)} (${a.type}) but received ${describe(v)}` : NO_FIT;
    }
    slots[i] = toNative(a, v);
  }
  return slots;
}

function signature(o: Overload): string {
  const parts: string[] = [];
  let kwDone = false;
  for (const a of o.args) {
    if (a.kwargOnly && !kwDone) {
      parts.push('*');
      kwDone = true;
    }
    parts.push(`${a.type} ${camel(a.name)}${a.hasDefault ? '=…' : ''}`);
  }
  return `${o.overload ? `${o.op}.${o.overload}` : o.op}(${parts.join(', ')})`;
}

function convertReturn(r: Ret, v: unknown, jsArgs: unknown[]): unknown {
  if (r.aliasOf >= 0) return jsArgs[r.aliasOf];
  if (!r.tensors || v === null) return v;
  if (Array.isArray(v)) return v.map((e) => (e === null ? null : wrap(e as NativeTensor)));
  return wrap(v as NativeTensor);
}

function invoke(o: Overload, slots: unknown[], jsArgs: unknown[], kw: Record<string, unknown> | undefined): unknown {
  const h = o.handle;
  let out: unknown;
  switch (slots.length) {
    case 0: out = N.callOp(h); break;
    case 1: out = N.callOp(h, slots[0]); break;
    case 2: out = N.callOp(h, slots[0], slots[1]); break;
    case 3: out = N.callOp(h, slots[0], slots[1], slots[2]); break;
    case 4: out = N.callOp(h, slots[0], slots[1], slots[2], slots[3]); break;
    default: out = N.callOp(h, ...slots);
  }
  const rets = o.rets;
  let res: unknown;
  if (rets.length === 0) res = undefined;
  else if (rets.length === 1) res = convertReturn(rets[0], out, jsArgs);
  else {
    const arr = (out as unknown[]).map((v, i) => convertReturn(rets[i], v, jsArgs));
    // Named returns read as PyTorch's namedtuples do: `x.topk(2).values`.
    for (let i = 0; i < rets.length; i++) {
      const nm = rets[i].name;
      if (nm) Object.defineProperty(arr, nm, { value: arr[i], enumerable: false });
    }
    res = arr;
  }
  if (kw && kw.requiresGrad !== undefined && o.factory && res instanceof Tensor) {
    if (typeof kw.requiresGrad !== 'boolean') throw argTypeError(`Expected a boolean for requiresGrad but received ${describe(kw.requiresGrad)}`);
    res.requiresGrad_(kw.requiresGrad);
  }
  return res;
}

function shortName(op: string): string {
  return camel(op.slice(op.indexOf('::') + 2));
}

/** firstFit()'s "no overload fits". */
const NONE = Symbol('none');

/** Calls the first overload the values fit (the engine's own, synced on first use), else NONE. */
function firstFit(
  overloads: Overload[], pos: unknown[], kw: Record<string, unknown> | undefined, method: boolean, loose: boolean,
): unknown {
  for (let i = 0; i < overloads.length; i++) {
    const o = overloads[i];
    if (!o.synced) sync(o);
    if (o.missing !== undefined) continue;
    const slots = bind(o, pos, kw, method, false, loose);
    if (typeof slots !== 'string') return invoke(o, slots, kw ? mergeJs(o, pos, kw) : pos, kw);
  }
  return NONE;
}

/**
 * Calls op `entry` with JS arguments `args` (self first for a method), the last one a
 * plain object of keyword arguments when it is one.
 */
export function callOp(entry: OpEntry, args: unknown[], method = false): unknown {
  const overloads = entry.overloads ?? (entry.overloads = decode(entry));
  let kw: Record<string, unknown> | undefined;
  let pos: unknown[] = args;
  const last = args.length ? args[args.length - 1] : undefined;
  if (last !== undefined && !(last instanceof Tensor) && isPlainObject(last)) {
    kw = last;
    pos = args.slice(0, -1);
  }
  // Trailing undefineds are "not given" (optional parameters of a typed wrapper).
  let end = pos.length;
  while (end > 0 && pos[end - 1] === undefined) end--;
  if (end !== pos.length) pos = pos.slice(0, end);
  const out = firstFit(overloads, pos, kw, method, false);
  if (out !== NONE) return out;
  // As PyTorch's parser, a 0-dim tensor that needs no grad may stand for a Scalar
  // (`torch.full([2], t)`, `x.mul(lr)` with `lr` a 0-dim tensor): tried only when
  // nothing fits the values as given, so a Tensor overload always wins.
  if (pos.some(isScalarTensor) || (kw !== undefined && Object.values(kw).some(isScalarTensor))) {
    const loose = firstFit(overloads, pos, kw, method, true);
    if (loose !== NONE) return loose;
  }
  // Nothing fits: bind again, this time for the reasons.
  const reasons = overloads.map((o) => o.missing ?? (bind(o, pos, kw, method, true) as string));
  const name = shortName(entry.name);
  // The arguments fit an overload only another engine has: say that, not "invalid arguments".
  const lacking = overloads.find((o) => o.missing !== undefined && typeof bind(o, pos, kw, method, false) !== 'string');
  if (lacking) throw new TorchError(lacking.missing!);
  if (overloads.every((o) => o.missing !== undefined)) throw new TorchError(overloads[0].missing!);
  if (kw) {
    for (const key in kw) {
      if (key === 'requiresGrad' && overloads.some((o) => o.factory)) continue;
      if (!overloads.some((o) => o.keys.has(key))) {
        const known = [...new Set(overloads.flatMap((o) => [...o.keys.keys()]))].filter((k) => !(method && k === 'self'));
        throw argTypeError(`${name}: unknown keyword argument '${key}' (it takes ${known.join(', ')})`);
      }
    }
  }
  const shown = method ? pos.slice(1) : pos;
  const got = shown.map((v) => (v instanceof Tensor ? 'Tensor' : describe(v))).join(', ') + (kw ? `${shown.length ? ', ' : ''}{ ${Object.keys(kw).join(', ')} }` : '');
  if (overloads.length === 1) throw argTypeError(`${name}: ${reasons[0]} (schema ${signature(overloads[0])})`);
  const lines = overloads.map((o, i) => ` * ${signature(o)}: ${reasons[i]}`);
  throw argTypeError(`${name}() received an invalid combination of arguments: (${got}); it takes one of:\n${lines.join('\n')}`);
}

/** The JS values by argument index (for in-place returns), keywords included. */
function mergeJs(o: Overload, pos: unknown[], kw: Record<string, unknown>): unknown[] {
  const js = pos.slice();
  for (const key in kw) {
    const idx = o.keys.get(key);
    if (idx !== undefined) js[idx] = kw[key];
  }
  return js;
}

/** An op entry for `aten::<name>` with these overloads. */
export function op(name: string, defs: readonly OverloadDef[]): OpEntry {
  return { name, defs };
}

/** Decoded facts about an entry's overloads, for tests and tools. */
export function overloadInfo(entry: OpEntry): { overload: string; supported: boolean; signature: string }[] {
  const overloads = entry.overloads ?? (entry.overloads = decode(entry));
  return overloads.map((o) => ({ overload: o.overload, supported: !o.unsupported, signature: signature(o) }));
}
