// PyTorch's indexing: x.index(...) is x[...], x.indexPut_(indices, v) is x[indices] = v.
// Expected values are what torch 1.13 printed for the same expressions (in comments).
import * as torch from '../lib';
import { Slice } from '../lib';

const grid = () => torch.arange(0, 12).view(3, 4);
const cube = () => torch.arange(0, 24).view(2, 3, 4);

describe('indexing: reads', () => {
  test('integers, slices, None and the ellipsis give views, as in PyTorch', () => {
    const x = grid();
    expect(x.index(0).toArray()).toEqual([0, 1, 2, 3]); // x[0]
    expect(x.index(':', '1:3').toArray()).toEqual([[1, 2], [5, 6], [9, 10]]); // x[:, 1:3]
    expect(x.index('...', null).shape).toEqual([3, 4, 1]); // x[..., None]
    expect(x.index('::2').toArray()).toEqual([[0, 1, 2, 3], [8, 9, 10, 11]]); // x[::2]
    expect(x.index(-1, new Slice(null, null, 2)).toArray()).toEqual([8, 10]); // x[-1, ::2]
    const t = cube();
    expect(t.index('...', 1).toArray()).toEqual([[1, 5, 9], [13, 17, 21]]); // t[..., 1]
    expect(t.index(':', null, 1).toArray()).toEqual([[[4, 5, 6, 7]], [[16, 17, 18, 19]]]); // t[:, None, 1]
    // A basic index is a view: writing through it changes x.
    const v = x.index(1, '1:3');
    v.fill_(-1);
    expect(x.index(1).toArray()).toEqual([4, -1, -1, 7]);
  });

  test('integer lists and tensors, boolean masks, and both mixed with slices', () => {
    const x = grid();
    expect(x.index(x.gt(8)).toArray()).toEqual([9, 10, 11]); // x[x > 8]
    expect(x.index([0, 2]).toArray()).toEqual([[0, 1, 2, 3], [8, 9, 10, 11]]); // x[[0, 2]]
    expect(x.index(':', [3, 0]).toArray()).toEqual([[3, 0], [7, 4], [11, 8]]); // x[:, [3, 0]]
    const t = cube();
    expect(t.index(1, ':', [0, 3]).toArray()).toEqual([[12, 15], [16, 19], [20, 23]]); // t[1, :, [0, 3]]
    expect(t.index(t.sum(-1).gt(20)).toArray()).toEqual([[4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22, 23]]);
    expect(t.index([0, 1], [1, 2]).toArray()).toEqual([[4, 5, 6, 7], [20, 21, 22, 23]]); // t[[0, 1], [1, 2]]
    expect(t.index([0, 1], '1:3', [0, 1]).toArray()).toEqual([[4, 8], [17, 21]]); // t[[0, 1], 1:3, [0, 1]]
    expect(t.index(torch.tensor([1n])).shape).toEqual([1, 3, 4]);
  });

  test('gradients flow through indexing', () => {
    const w = torch.ones([3]).requiresGrad_();
    w.index([0, 2]).sum().backward();
    expect(w.grad!.toArray()).toEqual([1, 0, 1]);
  });

  test('T, mT, tolist and torch.device', () => {
    expect(grid().T.shape).toEqual([4, 3]);
    expect(cube().T.shape).toEqual([4, 3, 2]);
    expect(cube().mT.shape).toEqual([2, 4, 3]);
    expect(() => torch.ones([3]).mT).toThrow(/mT: expected a tensor of at least 2 dims but this has 1/);
    expect(grid().tolist()).toEqual(grid().toArray());
    expect([torch.device('cuda', 1), torch.device('cpu'), torch.device('cuda:0')]).toEqual(['cuda:1', 'cpu', 'cuda:0']);
    expect(() => torch.device('tpu')).toThrow(/Expected 'cpu', 'cuda' or 'cuda:N' for type but received 'tpu'/);
  });
});

describe('indexing: writes', () => {
  test('indexPut_ with masks, lists, slices and numbers, as x[...] = v', () => {
    const y = torch.zeros([2, 3]);
    y.indexPut_([y.eq(0)], 5);
    expect(y.toArray()).toEqual([[5, 5, 5], [5, 5, 5]]);
    const z = torch.zeros([2, 3]);
    z.indexPut_([[0, 1], [2, 0]], torch.tensor([5, 6])); // z[[0, 1], [2, 0]] = tensor([5., 6.])
    expect(z.toArray()).toEqual([[0, 0, 5], [6, 0, 0]]);
    z.indexPut_([':', 1], torch.tensor([7, 8])); // broadcast into a column... of length 2
    z.indexPut_([0, 0], 1);
    expect(z.toArray()).toEqual([[1, 7, 5], [6, 8, 0]]);
    const a = torch.zeros([3]);
    a.indexPut_([torch.tensor([0n, 0n, 2n])], torch.tensor([1, 2, 3]), true); // index_put_(..., accumulate=True)
    expect(a.toArray()).toEqual([3, 0, 3]);
    const i = torch.zeros([2], { dtype: 'int64' });
    i.indexPut_([1], 7);
    expect(i.toArray()).toEqual([0, 7]);
  });
});

describe('indexing: throw cases', () => {
  test('bad indices name the index and the value, with PyTorch\'s IndexError messages', () => {
    const x = grid();
    expect(() => x.index(5)).toThrow('index: index 5 is out of bounds for dimension 0 with size 3');
    expect(() => x.index(0, 0, 0)).toThrow('index: too many indices for tensor of dimension 2 (3 given)');
    expect(() => x.index('...', '...')).toThrow(/only have a single ellipsis/);
    expect(() => x.index('1:x')).toThrow(/expected a slice like '1:3', '::2' or ':', or '...', for indices\[0\] but received '1:x'/);
    expect(() => x.index(1.5)).toThrow(/expected an integer for indices\[0\] but received 1.5/);
    expect(() => x.index({} as any)).toThrow(/for indices\[0\] but received an object/);
    expect(() => x.index([0.5] as any)).toThrow(/expected integers in the list at indices\[0\]/);
    expect(() => new Slice(0, 3, 0)).toThrow(/step must be greater than zero but is 0/);
    expect(() => x.indexPut_(0 as any, 1)).toThrow(/expected an array of indices for indices but received 0/);
    expect(() => x.indexPut_([0], 'a' as any)).toThrow(/expected a Tensor or a number for values but received 'a'/);
    try {
      x.index(5);
    } catch (e) {
      expect([(e as Error).name, (e as { code?: string }).code]).toEqual(['IndexError', 'ERR_OUT_OF_RANGE']);
    }
  });
});
