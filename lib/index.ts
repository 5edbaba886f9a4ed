/**
 * torchnode: libtorch for Node.js and TypeScript.
 * @example
 * import * as torch from 'torchnode';
 * const x = torch.randn([2, 3]);
 */
export { TorchError, ValueError, ERROR_CODES } from './errors';
export type { ErrorCode } from './errors';
// The public part of ./tensor; its argument checks and handle helpers (h, wrap, gen,
// checkInt, ...) are internal. test/public-api.test.ts keeps this surface deliberate.
export {
  Tensor, tensor, fromBuffer, zeros, ones, empty, full, arange, rand, randn, randint, randperm,
  randLike, randnLike, isTensor,
  DTYPES, MEMORY_FORMATS, getDefaultDtype, setDefaultDtype,
  float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool, complex64, complex128,
  float, double, half, long, int, short, cfloat, cdouble, device,
} from './tensor';
export { Slice } from './indexing';
export type { Index } from './indexing';
export type { DType, DeviceType, Shape, Scalar, TypedArrayData, NestedArray, MemoryFormat, GeneratorLike, TensorOptions, RandomOptions, ToTarget } from './tensor';
// The generated op surface (scripts/gen-ops.js): every public ATen op as torch.ops.<name>,
// on torch.* and as Tensor methods where no hand-written one of that name exists.
export * as ops from './ops/generated';
export * from './ops/functions';
export { tidy, scope, keep, memory, releaseMemory } from './memory';
export type { MemoryInfo } from './memory';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled, autograd, inferenceMode, isInferenceMode } from './autograd';
export type { GradOptions } from './autograd';
export { manualSeed, Generator, defaultGenerator, initialSeed, useThreadGenerator, currentGenerator } from './random';
export { cuda, setNumThreads, getNumThreads, version, config } from './device';
export type { TorchConfig } from './device';
export * as F from './nn/functional';
export * as nn from './nn';
export * as optim from './optim';
export * as data from './data';
export { DataLoader, TensorDataset, datasets } from './data';
export { trainInThisThread, evaluate, resolveDevice } from './train';
export type { TrainOptions, TrainResult, EpochRecord, BatchEvent, EvaluateOptions, ResumeState } from './train';
export { train, startTraining, TrainingJob } from './job';
export type { TrainJobOptions, TrainJobResult, TrainEvent, JobState } from './job';
export { runInWorker } from './worker/host';
export type { RunInWorkerOptions } from './worker/host';
export type { WorkerContext } from './worker/entry';
export { predict, decodePng } from './predict';
export type { Prediction, ImageInput, PredictOptions } from './predict';
export * as serialize from './serialize';
export { save, load, saveSafetensors, loadSafetensors, saveCheckpoint, loadCheckpoint, loadStateDictInto, CheckpointError } from './serialize';
export type { Checkpoint, CheckpointParts, LoadOptions } from './serialize';
export * as distributed from './distributed';
export { DistributedSampler } from './data/distributed-sampler';
export { featureMaps, firstLayerKernels } from './visualize';
export type { FeatureMap } from './visualize';
export * as report from './report';
export { buildReport, writeReport, collectReportData, confusionMatrix, grayPng } from './report';
export type { ReportData, ReportOptions, CollectReportInput, ConfusionMatrix, Misclassified, ClassAccuracy, GrayPngOptions, BatchLoss } from './report';
