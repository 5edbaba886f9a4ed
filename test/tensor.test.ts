import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as torch from '../lib';
import { Tensor, TorchError } from '../lib';

describe('Tensor: throw cases', () => {
  test('wrong argument types name the argument and the value', () => {
    const x = torch.ones(2, 2);
    // The generated methods name the op, the argument, its schema type and the value.
    expect(() => x.add('a' as any)).toThrow(/add\(\) received an invalid combination of arguments: \('a'\)[^]*expected a number for other \(Scalar\) but received 'a'[^]*expected a Tensor for other \(Tensor\) but received 'a'/);
    expect(() => x.matmul(3 as any)).toThrow(new TypeError('matmul: expected a Tensor for other (Tensor) but received 3 (schema aten::matmul(Tensor self, Tensor other))'));
    expect(() => torch.zeros([2, -1])).toThrow(/Expected a non-negative integer for size\[1\] but received -1/);
    expect(() => torch.zeros([2.5])).toThrow(TypeError);
    expect(() => torch.ones([2], { dtype: 'float8' as any })).toThrow(/Expected one of float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool, complex64, complex128 for dtype but received 'float8'/);
    expect(() => x.view(3, 'a' as any)).toThrow(/expected integers for size but received 'a'/);
    expect(() => torch.randint(5, 5, [2])).toThrow(/high > low/);
    expect(() => torch.arange(0, 1, 0)).toThrow(/non-zero step/);
  });

  test('libtorch errors become TorchError without a C++ backtrace', () => {
    const a = torch.ones(2, 3);
    const b = torch.ones(4, 5);
    let err: unknown;
    try {
      a.matmul(b);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TorchError);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toMatch(/2x3 and 4x5/);
    expect(msg).not.toMatch(/Exception raised from|frame #/);
    expect(() => a.view(7)).toThrow(TorchError);
    expect(() => torch.ones(3).item()).toThrow(/3 elements cannot be converted/);
  });

  test('ragged nested arrays are rejected with the path', () => {
    expect(() => torch.tensor([[1, 2], [3]])).toThrow(/data\[1\].*length 1/);
    expect(() => torch.tensor([[1, 2], 3] as any)).toThrow(/ragged/);
    expect(() => torch.tensor(['x'] as any)).toThrow(/Expected a number, boolean or bigint for data element 0 but received 'x'/);
  });

  test('fromBuffer checks the element count against the shape', () => {
    expect(() => torch.fromBuffer(new Float32Array(5), [2, 3])).toThrow(/Expected data of 6 elements for shape \[2, 3\] but received 5 elements/);
    expect(() => torch.fromBuffer([1, 2] as any, [2])).toThrow(/TypeArray|TypedArray or Buffer/);
  });

  test('a disposed tensor is a clear error, and dispose is idempotent', () => {
    const x = torch.ones(3);
    x.dispose();
    x.dispose();
    expect(x.isDisposed).toBe(true);
    expect(() => x.shape).toThrow('Tensor has been disposed');
    expect(() => torch.ones(3).add(x)).toThrow('Tensor has been disposed');
    expect(String(x)).toBe('tensor(<disposed>)');
  });

  // Without a GPU, cuda is an error; with one, test/cuda.test.ts checks what the GPU does.
  (torch.cuda.isAvailable() ? test.skip : test)(
    `moving to cuda without a GPU is an error, not a crash${torch.cuda.isAvailable() ? ' [skipped: CUDA is available; test/cuda.test.ts covers the GPU]' : ''}`,
    () => {
      expect(() => torch.ones(2).to('cuda')).toThrow(/CUDA is not available/);
      expect(() => torch.ones(2).cuda()).toThrow(TorchError);
      expect(() => torch.zeros([2], { device: 'cuda:0' })).toThrow(/CUDA is not available/);
    },
  );
  (torch.cuda.isAvailable() ? test : test.skip)(
    `moving to cuda on a GPU gives a cuda tensor with the same values${torch.cuda.isAvailable() ? '' : ' [skipped: no CUDA device (torch.cuda.isAvailable() is false)]'}`,
    () => {
      const g = torch.tensor([1.5, -2]).to('cuda');
      expect(g.device).toBe('cuda:0');
      expect(g.cpu().toArray()).toEqual([1.5, -2]);
    },
  );
  test('an unknown device is a TypeError naming the value', () => {
    expect(() => torch.ones(2).to('tpu' as any)).toThrow(TypeError);
    expect(() => torch.ones(2).to('tpu' as any)).toThrow(/Expected 'cpu', 'cuda' or 'cuda:N' for target but received 'tpu'/);
  });
});

describe('Tensor: one calling rule for every method', () => {
  test('the math, shape and in-place methods take the trailing keyword object, in camelCase', () => {
    const x = torch.tensor([-2, -1, 0, 1, 2]);
    expect(x.clamp({ min: 0 }).toArray()).toEqual([0, 0, 0, 1, 2]);
    expect(x.clamp(undefined, 0).toArray()).toEqual([-2, -1, 0, 0, 0]);
    const y = x.clone();
    expect(y.clamp_({ max: 1 })).toBe(y);
    expect(y.toArray()).toEqual([-2, -1, 0, 1, 1]);
    const m = torch.tensor([[1, 5], [7, 3]]);
    expect(m.sum({ dtype: 'float64' }).dtype).toBe('float64');
    expect(m.sum(1, { keepdim: true }).shape).toEqual([2, 1]);
    const mx = m.max(1);
    expect(mx.values.toArray()).toEqual([5, 7]);
    expect(mx.indices.toArray()).toEqual([1, 0]);
    // std/var take PyTorch's order: dim, unbiased, keepdim.
    expect(m.std(1, false).toArray()).toEqual([2, 2]);
    expect(m.std(1, false, true).shape).toEqual([2, 1]);
    expect(m.view(-1).shape).toEqual([4]);
    expect(m.view([4, 1]).shape).toEqual([4, 1]);
  });

  test('an unknown key is a TypeError naming the function and the key, everywhere', () => {
    const x = torch.ones(2, 2);
    expect(() => x.sum({ dtpye: 'float64' } as any)).toThrow(/sum: unknown keyword argument 'dtpye' \(it takes [^)]*dtype/);
    expect(() => x.clamp_({ minimum: 0 } as any)).toThrow(/clamp_: unknown keyword argument 'minimum'/);
    expect(() => torch.zeros([2], { dtpye: 'float64' } as any)).toThrow(new TypeError("zeros: unknown option 'dtpye' (it takes dtype, device, requiresGrad)"));
    expect(() => torch.randn(2, { generater: null } as any)).toThrow(/randn: unknown option 'generater' \(it takes dtype, device, requiresGrad, generator\)/);
    expect(() => torch.tensor([1], { requires_grad: true } as any)).toThrow(/tensor: unknown option 'requires_grad'/);
    expect(() => torch.full([2], 1, { device: 'cpu', dtyp: 'int64' } as any)).toThrow(/full: unknown option 'dtyp'/);
    expect(() => x.to({ dtype: 'float64', devise: 'cpu' } as any)).toThrow(/to: unknown option 'devise'/);
    expect(() => x.contiguous({ format: 'channels_last' } as any)).toThrow(/contiguous: unknown option 'format'/);
    expect(() => x.item({ bigInt: true } as any)).toThrow(/item: unknown option 'bigInt'/);
    const w = torch.ones(2).requiresGrad_();
    expect(() => w.sum().backward(null, { retainGraf: true } as any)).toThrow(/backward: unknown option 'retainGraf'/);
    for (const f of [() => x.sum({ dtpye: 1 } as any), () => torch.zeros([1], { a: 1 } as any)]) {
      try {
        f();
      } catch (e) {
        expect((e as { code?: string }).code).toBe('ERR_INVALID_ARG_TYPE');
      }
    }
  });

  test('contiguous takes the memory format alone or as PyTorch\'s keyword', () => {
    const x = torch.randn([1, 2, 3, 3]);
    expect(x.contiguous({ memoryFormat: 'channels_last' }).isContiguous('channels_last')).toBe(true);
    expect(x.contiguous('channels_last').isContiguous('channels_last')).toBe(true);
  });
});

describe('Tensor: creation and reading', () => {
  test('dtypes are inferred like PyTorch', () => {
    // JS has no int literals: numbers are float32 (the default dtype), BigInts int64.
    expect(torch.tensor([1, 2, 3]).dtype).toBe('float32');
    expect(torch.tensor([1n, 2n, 3n]).dtype).toBe('int64');
    expect(torch.tensor([1, 2n]).dtype).toBe('float32');
    expect(torch.tensor([1, 2, 3], { dtype: 'int64' }).toArray()).toEqual([1, 2, 3]);
    expect(torch.tensor([1.5, 2]).dtype).toBe('float32');
    expect(torch.tensor([true, false]).dtype).toBe('bool');
    expect(torch.tensor([1, 2], { dtype: 'float64' }).dtype).toBe('float64');
    expect(torch.tensor([1, 2]).requiresGrad_().mean().item()).toBe(1.5);
    expect(torch.full([2], 7).dtype).toBe('float32');
    expect(torch.full([2], 7n).dtype).toBe('int64');
    expect(torch.full([2], 0.5).dtype).toBe('float32');
    expect(torch.arange(5).dtype).toBe('int64');
    expect(torch.arange(0, 1, 0.25).toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    expect(torch.zeros(2, 3).dtype).toBe('float32');
  });

  test('all six dtypes round-trip through TypedArrays', () => {
    const cases: [torch.DType, ArrayBufferView, (number | boolean)[]][] = [
      ['float32', new Float32Array([1.5, -2]), [1.5, -2]],
      ['float64', new Float64Array([1e-300, 2]), [1e-300, 2]],
      ['int64', new BigInt64Array([1n, -2n]), [1, -2]],
      ['int32', new Int32Array([7, -8]), [7, -8]],
      ['uint8', new Uint8Array([0, 255]), [0, 255]],
      ['bool', new Uint8Array([1, 0]), [true, false]],
    ];
    for (const [dtype, data, values] of cases) {
      const t = torch.fromBuffer(data, [2], { dtype });
      expect(t.dtype).toBe(dtype);
      expect(t.toArray()).toEqual(values);
      expect(t.toTypedArray().constructor.name).toBe(dtype === 'bool' ? 'Uint8Array' : data.constructor.name);
    }
  });

  test('float16, bfloat16, int16, int8 and complex: created, computed, read back and printed as PyTorch does', () => {
    // IEEE half: 0.1 is 0x2E66 = 0.0999755859375; bfloat16 keeps float32's exponent (1e30 fits).
    const h = torch.tensor([0.1, -2, 65504], { dtype: torch.float16 });
    expect([h.dtype, h.isFloatingPoint()]).toEqual(['float16', true]);
    expect(h.toArray()).toEqual([0.0999755859375, -2, 65504]);
    expect(Array.from(h.toTypedArray() as Uint16Array)).toEqual([0x2e66, 0xc000, 0x7bff]);
    expect(torch.fromBuffer(new Uint16Array([0x2e66]), [1], { dtype: 'float16' }).toArray()).toEqual([0.0999755859375]);
    expect(String(h)).toBe('tensor([ 9.9976e-02, -2.0000e+00,  6.5504e+04], dtype=torch.float16)');
    const b = torch.tensor([1e30, 1.5], { dtype: 'bfloat16' });
    expect(b.mul(2).toArray()).toEqual([2.0005111034851745e30, 3]); // torch: (b * 2).tolist()
    expect(String(torch.tensor([1.5, -2.25, 3], { dtype: 'bfloat16' }))).toBe('tensor([ 1.5000, -2.2500,  3.0000], dtype=torch.bfloat16)');
    expect(Array.from(torch.tensor([300, -5], { dtype: torch.int16 }).toTypedArray() as Int16Array)).toEqual([300, -5]);
    expect(torch.tensor([-3], { dtype: 'int8' }).item()).toBe(-3);
    const c = torch.ones([2], { dtype: torch.cfloat });
    expect([c.dtype, c.isComplex(), c.isFloatingPoint()]).toEqual(['complex64', true, false]);
    expect(c.toArray()).toEqual([[1, 0], [1, 0]]);
    expect(String(c)).toBe('tensor([1.+0.j, 1.+0.j])');
    expect(String(torch.ones([1], { dtype: 'complex128' }))).toBe('tensor([1.+0.j], dtype=torch.complex128)');
    expect(() => c.sum().item()).toThrow(/item\(\): a complex64 value is no JS number; toArray\(\) gives it as \[re, im\] \(2, 0\)/);
    // Aliases and constants are the dtype names.
    expect([torch.float, torch.double, torch.half, torch.long, torch.int, torch.short, torch.cdouble]).toEqual(
      ['float32', 'float64', 'float16', 'int64', 'int32', 'int16', 'complex128']);
    expect(torch.zeros(1, { dtype: 'long' as torch.DType }).dtype).toBe('int64');
  });

  test('setDefaultDtype changes what numbers and factories make, and the repr follows', () => {
    try {
      torch.setDefaultDtype('float64');
      expect(torch.getDefaultDtype()).toBe('float64');
      expect([torch.tensor([1, 2]).dtype, torch.zeros(2).dtype, torch.randn([2]).dtype, torch.full([1], 2).dtype]).toEqual(['float64', 'float64', 'float64', 'float64']);
      expect(String(torch.ones(2))).toBe('tensor([1., 1.])');
      expect(String(torch.ones(2, { dtype: 'float32' }))).toBe('tensor([1., 1.], dtype=torch.float32)');
      expect(() => torch.setDefaultDtype('int64')).toThrow(/Expected a floating-point dtype .* but received 'int64'/);
    } finally {
      torch.setDefaultDtype('float32');
    }
    expect(torch.tensor([1]).dtype).toBe('float32');
  });

  test('float16 and bfloat16 save and load (torch.save and safetensors)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tn-f16-'));
    try {
      const sd = new Map([['h', torch.tensor([0.1, -2, 3e4], { dtype: 'float16' })], ['b', torch.tensor([[1.5, -2], [3, 4]], { dtype: 'bfloat16' }).t()]]);
      torch.save(sd, path.join(dir, 'a.pt'));
      torch.saveSafetensors(sd, path.join(dir, 'a.safetensors'));
      for (const back of [torch.load(path.join(dir, 'a.pt')) as Map<string, torch.Tensor>, torch.loadSafetensors(path.join(dir, 'a.safetensors'))]) {
        const get = (k: string) => (back instanceof Map ? back.get(k)! : (back as Record<string, torch.Tensor>)[k]);
        expect([get('h').dtype, get('h').toArray()]).toEqual(['float16', [0.0999755859375, -2, 30000]]);
        expect([get('b').dtype, get('b').toArray()]).toEqual(['bfloat16', [[1.5, 3], [-2, 4]]]);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('fromBuffer copies: later writes to the JS buffer are not seen', () => {
    const buf = Buffer.from([1, 2, 3, 4]);
    const t = torch.fromBuffer(buf, [2, 2]);
    buf[0] = 99;
    expect(t.dtype).toBe('uint8');
    expect(t.toArray()).toEqual([[1, 2], [3, 4]]);
    const f = new Float32Array(new ArrayBuffer(32), 8, 4); // non-zero byteOffset
    f.set([1, 2, 3, 4]);
    expect(torch.fromBuffer(f, [4]).toArray()).toEqual([1, 2, 3, 4]);
  });

  test('metadata', () => {
    const x = torch.zeros([2, 3, 4]);
    expect(x.shape).toEqual([2, 3, 4]);
    expect(x.size(1)).toBe(3);
    expect(x.size(-1)).toBe(4);
    expect(() => x.size(3)).toThrow(/Dimension out of range/);
    expect(x.numel()).toBe(24);
    expect(x.dim()).toBe(3);
    expect(x.device).toBe('cpu');
    expect(x.requiresGrad).toBe(false);
    expect(x.grad).toBeNull();
    expect(torch.tensor(3.5).item()).toBe(3.5);
    expect(torch.tensor([9007199254740993n]).item({ bigint: true })).toBe(9007199254740993n);
  });

  test('toString follows PyTorch repr', () => {
    expect(String(torch.tensor([1.5, 2]))).toBe('tensor([1.5000, 2.0000])');
    expect(String(torch.tensor([[1n, 2n], [3n, 4n]]))).toBe('tensor([[1, 2],\n        [3, 4]])');
    expect(String(torch.ones(2))).toBe('tensor([1., 1.])');
    expect(String(torch.ones(2, { dtype: 'float64' }))).toBe('tensor([1., 1.], dtype=torch.float64)');
    expect(String(torch.ones(2).requiresGrad_())).toBe('tensor([1., 1.], requires_grad=True)');
    expect(String(torch.tensor(true))).toBe('tensor(True)');
    expect(String(torch.zeros([0]))).toBe('tensor([])');
  });

  test('factories: zeros/ones/full/empty and *Like', () => {
    expect(torch.ones([2, 2]).sum().item()).toBe(4);
    expect(torch.full([2, 2], 3).toArray()).toEqual([[3, 3], [3, 3]]);
    expect(torch.empty(3).shape).toEqual([3]);
    const x = torch.ones([2, 3], { dtype: 'float64' });
    expect(torch.zerosLike(x).dtype).toBe('float64');
    expect(torch.onesLike(x, { dtype: 'int32' }).toArray()).toEqual([[1, 1, 1], [1, 1, 1]]);
    expect(torch.fullLike(x, 2).sum().item()).toBe(12);
    expect(torch.randLike(x).shape).toEqual([2, 3]);
    expect(torch.randnLike(x).dtype).toBe('float64');
    expect(torch.emptyLike(x).shape).toEqual([2, 3]);
    expect(torch.randint(0, 3, [100]).max().item()).toBeLessThan(3);
    const p = torch.randperm(10).toArray() as number[];
    expect([...p].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('Tensor: shape ops', () => {
  const x = torch.arange(24).reshape(2, 3, 4);
  test('view, reshape, flatten, squeeze, unsqueeze, permute, transpose', () => {
    expect(x.view(6, -1).shape).toEqual([6, 4]);
    expect(x.view([4, 6]).shape).toEqual([4, 6]);
    expect(x.flatten().shape).toEqual([24]);
    expect(x.flatten(1).shape).toEqual([2, 12]);
    expect(x.unsqueeze(0).shape).toEqual([1, 2, 3, 4]);
    expect(x.unsqueeze(0).squeeze().shape).toEqual([2, 3, 4]);
    expect(x.unsqueeze(1).squeeze(1).shape).toEqual([2, 3, 4]);
    expect(x.permute(2, 0, 1).shape).toEqual([4, 2, 3]);
    const tr = x.transpose(0, 2);
    expect(tr.shape).toEqual([4, 3, 2]);
    expect(tr.isContiguous()).toBe(false);
    expect(tr.contiguous().isContiguous()).toBe(true);
    expect(torch.arange(6).reshape(2, 3).t().toArray()).toEqual([[0, 3], [1, 4], [2, 5]]);
  });
  test('cat, stack, narrow, slice, select, indexSelect, expand', () => {
    const a = torch.tensor([[1, 2]]);
    const b = torch.tensor([[3, 4]]);
    expect(torch.cat([a, b]).toArray()).toEqual([[1, 2], [3, 4]]);
    expect(torch.cat([a, b], 1).toArray()).toEqual([[1, 2, 3, 4]]);
    expect(torch.stack([a, b]).shape).toEqual([2, 1, 2]);
    expect(torch.arange(10).narrow(0, 2, 3).toArray()).toEqual([2, 3, 4]);
    expect(torch.arange(10).slice(0, 1, 8, 3).toArray()).toEqual([1, 4, 7]);
    expect(torch.arange(10).slice(0, -3).toArray()).toEqual([7, 8, 9]);
    expect(x.select(1, 2).toArray()).toEqual([[8, 9, 10, 11], [20, 21, 22, 23]]);
    expect(torch.arange(5).indexSelect(0, torch.tensor([4n, 0n])).toArray()).toEqual([4, 0]);
    expect(torch.tensor([[1], [2]]).expand(2, 3).toArray()).toEqual([[1, 1, 1], [2, 2, 2]]);
    expect(() => torch.cat([a, torch.ones(3, 3)])).toThrow(TorchError);
  });
});

describe('Tensor: math', () => {
  test('arithmetic with tensors, scalars and alpha', () => {
    const a = torch.tensor([1, 2, 3], { dtype: 'float32' });
    const b = torch.tensor([10, 20, 30], { dtype: 'float32' });
    expect(a.add(b).toArray()).toEqual([11, 22, 33]);
    // alpha is keyword-only for a Tensor other, as in PyTorch (`torch.add(a, b, alpha=2)`).
    expect(a.add(b, { alpha: 2 }).toArray()).toEqual([21, 42, 63]);
    expect(() => a.add(b, 2 as any)).toThrow(/takes 1 positional arguments but 2 were given/);
    expect(a.sub(1).toArray()).toEqual([0, 1, 2]);
    expect(b.sub(a, { alpha: 10 }).toArray()).toEqual([0, 0, 0]);
    expect(a.mul(b).toArray()).toEqual([10, 40, 90]);
    expect(b.div(a).toArray()).toEqual([10, 10, 10]);
    expect(a.neg().toArray()).toEqual([-1, -2, -3]);
    expect(a.pow(2).toArray()).toEqual([1, 4, 9]);
    expect(torch.tensor([4, 9], { dtype: 'float32' }).sqrt().toArray()).toEqual([2, 3]);
    expect(torch.tensor([0], { dtype: 'float32' }).exp().item()).toBe(1);
    expect(torch.tensor([1], { dtype: 'float32' }).log().item()).toBe(0);
    expect(torch.tensor([-2, 3]).abs().toArray()).toEqual([2, 3]);
    expect(torch.tensor([-2, 0.5, 3]).clamp(0, 1).toArray()).toEqual([0, 0.5, 1]);
    expect(torch.tensor([-2, 0.5, 3]).clamp(null, 1).toArray()).toEqual([-2, 0.5, 1]);
    expect(torch.tensor([[1, 2], [3, 4]]).matmul(torch.tensor([[1], [1]])).toArray()).toEqual([[3], [7]]);
  });
  test('reductions with dims and keepdim', () => {
    const m = torch.tensor([[1, 5, 3], [4, 2, 6]], { dtype: 'float32' });
    expect(m.sum().item()).toBe(21);
    expect(m.sum(0).toArray()).toEqual([5, 7, 9]);
    expect(m.sum(1, true).shape).toEqual([2, 1]);
    expect(m.sum([0, 1]).item()).toBe(21);
    expect(m.mean().item()).toBe(3.5);
    expect(m.mean(1).toArray()).toEqual([3, 4]);
    expect(m.max().item()).toBe(6);
    const [v, i] = m.max(1);
    expect(v.toArray()).toEqual([5, 6]);
    expect(i.toArray()).toEqual([1, 2]);
    expect(m.min().item()).toBe(1);
    expect(m.min(0)[1].toArray()).toEqual([0, 1, 0]);
    expect(m.argmax().item()).toBe(5);
    expect(m.argmax(1).toArray()).toEqual([1, 2]);
    expect(m.argmax(1, true).shape).toEqual([2, 1]);
  });
  test('comparisons give bool tensors', () => {
    const a = torch.tensor([1, 2, 3]);
    expect(a.eq(2).toArray()).toEqual([false, true, false]);
    expect(a.ne(2).toArray()).toEqual([true, false, true]);
    expect(a.gt(1).toArray()).toEqual([false, true, true]);
    expect(a.lt(torch.tensor([2, 2, 2])).toArray()).toEqual([true, false, false]);
    expect(a.ge(2).dtype).toBe('bool');
    expect(a.le(2).sum().item()).toBe(2);
  });
  test('in-place forms return the same tensor and change it', () => {
    const p = torch.ones(3);
    expect(p.add_(1)).toBe(p);
    expect(p.toArray()).toEqual([2, 2, 2]);
    p.mul_(3).sub_(torch.ones(3), { alpha: 2 }).div_(2);
    expect(p.toArray()).toEqual([2, 2, 2]);
    p.addcmul_(torch.full([3], 2, { dtype: 'float32' }), torch.full([3], 3, { dtype: 'float32' }), { value: 0.5 });
    expect(p.toArray()).toEqual([5, 5, 5]);
    p.addcdiv_(torch.full([3], 2, { dtype: 'float32' }), torch.full([3], 4, { dtype: 'float32' }), { value: 2 });
    expect(p.toArray()).toEqual([6, 6, 6]);
    p.fill_(7);
    expect(p.toArray()).toEqual([7, 7, 7]);
    p.copy_(torch.tensor([1, 2, 3]));
    expect(p.toArray()).toEqual([1, 2, 3]);
    p.zero_();
    expect(p.sum().item()).toBe(0);
    p.uniform_(2, 3);
    expect(p.min().item()).toBeGreaterThanOrEqual(2);
    p.normal_(0, 1);
    expect(p.isnan().sum().item()).toBe(0);
  });
  test('conversion', () => {
    const a = torch.tensor([1.7, -1.2]);
    expect(a.to('int64').toArray()).toEqual([1, -1]);
    expect(a.to({ dtype: 'float64' }).dtype).toBe('float64');
    expect(a.cpu().device).toBe('cpu');
    const c = a.clone();
    c.add_(1);
    expect(a.toArray()).not.toEqual(c.toArray());
    expect(a.double().dtype).toBe('float64');
    expect(a.long().dtype).toBe('int64');
  });
});

describe('Tensor: memory formats', () => {
  test('contiguous / isContiguous / to with channels_last keep values and change strides', () => {
    torch.tidy(() => {
      const x = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).float();
      expect(x.isContiguous()).toBe(true);
      expect(x.isContiguous('channels_last')).toBe(false);
      const cl = x.contiguous('channels_last');
      expect(cl.isContiguous('channels_last')).toBe(true);
      expect(cl.stride()).toEqual([60, 1, 15, 3]); // N, H, W, C in memory
      expect(cl.toArray()).toEqual(x.toArray());
      const back = cl.contiguous();
      expect(back.stride()).toEqual([60, 20, 5, 1]);
      const viaTo = x.to({ memoryFormat: 'channels_last' });
      expect(viaTo.stride()).toEqual([60, 1, 15, 3]);
      // preserve_format (to's default) keeps the layout it is given.
      expect(cl.to({ dtype: 'float64', memoryFormat: 'preserve_format' }).stride()).toEqual([60, 1, 15, 3]);
      expect(cl.to('float64').stride()).toEqual([60, 1, 15, 3]);
    });
  });

  test('bad memory formats name the argument and the value', () => {
    const x = torch.zeros(1, 2, 3, 3);
    expect(() => x.contiguous('nhwc' as any)).toThrow(
      "Expected one of 'contiguous_format', 'channels_last', 'channels_last_3d', 'preserve_format' for memoryFormat but received 'nhwc'",
    );
    expect(() => x.contiguous('preserve_format' as any)).toThrow(/contiguous: memoryFormat 'preserve_format' is not a layout/);
    expect(() => x.isContiguous('preserve_format' as any)).toThrow(/isContiguous: memoryFormat 'preserve_format' is not a layout/);
    expect(() => x.to({ memoryFormat: 7 as any })).toThrow(/for memoryFormat but received 7/);
    expect(() => torch.zeros(3, 4).contiguous('channels_last')).toThrow(/required rank 4 tensor to use channels_last format/);
  });
});
