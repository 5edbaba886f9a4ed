/**
 * An error raised by libtorch, carrying libtorch's message without the C++ backtrace.
 * @example
 * try { F.conv2d(x, w) } catch (e) { if (e instanceof TorchError) console.log(e.message) }
 */
export class TorchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TorchError';
  }
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
  throw new TypeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}
