/**
 * The IDX file format of MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
 * number `00 00 <type> <ndims>`, `ndims` big-endian uint32 sizes, then the values
 * in row-major order, big-endian. Files may be gzip-compressed (detected by content).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { expected } from '../errors';

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
  constructor(message: string) {
    super(message);
    this.name = 'IdxError';
  }
}

/**
 * Reads an IDX file (raw or gzip) or Buffer.
 * Shape: e.g. `train-images-idx3-ubyte` -> uint8 [60000, 28, 28].
 * @example const { shape, data } = readIdx('data/train-labels-idx1-ubyte'); // [60000], Uint8Array
 */
export function readIdx(source: string | Uint8Array, options: { name?: string } = {}): IdxArray {
  let bytes: Uint8Array;
  let name: string;
  if (typeof source === 'string') {
    name = options.name ?? source;
    try {
      bytes = fs.readFileSync(source);
    } catch (e) {
      throw new IdxError(`Cannot read IDX file ${name}: ${(e as Error).message}`);
    }
  } else if (source instanceof Uint8Array) {
    name = options.name ?? '<buffer>';
    bytes = source;
  } else {
    return expected('a file path or a Buffer', 'source', source);
  }
  const fail = (what: string): never => {
    throw new IdxError(`Invalid IDX file ${name}: ${what}`);
  };

  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      fail(`corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4) fail(`expected at least 4 bytes for the magic number but the file has ${bytes.length}`);
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
  if (bytes.length < headerBytes) {
    fail(`truncated header: expected ${headerBytes} bytes for ${ndims} dimensions but the file has ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndims; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const expectedBytes = headerBytes + count * type.bytes;
  if (bytes.length !== expectedBytes) {
    fail(
      `${bytes.length < expectedBytes ? 'truncated' : 'trailing bytes'}: expected ${expectedBytes} bytes ` +
        `(${headerBytes}-byte header + ${shape.join('x')} ${type.name} values) but the file has ${bytes.length}`,
    );
  }

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
    throw new RangeError(`writeIdx: shape [${array.shape}] holds ${count} values but data has ${array.data.length}`);
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
