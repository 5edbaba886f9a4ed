/**
 * Checkpoints: torch.save's zip format (zip + pickle), safetensors and the checkpoint
 * helpers, in both directions against real PyTorch: fixtures written by
 * scripts/make_checkpoint_fixtures.py, and files written here and read back by
 * /usr/bin/python3 with torch when it is installed.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import * as torch from '../lib';
import { Tensor, TorchError } from '../lib';
import * as nn from '../lib/nn';
import * as optim from '../lib/optim';
import {
  CheckpointError, disposeTensors, isTuple, load, loadCheckpoint, loadSafetensors, loadStateDictInto, readSafetensorsHeader,
  safetensorsToBuffer, save, saveCheckpoint, saveSafetensors, saveToBuffer, tuple,
} from '../lib/serialize';
import { pickle, PickleError, toJS, unpickle, UnsupportedGlobalError } from '../lib/serialize/pickle';
import { bufferSource, ZipReader, ZipWriter } from '../lib/serialize/zip';
import { catchError, fixturePath } from './helpers';

// The real module object, so jest.spyOn reaches the same fs the serializer calls.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const fs = require('fs') as typeof import('fs');

const FIX = fixturePath('checkpoints');
const fixture = (name: string): string => path.join(FIX, name);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const expected = JSON.parse(fs.readFileSync(fixture('expected.json'), 'utf8')) as Record<string, any>;

const CNN_KEYS = [
  'layer1.0.weight', 'layer1.0.bias', 'layer2.0.weight', 'layer2.0.bias',
  'fc.0.weight', 'fc.0.bias', 'fc.2.weight', 'fc.2.bias',
];

const PYTHON = '/usr/bin/python3';
const hasTorchPython = (() => {
  if (!fs.existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60000 });
  return r.status === 0;
})();

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-serialize-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});
const tmpFile = (name: string): string => path.join(tmp, name);
const tempLeftovers = (): string[] => fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'));

function bytesOf(t: Tensor): Buffer {
  const ta = t.contiguous().toTypedArray();
  return Buffer.from(ta.buffer, ta.byteOffset, ta.byteLength);
}
function sha256(t: Tensor): string {
  return crypto.createHash('sha256').update(bytesOf(t)).digest('hex');
}
function sum(t: Tensor): number {
  let s = 0;
  for (const v of t.toTypedArray() as Iterable<number | bigint>) s += Number(v);
  return s;
}
/** What expected.json records for a tensor (shape, dtype, exact bytes). */
function facts(t: Tensor): { shape: number[]; dtype: string; sha256: string } {
  return { shape: t.shape, dtype: t.dtype, sha256: sha256(t) };
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function expectedFacts(e: any): { shape: number[]; dtype: string; sha256: string } {
  return { shape: e.shape, dtype: e.dtype, sha256: e.sha256 };
}

/** SmallNet of the fixtures script: the CNN's layer types for [N, 1, 8, 8] inputs. */
function smallNet(channels = 4): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(1, channels, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Linear(channels * 16, 10),
  );
}

function adamStep(model: nn.Sequential, opt: optim.Adam, x: Tensor, y: Tensor): void {
  torch.tidy(() => {
    const loss = torch.F.crossEntropy(model.call(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
  });
}

/** A checkpoint zip with the given data.pkl (and optional storages), as torch.save lays it out. */
function zipWith(pkl: Buffer, records: Record<string, Buffer> = {}): Buffer {
  const parts: Buffer[] = [];
  const z = new ZipWriter({ write: (b) => void parts.push(Buffer.from(b)) });
  z.add('archive/data.pkl', pkl);
  for (const [k, v] of Object.entries(records)) z.add(`archive/${k}`, v);
  z.add('archive/version', Buffer.from('3\n'));
  z.finish();
  return Buffer.concat(parts);
}

/** A safetensors file from a header (object or raw JSON text) and data bytes. */
function safetensorsBytes(header: unknown, data: Buffer = Buffer.alloc(0), lengthOverride?: bigint): Buffer {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(text.length));
  return Buffer.concat([len, text, data]);
}

// ---- throw cases ------------------------------------------------------------------

describe('load: bad input', () => {
  test('a file of random bytes is not a checkpoint', () => {
    const f = tmpFile('random.pt');
    fs.writeFileSync(f, crypto.randomBytes(4096));
    const e = catchError(() => load(f));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e).toBeInstanceOf(TorchError);
    expect(e.message).toMatch(/^Not a PyTorch checkpoint: .*random\.pt \(/);
  });

  test('an empty file, a plain pickle and a safetensors file are named as such', () => {
    const f = tmpFile('empty.pt');
    fs.writeFileSync(f, '');
    expect(() => load(f)).toThrow(/^Not a PyTorch checkpoint: .*empty\.pt \(empty file\)/);
    expect(() => load(pickle({ a: 1 }))).toThrow('Not a PyTorch checkpoint: <buffer> (a plain pickle, not the zip format torch.save writes)');
    expect(() => load(fixture('small.safetensors'))).toThrow(/looks like a safetensors file; use loadSafetensors/);
  });

  test('a checkpoint cut in half is reported as truncated', () => {
    const full = fs.readFileSync(fixture('cnn_state_dict.pt'));
    const f = tmpFile('half.pt');
    fs.writeFileSync(f, full.subarray(0, full.length >> 1));
    expect(() => load(f)).toThrow(/^Truncated checkpoint: .*half\.pt \(.*cut short/);
    // Only the last few bytes missing: the end record is gone.
    expect(() => load(full.subarray(0, full.length - 10))).toThrow(/^Truncated checkpoint: <buffer>/);
  });

  test('a flipped byte in tensor data fails the CRC check', () => {
    const buf = Buffer.from(fs.readFileSync(fixture('cnn_state_dict.pt')));
    const z = new ZipReader(bufferSource(buf));
    const entry = z.entries.get('cnn_state_dict/data/4')!;
    buf[z.dataOffset(entry) + 100] ^= 0xff;
    expect(() => load(buf)).toThrow(/^Corrupt checkpoint: <buffer> \(CRC-32 mismatch in 'cnn_state_dict\/data\/4'/);
  });

  test('a zip without data.pkl is not a checkpoint, and says what it holds', () => {
    const parts: Buffer[] = [];
    const z = new ZipWriter({ write: (b) => void parts.push(Buffer.from(b)) });
    z.add('archive/readme.txt', Buffer.from('hello'));
    z.finish();
    expect(() => load(Buffer.concat(parts))).toThrow(
      'Not a PyTorch checkpoint: <buffer> (a zip archive without a data.pkl record; it holds archive/readme.txt)',
    );
  });

  test('a legacy (pre-1.6) torch.save file asks to re-save with a current PyTorch', () => {
    expect(() => load(fixture('legacy.pt'))).toThrow(
      /^Legacy checkpoint: .*legacy\.pt was written by torch\.save before PyTorch 1\.6 .*Re-save it with a current PyTorch/,
    );
  });

  test('an unknown GLOBAL is an error naming the class, and nothing runs', () => {
    // pickle.dumps of os.system('ls') at protocol 2, by hand: GLOBAL, args, REDUCE.
    const evil = Buffer.concat([
      Buffer.from([0x80, 0x02]), Buffer.from('cos\nsystem\n', 'latin1'),
      Buffer.from([0x58, 2, 0, 0, 0]), Buffer.from('ls'), Buffer.from([0x85, 0x52, 0x2e]),
    ]);
    const e = catchError(() => unpickle(evil));
    expect(e).toBeInstanceOf(UnsupportedGlobalError);
    expect((e as UnsupportedGlobalError).qualname).toBe('os.system');
    expect(() => load(zipWith(evil))).toThrow(/^Unsupported class os\.system in checkpoint <buffer>: torchnode never runs pickled code/);
    // A whole pickled module (torch.save(model)) names its class too.
    const module = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('ctorch.nn.modules.linear\nLinear\n', 'latin1'), Buffer.from([0x29, 0x81, 0x2e])]);
    expect(() => load(zipWith(module))).toThrow(/^Unsupported class torch\.nn\.modules\.linear\.Linear in checkpoint .*save model\.state_dict\(\)/);
  });

  test('a damaged pickle, a missing storage and a tensor past its storage are clear errors', () => {
    const sd = new Map([['w', torch.arange(6, { dtype: 'float32' })]]);
    const good = new ZipReader(bufferSource(saveToBuffer(sd)));
    const pkl = good.read('archive/data.pkl');
    expect(() => load(zipWith(pkl.subarray(0, pkl.length - 5), { 'data/0': good.read('archive/data/0') })))
      .toThrow(/^Truncated checkpoint: <buffer> \(archive\/data\.pkl: pickle data ends/);
    expect(() => load(zipWith(pkl))).toThrow(/^Corrupt checkpoint: <buffer> \(the pickle refers to storage '0' but the archive has no archive\/data\/0\)/);
    expect(() => load(zipWith(pkl, { 'data/0': Buffer.alloc(8) }))).toThrow(/archive\/data\/0 has 8 bytes but its 6 float32 elements need 24/);
    const bogus = Buffer.from(pkl);
    bogus[bogus.indexOf(Buffer.from([0x4b, 6, 0x85]))+ 1] = 7; // size (6,) -> (7,) with a 6-element storage
    expect(() => load(zipWith(bogus, { 'data/0': good.read('archive/data/0') }))).toThrow(/reaches element 6 of storage '0', which has 6/);
    expect(() => unpickle(Buffer.from([0x80, 0x02, 0xff]))).toThrow(PickleError);
    expect(() => unpickle(Buffer.from([0x80, 0x02, 0x68, 0x05, 0x2e]))).toThrow('memo entry 5 is read before it is written');
  });

  test('damaged files (random bytes changed or cut, CRC kept valid for the pickle) only ever raise CheckpointError', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    const outcomes = new Set<string>();
    const attempt = (fn: () => unknown): void => {
      try {
        disposeTensors(fn());
        outcomes.add('loaded');
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw new Error(`not a CheckpointError: ${(e as Error).stack}`);
        outcomes.add(e.message.split(':')[0]);
      }
    };
    const misc = fs.readFileSync(fixture('misc.pt'));
    const st = fs.readFileSync(fixture('small.safetensors'));
    const z = new ZipReader(bufferSource(misc));
    const records = z.names().map((n) => [n, z.read(n)] as const);
    for (let i = 0; i < 300; i++) {
      const file = Buffer.from(misc);
      for (let j = 0; j < 3; j++) file[rnd(file.length)] = rnd(256);
      attempt(() => load(i % 5 === 0 ? file.subarray(0, rnd(file.length)) : file));
      const sf = Buffer.from(st);
      sf[rnd(sf.length)] = rnd(256);
      attempt(() => loadSafetensors(sf));
      // A damaged pickle inside an otherwise valid archive.
      const parts: Buffer[] = [];
      const w = new ZipWriter({ write: (b) => void parts.push(Buffer.from(b)) });
      for (const [n, d] of records) {
        const b = Buffer.from(d);
        if (n.endsWith('data.pkl')) b[rnd(b.length)] = rnd(256);
        w.add(n, b);
      }
      w.finish();
      attempt(() => load(Buffer.concat(parts)));
    }
    expect([...outcomes].sort()).toEqual(expect.arrayContaining(['Corrupt checkpoint', 'Truncated checkpoint', 'Invalid safetensors header in <buffer>', 'loaded']));
  });

  test('argument errors', () => {
    expect(() => load(42 as unknown as string)).toThrow('Expected a file path or a Buffer for file but received 42');
    expect(() => load(tmpFile('does-not-exist.pt'))).toThrow(/ENOENT/);
  });
});

describe('save: bad input and atomicity', () => {
  test('values that cannot be saved are named with their path', () => {
    const f = tmpFile('bad.pt');
    expect(() => save({ a: { fn: () => 1 } }, f)).toThrow(/^Cannot save checkpoint .*bad\.pt: Cannot save a function at obj\.a\.fn$/);
    expect(() => save({ list: [1, undefined] }, f)).toThrow(/Cannot save undefined at obj\.list\[1\] \(use null for None\)/);
    expect(() => save(new Map([['when', new Date(0)]]), f)).toThrow(/Cannot save a Date at obj\.when \(only tensors, numbers, strings/);
    const t = torch.ones(2);
    t.dispose();
    expect(() => save({ w: t }, f)).toThrow(/at obj\.w: the tensor has been disposed/);
    expect(() => save({ f: new Float32Array(2) }, f)).toThrow(/Cannot save a Float32Array at obj\.f \(wrap numeric data in a tensor/);
    expect(() => save({}, '' as string)).toThrow('Expected a file path for file but received');
    expect(fs.existsSync(f)).toBe(false);
    expect(tempLeftovers()).toEqual([]);
  });

  test('a failed save leaves the previous checkpoint intact and no temp file', () => {
    const f = tmpFile('atomic.pt');
    save({ w: torch.arange(4, { dtype: 'float32' }), epoch: 1 }, f);
    const before = fs.readFileSync(f);
    // Fails while pickling, after the temp file was opened.
    expect(() => save({ w: torch.zeros(4), bad: Symbol('x') }, f)).toThrow(/Cannot save a symbol at obj\.bad/);
    expect(fs.readFileSync(f).equals(before)).toBe(true);
    expect(tempLeftovers()).toEqual([]);
    // Fails in the middle of writing tensor data (a full disk on the 6th write: data/0 itself).
    const real = fs.writeSync;
    let calls = 0;
    const spy = jest.spyOn(fs, 'writeSync').mockImplementation(((...args: Parameters<typeof fs.writeSync>) => {
      if (++calls === 6) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return (real as (...a: unknown[]) => number)(...args);
    }) as typeof fs.writeSync);
    try {
      expect(() => save({ w: torch.zeros(1000), v: torch.ones(1000), epoch: 2 }, f)).toThrow('ENOSPC');
    } finally {
      spy.mockRestore();
    }
    expect(calls).toBe(6); // headers and data of data.pkl and byteorder, the header of data/0, then its data
    expect(fs.readFileSync(f).equals(before)).toBe(true);
    expect(tempLeftovers()).toEqual([]);
    const back = load(f) as Record<string, unknown>;
    expect(back.epoch).toBe(1);
    expect((back.w as Tensor).toArray()).toEqual([0, 1, 2, 3]);
  });

  test('saving into a missing folder is a plain fs error', () => {
    expect(() => save({ a: 1 }, path.join(tmp, 'no', 'such', 'dir', 'x.pt'))).toThrow(/ENOENT/);
  });
});

describe('safetensors: bad input', () => {
  const f32 = (n: number): Buffer => Buffer.from(new Float32Array(n).fill(1).buffer);

  test('bad headers are clear errors', () => {
    const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    expect(() => loadSafetensors(safetensorsBytes(ok, f32(2)))).not.toThrow();
    expect(() => loadSafetensors(Buffer.from([1, 2, 3]))).toThrow('Not a safetensors file: <buffer> (only 3 bytes; the header length alone takes 8)');
    expect(() => loadSafetensors(safetensorsBytes(ok, f32(2), 1n << 40n))).toThrow(/^Not a safetensors file: <buffer> \(header length 1099511627776 is over the 100 MB limit/);
    expect(() => loadSafetensors(safetensorsBytes(ok, f32(2), 500n))).toThrow(/^Truncated safetensors file: <buffer> \(the header needs 500 bytes/);
    expect(() => loadSafetensors(safetensorsBytes('{"a": [1,', Buffer.alloc(0)))).toThrow(/^Invalid safetensors header in <buffer>: not valid JSON/);
    expect(() => loadSafetensors(safetensorsBytes({ a: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(2))))
      .toThrow("Invalid safetensors header in <buffer>: tensor 'a' has dtype 'F8_E4M3', which torchnode does not support (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    expect(() => loadSafetensors(safetensorsBytes({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2))))
      .toThrow("tensor 'a' of dtype F32 and shape [3] needs 12 bytes but data_offsets [0, 8] span 8");
    expect(() => loadSafetensors(safetensorsBytes({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, f32(2)))).toThrow(/has shape \[-1\]/);
    expect(() => loadSafetensors(safetensorsBytes({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, f32(2)))).toThrow(/expected \[begin, end\] with 0 <= begin <= end/);
    expect(() => loadSafetensors(safetensorsBytes({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, f32(3)))).toThrow("tensor 'b' (data_offsets [4, 12]) overlaps the tensor before it, which ends at 8");
    expect(() => loadSafetensors(safetensorsBytes({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2))))
      .toThrow("there is a hole in the data: bytes 0..4 belong to no tensor (before 'a')");
    expect(() => loadSafetensors(safetensorsBytes(ok, f32(1)))).toThrow('Truncated safetensors file: <buffer> (the header describes 8 bytes of data but the file has 4)');
    expect(() => loadSafetensors(safetensorsBytes(ok, f32(3)))).toThrow('the data has 12 bytes but the tensors cover only 8');
    expect(() => loadSafetensors(safetensorsBytes({ __metadata__: { n: 1 } }))).toThrow("__metadata__['n'] must be a string, got 1");
    expect(() => loadSafetensors(safetensorsBytes('[1, 2]'))).toThrow("Not a safetensors file: <buffer> (the header does not start with '{')");
  });

  test('bad arguments to saveSafetensors', () => {
    const f = tmpFile('bad.safetensors');
    expect(() => saveSafetensors({ a: 1 as unknown as Tensor }, f)).toThrow("Expected a Tensor for tensors['a'] but received 1");
    expect(() => saveSafetensors({ __metadata__: torch.ones(1) }, f)).toThrow(/reserved for metadata/);
    expect(() => saveSafetensors({ a: torch.ones(1) }, f, { n: 1 as unknown as string })).toThrow("Expected a string for metadata['n'] but received 1");
    expect(fs.existsSync(f)).toBe(false);
    expect(tempLeftovers()).toEqual([]);
  });
});

describe('loading into a model that does not match', () => {
  test('every missing, unexpected and mis-shaped key is named', () => {
    // The seed CNN's checkpoint into SmallNet: no key in common.
    const e = catchError(() => loadStateDictInto(smallNet(), fixture('cnn_state_dict.pt')));
    expect(e.message).toMatch(/^Error\(s\) in loading state_dict for Sequential:/);
    for (const k of ['0.weight', '0.bias', '4.weight', '4.bias']) expect(e.message).toContain(`"${k}"`);
    for (const k of CNN_KEYS) expect(e.message).toContain(`"${k}"`);
    // SmallNet's checkpoint into a wider SmallNet: the same keys, other shapes.
    const e2 = catchError(() => loadStateDictInto(smallNet(8), fixture('checkpoint.pt')));
    expect(e2.message).toContain('size mismatch for 0.weight: copying a param with shape [4, 1, 3, 3] from checkpoint, the shape in current model is [8, 1, 3, 3].');
    expect(e2.message).toContain('size mismatch for 0.bias: copying a param with shape [4] from checkpoint, the shape in current model is [8].');
    expect(e2.message).toContain('size mismatch for 4.weight: copying a param with shape [10, 64] from checkpoint, the shape in current model is [10, 128].');
    expect(e2.message).not.toContain('4.bias');
    // strict: false loads what matches and reports the rest.
    const partial = new nn.Sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }));
    expect(loadStateDictInto(partial, fixture('checkpoint.pt'), { strict: false })).toEqual({ missingKeys: [], unexpectedKeys: ['4.weight', '4.bias'] });
    expect(sha256(partial.stateDict().get('0.weight')!)).toBe(expected.checkpoint.model_state_dict['0.weight'].sha256);
  });

  test('a file with no state dict in it', () => {
    const f = tmpFile('nostate.pt');
    save({ epoch: 3 }, f);
    expect(() => loadStateDictInto(smallNet(), f)).toThrow(/^No state dict in .*nostate\.pt: expected tensors, or a checkpoint with model_state_dict or state_dict \(keys: epoch\)/);
    expect(() => loadCheckpoint(f, { model: smallNet() })).toThrow(/has no model_state_dict \(keys: epoch\)/);
    save([1, 2], f);
    expect(() => loadCheckpoint(f)).toThrow(/^Not a training checkpoint: .* holds \[1, 2\]/);
  });
});

// ---- PyTorch -> torchnode --------------------------------------------------------------

describe('PyTorch -> torchnode', () => {
  test("the seed CNN's state dict loads in order, bit for bit, and into torchnode's CNN", () => {
    const sd = load(fixture('cnn_state_dict.pt')) as Map<string, Tensor>;
    expect(sd).toBeInstanceOf(Map);
    expect([...sd.keys()]).toEqual(CNN_KEYS);
    for (const [k, t] of sd) {
      expect(facts(t)).toEqual(expectedFacts(expected.cnn_state_dict[k]));
      expect(sum(t)).toBeCloseTo(expected.cnn_state_dict[k].sum, 4);
      expect(t.requiresGrad).toBe(false);
    }
    // torchnode's CNN after manualSeed(0) is PyTorch's, bit for bit.
    torch.manualSeed(0);
    const same = new nn.CNN();
    for (const [k, t] of same.stateDict()) expect(sha256(t)).toBe(expected.cnn_state_dict[k].sha256);
    torch.manualSeed(5);
    const model = new nn.CNN();
    expect(sha256(model.stateDict().get('fc.0.weight')!)).not.toBe(expected.cnn_state_dict['fc.0.weight'].sha256);
    expect(loadStateDictInto(model, fixture('cnn_state_dict.pt'))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const [k, t] of model.stateDict()) expect(sha256(t)).toBe(expected.cnn_state_dict[k].sha256);
    // The same bytes from a Buffer.
    const fromBuf = load(fs.readFileSync(fixture('cnn_state_dict.pt'))) as Map<string, Tensor>;
    expect(sha256(fromBuf.get('fc.2.bias')!)).toBe(expected.cnn_state_dict['fc.2.bias'].sha256);
  });

  test("a training checkpoint restores model and Adam bit for bit, and the next step matches PyTorch's", () => {
    torch.manualSeed(123);
    const model = smallNet();
    const opt = new optim.Adam(model.parameters(), { lr: 0.5 });
    const ck = loadCheckpoint(fixture('checkpoint.pt'), { model, optimizer: opt });
    const exp = expected.checkpoint;
    expect(ck.epoch).toBe(2);
    expect(ck.loss).toBe(exp.loss);
    for (const [k, t] of model.stateDict()) expect(sha256(t)).toBe(exp.model_state_dict[k].sha256);
    const osd = ck.optimizer_state_dict!;
    expect(Object.keys(osd.state)).toEqual(['0', '1', '2', '3']);
    expect(isTuple(osd.param_groups[0].betas)).toBe(true);
    expect(osd.param_groups[0]).toEqual({ ...exp.param_groups[0] });
    expect(opt.paramGroups[0].lr).toBe(0.01);
    expect(opt.paramGroups[0].betas).toEqual([0.9, 0.999]);
    model.parameters().forEach((p, i) => {
      const s = opt.state.get(p)!;
      for (const k of ['step', 'exp_avg', 'exp_avg_sq']) expect(sha256(s[k] as Tensor)).toBe(exp.optimizer_state[String(i)][k].sha256);
    });
    const [x, y] = ck.batch as [Tensor, Tensor];
    expect(isTuple(ck.batch)).toBe(true);
    adamStep(model, opt, x, y);
    for (const [k, t] of model.stateDict()) {
      const want = exp.after_one_more_step[k];
      expect(Math.abs(sum(t) - want.sum)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want.sum)));
      const got = Array.from(t.toTypedArray() as Float32Array).slice(0, 4);
      got.forEach((v, i) => expect(Math.abs(v - want.first[i])).toBeLessThan(1e-6));
    }
  });

  test.each(['misc.pt', 'misc_deflate.pt', 'misc_zip64.pt'])('%s: every dtype, views, a Parameter and plain values', (name) => {
    const m = load(fixture(name)) as Record<string, unknown>;
    for (const [k, e] of Object.entries(expected.misc)) expect([k, facts(m[k] as Tensor)]).toEqual([k, expectedFacts(e)]);
    expect((m.transposed as Tensor).toArray()).toEqual([[0, 6, 12, 18], [1, 7, 13, 19], [2, 8, 14, 20], [3, 9, 15, 21], [4, 10, 16, 22], [5, 11, 17, 23]]);
    expect((m.sliced as Tensor).toArray()).toEqual([[6, 8, 10], [12, 14, 16]]);
    expect((m.row as Tensor).toArray()).toEqual([12, 13, 14, 15, 16, 17]);
    // (Arrays, not typed arrays: the addon's BigInt64Array is another realm's than jest's.)
    expect(Array.from((m.i64 as Tensor).toTypedArray() as BigInt64Array)).toEqual([0n, 1n, 2n, 3n, 4n, 5n].map((v) => v - (1n << 40n)));
    expect((m.bool as Tensor).toArray()).toEqual([true, false, true]);
    expect((m.scalar as Tensor).shape).toEqual([]);
    expect((m.empty as Tensor).shape).toEqual([0, 3]);
    expect(m.param).toBeInstanceOf(nn.Parameter);
    expect((m.param as Tensor).requiresGrad).toBe(true);
    expect((m.grad as Tensor).requiresGrad).toBe(true);
    expect((m.base as Tensor).requiresGrad).toBe(false);
    expect(m.big).toBe(1n << 70n);
    expect(m.neg).toBe(-5);
    expect(m.float).toBe(0.1);
    expect(m.str).toBe('h\u00e9llo \u{1F600}');
    expect(m.bytes).toEqual(Buffer.from([0, 0xff, 0x61, 0x62]));
    expect(m.empty_bytes).toEqual(Buffer.alloc(0));
    expect(m.none).toBeNull();
    expect(m.flags).toEqual([true, false]);
    expect(isTuple(m.flags)).toBe(true);
    expect(m.list).toEqual([1, 2.5, 'x', [null]]);
    expect(isTuple(m.list)).toBe(false);
    expect(m.tuple).toEqual([1, [2, 3]]);
    expect(isTuple((m.tuple as unknown[])[1])).toBe(true);
    expect(m.set).toEqual(new Set([7]));
    expect(m.int_keys).toEqual({ 0: 'a', 5: 'b' });
    expect(m.mixed_keys).toEqual(new Map<unknown, string>([[1, 'a'], ['x', 'b'], [[1, 2], 'c']]));
    expect(m.str_digit_keys).toEqual(new Map([['0', 'zero']]));
    expect(m.ordered).toEqual(new Map([['b', 1], ['a', 2]]));
    expect(m.device).toBe('cpu');
    expect(m.dtype).toBe('float64');
  });

  test('a hand-written safetensors file', () => {
    const st = loadSafetensors(fixture('small.safetensors'));
    // Data order: larger elements first, then by name, as the reference writer does.
    expect([...st.keys()]).toEqual(['f64', 'steps', 'bias', 'empty', 'ids', 'weight', 'bytes', 'mask']);
    for (const [k, e] of Object.entries(expected.safetensors)) expect([k, facts(st.get(k)!)]).toEqual([k, expectedFacts(e)]);
    expect(st.get('weight')!.toArray()).toEqual([[0, 0.25, 0.5], [0.75, 1, 1.25]]);
    expect(st.get('mask')!.toArray()).toEqual([true, false, true, true]);
    expect(Array.from(st.get('steps')!.toTypedArray() as BigInt64Array)).toEqual([3n, -(1n << 40n)]);
    const header = readSafetensorsHeader(fixture('small.safetensors'));
    expect(header.metadata).toEqual({ format: 'pt', note: 'hand-written' });
    expect(header.tensors.get('weight')).toEqual({ dtype: 'F32', shape: [2, 3], dataOffsets: [44, 68] });
  });
});

// ---- pickle --------------------------------------------------------------------------------

describe('pickle', () => {
  test.each(['0', '1', '2', '3', '4', '5'])("reads Python's pickle protocol %s", (protocol) => {
    const v = toJS(unpickle(Buffer.from(expected.pickles[protocol], 'hex'))) as Record<string, unknown>;
    expect(v.a).toEqual([1, 2.5, 'x', null, true, false]);
    expect(v.b).toEqual([1, 2]);
    expect(isTuple(v.b)).toBe(true);
    expect(v.big).toBe(1n << 100n);
    expect(v.neg).toBe(-(2 ** 40));
    expect(v.i32).toBe(-7);
    expect(v.i16).toBe(40000);
    expect(v.bytes).toEqual(Buffer.from([0, 1, 255]));
    expect(v.ba).toEqual(Buffer.from('ab'));
    expect(v.nested).toEqual({ k: { z: [] } });
    expect(v.od).toEqual(new Map([['q', 1], ['p', 2]]));
    expect(v.set).toEqual(new Set([1]));
    expect(v.fs).toEqual(new Set([2]));
    expect(v.unicode).toBe('line\nback\\slash \u00e9\u{1F600}');
    expect(v.f).toBe(-0.5);
    expect(v.s1).toBe(v.s2); // one list, referenced twice
    expect(v.long_list).toEqual(Array.from({ length: 1001 }, (_, i) => i));
    expect(v.empty_tuple).toEqual([]);
    expect(v.t4).toEqual([1, 2, 3, 4]);
    expect(v.ints).toEqual({ 0: 'zero' });
  });

  test('writes what it reads, keeping shared references and cycles', () => {
    const shared = [1, 2];
    const cyclic: Record<string, unknown> = { name: 'me' };
    cyclic.self = cyclic;
    const value = {
      n: [0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, -(2 ** 53) + 1],
      f: [0.5, -0, 1e300, Infinity, -Infinity, 2 ** 53], big: [1n << 64n, -(1n << 80n), 127n, -128n],
      s: ['', 'é😀', 'x'.repeat(300)], flags: tuple(true, false, null), map: new Map<unknown, unknown>([[1, 'a'], ['b', tuple(1, 2)]]),
      set: new Set(['q']), bytes: Buffer.from([0, 200]), a: shared, b: shared, cyclic, many: Array.from({ length: 2500 }, (_, i) => i),
      obj: Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`k${i}`, i])),
    };
    const back = toJS(unpickle(pickle(value))) as typeof value;
    expect(back.n).toEqual(value.n);
    expect(back.f.map((x) => Object.is(x, -0) ? 'neg0' : x)).toEqual([0.5, 'neg0', 1e300, Infinity, -Infinity, 2 ** 53]);
    expect(back.big).toEqual([1n << 64n, -(1n << 80n), 127, -128]);
    expect(back.s).toEqual(value.s);
    expect(isTuple(back.flags)).toBe(true);
    expect(back.map).toEqual(value.map);
    expect(back.set).toEqual(value.set);
    expect(back.bytes).toEqual(value.bytes);
    expect(back.a).toBe(back.b);
    expect(back.cyclic.self).toBe(back.cyclic);
    expect(back.many).toEqual(value.many);
    expect(back.obj).toEqual(value.obj);
    expect(() => pickle({ t: markSelfTuple() })).toThrow(/contains itself through a tuple/);
  });
});

function markSelfTuple(): unknown[] {
  const t = tuple<unknown>(1);
  t.push(t);
  return t;
}

// ---- torchnode -> torchnode ---------------------------------------------------------------

describe('torchnode round trip', () => {
  test('a state dict, every dtype, views and plain values survive save and load', () => {
    const misc = load(fixture('misc.pt')) as Record<string, unknown>;
    const f = tmpFile('misc-roundtrip.pt');
    save(misc, f);
    const back = load(f) as Record<string, unknown>;
    for (const [k, e] of Object.entries(expected.misc)) expect([k, facts(back[k] as Tensor)]).toEqual([k, expectedFacts(e)]);
    expect(back.param).toBeInstanceOf(nn.Parameter);
    expect((back.grad as Tensor).requiresGrad).toBe(true);
    const plain = (o: Record<string, unknown>): Record<string, unknown> =>
      Object.fromEntries(Object.entries(o).filter(([, v]) => !(v instanceof Tensor)));
    expect(plain(back)).toEqual(plain(misc));
    expect(isTuple(back.flags)).toBe(true);
    // The writer is deterministic: the same value gives the same bytes.
    expect(saveToBuffer(back).equals(fs.readFileSync(f))).toBe(true);
    disposeTensors(back);
    expect((back.base as Tensor).isDisposed).toBe(true);
  });

  test("PyTorch's layout: archive/ folder, 64-byte aligned records, version 3, byteorder", () => {
    torch.manualSeed(0);
    const buf = saveToBuffer(new nn.CNN().stateDict());
    const z = new ZipReader(bufferSource(buf));
    expect(z.names()).toEqual(['archive/data.pkl', 'archive/byteorder', ...CNN_KEYS.map((_, i) => `archive/data/${i}`), 'archive/version']);
    for (const e of z.entries.values()) {
      expect(e.method).toBe(0);
      expect(z.dataOffset(e) % 64).toBe(0);
    }
    expect(z.read('archive/version').toString()).toBe('3\n');
    expect(z.read('archive/byteorder').toString()).toBe('little');
    const sd = load(buf) as Map<string, Tensor>;
    expect([...sd.keys()]).toEqual(CNN_KEYS);
    for (const [k, t] of sd) expect(sha256(t)).toBe(expected.cnn_state_dict[k].sha256);
  });

  test('ZIP64 records (as written past 4 GiB) read back', () => {
    const value = { w: torch.arange(10, { dtype: 'float64' }), n: 3 };
    const buf = saveToBuffer(value, { forceZip64: true });
    const back = load(buf) as typeof value;
    expect(back.w.toArray()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(back.n).toBe(3);
  });

  test('an optimizer state dict keeps int state keys, tuple betas and tensors', () => {
    const model = smallNet();
    const opt = new optim.Adam(model.parameters(), { lr: 0.01 });
    const x = torch.randn([2, 1, 8, 8]);
    const y = torch.tensor([1n, 2n]);
    adamStep(model, opt, x, y);
    const f = tmpFile('adam.pt');
    save(opt.stateDict(), f);
    const back = load(f) as { state: Record<string, Record<string, Tensor>>; param_groups: Record<string, unknown>[] };
    expect(Object.keys(back.state)).toEqual(['0', '1', '2', '3']);
    expect(isTuple(back.param_groups[0].betas)).toBe(true);
    expect(back.param_groups[0].params).toEqual([0, 1, 2, 3]);
    expect(back.state['0'].step.toArray()).toEqual(1);
    const opt2 = new optim.Adam(smallNet().parameters(), { lr: 0.2 });
    opt2.loadStateDict(back as never);
    expect(opt2.paramGroups[0].lr).toBe(0.01);
  });

  test('safetensors round trip keeps values, metadata and alignment', () => {
    const tensors = new Map<string, Tensor>([
      ['mask', torch.tensor([true, false])], ['w', torch.randn([3, 4])], ['ids', torch.tensor([1n, 2n, 3n])],
      ['t', torch.arange(6, { dtype: 'float32' }).view(2, 3).t()], ['u8', torch.tensor([7], { dtype: 'uint8' })],
      ['0', torch.zeros(1, { dtype: 'float64' })], ['i32', torch.tensor([-4], { dtype: 'int32' })],
    ]);
    const f = tmpFile('rt.safetensors');
    saveSafetensors(tensors, f, { epoch: '3' });
    const back = loadSafetensors(f);
    expect([...back.keys()]).toEqual(['ids', '0', 'w', 't', 'i32', 'mask', 'u8']);
    for (const [k, t] of tensors) expect([k, facts(back.get(k)!)]).toEqual([k, facts(t)]);
    const header = readSafetensorsHeader(f);
    expect(header.metadata).toEqual({ epoch: '3' });
    expect(header.dataStart % 8).toBe(0);
    for (const [, e] of header.tensors) expect(e.dataOffsets[0] % { F64: 8, I64: 8, F32: 4, I32: 4, U8: 1, BOOL: 1 }[e.dtype]!).toBe(0);
    expect(safetensorsToBuffer(tensors, { epoch: '3' }).equals(fs.readFileSync(f))).toBe(true);
    // A Record works too, and loads into a model.
    const model = smallNet();
    saveSafetensors(Object.fromEntries(model.stateDict()), f);
    const other = smallNet();
    loadStateDictInto(other, f);
    for (const [k, t] of other.stateDict()) expect(sha256(t)).toBe(sha256(model.stateDict().get(k)!));
  });
});

// ---- torchnode -> PyTorch -------------------------------------------------------------------

const PY_CHECK = String.raw`
import collections, hashlib, json, os, struct, sys
sys.path.insert(0, sys.argv[1])
import torch
from make_checkpoint_fixtures import CNN, SmallNet, adam_step, describe, make_misc
d = sys.argv[2]
out = {}

# (1) the CNN's state dict, with PyTorch's strictest loader
sd = torch.load(os.path.join(d, 'cnn.pt'), weights_only=True)
out['cnn_type'] = type(sd).__name__
model = CNN()
model.load_state_dict(sd)
out['cnn'] = {k: hashlib.sha256(v.numpy().tobytes()).hexdigest() for k, v in model.state_dict().items()}

# (2) a training checkpoint: resume model and Adam, take one more step
ck = torch.load(os.path.join(d, 'ck.pt'))  # the default: weights_only=True from 2.6
net = SmallNet()
net.load_state_dict(ck['model_state_dict'])
opt = torch.optim.Adam(net.parameters(), lr=0.5)
opt.load_state_dict(ck['optimizer_state_dict'])
g = opt.param_groups[0]
out['group'] = {'lr': g['lr'], 'betas_type': type(ck['optimizer_state_dict']['param_groups'][0]['betas']).__name__,
                'state_keys': sorted(ck['optimizer_state_dict']['state'].keys()), 'epoch': ck['epoch']}
out['steps'] = [float(s['step']) for s in opt.state.values()]
batch = torch.load(os.path.join(sys.argv[3], 'checkpoint.pt'))['batch']
adam_step(net, opt, batch)
out['after'] = {k: describe(v) for k, v in net.state_dict().items()}

# (3) every value type, compared with what PyTorch saved in the first place. bytes, set
# and the rest are outside the weights-only unpickler's allow-list, which PyTorch 2.6
# makes torch.load's default: Python refuses the file unless told to trust it, as it
# refuses its own torch.save of the same dict.
ref = make_misc()
try:
    torch.load(os.path.join(d, 'misc.pt'), weights_only=True)
    out['misc_weights_only'] = 'loaded'
except Exception as e:
    out['misc_weights_only'] = 'refused: ' + type(e).__name__
back = torch.load(os.path.join(d, 'misc.pt'), weights_only=False)
def same(a, b, path):
    if isinstance(b, torch.Tensor):
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad, path
        assert torch.equal(a.detach(), b.detach()), path
    elif isinstance(b, dict):
        assert isinstance(a, dict) and list(a.keys()) == list(b.keys()), (path, a, b)
        for k in b: same(a[k], b[k], path + '.' + str(k))
    elif isinstance(b, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)): same(x, y, path + '[%d]' % i)
    else:
        assert type(a) is type(b) and a == b, (path, a, b)
lossy = ['device', 'dtype']  # torch.device / torch.dtype load as strings
same({k: v for k, v in back.items() if k not in lossy}, {k: v for k, v in ref.items() if k not in lossy}, 'misc')
out['misc_keys'] = list(back.keys())
out['misc_lossy'] = [back['device'], back['dtype']]

# (4) ZIP64 layout, read by PyTorch's own reader
z = torch.load(os.path.join(d, 'zip64.pt'))
out['zip64'] = z['w'].tolist()

# (5) safetensors, parsed by hand
with open(os.path.join(d, 'st.safetensors'), 'rb') as f:
    raw = f.read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
out['st_meta'] = header.pop('__metadata__')
dt = {'F32': torch.float32, 'I64': torch.int64, 'BOOL': torch.bool}
out['st'] = {k: torch.frombuffer(bytearray(raw[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]]), dtype=dt[v['dtype']]).reshape(v['shape']).tolist() for k, v in header.items()}
print(json.dumps(out))
`;

describe('torchnode -> PyTorch', () => {
  const name = 'torch.load reads what torchnode saves: state dict, checkpoint, every value type, ZIP64, safetensors';
  const run = hasTorchPython ? test : test.skip;
  const title = hasTorchPython ? name : `${name} (skipped: ${PYTHON} with torch is not installed)`;
  run(title, () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'py-'));
    torch.manualSeed(0);
    const cnn = new nn.CNN();
    save(cnn.stateDict(), path.join(dir, 'cnn.pt'));

    const model = smallNet();
    const opt = new optim.Adam(model.parameters(), { lr: 0.5 });
    const ck = loadCheckpoint(fixture('checkpoint.pt'), { model, optimizer: opt });
    const [x, y] = ck.batch as [Tensor, Tensor];
    adamStep(model, opt, x, y); // step 4 here; Python takes step 5
    saveCheckpoint(path.join(dir, 'ck.pt'), { model, optimizer: opt, epoch: 3 });
    adamStep(model, opt, x, y);

    save(load(fixture('misc.pt')), path.join(dir, 'misc.pt'));
    save({ w: torch.arange(5, { dtype: 'float32' }) }, path.join(dir, 'zip64.pt'), { forceZip64: true });
    saveSafetensors({ w: torch.tensor([[1.5, 2]]), n: torch.tensor([7n]), b: torch.tensor([true]) }, path.join(dir, 'st.safetensors'), { k: 'v' });

    const r = spawnSync(PYTHON, ['-c', PY_CHECK, path.join(__dirname, '..', 'scripts'), dir, FIX], { encoding: 'utf8', timeout: 120000 });
    if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
    const py = JSON.parse(r.stdout.trim().split('\n').pop()!);

    expect(py.cnn_type).toBe('OrderedDict');
    for (const [k, t] of cnn.stateDict()) expect([k, py.cnn[k]]).toEqual([k, sha256(t)]);
    expect(py.group).toEqual({ lr: 0.01, betas_type: 'tuple', state_keys: [0, 1, 2, 3], epoch: 3 });
    expect(py.steps).toEqual([4, 4, 4, 4]);
    for (const [k, t] of model.stateDict()) {
      const want = py.after[k];
      expect(Math.abs(sum(t) - want.sum)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want.sum)));
    }
    expect(py.misc_keys).toEqual(Object.keys(load(fixture('misc.pt')) as object));
    expect(py.misc_lossy).toEqual(['cpu', 'float64']);
    expect(py.misc_weights_only).toMatch(/^refused: /);
    expect(py.zip64).toEqual([0, 1, 2, 3, 4]);
    expect(py.st_meta).toEqual({ k: 'v' });
    expect(py.st).toEqual({ w: [[1.5, 2]], n: [7], b: [true] });
  });
});

describe('complex tensors', () => {
  test('complex64 and complex128 round-trip through torch.save, views included; safetensors refuses them by name', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'cplx-'));
    const x = torch.ops.complex(torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8])).view(2, 2);
    const y = torch.ops.complex(torch.tensor([1, 2], { dtype: 'float64' }), torch.tensor([-0.5, 0.25], { dtype: 'float64' }));
    save({ x: x.t(), y }, path.join(dir, 'c.pt'));
    const back = torch.load(path.join(dir, 'c.pt')) as Record<string, Tensor>;
    expect([back.x.dtype, back.x.toArray()]).toEqual(['complex64', [[[1, 5], [3, 7]], [[2, 6], [4, 8]]]]);
    expect([back.y.dtype, back.y.toArray()]).toEqual(['complex128', [[1, -0.5], [2, 0.25]]]);
    expect(() => torch.saveSafetensors({ x }, path.join(dir, 'c.safetensors'))).toThrow(/of dtype complex64 as safetensors/);
  });

  const name = 'PyTorch reads torchnode\'s complex tensors, and torchnode reads PyTorch\'s';
  const run = hasTorchPython ? test : test.skip;
  run(hasTorchPython ? name : `${name} (skipped: ${PYTHON} with torch is not installed)`, () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'cplx-py-'));
    const x = torch.ops.complex(torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8])).view(2, 2);
    save({ x: x.t() }, path.join(dir, 'js.pt'));
    const py = [
      'import sys, torch, json',
      "d = torch.load(sys.argv[1] + '/js.pt')",
      "torch.save({'z': torch.tensor([[1+2j, 3-4j]], dtype=torch.complex64).t(), 'w': torch.tensor([1.5-2j], dtype=torch.complex128)}, sys.argv[1] + '/py.pt')",
      "print(json.dumps({'dtype': str(d['x'].dtype), 're': d['x'].real.tolist(), 'im': d['x'].imag.tolist()}))",
    ].join('\n');
    const r = spawnSync(PYTHON, ['-c', py, dir], { encoding: 'utf8', timeout: 120000 });
    if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ dtype: 'torch.complex64', re: [[1, 3], [2, 4]], im: [[5, 7], [6, 8]] });
    const d = torch.load(path.join(dir, 'py.pt')) as Record<string, Tensor>;
    expect([d.z.dtype, d.z.shape, d.z.toArray()]).toEqual(['complex64', [2, 1], [[[1, 2]], [[3, -4]]]]);
    expect([d.w.dtype, d.w.toArray()]).toEqual(['complex128', [[1.5, -2]]]);
  });
});
