/**
 * Native memory management: tidy() for synchronous code, scope() across await,
 * keep(), and memory() figures. JS garbage collection cannot see libtorch's
 * memory; tensors also carry a finalizer and report their bytes to V8, so GC
 * runs as native memory grows, but these helpers free memory deterministically.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { N } from './native';
import { argTypeError } from './errors';

/** Anything with a native handle that tidy/scope can free. */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

type Scope = Set<Disposable>;

const stack: Scope[] = [];
const asyncScope = new AsyncLocalStorage<Scope>();
const kept = new WeakSet<Disposable>();

function current(): Scope | undefined {
  return stack.length ? stack[stack.length - 1] : asyncScope.getStore();
}

/** @internal Called by every new Tensor. */
export function track(t: Disposable): void {
  const s = current();
  if (s) s.add(t);
}

/** Exempts a tensor from the enclosing tidy/scope (it stays alive until disposed or collected). */
export function keep<X extends Disposable>(t: X): X {
  kept.add(t);
  for (const s of stack) s.delete(t);
  asyncScope.getStore()?.delete(t);
  return t;
}

function collectReturned(value: unknown, out: Set<Disposable>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (typeof (value as Disposable).dispose === 'function' && 'isDisposed' in (value as object)) {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectReturned(v, out, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectReturned(v, out, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectReturned(v, out, seen);
  }
}

function release(scope: Scope, result: unknown, parent: Scope | undefined): void {
  const returned = new Set<Disposable>();
  collectReturned(result, returned);
  for (const t of scope) {
    if (returned.has(t) || kept.has(t)) {
      if (parent && !kept.has(t)) parent.add(t);
    } else {
      t.dispose();
    }
  }
  scope.clear();
}

/**
 * Runs `fn` and frees every tensor created inside it except those it returns
 * (directly, or inside arrays, Maps and plain objects) and those passed to keep().
 * @example
 * const y = tidy(() => x.mul(2).add(1).relu()); // the two temporaries are freed
 */
export function tidy<R>(fn: () => R): R {
  if (typeof fn !== 'function') throw argTypeError(`Expected a function for fn but received ${typeof fn}`);
  const scope: Scope = new Set();
  stack.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    release(scope, undefined, undefined);
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    release(scope, undefined, undefined);
    throw argTypeError('tidy() cannot track an async function: use `await scope(async () => ...)` instead');
  }
  release(scope, result, current());
  return result;
}

/**
 * Async form of tidy(): tensors created inside `fn`, across any number of awaits,
 * are freed when it settles, except those it returns or keep()s.
 * @example
 * const loss = await scope(async () => { const b = await nextBatch(); return model.forward(b).sum(); });
 */
export async function scope<R>(fn: () => Promise<R> | R): Promise<R> {
  if (typeof fn !== 'function') throw argTypeError(`Expected a function for fn but received ${typeof fn}`);
  const parent = current();
  const s: Scope = new Set();
  let result: R;
  try {
    result = await asyncScope.run(s, fn);
  } catch (e) {
    release(s, undefined, undefined);
    throw e;
  }
  release(s, result, parent);
  return result;
}

/** Live native tensors and the bytes they hold (views count their whole storage). */
export interface MemoryInfo {
  /** Tensor handles alive (not disposed and not yet garbage-collected). */
  tensors: number;
  /** Bytes of the storages those handles reference. */
  bytes: number;
  /** Handles made so far. */
  created: number;
  /** Handles freed by dispose() (or tidy/scope). */
  disposed: number;
  /** Handles freed by the garbage collector. `created - disposed` grows only when code leaves tensors to the GC. */
  collected: number;
  /**
   * torchnode's CPU caching allocator (native/allocator.cc): freed tensor blocks of
   * 256 KiB and more are kept and reused, so a training loop does not fault its
   * activations back in every batch. `cachedBytes` are free blocks held for reuse
   * (released by `releaseMemory()`), `liveBytes` blocks in use; `hits`/`misses`
   * count allocations served from the cache or from malloc. Null when it is off
   * (`TORCHNODE_CPU_CACHE_MB=0`).
   */
  cpuCache: { cachedBytes: number; cachedBlocks: number; liveBytes: number; limitBytes: number; hits: number; misses: number } | null;
  /** CUDA caching-allocator figures for the current device, when CUDA is available. */
  cuda: { allocated: number; reserved: number; maxAllocated: number } | null;
}

/** Live tensor count and bytes. @example console.log(memory().tensors) */
export function memory(): MemoryInfo {
  const { enabled, reason: _reason, ...cpuCache } = N.cpuCacheInfo();
  return { ...N.memory(), cpuCache: enabled ? cpuCache : null, cuda: N.cudaIsAvailable() ? N.cudaMemory() : null };
}

/**
 * Frees the blocks torchnode's CPU cache holds for reuse and returns the free memory
 * the C allocator keeps (in every thread's arena) to the operating system.
 * torchnode calls it when a training job ends; call it after freeing large tensors
 * if resident memory matters more than the speed of the next allocations.
 */
export function releaseMemory(): boolean {
  return N.releaseMemory();
}
