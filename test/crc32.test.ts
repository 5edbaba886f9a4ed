/**
 * CRC-32 for the checkpoint ZIPs: `zlib.crc32` exists only from Node 20.15 / 22.2, so
 * lib/serialize/crc32.ts falls back to a JS implementation on older Nodes (package.json
 * promises Node 18). These check the fallback against known vectors, an independent
 * bit-at-a-time reference, zlib's own (where this Node has it), and in pieces; and that
 * the ZIP reader and writer work through the fallback when zlib has no crc32.
 */
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { crc32, crc32Js, nativeCrc32 } from '../lib/serialize/crc32';

const zlibCrc32 = (zlib as { crc32?: (data: string | ArrayBufferView, value?: number) => number }).crc32;
const hasZlibCrc32 = typeof zlibCrc32 === 'function';
const testWithZlib = hasZlibCrc32 ? test : test.skip;
const zlibNote = hasZlibCrc32 ? '' : ` [skipped: Node ${process.version} has no zlib.crc32]`;

/** Bit at a time, straight from the definition: nothing shared with the table code. */
function crc32Bitwise(bytes: Uint8Array, value = 0): number {
  let c = ~value >>> 0;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

// Deterministic pseudo-random bytes, so a failure names a reproducible input.
function bytes(n: number, seed = n): Buffer {
  const out = Buffer.alloc(n);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const VECTORS: [string | Buffer, number][] = [
  ['', 0x00000000],
  ['a', 0xe8b7be43],
  ['abc', 0x352441c2],
  ['123456789', 0xcbf43926],
  ['The quick brown fox jumps over the lazy dog', 0x414fa339],
  [Buffer.alloc(32), 0x190a55ad],
  [Buffer.alloc(32, 0xff), 0xff6cab0b],
];

describe('crc32Js (the fallback for Node < 20.15)', () => {
  test.each(VECTORS.map(([d, c]) => [typeof d === 'string' ? JSON.stringify(d) : `${d.length} bytes of 0x${d[0].toString(16)}`, d, c]))(
    'known vector %s', (_name, data, expected) => {
      expect(crc32Js(data as string | Buffer)).toBe(expected);
      expect(crc32(data as string | Buffer)).toBe(expected);
    });

  test('matches a bit-at-a-time reference for every length 0..80 and some large ones', () => {
    for (const n of [...Array(81).keys(), 255, 256, 257, 4095, 65537, 1 << 20]) {
      const b = bytes(n);
      expect([n, crc32Js(b)]).toEqual([n, crc32Bitwise(b)]);
    }
  });

  test('continues a running CRC: any split, any number of pieces, equals the whole', () => {
    const whole = bytes(10007, 42);
    const all = crc32Js(whole);
    for (const cut of [0, 1, 3, 7, 8, 9, 63, 64, 65, 5000, 10006, 10007]) {
      expect(crc32Js(whole.subarray(cut), crc32Js(whole.subarray(0, cut)))).toBe(all);
    }
    // Uneven pieces, in the style of ZipWriter.add(name, [chunk, chunk, ...]).
    let crc = 0;
    let at = 0;
    for (let i = 1; at < whole.length; i++) {
      const piece = whole.subarray(at, at + ((i * 37) % 251));
      crc = crc32Js(piece, crc);
      at += piece.length;
    }
    expect(crc).toBe(all);
    // An empty piece changes nothing; the '123456789' vector in two steps.
    expect(crc32Js(Buffer.alloc(0), all)).toBe(all);
    expect(crc32Js('6789', crc32Js('12345'))).toBe(0xcbf43926);
  });

  test('takes the inputs zlib.crc32 takes: strings as UTF-8, Buffers, views with an offset, DataView', () => {
    const s = 'héllo € 𝄞';
    expect(crc32Js(s)).toBe(crc32Bitwise(Buffer.from(s, 'utf8')));
    const backing = bytes(100, 7);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, 64);
    expect(crc32Js(view)).toBe(crc32Bitwise(backing.subarray(3, 67)));
    const f = new Float32Array([1.5, -2, Math.PI, 1e-30]);
    const fb = new Uint8Array(f.buffer);
    expect(crc32Js(f)).toBe(crc32Bitwise(fb));
    expect(crc32Js(new DataView(f.buffer, 4, 8))).toBe(crc32Bitwise(fb.subarray(4, 12)));
    expect(crc32Js(new Float64Array(f.buffer, 8, 1))).toBe(crc32Bitwise(fb.subarray(8, 16)));
  });

  test('always an unsigned 32-bit result; the running value must be a uint32', () => {
    for (const n of [1, 2, 5, 100]) expect(crc32Js(bytes(n))).toBeGreaterThanOrEqual(0);
    expect(crc32Js('x', 0xffffffff)).toBe(crc32Bitwise(Buffer.from('x'), 0xffffffff));
    for (const bad of [-1, 1.5, 2 ** 32, NaN]) expect(() => crc32Js('x', bad)).toThrow(RangeError);
    expect(() => crc32Js(123 as unknown as string)).toThrow(TypeError);
  });
});

describe(`against zlib.crc32${zlibNote}`, () => {
  test('crc32 is zlib.crc32 where Node has it, else the fallback', () => {
    expect(nativeCrc32 === undefined).toBe(!hasZlibCrc32);
    if (!hasZlibCrc32) expect(crc32).toBe(crc32Js);
  });

  testWithZlib('same results as zlib.crc32 on random data, whole and in pieces', () => {
    const z = zlibCrc32!;
    for (const n of [0, 1, 7, 8, 9, 100, 1000, 65536 + 13]) {
      const b = crypto.randomBytes(n);
      const seed = crypto.randomBytes(4).readUInt32LE(0);
      expect(crc32Js(b)).toBe(z(b) >>> 0);
      if (n > 0) expect(crc32Js(b, seed)).toBe(z(b, seed) >>> 0); // n = 0: see the empty-piece test
      expect(crc32(b, seed)).toBe(crc32Js(b, seed));
      const cut = n >> 1;
      expect(crc32Js(b.subarray(cut), z(b.subarray(0, cut)))).toBe(z(b) >>> 0);
      expect(z(b.subarray(cut), crc32Js(b.subarray(0, cut))) >>> 0).toBe(crc32Js(b));
    }
    expect(crc32Js('héllo €')).toBe(z('héllo €') >>> 0);
  });

  test('crc32: an empty piece keeps the running CRC (zlib.crc32 alone resets it for some empty views)', () => {
    const running = crc32('12345');
    for (const empty of [Buffer.alloc(0), new Uint8Array(0), new Uint8Array(new ArrayBuffer(0)), crypto.randomBytes(0), new DataView(new ArrayBuffer(0)), '']) {
      expect(crc32(empty, running)).toBe(running);
      expect(crc32('6789', crc32(empty, running))).toBe(0xcbf43926);
    }
  });
});

describe('ZIP reader and writer on a Node without zlib.crc32', () => {
  // A fresh module registry in which node:zlib has no crc32, as on Node 18.
  function withoutZlibCrc32(): { crc: typeof import('../lib/serialize/crc32'); zip: typeof import('../lib/serialize/zip') } {
    let crc!: typeof import('../lib/serialize/crc32');
    let zip!: typeof import('../lib/serialize/zip');
    jest.isolateModules(() => {
      const real = jest.requireActual('node:zlib') as typeof zlib;
      const fake = { ...real, crc32: undefined };
      jest.doMock('node:zlib', () => fake);
      jest.doMock('zlib', () => fake);
      crc = require('../lib/serialize/crc32');
      zip = require('../lib/serialize/zip');
    });
    jest.dontMock('node:zlib');
    jest.dontMock('zlib');
    return { crc, zip };
  }

  test('round-trips entries written in pieces and still catches a bad CRC', () => {
    const { crc, zip } = withoutZlibCrc32();
    expect(crc.nativeCrc32).toBeUndefined();
    expect(crc.crc32).toBe(crc.crc32Js);

    const chunks: Buffer[] = [];
    const w = new zip.ZipWriter({ write: (c) => void chunks.push(Buffer.from(c)) });
    const big = bytes(100000, 3);
    w.add('archive/data/0', [big.subarray(0, 12345), big.subarray(12345, 12346), big.subarray(12346)]);
    w.add('archive/version', Buffer.from('3\n'));
    w.finish();
    const archive = Buffer.concat(chunks);

    const r = new zip.ZipReader(zip.bufferSource(archive));
    expect(Buffer.compare(r.read('archive/data/0'), big)).toBe(0);
    expect(r.read('archive/version').toString()).toBe('3\n');

    // The CRC the fallback wrote is the real one: the same archive written with this
    // Node's crc32 is byte-identical (zlib's on Node >= 20.15, the fallback below).
    const chunks2: Buffer[] = [];
    const { ZipWriter } = jest.requireActual('../lib/serialize/zip') as typeof import('../lib/serialize/zip');
    const w2 = new ZipWriter({ write: (c) => void chunks2.push(Buffer.from(c)) });
    w2.add('archive/data/0', big);
    w2.add('archive/version', Buffer.from('3\n'));
    w2.finish();
    expect(Buffer.compare(Buffer.concat(chunks2), archive)).toBe(0);

    // Flip one data byte: the reader's CRC check (through the fallback) must notice.
    const at = archive.indexOf(big.subarray(0, 16));
    expect(at).toBeGreaterThan(0);
    const bad = Buffer.from(archive);
    bad[at + 500] ^= 0x01;
    expect(() => new zip.ZipReader(zip.bufferSource(bad)).read('archive/data/0')).toThrow(/CRC-32 mismatch/);
  });
});
