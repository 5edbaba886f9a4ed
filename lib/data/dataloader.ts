/**
 * Samplers and the DataLoader, with PyTorch 1.13's draws from the random generators,
 * so a seeded run shuffles exactly like PyTorch and leaves the global generator in the
 * same state (which later draws, e.g. dropout, depend on).
 *
 * Per epoch (each new iteration) PyTorch's single-process DataLoader:
 *  1. at `iter(loader)`: draws `_base_seed = empty((), int64).random_(generator=loader.generator)`
 *     (meant for workers; drawn even with `shuffle=false`);
 *  2. at the first batch, a RandomSampler without a generator draws
 *     `seed = empty((), int64).random_()` from the global generator and shuffles with
 *     `randperm(n, generator=Generator().manual_seed(seed))`; with a generator it uses
 *     `randperm(n, generator=generator)` directly.
 */
import { checkKeys, expected, ValueError } from '../errors';
import { Generator } from '../random';
import { empty, fromBuffer, randint, randperm, Tensor } from '../tensor';
import { asDataset, checkIndex, Dataset, defaultCollate, isTensorsDataset, TensorsDataset } from './dataset';

/** An iterable of indices (or index lists) with a length, like `torch.utils.data.Sampler`. */
export interface Sampler<T = number> extends Iterable<T> {
  readonly length: number;
  /** Optional: called by training loops before each epoch (DistributedSampler-style samplers shuffle by epoch). */
  setEpoch?(epoch: number): void;
}

function checkGenerator(g: unknown, name = 'generator'): Generator | undefined {
  if (g === undefined || g === null) return undefined;
  if (!(g instanceof Generator)) expected('a Generator', name, g);
  return g;
}

/** One int64 draw, `int(torch.empty((), dtype=torch.int64).random_(generator=g).item())`. */
export function drawSeed(generator?: Generator): bigint {
  const t = empty([], { dtype: 'int64' });
  try {
    t.random_({ generator });
    return t.item({ bigint: true }) as bigint;
  } finally {
    t.dispose();
  }
}

function intsOf(t: Tensor): number[] {
  try {
    return Array.from(t.toTypedArray() as BigInt64Array, Number);
  } finally {
    t.dispose();
  }
}

/** Yields 0, 1, ..., n-1, like `SequentialSampler`. */
export class SequentialSampler implements Sampler<number> {
  constructor(readonly dataSource: { readonly length: number }) {
    if (dataSource === null || typeof dataSource !== 'object' || !Number.isInteger(dataSource.length)) {
      expected('a dataset with a length', 'dataSource', dataSource);
    }
  }
  get length(): number {
    return this.dataSource.length;
  }
  *[Symbol.iterator](): Iterator<number> {
    const n = this.dataSource.length;
    for (let i = 0; i < n; i++) yield i;
  }
}

export interface RandomSamplerOptions {
  /** Draw with replacement (`numSamples` draws). Default false. */
  replacement?: boolean;
  /** How many indices to yield. Default: the dataset's length. */
  numSamples?: number;
  /** The generator to shuffle with; without one each iteration seeds a fresh one from the global generator. */
  generator?: Generator;
}

/**
 * Yields the indices in a random order, like `RandomSampler`: each iteration (at its
 * first index) draws a seed from the global generator, unless a generator is given.
 * @example [...new RandomSampler(range20)] // after manualSeed(0): PyTorch's order
 */
export class RandomSampler implements Sampler<number> {
  readonly replacement: boolean;
  readonly generator: Generator | undefined;
  private readonly _numSamples: number | undefined;

  constructor(readonly dataSource: { readonly length: number }, options: RandomSamplerOptions = {}) {
    if (dataSource === null || typeof dataSource !== 'object' || !Number.isInteger(dataSource.length)) {
      expected('a dataset with a length', 'dataSource', dataSource);
    }
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['replacement', 'numSamples', 'generator'], 'RandomSampler');
    this.replacement = options.replacement ?? false;
    if (typeof this.replacement !== 'boolean') expected('a boolean', 'replacement', options.replacement);
    this._numSamples = options.numSamples;
    this.generator = checkGenerator(options.generator);
    const n = this.length;
    if (!Number.isInteger(n) || n <= 0) expected('a positive integer', 'numSamples', n);
  }

  /** The number of indices an iteration yields. */
  get length(): number {
    return this._numSamples ?? this.dataSource.length;
  }

  *[Symbol.iterator](): Iterator<number> {
    const n = this.dataSource.length;
    const generator = this.generator ?? new Generator().manualSeed(drawSeed());
    const numSamples = this.length;
    if (this.replacement) {
      for (let i = 0; i < Math.floor(numSamples / 32); i++) yield* intsOf(randint(0, n, [32], { generator }));
      yield* intsOf(randint(0, n, [numSamples % 32], { generator }));
    } else {
      for (let i = 0; i < Math.floor(numSamples / n); i++) yield* intsOf(randperm(n, { generator }));
      yield* intsOf(randperm(n, { generator })).slice(0, numSamples % n);
    }
  }
}

/**
 * Groups another sampler's indices into lists of `batchSize`, like `BatchSampler`.
 * @example [...new BatchSampler(new SequentialSampler(ds10), 3, false)] // [[0,1,2],[3,4,5],[6,7,8],[9]]
 */
export class BatchSampler implements Sampler<number[]> {
  constructor(readonly sampler: Sampler<number>, readonly batchSize: number, readonly dropLast = false) {
    if (sampler === null || typeof sampler !== 'object' || typeof sampler[Symbol.iterator] !== 'function') {
      expected('a Sampler (an iterable of indices with a length)', 'sampler', sampler);
    }
    if (!Number.isInteger(batchSize) || batchSize <= 0) expected('a positive integer', 'batchSize', batchSize);
    if (typeof dropLast !== 'boolean') expected('a boolean', 'dropLast', dropLast);
  }

  get length(): number {
    const n = this.sampler.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  *[Symbol.iterator](): Iterator<number[]> {
    let batch: number[] = [];
    for (const idx of this.sampler) {
      batch.push(idx);
      if (batch.length === this.batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0 && !this.dropLast) yield batch;
  }
}

export interface DataLoaderOptions<T, B> {
  /** Samples per batch; null turns batching off (each item is yielded as the dataset returns it). Default 1. */
  batchSize?: number | null;
  /** Reshuffle at every epoch. Default false. */
  shuffle?: boolean;
  /** Where indices come from (instead of shuffle), e.g. a DistributedSampler. */
  sampler?: Sampler<number>;
  /** Where index lists come from (instead of batchSize, shuffle, sampler and dropLast). */
  batchSampler?: Sampler<number[]>;
  /** Drop the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Turns a list of samples into a batch. Default: defaultCollate (or one indexSelect per tensor for tensor datasets). */
  collateFn?: (samples: T[]) => B;
  /** The generator for the shuffle and the per-epoch base seed; default: the global one. */
  generator?: Generator;
}

/**
 * Iterates a dataset in batches, like `torch.utils.data.DataLoader` with `num_workers=0`.
 * Each `for...of` is one epoch, reshuffled when `shuffle` is set. Batches of a
 * TensorDataset (or any dataset with `tensors`) are `[t0[idx], t1[idx], ...]`.
 * Shape: a TensorDataset of [N, ...] tensors gives batches of [batchSize, ...].
 * @example
 * const loader = new DataLoader(new TensorDataset(x, y), { batchSize: 100, shuffle: true });
 * for (const [xb, yb] of loader) { ... }
 */
export class DataLoader<T = unknown, B = T extends readonly Tensor[] ? Tensor[] : any> implements Iterable<B> {
  readonly dataset: Dataset<T> | readonly T[];
  readonly batchSize: number | null;
  readonly dropLast: boolean;
  readonly sampler: Sampler<number>;
  readonly batchSampler: Sampler<number[]> | null;
  readonly generator: Generator | undefined;
  readonly collateFn: ((samples: T[]) => B) | undefined;
  private readonly ds: Dataset<T>;

  constructor(dataset: Dataset<T> | readonly T[], options: DataLoaderOptions<T, B> = {}) {
    this.ds = asDataset(dataset);
    this.dataset = dataset;
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['batchSize', 'shuffle', 'sampler', 'batchSampler', 'dropLast', 'collateFn', 'generator'], 'DataLoader');
    const shuffle = options.shuffle ?? false;
    if (typeof shuffle !== 'boolean') expected('a boolean', 'shuffle', shuffle);
    let dropLast = options.dropLast ?? false;
    if (typeof dropLast !== 'boolean') expected('a boolean', 'dropLast', dropLast);
    let batchSize = options.batchSize === undefined ? 1 : options.batchSize;
    if (batchSize !== null && (!Number.isInteger(batchSize) || batchSize <= 0)) {
      expected('a positive integer or null', 'batchSize', batchSize);
    }
    this.generator = checkGenerator(options.generator);
    if (options.collateFn !== undefined && typeof options.collateFn !== 'function') expected('a function', 'collateFn', options.collateFn);
    this.collateFn = options.collateFn;

    if (options.sampler != null && shuffle) {
      throw new ValueError('DataLoader: sampler option is mutually exclusive with shuffle');
    }
    let batchSampler: Sampler<number[]> | null = null;
    if (options.batchSampler != null) {
      if (batchSize !== 1 || shuffle || options.sampler != null || dropLast) {
        throw new ValueError('DataLoader: batchSampler option is mutually exclusive with batchSize, shuffle, sampler, and dropLast');
      }
      batchSampler = options.batchSampler;
      batchSize = null;
      dropLast = false;
    } else if (batchSize === null && dropLast) {
      throw new ValueError('DataLoader: batchSize=null option disables auto-batching and is mutually exclusive with dropLast');
    }
    const sampler =
      options.sampler ?? (shuffle ? new RandomSampler(this.ds, { generator: this.generator }) : new SequentialSampler(this.ds));
    if (batchSize !== null && batchSampler === null) batchSampler = new BatchSampler(sampler, batchSize, dropLast);
    this.sampler = sampler;
    this.batchSampler = batchSampler;
    this.batchSize = batchSize;
    this.dropLast = dropLast;
  }

  /** The number of batches an epoch yields (samples when batchSize is null). */
  get length(): number {
    return (this.batchSampler ?? this.sampler).length;
  }

  /** Starts an epoch: draws the base seed now (as PyTorch's iter() does), the shuffle at the first batch. */
  [Symbol.iterator](): Iterator<B> {
    drawSeed(this.generator);
    return this.batches();
  }

  private *batches(): Generator_<B> {
    if (this.batchSampler === null) {
      for (const i of this.sampler) yield this.ds.get(i) as unknown as B;
      return;
    }
    const fast = this.collateFn === undefined && isTensorsDataset(this.dataset);
    for (const indices of this.batchSampler) {
      if (fast) {
        yield this.gather(indices) as unknown as B;
      } else {
        const samples = indices.map((i) => this.ds.get(i));
        yield (this.collateFn ? this.collateFn(samples) : defaultCollate(samples)) as B;
      }
    }
  }

  private gather(indices: number[]): Tensor[] {
    const ds = this.dataset as unknown as TensorsDataset;
    const source = ds.batchSource;
    const tensors = (source ? source.tensors : ds.tensors) as Tensor[];
    const n = tensors[0].shape[0];
    indices.forEach((i) => checkIndex(i, n));
    const idx = fromBuffer(BigInt64Array.from(indices, (i) => BigInt(i)), [indices.length]);
    try {
      const rows = tensors.map((t) => t.indexSelect(0, idx));
      if (!source) return rows;
      const out = source.transform(rows);
      rows.forEach((r) => { if (!out.includes(r)) r.dispose(); });
      return out;
    } finally {
      idx.dispose();
    }
  }
}

type Generator_<X> = globalThis.Generator<X, void, undefined>;
