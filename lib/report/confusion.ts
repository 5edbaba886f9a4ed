/**
 * confusionMatrix(): which classes a classifier confuses with which, over a whole
 * test set, and the indices of the samples it gets wrong.
 */
import { expected, outOfRangeError, checkKeys } from '../errors';
import { inferenceMode } from '../autograd';
import { Module } from '../nn/module';
import { softmax } from '../nn/functional';
import { checkInt, DeviceType, Tensor } from '../tensor';
import { forEachBatch } from '../data/batches';
import type { Dataset } from '../data/dataset';
import type { TensorPairDataset } from '../train';

export interface Misclassified {
  /** Index of the sample in the dataset. */
  index: number;
  /** The true class. */
  label: number;
  /** The class the model predicted (argmax of its output). */
  predicted: number;
  /** Softmax probability the model gave its prediction. */
  confidence: number;
}

export interface ClassAccuracy {
  label: number;
  /** Samples of this class. */
  count: number;
  /** Of those, predicted correctly. */
  correct: number;
  /** correct / count (NaN when the class has no samples). */
  accuracy: number;
}

export interface ConfusionMatrix {
  numClasses: number;
  /** `matrix[trueClass][predictedClass]`: sample counts. */
  matrix: number[][];
  total: number;
  /** Samples on the diagonal (the trace). */
  correct: number;
  /** correct / total, in float32 as evaluate() gives it. */
  accuracy: number;
  /** Per true class: its count, correct predictions and accuracy (recall). */
  perClass: ClassAccuracy[];
  /** Every misclassified sample in dataset order. */
  misclassified: Misclassified[];
}

export interface ConfusionMatrixOptions {
  /** Default 1000. */
  batchSize?: number;
  /** Default: the device of the model's first parameter. */
  device?: DeviceType;
  /** Default: the width of the model's output. */
  numClasses?: number;
}

/**
 * Counts true against predicted classes over `dataset` (samples `[input, label]`),
 * batched, in eval mode in inference mode (the model's mode is restored). It draws nothing
 * from the global random generator. The trace equals `evaluate()`'s correct count.
 * @example
 * const cm = confusionMatrix(model, new datasets.MNIST({ train: false }));
 * cm.matrix[4][9]; // fours taken for nines
 */
export function confusionMatrix(model: Module, dataset: TensorPairDataset, options: ConfusionMatrixOptions = {}): ConfusionMatrix {
  if (!(model instanceof Module)) expected('a Module', 'model', model);
  if (dataset === null || typeof dataset !== 'object' || !Number.isInteger(dataset.length)) expected('a dataset of [input, label] samples', 'dataset', dataset);
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  checkKeys(options, ['batchSize', 'device', 'numClasses'], 'confusionMatrix');
  const batchSize = checkInt(options.batchSize ?? 1000, 'batchSize', 1);
  let numClasses = options.numClasses === undefined ? undefined : checkInt(options.numClasses, 'numClasses', 1);
  const device = options.device ?? (model.parameters()[0]?.device as DeviceType | undefined) ?? 'cpu';
  if (dataset.length === 0) throw outOfRangeError('confusionMatrix: the dataset is empty');

  let matrix: number[][] = [];
  const misclassified: Misclassified[] = [];
  let offset = 0;
  const count = (x: Tensor, y: Tensor) => {
    if (device !== 'cpu') {
      x = x.to(device);
      y = y.to(device);
    }
    const out = model.call(x);
    if (out.dim() !== 2) throw outOfRangeError(`confusionMatrix: the model's output should be [batch, classes] but is [${out.shape}]`);
    if (numClasses === undefined) numClasses = out.size(1);
    if (matrix.length === 0) matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses!).fill(0));
    // argmax of the logits, exactly as evaluate() decides; softmax only for the confidence.
    const pred = out.argmax(1);
    const conf = softmax(out, 1).gather(1, pred.unsqueeze(1)).squeeze(1);
    const p = pred.to('int32').cpu().toTypedArray() as Int32Array;
    const t = y.to('int32').cpu().toTypedArray() as Int32Array;
    const c = conf.to('float32').cpu().toTypedArray() as Float32Array;
    for (let i = 0; i < t.length; i++) {
      const label = t[i];
      if (!(label >= 0 && label < numClasses)) {
        throw outOfRangeError(`confusionMatrix: sample ${offset + i} has label ${label}, outside the model's ${numClasses} classes`);
      }
      if (p[i] >= numClasses) throw outOfRangeError(`confusionMatrix: predicted class ${p[i]} is outside ${numClasses} classes`);
      matrix[label][p[i]]++;
      if (p[i] !== label) misclassified.push({ index: offset + i, label, predicted: p[i], confidence: c[i] });
    }
    offset += t.length;
  };

  const wasTraining = model.training;
  model.eval();
  try {
    inferenceMode(() => forEachBatch(dataset as Dataset<Tensor[]>, batchSize, ([x, y]) => count(x, y)));
  } finally {
    model.train(wasTraining);
  }

  const k = numClasses!;
  const perClass: ClassAccuracy[] = [];
  let correct = 0;
  for (let c = 0; c < k; c++) {
    const row = matrix[c].reduce((a, b) => a + b, 0);
    correct += matrix[c][c];
    perClass.push({ label: c, count: row, correct: matrix[c][c], accuracy: row ? matrix[c][c] / row : NaN });
  }
  return { numClasses: k, matrix, total: offset, correct, accuracy: Math.fround(correct / offset), perClass, misclassified };
}
