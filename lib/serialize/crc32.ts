/**
 * CRC-32 (ISO-HDLC / IEEE 802.3, the one ZIP and zlib use: reflected polynomial
 * 0xEDB88320, initial value and final XOR 0xFFFFFFFF).
 *
 * `zlib.crc32` exists only from Node 20.15 / 22.2; `package.json` promises Node 18, so
 * `crc32` is zlib's when the running Node has it and otherwise a table-driven JS
 * implementation (slicing-by-8, ~0.8 GB/s against zlib's ~3) with the same signature and
 * results: `crc32(data, previous)` continues a running checksum, so a record written
 * or read in pieces gets the CRC of the whole.
 */
import * as zlib from 'node:zlib';
import { argTypeError, outOfRangeError } from '../errors';

/** What `zlib.crc32` accepts; strings are hashed as their UTF-8 bytes, like zlib's. */
export type Crc32Input = string | ArrayBufferView;

// TABLES[k * 256 + b]: the CRC of byte b followed by k zero bytes (TABLES[0..255] is the
// classic byte-at-a-time table). Eight of them let the main loop take 8 bytes per step.
const TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + b];
      t[k * 256 + b] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
})();

function bytesOf(data: Crc32Input): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw argTypeError('crc32: data must be a string, Buffer, TypedArray or DataView');
}

/**
 * CRC-32 in JavaScript, the same function as `zlib.crc32` (Node >= 20.15 / 22.2).
 * @param data bytes (a string is taken as UTF-8)
 * @param value the CRC of the bytes before `data` (0 to start)
 * @returns the CRC-32 of everything so far, as an unsigned 32-bit integer
 * @example crc32Js('123456789') === 0xcbf43926; crc32Js('6789', crc32Js('12345')) === 0xcbf43926
 */
export function crc32Js(data: Crc32Input, value = 0): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw outOfRangeError(`crc32: value must be an unsigned 32-bit integer, got ${value}`);
  }
  const b = bytesOf(data);
  const t = TABLES;
  let crc = ~value;
  let i = 0;
  const n = b.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const lo = crc ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24));
    crc =
      t[1792 + (lo & 0xff)] ^
      t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^
      t[1024 + (lo >>> 24)] ^
      t[768 + b[i + 4]] ^
      t[512 + b[i + 5]] ^
      t[256 + b[i + 6]] ^
      t[b[i + 7]];
    i += 8;
  }
  while (i < n) crc = (crc >>> 8) ^ t[(crc ^ b[i++]) & 0xff];
  return ~crc >>> 0;
}

type Crc32Fn = (data: Crc32Input, value?: number) => number;

/** Node's own `zlib.crc32` when this Node has it (20.15+, 22.2+), else undefined. */
export const nativeCrc32: Crc32Fn | undefined = (() => {
  const f = (zlib as { crc32?: unknown }).crc32;
  return typeof f === 'function' ? (f as Crc32Fn) : undefined;
})();

/**
 * CRC-32 of `data`, continuing from `value` (default 0): `zlib.crc32` where Node has
 * it, else {@link crc32Js}. Always an unsigned 32-bit integer.
 *
 * Empty views go to the JS code even where zlib has crc32: Node's returns 0 instead of
 * `value` for a view of a zero-length ArrayBuffer without a backing store (e.g.
 * `new Uint8Array(new ArrayBuffer(0))`, `crypto.randomBytes(0)`; zlib's NULL-pointer
 * convention), which would reset a running CRC in the middle of a record.
 */
export const crc32: Crc32Fn = nativeCrc32
  ? (data, value = 0) =>
      typeof data !== 'string' && ArrayBuffer.isView(data) && data.byteLength === 0
        ? crc32Js(data, value)
        : nativeCrc32(data, value) >>> 0
  : crc32Js;
