/**
 * torch.utils.data and torchvision.datasets: datasets, samplers, the DataLoader,
 * the IDX reader and MNIST.
 * @example
 * import { data } from 'torchnode';
 * const loader = new data.DataLoader(new data.datasets.MNIST({ limit: 6000 }), { batchSize: 100, shuffle: true });
 * for (const [x, y] of loader) { ... }
 */
export { TensorDataset, defaultCollate } from './dataset';
export type { Dataset, TensorsDataset } from './dataset';
export { DataLoader, RandomSampler, SequentialSampler, BatchSampler, drawSeed } from './dataloader';
export type { Sampler, DataLoaderOptions, RandomSamplerOptions } from './dataloader';
export { DistributedSampler } from './distributed-sampler';
export type { DistributedSamplerOptions } from './distributed-sampler';
export { readIdx, writeIdx, IdxError } from './idx';
export type { IdxArray, IdxDtype, IdxData } from './idx';
export { MNIST } from './mnist';
export type { MNISTOptions } from './mnist';
import { MNIST } from './mnist';

/** Dataset classes, like `torchvision.datasets`. */
export const datasets = { MNIST };
