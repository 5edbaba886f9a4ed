/**
 * runInWorker(): runs an exported function of a module in a worker thread, so
 * long native work (training, evaluation) never blocks the caller's event loop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../native';
import { deserializeError, SerializedError } from './transfer';
import { TorchError, argTypeError, checkKeys, codedError, ERROR_CODES } from '../errors';

export interface RunInWorkerOptions {
  /** Absolute path of a CommonJS module (JS) to load in the worker. */
  file: string;
  /** The exported function to call (default: module.exports or its default export). */
  exportName?: string;
  /** Arguments (structured-cloned; TypedArray buffers inside are copied unless listed in transfer). */
  args?: unknown[];
  /** ArrayBuffers to move to the worker instead of copying. */
  transfer?: ArrayBuffer[];
  /** Cancels: the worker's ctx.signal aborts; after `abortGraceMs` the thread is terminated. */
  signal?: AbortSignal;
  /** Progress events the function sends with ctx.emit(). */
  onEvent?: (event: unknown) => void;
  /** How long a cancelled worker may take to stop by itself (default 10 s). */
  abortGraceMs?: number;
  /**
   * Called once the thread has ended, however it ended (result, error, cancel or
   * terminate): after the promise settles, since the thread posts its result first.
   */
  onExit?: (code: number) => void;
}

/** The compiled worker entry; tests and users run from dist/. */
export function workerEntry(): string {
  const file = path.join(packageRoot, 'dist', 'worker', 'entry.js');
  if (!fs.existsSync(file)) throw codedError(ERROR_CODES.worker, `torchnode: ${file} is missing; run \`npm run build:ts\``);
  return file;
}

/** The AbortError a cancelled `signal` rejects with (its reason's message, else `fallback`). @internal */
export function abortError(signal: AbortSignal, fallback = 'The operation was aborted'): Error {
  const r = signal.reason;
  if (r instanceof Error && r.name === 'AbortError') return r;
  const e = codedError(ERROR_CODES.aborted, r instanceof Error ? r.message : typeof r === 'string' ? r : fallback);
  e.name = 'AbortError';
  return e;
}

/**
 * Calls `file`'s exported function in a new worker thread with `(...args, ctx)`,
 * where `ctx` has `signal` and `emit(event)`. Resolves with its return value;
 * rejects with its error (or an AbortError when cancelled). The thread ends with it.
 * @example
 * const r = await runInWorker({ file: require.resolve('./my-job.js'), exportName: 'run', args: [42] });
 */
const RUN_IN_WORKER_OPTIONS = ['file', 'exportName', 'args', 'transfer', 'signal', 'onEvent', 'abortGraceMs', 'onExit'];

export function runInWorker<T = unknown>(options: RunInWorkerOptions): Promise<T> {
  try {
    checkKeys(options ?? ({} as RunInWorkerOptions), RUN_IN_WORKER_OPTIONS, 'runInWorker');
  } catch (e) {
    return Promise.reject(e);
  }
  const { file, exportName, args = [], signal, onEvent } = options;
  if (typeof file !== 'string' || !path.isAbsolute(file)) {
    return Promise.reject(argTypeError(`Expected an absolute path for file but received ${JSON.stringify(file)}`));
  }
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const worker = new Worker(workerEntry(), {
      workerData: { file, exportName, args },
      transferList: options.transfer,
      stdout: false,
      stderr: false,
    });
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      fn();
    };
    const onAbort = () => {
      worker.postMessage({ type: 'abort', reason: abortError(signal!).message });
      killTimer = setTimeout(() => {
        void worker.terminate();
        finish(() => reject(abortError(signal!)));
      }, options.abortGraceMs ?? 10000);
      killTimer.unref?.();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: { type: string; event?: unknown; value?: T; error?: SerializedError }) => {
      if (m.type === 'event') {
        try {
          onEvent?.(m.event);
        } catch {
          // A throwing listener must not kill the job.
        }
      } else if (m.type === 'result') {
        finish(() => resolve(m.value as T));
      } else if (m.type === 'error') {
        finish(() => reject(deserializeError(m.error!, m.error!.name === 'TorchError' ? TorchError : Error)));
      }
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => {
      try {
        options.onExit?.(code);
      } catch {
        // A throwing callback must not keep the promise from settling.
      }
      finish(() => reject(codedError(ERROR_CODES.worker, `torchnode: the worker thread exited with code ${code} before it finished`)));
    });
  });
}
