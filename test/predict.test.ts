import { PNG } from 'pngjs';
import * as torch from '../lib';
import { predict, nn, datasets, noGrad, F } from '../lib';

function pngOf(pixels: Uint8Array, width = 28, height = 28, colour: [number, number, number] = [1, 1, 1]): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    const v = pixels[i % pixels.length];
    png.data[4 * i] = v * colour[0];
    png.data[4 * i + 1] = v * colour[1];
    png.data[4 * i + 2] = v * colour[2];
    png.data[4 * i + 3] = 255;
  }
  return PNG.sync.write(png);
}

torch.manualSeed(0);
const model = new nn.CNN();
const testSet = new datasets.MNIST({ train: false, limit: 8 });
const bytes = testSet.data.toTypedArray() as Uint8Array; // [8, 28, 28]
const img = (i: number) => bytes.slice(784 * i, 784 * (i + 1));

describe('predict: throw cases', () => {
  test('bad inputs get clear errors naming the problem', () => {
    expect(() => predict(model, new Float32Array(783))).toThrow(/Expected 784 pixels \(28x28\) for image but received 783/);
    const nan = new Float32Array(784);
    nan[5] = NaN;
    expect(() => predict(model, nan)).toThrow(/pixel values in 0\.\.255 or 0\.\.1 for image but received NaN at index 5/);
    const neg = new Float32Array(784);
    neg[0] = -1;
    expect(() => predict(model, neg)).toThrow(/received -1 at index 0/);
    expect(() => predict(model, pngOf(img(0), 32, 32))).toThrow(/Expected a 28x28 image for image but received 32x32/);
    const corrupt = pngOf(img(0)).subarray(0, 60);
    expect(() => predict(model, corrupt)).toThrow(/Could not decode image as PNG/);
    expect(() => predict(model, 'x' as any)).toThrow(TypeError);
    expect(() => predict({} as any, img(0))).toThrow(/Expected a Module for model/);
    expect(() => predict(model, [img(0), new Uint8Array(10)])).toThrow(/images\[1\]/);
  });
});

describe('predict', () => {
  test('one image, a batch and the model agree; probabilities sum to 1', () => {
    const one = predict(model, img(0));
    const batch = predict(model, [img(0), img(1), img(2)]);
    expect(batch).toHaveLength(3);
    expect(batch[0].class).toBe(one.class);
    one.probabilities.forEach((p, i) => expect(p).toBeCloseTo(batch[0].probabilities[i], 5));
    expect(one.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const logits = noGrad(() => model.eval().call(testSet.images.narrow(0, 0, 3)));
    model.train();
    const ref = F.softmax(logits, 1).toArray() as number[][];
    batch.forEach((b, i) => {
      expect(b.class).toBe(ref[i].indexOf(Math.max(...ref[i])));
      b.probabilities.forEach((p, c) => expect(p).toBeCloseTo(ref[i][c], 5));
    });
    expect(model.training).toBe(true);
  });
  test('exact: true gives bit-identical results to the model on one image', () => {
    const x = testSet.images.narrow(0, 4, 1);
    const ref = noGrad(() => F.softmax(model.eval().call(x), 1)).toArray() as number[][];
    model.train();
    expect(predict(model, img(4), { exact: true }).probabilities).toEqual(ref[0].map(Math.fround));
  });
  test('0..255, 0..1, nested arrays, PNG and Tensor inputs give the same answer', () => {
    const ref = predict(model, img(3));
    const floats = Float32Array.from(img(3), (v) => v / 255);
    const nested = Array.from({ length: 28 }, (_, r) => Array.from(img(3).subarray(28 * r, 28 * r + 28)));
    for (const input of [floats, Array.from(img(3)), nested, pngOf(img(3)), testSet.images.select(0, 3)]) {
      const p = predict(model, input as any);
      expect(p.class).toBe(ref.class);
      p.probabilities.forEach((v, c) => expect(v).toBeCloseTo(ref.probabilities[c], 5));
    }
  });
  test('a trained model recognises digits', async () => {
    const r = await torch.train({ seed: 0, limit: 2000, epochs: 1, threads: 1, testLimit: 200 });
    const preds = predict(r.model, Array.from({ length: 8 }, (_, i) => img(i)));
    const labels = testSet.targets.toArray() as number[];
    const correct = preds.filter((p, i) => p.class === labels[i]).length;
    expect(correct).toBeGreaterThanOrEqual(6);
  }, 60000);
});
