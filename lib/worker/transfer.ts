/**
 * Moves values that contain tensors between threads: tensors become
 * {shape, dtype, data} records whose buffers are transferred, not copied twice.
 */
import { Tensor, fromBuffer, DType } from '../tensor';

const TAG = '__torchnode_tensor__';

// Values that crossed a thread boundary may come from another realm (vm contexts,
// test runners), so test kinds without instanceof.
function isMap(v: unknown): v is Map<unknown, unknown> {
  return Object.prototype.toString.call(v) === '[object Map]';
}
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Object.prototype.toString.call(v) !== '[object Object]') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === null || proto.constructor?.name === 'Object';
}

interface PackedTensor {
  [TAG]: true;
  shape: number[];
  dtype: DType;
  requiresGrad: boolean;
  data: ArrayBufferView;
}

/** Replaces every Tensor in a value (Maps, arrays, plain objects) by a packed record; collects buffers to transfer. */
export function pack(value: unknown, transfer: ArrayBuffer[] = []): unknown {
  if (value instanceof Tensor) {
    const data = value.detach().cpu().contiguous().toTypedArray();
    transfer.push(data.buffer as ArrayBuffer);
    const p: PackedTensor = { [TAG]: true, shape: value.shape, dtype: value.dtype, requiresGrad: value.requiresGrad, data };
    return p;
  }
  if (isMap(value)) return new Map([...value].map(([k, v]) => [k, pack(v, transfer)]));
  if (Array.isArray(value)) return value.map((v) => pack(v, transfer));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = pack(v, transfer);
    return out;
  }
  return value;
}

/** The inverse of pack(): packed records become CPU tensors again. */
export function unpack(value: unknown): unknown {
  if (value && typeof value === 'object' && (value as PackedTensor)[TAG] === true) {
    const p = value as PackedTensor;
    const t = fromBuffer(p.data, p.shape, { dtype: p.dtype });
    return p.requiresGrad ? t.requiresGrad_(true) : t;
  }
  if (isMap(value)) return new Map([...value].map(([k, v]) => [k, unpack(v)]));
  if (Array.isArray(value)) return value.map(unpack);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = unpack(v);
    return out;
  }
  return value;
}

/** The ArrayBuffers inside a value (for a postMessage transfer list), each once. */
export function transferables(value: unknown, out = new Set<ArrayBuffer>(), seen = new Set<unknown>()): ArrayBuffer[] {
  if (value && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      if (value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) out.add(value.buffer);
    } else if (isMap(value)) {
      for (const v of value.values()) transferables(v, out, seen);
    } else {
      for (const v of Object.values(value)) transferables(v, out, seen);
    }
  }
  return [...out];
}

/** An Error as plain data, and back, keeping name, message, stack and code. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}
export function serializeError(e: unknown): SerializedError {
  if (e && typeof e === 'object' && 'message' in e) {
    const err = e as Error & { code?: unknown };
    return { name: String(err.name ?? 'Error'), message: String(err.message), stack: err.stack, code: typeof err.code === 'string' ? err.code : undefined };
  }
  return { name: 'Error', message: String(e) };
}
export function deserializeError(s: SerializedError, Ctor: new (m: string) => Error = Error): Error {
  const ctor = s.name === 'TypeError' ? TypeError : s.name === 'RangeError' ? RangeError : Ctor;
  const e = new ctor(s.message);
  if (e.name !== s.name) Object.defineProperty(e, 'name', { value: s.name, configurable: true, writable: true });
  if (s.stack) e.stack = s.stack;
  if (s.code) (e as Error & { code?: string }).code = s.code;
  return e;
}
