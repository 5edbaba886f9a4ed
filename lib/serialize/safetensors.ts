/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`
 * padded with spaces to a multiple of 8, then the tensors' bytes (little-endian,
 * row-major). Offsets are relative to the start of the data and must cover it
 * exactly, without holes or overlaps. Nothing in the file is executed.
 */
import { describe, expected, argTypeError } from '../errors';
import { Tensor } from '../tensor';
import { atomicWrite, CheckpointError, dtypeInfo, DtypeInfo, openSource, tensorBytes, tensorFromBytes } from './torch';
import { ByteSource, fdSink } from './zip';

const ST_TO_DTYPE: Record<string, string> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const DTYPE_TO_ST: Record<string, string> = Object.fromEntries(Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k]));

/** The safetensors reference implementation refuses headers over 100 MB. */
const MAX_HEADER = 100_000_000;

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
}

/** A parsed and validated safetensors header. */
export interface SafetensorsHeader {
  /** Tensors in the order of their data in the file. */
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string> | null;
  /** Where the data starts in the file (8 + header length). */
  dataStart: number;
}

function toEntries(tensors: unknown): [string, Tensor][] {
  let entries: [unknown, unknown][];
  if (tensors instanceof Map) entries = [...tensors.entries()];
  else if (tensors !== null && typeof tensors === 'object' && !Array.isArray(tensors)) entries = Object.entries(tensors);
  else return expected('a Map or an object of Tensors', 'tensors', tensors);
  for (const [k, v] of entries) {
    if (typeof k !== 'string' || k === '') expected('a non-empty string', 'tensor name', k);
    if (k === '__metadata__') throw argTypeError("Expected a tensor name other than '__metadata__' (it is reserved for metadata)");
    if (!(v instanceof Tensor)) expected('a Tensor', `tensors['${k}']`, v);
    if (v.isDisposed) throw argTypeError(`Expected a live Tensor for tensors['${k}'] but received a disposed one`);
    if (!DTYPE_TO_ST[v.dtype]) throw argTypeError(`Cannot save tensors['${k}'] of dtype ${v.dtype} as safetensors`);
  }
  return entries as [string, Tensor][];
}

function headerBytes(entries: [string, Tensor][], metadata: Record<string, string> | undefined): { header: Buffer; order: [string, Tensor][] } {
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) expected('an object of strings', 'metadata', metadata);
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') expected('a string', `metadata['${k}']`, v);
  }
  // Larger elements first (stable), like the reference writer, so every tensor's data is aligned.
  const order = entries
    .map((e, i) => ({ e, i, size: dtypeInfo(e[1].dtype)!.size }))
    .sort((a, b) => b.size - a.size || a.i - b.i)
    .map((x) => x.e);
  // Written by hand, not JSON.stringify(object): an object would move integer-like names first.
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const [k, t] of order) {
    const shape = t.shape;
    const bytes = shape.reduce((a, b) => a * b, 1) * dtypeInfo(t.dtype)!.size;
    parts.push(`${JSON.stringify(k)}:${JSON.stringify({ dtype: DTYPE_TO_ST[t.dtype], shape, data_offsets: [offset, offset + bytes] })}`);
    offset += bytes;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Buffer.alloc(json.length + ((8 - (json.length % 8)) % 8), 0x20);
  json.copy(padded);
  return { header: padded, order };
}

function writeSafetensors(entries: [string, Tensor][], metadata: Record<string, string> | undefined, write: (b: Uint8Array) => void): void {
  const { header, order } = headerBytes(entries, metadata);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  write(len);
  write(header);
  for (const [, t] of order) write(tensorBytes(t));
}

/**
 * Saves tensors to a safetensors file (atomically, like `save`), with optional
 * string metadata. Tensors are written contiguous from the CPU, larger element types
 * first so each one is aligned; the header lists them in that order.
 * @example saveSafetensors(model.stateDict(), 'model.safetensors', { format: 'pt' });
 */
export function saveSafetensors(tensors: Map<string, Tensor> | Record<string, Tensor>, file: string, metadata?: Record<string, string>): void {
  if (typeof file !== 'string' || file === '') expected('a file path', 'file', file);
  const entries = toEntries(tensors);
  atomicWrite(file, (fd) => {
    const sink = fdSink(fd);
    writeSafetensors(entries, metadata, (b) => sink.write(b));
  });
}

/**
 * Like `saveSafetensors`, but returns the bytes.
 * @example loadSafetensors(safetensorsToBuffer({ w: torch.ones(2) }));
 */
export function safetensorsToBuffer(tensors: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  writeSafetensors(toEntries(tensors), metadata, (b) => void parts.push(Buffer.from(b)));
  return Buffer.concat(parts);
}

function isNatural(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseHeader(source: ByteSource, name: string): SafetensorsHeader {
  const size = source.size;
  const bad = (why: string): never => {
    throw new CheckpointError(`Invalid safetensors header in ${name}: ${why}`, name);
  };
  if (size < 8) throw new CheckpointError(`Not a safetensors file: ${name} (only ${size} bytes; the header length alone takes 8)`, name);
  const n64 = source.read(0, 8).readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER)) {
    throw new CheckpointError(`Not a safetensors file: ${name} (header length ${n64} is over the 100 MB limit; the file is probably something else)`, name);
  }
  const n = Number(n64);
  if (n < 2) throw new CheckpointError(`Not a safetensors file: ${name} (header length ${n})`, name);
  if (8 + n > size) {
    throw new CheckpointError(`Truncated safetensors file: ${name} (the header needs ${n} bytes after the length but the file has ${size - 8})`, name);
  }
  const text = source.read(8, n).toString('utf8');
  if (text[0] !== '{') throw new CheckpointError(`Not a safetensors file: ${name} (the header does not start with '{')`, name);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return bad(`not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return bad('the header is not a JSON object');
  const dataLen = size - 8 - n;
  let metadata: Record<string, string> | null = null;
  const list: [string, SafetensorsEntry][] = [];
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (k === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('__metadata__ must be an object of strings');
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== 'string') bad(`__metadata__['${mk}'] must be a string, got ${describe(mv)}`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(`tensor '${k}' must be an object {dtype, shape, data_offsets}`);
    const { dtype, shape, data_offsets: offsets } = v as Record<string, unknown>;
    if (typeof dtype !== 'string') bad(`tensor '${k}' has no dtype`);
    if (!ST_TO_DTYPE[dtype as string]) {
      bad(`tensor '${k}' has dtype ${describe(dtype)}, which torchnode does not support (supported: ${Object.keys(ST_TO_DTYPE).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isNatural)) bad(`tensor '${k}' has shape ${describe(shape)}; expected an array of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNatural) || offsets[0] > offsets[1]) {
      bad(`tensor '${k}' has data_offsets ${describe(offsets)}; expected [begin, end] with 0 <= begin <= end`);
    }
    const [b, e] = offsets as [number, number];
    const info = dtypeInfo(ST_TO_DTYPE[dtype as string])!;
    const need = (shape as number[]).reduce((a, x) => a * x, 1) * info.size;
    if (e - b !== need) {
      bad(`tensor '${k}' of dtype ${dtype} and shape [${shape}] needs ${need} bytes but data_offsets [${b}, ${e}] span ${e - b}`);
    }
    list.push([k, { dtype: dtype as string, shape: shape as number[], dataOffsets: [b, e] }]);
  }
  list.sort((x, y) => x[1].dataOffsets[0] - y[1].dataOffsets[0] || x[1].dataOffsets[1] - y[1].dataOffsets[1]);
  let pos = 0;
  for (const [k, { dataOffsets: [b, e] }] of list) {
    if (b < pos) bad(`tensor '${k}' (data_offsets [${b}, ${e}]) overlaps the tensor before it, which ends at ${pos}`);
    if (b > pos) bad(`there is a hole in the data: bytes ${pos}..${b} belong to no tensor (before '${k}')`);
    pos = e;
  }
  if (pos > dataLen) {
    throw new CheckpointError(`Truncated safetensors file: ${name} (the header describes ${pos} bytes of data but the file has ${dataLen})`, name);
  }
  if (pos < dataLen) bad(`the data has ${dataLen} bytes but the tensors cover only ${pos}`);
  return { tensors: new Map(list), metadata, dataStart: 8 + n };
}

/**
 * Reads and validates a safetensors header without loading any tensor.
 * @example readSafetensorsHeader('model.safetensors').metadata
 */
export function readSafetensorsHeader(file: string | Uint8Array): SafetensorsHeader {
  const { source, name } = openSource(file);
  try {
    return parseHeader(source, name);
  } finally {
    source.close();
  }
}

/**
 * Loads every tensor of a safetensors file (or Buffer), in the order of their data,
 * as CPU tensors. Errors name the file and the first problem found.
 * @example model.loadStateDict(loadSafetensors('model.safetensors'));
 */
export function loadSafetensors(file: string | Uint8Array): Map<string, Tensor> {
  const { source, name } = openSource(file);
  const out = new Map<string, Tensor>();
  try {
    const header = parseHeader(source, name);
    for (const [k, entry] of header.tensors) {
      const info: DtypeInfo = dtypeInfo(ST_TO_DTYPE[entry.dtype])!;
      const [b, e] = entry.dataOffsets;
      out.set(k, tensorFromBytes(source.read(header.dataStart + b, e - b), info, entry.shape));
    }
    return out;
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    source.close();
  }
}
