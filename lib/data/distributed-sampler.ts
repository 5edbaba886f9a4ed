/**
 * DistributedSampler: each rank its own shard of the dataset, reshuffled per
 * epoch with setEpoch(), padded so every rank gets the same number of samples
 * (PyTorch's torch.utils.data.distributed.DistributedSampler, draw for draw).
 */
import { checkKeys, expected } from '../errors';
import { Generator } from '../random';
import { randperm } from '../tensor';
import type { Sampler } from './dataloader';

export interface DistributedSamplerOptions {
  /** Number of ranks (default 1). */
  numReplicas?: number;
  /** This rank (default 0). */
  rank?: number;
  /** Shuffle with a generator seeded by seed + epoch (default true). */
  shuffle?: boolean;
  /** Must be the same on every rank (default 0). */
  seed?: number;
  /** Drop the tail instead of padding with repeated indices (default false). */
  dropLast?: boolean;
}

/**
 * @example
 * const sampler = new DistributedSampler(train, { numReplicas: pg.worldSize, rank: pg.rank });
 * const loader = new DataLoader(train, { batchSize: 50, sampler });
 * for (let epoch = 0; epoch < 3; epoch++) { sampler.setEpoch(epoch); for (const [x, y] of loader) ... }
 */
export class DistributedSampler implements Sampler<number> {
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Samples this rank yields per epoch. */
  readonly numSamples: number;
  /** Samples over all ranks per epoch (with padding). */
  readonly totalSize: number;
  epoch = 0;

  constructor(readonly dataset: { readonly length: number }, options: DistributedSamplerOptions = {}) {
    if (dataset === null || typeof dataset !== 'object' || !Number.isInteger(dataset.length)) {
      expected('a dataset with a length', 'dataset', dataset);
    }
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['numReplicas', 'rank', 'shuffle', 'seed', 'dropLast'], 'DistributedSampler');
    this.numReplicas = options.numReplicas ?? 1;
    this.rank = options.rank ?? 0;
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    if (!Number.isInteger(this.numReplicas) || this.numReplicas < 1) expected('a positive integer', 'numReplicas', this.numReplicas);
    if (!Number.isInteger(this.rank) || this.rank < 0 || this.rank >= this.numReplicas) {
      expected(`a rank in 0..${this.numReplicas - 1}`, 'rank', this.rank);
    }
    if (!Number.isSafeInteger(this.seed)) expected('an integer', 'seed', this.seed);
    const n = dataset.length;
    this.numSamples =
      this.dropLast && n % this.numReplicas !== 0 ? Math.ceil((n - this.numReplicas) / this.numReplicas) : Math.ceil(n / this.numReplicas);
    this.totalSize = this.numSamples * this.numReplicas;
  }

  /** Reshuffles for `epoch`; call it before each epoch on every rank. */
  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) expected('a non-negative integer', 'epoch', epoch);
    this.epoch = epoch;
  }

  get length(): number {
    return this.numSamples;
  }

  /** The epoch's indices over all ranks, before sharding (padded or cut to totalSize). */
  allIndices(): number[] {
    const n = this.dataset.length;
    let indices: number[];
    if (this.shuffle) {
      const g = new Generator().manualSeed(this.seed + this.epoch);
      const p = randperm(n, { generator: g });
      indices = Array.from(p.toTypedArray() as BigInt64Array, Number);
      p.dispose();
    } else {
      indices = Array.from({ length: n }, (_, i) => i);
    }
    if (!this.dropLast) {
      const pad = this.totalSize - indices.length;
      if (pad > 0 && indices.length > 0) {
        const base = indices.slice();
        while (indices.length < this.totalSize) indices.push(...base.slice(0, this.totalSize - indices.length));
      }
    } else {
      indices = indices.slice(0, this.totalSize);
    }
    return indices;
  }

  *[Symbol.iterator](): Iterator<number> {
    const all = this.allIndices();
    for (let i = this.rank; i < this.totalSize; i += this.numReplicas) yield all[i];
  }
}
