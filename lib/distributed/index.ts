/**
 * Distributed training on PyTorch's own engine, c10d: process groups (Gloo for
 * CPU, NCCL for GPUs where libtorch has it) over a TCPStore rendezvous, the
 * collectives, and DistributedDataParallel-style gradient averaging.
 * Every collective runs off the JS thread and returns a Promise.
 */
import { expected, TorchError } from '../errors';
import { N, NativeGroup, NativeReducer } from '../native';
import { h, Tensor, wrap } from '../tensor';
import { noGrad } from '../autograd';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'product' | 'min' | 'max';

export interface InitOptions {
  /** 'gloo' (CPU, default) or 'nccl' (CUDA tensors; only where libtorch has NCCL). */
  backend?: Backend;
  /** Rank 0's address. Default: MASTER_ADDR, else 127.0.0.1. */
  masterAddr?: string;
  /** Rank 0's port for the TCPStore. Default: MASTER_PORT, else 29500. */
  masterPort?: number;
  /** Number of processes. Default: WORLD_SIZE, else 1. */
  worldSize?: number;
  /** This process's rank. Default: RANK, else 0. */
  rank?: number;
  /** How long rendezvous and each collective may wait, in ms (default 60 s; TORCHNODE_DIST_TIMEOUT_MS). */
  timeoutMs?: number;
  /** How often each rank records that it is alive, in ms (default 1000). */
  heartbeatMs?: number;
}

function envInt(name: string, dflt: number, env: NodeJS.ProcessEnv): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v)) throw new TypeError(`Expected an integer in ${name} but received '${v}'`);
  return Number(v);
}

/** Which backends this build has, and if none, why. */
export function isAvailable(): { gloo: boolean; nccl: boolean; reason: string | null } {
  return N.distAvailable();
}

/** Options resolved from arguments and the usual environment variables. */
export function resolveInitOptions(options: InitOptions = {}, env: NodeJS.ProcessEnv = process.env): Required<InitOptions> {
  const o = {
    backend: options.backend ?? ((env.TORCHNODE_DIST_BACKEND as Backend | undefined) || 'gloo'),
    masterAddr: options.masterAddr ?? (env.MASTER_ADDR || '127.0.0.1'),
    masterPort: options.masterPort ?? envInt('MASTER_PORT', 29500, env),
    worldSize: options.worldSize ?? envInt('WORLD_SIZE', 1, env),
    rank: options.rank ?? envInt('RANK', 0, env),
    timeoutMs: options.timeoutMs ?? envInt('TORCHNODE_DIST_TIMEOUT_MS', 60000, env),
    heartbeatMs: options.heartbeatMs ?? 1000,
  };
  if (o.backend !== 'gloo' && o.backend !== 'nccl') expected("'gloo' or 'nccl'", 'backend', o.backend);
  if (typeof o.masterAddr !== 'string' || !o.masterAddr) expected('a host name or address', 'masterAddr', o.masterAddr);
  if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) expected('a port in 1..65535', 'masterPort', o.masterPort);
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1) expected('a positive integer', 'worldSize', o.worldSize);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) expected(`a rank in 0..${o.worldSize - 1}`, 'rank', o.rank);
  if (!Number.isInteger(o.timeoutMs) || o.timeoutMs < 1) expected('a positive integer', 'timeoutMs', o.timeoutMs);
  return o;
}

/**
 * A group of processes that run collectives together (PyTorch's ProcessGroup).
 * Create one with `initProcessGroup()`.
 */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  private handle: NativeGroup | null;
  private heartbeat: NodeJS.Timeout | null = null;
  private beats = 0;
  private readonly heartbeatMs: number;

  /** @internal */
  constructor(handle: NativeGroup, heartbeatMs: number) {
    this.handle = handle;
    const i = N.distInfo(handle);
    this.rank = i.rank;
    this.worldSize = i.worldSize;
    this.backend = i.backend as Backend;
    this.timeoutMs = i.timeoutMs;
    this.heartbeatMs = heartbeatMs;
    if (this.worldSize > 1 && heartbeatMs > 0) {
      const beat = () => {
        if (!this.handle) return;
        N.distStoreSet(this.handle, `heartbeat/${this.rank}`, `${Date.now()} ${++this.beats}`).catch(() => undefined);
      };
      beat();
      this.heartbeat = setInterval(beat, heartbeatMs);
      this.heartbeat.unref();
    }
  }

  private get g(): NativeGroup {
    if (!this.handle) throw new Error('The process group has been destroyed');
    return this.handle;
  }

  /** Reduces tensors in place across all ranks (sum by default), like `dist.all_reduce`. */
  async allReduce(tensors: Tensor | Tensor[], op: ReduceOp = 'sum'): Promise<void> {
    const list = Array.isArray(tensors) ? tensors : [tensors];
    return this.explain(N.distAllReduce(this.g, list.map((t, i) => h(t, `tensors[${i}]`)), op));
  }
  /** Copies tensors from `root` to every rank, in place. */
  async broadcast(tensors: Tensor | Tensor[], root = 0): Promise<void> {
    const list = Array.isArray(tensors) ? tensors : [tensors];
    return this.explain(N.distBroadcast(this.g, list.map((t, i) => h(t, `tensors[${i}]`)), root));
  }
  /** Every rank's copy of `tensor`, in rank order. */
  async allGather(tensor: Tensor): Promise<Tensor[]> {
    const out = await this.explain(N.distAllGather(this.g, h(tensor, 'tensor')));
    return out.map(wrap);
  }
  /** Waits until every rank has called barrier(). */
  async barrier(): Promise<void> {
    return this.explain(N.distBarrier(this.g));
  }

  /**
   * Turns a failed collective into an error that names the lost rank: each rank
   * writes a heartbeat to the store; the one that stopped is the lost one (and when
   * the store itself is gone, rank 0, which hosts it, was lost).
   */
  private async explain<R>(p: Promise<R>): Promise<R> {
    try {
      return await p;
    } catch (e) {
      throw await this.diagnose(e as Error);
    }
  }

  /** @internal */
  async diagnose(cause: Error): Promise<Error> {
    if (this.worldSize === 1 || !this.handle) return cause;
    const g = this.handle;
    const withTimeout = <R>(p: Promise<R>, ms: number) =>
      Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('store timeout')), ms).unref())]);
    const readBeats = async () => {
      const beats = new Map<number, string | null>();
      for (let r = 0; r < this.worldSize; r++) {
        if (r === this.rank) continue;
        beats.set(r, await withTimeout(N.distStoreGet(g, `heartbeat/${r}`), 2000).catch((e: Error) => {
          if (/store timeout|Connection|Broken pipe|closed|reset/i.test(e.message)) throw e;
          return null;
        }));
      }
      return beats;
    };
    let lost: string[] = [];
    try {
      // A live rank's heartbeat moves on within a few periods; a lost one's stays put.
      const before = await readBeats();
      await new Promise((r) => setTimeout(r, 2.5 * this.heartbeatMs + 200));
      const after = await readBeats();
      for (const [r, b] of before) if (b === null || after.get(r) === b) lost.push(`rank ${r}`);
    } catch {
      lost = this.rank === 0 ? [] : ['rank 0 (it hosts the store, which no longer answers)'];
    }
    const who = lost.length ? `Lost ${lost.join(', ')}` : 'A peer failed';
    const err = new TorchError(`${who}; rank ${this.rank} stops: ${cause.message}`);
    (err as Error & { cause?: unknown }).cause = cause;
    return err;
  }

  /** Leaves the group and frees its threads and sockets. */
  async destroy(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    const g = this.handle;
    this.handle = null;
    if (g) await N.distDestroy(g);
  }

  /** @internal */
  get native(): NativeGroup {
    return this.g;
  }
}

/**
 * Joins a process group: rank 0 hosts a TCPStore at masterAddr:masterPort and
 * every rank waits (off the JS thread) until all `worldSize` ranks have joined.
 * Reads MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK when options omit them.
 * @example
 * const pg = await distributed.initProcessGroup({ backend: 'gloo' }); // from the env
 * await pg.allReduce(t); // t now holds the sum over ranks
 */
export async function initProcessGroup(options: InitOptions = {}): Promise<ProcessGroup> {
  const o = resolveInitOptions(options);
  const handle = await N.distInit(o.backend, o.masterAddr, o.masterPort, o.worldSize, o.rank, o.timeoutMs).catch((e: Error) => {
    throw new TorchError(
      `initProcessGroup: rank ${o.rank} of ${o.worldSize} could not join at ${o.masterAddr}:${o.masterPort} within ${o.timeoutMs} ms: ${e.message}`,
    );
  });
  return new ProcessGroup(handle, o.heartbeatMs);
}

/**
 * DistributedDataParallel's gradient averaging: gradients are all-reduced in
 * buckets (last layer first) as soon as backward has made them, overlapping the
 * rest of backward; `finish()` waits and writes the averages into `.grad`.
 * @example
 * const r = new GradReducer(pg, model.parameters());
 * r.prepare(); loss.backward(); await r.finish(); opt.step();
 */
export class GradReducer {
  private readonly r: NativeReducer;
  readonly buckets: number;
  constructor(readonly group: ProcessGroup, params: Tensor[], options: { bucketCapBytes?: number } = {}) {
    if (!(group instanceof ProcessGroup)) expected('a ProcessGroup', 'group', group);
    if (!Array.isArray(params) || params.length === 0) expected('a non-empty array of parameters', 'params', params);
    // DDP's default first bucket is 1 MiB, so the first all-reduce starts early in backward.
    this.r = N.distCreateReducer(group.native, params.map((p, i) => h(p, `params[${i}]`)), options.bucketCapBytes ?? 1 << 20);
    this.buckets = this.r.buckets;
  }
  /** Call before each backward. */
  prepare(): void {
    N.distReducerPrepare(this.r);
  }
  /** Waits for every bucket's all-reduce; each parameter's .grad becomes the mean over ranks. */
  async finish(): Promise<void> {
    try {
      await N.distReducerFinish(this.r);
    } catch (e) {
      throw await this.group.diagnose(e as Error);
    }
  }
}

/** Copies every parameter (and buffer) from rank 0 to all ranks, as DDP does at start. */
export async function syncParameters(group: ProcessGroup, tensors: Tensor[]): Promise<void> {
  if (!tensors.length) return;
  const plain = noGrad(() => tensors.map((t) => t.detach()));
  try {
    await group.broadcast(plain, 0);
  } finally {
    plain.forEach((t) => t.dispose());
  }
}
