/**
 * CUDA devices, threads and the build's facts (version, variant, libtorch path).
 */
import { expected } from './errors';
import { N, readLibtorchRecord, libtorchRecordPath } from './native';

function isAvailable(): boolean {
  return N.cudaIsAvailable();
}
function deviceCount(): number {
  return N.cudaDeviceCount();
}
/** Waits for all work on a CUDA device (all devices' current one when omitted). */
function synchronize(device?: number): void {
  if (device !== undefined && (!Number.isInteger(device) || device < 0)) expected('a device index', 'device', device);
  N.cudaSynchronize(device ?? -1);
}
/** Seeds every CUDA device's generator (a no-op without CUDA). */
function manualSeedAll(seed: number | bigint): void {
  if (typeof seed !== 'bigint' && !Number.isSafeInteger(seed)) expected('an integer or bigint', 'seed', seed);
  N.cudaManualSeedAll(seed);
}
/** Caching-allocator figures in bytes for a device, or null without CUDA. */
function memoryStats(device?: number): { allocated: number; reserved: number; maxAllocated: number } | null {
  if (!isAvailable()) return null;
  return N.cudaMemory(device);
}
function emptyCache(): void {
  N.cudaEmptyCache();
}

/** CUDA queries, like `torch.cuda`. */
export const cuda = { isAvailable, deviceCount, synchronize, manualSeedAll, memoryStats, emptyCache };

/** Sets the number of threads libtorch uses for intra-op parallelism. */
export function setNumThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) expected('a positive integer', 'threads', threads);
  N.setNumThreads(threads);
}
export function getNumThreads(): number {
  return N.getNumThreads();
}

const info = N.buildInfo();

/** The libtorch version the addon was compiled against, e.g. "1.13.0". */
export const version: string = info.version;

export interface TorchConfig {
  /** libtorch version (from its headers). */
  version: string;
  /** cpu, cu126, ... as recorded by the installer. */
  variant: string;
  /** libtorch's prefix. */
  libtorchPath: string | null;
  /** How the installer found libtorch: LIBTORCH, cache, pytorch, system, download or apt. */
  foundBy: string | null;
  /** The installer's sentence on why. */
  reason: string | null;
  /** Where the record lives. */
  recordPath: string;
  threads: number;
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  /** oneDNN (MKL-DNN) kernels present. */
  mkldnn: boolean;
  mkl: boolean;
  openmp: boolean;
  cxx11Abi: boolean;
  /** libtorch's own summary of its thread pools. */
  parallelInfo: string;
  /** The BLAS libtorch's matrix products use: its BLAS_INFO, and the library loaded for a generic one. */
  blas: string;
  /**
   * Whether Linear's matrix products are split across the intra-op threads. Only with
   * netlib's reference BLAS (Debian's libtorch), which is single-threaded and sums
   * every output element the same way whatever the slice, so results stay bit-identical
   * to PyTorch's. `TORCHNODE_PARALLEL_LINEAR=0` turns it off (set before loading).
   */
  linearSplit: { enabled: boolean; reason: string };
  /**
   * torchnode's CPU caching allocator (see `memory().cpuCache`): on unless
   * `TORCHNODE_CPU_CACHE_MB=0`; that variable also sets its limit (default 1024 MiB).
   */
  cpuCache: { enabled: boolean; reason: string };
}

/** What this torchnode runs on: versions, variant, libtorch path, threads, CUDA, oneDNN. */
export function config(): TorchConfig {
  const split = N.linearSplitInfo();
  const cache = N.cpuCacheInfo();
  const rec = readLibtorchRecord();
  return {
    version: info.version,
    variant: rec?.variant ?? (info.compiledWithCuda ? 'cuda' : 'cpu'),
    libtorchPath: rec?.path ?? null,
    foundBy: rec?.how ?? null,
    reason: rec?.reason ?? null,
    recordPath: libtorchRecordPath(),
    threads: N.getNumThreads(),
    cudaCompiled: info.compiledWithCuda,
    cudaAvailable: N.cudaIsAvailable(),
    cudaDeviceCount: N.cudaDeviceCount(),
    mkldnn: info.mkldnn,
    mkl: info.mkl,
    openmp: info.openmp,
    cxx11Abi: info.cxx11Abi,
    parallelInfo: info.parallelInfo,
    blas: split.blas,
    linearSplit: { enabled: split.enabled, reason: split.reason },
    cpuCache: { enabled: cache.enabled, reason: cache.reason },
  };
}
