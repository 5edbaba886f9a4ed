/** The data a training report is built from: plain values, no tensors or models. */
import type { EpochRecord } from '../train';
import type { FeatureMap } from '../visualize';
import type { ShapeInfo } from '../nn/summary';
import type { ConfusionMatrix } from './confusion';

/** One training batch's loss. */
export interface BatchLoss {
  epoch: number;
  /** 1-based batch number within the epoch. */
  batch: number;
  loss: number;
}

/** The run's settings, as shown in the report (every field optional). */
export interface ReportSettings {
  model?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: string;
  seed?: number | null;
  threads?: number;
  device?: string;
  /** Training images used. */
  trainSamples?: number;
  /** Test images evaluated. */
  testSamples?: number;
  dataRoot?: string;
  /** Checkpoint the run resumed from. */
  resumedFrom?: string;
  /** Where the model was saved. */
  savedTo?: string;
  libtorchVersion?: string;
  torchnodeVersion?: string;
  /** Wall-clock seconds of the training run. */
  seconds?: number;
  /** The command line that ran it. */
  command?: string;
}

/** One row of the model summary table. */
export interface ReportLayer {
  name: string;
  type: string;
  depth: number;
  outputShape: ShapeInfo;
  params: number;
  /** How the count comes about, e.g. "(3×3)×(1×32) + 32". */
  formula?: string;
}

export interface ReportSummary {
  model: string;
  inputShape: number[] | number[][];
  layers: ReportLayer[];
  totalParams: number;
  trainableParams: number;
  paramsBytes: number;
  /** The torchinfo-style text of summary().toString(). */
  text?: string;
}

/** A test image the model got wrong: 28x28 pixels in [0, 1]. */
export interface ReportMisclassified {
  index: number;
  label: number;
  predicted: number;
  confidence: number;
  /** height x width values in [0, 1], row-major. */
  pixels: ArrayLike<number>;
  width: number;
  height: number;
}

/** One test digit and what the network's layers make of it. */
export interface ReportDigitMaps {
  index: number;
  label: number;
  predicted: number | null;
  pixels: ArrayLike<number>;
  width: number;
  height: number;
  /** One entry per layer, in forward order (e.g. layer1: 32x14x14, layer2: 64x7x7). */
  maps: FeatureMap[];
}

/** Everything buildReport() draws. */
export interface ReportData {
  title: string;
  /** ISO date of the report. */
  createdAt: string;
  settings: ReportSettings;
  history: EpochRecord[];
  batchLosses: BatchLoss[];
  /** Test accuracy in [0, 1], or null without test data. */
  accuracy: number | null;
  summary: ReportSummary | null;
  confusion: ConfusionMatrix | null;
  /** The first misclassified test images (the full list of indices is in confusion.misclassified). */
  misclassified: ReportMisclassified[];
  /** First-layer kernels ([outChannels, kH, kW]), or null when the model has no Conv2d. */
  kernels: FeatureMap | null;
  featureMaps: ReportDigitMaps[];
}
