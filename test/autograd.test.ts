import * as torch from '../lib';
import { autograd, noGrad, enableGrad, isGradEnabled } from '../lib';

describe('autograd: throw cases', () => {
  test('backward on a non-scalar without a gradient is a TorchError', () => {
    const x = torch.ones([3], { requiresGrad: true });
    expect(() => x.mul(2).backward()).toThrow(/grad can be implicitly created only for scalar outputs/);
  });
  test('grad mode is restored when the body throws', () => {
    expect(isGradEnabled()).toBe(true);
    expect(() => noGrad(() => { throw new Error('boom'); })).toThrow('boom');
    expect(isGradEnabled()).toBe(true);
    noGrad(() => {
      expect(() => enableGrad(() => { throw new Error('inner'); })).toThrow('inner');
      expect(isGradEnabled()).toBe(false);
    });
    expect(isGradEnabled()).toBe(true);
  });
  test('async bodies are refused and leave grad mode as it was', () => {
    expect(() => noGrad((async () => 1) as any)).toThrow(/synchronous function/);
    expect(isGradEnabled()).toBe(true);
    expect(() => noGrad(42 as any)).toThrow(/Expected a function for fn/);
  });
  test('inferenceMode leaves on throw and refuses async bodies', () => {
    expect(() => torch.inferenceMode(() => { throw new Error('inf'); })).toThrow('inf');
    expect(torch.isInferenceMode()).toBe(false);
    expect(isGradEnabled()).toBe(true);
    expect(() => torch.inferenceMode((async () => 1) as any)).toThrow(/synchronous function/);
    expect(torch.isInferenceMode()).toBe(false);
  });
  test('autograd.grad validates its inputs', () => {
    expect(() => autograd.grad([1 as any], [])).toThrow(/Expected a Tensor for outputs\[0\]/);
  });
});

describe('autograd', () => {
  test('backward accumulates into .grad, and .grad can be reset to null', () => {
    const x = torch.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
    expect(x.isLeaf).toBe(true);
    x.pow(2).sum().backward();
    expect(x.grad!.toArray()).toEqual([2, 4, 6]);
    x.pow(2).sum().backward();
    expect(x.grad!.toArray()).toEqual([4, 8, 12]);
    x.grad = null;
    expect(x.grad).toBeNull();
    x.mul(3).backward(torch.ones(3));
    expect(x.grad!.toArray()).toEqual([3, 3, 3]);
  });
  test('noGrad stops recording; detach cuts the graph', () => {
    const x = torch.ones([2], { requiresGrad: true });
    const y = noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(isGradEnabled()).toBe(true);
    expect(x.mul(2).requiresGrad).toBe(true);
    expect(x.mul(2).detach().requiresGrad).toBe(false);
    expect(noGrad(() => enableGrad(() => x.mul(2)).requiresGrad)).toBe(true);
  });
  test('autograd.grad returns gradients without touching .grad', () => {
    const x = torch.tensor([1, 2], { dtype: 'float32', requiresGrad: true });
    const [g] = autograd.grad(x.pow(3).sum(), x);
    expect(g!.toArray()).toEqual([3, 12]);
    expect(x.grad).toBeNull();
    const z = torch.ones([1], { requiresGrad: true });
    expect(autograd.grad(x.sum(), [x, z], { allowUnused: true })[1]).toBeNull();
  });
  test('inferenceMode records nothing and nests', () => {
    const w = torch.ones([2], { requiresGrad: true });
    const y = torch.inferenceMode(() => {
      expect(torch.isInferenceMode()).toBe(true);
      expect(isGradEnabled()).toBe(false);
      torch.inferenceMode(() => undefined);
      expect(torch.isInferenceMode()).toBe(true);
      return w.mul(3);
    });
    expect(torch.isInferenceMode()).toBe(false);
    expect(y.requiresGrad).toBe(false);
    expect(y.toArray()).toEqual([3, 3]);
  });
  test('requiresGrad_ and retainGraph', () => {
    const w = torch.ones(2).requiresGrad_();
    expect(w.requiresGrad).toBe(true);
    const y = w.mul(w).sum();
    y.backward(null, { retainGraph: true });
    y.backward();
    expect(w.grad!.toArray()).toEqual([4, 4]);
  });
});
