/**
 * An error raised by libtorch, carrying libtorch's message without the C++ backtrace.
 * @example
 * try { F.conv2d(x, w) } catch (e) { if (e instanceof TorchError) console.log(e.message) }
 */
export class TorchError extends Error {
  /** Stable: `ERR_TORCH` for libtorch's own errors; subclasses have their own (see ERROR_CODES). */
  code: string = ERROR_CODES.torch;
  constructor(message: string) {
    super(message);
    this.name = 'TorchError';
  }
}

/**
 * The stable `code` of every error torchnode throws, for programs (and the CLI's exit
 * status) to tell them apart without reading messages. Node's own codes where one fits.
 */
export const ERROR_CODES = {
  /** libtorch raised (TorchError). */
  torch: 'ERR_TORCH',
  /** An argument of the wrong type, or an unknown option (TypeError). */
  argType: 'ERR_INVALID_ARG_TYPE',
  /** An argument of the right type outside its range (RangeError). */
  outOfRange: 'ERR_OUT_OF_RANGE',
  /** A value PyTorch rejects with ValueError: an empty parameter list, contradicting options (ValueError). */
  value: 'ERR_TORCHNODE_VALUE',
  /** A disposed tensor or destroyed process group used again. */
  disposed: 'ERR_TORCHNODE_DISPOSED',
  /** A checkpoint that cannot be read or written (CheckpointError). */
  checkpoint: 'ERR_TORCHNODE_CHECKPOINT',
  /** A pickle stream that is corrupt, truncated or unsupported (PickleError). */
  pickle: 'ERR_TORCHNODE_PICKLE',
  /** A zip archive that is corrupt, truncated or unsupported (ZipError). */
  zip: 'ERR_TORCHNODE_ZIP',
  /** An IDX file that is missing, truncated or not IDX (IdxError). */
  idx: 'ERR_TORCHNODE_IDX',
  /** Data files (MNIST) not found. */
  notFound: 'ERR_TORCHNODE_NOT_FOUND',
  /** A bad command line (the CLI's UsageError). */
  usage: 'ERR_TORCHNODE_USAGE',
  /** Cancelled (AbortError), as Node's own. */
  aborted: 'ABORT_ERR',
  /** A device that this machine or build does not have (`--device cuda` without a GPU). */
  device: 'ERR_TORCHNODE_DEVICE',
  /** A worker thread that ended before its work did. */
  worker: 'ERR_TORCHNODE_WORKER',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** PyTorch's ValueError: a value of the right type that the operation cannot take. */
export class ValueError extends Error {
  code: string = ERROR_CODES.value;
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}

/** An Error with a stable code (see ERROR_CODES). @internal */
export function codedError(code: ErrorCode, message: string): Error & { code: ErrorCode } {
  return Object.assign(new Error(message), { code });
}
/** A TypeError with code ERR_INVALID_ARG_TYPE. @internal */
export function argTypeError(message: string): TypeError & { code: ErrorCode } {
  return Object.assign(new TypeError(message), { code: ERROR_CODES.argType });
}
/** A RangeError with code ERR_OUT_OF_RANGE. @internal */
export function outOfRangeError(message: string): RangeError & { code: ErrorCode } {
  return Object.assign(new RangeError(message), { code: ERROR_CODES.outOfRange });
}

/** Describes a value for error messages: `Expected <what> for <name> but received <describe(v)>`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `'${v.length > 40 ? v.slice(0, 40) + '...' : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return v.length <= 8 ? `[${v.map(describe).join(', ')}]` : `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/** Throws a TypeError `Expected <what> for <name> but received <value>`. */
export function expected(what: string, name: string, value: unknown): never {
  throw argTypeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}

/**
 * Checks an options object: it must be a plain object (or undefined) whose keys are all
 * in `known`. An unknown key is a TypeError naming the function, the key and the keys it
 * takes (a misspelt option must never be ignored). Returns the options. @internal
 */
export function checkKeys<T extends object>(options: T, known: readonly string[], fn: string): T;
export function checkKeys<T extends object>(options: T | undefined, known: readonly string[], fn: string): T | undefined;
export function checkKeys<T extends object>(options: T | undefined, known: readonly string[], fn: string): T | undefined {
  if (options === undefined) return options;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw argTypeError(`${fn}: expected an options object but received ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw argTypeError(`${fn}: unknown option '${key}' (it takes ${known.length ? known.join(', ') : 'no options'})`);
    }
  }
  return options;
}
