/**
 * `save` / `load` in PyTorch's own checkpoint format (`torch.save`'s default since 1.6):
 * a ZIP archive holding
 *
 *   archive/data.pkl     the object, pickled (protocol 2); each tensor is a call to
 *                        torch._utils._rebuild_tensor_v2 whose storage is a persistent
 *                        id ('storage', torch.FloatStorage, '<key>', 'cpu', numel)
 *   archive/data/<key>   each storage's raw bytes, little-endian, 64-byte aligned
 *   archive/byteorder    'little' (written by PyTorch 2.x; absent in 1.x files)
 *   archive/version      '3\n'
 *
 * Files from `torch.save` load here and files from `save` load in `torch.load`
 * (checked against PyTorch 1.13, including `weights_only=True` for state dicts).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkKeys, describe, expected, TorchError, codedError, ERROR_CODES, ValueError } from '../errors';
import { Parameter } from '../nn/module';
import { DType, fromBuffer, Tensor } from '../tensor';
import {
  isTuple, PickleError, PickleWriteError, printable, PyGlobal, PyMarker, PyCallable, Reduction, tuple, toJS, unpickle,
  UnsupportedGlobalError, pickle,
} from './pickle';
import { bufferSource, ByteSource, fdSink, fileSource, looksLikeZip, ZipError, ZipReader, ZipWriter } from './zip';

/**
 * A checkpoint could not be written or read. The message starts with what went wrong
 * and the file: `Not a PyTorch checkpoint: <file> (...)`, `Truncated checkpoint: <file> (...)`.
 */
export class CheckpointError extends TorchError {
  constructor(message: string, readonly file: string) {
    super(message);
    this.name = 'CheckpointError';
    this.code = ERROR_CODES.checkpoint;
  }
}

// ---- dtypes ------------------------------------------------------------------------

type ElementArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;
interface ArrayType {
  new (n: number): ElementArray;
  new (buf: ArrayBufferLike, byteOffset: number, length: number): ElementArray;
}

/** One element type: its torchnode dtype, PyTorch storage class, size, and JS array type. */
export interface DtypeInfo {
  dtype: string;
  storage: string;
  /** Bytes per element. */
  size: number;
  Array: ArrayType;
  /** Array values per element: 2 for complex (re, im), else 1. */
  lanes?: number;
}

const DTYPE_TABLE: DtypeInfo[] = [
  { dtype: 'float32', storage: 'FloatStorage', size: 4, Array: Float32Array as unknown as ArrayType },
  { dtype: 'float64', storage: 'DoubleStorage', size: 8, Array: Float64Array as unknown as ArrayType },
  { dtype: 'int64', storage: 'LongStorage', size: 8, Array: BigInt64Array as unknown as ArrayType },
  { dtype: 'int32', storage: 'IntStorage', size: 4, Array: Int32Array as unknown as ArrayType },
  { dtype: 'int16', storage: 'ShortStorage', size: 2, Array: Int16Array as unknown as ArrayType },
  { dtype: 'int8', storage: 'CharStorage', size: 1, Array: Int8Array as unknown as ArrayType },
  { dtype: 'uint8', storage: 'ByteStorage', size: 1, Array: Uint8Array as unknown as ArrayType },
  { dtype: 'bool', storage: 'BoolStorage', size: 1, Array: Uint8Array as unknown as ArrayType },
  // 16-bit floats travel as their raw bits (JS has no Float16Array).
  { dtype: 'float16', storage: 'HalfStorage', size: 2, Array: Uint16Array as unknown as ArrayType },
  { dtype: 'bfloat16', storage: 'BFloat16Storage', size: 2, Array: Uint16Array as unknown as ArrayType },
  // Complex elements are (re, im) pairs of floats, as toTypedArray() gives them.
  { dtype: 'complex64', storage: 'ComplexFloatStorage', size: 8, Array: Float32Array as unknown as ArrayType, lanes: 2 },
  { dtype: 'complex128', storage: 'ComplexDoubleStorage', size: 16, Array: Float64Array as unknown as ArrayType, lanes: 2 },
];
const BY_DTYPE = new Map(DTYPE_TABLE.map((d) => [d.dtype, d]));
/** PyTorch storage classes torchnode has no dtype for, with their dtype names for messages. */
const UNSUPPORTED_STORAGES: Record<string, string> = {
  ComplexHalfStorage: 'complex32', QInt8Storage: 'qint8', QUInt8Storage: 'quint8', QInt32Storage: 'qint32',
  QUInt4x2Storage: 'quint4x2', QUInt2x4Storage: 'quint2x4', UntypedStorage: 'untyped bytes',
};

/** @internal The element type of a dtype, or undefined. */
export function dtypeInfo(dtype: string): DtypeInfo | undefined {
  return BY_DTYPE.get(dtype);
}

/** @internal Row-major strides for a shape, as PyTorch computes them (size-0/1 dims count as 1). */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= Math.max(shape[i], 1);
  }
  return s;
}

/** @internal A tensor's bytes in row-major order (a copy, on the CPU). */
export function tensorBytes(t: Tensor): Buffer {
  const ta = t.toTypedArray();
  return Buffer.from(ta.buffer, ta.byteOffset, ta.byteLength);
}

/**
 * @internal A CPU tensor of `shape` from elements of `info`'s type in `bytes`
 * (little-endian unless `bigEndian`), read at element `offset` with `stride`.
 */
export function tensorFromBytes(
  bytes: Buffer, info: DtypeInfo, shape: number[], offset = 0, stride: number[] = contiguousStrides(shape), bigEndian = false,
): Tensor {
  const numel = shape.reduce((a, b) => a * b, 1);
  // bool, the 16-bit floats and complex are reinterpretations of their arrays (Uint8Array,
  // Uint16Array, (re, im) pairs of Float32Array / Float64Array).
  const lanes = info.lanes ?? 1;
  const reinterpret = info.dtype === 'bool' || info.dtype === 'float16' || info.dtype === 'bfloat16' || lanes > 1;
  const opts = reinterpret ? { dtype: info.dtype as DType } : {};
  if (numel === 0) return fromBuffer(new info.Array(0), shape, opts);
  const hostBig = os.endianness() === 'BE';
  const width = info.size / lanes; // bytes per array value: what byte order applies to
  let b = bytes;
  // Typed arrays need aligned memory; swapping needs a private copy.
  if (b.byteOffset % width !== 0 || (bigEndian !== hostBig && width > 1)) b = Buffer.from(b);
  if (bigEndian !== hostBig) {
    if (width === 2) b.swap16();
    else if (width === 4) b.swap32();
    else if (width === 8) b.swap64();
  }
  const all = new info.Array(b.buffer, b.byteOffset, Math.floor(b.byteLength / width));
  const contiguous = contiguousStrides(shape).every((s, i) => shape[i] === 1 || s === stride[i]);
  let data: ElementArray;
  if (contiguous) {
    data = all.subarray(offset * lanes, (offset + numel) * lanes);
  } else {
    // A view (transposed, sliced): gather its elements in row-major order.
    data = new info.Array(numel * lanes);
    const idx = new Array<number>(shape.length).fill(0);
    let src = offset;
    const dst = data as unknown as { [i: number]: number | bigint };
    const from = all as unknown as { [i: number]: number | bigint };
    for (let n = 0; n < numel; n++) {
      for (let l = 0; l < lanes; l++) dst[n * lanes + l] = from[src * lanes + l];
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) {
          src += stride[d];
          break;
        }
        src -= stride[d] * (shape[d] - 1);
        idx[d] = 0;
      }
    }
  }
  return fromBuffer(data, shape, opts);
}

// ---- atomic writes -----------------------------------------------------------------

/**
 * @internal Writes `file` atomically: `write` fills `<file>.tmp-<pid>-<random>` in the
 * same folder, which is fsynced and renamed over `file`. On any error the temp file
 * is removed and `file` is untouched, so a crash mid-save never destroys the previous
 * checkpoint.
 */
export function atomicWrite(file: string, write: (fd: number) => void): void {
  if (typeof file !== 'string' || file === '') expected('a file path', 'file', file);
  const target = path.resolve(file);
  const dir = path.dirname(target);
  removeStaleTemps(dir, path.basename(target));
  const tmp = path.join(dir, `${path.basename(target)}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  let fd = fs.openSync(tmp, 'wx');
  try {
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd >= 0) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error matters
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      // nothing to remove
    }
    throw e;
  }
  // Make the rename itself durable. Best effort: some platforms refuse to fsync a folder.
  try {
    const d = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(d);
    } finally {
      fs.closeSync(d);
    }
  } catch {
    // not supported here
  }
}

/** Whether a process with this id exists (EPERM: it does, owned by someone else). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * @internal Removes `<base>.tmp-<pid>-<hex>` files in `dir` left by saves that were killed
 * (kill -9, power loss) before they could clean up: only regular files whose pid is no
 * longer a running process. Temps of live processes (a save in progress) and every other
 * file are left alone. Our own pid counts as dead only for temps older than this process
 * (a container restarted after kill -9 often gets the same pid again); newer ones may be a
 * worker thread's save in progress. Best effort: a folder that cannot be listed is skipped.
 */
export function removeStaleTemps(dir: string, base: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const prefix = `${base}.tmp-`;
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d{1,10})-[0-9a-f]{12}$/.exec(n.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    // pid 0 would signal our own process group.
    if (pid < 1 || pid > 0x7fffffff || (pid !== process.pid && processAlive(pid))) continue;
    const p = path.join(dir, n);
    try {
      const st = fs.lstatSync(p);
      if (!st.isFile()) continue;
      if (pid === process.pid && st.mtimeMs >= Date.now() - process.uptime() * 1000 - 2000) continue;
      fs.unlinkSync(p);
    } catch {
      // gone already, or not ours to remove
    }
  }
}

/** @internal Opens a path or wraps a Buffer; checks the argument. */
export function openSource(file: unknown): { source: ByteSource; name: string } {
  if (typeof file === 'string') {
    if (file === '') expected('a file path or a Buffer', 'file', file);
    return { source: fileSource(file), name: file };
  }
  if (file instanceof Uint8Array) return { source: bufferSource(file), name: '<buffer>' };
  return expected('a file path or a Buffer', 'file', file);
}

// ---- save --------------------------------------------------------------------------

/** A storage to write: one tensor's data (torchnode writes each tensor as its own storage). */
class StorageOut {
  constructor(readonly key: string, readonly tensor: Tensor, readonly info: DtypeInfo, readonly location: string) {}
}

/** Marks the data tensor inside a Parameter's reduction, so it is written as a plain tensor. */
class ParamData {
  constructor(readonly tensor: Tensor) {}
}

const REBUILD_TENSOR = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
const REBUILD_PARAMETER = new PyGlobal('torch._utils', '_rebuild_parameter');

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** PyTorch keeps optimizer options like Adam's `betas` as tuples; torchnode's stateDict() has arrays. */
function optimizerTuples(v: object): unknown {
  if (!isPlainObject(v) || !isPlainObject(v.state) || !Array.isArray(v.param_groups)) return v;
  const groups = v.param_groups as unknown[];
  if (!groups.every((g) => isPlainObject(g) && Array.isArray(g.params))) return v;
  return {
    ...v,
    param_groups: groups.map((g) => {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(g as Record<string, unknown>)) {
        out[k] = k !== 'params' && Array.isArray(x) && !isTuple(x) ? tuple(...x) : x;
      }
      return out;
    }),
  };
}

export interface SaveOptions {
  /** @internal Write ZIP64 records even for a small file (tests the >4 GiB layout). */
  forceZip64?: boolean;
}

function writeCheckpoint(obj: unknown, sink: { write(b: Uint8Array): void }, options: SaveOptions): void {
  const storages: StorageOut[] = [];
  const byTensor = new Map<Tensor, StorageOut>();
  const storageFor = (t: Tensor): StorageOut => {
    let s = byTensor.get(t);
    if (s) return s;
    if (t.isDisposed) throw codedError(ERROR_CODES.disposed, 'the tensor has been disposed');
    const info = BY_DTYPE.get(t.dtype);
    if (!info) throw new ValueError(`tensors of dtype ${t.dtype} cannot be saved`);
    const dev = t.device;
    s = new StorageOut(String(storages.length), t, info, dev === 'cuda' ? 'cuda:0' : dev);
    storages.push(s);
    byTensor.set(t, s);
    return s;
  };
  const tensorArgs = (t: Tensor, requiresGrad: boolean): unknown[] => {
    const shape = t.shape;
    return [storageFor(t), 0, tuple(...shape), tuple(...contiguousStrides(shape)), requiresGrad, new Map()];
  };
  const pkl = pickle(obj, {
    rootName: 'obj',
    replace: optimizerTuples,
    persistentId: (v) => {
      if (!(v instanceof StorageOut)) return undefined;
      const numel = v.tensor.numel();
      return tuple<unknown>('storage', new PyGlobal('torch', v.info.storage), v.key, v.location, numel);
    },
    reduce: (v): Reduction | undefined => {
      if (v instanceof ParamData) return { func: REBUILD_TENSOR, args: tensorArgs(v.tensor, false) };
      if (v instanceof Parameter) {
        if (v.isDisposed) throw codedError(ERROR_CODES.disposed, 'the parameter has been disposed');
        return { func: REBUILD_PARAMETER, args: [new ParamData(v), v.requiresGrad, new Map()] };
      }
      if (v instanceof Tensor) {
        if (v.isDisposed) throw codedError(ERROR_CODES.disposed, 'the tensor has been disposed');
        return { func: REBUILD_TENSOR, args: tensorArgs(v, v.requiresGrad) };
      }
      return undefined;
    },
  });
  const zip = new ZipWriter(sink, { forceZip64: options.forceZip64 });
  zip.add('archive/data.pkl', pkl);
  zip.add('archive/byteorder', Buffer.from(os.endianness() === 'LE' ? 'little' : 'big'));
  for (const s of storages) {
    const bytes = tensorBytes(s.tensor);
    zip.add(`archive/data/${s.key}`, bytes);
  }
  zip.add('archive/version', Buffer.from('3\n'));
  zip.finish();
}

/**
 * Saves `obj` to `file` in PyTorch's checkpoint format, readable by `torch.load`.
 * `obj` may nest tensors, numbers, strings, booleans, null, arrays (tuples via
 * `tuple()`), Maps (written as OrderedDict, like a state dict), Sets, Buffers (bytes)
 * and plain objects (dicts; keys `"0"`, `"1"`, ... are written as ints, as in an
 * optimizer state dict). Tensors are written contiguous from the CPU; each tensor has
 * its own storage. The write is atomic: `file` is replaced only once the new one is
 * complete and synced; on any error it is untouched and no temp file remains.
 * @example
 * torch.save(model.stateDict(), 'model.pt');               // torch.load('model.pt') in Python
 * torch.save({ epoch: 3, optimizer_state_dict: opt.stateDict() }, 'ckpt.pt');
 */
export function save(obj: unknown, file: string, options: SaveOptions = {}): void {
  if (typeof file !== 'string' || file === '') expected('a file path', 'file', file);
  checkKeys(options, ['forceZip64'], 'save');
  try {
    atomicWrite(file, (fd) => writeCheckpoint(obj, fdSink(fd), options));
  } catch (e) {
    if (e instanceof PickleWriteError) throw new CheckpointError(`Cannot save checkpoint ${file}: ${e.message}`, file);
    throw e;
  }
}

/**
 * Like `save`, but returns the checkpoint's bytes instead of writing a file.
 * @example const bytes = saveToBuffer(model.stateDict()); load(bytes);
 */
export function saveToBuffer(obj: unknown, options: SaveOptions = {}): Buffer {
  checkKeys(options, ['forceZip64'], 'saveToBuffer');
  const parts: Buffer[] = [];
  try {
    writeCheckpoint(obj, { write: (b) => void parts.push(Buffer.from(b)) }, options);
  } catch (e) {
    if (e instanceof PickleWriteError) throw new CheckpointError(`Cannot save checkpoint: ${e.message}`, '<buffer>');
    throw e;
  }
  return Buffer.concat(parts);
}

// ---- load --------------------------------------------------------------------------

/** pickle protocol 2, LONG1 of 10 bytes: the magic number legacy torch.save files start with. */
const LEGACY_MAGIC = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

export interface LoadOptions {
  /**
   * The most bytes `load` may allocate for data beyond the file's own bytes: each tensor's
   * elements and each compressed record's inflated size, checked before allocating.
   * Default: 4 x the file's size + 64 MiB. Files from `torch.save` stay well under it; a
   * file whose tensors are views that repeat elements (`expand`, overlapping strides) or
   * whose records are deflated may need more.
   */
  maxBytes?: number;
}

const DEFAULT_EXTRA_BYTES = 64 * 1024 * 1024;

/** What a load may still allocate; `take` refuses, naming what and how much, before the allocation. */
class Budget {
  private used = 0;
  readonly limit: number;
  constructor(private readonly file: string, private readonly fileSize: number, private readonly maxBytes: number | undefined) {
    this.limit = maxBytes ?? 4 * fileSize + DEFAULT_EXTRA_BYTES;
  }
  take(bytes: number, what: string): void {
    if (bytes > this.limit - this.used) {
      const whose = this.maxBytes !== undefined ? 'maxBytes' : `the default for a ${this.fileSize}-byte file: 4 x its size + 64 MiB`;
      throw new CheckpointError(
        `Checkpoint too large to load: ${this.file} (${what} needs ${bytes} bytes; with ${this.used} already taken that passes ` +
          `the limit of ${this.limit} bytes (${whose}); pass { maxBytes } to load to allow more)`,
        this.file,
      );
    }
    this.used += bytes;
  }
}

class StorageIn {
  private bytes: Buffer | null = null;
  constructor(
    readonly info: DtypeInfo, readonly key: string, readonly numel: number, private readonly zip: ZipReader,
    readonly record: string, private readonly budget: Budget,
  ) {}
  data(): Buffer {
    if (!this.bytes) {
      const entry = this.zip.entries.get(this.record);
      if (!entry) throw new ZipError(`the pickle refers to storage '${this.key}' but the archive has no ${this.record}`, 'corrupt');
      if (entry.method !== 0) this.budget.take(entry.size, `inflating ${this.record}`);
      const b = this.zip.read(this.record);
      const need = this.numel * this.info.size;
      if (b.length < need) {
        throw new ZipError(`${this.record} has ${b.length} bytes but its ${this.numel} ${this.info.dtype} elements need ${need}`, 'corrupt');
      }
      this.bytes = b;
    }
    return this.bytes;
  }
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
    throw new PickleError(`${what} must be a tuple of non-negative ints, got ${describe(v)}`);
  }
  return v as number[];
}

function torchGlobals(made: Tensor[], bigEndian: () => boolean, budget: Budget): Map<string, unknown> {
  const g = new Map<string, unknown>();
  const fn = (qualname: string, call: (args: unknown[]) => unknown): void => void g.set(qualname, { qualname, call } as PyCallable);
  const rebuild = (args: unknown[], what: string): Tensor => {
    const [storage, offset, size, stride, requiresGrad] = args;
    if (!(storage instanceof StorageIn)) throw new PickleError(`${what} expects a storage, got ${describe(storage)}`);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new PickleError(`${what}: bad storage offset ${describe(offset)}`);
    const shape = intList(size, `${what} size`);
    const strides = intList(stride, `${what} stride`);
    if (strides.length !== shape.length) throw new PickleError(`${what}: size ${describe(shape)} and stride ${describe(strides)} differ in length`);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel > 0) {
      // PyTorch's as_strided check: the farthest element must lie inside the storage.
      const last = offset + shape.reduce((acc, d, i) => acc + (d - 1) * strides[i], 0);
      if (last >= storage.numel) {
        throw new PickleError(
          `a tensor of size [${shape}] and stride [${strides}] at offset ${offset} reaches element ${last} of storage '${storage.key}', which has ${storage.numel}`,
        );
      }
      // It is a copy here, not a view: a stride-0 or overlapping one may need far more than its storage.
      budget.take(numel * storage.info.size, `a ${storage.info.dtype} tensor of size [${shape}] from storage '${storage.key}'`);
    }
    const t = tensorFromBytes(numel ? storage.data() : Buffer.alloc(0), storage.info, shape, offset, strides, bigEndian());
    made.push(t);
    if (requiresGrad === true && t.isFloatingPoint()) t.requiresGrad_(true);
    return t;
  };
  fn('torch._utils._rebuild_tensor_v2', (a) => rebuild(a, '_rebuild_tensor_v2'));
  fn('torch._utils._rebuild_tensor', (a) => rebuild([...a.slice(0, 4), false], '_rebuild_tensor'));
  const param = (args: unknown[]): Tensor => {
    const [data, requiresGrad] = args;
    if (!(data instanceof Tensor)) throw new PickleError(`_rebuild_parameter expects a tensor, got ${describe(data)}`);
    const p = new Parameter(data, requiresGrad === true && data.isFloatingPoint());
    made.push(p);
    return p;
  };
  fn('torch._utils._rebuild_parameter', param);
  fn('torch._utils._rebuild_parameter_with_state', param);
  for (const info of DTYPE_TABLE) g.set(`torch.${info.storage}`, new PyMarker(`torch.${info.storage}`, info));
  for (const s of Object.keys(UNSUPPORTED_STORAGES)) g.set(`torch.${s}`, new PyMarker(`torch.${s}`, s));
  for (const d of ['float32', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'float16', 'bfloat16']) g.set(`torch.${d}`, d);
  fn('torch.Size', (a) => intList(a[0] ?? [], 'torch.Size').slice());
  fn('torch.device', (a) => {
    const [type, index] = a;
    if (typeof type !== 'string') throw new PickleError(`torch.device expects a string, got ${describe(type)}`);
    return typeof index === 'number' && !type.includes(':') ? `${type}:${index}` : type;
  });
  return g;
}

function fail(kind: 'not' | 'truncated' | 'corrupt', name: string, detail: string): never {
  const head = kind === 'not' ? 'Not a PyTorch checkpoint' : kind === 'truncated' ? 'Truncated checkpoint' : 'Corrupt checkpoint';
  throw new CheckpointError(`${head}: ${name} (${detail})`, name);
}

function zipFail(e: ZipError, name: string): never {
  if (e.kind === 'truncated') fail('truncated', name, `${e.message}; the file was probably cut short while being written or copied`);
  if (e.kind === 'not-zip') fail('not', name, e.message);
  if (e.kind === 'unsupported') fail('not', name, `unsupported zip feature: ${e.message}`);
  fail('corrupt', name, e.message);
}

function listNames(names: string[]): string {
  return names.length > 6 ? `${names.slice(0, 6).join(', ')}, ... (${names.length} entries)` : names.join(', ') || 'nothing';
}

/**
 * Loads a checkpoint written by `torch.save` (PyTorch >= 1.6's zip format) or by
 * `save`, from a path or a Buffer. Tensors come back on the CPU. Containers map as:
 * `OrderedDict` (a state dict) -> `Map` in the same order; `dict` -> plain object
 * when its keys are strings or non-negative ints (as in `{state: {0: ...}}`), else
 * `Map`; list -> array; tuple -> array marked with `isTuple()`; set -> `Set`;
 * bytes -> `Buffer`; large ints -> bigint. A state dict's `_metadata` is dropped.
 * Nothing in the file is executed: a pickled class other than tensors and plain
 * containers (e.g. a whole `nn.Module`) is an error naming the class. Every size the
 * file declares is checked against the file and `options.maxBytes` before anything
 * is allocated (see LoadOptions).
 * @example
 * const sd = torch.load('model.pt') as Map<string, Tensor>;
 * model.loadStateDict(sd);
 */
export function load(file: string | Uint8Array, options: LoadOptions = {}): unknown {
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  checkKeys(options, ['maxBytes'], 'load');
  const { maxBytes } = options;
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || Number.isNaN(maxBytes) || maxBytes < 0)) {
    expected('a non-negative number of bytes', 'options.maxBytes', maxBytes);
  }
  const { source, name } = openSource(file);
  const made: Tensor[] = [];
  try {
    const size = source.size;
    const budget = new Budget(name, size, maxBytes);
    if (size === 0) fail('not', name, 'empty file');
    const head = source.read(0, Math.min(size, 16));
    if (head.length >= LEGACY_MAGIC.length && head.subarray(0, LEGACY_MAGIC.length).equals(LEGACY_MAGIC)) {
      throw new CheckpointError(
        `Legacy checkpoint: ${name} was written by torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False), ` +
          'a format torchnode does not read. Re-save it with a current PyTorch: torch.save(torch.load(f), f)',
        name,
      );
    }
    if (!looksLikeZip(head)) {
      let why = `no zip signature; it starts with ${[...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`;
      if (head[0] === 0x80) why = 'a plain pickle, not the zip format torch.save writes';
      else if (size >= 9 && head.length >= 9 && head[8] === 0x7b && head.readBigUInt64LE(0) < BigInt(size)) {
        why = 'it looks like a safetensors file; use loadSafetensors';
      }
      fail('not', name, why);
    }
    let zip: ZipReader;
    try {
      zip = new ZipReader(source);
    } catch (e) {
      if (e instanceof ZipError) zipFail(e, name);
      throw e;
    }
    const names = zip.names();
    const pklName = names.find((n) => /^[^/]+\/data\.pkl$/.test(n)) ?? names.find((n) => n === 'data.pkl');
    if (pklName === undefined) {
      if (names.some((n) => /(^|\/)constants\.pkl$/.test(n) || /(^|\/)code\//.test(n))) {
        fail('not', name, 'a TorchScript archive (torch.jit.save); torchnode loads torch.save checkpoints');
      }
      fail('not', name, `a zip archive without a data.pkl record; it holds ${listNames(names)}`);
    }
    const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
    let bigEndian = false;
    try {
      const readRecord = (record: string): Buffer => {
        const entry = zip.entries.get(record)!;
        if (entry.method !== 0) budget.take(entry.size, `inflating ${record}`);
        return zip.read(record);
      };
      if (zip.has(`${prefix}byteorder`)) {
        const order = readRecord(`${prefix}byteorder`).toString('latin1').trim();
        if (order !== 'little' && order !== 'big') fail('corrupt', name, `byteorder record says '${order}'`);
        bigEndian = order === 'big';
      }
      const storages = new Map<string, StorageIn>();
      const persistentLoad = (pid: unknown): StorageIn => {
        if (!isTuple(pid) || pid[0] !== 'storage' || pid.length !== 5) {
          throw new PickleError(`unsupported persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`, 'unsupported');
        }
        const [, type, key, , numel] = pid;
        if (!(type instanceof PyMarker)) throw new PickleError(`storage type must be a torch storage class, got ${describe(type)}`);
        if (typeof type.value === 'string') {
          throw new PickleError(`storage '${String(key)}' holds ${UNSUPPORTED_STORAGES[type.value]} data (${type.qualname}), which torchnode does not support; convert it in PyTorch first (e.g. .float())`, 'unsupported');
        }
        if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
          throw new PickleError(`bad storage id ${describe(pid)}`);
        }
        let s = storages.get(key);
        if (!s) {
          const info = type.value as DtypeInfo;
          const record = `${prefix}data/${key}`;
          const entry = zip.entries.get(record);
          if (!entry) throw new ZipError(`the pickle refers to storage '${key}' but the archive has no ${record}`, 'corrupt');
          // The declared size, checked before any tensor is built from it (the data itself is checked when read).
          if (numel * info.size > entry.size) {
            throw new ZipError(`storage '${key}': ${record} has ${entry.size} bytes but its ${numel} ${info.dtype} elements need ${numel * info.size}`, 'corrupt');
          }
          s = new StorageIn(info, key, numel, zip, record, budget);
          storages.set(key, s);
        }
        return s;
      };
      const py = unpickle(readRecord(pklName), { globals: torchGlobals(made, () => bigEndian, budget), persistentLoad });
      return toJS(py, { convert: (v) => (v instanceof Tensor ? v : undefined) });
    } catch (e) {
      if (e instanceof ZipError) zipFail(e, name);
      if (e instanceof UnsupportedGlobalError) {
        throw new CheckpointError(
          `Unsupported class ${printable(e.qualname)} in checkpoint ${name}: torchnode never runs pickled code, so it loads only tensors, ` +
            'containers and plain values. If this is a whole model, save model.state_dict() in PyTorch instead.',
          name,
        );
      }
      if (e instanceof PickleError) {
        if (e.kind === 'unsupported') throw new CheckpointError(`Cannot load checkpoint ${name}: ${e.message}`, name);
        fail(e.kind === 'truncated' ? 'truncated' : 'corrupt', name, `${pklName}: ${e.message}`);
      }
      throw e;
    }
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  } finally {
    source.close();
  }
}

