/**
 * Distributed training on PyTorch's own engine, c10d: process groups (Gloo for
 * CPU, NCCL for GPUs where libtorch has it) over a TCPStore rendezvous, the
 * collectives, and DistributedDataParallel-style gradient averaging.
 * Every collective runs off the JS thread and returns a Promise.
 */
import { checkKeys, expected, TorchError, argTypeError, codedError, ERROR_CODES } from '../errors';
import { N, NativeGroup, NativeReducer } from '../native';
import { DType, h, tensor as makeTensor, Tensor, wrap } from '../tensor';
import { noGrad } from '../autograd';
import * as dns from 'node:dns';
import * as os from 'node:os';
import * as path from 'node:path';

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
  /**
   * How ranks find each other, as PyTorch's `init_method`: 'env://' (default: masterAddr
   * and masterPort, from MASTER_ADDR and MASTER_PORT), 'tcp://host:port', or
   * 'file:///absolute/path' (a FileStore: ranks on one machine, or on a shared file system;
   * no socket is opened for the store). Default: TORCHNODE_DIST_INIT_METHOD, else 'env://'.
   */
  initMethod?: string;
  /**
   * The network interfaces Gloo uses, comma-separated (e.g. 'eth0'), as PyTorch's
   * GLOO_SOCKET_IFNAME. Default: GLOO_SOCKET_IFNAME; when unset, loopback if every rank
   * is local (masterAddr 127.0.0.1 / localhost), else the address this host's name resolves to.
   */
  socketIfname?: string;
}

/** Where the store is and which interfaces Gloo binds, resolved from InitOptions. */
export interface Rendezvous {
  store: 'tcp' | 'file';
  /** The FileStore's path ('file' store only). */
  filePath: string | null;
  /** Gloo's interfaces, and what named them (for errors). */
  ifnames: string[];
  ifnameSource: string;
  /** Gloo's device host when no interface is named: '127.0.0.1' for local runs, '' for this host's name. */
  hostname: string;
}

function envInt(name: string, dflt: number, env: NodeJS.ProcessEnv): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v)) throw argTypeError(`Expected an integer in ${name} but received '${v}'`);
  return Number(v);
}

/** Which backends this build has, and if none, why. */
export function isAvailable(): { gloo: boolean; nccl: boolean; reason: string | null } {
  return N.distAvailable();
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Options resolved from arguments and the usual environment variables. */
export function resolveInitOptions(options: InitOptions = {}, env: NodeJS.ProcessEnv = process.env): Required<InitOptions> & { rendezvous: Rendezvous } {
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  const known = ['backend', 'masterAddr', 'masterPort', 'worldSize', 'rank', 'timeoutMs', 'heartbeatMs', 'checkShapes', 'initMethod', 'socketIfname'];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw argTypeError(`initProcessGroup: unknown option '${k}' (expected one of ${known.join(', ')})`);
  }
  const initMethod = options.initMethod ?? (env.TORCHNODE_DIST_INIT_METHOD || 'env://');
  if (typeof initMethod !== 'string') expected("'env://', 'tcp://host:port' or 'file:///path'", 'initMethod', initMethod);
  let fromInit: { masterAddr?: string; masterPort?: number; filePath?: string } = {};
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(initMethod);
  if (tcp) fromInit = { masterAddr: tcp[1].replace(/^\[|\]$/g, ''), masterPort: Number(tcp[2]) };
  else if (initMethod.startsWith('file://')) {
    const file = initMethod.slice('file://'.length);
    if (!path.isAbsolute(file)) expected("'file://' and an absolute path, like 'file:///tmp/store'", 'initMethod', initMethod);
    fromInit = { filePath: file };
  } else if (initMethod !== 'env://') expected("'env://', 'tcp://host:port' or 'file:///path'", 'initMethod', initMethod);
  const explicitAddr = fromInit.masterAddr ?? options.masterAddr ?? (env.MASTER_ADDR || undefined);
  const o = {
    backend: options.backend ?? ((env.TORCHNODE_DIST_BACKEND as Backend | undefined) || 'gloo'),
    masterAddr: explicitAddr ?? '127.0.0.1',
    masterPort: fromInit.masterPort ?? options.masterPort ?? envInt('MASTER_PORT', 29500, env),
    worldSize: options.worldSize ?? envInt('WORLD_SIZE', 1, env),
    rank: options.rank ?? envInt('RANK', 0, env),
    timeoutMs: options.timeoutMs ?? envInt('TORCHNODE_DIST_TIMEOUT_MS', 60000, env),
    heartbeatMs: options.heartbeatMs ?? 1000,
    checkShapes: options.checkShapes ?? true,
    initMethod,
    socketIfname: options.socketIfname ?? (env.GLOO_SOCKET_IFNAME || ''),
  };
  if (o.backend !== 'gloo' && o.backend !== 'nccl') expected("'gloo' or 'nccl'", 'backend', o.backend);
  if (typeof o.masterAddr !== 'string' || !o.masterAddr) expected('a host name or address', 'masterAddr', o.masterAddr);
  if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) expected('a port in 1..65535', 'masterPort', o.masterPort);
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1) expected('a positive integer', 'worldSize', o.worldSize);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) expected(`a rank in 0..${o.worldSize - 1}`, 'rank', o.rank);
  if (!Number.isInteger(o.timeoutMs) || o.timeoutMs < 1) expected('a positive integer', 'timeoutMs', o.timeoutMs);
  if (!Number.isInteger(o.heartbeatMs) || o.heartbeatMs < 0) expected('a non-negative integer (0: no heartbeat)', 'heartbeatMs', o.heartbeatMs);
  if (typeof o.checkShapes !== 'boolean') expected('true or false', 'checkShapes', o.checkShapes);
  if (typeof o.socketIfname !== 'string') expected("interface names, comma-separated (like 'eth0')", 'socketIfname', o.socketIfname);
  const ifnames = o.socketIfname.split(',').map((x) => x.trim()).filter(Boolean);
  const ifnameSource = options.socketIfname !== undefined ? 'socketIfname' : 'GLOO_SOCKET_IFNAME';
  for (const n of ifnames) {
    if (n.length > 15 || /[\s/]/.test(n)) expected('a network interface name (at most 15 characters)', ifnameSource, n);
  }
  // Gloo on loopback when every rank is local: the store's host is loopback (env:// or
  // tcp://), or a file store whose ranks were told so (MASTER_ADDR=127.0.0.1, as --nproc does).
  const local = LOOPBACK.has(o.masterAddr) && (fromInit.filePath === undefined || explicitAddr !== undefined);
  const rendezvous: Rendezvous = {
    store: fromInit.filePath !== undefined ? 'file' : 'tcp',
    filePath: fromInit.filePath ?? null,
    ifnames,
    ifnameSource,
    hostname: ifnames.length ? '' : local ? '127.0.0.1' : '',
  };
  return { ...o, rendezvous };
}

type Collective = 'allReduce' | 'broadcast' | 'allGather' | 'barrier';
const COLLECTIVES: Collective[] = ['allReduce', 'broadcast', 'allGather', 'barrier'];
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
  /** @internal Appended to errors that a lost peer could explain: a likely misconfiguration. */
  hint = '';
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
      // One beat at a time: while Gloo's own rendezvous holds the store, beats wait
      // behind it rather than pile up on libuv's threads.
      let inflight = false;
      const beat = () => {
        if (!this.handle || inflight) return;
        inflight = true;
        N.distStoreSet(this.handle, `heartbeat/${this.rank}`, `${Date.now()} ${++this.beats}`)
          .catch(() => undefined)
          .finally(() => {
            inflight = false;
          });
      };
      beat();
      this.heartbeat = setInterval(beat, heartbeatMs);
      this.heartbeat.unref();
    }
  }

  private get g(): NativeGroup {
    if (!this.handle) throw codedError(ERROR_CODES.disposed, 'The process group has been destroyed');
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
    // Checked like the others, so a barrier on one rank against a collective on
    // another is named instead of pairing Gloo's barrier with that collective's data.
    await this.agree('barrier', 0, [], 'tensors');
    return this.explain(N.distBarrier(this.g));
  }

  /**
   * The join step of initProcessGroup: writes join/<rank>, then waits until every rank
   * has. A rank that has not joined by the deadline is named; so is one that joined
   * and then stopped beating (killed during rendezvous), as soon as that shows.
   * @internal
   */
  async join(deadline: number): Promise<void> {
    if (this.worldSize === 1) return;
    const g = this.g;
    await N.distStoreSet(g, `join/${this.rank}`, `${process.pid}@${os.hostname()}`);
    const waiting = new Set<number>();
    for (let r = 0; r < this.worldSize; r++) if (r !== this.rank) waiting.add(r);
    const joined = new Set<number>();
    // For joined ranks: their last heartbeat value and when it last changed.
    const beats = new Map<number, { value: string | null; since: number }>();
    const staleMs = this.heartbeatMs > 0 ? Math.max(4 * this.heartbeatMs, 2000) : Infinity;
    let lastBeatCheck = 0;
    const ranks = (xs: number[]) => `rank${xs.length > 1 ? 's' : ''} ${xs.join(', ')}`;
    const joinedSoFar = () => ranks([this.rank, ...joined].sort((a, b) => a - b));
    // The store is rank 0's: when it stops answering, rank 0 gave up (its deadline came
    // first) or was lost; say which ranks were still missing then.
    const store = <R>(p: Promise<R>): Promise<R> =>
      p.catch((e: Error) => {
        throw new TorchError(
          `the store (hosted by rank 0) stopped answering while ${waiting.size ? `${ranks([...waiting])} had not joined` : 'checking heartbeats'} (joined: ${joinedSoFar()}): ${e.message}`,
        );
      });
    for (;;) {
      const list = [...waiting];
      if (list.length) {
        const got = await store(N.distStoreCheck(g, list.map((r) => `join/${r}`)));
        list.forEach((r, i) => {
          if (got[i]) {
            waiting.delete(r);
            joined.add(r);
            beats.set(r, { value: null, since: Date.now() });
          }
        });
      }
      const now = Date.now();
      if (staleMs !== Infinity && now - lastBeatCheck >= this.heartbeatMs) {
        lastBeatCheck = now;
        for (const r of joined) {
          const ok = await store(N.distStoreCheck(g, [`heartbeat/${r}`]));
          const value = ok[0] ? await N.distStoreGet(g, `heartbeat/${r}`).catch(() => null) : null;
          const b = beats.get(r)!;
          if (value !== null && value !== b.value) beats.set(r, { value, since: now });
          else if (now - b.since > staleMs) {
            throw new TorchError(
              `rank ${r} joined and then stopped (no heartbeat for ${now - b.since} ms); it was lost during rendezvous`,
            );
          }
        }
      }
      if (!waiting.size) return;
      if (now >= deadline) {
        throw new TorchError(`${ranks([...waiting])} did not join within ${this.timeoutMs} ms (joined: ${joinedSoFar()})`);
      }
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - now))));
    }
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
    const err = new TorchError(`${who}; rank ${this.rank} stops: ${cause.message}${this.hint}`);
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
 * Joins a process group: rank 0 hosts a TCPStore at masterAddr:masterPort (or every
 * rank opens one FileStore, with initMethod 'file:///path'), each rank writes that it
 * has joined, and every rank waits (off the JS thread) until all `worldSize` have.
 * A rank that has not joined within timeoutMs is named in the error; one that joined
 * and was then lost (its heartbeat stopped) is named as soon as that shows.
 * Reads MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, GLOO_SOCKET_IFNAME and
 * TORCHNODE_DIST_INIT_METHOD when options omit them.
 * @example
 * const pg = await distributed.initProcessGroup({ backend: 'gloo' }); // from the env
 * await pg.allReduce(t); // t now holds the sum over ranks
 */
export async function initProcessGroup(options: InitOptions = {}): Promise<ProcessGroup> {
  const o = resolveInitOptions(options);
  const rv = o.rendezvous;
  const where = rv.store === 'file' ? `the file store ${rv.filePath}` : `${o.masterAddr}:${o.masterPort}`;
  const fail = (e: Error) => {
    const err = new TorchError(`initProcessGroup: rank ${o.rank} of ${o.worldSize} could not join at ${where} within ${o.timeoutMs} ms: ${e.message}`);
    (err as Error & { cause?: unknown }).cause = e;
    return err;
  };
  const deadline = Date.now() + o.timeoutMs;
  const handle = await N.distConnect(o.backend, rv.store, o.masterAddr, o.masterPort, o.worldSize, o.rank, o.timeoutMs, rv.filePath).catch((e: Error) => {
    if (o.rank !== 0 && rv.store === 'tcp') e.message = `rank 0 hosts the store and did not answer: ${e.message}`;
    throw fail(e);
  });
  const pg = new ProcessGroup(handle, o.heartbeatMs, o.checkShapes);
  pg.hint = await loopbackHint(o.masterAddr, rv);
  try {
    await pg.join(deadline);
    await N.distInitBackend(handle, rv.ifnames, rv.ifnameSource, rv.hostname).catch(async (e: Error) => {
      throw /GLOO_SOCKET_IFNAME|socketIfname|network interface/.test(e.message) ? e : await pg.diagnose(e);
    });
  } catch (e) {
    await pg.destroy().catch(() => undefined);
    throw fail(e as Error);
  }
  return pg;
}

/**
 * Gloo's default device is the address this host's name resolves to. Where that is
 * loopback but the master is another machine, peers are told to reach this rank at
 * 127.0.0.1, which fails as a timeout or a refused connection that names nothing;
 * say so in such errors. (Not an error by itself: ranks on one machine given its LAN
 * address still work over loopback.)
 */
/** @internal */
export async function loopbackHint(masterAddr: string, rv: Rendezvous): Promise<string> {
  if (rv.ifnames.length || rv.hostname || LOOPBACK.has(masterAddr)) return '';
  const host = os.hostname();
  const found = await dns.promises.lookup(host).catch(() => null);
  if (!found || !/^(127\.|::1$)/.test(found.address)) return '';
  return ` (this host's name '${host}' resolves to ${found.address}, so Gloo listens on loopback, where ranks on other machines cannot reach it; set GLOO_SOCKET_IFNAME to the interface to use)`;
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
    checkKeys(options, ['bucketCapBytes'], 'distributed.GradReducer');
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
