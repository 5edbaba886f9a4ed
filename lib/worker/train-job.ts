/**
 * The training worker's job: rebuilds the model and data from plain messages,
 * runs the one training loop (trainInThisThread) and sends back the trained
 * weights and optimizer state. Loaded by entry.ts in a worker thread.
 */
import * as path from 'node:path';
import { trainInThisThread, BatchEvent, EpochRecord } from '../train';
import { buildModule, ModuleSpec } from '../nn/spec';
import { Module, AnyModule } from '../nn/module';
import { CNN } from '../nn/models';
import { TensorDataset } from '../data/dataset';
import { MNIST } from '../data/mnist';
import { Tensor } from '../tensor';
import { Generator, useThreadGenerator } from '../random';
import { pack, unpack } from './transfer';
import type { WorkerContext } from './entry';
import { argTypeError } from '../errors';

/** How the model is rebuilt in the worker. */
export type ModelSource =
  | { kind: 'cnn' }
  | { kind: 'spec'; spec: ModuleSpec }
  | { kind: 'file'; file: string; exportName?: string; args?: unknown[] };

/** How a dataset is rebuilt in the worker. */
export type DataSource = { kind: 'mnist'; root?: string; train: boolean; limit?: number } | { kind: 'tensors'; tensors: unknown } | null;

export interface TrainJobMessage {
  options: Record<string, unknown>;
  /** The caller's thread limit (maxTrainThreads()), so the worker applies the same one. */
  maxThreads?: number;
  model: ModelSource;
  /** Packed state dict to start from (the caller's model's weights). */
  initialState?: unknown;
  resume?: unknown;
  trainData?: DataSource;
  testData?: DataSource;
}

export interface TrainJobEvent {
  type: 'batch' | 'epoch';
  data: BatchEvent | EpochRecord;
}

/** Builds the model the message describes (exported for the caller's side too). */
export function buildModel(src: ModelSource): AnyModule {
  if (src.kind === 'cnn') return new CNN();
  if (src.kind === 'spec') return buildModule(src.spec);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require(path.resolve(src.file));
  const name = src.exportName ?? 'default';
  const Cls = name === 'default' ? mod.default ?? mod : mod[name];
  if (typeof Cls !== 'function') {
    throw argTypeError(`Expected ${src.file} to export a Module class${src.exportName ? ` named '${src.exportName}'` : ' (default export)'}`);
  }
  const m = new Cls(...(src.args ?? [])) as AnyModule;
  // Duck-typed: a second copy of torchnode (or a test runner's) has its own Module class.
  const looksLikeModule = (v: unknown) =>
    v instanceof Module || (!!v && ['forward', 'parameters', 'stateDict', 'loadStateDict'].every((k) => typeof (v as Record<string, unknown>)[k] === 'function'));
  if (!looksLikeModule(m)) {
    throw argTypeError(
      `${src.file}'s export ${name} did not build a torchnode Module (is the file importing the same torchnode package?)`,
    );
  }
  return m;
}

function buildData(src: DataSource | undefined) {
  if (!src) return src;
  if (src.kind === 'mnist') return new MNIST({ root: src.root, train: src.train, limit: src.limit });
  return new TensorDataset(...(unpack(src.tensors) as Tensor[]));
}

export async function trainJob(msg: TrainJobMessage, ctx: WorkerContext) {
  // Random draws in this job come from a generator of its own (seeded by the
  // seed option, else non-deterministically), never the process-wide one that
  // the caller and other jobs use.
  const g = new Generator();
  g.seed();
  useThreadGenerator(g);
  // A worker's process.env is its own copy: setting it here changes no other thread.
  if (msg.maxThreads !== undefined) process.env.TORCHNODE_MAX_THREADS = String(msg.maxThreads);
  const resume = msg.resume ? (unpack(msg.resume) as Record<string, unknown>) : undefined;
  const result = await trainInThisThread({
    ...msg.options,
    model: () => {
      const m = buildModel(msg.model);
      if (msg.initialState) m.loadStateDict(unpack(msg.initialState) as Map<string, Tensor>);
      return m;
    },
    trainData: buildData(msg.trainData) ?? undefined,
    testData: msg.testData === null ? null : buildData(msg.testData) ?? undefined,
    resume,
    signal: ctx.signal,
    onBatch: (e) => ctx.emit({ type: 'batch', data: e } satisfies TrainJobEvent),
    onEpoch: (e) => ctx.emit({ type: 'epoch', data: e } satisfies TrainJobEvent),
  });
  return {
    history: result.history,
    accuracy: result.accuracy,
    device: result.device,
    seconds: result.seconds,
    modelState: pack(result.model.stateDict()),
    optimizerState: pack(result.optimizer.stateDict()),
    rngState: pack(g.getState()),
  };
}
