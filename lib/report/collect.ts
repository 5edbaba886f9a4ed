/**
 * collectReportData(): computes everything the training report shows from a trained
 * model and its test set: confusion matrix, misclassified images, first-layer kernels,
 * feature maps of a few digits and the model summary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkKeys, expected } from '../errors';
import { tidy } from '../memory';
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { Linear } from '../nn/linear';
import { summary } from '../nn/summary';
import { featureMaps, firstLayerKernels, FeatureMap } from '../visualize';
import { DeviceType, Tensor } from '../tensor';
import { version as libtorchVersion } from '../device';
import { packageRoot } from '../native';
import type { EpochRecord, TensorPairDataset } from '../train';
import { confusionMatrix, ConfusionMatrix } from './confusion';
import type { BatchLoss, ReportData, ReportDigitMaps, ReportLayer, ReportMisclassified, ReportSettings, ReportSummary } from './types';

export interface ReportOptions extends ReportSettings {
  /** Page title (default "torchnode training report"). */
  title?: string;
  /** Input shape for the summary table (default [1, 1, 28, 28]). */
  inputShape?: number[];
  /** Misclassified images to draw (default 60). */
  maxMisclassified?: number;
  /** Test digits whose feature maps are drawn (default 4, each a different digit). */
  featureMapDigits?: number;
  /** Layers whose feature maps are drawn (default layer1 and layer2 when the model has them, else every 4-D output of its children). */
  featureMapLayers?: string[];
}

/** The keys of ReportSettings: ReportOptions passes them through to the settings table. */
const SETTINGS_KEYS = [
  'model', 'epochs', 'batchSize', 'lr', 'optimizer', 'seed', 'threads', 'device', 'trainSamples', 'testSamples',
  'dataRoot', 'resumedFrom', 'savedTo', 'libtorchVersion', 'torchnodeVersion', 'seconds', 'command',
] as const;
const REPORT_OPTIONS = ['title', 'inputShape', 'maxMisclassified', 'featureMapDigits', 'featureMapLayers'];

export interface CollectReportInput {
  /** The trained model (any device; its training mode is restored). */
  model: Module;
  history: EpochRecord[];
  /** Every batch's loss, from onBatch (may be empty). */
  batchLosses?: BatchLoss[];
  /** The test accuracy train() returned (default: computed from the confusion matrix). */
  accuracy?: number | null;
  /** Test samples `[image, label]` (e.g. `new MNIST({ train: false })`); null skips the test sections. */
  testData?: TensorPairDataset | null;
  options?: ReportOptions;
}

let ownVersion: string | undefined;
function torchnodeVersion(): string | undefined {
  if (ownVersion === undefined) {
    try {
      ownVersion = String(JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version);
    } catch {
      ownVersion = '';
    }
  }
  return ownVersion || undefined;
}

/** [height, width] of an image tensor ([1, H, W], [H, W], or H*W with H = W), or null. */
function imageSize(x: Tensor): [number, number] | null {
  const s = x.shape;
  if (s.length >= 2 && s.slice(0, -2).every((d) => d === 1)) return [s[s.length - 2], s[s.length - 1]];
  const n = x.numel();
  const side = Math.round(Math.sqrt(n));
  return s.length <= 1 && side * side === n ? [side, side] : null;
}

/** Sample `index`'s image as values in [0, 1] (rescaled when outside), with its size, or null for non-images. */
function imageOf(dataset: TensorPairDataset, index: number): { pixels: Float32Array; width: number; height: number } | null {
  return tidy(() => {
    const x = dataset.get(index)[0];
    if (!(x instanceof Tensor)) return null;
    const hw = imageSize(x);
    if (!hw) return null;
    const pixels = Float32Array.from(x.to('float32').cpu().contiguous().toTypedArray() as Float32Array);
    let lo = Infinity, hi = -Infinity;
    for (const v of pixels) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo < 0 || hi > 1) for (let i = 0; i < pixels.length; i++) pixels[i] = hi > lo ? (pixels[i] - lo) / (hi - lo) : 0;
    return { pixels, height: hw[0], width: hw[1] };
  });
}

function layerFormula(m: unknown): string | undefined {
  if (m instanceof Conv2d) {
    const [kh, kw] = m.kernelSize;
    const g = m.groups === 1 ? '' : `/${m.groups}`;
    return `(${kh}×${kw})×(${m.inChannels}${g}×${m.outChannels})${m.bias ? ` + ${m.outChannels}` : ''}`;
  }
  if (m instanceof Linear) return `${m.inFeatures}×${m.outFeatures}${m.bias ? ` + ${m.outFeatures}` : ''}`;
  return undefined;
}

function modelSummary(model: Module, inputShape: number[]): ReportSummary | null {
  try {
    const s = summary(model, inputShape);
    const modules = new Map(model.namedModules());
    const layers: ReportLayer[] = s.layers.map((l) => ({
      name: l.name, type: l.type, depth: l.depth, outputShape: l.outputShape, params: l.params,
      formula: l.params ? layerFormula(modules.get(l.name)) : undefined,
    }));
    return {
      model: s.model, inputShape: s.inputShape, layers, totalParams: s.totalParams, trainableParams: s.trainableParams,
      paramsBytes: s.paramsBytes, text: s.toString(),
    };
  } catch {
    return null; // a model that does not take this input shape: the report leaves the table out
  }
}

/**
 * Gathers what the training report draws: runs the model over the whole test set
 * (batched, eval mode, no gradients, no draws from the global random generator),
 * renders nothing itself. Pass the result to buildReport() or writeReport().
 * @example
 * const { model, history, accuracy } = await train({ epochs: 1, onBatch: (e) => losses.push(e) });
 * const data = collectReportData({ model, history, batchLosses: losses, accuracy, testData: new datasets.MNIST({ train: false }) });
 * writeReport('report.html', data);
 */
export function collectReportData(input: CollectReportInput): ReportData {
  if (input === null || typeof input !== 'object') expected('an object {model, history, ...}', 'input', input);
  checkKeys(input, ['model', 'history', 'batchLosses', 'accuracy', 'testData', 'options'], 'collectReportData');
  const { model, history, batchLosses = [], testData = null, options = {} } = input;
  if (!(model instanceof Module)) expected('a Module', 'model', model);
  if (!Array.isArray(history)) expected('an array of epoch records', 'history', history);
  if (!Array.isArray(batchLosses)) expected('an array of {epoch, batch, loss}', 'batchLosses', batchLosses);
  if (input.accuracy !== undefined && input.accuracy !== null && typeof input.accuracy !== 'number') expected('a number or null', 'accuracy', input.accuracy);
  if (testData !== null && (typeof testData !== 'object' || typeof testData.get !== 'function' || !Number.isInteger(testData.length))) {
    expected('a dataset of [image, label] samples or null', 'testData', testData);
  }
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  checkKeys(options, [...REPORT_OPTIONS, ...SETTINGS_KEYS], 'collectReportData');
  const maxMis = options.maxMisclassified ?? 60;
  const digits = options.featureMapDigits ?? 4;
  if (!Number.isInteger(maxMis) || maxMis < 0) expected('a non-negative integer', 'maxMisclassified', maxMis);
  if (!Number.isInteger(digits) || digits < 0) expected('a non-negative integer', 'featureMapDigits', digits);
  const device = (model.parameters()[0]?.device as DeviceType | undefined) ?? 'cpu';

  let confusion: ConfusionMatrix | null = null;
  const misclassified: ReportMisclassified[] = [];
  const maps: ReportDigitMaps[] = [];
  if (testData && testData.length > 0) {
    confusion = confusionMatrix(model, testData);
    for (const m of confusion.misclassified.slice(0, maxMis)) {
      const im = imageOf(testData, m.index);
      if (!im) break;
      misclassified.push({ ...m, pixels: im.pixels, width: im.width, height: im.height });
    }
    const wrong = new Map(confusion.misclassified.map((m) => [m.index, m.predicted]));
    const named = new Set(model.namedModules().map(([n]) => n));
    const layers = options.featureMapLayers ?? (named.has('layer1') && named.has('layer2') ? ['layer1', 'layer2'] : undefined);
    // A few test digits, each a different class, in test-set order.
    const seen = new Set<number>();
    for (let i = 0; i < testData.length && maps.length < digits; i++) {
      const label = Number(tidy(() => (testData.get(i)[1] as Tensor).item()));
      if (seen.has(label)) continue;
      seen.add(label);
      const im = imageOf(testData, i);
      if (!im) break;
      let fm: FeatureMap[];
      try {
        fm = tidy(() => {
          const x = testData.get(i)[0] as Tensor;
          return featureMaps(model, device === 'cpu' ? x : x.to(device), layers);
        });
      } catch {
        break; // a model whose layers are not image-shaped: no feature maps
      }
      if (fm.length === 0) break;
      maps.push({ index: i, label, predicted: wrong.get(i) ?? label, pixels: im.pixels, width: im.width, height: im.height, maps: fm });
    }
  }
  let kernels: FeatureMap | null = null;
  try {
    kernels = firstLayerKernels(model);
  } catch {
    kernels = null;
  }

  const settings: ReportSettings = {
    model: model.constructor.name,
    epochs: history.length ? history[history.length - 1].epoch : undefined,
    trainSamples: history[0]?.samples,
    testSamples: testData ? testData.length : undefined,
    libtorchVersion,
    torchnodeVersion: torchnodeVersion(),
  };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && !REPORT_OPTIONS.includes(k)) {
      (settings as Record<string, unknown>)[k] = v;
    }
  }
  return {
    title: options.title ?? 'torchnode training report',
    createdAt: new Date().toISOString(),
    settings,
    history: history.map((e) => ({ ...e })),
    batchLosses: batchLosses.map((b) => ({ epoch: b.epoch, batch: b.batch, loss: b.loss })),
    accuracy: input.accuracy ?? confusion?.accuracy ?? null,
    summary: modelSummary(model, options.inputShape ?? [1, 1, 28, 28]),
    confusion,
    misclassified,
    kernels,
    featureMaps: maps,
  };
}
