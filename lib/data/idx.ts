/**
 * The IDX file format of MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
 * number `00 00 <type> <ndims>`, `ndims` big-endian uint32 sizes, then the values
 * in row-major order, big-endian. Files may be gzip-compressed (detected by content).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { checkKeys, expected, outOfRangeError, ERROR_CODES } from '../errors';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A decoded IDX array. */
export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  /** The values, row-major, in native byte order. A uint8 array may share memory with the input Buffer. */
  data: IdxData;
}

const TYPES: Record<number, { dtype: IdxDtype; bytes: number; name: string }> = {
  0x08: { dtype: 'uint8', bytes: 1, name: 'unsigned byte' },
  0x09: { dtype: 'int8', bytes: 1, name: 'signed byte' },
  0x0b: { dtype: 'int16', bytes: 2, name: 'short' },
  0x0c: { dtype: 'int32', bytes: 4, name: 'int' },
  0x0d: { dtype: 'float32', bytes: 4, name: 'float' },
  0x0e: { dtype: 'float64', bytes: 8, name: 'double' },
};

const hex = (n: number, width = 2) => `0x${n.toString(16).toUpperCase().padStart(width, '0')}`;

/** An IDX file that is missing, truncated or not IDX at all. */
export class IdxError extends Error {
  readonly code: string = ERROR_CODES.idx;
  constructor(message: string) {
    super(message);
    this.name = 'IdxError';
  }
}

/** The most bytes an IDX array may hold, raw or once gunzipped (what fs.readFileSync can read). */
export const MAX_IDX_BYTES = 2 ** 31 - 1;
/** 4-byte magic number and up to 255 uint32 sizes. */
const MAX_HEADER_BYTES = 4 + 4 * 255;

/** What a path names, for the error when it is not a regular file. */
function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The bytes of a regular file. Opened non-blocking and checked with fstat on the
 * same descriptor, so a FIFO or device is refused at once (reading one would
 * block forever or never end) and cannot be swapped in after the check. A raw
 * IDX file's header is read first and its declared size checked against the
 * file's, before the rest is allocated.
 */
function readRegular(file: string, name: string, fail: (what: string) => never): Uint8Array {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new IdxError(`Cannot read IDX file ${name}: ${(e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new IdxError(`Cannot read IDX file ${name}: it is ${kindOf(st)}, not a regular file`);
    const size = st.size;
    const head = Buffer.alloc(Math.min(size, MAX_HEADER_BYTES));
    const got = fs.readSync(fd, head, 0, head.length, 0);
    const first = head.subarray(0, got);
    const gz = first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b;
    if (!gz) checkSize(parseHeader(first, size, fail), size, fail);
    else if (size > MAX_IDX_BYTES) fail(`${size} bytes of gzip data is more than the ${MAX_IDX_BYTES} bytes an IDX file may hold`);
    const bytes = Buffer.alloc(size);
    let pos = 0;
    while (pos < size) {
      const n = fs.readSync(fd, bytes, pos, size - pos, pos);
      if (n === 0) break;
      pos += n;
    }
    return bytes.subarray(0, pos);
  } catch (e) {
    if (e instanceof IdxError) throw e;
    throw new IdxError(`Cannot read IDX file ${name}: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

interface IdxHeader {
  type: { dtype: IdxDtype; bytes: number; name: string };
  shape: number[];
  count: number;
  headerBytes: number;
  /** headerBytes plus the values the shape declares. */
  expectedBytes: number;
}

/** Parses the header at the start of `bytes`, an IDX array of `total` bytes in all. */
function parseHeader(bytes: Uint8Array, total: number, fail: (what: string) => never): IdxHeader {
  if (total < 4) fail(`expected at least 4 bytes for the magic number but the file has ${total}`);
  const magic = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    fail(`bad magic number ${hex(magic, 8)} (expected 0x0000TTNN: two zero bytes, a type code and the number of dimensions)`);
  }
  const type = TYPES[bytes[2]];
  if (!type) {
    fail(
      `unsupported data type code ${hex(bytes[2])} in magic number ${hex(magic, 8)} (known: ${Object.entries(TYPES)
        .map(([k, t]) => `${hex(Number(k))} ${t.name}`)
        .join(', ')})`,
    );
  }
  const ndims = bytes[3];
  if (ndims === 0) fail(`magic number ${hex(magic, 8)} declares 0 dimensions`);
  const headerBytes = 4 + 4 * ndims;
  if (total < headerBytes) {
    fail(`truncated header: expected ${headerBytes} bytes for ${ndims} dimensions but the file has ${total}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndims; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  return { type, shape, count, headerBytes, expectedBytes: headerBytes + count * type.bytes };
}

/** Fails unless the IDX array is exactly as long as its header declares. */
function checkSize(hdr: IdxHeader, actual: number, fail: (what: string) => never): void {
  if (actual !== hdr.expectedBytes) {
    fail(
      `${actual < hdr.expectedBytes ? 'truncated' : 'trailing bytes'}: expected ${hdr.expectedBytes} bytes ` +
        `(${hdr.headerBytes}-byte header + ${hdr.shape.join('x')} ${hdr.type.name} values) but the file has ${actual}`,
    );
  }
}

/** The first bytes of a gzip stream, enough for an IDX header, inflating only a bounded prefix. */
function gunzipHead(bytes: Uint8Array): { head: Uint8Array; complete: boolean } {
  let head: Uint8Array = new Uint8Array(0);
  let complete = false;
  for (const n of [64, 1024, 16384]) {
    const part = bytes.subarray(0, n);
    head = zlib.gunzipSync(part, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    complete = part.length === bytes.length;
    if (head.length >= MAX_HEADER_BYTES || complete) break;
  }
  return { head, complete };
}

/**
 * Inflates gzip data to at most what its IDX header declares (plus a little, to
 * report trailing bytes exactly), never past MAX_IDX_BYTES: a small .gz that
 * inflates to gigabytes is refused without allocating them.
 */
function gunzipBounded(bytes: Uint8Array, fail: (what: string) => never): Uint8Array {
  try {
    const { head, complete } = gunzipHead(bytes);
    const need = head.length >= 4 ? 4 + 4 * head[3] : 4;
    let limit = MAX_IDX_BYTES;
    let hdr: IdxHeader | null = null;
    if (head.length >= need) {
      hdr = parseHeader(head, Infinity, fail);
      if (hdr.expectedBytes > MAX_IDX_BYTES) {
        fail(
          `the header declares ${hdr.shape.join('x')} ${hdr.type.name} values (${hdr.expectedBytes} bytes), ` +
            `more than the ${MAX_IDX_BYTES} bytes an IDX file may hold`,
        );
      }
      limit = Math.min(MAX_IDX_BYTES, hdr.expectedBytes + 65536);
    } else if (complete) {
      limit = MAX_HEADER_BYTES; // all of it is shorter than a header: parseHeader reports what is missing
    }
    try {
      return zlib.gunzipSync(bytes, { maxOutputLength: limit });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') throw e;
      return fail(
        hdr
          ? `trailing bytes: the gzip data inflates to more than ${limit} bytes but the header declares ${hdr.expectedBytes} ` +
              `(${hdr.headerBytes}-byte header + ${hdr.shape.join('x')} ${hdr.type.name} values); stopped inflating there`
          : `the gzip data inflates to more than ${limit} bytes, more than an IDX file may hold; stopped inflating there`,
      );
    }
  } catch (e) {
    if (e instanceof IdxError) throw e;
    return fail(`corrupt gzip data (${(e as Error).message})`);
  }
}

/**
 * Reads an IDX file (raw or gzip) or Buffer. Only regular files are read (a FIFO
 * or device is an error, not a hang), and nothing is allocated beyond what the
 * header declares and the file really holds.
 * Shape: e.g. `train-images-idx3-ubyte` -> uint8 [60000, 28, 28].
 * @example const { shape, data } = readIdx('data/train-labels-idx1-ubyte'); // [60000], Uint8Array
 */
export function readIdx(source: string | Uint8Array, options: { name?: string } = {}): IdxArray {
  checkKeys(options, ['name'], 'readIdx');
  let bytes: Uint8Array;
  let name: string;
  const fail = (what: string): never => {
    throw new IdxError(`Invalid IDX file ${name}: ${what}`);
  };
  if (typeof source === 'string') {
    name = options.name ?? source;
    bytes = readRegular(source, name, fail);
  } else if (source instanceof Uint8Array) {
    name = options.name ?? '<buffer>';
    bytes = source;
  } else {
    return expected('a file path or a Buffer', 'source', source);
  }

  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipBounded(bytes, fail);
  const hdr = parseHeader(bytes, bytes.length, fail);
  checkSize(hdr, bytes.length, fail);
  const { type, shape, count, headerBytes } = hdr;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  const off = headerBytes;
  let data: IdxData;
  switch (type.dtype) {
    case 'uint8':
      data = new Uint8Array(bytes.buffer, bytes.byteOffset + off, count);
      break;
    case 'int8':
      data = new Int8Array(bytes.buffer, bytes.byteOffset + off, count).slice();
      break;
    case 'int16': {
      const a = new Int16Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt16(off + 2 * i, false);
      data = a;
      break;
    }
    case 'int32': {
      const a = new Int32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt32(off + 4 * i, false);
      data = a;
      break;
    }
    case 'float32': {
      const a = new Float32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat32(off + 4 * i, false);
      data = a;
      break;
    }
    default: {
      const a = new Float64Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat64(off + 8 * i, false);
      data = a;
    }
  }
  return { dtype: type.dtype, shape, data };
}

/**
 * Encodes an array as IDX (big-endian), the inverse of readIdx; handy for tests and small exports.
 * @example fs.writeFileSync('labels-idx1-ubyte', writeIdx({ dtype: 'uint8', shape: [3], data: new Uint8Array([5, 0, 4]) }))
 */
export function writeIdx(array: IdxArray): Buffer {
  const code = Number(Object.keys(TYPES).find((k) => TYPES[Number(k)].dtype === array.dtype));
  if (!code) expected(`one of ${Object.values(TYPES).map((t) => t.dtype).join(', ')}`, 'dtype', array.dtype);
  const type = TYPES[code];
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) {
    throw outOfRangeError(`writeIdx: shape [${array.shape}] holds ${count} values but data has ${array.data.length}`);
  }
  const header = 4 + 4 * array.shape.length;
  const buf = Buffer.alloc(header + count * type.bytes);
  buf[2] = code;
  buf[3] = array.shape.length;
  array.shape.forEach((d, i) => buf.writeUInt32BE(d, 4 + 4 * i));
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < count; i++) {
    const x = array.data[i];
    const o = header + i * type.bytes;
    switch (type.dtype) {
      case 'uint8': v.setUint8(o, x); break;
      case 'int8': v.setInt8(o, x); break;
      case 'int16': v.setInt16(o, x, false); break;
      case 'int32': v.setInt32(o, x, false); break;
      case 'float32': v.setFloat32(o, x, false); break;
      default: v.setFloat64(o, x, false);
    }
  }
  return buf;
}
