/**
 * Hardening of the checkpoint decoders (issue 13): every decoder is linear in its input,
 * every declared size is checked against the file and `maxBytes` before anything is
 * allocated, and a save removes the temp files that killed saves left behind.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as torch from '../lib';
import { Tensor } from '../lib';
import {
  CheckpointError, load, loadSafetensors, readSafetensorsHeader, safetensorsToBuffer, save, saveSafetensors, saveToBuffer,
  tuple,
} from '../lib/serialize';
import { MAX_INT_DIGITS, MAX_LONG_BYTES, pickle, PickleError, PyGlobal, toJS, unpickle } from '../lib/serialize/pickle';
import { crc32 } from '../lib/serialize/crc32';
import { catchError } from './helpers';

// The real module objects, so jest.spyOn reaches what the serializer calls.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const fs = require('fs') as typeof import('fs');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const zlibModule = require('zlib') as typeof import('zlib');

/** Runs fn and returns its error (or null) and how long it took. */
function timed(fn: () => unknown): { error: unknown; ms: number } {
  const t0 = process.hrtime.bigint();
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  return { error, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const i32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};
const PROTO2 = Buffer.from([0x80, 0x02]);
const STOP = Buffer.from([0x2e]);

// ---- building archives -------------------------------------------------------------

interface RawEntry {
  name: string;
  data: Buffer;
  /** Deflate `data` (or use `deflated` as the compressed bytes). */
  deflate?: boolean;
  deflated?: Buffer;
  /** The uncompressed size written in the headers (default: the real one). */
  declaredSize?: number;
  /** The CRC-32 written in the headers (default: of `data`). */
  crc?: number;
}

/** A zip archive with stored or deflated entries and whatever sizes the test declares. */
function makeZip(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const deflated = e.deflated !== undefined || e.deflate === true;
    const body = e.deflated ?? (e.deflate ? zlib.deflateRawSync(e.data) : e.data);
    const size = e.declaredSize ?? e.data.length;
    const crc = e.crc ?? crc32(e.data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(deflated ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(deflated ? 8 : 0, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    parts.push(local, name, body);
    central.push(cd, name);
    offset += 30 + name.length + body.length;
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBuf, end]);
}

/** A tensor to write by hand: any size, stride and offset over a float32 storage of `numel` elements. */
class RawTensor {
  constructor(readonly storage: RawStorage, readonly size: number[], readonly stride: number[], readonly offset = 0) {}
}
class RawStorage {
  constructor(readonly key: string, readonly numel: number) {}
}

/** The pickle of a checkpoint holding `value`, with RawTensors as _rebuild_tensor_v2 calls. */
function checkpointPickle(value: unknown): Buffer {
  const argsMemo = new Map<RawTensor, unknown[]>();
  return pickle(value, {
    persistentId: (v) => (v instanceof RawStorage ? tuple<unknown>('storage', new PyGlobal('torch', 'FloatStorage'), v.key, 'cpu', v.numel) : undefined),
    reduce: (v) => {
      if (!(v instanceof RawTensor)) return undefined;
      let args = argsMemo.get(v);
      if (!args) {
        args = [v.storage, v.offset, tuple(...v.size), tuple(...v.stride), false, new Map()];
        argsMemo.set(v, args);
      }
      return { func: new PyGlobal('torch._utils', '_rebuild_tensor_v2'), args };
    },
  });
}

/** A .pt archive: data.pkl plus the given storage records (stored unless the entry says otherwise). */
function checkpoint(pkl: Buffer, records: Omit<RawEntry, 'name'> & { key: string } | (Omit<RawEntry, 'name'> & { key: string })[] = []): Buffer {
  const list = Array.isArray(records) ? records : [records];
  return makeZip([
    { name: 'archive/data.pkl', data: pkl },
    ...list.map(({ key, ...e }) => ({ name: `archive/data/${key}`, ...e })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}

/**
 * `copies` x `chunk` bytes of zeros as one raw deflate stream, without ever holding them:
 * a sync-flushed (non-final) block repeated, then an empty final block. 1 GiB is about 1 MB.
 */
function zerosDeflated(chunk: number, copies: number): Buffer {
  const block = zlib.deflateRawSync(Buffer.alloc(chunk), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return Buffer.concat([...new Array<Buffer>(copies).fill(block), Buffer.from([0x03, 0x00])]);
}

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

// ---- 1. linear decoding --------------------------------------------------------------

describe('pickle decoding is linear in its input', () => {
  test('a 400 KB LONG4 is refused at once, with the sizes', () => {
    const n = 400_000;
    const pkl = Buffer.concat([PROTO2, Buffer.from([0x8b]), i32(n), Buffer.alloc(n, 0x5a), STOP]);
    const r = timed(() => unpickle(pkl));
    expect(r.ms).toBeLessThan(2000);
    expect(r.error).toBeInstanceOf(PickleError);
    expect((r.error as Error).message).toBe(`LONG4 at byte 2 holds a 400000-byte integer; the limit is ${MAX_LONG_BYTES} bytes`);
    // The same inside a .pt: a clear "Cannot load" error, quickly.
    const pt = timed(() => load(checkpoint(pkl)));
    expect(pt.ms).toBeLessThan(2000);
    expect((pt.error as Error).message).toBe('Cannot load checkpoint <buffer>: LONG4 at byte 2 holds a 400000-byte integer; the limit is 100000 bytes');
  });

  test('a LONG4 at the limit decodes to the right value in milliseconds (it took seconds byte by byte)', () => {
    const n = 100_000;
    const bytes = Buffer.alloc(n);
    bytes[0] = 0x01;
    bytes[n - 1] = 0x40;
    const r = timed(() => {
      const v = unpickle(Buffer.concat([PROTO2, Buffer.from([0x8b]), i32(n), bytes, STOP]));
      expect(v).toBe(1n + (0x40n << BigInt(8 * (n - 1))));
    });
    expect(r.error).toBeNull();
    expect(r.ms).toBeLessThan(500);
    expect(MAX_LONG_BYTES).toBe(n);
    // Negative and small values still decode exactly.
    const neg = Buffer.alloc(n, 0xff);
    expect(unpickle(Buffer.concat([PROTO2, Buffer.from([0x8b]), i32(n), neg, STOP]))).toBe(-1);
    expect(unpickle(Buffer.from([0x80, 0x02, 0x8a, 0x02, 0x00, 0x80, 0x2e]))).toBe(-32768);
    expect(unpickle(Buffer.from([0x80, 0x02, 0x8a, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x2e]))).toBe(0x7fffffffffffffffn);
    expect(unpickle(Buffer.from([0x80, 0x02, 0x8a, 0x00, 0x2e]))).toBe(0);
  });

  test('a decimal int (protocol 0) is bounded like CPython int_max_str_digits', () => {
    const ok = '7'.repeat(4300);
    expect(unpickle(Buffer.from(`L${ok}L\n.`, 'latin1'))).toBe(BigInt(ok));
    expect(MAX_INT_DIGITS).toBe(4300);
    const big = '7'.repeat(1_000_000);
    const r = timed(() => unpickle(Buffer.from(`L${big}L\n.`, 'latin1')));
    expect(r.ms).toBeLessThan(2000);
    expect((r.error as Error).message).toBe('LONG at byte 0 has 1000001 characters; the limit is 4300 digits');
    expect(() => unpickle(Buffer.from(`I${big}\n.`, 'latin1'))).toThrow('INT at byte 0 has 1000000 characters; the limit is 4300 digits');
  });

  test('large str and bytes opcodes decode in linear time', () => {
    const n = 20 * MiB;
    const r = timed(() => {
      expect((unpickle(Buffer.concat([PROTO2, Buffer.from([0x58]), u32(n), Buffer.alloc(n, 0x61), STOP])) as string).length).toBe(n);
      expect((unpickle(Buffer.concat([PROTO2, Buffer.from([0x42]), u32(n), Buffer.alloc(n, 0x61), STOP])) as Buffer).length).toBe(n);
    });
    expect(r.error).toBeNull();
    expect(r.ms).toBeLessThan(2000);
  });

  test('a memoized list handed to set() over and over is refused, not iterated a billion times', () => {
    // 1e9 Set.add calls for 220 KB before (20 minutes); now refused after 8 x the size.
    const items = 50_000;
    const reps = 20_000;
    const head = Buffer.concat([
      PROTO2,
      Buffer.from([0x5d, 0x71, 0x00, 0x28]), // EMPTY_LIST BINPUT 0 MARK
      Buffer.alloc(items * 2, Buffer.from([0x4b, 0x00])), // BININT1 0, ...
      Buffer.from([0x65, 0x85, 0x71, 0x01, 0x30]), // APPENDS TUPLE1 BINPUT 1 POP
      Buffer.from('c__builtin__\nset\nq\x02', 'latin1'), // GLOBAL BINPUT 2
      Buffer.from([0x30]),
    ]);
    const rep = Buffer.from([0x68, 0x02, 0x68, 0x01, 0x52, 0x30]); // BINGET 2 BINGET 1 REDUCE POP
    const pkl = Buffer.concat([head, Buffer.alloc(rep.length * reps, rep), Buffer.from([0x4e]), STOP]);
    const r = timed(() => unpickle(pkl));
    expect(r.ms).toBeLessThan(2000);
    expect(r.error).toBeInstanceOf(PickleError);
    const limit = 8 * pkl.length + (1 << 20);
    expect((r.error as Error).message).toMatch(
      new RegExp(`^REDUCE at byte \\d+: the pickle's calls have been handed \\d+ items in all, more than the ${limit} allowed for its ${pkl.length} bytes \\(a memoized container reused over and over\\)$`),
    );
    // Handed once, the same list is fine.
    const once = Buffer.concat([head, rep.subarray(0, 5), STOP]);
    expect(unpickle(once)).toEqual(new Set([0]));
  });

  test('a long digit-string key shared by many dicts converts in linear time', () => {
    // Each dict scanned and parsed the 1M-digit key before (about 4 ms each, 80 s in all).
    const key = '1'.repeat(1_000_000);
    const reps = 20_000;
    const pkl = Buffer.concat([
      PROTO2,
      Buffer.from([0x5d]), // the outer list
      Buffer.from([0x58]), u32(key.length), Buffer.from(key, 'latin1'), Buffer.from([0x71, 0x00, 0x30]),
      Buffer.alloc(6 * reps, Buffer.from([0x7d, 0x68, 0x00, 0x4e, 0x73, 0x61])), // {} BINGET 0 None SETITEM APPEND
      STOP,
    ]);
    const r = timed(() => {
      const v = toJS(unpickle(pkl)) as Record<string, unknown>[];
      expect(v.length).toBe(reps);
      expect(Object.keys(v[reps - 1])).toEqual([key]);
    });
    expect(r.error).toBeNull();
    expect(r.ms).toBeLessThan(2000);
  });

  test('saving a huge bigint is refused at once (the byte loop was quadratic)', () => {
    const r = timed(() => saveToBuffer({ x: 1n << 8_000_000n }));
    expect(r.ms).toBeLessThan(2000);
    expect(r.error).toBeInstanceOf(CheckpointError);
    expect((r.error as Error).message).toBe('Cannot save checkpoint: Cannot save an integer of 1000001 bytes at obj.x');
  });
});

// ---- 2. declared sizes ------------------------------------------------------------

describe('declared sizes are checked before anything is allocated', () => {
  const vectorPickle = (numel: number): Buffer => checkpointPickle(new RawTensor(new RawStorage('0', numel), [numel], [1]));

  test('a 1 MB .pt inflating to 1 GiB is refused before inflating (default limit from the file size)', () => {
    const deflated = zerosDeflated(MiB, 1024);
    expect(deflated.length).toBeLessThan(1.2 * MiB);
    // One element of a 1 GiB storage: the tensor is small, the record is not.
    const pkl = checkpointPickle(new RawTensor(new RawStorage('0', GiB / 4), [1], [1]));
    const pt = checkpoint(pkl, { key: '0', data: Buffer.alloc(0), deflated, declaredSize: GiB, crc: 0 });
    const spy = jest.spyOn(zlibModule, 'inflateRawSync');
    try {
      const r = timed(() => load(pt));
      expect(r.ms).toBeLessThan(2000);
      expect(r.error).toBeInstanceOf(CheckpointError);
      const limit = 4 * pt.length + 64 * MiB;
      expect((r.error as Error).message).toBe(
        `Checkpoint too large to load: <buffer> (inflating archive/data/0 needs ${GiB} bytes; with 4 already taken that passes ` +
          `the limit of ${limit} bytes (the default for a ${pt.length}-byte file: 4 x its size + 64 MiB); pass { maxBytes } to load to allow more)`,
      );
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  test('an entry inflating past its declared size stops at it (inflateRawSync gets maxOutputLength)', () => {
    const deflated = zerosDeflated(MiB, 1024); // 1 GiB of zeros, declared as 1 MiB
    const pt = checkpoint(vectorPickle(MiB / 4), { key: '0', data: Buffer.alloc(0), deflated, declaredSize: MiB, crc: 0 });
    const spy = jest.spyOn(zlibModule, 'inflateRawSync');
    try {
      const r = timed(() => load(pt, { maxBytes: 4 * GiB }));
      expect(r.ms).toBeLessThan(2000);
      expect((r.error as Error).message).toBe(`Corrupt checkpoint: <buffer> (entry 'archive/data/0' inflates to more than its declared ${MiB} bytes)`);
      expect(spy).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ maxOutputLength: MiB }));
    } finally {
      spy.mockRestore();
    }
  });

  test('a declared size no deflate stream can reach is corrupt', () => {
    const pt = checkpoint(vectorPickle(GiB / 2), { key: '0', data: Buffer.alloc(0), deflated: zerosDeflated(1024, 1), declaredSize: 2 * GiB, crc: 0 });
    const e = catchError(() => load(pt, { maxBytes: Infinity }));
    expect(e.message).toMatch(/^Corrupt checkpoint: <buffer> \(entry 'archive\/data\/0' declares 2147483648 bytes, but \d+ deflated bytes inflate to at most \d+\)$/);
  });

  test('honest deflated records still load, within the limit', () => {
    const data = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
    const t = load(checkpoint(vectorPickle(4), { key: '0', data, deflate: true })) as Tensor;
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4]);
    t.dispose();
  });

  test("a storage's declared elements must be in its record", () => {
    const pkl = checkpointPickle(new RawTensor(new RawStorage('0', 1e9), [0], [1]));
    const e = catchError(() => load(checkpoint(pkl, { key: '0', data: Buffer.alloc(4) })));
    expect(e.message).toBe("Corrupt checkpoint: <buffer> (storage '0': archive/data/0 has 4 bytes but its 1000000000 float32 elements need 4000000000)");
  });

  test('a 494-byte .pt declaring a [20000, 10000] tensor over a 1-element stride-0 storage is refused before allocating', () => {
    const pkl = checkpointPickle(new RawTensor(new RawStorage('0', 1), [20000, 10000], [0, 0]));
    const pt = checkpoint(pkl, { key: '0', data: Buffer.from(new Float32Array([7]).buffer) });
    expect(pt.length).toBeLessThan(600);
    const r = timed(() => load(pt));
    expect(r.ms).toBeLessThan(2000);
    expect(r.error).toBeInstanceOf(CheckpointError);
    expect((r.error as Error).message).toMatch(
      /^Checkpoint too large to load: <buffer> \(a float32 tensor of size \[20000,10000\] from storage '0' needs 800000000 bytes; .*the limit of 671\d+ bytes/,
    );
    // A small expanded view is fine: its elements are copied out.
    const small = load(checkpoint(checkpointPickle(new RawTensor(new RawStorage('0', 1), [3, 4], [0, 0])), { key: '0', data: Buffer.from(new Float32Array([7]).buffer) })) as Tensor;
    expect(small.shape).toEqual([3, 4]);
    expect(Array.from(small.toTypedArray() as Float32Array)).toEqual(new Array(12).fill(7));
    small.dispose();
  });

  test("a tensor's size, stride and offset must lie inside its storage (as_strided's check)", () => {
    const data = Buffer.alloc(40);
    const cases: [number[], number[], number, number][] = [[[10], [2], 0, 18], [[5, 2], [2, 1], 1, 10], [[1], [1], 10, 10]];
    for (const [size, stride, offset, last] of cases) {
      const pkl = checkpointPickle(new RawTensor(new RawStorage('0', 10), size, stride, offset));
      expect(() => load(checkpoint(pkl, { key: '0', data }))).toThrow(
        `Corrupt checkpoint: <buffer> (archive/data.pkl: a tensor of size [${size}] and stride [${stride}] at offset ${offset} reaches element ${last} of storage '0', which has 10)`,
      );
    }
  });

  test('many tensors over one memoized storage count against one limit', () => {
    const storage = new RawStorage('0', MiB / 4);
    const view = (): RawTensor => new RawTensor(storage, [MiB / 4], [1]);
    const pt = checkpoint(checkpointPickle(Array.from({ length: 2000 }, view)), { key: '0', data: Buffer.alloc(MiB) });
    const r = timed(() => load(pt));
    expect(r.ms).toBeLessThan(5000);
    expect((r.error as Error).message).toMatch(/^Checkpoint too large to load: <buffer> \(a float32 tensor of size \[262144\] from storage '0' needs 1048576 bytes; with \d+ already taken/);
    // maxBytes is the caller's limit, for the whole load.
    const two = checkpoint(checkpointPickle([view(), view()]), { key: '0', data: Buffer.alloc(MiB) });
    const ts = load(two, { maxBytes: 2 * MiB }) as Tensor[];
    expect(ts.map((t) => t.shape)).toEqual([[MiB / 4], [MiB / 4]]);
    ts.forEach((t) => t.dispose());
    expect(() => load(two, { maxBytes: 2 * MiB - 1 })).toThrow(/with 1048576 already taken that passes the limit of 2097151 bytes \(maxBytes\)/);
    expect(() => load(two, { maxBytes: -1 })).toThrow('Expected a non-negative number of bytes for options.maxBytes but received -1');
  });

  test('safetensors: header length and data_offsets are checked against the file size', () => {
    const w = torch.tensor([1, 2, 3, 4]);
    const good = safetensorsToBuffer({ w });
    w.dispose();
    const longHeader = Buffer.from(good);
    longHeader.writeBigUInt64LE(BigInt(50_000_000));
    expect(() => loadSafetensors(longHeader)).toThrow(
      `Truncated safetensors file: <buffer> (the header needs 50000000 bytes after the length but the file has ${good.length - 8})`,
    );
    const header = JSON.stringify({ w: { dtype: 'F32', shape: [1e6], data_offsets: [0, 4e6] } });
    const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(padded.length));
    const lying = Buffer.concat([len, Buffer.from(padded), Buffer.alloc(16)]);
    expect(() => readSafetensorsHeader(lying)).toThrow('Truncated safetensors file: <buffer> (the header describes 4000000 bytes of data but the file has 16)');
  });
});

// ---- 3. temp files -----------------------------------------------------------------

describe('a save removes the temp files of killed saves', () => {
  test('only <file>.tmp-<dead pid>-<hex> files go; live processes, other names and folders stay', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-tmp-'));
    try {
      const child = spawnSync(process.execPath, ['-e', '0']);
      const dead = child.pid!;
      expect(() => process.kill(dead, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
      const live = process.ppid;
      const names = {
        dead: `m.pt.tmp-${dead}-0123456789ab`,
        deadSt: `m.pt.tmp-${dead}-ba9876543210`,
        live: `m.pt.tmp-${live}-0123456789ab`,
        ownNew: `m.pt.tmp-${process.pid}-0123456789ab`,
        ownOld: `m.pt.tmp-${process.pid}-aaaaaaaaaaaa`,
        otherFile: `n.pt.tmp-${dead}-0123456789ab`,
        notHex: `m.pt.tmp-${dead}-xyz`,
        suffix: `m.pt.tmp-${dead}-0123456789ab.keep`,
        backup: 'm.pt.bak',
        folder: `m.pt.tmp-${dead}-cccccccccccc`,
      };
      for (const [k, n] of Object.entries(names)) {
        if (k === 'folder') fs.mkdirSync(path.join(dir, n));
        else fs.writeFileSync(path.join(dir, n), 'partial');
      }
      // A temp with our pid from before this process started: a previous run that had the same pid.
      const dayAgo = new Date(Date.now() - 86400_000);
      fs.utimesSync(path.join(dir, names.ownOld), dayAgo, dayAgo);
      const t = torch.tensor([1, 2]);
      save({ t }, path.join(dir, 'm.pt'));
      const left = new Set(fs.readdirSync(dir));
      expect(left.has(names.dead)).toBe(false);
      expect(left.has(names.ownOld)).toBe(false);
      for (const k of ['live', 'ownNew', 'otherFile', 'notHex', 'suffix', 'backup', 'folder'] as const) expect([k, left.has(names[k])]).toEqual([k, true]);
      expect(left.has(names.deadSt)).toBe(false);
      expect(left.has('m.pt')).toBe(true);
      // saveSafetensors cleans the same way.
      fs.writeFileSync(path.join(dir, `w.safetensors.tmp-${dead}-0123456789ab`), 'partial');
      saveSafetensors({ t }, path.join(dir, 'w.safetensors'));
      expect(fs.existsSync(path.join(dir, `w.safetensors.tmp-${dead}-0123456789ab`))).toBe(false);
      t.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
