// Issue 13 hardening (data side): repr of big tensors, BigInt range in tensor(),
// FIFOs and gzip bombs as IDX files, PNG headers that declare huge images, and the
// train CLI's exit codes for bad IDX files and bad --resume epochs.
// Every expected repr below is what PyTorch 1.13 (/usr/bin/python3) prints for the same tensor.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { PNG } from 'pngjs';
import * as torch from '../lib';
import { decodePng, nn, predict, saveCheckpoint } from '../lib';
import { IdxError, readIdx, writeIdx } from '../lib/data';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-h13-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ms = (f: () => void): number => {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

/** A FIFO at `p`, or false when mkfifo is unavailable here. */
function mkfifo(p: string): boolean {
  const r = spawnSync('mkfifo', [p]);
  return r.status === 0 && fs.statSync(p).isFIFO();
}
const haveFifo = mkfifo(path.join(os.tmpdir(), `torchnode-h13-probe-${process.pid}`));
if (haveFifo) fs.rmSync(path.join(os.tmpdir(), `torchnode-h13-probe-${process.pid}`));
const fifoTest = haveFifo ? test : test.skip;
const fifoName = (name: string) => (haveFifo ? name : `${name} (skipped: mkfifo is not available here)`);

/**
 * Opens `fifo` for writing after `delayMs` and writes junk, so that code that
 * (wrongly) blocks reading it returns after the delay instead of hanging the run.
 */
function unblockLater(fifo: string, delayMs: number) {
  return spawn(process.execPath, ['-e', `setTimeout(() => require('fs').writeFileSync(${JSON.stringify(fifo)}, 'junk'), ${delayMs})`], {
    stdio: 'ignore',
  });
}

describe('toString(): summarised like torch._tensor_str', () => {
  const cases: [string, () => torch.Tensor, string][] = [
    ['arange(2000) float32', () => torch.arange(2000, { dtype: 'float32' }), "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])"],
    ['arange(2000) int64', () => torch.arange(2000, { dtype: 'int64' }), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"],
    ['arange(1001) int32', () => torch.arange(1001, { dtype: 'int32' }), "tensor([   0,    1,    2,  ...,  998,  999, 1000], dtype=torch.int32)"],
    ['zeros(1001) bool', () => torch.zeros(1001, { dtype: 'bool' }), "tensor([False, False, False,  ..., False, False, False])"],
    ['arange(2000) float64 requires_grad', () => torch.arange(2000, { dtype: 'float64' }).requiresGrad_(), "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03], dtype=torch.float64, requires_grad=True)"],
    ['arange(10000) / 7 as [100, 100]', () => torch.arange(10000, { dtype: 'float32' }).div(7).reshape(100, 100), "tensor([[0.0000e+00, 1.4286e-01, 2.8571e-01,  ..., 1.3857e+01, 1.4000e+01,\n         1.4143e+01],\n        [1.4286e+01, 1.4429e+01, 1.4571e+01,  ..., 2.8143e+01, 2.8286e+01,\n         2.8429e+01],\n        [2.8571e+01, 2.8714e+01, 2.8857e+01,  ..., 4.2429e+01, 4.2571e+01,\n         4.2714e+01],\n        ...,\n        [1.3857e+03, 1.3859e+03, 1.3860e+03,  ..., 1.3996e+03, 1.3997e+03,\n         1.3999e+03],\n        [1.4000e+03, 1.4001e+03, 1.4003e+03,  ..., 1.4139e+03, 1.4140e+03,\n         1.4141e+03],\n        [1.4143e+03, 1.4144e+03, 1.4146e+03,  ..., 1.4281e+03, 1.4283e+03,\n         1.4284e+03]])"],
    ['arange(2000) int64 as [10, 10, 20]', () => torch.arange(2000, { dtype: 'int64' }).reshape(10, 10, 20), "tensor([[[   0,    1,    2,  ...,   17,   18,   19],\n         [  20,   21,   22,  ...,   37,   38,   39],\n         [  40,   41,   42,  ...,   57,   58,   59],\n         ...,\n         [ 140,  141,  142,  ...,  157,  158,  159],\n         [ 160,  161,  162,  ...,  177,  178,  179],\n         [ 180,  181,  182,  ...,  197,  198,  199]],\n\n        [[ 200,  201,  202,  ...,  217,  218,  219],\n         [ 220,  221,  222,  ...,  237,  238,  239],\n         [ 240,  241,  242,  ...,  257,  258,  259],\n         ...,\n         [ 340,  341,  342,  ...,  357,  358,  359],\n         [ 360,  361,  362,  ...,  377,  378,  379],\n         [ 380,  381,  382,  ...,  397,  398,  399]],\n\n        [[ 400,  401,  402,  ...,  417,  418,  419],\n         [ 420,  421,  422,  ...,  437,  438,  439],\n         [ 440,  441,  442,  ...,  457,  458,  459],\n         ...,\n         [ 540,  541,  542,  ...,  557,  558,  559],\n         [ 560,  561,  562,  ...,  577,  578,  579],\n         [ 580,  581,  582,  ...,  597,  598,  599]],\n\n        ...,\n\n        [[1400, 1401, 1402,  ..., 1417, 1418, 1419],\n         [1420, 1421, 1422,  ..., 1437, 1438, 1439],\n         [1440, 1441, 1442,  ..., 1457, 1458, 1459],\n         ...,\n         [1540, 1541, 1542,  ..., 1557, 1558, 1559],\n         [1560, 1561, 1562,  ..., 1577, 1578, 1579],\n         [1580, 1581, 1582,  ..., 1597, 1598, 1599]],\n\n        [[1600, 1601, 1602,  ..., 1617, 1618, 1619],\n         [1620, 1621, 1622,  ..., 1637, 1638, 1639],\n         [1640, 1641, 1642,  ..., 1657, 1658, 1659],\n         ...,\n         [1740, 1741, 1742,  ..., 1757, 1758, 1759],\n         [1760, 1761, 1762,  ..., 1777, 1778, 1779],\n         [1780, 1781, 1782,  ..., 1797, 1798, 1799]],\n\n        [[1800, 1801, 1802,  ..., 1817, 1818, 1819],\n         [1820, 1821, 1822,  ..., 1837, 1838, 1839],\n         [1840, 1841, 1842,  ..., 1857, 1858, 1859],\n         ...,\n         [1940, 1941, 1942,  ..., 1957, 1958, 1959],\n         [1960, 1961, 1962,  ..., 1977, 1978, 1979],\n         [1980, 1981, 1982,  ..., 1997, 1998, 1999]]])"],
    ['arange(4000) / 4000 as [2, 2, 10, 100]', () => torch.arange(4000, { dtype: 'float32' }).div(4000).reshape(2, 2, 10, 100), "tensor([[[[0.0000e+00, 2.5000e-04, 5.0000e-04,  ..., 2.4250e-02,\n           2.4500e-02, 2.4750e-02],\n          [2.5000e-02, 2.5250e-02, 2.5500e-02,  ..., 4.9250e-02,\n           4.9500e-02, 4.9750e-02],\n          [5.0000e-02, 5.0250e-02, 5.0500e-02,  ..., 7.4250e-02,\n           7.4500e-02, 7.4750e-02],\n          ...,\n          [1.7500e-01, 1.7525e-01, 1.7550e-01,  ..., 1.9925e-01,\n           1.9950e-01, 1.9975e-01],\n          [2.0000e-01, 2.0025e-01, 2.0050e-01,  ..., 2.2425e-01,\n           2.2450e-01, 2.2475e-01],\n          [2.2500e-01, 2.2525e-01, 2.2550e-01,  ..., 2.4925e-01,\n           2.4950e-01, 2.4975e-01]],\n\n         [[2.5000e-01, 2.5025e-01, 2.5050e-01,  ..., 2.7425e-01,\n           2.7450e-01, 2.7475e-01],\n          [2.7500e-01, 2.7525e-01, 2.7550e-01,  ..., 2.9925e-01,\n           2.9950e-01, 2.9975e-01],\n          [3.0000e-01, 3.0025e-01, 3.0050e-01,  ..., 3.2425e-01,\n           3.2450e-01, 3.2475e-01],\n          ...,\n          [4.2500e-01, 4.2525e-01, 4.2550e-01,  ..., 4.4925e-01,\n           4.4950e-01, 4.4975e-01],\n          [4.5000e-01, 4.5025e-01, 4.5050e-01,  ..., 4.7425e-01,\n           4.7450e-01, 4.7475e-01],\n          [4.7500e-01, 4.7525e-01, 4.7550e-01,  ..., 4.9925e-01,\n           4.9950e-01, 4.9975e-01]]],\n\n\n        [[[5.0000e-01, 5.0025e-01, 5.0050e-01,  ..., 5.2425e-01,\n           5.2450e-01, 5.2475e-01],\n          [5.2500e-01, 5.2525e-01, 5.2550e-01,  ..., 5.4925e-01,\n           5.4950e-01, 5.4975e-01],\n          [5.5000e-01, 5.5025e-01, 5.5050e-01,  ..., 5.7425e-01,\n           5.7450e-01, 5.7475e-01],\n          ...,\n          [6.7500e-01, 6.7525e-01, 6.7550e-01,  ..., 6.9925e-01,\n           6.9950e-01, 6.9975e-01],\n          [7.0000e-01, 7.0025e-01, 7.0050e-01,  ..., 7.2425e-01,\n           7.2450e-01, 7.2475e-01],\n          [7.2500e-01, 7.2525e-01, 7.2550e-01,  ..., 7.4925e-01,\n           7.4950e-01, 7.4975e-01]],\n\n         [[7.5000e-01, 7.5025e-01, 7.5050e-01,  ..., 7.7425e-01,\n           7.7450e-01, 7.7475e-01],\n          [7.7500e-01, 7.7525e-01, 7.7550e-01,  ..., 7.9925e-01,\n           7.9950e-01, 7.9975e-01],\n          [8.0000e-01, 8.0025e-01, 8.0050e-01,  ..., 8.2425e-01,\n           8.2450e-01, 8.2475e-01],\n          ...,\n          [9.2500e-01, 9.2525e-01, 9.2550e-01,  ..., 9.4925e-01,\n           9.4950e-01, 9.4975e-01],\n          [9.5000e-01, 9.5025e-01, 9.5050e-01,  ..., 9.7425e-01,\n           9.7450e-01, 9.7475e-01],\n          [9.7500e-01, 9.7525e-01, 9.7550e-01,  ..., 9.9925e-01,\n           9.9950e-01, 9.9975e-01]]]])"],
    ['uint8 [1200, 1]', () => torch.fromBuffer(Uint8Array.from({ length: 1200 }, (_, i) => i % 256), [1200, 1]), "tensor([[  0],\n        [  1],\n        [  2],\n        ...,\n        [173],\n        [174],\n        [175]], dtype=torch.uint8)"],
    ['arange(1, 130001) float32 (overflowed the stack before)', () => torch.arange(1, 130001, 1, { dtype: 'float32' }), "tensor([1.0000e+00, 2.0000e+00, 3.0000e+00,  ..., 1.3000e+05, 1.3000e+05,\n        1.3000e+05])"],
    ['arange(130000) int64 as [1300, 100]', () => torch.arange(130000, { dtype: 'int64' }).reshape(1300, 100), "tensor([[     0,      1,      2,  ...,     97,     98,     99],\n        [   100,    101,    102,  ...,    197,    198,    199],\n        [   200,    201,    202,  ...,    297,    298,    299],\n        ...,\n        [129700, 129701, 129702,  ..., 129797, 129798, 129799],\n        [129800, 129801, 129802,  ..., 129897, 129898, 129899],\n        [129900, 129901, 129902,  ..., 129997, 129998, 129999]])"],
  ];
  test.each(cases)('%s prints as PyTorch does', (_name, make, expected) => {
    const t = make();
    expect(t.toString()).toBe(expected);
    t.dispose();
  });

  test('small tensors: PyTorch\'s wrapping at 80 columns, sci mode, nan/inf/-0, ties to even', () => {
    const same: [torch.Tensor, string][] = [
      [torch.arange(30, { dtype: 'int64' }), "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16, 17,\n        18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29])"],
      [torch.tensor([NaN, 0, -0, Infinity, -Infinity, 1.5]), 'tensor([   nan, 0.0000, -0.0000,    inf,   -inf, 1.5000])'],
      [torch.tensor([NaN, 0, -0, Infinity, -Infinity, 1], { dtype: 'float32' }), "tensor([nan, 0., -0., inf, -inf, 1.])"],
      [torch.tensor([0.03125, 1]), "tensor([0.0312, 1.0000])"],
      [torch.tensor([1, 2000], { dtype: 'float32' }), "tensor([1.0000e+00, 2.0000e+03])"],
      [torch.tensor([1e-5, 1]), "tensor([1.0000e-05, 1.0000e+00])"],
    ];
    for (const [t, s] of same) expect(t.toString()).toBe(s);
  });

  test('a [5e7] float32 tensor prints in well under a second, reading only the shown elements', () => {
    const t = torch.arange(50000000, { dtype: 'float32' });
    let s = '';
    expect(ms(() => { s = t.toString(); })).toBeLessThan(1000);
    expect(s).toBe("tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 5.0000e+07, 5.0000e+07,\n        5.0000e+07])");
    t.dispose();
  });

  test('a [10000, 10000] tensor prints in well under a second', () => {
    const t = torch.zeros(10000, 10000);
    let s = '';
    expect(ms(() => { s = t.toString(); })).toBeLessThan(1000);
    expect(s).toBe("tensor([[0., 0., 0.,  ..., 0., 0., 0.],\n        [0., 0., 0.,  ..., 0., 0., 0.],\n        [0., 0., 0.,  ..., 0., 0., 0.],\n        ...,\n        [0., 0., 0.,  ..., 0., 0., 0.],\n        [0., 0., 0.,  ..., 0., 0., 0.],\n        [0., 0., 0.,  ..., 0., 0., 0.]])");
    t.dispose();
  });

  test('a non-contiguous view and a CPU copy print the same', () => {
    const t = torch.arange(20000, { dtype: 'float32' }).reshape(100, 200);
    const v = t.permute(1, 0);
    expect(v.toString()).toBe(v.contiguous().toString());
    expect(v.toString().split('\n')[0]).toBe('tensor([[0.0000e+00, 2.0000e+02, 4.0000e+02,  ..., 1.9400e+04, 1.9600e+04,');
  });
});

describe('tensor(): BigInts outside int64 are errors, not wrapped', () => {
  test('values past int64 name the element and the value', () => {
    expect(() => torch.tensor([1n << 70n])).toThrow(RangeError);
    expect(() => torch.tensor([1n << 70n])).toThrow(/data\[0\] to be an integer in int64's range .* but received 1180591620717411303424n/);
    expect(() => torch.tensor([2n ** 63n])).toThrow(/data\[0\] .* but received 9223372036854775808n/);
    expect(() => torch.tensor([-(2n ** 63n) - 1n])).toThrow(/but received -9223372036854775809n/);
    expect(() => torch.tensor([[1n, 2n], [3n, 2n ** 64n]])).toThrow(/data\[1\]\[1\] .* but received 18446744073709551616n/);
    // JS numbers are floats: with one among them the whole tensor is float32, as torch.tensor([1., 2**64]).
    expect(torch.tensor([1, 2n ** 64n]).toArray()).toEqual([1, 18446744073709551616]);
  });
  test('the int64 edges are exact, and a float dtype takes big values like torch.tensor', () => {
    expect(torch.tensor([2n ** 63n - 1n]).item({ bigint: true })).toBe(2n ** 63n - 1n);
    expect(torch.tensor([-(2n ** 63n)]).item({ bigint: true })).toBe(-(2n ** 63n));
    const f = torch.tensor([1n << 70n], { dtype: 'float32' });
    expect(f.dtype).toBe('float32');
    expect(f.toString()).toBe("tensor([1.1806e+21])");
  });
});

describe('readIdx: FIFOs, devices and gzip bombs', () => {
  test(fifoName('a FIFO is refused at once, naming the path'), () => {
    if (!haveFifo) return;
    const p = path.join(tmp, 'train-labels-idx1-ubyte');
    expect(mkfifo(p)).toBe(true);
    const writer = unblockLater(p, 3000); // the old code blocked until this wrote
    try {
      let err: unknown;
      const took = ms(() => {
        try { readIdx(p); } catch (e) { err = e; }
      });
      expect(err).toBeInstanceOf(IdxError);
      expect((err as Error).message).toBe(`Cannot read IDX file ${p}: it is a FIFO (named pipe), not a regular file`);
      expect(took).toBeLessThan(1000);
    } finally {
      writer.kill();
      fs.rmSync(p);
    }
  });
  (fs.existsSync('/dev/zero') ? test : test.skip)('a character device (/dev/zero, endless) is refused', () => {
    expect(() => readIdx('/dev/zero')).toThrow('Cannot read IDX file /dev/zero: it is a character device, not a regular file');
    // The same through the built package in a child with a timeout: code that reads
    // /dev/zero never returns, and a test in this process could not be stopped.
    const idx = path.join(__dirname, '..', 'dist', 'data', 'idx.js');
    const script = `try { require(${JSON.stringify(idx)}).readIdx('/dev/zero') } catch (e) { process.stdout.write(e.message) }`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
    expect(r.signal).toBeNull();
    expect(r.stdout).toBe('Cannot read IDX file /dev/zero: it is a character device, not a regular file');
  });
  test('a directory is refused, naming what it is', () => {
    expect(() => readIdx(tmp)).toThrow(`Cannot read IDX file ${tmp}: it is a directory, not a regular file`);
  });

  const header = (shape: number[]) => {
    const b = Buffer.alloc(4 + 4 * shape.length);
    b[2] = 0x08;
    b[3] = shape.length;
    shape.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  test('a small .gz that inflates far past its header is stopped at the bound', () => {
    // 16 declared bytes, then 64 MiB of zeros: about 64 KB of gzip.
    const bomb = zlib.gzipSync(Buffer.concat([header([16]), Buffer.alloc(16), Buffer.alloc(64 << 20)]));
    expect(bomb.length).toBeLessThan(100000);
    const p = path.join(tmp, 'bomb-idx1-ubyte.gz');
    fs.writeFileSync(p, bomb);
    let err: unknown;
    const took = ms(() => {
      try { readIdx(p); } catch (e) { err = e; }
    });
    expect(err).toBeInstanceOf(IdxError);
    expect((err as Error).message).toBe(
      `Invalid IDX file ${p}: trailing bytes: the gzip data inflates to more than 65560 bytes but the header declares 24 ` +
        '(8-byte header + 16 unsigned byte values); stopped inflating there',
    );
    expect(took).toBeLessThan(1000);
  });
  test('a .gz whose header declares more than an IDX file may hold is refused before inflating', () => {
    const gz = zlib.gzipSync(Buffer.concat([header([65536, 65536]), Buffer.alloc(1000)]));
    expect(() => readIdx(gz, { name: 'huge.gz' })).toThrow(
      'Invalid IDX file huge.gz: the header declares 65536x65536 unsigned byte values (4294967308 bytes), more than the 2147483647 bytes an IDX file may hold',
    );
  });
  test('a raw header declaring more than the file holds is checked against the file size first', () => {
    const p = path.join(tmp, 'short-idx3-ubyte');
    fs.writeFileSync(p, Buffer.concat([header([60000, 28, 28]), Buffer.alloc(100)]));
    expect(() => readIdx(p)).toThrow(`Invalid IDX file ${p}: truncated: expected 47040016 bytes (16-byte header + 60000x28x28 unsigned byte values) but the file has 116`);
  });
  test('good files still read, raw and gzip', () => {
    const a = { dtype: 'uint8' as const, shape: [3, 2], data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
    expect(readIdx(zlib.gzipSync(writeIdx(a)))).toEqual(a);
    const p = path.join(tmp, 'ok-idx2-ubyte');
    fs.writeFileSync(p, writeIdx(a));
    expect(readIdx(p)).toEqual(a);
  });
});

describe('decodePng/predict: the IHDR size is checked before decoding', () => {
  function crc32(buf: Buffer): number {
    let crc = 0xffffffff;
    for (let n = 0; n < buf.length; n++) {
      let c = (crc ^ buf[n]) & 0xff;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crc = (crc >>> 8) ^ c;
    }
    return (crc ^ 0xffffffff) >>> 0;
  }
  function chunk(type: string, data: Buffer): Buffer {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, c]);
  }
  /** A valid 8-bit grey PNG of zeros whose image data inflates to `rows` x `rowBytes`, built without deflating it all. */
  function zeroPng(width: number, height: number, interlace: 0 | 1, rows: number, rowBytes: number): Buffer {
    const per = 250;
    const piece = zlib.deflateRawSync(Buffer.alloc(rowBytes * per), { finishFlush: zlib.constants.Z_FULL_FLUSH });
    const parts = [Buffer.from([0x78, 0x9c])];
    for (let r = 0; r < rows; r += per) parts.push(piece);
    const n = rowBytes * Math.ceil(rows / per) * per;
    const adler = Buffer.alloc(4);
    adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0);
    parts.push(Buffer.from([0x03, 0x00]), adler);
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 0; // grey
    ihdr[12] = interlace;
    const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
  }

  test('a 250 KB PNG declaring 16000x16000 is refused in milliseconds', () => {
    const png = zeroPng(16000, 16000, 0, 16000, 16001);
    expect(png.length).toBeLessThan(400000);
    let err: unknown;
    const took = ms(() => {
      try { decodePng(png); } catch (e) { err = e; }
    });
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe('Expected a 28x28 image for image but received 16000x16000 (declared by its PNG header; not decoded)');
    expect(took).toBeLessThan(500);
    torch.manualSeed(0);
    const model = new nn.CNN();
    expect(() => predict(model, png)).toThrow(/Expected a 28x28 image for image but received 16000x16000/);
    expect(() => predict(model, [png, png])).toThrow(/images\[0\] but received 16000x16000/);
  });
  test('an interlaced 28x28 PNG whose data inflates to 64 MB is refused', () => {
    const png = zeroPng(28, 28, 1, 250 * 16 * 16, 1024);
    let err: unknown;
    const took = ms(() => {
      try { decodePng(png); } catch (e) { err = e; }
    });
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe('Could not decode image as PNG: its 28x28 image data inflates past 65536 bytes');
    expect(took).toBeLessThan(500);
  });
  test('a PNG without IHDR first is a decode error, and good PNGs still decode', () => {
    const good = PNG.sync.write(new PNG({ width: 28, height: 28 }));
    expect(Array.from(decodePng(good)).every((v) => v === 0)).toBe(true);
    const noIhdr = Buffer.concat([good.subarray(0, 8), good.subarray(33)]);
    expect(() => decodePng(noIhdr)).toThrow(/Could not decode image as PNG: it does not start with a 13-byte IHDR chunk/);
  });
});

describe('train CLI: bad IDX files and bad --resume epochs exit 2 with a message', () => {
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'train.js');
  const run = (args: string[], timeout = 60000) =>
    spawnSync(process.execPath, [cli, '--epochs', '1', '--limit', '100', '--test-limit', '100', '--threads', '1', '--no-progress', '--no-report', ...args], {
      encoding: 'utf8', timeout,
    });
  const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at /);

  test('an IDX file with a bad magic number', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'bad-'));
    for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      fs.writeFileSync(path.join(dir, f), 'not an idx file');
    }
    const r = run(['--data', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`torchnode train: Invalid IDX file ${path.join(dir, 'train-images-idx3-ubyte')}: bad magic number 0x6E6F7420`);
    noStack(r.stderr);
  });

  fifoTest(fifoName('a FIFO named as an IDX file'), () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'fifo-'));
    const images = path.join(dir, 'train-images-idx3-ubyte');
    expect(mkfifo(images)).toBe(true);
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), writeIdx({ dtype: 'uint8', shape: [1], data: Uint8Array.from([1]) }));
    const r = run(['--data', dir], 20000); // the old code hung here until killed
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`Cannot read IDX file ${images}: it is a FIFO (named pipe), not a regular file`);
    noStack(r.stderr);
  });

  test.each([
    ['a string', "'1'", '1'],
    ['a bigint past 2^53', '1180591620717411303424n', 1n << 70n],
    ['a negative number', '-1', -1],
    ['a fraction', '1.5', 1.5],
  ])('a checkpoint whose epoch is %s', (_what, shown, epoch) => {
    const ck = path.join(tmp, `epoch-${String(epoch)}.pt`);
    saveCheckpoint(ck, { epoch: epoch as never });
    const r = run(['--resume', ck]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`torchnode train: --resume: ${ck}: expected the checkpoint's epoch to be a non-negative integer but received ${shown}\n`);
    expect(r.stdout).not.toMatch(/\[Epoch:/);
  });
});
