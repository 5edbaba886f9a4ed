import { undisposed } from './helpers';
/**
 * summary(): the seed CNN's per-layer parameter counts and feature-map sizes, the
 * misfit error, and featureMapSize().
 */
import * as torch from '../lib';
import { Tensor, TorchError } from '../lib';
import * as nn from '../lib/nn';
import { featureMapSize, summary } from '../lib/nn';

/** The seed's CNN with the classifier sized for 28x28 inputs, as the misfit case needs. */
function seedCnn(): nn.CNN {
  torch.manualSeed(0);
  return new nn.CNN();
}

describe('nn.summary: throw cases', () => {
  test('a model whose shapes do not fit fails naming the layer and both sizes', () => {
    const model = seedCnn();
    let err: Error | undefined;
    try {
      summary(model, [1, 1, 32, 32]);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(TorchError);
    expect(err!.message).toBe(
      'summary of CNN on input [1, 1, 32, 32] failed at fc.0 (Linear(in_features=3136, out_features=100, bias=True)): ' +
        'linear: input [1, 4096] has 4096 features in its last dim but weight [100, 3136] expects 3136 ' +
        '(last output before the failure: layer2 -> [1, 64, 8, 8])',
    );
    expect((err as nn.ModuleError).modulePath).toBe('fc.0');
    // the model is left as it was: training mode, no hooks
    expect(model.modules().every((m) => m.training)).toBe(true);
    expect(model.modules().every((m) => m._forwardHooks.size === 0 && m._forwardPreHooks.size === 0)).toBe(true);
  });

  test('bad arguments', () => {
    expect(() => summary({} as any, [1, 1, 28, 28])).toThrow(/Expected a Module for model but received an object/);
    expect(() => summary(seedCnn(), [] as any)).toThrow(/Expected an input shape or a list of input shapes for inputShape/);
    expect(() => summary(seedCnn(), [1, -1, 28, 28])).toThrow(/Expected a non-negative integer for inputShape\[0\]\[1\] but received -1/);
    expect(() => summary(seedCnn(), [1, 1, 28, 28], { dtypes: ['quarter' as any] })).toThrow(/for dtypes\[0\] but received 'quarter'/);
  });
});

describe('nn.summary', () => {
  test('the seed CNN: 320, 18,496, 313,700 and 1,010 parameters, 333,526 in all, 28 -> 14 -> 7', () => {
    const model = seedCnn();
    model.layer1.at(0).eval(); // a mixed mode must come back exactly as it was
    const s = summary(model, [1, 1, 28, 28]);
    expect(s.model).toBe('CNN');
    expect(s.totalParams).toBe(333526);
    expect(s.trainableParams).toBe(333526);
    expect(s.nonTrainableParams).toBe(0);
    expect(s.paramsBytes).toBe(333526 * 4);
    expect(s.inputShape).toEqual([1, 1, 28, 28]);
    expect(s.outputShape).toEqual([1, 10]);
    const rows = s.layers.map((l) => [l.name, l.type, l.depth, l.index, l.outputShape, l.params]);
    expect(rows).toEqual([
      ['layer1', 'Sequential', 1, 1, [1, 32, 14, 14], 0],
      ['layer1.0', 'Conv2d', 2, 1, [1, 32, 28, 28], 320],
      ['layer1.1', 'ReLU', 2, 2, [1, 32, 28, 28], 0],
      ['layer1.2', 'MaxPool2d', 2, 3, [1, 32, 14, 14], 0],
      ['layer2', 'Sequential', 1, 2, [1, 64, 7, 7], 0],
      ['layer2.0', 'Conv2d', 2, 4, [1, 64, 14, 14], 18496],
      ['layer2.1', 'ReLU', 2, 5, [1, 64, 14, 14], 0],
      ['layer2.2', 'MaxPool2d', 2, 6, [1, 64, 7, 7], 0],
      ['fc', 'Sequential', 1, 3, [1, 10], 0],
      ['fc.0', 'Linear', 2, 7, [1, 100], 313700],
      ['fc.1', 'ReLU', 2, 8, [1, 100], 0],
      ['fc.2', 'Linear', 2, 9, [1, 10], 1010],
    ]);
    expect(s.layers.find((l) => l.name === 'fc.0')!.inputShape).toEqual([1, 3136]);
    expect(s.layers.filter((l) => l.leaf).map((l) => l.name)).toHaveLength(9);
    expect(s.layers.every((l) => l.trainable)).toBe(true);
    // modes restored exactly
    expect(model.training).toBe(true);
    expect(model.layer1.at(0).training).toBe(false);
    expect(model.layer1.at(1).training).toBe(true);
  });

  test('toString() is a torchinfo-like table', () => {
    const text = summary(seedCnn(), [1, 1, 28, 28]).toString();
    expect(text).toContain('Total params: 333,526');
    expect(text).toContain('Trainable params: 333,526');
    expect(text).toContain('Non-trainable params: 0');
    expect(text).toContain('Params size (MB): 1.33');
    const lines = text.split('\n');
    expect(lines[1]).toMatch(/^Layer \(type \(var_name\):depth-idx\)\s+Output Shape\s+Param #$/);
    expect(lines).toContainEqual(expect.stringMatching(/^CNN\s+\[1, 10\]\s+--$/));
    expect(lines).toContainEqual(expect.stringMatching(/^├─Sequential \(layer1\): 1-1\s+\[1, 32, 14, 14\]\s+--$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {4}└─Conv2d \(0\): 2-1\s+\[1, 32, 28, 28\]\s+320$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {4}└─Conv2d \(0\): 2-4\s+\[1, 64, 14, 14\]\s+18,496$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {4}└─Linear \(0\): 2-7\s+\[1, 100\]\s+313,700$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {4}└─Linear \(2\): 2-9\s+\[1, 10\]\s+1,010$/));
  });

  test('frozen parameters count as non-trainable; several inputs; no tensors leak', async () => {
    const model = seedCnn();
    model.layer1.requiresGrad_(false);
    const s = summary(model, [2, 1, 28, 28]);
    expect(s.trainableParams).toBe(333526 - 320);
    expect(s.nonTrainableParams).toBe(320);
    expect(s.layers[1].trainable).toBe(false);
    expect(s.outputShape).toEqual([2, 10]);

    class Pair extends nn.Module<[Tensor, Tensor], Tensor[]> {
      readonly lin = this.registerModule('lin', new nn.Linear(3, 2));
      forward(a: Tensor, b: Tensor): Tensor[] {
        return [this.lin.call(a), b];
      }
    }
    const before = undisposed();
    const p = summary(new Pair(), [[4, 3], [5]], { dtypes: ['float32', 'int64'] });
    expect(p.outputShape).toEqual([[4, 2], [5]]);
    expect(p.inputShape).toEqual([[4, 3], [5]]);
    expect(p.toString()).toMatch(/^Pair\s+\[4, 2\], \[5\]\s+--$/m);
    expect(undisposed() - before).toBe(2); // the Linear's weight and bias
  });

  test('featureMapSize uses the seed formula through F.convOutputSize', () => {
    const model = seedCnn();
    const conv1 = model.layer1.at<nn.Conv2d>(0);
    const pool1 = model.layer1.at<nn.MaxPool2d>(2);
    let hw = featureMapSize([28, 28], conv1);
    expect(hw).toEqual([28, 28]);
    hw = featureMapSize(hw, pool1);
    expect(hw).toEqual([14, 14]);
    hw = featureMapSize(featureMapSize(hw, model.layer2.at<nn.Conv2d>(0)), model.layer2.at<nn.MaxPool2d>(2));
    expect(hw).toEqual([7, 7]);
    expect(7 * 7 * 64).toBe(model.fc.at<nn.Linear>(0).inFeatures);
    // the misfit: 32 -> 16 -> 8, so 64 * 8 * 8 = 4096 features, not 3136
    expect(featureMapSize(featureMapSize(32, 2, { stride: 2 }), 2, { stride: 2 })).toEqual([8, 8]);
    // without padding a 3x3 kernel shrinks the map
    expect(featureMapSize(28, 3)).toEqual([26, 26]);
    expect(featureMapSize([5, 7], [3, 3], { stride: 2 })).toEqual([2, 3]);
    expect(featureMapSize(6, new nn.MaxPool2d(3, { stride: 2, padding: 1, ceilMode: true }))).toEqual([4, 4]);
    expect(featureMapSize(9, new nn.Conv2d(1, 1, 4, { padding: 'same' }))).toEqual([9, 9]);
    expect(featureMapSize(9, new nn.AvgPool2d(2))).toEqual([4, 4]);
  });
});
