/**
 * Worker-thread entry for runInWorker(): loads a module, calls one of its
 * exported functions with the given arguments and a context (an AbortSignal
 * and an emit() for progress events), and posts the result back.
 */
import { parentPort, workerData, receiveMessageOnPort } from 'node:worker_threads';
import { serializeError, transferables } from './transfer';
import { argTypeError, codedError, ERROR_CODES } from '../errors';

export interface WorkerContext {
  /**
   * Aborted when the caller cancels (AbortSignal on the caller's side, or job.cancel()).
   * Reading `signal.aborted` also takes a cancel message that is waiting, so synchronous
   * work that never returns to the event loop (evaluation) sees a cancel at its next check.
   */
  signal: AbortSignal;
  /** Sends a progress event to the caller (structured-cloned; buffers inside are transferred). */
  emit(event: unknown): void;
}

interface EntryData {
  file: string;
  exportName?: string;
  args: unknown[];
}

async function run(port: NonNullable<typeof parentPort>, data: EntryData): Promise<void> {
  const ac = new AbortController();
  const isAborted = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get! as (this: AbortSignal) => boolean;
  const onMessage = (m: { type?: string; reason?: string }) => {
    if (m?.type === 'abort' && !isAborted.call(ac.signal)) {
      const e = codedError(ERROR_CODES.aborted, m.reason ?? 'The operation was aborted');
      e.name = 'AbortError';
      ac.abort(e);
    }
  };
  port.on('message', onMessage);
  // The signal's own `aborted` only changes when the event loop delivers the message;
  // polling the port here lets a check inside synchronous work see it at once.
  Object.defineProperty(ac.signal, 'aborted', {
    configurable: true,
    get(this: AbortSignal) {
      try {
        for (let m; !isAborted.call(this) && (m = receiveMessageOnPort(port)); ) onMessage(m.message);
      } catch {
        // The port is closed: nothing more can arrive.
      }
      return isAborted.call(this);
    },
  });
  const ctx: WorkerContext = {
    signal: ac.signal,
    emit: (event) => port.postMessage({ type: 'event', event }, transferables(event)),
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require(data.file);
    const fn = data.exportName ? mod[data.exportName] : typeof mod === 'function' ? mod : mod.default;
    if (typeof fn !== 'function') {
      throw argTypeError(`Expected ${data.file} to export a function${data.exportName ? ` named '${data.exportName}'` : ''}`);
    }
    const value = await fn(...data.args, ctx);
    port.postMessage({ type: 'result', value }, transferables(value));
  } catch (e) {
    port.postMessage({ type: 'error', error: serializeError(e) });
  } finally {
    port.close();
  }
}

if (parentPort) void run(parentPort, workerData as EntryData);
