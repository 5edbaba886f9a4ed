/**
 * Distributed training on PyTorch's own engine, c10d: process groups (Gloo for
 * CPU, NCCL for GPUs where libtorch has it) over a TCPStore rendezvous, the
 * collectives, and DistributedDataParallel-style gradient averaging.
 * Every collective runs off the JS thread and returns a Promise.
 */
import { expected, TorchError } from '../errors';
import { N, NativeGroup, NativeReducer } from '../native';
import { DType, h, tensor as makeTensor, Tensor, wrap } from '../tensor';
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
  /**
   * Before each allReduce, broadcast and allGather, check that every rank called the
   * same collective with the same op/root and tensors of the same dtype and shape
   * (one extra all-gather of a few int64s, like TORCHNODE_DISTRIBUTED_DEBUG=DETAIL
   * in PyTorch). A mismatch rejects on every rank with the same error and the group
   * stays usable; without the check Gloo aborts the process or returns garbage.
   * Default true. Set the same value on every rank (a rank that checks pairs its
   * check with the other's collective). GradReducer's bucket all-reduces never pay it.
   */
  checkShapes?: boolean;
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
    checkShapes: options.checkShapes ?? true,
  };
  if (o.backend !== 'gloo' && o.backend !== 'nccl') expected("'gloo' or 'nccl'", 'backend', o.backend);
  if (typeof o.masterAddr !== 'string' || !o.masterAddr) expected('a host name or address', 'masterAddr', o.masterAddr);
  if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) expected('a port in 1..65535', 'masterPort', o.masterPort);
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1) expected('a positive integer', 'worldSize', o.worldSize);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) expected(`a rank in 0..${o.worldSize - 1}`, 'rank', o.rank);
  if (!Number.isInteger(o.timeoutMs) || o.timeoutMs < 1) expected('a positive integer', 'timeoutMs', o.timeoutMs);
  if (typeof o.checkShapes !== 'boolean') expected('true or false', 'checkShapes', o.checkShapes);
  return o;
}

type Collective = 'allReduce' | 'broadcast' | 'allGather';
const COLLECTIVES: Collective[] = ['allReduce', 'broadcast', 'allGather'];
const REDUCE_OPS: ReduceOp[] = ['sum', 'product', 'min', 'max'];
const DTYPES: DType[] = ['float32', 'float64', 'int64', 'int32', 'uint8', 'bool'];
const MAX_DIMS = 8;
const META = 2 + MAX_DIMS; // dtype, ndim, sizes

/** [dtype code, ndim, sizes padded to 8 dims; past 8 dims the last slot is a hash of the rest]. */
function describe(t: Tensor): number[] {
  const shape = t.shape;
  const dt = DTYPES.indexOf(t.dtype);
  const sizes = shape.slice(0, MAX_DIMS);
  while (sizes.length < MAX_DIMS) sizes.push(-1);
  if (shape.length > MAX_DIMS) {
    let hsh = 0;
    for (const d of shape.slice(MAX_DIMS - 1)) hsh = (hsh * 1000003 + d) % 2 ** 48;
    sizes[MAX_DIMS - 1] = hsh;
  }
  return [dt < 0 ? 100 : dt, shape.length, ...sizes];
}

function showMeta(row: number[], at: number): string {
  const dt = DTYPES[row[at]] ?? (row[at] === 100 ? 'an unlisted dtype' : '?');
  const ndim = row[at + 1];
  const dims = row.slice(at + 2, at + 2 + Math.min(ndim, MAX_DIMS)).map(String);
  if (ndim > MAX_DIMS) dims[MAX_DIMS - 1] = `...(${ndim - MAX_DIMS + 1} more)`;
  return `${dt} [${dims.join(', ')}]`;
}

function sameRange(a: number[], b: number[], from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  return true;
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
  /** Whether collectives first check that all ranks agree on their arguments (InitOptions.checkShapes). */
  readonly checkShapes: boolean;

  /** @internal */
  constructor(handle: NativeGroup, heartbeatMs: number, checkShapes = true) {
    this.handle = handle;
    this.checkShapes = checkShapes;
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
    const hs = list.map((t, i) => h(t, `tensors[${i}]`));
    const opCode = REDUCE_OPS.indexOf(op);
    if (opCode < 0) expected("'sum', 'product', 'min' or 'max'", 'op', op);
    await this.agree('allReduce', opCode, list, 'tensors');
    return this.explain(N.distAllReduce(this.g, hs, op));
  }
  /** Copies tensors from `root` to every rank, in place. */
  async broadcast(tensors: Tensor | Tensor[], root = 0): Promise<void> {
    const list = Array.isArray(tensors) ? tensors : [tensors];
    const hs = list.map((t, i) => h(t, `tensors[${i}]`));
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) expected(`a rank in 0..${this.worldSize - 1}`, 'root', root);
    await this.agree('broadcast', root, list, 'tensors');
    return this.explain(N.distBroadcast(this.g, hs, root));
  }
  /** Every rank's copy of `tensor`, in rank order (all ranks' tensors must have one dtype and shape). */
  async allGather(tensor: Tensor): Promise<Tensor[]> {
    const th = h(tensor, 'tensor');
    await this.agree('allGather', 0, [tensor], 'tensor');
    const out = await this.explain(N.distAllGather(this.g, th));
    return out.map(wrap);
  }

  /**
   * Checks that every rank called the same collective with the same op or root
   * and tensors of the same dtype and shape, by all-gathering a few int64s
   * ([collective, op/root, count, dtype, ndim, 8 sizes]; then, for several
   * tensors, every tensor's dtype and shape). All ranks see the same gathered
   * rows, so all reject with the same message, before the real collective runs:
   * the group stays usable.
   */
  private async agree(collective: Collective, param: number, list: Tensor[], arg: string): Promise<void> {
    if (!this.checkShapes || this.worldSize === 1) return;
    const rows = await this.gatherMeta(collective, [COLLECTIVES.indexOf(collective), param, list.length, ...(list.length ? describe(list[0]) : new Array<number>(META).fill(-1))], list[0]);
    const fail = (what: string, show: (row: number[]) => string, from: number, to: number, has = 'has') => {
      const r = rows.findIndex((row) => !sameRange(row, rows[0], from, to));
      if (r < 0) return;
      throw new TorchError(`${collective}: ${what} differs between ranks: rank 0 ${has} ${show(rows[0])} but rank ${r} ${has} ${show(rows[r])}`);
    };
    fail('the collective', (row) => COLLECTIVES[row[0]] ?? '?', 0, 1, 'called');
    if (collective === 'allReduce') fail('op', (row) => `'${REDUCE_OPS[row[1]] ?? '?'}'`, 1, 2);
    if (collective === 'broadcast') fail('root', (row) => `root ${row[1]}`, 1, 2);
    fail(`the number of ${arg}`, (row) => `${row[2]} tensor${row[2] === 1 ? '' : 's'}`, 2, 3);
    const name = (i: number) => (arg === 'tensor' ? arg : `${arg}[${i}]`);
    if (list.length) fail(name(0), (row) => showMeta(row, 3), 3, 3 + META);
    if (list.length < 2) return;
    const all = await this.gatherMeta(collective, list.slice(1).flatMap(describe), list[0]);
    for (let i = 0; i < list.length - 1; i++) {
      const from = i * META;
      const r = all.findIndex((row) => !sameRange(row, all[0], from, from + META));
      if (r >= 0) {
        throw new TorchError(
          `${collective}: ${name(i + 1)} differs between ranks: rank 0 has ${showMeta(all[0], from)} but rank ${r} has ${showMeta(all[r], from)}`,
        );
      }
    }
  }

  private async gatherMeta(collective: Collective, values: number[], like?: Tensor): Promise<number[][]> {
    // NCCL needs the metadata on this rank's GPU: the one its tensors are on.
    const device = this.backend === 'nccl' ? (like?.device ?? 'cuda') : 'cpu';
    const meta = makeTensor(values, { dtype: 'int64', device });
    try {
      const got = await this.explain(
        N.distAllGather(this.g, h(meta, 'meta')).catch((e: Error) => {
          e.message = `${collective} (checking that all ranks agree on dtype and shape): ${e.message}`;
          throw e;
        }),
      );
      const out = got.map(wrap);
      try {
        return out.map((t) => (t.toArray() as (number | bigint)[]).map(Number));
      } finally {
        out.forEach((t) => t.dispose());
      }
    } finally {
      meta.dispose();
    }
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
  return new ProcessGroup(handle, o.heartbeatMs, o.checkShapes);
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
