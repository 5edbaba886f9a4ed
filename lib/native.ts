/**
 * The only file that touches the native addon: loads it with node-gyp-build and
 * declares its typed interface. Everything else imports `N` from here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TorchError } from './errors';

/** Opaque handle to a native tensor. */
export interface NativeTensor {
  readonly __brand: 'NativeTensor';
}

/** Opaque handle to a dispatcher operator (one overload), from opHandle. */
export interface NativeOp {
  readonly __brand: 'NativeOp';
  readonly name: string;
}

/** Opaque handle to a c10d process group. */
export interface NativeGroup {
  readonly __brand: 'NativeGroup';
}
/** Opaque handle to a gradient reducer. */
export interface NativeReducer {
  readonly __brand: 'NativeReducer';
  readonly buckets: number;
}

/** Native CPU random-number generator. */
export interface NativeGenerator {
  manualSeed(seed: number | bigint): NativeGenerator;
  initialSeed(): bigint;
  seed(): bigint;
  getState(): NativeTensor;
  setState(state: NativeTensor): NativeGenerator;
}

type T = NativeTensor;
type Scalar = number | boolean | bigint;
type Opt<X> = X | null | undefined;
type Ints = number | number[];
type DT = Opt<string>;
type Dev = Opt<string>;
/** 'contiguous_format' | 'channels_last' | 'channels_last_3d' | 'preserve_format' */
type MemoryFormat = Opt<string>;
type Gen = Opt<NativeGenerator>;

/** The functions the addon exports (see native/*.cc). */
export interface NativeAddon {
  NativeGenerator: new (global?: boolean) => NativeGenerator;
  // tensor.cc
  dispose(t: T): void;
  fromBuffer(data: ArrayBufferView, shape: number[], dtype?: DT): T;
  toTypedArray(t: T): Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int16Array | Int8Array | Uint16Array;
  item(t: T, bigint?: boolean): number | boolean | bigint | [number, number];
  setDefaultDtype(dtype: string): void;
  setReturnErrors(box: new (e: Error) => unknown): unknown;
  getDefaultDtype(): string;
  shape(t: T): number[];
  strides(t: T): number[];
  dtype(t: T): string;
  device(t: T): string;
  isContiguous(t: T, memoryFormat?: MemoryFormat): boolean;
  numel(t: T): number;
  memory(): { tensors: number; bytes: number; created: number; disposed: number; collected: number };
  setErrorClass(cls: new (msg: string) => Error): void;
  // dispatch.cc: the generic op path (lib/ops/)
  opSchemas(): { name: string; overload: string; schema: string }[];
  opHandle(name: string, overload: string): NativeOp;
  callOp(op: unknown, ...args: unknown[]): unknown;
  opArgs(op: unknown): { name: string; type: string; supported: boolean; hasDefault: boolean; kwargOnly: boolean }[];
  // factories.cc
  zeros(size: Ints, dtype?: DT, device?: Dev): T;
  ones(size: Ints, dtype?: DT, device?: Dev): T;
  empty(size: Ints, dtype?: DT, device?: Dev): T;
  full(size: Ints, value: Scalar, dtype?: DT, device?: Dev): T;
  arange(start: number, end: number, step: number, dtype?: DT, device?: Dev): T;
  rand(size: Ints, dtype?: DT, device?: Dev, gen?: Gen): T;
  randn(size: Ints, dtype?: DT, device?: Dev, gen?: Gen): T;
  randint(low: number, high: number, size: Ints, dtype?: DT, device?: Dev, gen?: Gen): T;
  randperm(n: number, dtype?: DT, device?: Dev, gen?: Gen): T;
  manualSeed(seed: number | bigint): void;
  // math.cc
  sigmoid(t: T): T; tanh(t: T): T; detach(t: T): T; contiguous(t: T, memoryFormat?: MemoryFormat): T;
  view(t: T, shape: Ints): T; cat(ts: T[], dim?: number): T;
  to(t: T, dtype?: DT, device?: Dev, nonBlocking?: boolean, copy?: boolean, memoryFormat?: MemoryFormat): T;
  // nn.cc
  conv2d(x: T, w: T, b: Opt<T>, stride: number[], padding: number[], dilation: number[], groups: number): T;
  conv2dMkldnn(x: T, w: T, b: Opt<T>, stride: number[], padding: number[], dilation: number[], groups: number): T;
  maxPool2d(x: T, k: number[], stride: number[], padding: number[], dilation: number[], ceilMode: boolean): T;
  avgPool2d(x: T, k: number[], stride: number[], padding: number[], ceilMode: boolean, countIncludePad: boolean, divisorOverride?: Opt<number>): T;
  adaptiveAvgPool2d(x: T, outputSize: number[]): T;
  /** `split` forces (true) or refuses (false) the thread-split products of native/linear.cc; left out, they are used where exact and worthwhile. */
  linear(x: T, w: T, b?: Opt<T>, split?: boolean): T;
  linearSplitInfo(): { enabled: boolean; reason: string; blas: string; calls: number; threads: 'openmp' | 'interop' };
  relu(x: T): T; leakyRelu(x: T, slope?: number): T;
  softmax(x: T, dim: number, dtype?: DT): T; logSoftmax(x: T, dim: number, dtype?: DT): T;
  dropout(x: T, p: number, training: boolean): T;
  crossEntropy(x: T, target: T, weight: Opt<T>, reduction: string, ignoreIndex: number, labelSmoothing: number): T;
  nllLoss(x: T, target: T, weight: Opt<T>, reduction: string, ignoreIndex: number): T;
  mseLoss(x: T, target: T, reduction: string): T;
  // autograd.cc
  requiresGrad_(t: T, v?: boolean): T; requiresGrad(t: T): boolean; isLeaf(t: T): boolean;
  backward(t: T, gradient?: Opt<T>, retainGraph?: Opt<boolean>, createGraph?: boolean): void;
  grad(t: T): T | null; setGrad(t: T, g: Opt<T>): void;
  isGradEnabled(): boolean; setGradEnabled(v: boolean): boolean;
  enterInferenceMode(): number; exitInferenceMode(): number; isInferenceMode(): boolean;
  autogradGrad(outputs: T[], inputs: T[], gradOutputs?: Opt<T[]>, retainGraph?: Opt<boolean>, createGraph?: boolean, allowUnused?: boolean): (T | null)[];
  // distributed.cc
  distAvailable(): { gloo: boolean; nccl: boolean; reason: string | null };
  distConnect(backend: string, store: 'tcp' | 'file', addr: string, port: number, worldSize: number, rank: number, timeoutMs: number, filePath: string | null): Promise<NativeGroup>;
  distInitBackend(g: NativeGroup, ifnames: string[], ifnameSource: string, hostname: string): Promise<void>;
  distStoreCheck(g: NativeGroup, keys: string[]): Promise<boolean[]>;
  distInfo(g: NativeGroup): { rank: number; worldSize: number; backend: string; timeoutMs: number };
  distAllReduce(g: NativeGroup, ts: T[], op?: string): Promise<void>;
  distBroadcast(g: NativeGroup, ts: T[], root: number): Promise<void>;
  distAllGather(g: NativeGroup, t: T): Promise<T[]>;
  distBarrier(g: NativeGroup): Promise<void>;
  distStoreSet(g: NativeGroup, key: string, value: string): Promise<void>;
  distStoreGet(g: NativeGroup, key: string): Promise<string>;
  distDestroy(g: NativeGroup): Promise<void> | undefined;
  distCreateReducer(g: NativeGroup, params: T[], bucketCapBytes: number): NativeReducer;
  distReducerPrepare(r: NativeReducer): void;
  distReducerFinish(r: NativeReducer): Promise<void>;
  // device.cc
  cudaIsAvailable(): boolean; cudaDeviceCount(): number; cudaSynchronize(device?: number): void;
  cudaManualSeedAll(seed: number | bigint): void;
  cudaMemory(device?: number): { allocated: number; reserved: number; maxAllocated: number } | null;
  cudaEmptyCache(): void;
  setNumThreads(n: number): void; getNumThreads(): number; releaseMemory(): boolean;
  cpuCacheInfo(): { enabled: boolean; reason: string; cachedBytes: number; cachedBlocks: number; liveBytes: number; limitBytes: number; hits: number; misses: number };
  emptyCpuCache(): number;
  buildInfo(): { version: string; compiledWithCuda: boolean; mkldnn: boolean; mkl: boolean; openmp: boolean; parallelInfo: string; cxx11Abi: boolean };
}

/** Package root (holds package.json, libtorch.json and build/). */
export const packageRoot = path.resolve(__dirname, '..');

/** The record written by scripts/install.js. */
export interface LibtorchRecord {
  path: string;
  cmakeDir: string;
  libDir: string;
  includeDirs: string[];
  version: string;
  variant: string;
  cuda: boolean;
  /** Which resolution step found it. */
  how: 'LIBTORCH' | 'cache' | 'pytorch' | 'system' | 'download' | 'apt';
  reason?: string;
  /** sha256 of the downloaded zip (null when nothing was downloaded). */
  sha256?: string | null;
  /** Whether that sha256 was checked against a pinned or given one (LIBTORCH_SHA256). */
  sha256Verified?: boolean;
  resolvedAt?: string;
}

export function libtorchRecordPath(): string {
  return process.env.TORCHNODE_CONFIG || path.join(packageRoot, 'libtorch.json');
}

/** Reads libtorch.json, or null when the installer has not run. */
export function readLibtorchRecord(): LibtorchRecord | null {
  try {
    return JSON.parse(fs.readFileSync(libtorchRecordPath(), 'utf8')) as LibtorchRecord;
  } catch {
    return null;
  }
}

/** Turns a load failure into one error naming the cause and the command that fixes it. */
export function explainLoadError(err: unknown, rec: LibtorchRecord | null, platform = process.platform): Error {
  const msg = err instanceof Error ? err.message : String(err);
  const fix = 'Run `npm rebuild torchnode` (or `node scripts/install.js` in a checkout)';
  let cause: string;
  if (!['linux', 'darwin'].includes(platform)) {
    cause = `torchnode supports Linux and macOS; this platform is ${platform}-${process.arch}.`;
  } else if (/No native build was found|Cannot find module/.test(msg)) {
    cause = rec
      ? 'The native addon has not been built.'
      : 'The native addon has not been built and libtorch has not been located (libtorch.json is missing).';
  } else if (/lib(torch|c10|torch_cpu)[^ ]*\.so/.test(msg) || /Library not loaded/.test(msg)) {
    cause = rec
      ? `libtorch is missing from ${rec.libDir}, where the addon was built against it (moved or uninstalled?).`
      : 'libtorch could not be found.';
  } else if (/undefined symbol|symbol not found|version `.*' not found/.test(msg)) {
    cause = `The addon was built against a different libtorch than the one now installed${rec ? ` (recorded: ${rec.version} at ${rec.libDir})` : ''}.`;
  } else if (/NODE_MODULE_VERSION|was compiled against a different Node.js version/.test(msg)) {
    cause = `The addon was built for a different Node.js version than ${process.version}.`;
  } else if (/invalid ELF header|wrong ELF class|mach-o/.test(msg)) {
    cause = `The addon was built for another platform than ${platform}-${process.arch}.`;
  } else {
    cause = 'The native addon failed to load.';
  }
  const e = new Error(`torchnode: ${cause} ${fix} to build it again. (${msg.split('\n')[0]})`);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}

/**
 * The addon returns a failed call's Error instead of throwing it (setReturnErrors; see
 * AddonData::returnErrors in native/common.h for the Node crash this avoids), and these
 * wrappers throw it from JS. Every exported function and the generator's prototype
 * methods are wrapped; constructors are left as they are.
 */
class ReturnedError {
  constructor(readonly error: Error) {}
}
function throwingReturnedErrors(addon: NativeAddon): NativeAddon {
  // The class in effect in this environment: another copy of this module may have come first.
  const Box = addon.setReturnErrors(ReturnedError) as typeof ReturnedError;
  const wrap = (f: (...a: unknown[]) => unknown) =>
    function (this: unknown) {
      // eslint-disable-next-line prefer-rest-params
      const r = f.apply(this, arguments as unknown as unknown[]);
      if (r instanceof Box) throw r.error;
      return r;
    };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(addon)) out[k] = typeof v === 'function' && !/^[A-Z]/.test(k) ? wrap(v as (...a: unknown[]) => unknown) : v;
  // The generator's prototype is the addon's own, shared by every copy of this module: wrap it once.
  const proto = (addon.NativeGenerator as { prototype: Record<string | symbol, unknown> }).prototype;
  const done = Symbol.for('torchnode.wrappedMethods');
  if (!proto[done]) {
    for (const k of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, k);
      if (k !== 'constructor' && d && typeof d.value === 'function') proto[k] = wrap(d.value as (...a: unknown[]) => unknown);
    }
    Object.defineProperty(proto, done, { value: true });
  }
  return out as unknown as NativeAddon;
}

function load(): NativeAddon {
  const rec = readLibtorchRecord();
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const addon = require('node-gyp-build')(packageRoot) as NativeAddon;
    addon.setErrorClass(TorchError);
    return throwingReturnedErrors(addon);
  } catch (err) {
    throw explainLoadError(err, rec);
  }
}

/** The loaded addon. */
export const N: NativeAddon = load();
