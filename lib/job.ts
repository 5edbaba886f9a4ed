/**
 * train(): the seed's training in a worker thread, so a Node service's event loop
 * stays free. Progress arrives as events; an AbortSignal (or job.cancel())
 * cancels within one batch. Each call gets its own worker: calls run concurrently.
 */
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { expected, argTypeError, codedError, ERROR_CODES } from './errors';
import { Module, AnyModule } from './nn/module';
import { moduleSpec } from './nn/spec';
import { TensorDataset } from './data/dataset';
import { MNIST } from './data/mnist';
import { defaultGenerator } from './random';
import { Tensor, DeviceType, checkInt } from './tensor';
import { abortError as abortErrorOf, runInWorker } from './worker/host';
import { packageRoot } from './native';
import { releaseMemory } from './memory';
import { resolveTrainOptions, resolveDevice, maxTrainThreads } from './train';
import { pack, unpack } from './worker/transfer';
import { buildModel, DataSource, ModelSource, TrainJobEvent, TrainJobMessage } from './worker/train-job';
import type { BatchEvent, EpochRecord, ResumeState, TrainOptions } from './train';
import type { OptimizerStateDict } from './optim';

type Dataset = TensorDataset | MNIST;

/** Options of train(): those of trainInThisThread that can cross into a worker. */
export interface TrainJobOptions extends Omit<TrainOptions, 'model' | 'optimizer' | 'loss' | 'trainData' | 'testData' | 'resume'> {
  /** A model built from the library's layers (its trained weights are copied back into it), default the seed CNN. */
  model?: Module;
  /** Instead of `model`: a JS file exporting your own Module class, rebuilt in the worker. */
  modelFile?: string;
  /** The export naming the class in `modelFile` (default: the default export / module.exports). */
  modelExport?: string;
  /** Constructor arguments for the `modelFile` class (JSON-like values). */
  modelArgs?: unknown[];
  optimizer?: 'adam' | 'sgd';
  loss?: 'cross-entropy';
  trainData?: Dataset;
  testData?: Dataset | null;
  resume?: ResumeState;
  /**
   * How many of the latest batch events `job.events` keeps (default 1000); every epoch
   * event is kept. A long job thus holds a bounded window, not every batch it ran.
   */
  keepBatchEvents?: number;
}

/** The default of TrainJobOptions.keepBatchEvents. */
export const KEEP_BATCH_EVENTS = 1000;


export interface TrainJobResult {
  history: EpochRecord[];
  accuracy: number | null;
  /** The trained model (the `model` you passed, updated in place, or a new one). */
  model: AnyModule;
  /** The optimizer's final state in PyTorch's layout (for checkpoints and --resume). */
  optimizerState: OptimizerStateDict;
  /** The job's generator state at the end (`torch.get_rng_state()`), so a resumed run shuffles on as if uninterrupted. */
  rngState: Tensor;
  device: DeviceType;
  seconds: number;
}

export type TrainEvent = ({ type: 'batch' } & BatchEvent) | ({ type: 'epoch' } & EpochRecord);
export type JobState = 'running' | 'succeeded' | 'failed' | 'cancelled';

let nextId = 1;

function dataSource(d: Dataset | null | undefined, name: string, dataRoot: string | undefined, train: boolean, limit?: number): DataSource | undefined {
  if (d === undefined) return { kind: 'mnist', root: dataRoot, train, limit };
  if (d === null) return null;
  if (d instanceof MNIST) return { kind: 'mnist', root: d.root, train: d.train, limit: d.length };
  if (d instanceof TensorDataset) return { kind: 'tensors', tensors: pack([...d.tensors]) };
  return expected('a TensorDataset or MNIST dataset (other datasets cannot cross into the training worker)', name, d);
}

/**
 * A training run in a worker thread: an EventEmitter ('batch', 'epoch', 'done',
 * 'error') and an async iterator of progress events, with `result` and `cancel()`.
 * @example
 * const job = startTraining({ epochs: 1 });
 * for await (const e of job) if (e.type === 'epoch') console.log(e.cost);
 * const { accuracy } = await job.result;
 */
export class TrainingJob extends EventEmitter {
  readonly id: string;
  state: JobState = 'running';
  /**
   * The events so far, oldest first: every epoch event, and the latest
   * `keepBatchEvents` (default 1000) batch events; older batch events are dropped
   * (counted in `droppedBatchEvents`). The 'batch' and 'progress' events still fire for each.
   */
  readonly events: TrainEvent[] = [];
  /** Batch events dropped from `events` to keep it bounded. */
  droppedBatchEvents = 0;
  /** The sequence number (1, 2, ...) of each entry in `events`, for the async iterator. */
  private readonly seqs: number[] = [];
  private seq = 0;
  private batchesKept = 0;
  private keepBatchEvents = KEEP_BATCH_EVENTS;
  readonly result: Promise<TrainJobResult>;
  private readonly ac = new AbortController();
  private waiters: (() => void)[] = [];

  constructor(options: TrainJobOptions = {}) {
    super();
    this.id = `job-${nextId++}`;
    this.result = this.run(options);
    // Unhandled rejections belong to whoever awaits result; the emitter reports too.
    this.result.catch(() => undefined);
  }

  /** Cancels within one batch; `result` rejects with an AbortError. */
  cancel(reason = 'The training was cancelled'): void {
    if (this.state === 'running') this.ac.abort(Object.assign(codedError(ERROR_CODES.aborted, reason), { name: 'AbortError' }));
  }

  private async run(options: TrainJobOptions): Promise<TrainJobResult> {
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    const { model, modelFile, modelExport, modelArgs, trainData, testData, resume, signal, onBatch, onEpoch, keepBatchEvents, ...rest } = options;
    if (signal) {
      if (signal.aborted) this.ac.abort(signal.reason);
      else signal.addEventListener('abort', () => this.ac.abort(signal.reason), { once: true });
    }
    try {
      if (keepBatchEvents !== undefined) this.keepBatchEvents = checkInt(keepBatchEvents, 'keepBatchEvents', 0);
      if (model !== undefined && modelFile !== undefined) throw argTypeError('Pass either model or modelFile, not both');
      if (modelFile !== undefined && typeof modelFile !== 'string') expected('a file path', 'modelFile', modelFile);
      if (modelArgs !== undefined && !Array.isArray(modelArgs)) expected('an array', 'modelArgs', modelArgs);
      if (typeof (rest as { optimizer?: unknown }).optimizer === 'function' || typeof (rest as { loss?: unknown }).loss === 'function') {
        throw argTypeError('optimizer and loss functions cannot cross into the training worker; use trainInThisThread() in your own worker');
      }
      // Checked here too, so a bad option fails before a thread starts.
      const checked = resolveTrainOptions(rest as TrainOptions);
      resolveDevice(checked.dev as 'auto' | DeviceType);
      let source: ModelSource = { kind: 'cnn' };
      let initialState: unknown;
      if (model !== undefined) {
        if (!(model instanceof Module)) expected('a Module', 'model', model);
        source = { kind: 'spec', spec: moduleSpec(model) };
        initialState = pack(model.stateDict());
      } else if (modelFile !== undefined) {
        source = { kind: 'file', file: path.resolve(modelFile), exportName: modelExport, args: modelArgs };
      }
      const msg: TrainJobMessage = {
        options: rest as Record<string, unknown>,
        // The limit where train() is called (its TORCHNODE_MAX_THREADS), checked again in the worker.
        maxThreads: maxTrainThreads(),
        model: source,
        initialState,
        resume: resume ? pack(resume) : undefined,
        trainData: dataSource(trainData, 'trainData', rest.dataRoot, true, rest.limit),
        testData: dataSource(testData, 'testData', rest.dataRoot, false, rest.testLimit),
      };
      const raw = await runInWorker<{
        history: EpochRecord[]; accuracy: number | null; device: DeviceType; seconds: number; modelState: unknown; optimizerState: unknown; rngState: unknown;
      }>({
        file: path.join(packageRoot, 'dist', 'worker', 'train-job.js'),
        exportName: 'trainJob',
        args: [msg],
        signal: this.ac.signal,
        onEvent: (e) => {
          const { type, data } = e as TrainJobEvent;
          const ev = { type, ...data } as TrainEvent;
          this.record(ev);
          this.emit(type, data);
          this.emit('progress', ev);
          if (type === 'batch') onBatch?.(data as BatchEvent);
          else onEpoch?.(data as EpochRecord);
          this.wake();
        },
        // The worker's arena keeps the memory its training used; give it back once the
        // thread has ended (its isolate and tensors are freed only then), whether the
        // job succeeded, failed or was cancelled. Trimming when the result arrived, and
        // only on success, left a cancelled job's 40-50 MB resident for good.
        onExit: () => releaseMemory(),
      });
      // A cancel that came after the worker's last check (say, while it sent its
      // result) still cancels: a job that accepted cancel() never ends 'succeeded'.
      if (this.ac.signal.aborted) throw abortErrorOf(this.ac.signal, 'The training was cancelled');
      const state = unpack(raw.modelState) as Map<string, Tensor>;
      let trained: AnyModule;
      if (model) {
        model.loadStateDict(state);
        trained = model;
      } else {
        // Building a model draws from the global generator; keep the caller's draws as they were.
        const rng = defaultGenerator.getState();
        try {
          trained = buildModel(source);
        } finally {
          defaultGenerator.setState(rng);
        }
        trained.loadStateDict(state);
      }
      const result: TrainJobResult = {
        history: raw.history,
        accuracy: raw.accuracy,
        model: trained,
        optimizerState: unpack(raw.optimizerState) as OptimizerStateDict,
        rngState: unpack(raw.rngState) as Tensor,
        device: raw.device,
        seconds: raw.seconds,
      };
      this.state = 'succeeded';
      this.emit('done', result);
      return result;
    } catch (e) {
      this.state = (e as Error)?.name === 'AbortError' ? 'cancelled' : 'failed';
      if (this.listenerCount('error') > 0) this.emit('error', e);
      throw e;
    } finally {
      this.wake();
    }
  }

  /** Appends an event, dropping the oldest batch event beyond the window. */
  private record(ev: TrainEvent): void {
    this.events.push(ev);
    this.seqs.push(++this.seq);
    if (ev.type !== 'batch') return;
    if (++this.batchesKept <= this.keepBatchEvents) return;
    // The oldest batch event follows at most the epoch events before it.
    const i = this.events.findIndex((e) => e.type === 'batch');
    this.events.splice(i, 1);
    this.seqs.splice(i, 1);
    this.batchesKept--;
    this.droppedBatchEvents++;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Progress events, from the oldest still kept (see `events`), until the job ends (a
   * failed job throws its error). An iterator that falls behind by more than the window
   * skips the batch events dropped meanwhile, never an epoch event.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<TrainEvent, void, undefined> {
    let last = 0;
    for (;;) {
      for (;;) {
        // The first kept event after the last one yielded (seqs ascend).
        let lo = 0;
        let hi = this.seqs.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.seqs[mid] <= last) lo = mid + 1;
          else hi = mid;
        }
        if (lo >= this.seqs.length) break;
        last = this.seqs[lo];
        yield this.events[lo];
      }
      if (this.state !== 'running') {
        if (this.state !== 'succeeded') await this.result;
        return;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

/** Starts a training run in a worker thread and returns its job. */
export function startTraining(options: TrainJobOptions = {}): TrainingJob {
  return new TrainingJob(options);
}

/**
 * Trains (default: the seed's CNN on MNIST, 3 epochs, Adam lr 0.01, batch 100) in a
 * worker thread and evaluates on the test set; the caller's event loop stays free.
 * With `seed`, the numbers equal PyTorch's for the same program.
 * @example
 * const { history, accuracy, model } = await train({ epochs: 1, limit: 6000, seed: 0, onEpoch: (e) => console.log(e.cost) });
 */
export function train(options: TrainJobOptions = {}): Promise<TrainJobResult> {
  return new TrainingJob(options).result;
}
