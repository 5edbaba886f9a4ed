/**
 * A minimal pickle reader and writer for checkpoints.
 *
 * The reader is a stack machine for the opcodes Python 3's `pickle` emits at protocols
 * 0-5 for plain data (None, bools, ints, floats, str, bytes, lists, tuples, dicts,
 * sets) plus persistent ids, REDUCE/NEWOBJ and BUILD. It never executes anything: a
 * GLOBAL resolves only through an explicit table of known callables (`collections.
 * OrderedDict`, `_codecs.encode`, ... plus whatever the caller adds, such as torch's
 * tensor rebuilders); any other class is an `UnsupportedGlobalError` naming it.
 *
 * The writer produces protocol 2, the protocol `torch.save` uses, with only opcodes
 * that PyTorch's restricted `weights_only` unpickler accepts for tensors and containers.
 */
import { describe, ERROR_CODES } from '../errors';

// ---- Python values ------------------------------------------------------------------

const TUPLE_TAG = Symbol.for('torchnode.pickle.tuple');

/**
 * Marks an array as a Python tuple for `save` (a plain array is written as a list).
 * Tuples read from a checkpoint come back as arrays marked this way, so they are
 * written back as tuples.
 * @example save({ betas: tuple(0.9, 0.999) }, 'x.pt')
 */
export function tuple<T>(...items: T[]): T[] {
  return markTuple(items);
}

/** Marks an existing array as a tuple (in place) and returns it. */
export function markTuple<T>(items: T[]): T[] {
  Object.defineProperty(items, TUPLE_TAG, { value: true, enumerable: false });
  return items;
}

/** Whether an array is marked as a Python tuple. */
export function isTuple(v: unknown): v is unknown[] {
  return Array.isArray(v) && (v as unknown as Record<symbol, unknown>)[TUPLE_TAG] === true;
}

/** A Python dict as the reader builds it: any keys, insertion order, plus attributes set by BUILD. */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  /** Attributes set by BUILD, e.g. a state dict's `_metadata`. */
  readonly attrs = new Map<string, unknown>();
  constructor(readonly ordered: boolean) {}
}

/** A reference to a Python global (`module.name`), written as a GLOBAL opcode. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Something a GLOBAL may resolve to: a function or class called by REDUCE / NEWOBJ. */
export interface PyCallable {
  readonly qualname: string;
  call(args: unknown[]): unknown;
}

/** A non-callable global (e.g. `torch.FloatStorage`) carrying data for the caller. */
export class PyMarker<T = unknown> {
  constructor(readonly qualname: string, readonly value: T) {}
}

function isCallable(v: unknown): v is PyCallable {
  return v !== null && typeof v === 'object' && typeof (v as PyCallable).call === 'function' && 'qualname' in v;
}

// ---- errors -------------------------------------------------------------------------

/** The pickle could not be read; `kind` says whether it is damaged, cut short, or uses something unsupported. */
export class PickleError extends Error {
  readonly code: string = ERROR_CODES.pickle;
  constructor(message: string, readonly kind: 'corrupt' | 'truncated' | 'unsupported' = 'corrupt') {
    super(message);
    this.name = 'PickleError';
  }
}

/** A name from a pickle, safe to show: control bytes escaped, at most 120 characters. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  const e = s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return e.length > 120 ? `${e.slice(0, 120)}...` : e;
}

/** The pickle names a class or function that is not in the table of known globals. */
export class UnsupportedGlobalError extends PickleError {
  constructor(readonly module: string, readonly globalName: string) {
    super(`unsupported class ${printable(`${module}.${globalName}`)}`, 'unsupported');
    this.name = 'UnsupportedGlobalError';
  }
  get qualname(): string {
    return `${this.module}.${this.globalName}`;
  }
}

// ---- known globals -------------------------------------------------------------------

function callable(qualname: string, call: (args: unknown[]) => unknown): PyCallable {
  return { qualname, call };
}

function iterItems(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set) return [...v];
  if (Buffer.isBuffer(v)) return [...v];
  throw new PickleError(`${what} expects a list, got ${describe(v)}`);
}

function makeSet(args: unknown[], what: string): Set<unknown> {
  return new Set(args.length ? iterItems(args[0], what) : []);
}

function makeBytes(args: unknown[], what: string): Buffer {
  if (args.length === 0) return Buffer.alloc(0);
  // bytearray pickles as (latin-1 str, 'latin-1') below protocol 3 and as (bytes,) above.
  if (typeof args[0] === 'string') return Buffer.from(args[0], 'latin1');
  if (Buffer.isBuffer(args[0])) return Buffer.from(args[0]);
  const items = iterItems(args[0], what);
  return Buffer.from(items.map((x) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 255) throw new PickleError(`${what}: bad byte ${describe(x)}`);
    return x;
  }));
}

/**
 * The plain-Python globals every checkpoint may use. Both `builtins` and `__builtin__`
 * spellings appear: Python 3 writes the Python 2 names at protocol 2.
 */
export const BASE_GLOBALS: ReadonlyMap<string, unknown> = new Map<string, unknown>([
  ['collections.OrderedDict', callable('collections.OrderedDict', (args) => {
    const d = new PyDict(true);
    if (args.length && args[0] !== null) {
      for (const pair of iterItems(args[0], 'OrderedDict')) {
        if (!Array.isArray(pair) || pair.length !== 2) throw new PickleError('OrderedDict expects (key, value) pairs');
        d.map.set(pair[0], pair[1]);
      }
    }
    return d;
  })],
  ...['builtins', '__builtin__'].flatMap((m) => [
    [`${m}.set`, callable(`${m}.set`, (a) => makeSet(a, 'set'))],
    [`${m}.frozenset`, callable(`${m}.frozenset`, (a) => makeSet(a, 'frozenset'))],
    [`${m}.bytes`, callable(`${m}.bytes`, (a) => makeBytes(a, 'bytes'))],
    [`${m}.bytearray`, callable(`${m}.bytearray`, (a) => makeBytes(a, 'bytearray'))],
  ] as [string, unknown][]),
  ['_codecs.encode', callable('_codecs.encode', (args) => {
    const [s, enc] = args;
    if (typeof s !== 'string') throw new PickleError(`_codecs.encode expects a str, got ${describe(s)}`);
    const e = typeof enc === 'string' ? enc.toLowerCase().replace('_', '-') : 'utf-8';
    if (e === 'latin1' || e === 'latin-1' || e === 'iso-8859-1') return Buffer.from(s, 'latin1');
    if (e === 'utf-8' || e === 'utf8') return Buffer.from(s, 'utf8');
    if (e === 'ascii') return Buffer.from(s, 'ascii');
    throw new PickleError(`_codecs.encode with encoding ${describe(enc)} is not supported`, 'unsupported');
  })],
]);

// ---- the reader -------------------------------------------------------------------------

export interface UnpickleOptions {
  /** Extra globals by qualified name (`torch._utils._rebuild_tensor_v2`), added to BASE_GLOBALS. */
  globals?: ReadonlyMap<string, unknown>;
  /** Resolves a persistent id (PERSID / BINPERSID); without it a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
}

const MARK = Symbol('mark');

/**
 * The largest int the reader decodes: LONG1/LONG4 of at most this many bytes. Checkpoints
 * never need more (a tensor's sizes fit in 8 bytes); a larger one is refused, not parsed.
 */
export const MAX_LONG_BYTES = 100_000;
/** INT/LONG (protocol 0) in decimal: at most this many digits, CPython's own default `int_max_str_digits`. */
export const MAX_INT_DIGITS = 4300;

/** How many items a container (or characters a string) hands to a call that iterates it. */
function itemCount(v: unknown): number {
  if (typeof v === 'string') return v.length;
  if (Array.isArray(v)) return v.length;
  if (v instanceof Set) return v.size;
  if (Buffer.isBuffer(v)) return v.length;
  if (v instanceof PyDict) return v.map.size + v.attrs.size;
  return 0;
}

/**
 * Runs a pickle and returns the Python value it builds (see PyDict, tuple(), PyGlobal);
 * use `toJS` to turn that into plain JavaScript values.
 * @example const v = unpickle(buf, { persistentLoad: (pid) => storages.get(pid) });
 */
export function unpickle(data: Uint8Array, options: UnpickleOptions = {}): unknown {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const globals = options.globals;
  let pos = 0;
  /** Where the current opcode starts, for messages. */
  let opAt = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  // A memoized container can be handed to call after call (BINGET + REDUCE is 3 bytes), and
  // each call may iterate or copy it. Charging every call for what it is given keeps the
  // work, and what the calls allocate, linear in the pickle's size.
  const workLimit = 8 * buf.length + (1 << 20);
  let work = 0;
  const charge = (n: number, what: string): void => {
    work += n;
    if (work > workLimit) {
      throw new PickleError(
        `${what} at byte ${opAt}: the pickle's calls have been handed ${work} items in all, more than the ${workLimit} ` +
          `allowed for its ${buf.length} bytes (a memoized container reused over and over)`,
      );
    }
  };

  const need = (n: number, what: string): void => {
    if (pos + n > buf.length) throw new PickleError(`pickle data ends inside ${what} at byte ${pos} of ${buf.length}`, 'truncated');
  };
  const bytes = (n: number, what: string): Buffer => {
    need(n, what);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const u8 = (what: string): number => bytes(1, what)[0];
  const u16 = (what: string): number => bytes(2, what).readUInt16LE(0);
  const u32 = (what: string): number => bytes(4, what).readUInt32LE(0);
  const u64 = (what: string): number => {
    const v = bytes(8, what).readBigUInt64LE(0);
    if (v > BigInt(buf.length)) throw new PickleError(`${what} length ${v} exceeds the pickle's size`, 'corrupt');
    return Number(v);
  };
  const line = (what: string): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError(`pickle data ends inside ${what} at byte ${pos}`, 'truncated');
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = (what: string): unknown => {
    if (stack.length === 0) throw new PickleError(`${what} on an empty stack at byte ${pos - 1}`);
    const v = stack.pop();
    if (v === MARK) throw new PickleError(`${what} found a MARK at byte ${pos - 1}`);
    return v;
  };
  const top = (what: string): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) throw new PickleError(`${what} on an empty stack at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  // popMark swaps `stack`: call it before touching `stack` (`stack.push(popMark())` would push onto the old one).
  const popMark = (what: string): unknown[] => {
    if (metastack.length === 0) throw new PickleError(`${what} without a MARK at byte ${pos - 1}`);
    const items = stack;
    stack = metastack.pop()!;
    return items;
  };
  const findGlobal = (module: string, name: string): unknown => {
    const q = `${module}.${name}`;
    const v = globals?.get(q) ?? BASE_GLOBALS.get(q);
    if (v === undefined) throw new UnsupportedGlobalError(module, name);
    return v;
  };
  const callGlobal = (fn: unknown, args: unknown, what: string): unknown => {
    if (!isCallable(fn)) {
      const name = fn instanceof PyMarker ? fn.qualname : describe(fn);
      throw new PickleError(`${what} cannot call ${name}`, 'unsupported');
    }
    if (!Array.isArray(args)) throw new PickleError(`${what} of ${fn.qualname} expects an argument tuple, got ${describe(args)}`);
    let n = 1 + args.length;
    for (const a of args) n += itemCount(a);
    charge(n, what);
    return fn.call(args);
  };
  const setItem = (d: unknown, k: unknown, v: unknown, what: string): void => {
    if (d instanceof PyDict) d.map.set(k, v);
    else throw new PickleError(`${what} on ${describe(d)}, not a dict`);
  };
  const appendTo = (l: unknown, items: unknown[], what: string): void => {
    // One by one: push(...items) overflows the call stack past ~100k items.
    if (Array.isArray(l) && !isTuple(l)) for (const x of items) l.push(x);
    else if (l instanceof Set) items.forEach((x) => l.add(x));
    else throw new PickleError(`${what} on ${describe(l)}, not a list`);
  };
  const longBytes = (n: number, what: string): Buffer => {
    if (n > MAX_LONG_BYTES) {
      throw new PickleError(`${what} at byte ${opAt} holds a ${n}-byte integer; the limit is ${MAX_LONG_BYTES} bytes`, 'unsupported');
    }
    return bytes(n, what);
  };
  const decodeLong = (b: Buffer): number | bigint => {
    if (b.length === 0) return 0;
    // Little-endian two's complement, parsed once from hex: linear in the length
    // (shifting a BigInt in byte by byte copies it every time, which is quadratic).
    let v = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
  };
  const intValue = (s: string, what: string): number | bigint => {
    // Decimal to BigInt is superlinear in the digits; bound them before parsing.
    if (s.length > MAX_INT_DIGITS + 8) {
      throw new PickleError(`${what} at byte ${opAt} has ${s.length} characters; the limit is ${MAX_INT_DIGITS} digits`, 'unsupported');
    }
    const t = s.trim().replace(/L$/, '');
    if (!/^[+-]?\d+$/.test(t)) throw new PickleError(`bad ${what} value '${printable(s)}'`);
    const v = BigInt(t);
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  };
  const unquote = (s: string): string => {
    // Protocol 0 STRING: a Python repr of a bytes-like string, '...' or "...".
    const q = s[0];
    if ((q !== "'" && q !== '"') || s[s.length - 1] !== q || s.length < 2) throw new PickleError('STRING opcode argument is not quoted');
    return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|[\\'"nrt0])/g, (_, e: string) => {
      if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
      return ({ n: '\n', r: '\r', t: '\t', '0': '\0' } as Record<string, string>)[e] ?? e;
    });
  };

  for (;;) {
    if (pos >= buf.length) throw new PickleError(`pickle data ends at byte ${pos} without a STOP opcode`, 'truncated');
    opAt = pos;
    const op = buf[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8('PROTO');
        if (proto > 5) throw new PickleError(`unsupported pickle protocol ${proto}`, 'unsupported');
        break;
      }
      case 0x95: u64('FRAME'); break; // FRAME: framing is transparent here
      case 0x2e: { // STOP
        const v = pop('STOP');
        return v;
      }
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x30: pop('POP'); break;
      case 0x31: popMark('POP_MARK'); break;
      case 0x32: stack.push(top('DUP')); break;
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x49: { // INT (protocol 0; I00/I01 are bools)
        const s = line('INT');
        if (s === '00') stack.push(false);
        else if (s === '01') stack.push(true);
        else stack.push(intValue(s, 'INT'));
        break;
      }
      case 0x4a: stack.push(bytes(4, 'BININT').readInt32LE(0)); break;
      case 0x4b: stack.push(u8('BININT1')); break;
      case 0x4d: stack.push(u16('BININT2')); break;
      case 0x4c: stack.push(intValue(line('LONG'), 'LONG')); break;
      case 0x8a: { const n = u8('LONG1'); stack.push(decodeLong(longBytes(n, 'LONG1'))); break; }
      case 0x8b: {
        const n = bytes(4, 'LONG4').readInt32LE(0);
        if (n < 0) throw new PickleError('LONG4 with a negative length');
        stack.push(decodeLong(longBytes(n, 'LONG4')));
        break;
      }
      case 0x46: { // FLOAT
        const s = line('FLOAT').trim();
        const v = Number(s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : s);
        if (Number.isNaN(v) && s !== 'nan') throw new PickleError(`bad FLOAT value '${s}'`);
        stack.push(v);
        break;
      }
      case 0x47: stack.push(bytes(8, 'BINFLOAT').readDoubleBE(0)); break;
      case 0x53: stack.push(unquote(line('STRING'))); break; // Python 2 str, decoded as latin-1
      case 0x54: { const n = bytes(4, 'BINSTRING').readInt32LE(0); if (n < 0) throw new PickleError('BINSTRING with a negative length'); stack.push(bytes(n, 'BINSTRING').toString('latin1')); break; }
      case 0x55: { const n = u8('SHORT_BINSTRING'); stack.push(bytes(n, 'SHORT_BINSTRING').toString('latin1')); break; }
      case 0x56: { // UNICODE (raw-unicode-escape)
        const s = line('UNICODE').replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a?: string, b?: string) => String.fromCodePoint(parseInt((a ?? b)!, 16)));
        stack.push(s);
        break;
      }
      case 0x58: { const n = u32('BINUNICODE'); stack.push(bytes(n, 'BINUNICODE').toString('utf8')); break; }
      case 0x8c: { const n = u8('SHORT_BINUNICODE'); stack.push(bytes(n, 'SHORT_BINUNICODE').toString('utf8')); break; }
      case 0x8d: { const n = u64('BINUNICODE8'); stack.push(bytes(n, 'BINUNICODE8').toString('utf8')); break; }
      case 0x42: { const n = u32('BINBYTES'); stack.push(Buffer.from(bytes(n, 'BINBYTES'))); break; }
      case 0x43: { const n = u8('SHORT_BINBYTES'); stack.push(Buffer.from(bytes(n, 'SHORT_BINBYTES'))); break; }
      case 0x8e: { const n = u64('BINBYTES8'); stack.push(Buffer.from(bytes(n, 'BINBYTES8'))); break; }
      case 0x96: { const n = u64('BYTEARRAY8'); stack.push(Buffer.from(bytes(n, 'BYTEARRAY8'))); break; }
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const items = popMark('LIST'); stack.push(items); break; }
      case 0x61: { const v = pop('APPEND'); appendTo(top('APPEND'), [v], 'APPEND'); break; }
      case 0x65: { const items = popMark('APPENDS'); appendTo(top('APPENDS'), items, 'APPENDS'); break; }
      case 0x29: stack.push(tuple()); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark('TUPLE'); stack.push(markTuple(items)); break; }
      case 0x85: { const a = pop('TUPLE1'); stack.push(tuple(a)); break; }
      case 0x86: { const b = pop('TUPLE2'); const a = pop('TUPLE2'); stack.push(tuple(a, b)); break; }
      case 0x87: { const c = pop('TUPLE3'); const b = pop('TUPLE3'); const a = pop('TUPLE3'); stack.push(tuple(a, b, c)); break; }
      case 0x7d: stack.push(new PyDict(false)); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark('DICT');
        if (items.length % 2) throw new PickleError('DICT with an odd number of items');
        const d = new PyDict(false);
        for (let i = 0; i < items.length; i += 2) d.map.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: { const v = pop('SETITEM'); const k = pop('SETITEM'); setItem(top('SETITEM'), k, v, 'SETITEM'); break; }
      case 0x75: { // SETITEMS
        const items = popMark('SETITEMS');
        if (items.length % 2) throw new PickleError('SETITEMS with an odd number of items');
        const d = top('SETITEMS');
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1], 'SETITEMS');
        break;
      }
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark('ADDITEMS'); appendTo(top('ADDITEMS'), items, 'ADDITEMS'); break; }
      case 0x91: { const items = popMark('FROZENSET'); stack.push(new Set(items)); break; }
      case 0x67: { // GET
        const i = Number(intValue(line('GET'), 'GET'));
        if (!memo.has(i)) throw new PickleError(`memo entry ${i} is read before it is written`);
        stack.push(memo.get(i));
        break;
      }
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? u8('BINGET') : u32('LONG_BINGET');
        if (!memo.has(i)) throw new PickleError(`memo entry ${i} is read before it is written`);
        stack.push(memo.get(i));
        break;
      }
      case 0x70: memo.set(Number(intValue(line('PUT'), 'PUT')), top('PUT')); break;
      case 0x71: memo.set(u8('BINPUT'), top('BINPUT')); break;
      case 0x72: memo.set(u32('LONG_BINPUT'), top('LONG_BINPUT')); break;
      case 0x94: memo.set(memo.size, top('MEMOIZE')); break;
      case 0x63: { // GLOBAL
        const module = line('GLOBAL');
        const name = line('GLOBAL');
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop('STACK_GLOBAL');
        const module = pop('STACK_GLOBAL');
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError('STACK_GLOBAL expects two strings');
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop('REDUCE');
        const fn = pop('REDUCE');
        stack.push(callGlobal(fn, args, 'REDUCE'));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args); the known classes build the same way as when called
        const args = pop('NEWOBJ');
        const cls = pop('NEWOBJ');
        stack.push(callGlobal(cls, args, 'NEWOBJ'));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop('NEWOBJ_EX');
        const args = pop('NEWOBJ_EX');
        const cls = pop('NEWOBJ_EX');
        if (!(kwargs instanceof PyDict) || kwargs.map.size) throw new PickleError('NEWOBJ_EX with keyword arguments is not supported', 'unsupported');
        stack.push(callGlobal(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: { // BUILD
        const state = pop('BUILD');
        const inst = top('BUILD');
        if (!(inst instanceof PyDict)) throw new PickleError(`BUILD (setting object state) on ${describe(inst)} is not supported`, 'unsupported');
        // state is a dict of attributes, or (dict state, slot state)
        const parts = isTuple(state) ? state : [state];
        charge(1 + parts.length, 'BUILD');
        for (const part of parts) {
          if (part === null) continue;
          if (!(part instanceof PyDict)) throw new PickleError(`BUILD state must be a dict, got ${describe(part)}`);
          charge(part.map.size, 'BUILD');
          for (const [k, v] of part.map) inst.attrs.set(String(k), v);
        }
        break;
      }
      case 0x50: { // PERSID
        const pid = line('PERSID');
        if (!options.persistentLoad) throw new PickleError('persistent id in a pickle that has no storages', 'unsupported');
        stack.push(options.persistentLoad(pid));
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop('BINPERSID');
        if (!options.persistentLoad) throw new PickleError('persistent id in a pickle that has no storages', 'unsupported');
        stack.push(options.persistentLoad(pid));
        break;
      }
      case 0x69: { // INST: builds an arbitrary class instance
        const module = line('INST');
        const name = line('INST');
        throw new UnsupportedGlobalError(module, name);
      }
      case 0x6f: { // OBJ
        const items = popMark('OBJ');
        const cls = items[0];
        throw new PickleError(`OBJ (building an instance of ${cls instanceof PyMarker || isCallable(cls) ? cls.qualname : describe(cls)}) is not supported`, 'unsupported');
      }
      case 0x82: case 0x83: case 0x84: // EXT1, EXT2, EXT4
        throw new PickleError('extension-registry opcodes (EXT1/EXT2/EXT4) are not supported', 'unsupported');
      case 0x97: case 0x98: // NEXT_BUFFER, READONLY_BUFFER
        throw new PickleError('out-of-band buffers (pickle protocol 5) are not supported', 'unsupported');
      default:
        throw new PickleError(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}`);
    }
  }
}

// ---- Python values -> JavaScript -------------------------------------------------------

const CANONICAL_INDEX = /^(0|[1-9]\d*)$/;

/** A dict key that a plain object keeps exactly: a str that does not look like an index, or a non-negative safe int. */
function objectKey(k: unknown): string | undefined {
  // A safe integer has at most 16 digits: longer keys skip the scan (a memoized key may be long and reused).
  if (typeof k === 'string') return k.length <= 16 && CANONICAL_INDEX.test(k) && Number.isSafeInteger(Number(k)) ? undefined : k;
  if (typeof k === 'number' && Number.isSafeInteger(k) && k >= 0 && !Object.is(k, -0)) return String(k);
  return undefined;
}

export interface ToJSOptions {
  /** Converts values the generic rules do not know (return undefined to reject them). */
  convert?: (v: unknown) => unknown;
  /** Called with each OrderedDict's BUILD attributes (e.g. `_metadata`) and the Map made from it. */
  onAttrs?: (attrs: Map<string, unknown>, target: Map<unknown, unknown>) => void;
}

/**
 * Turns what `unpickle` built into plain JavaScript:
 * - `OrderedDict` -> `Map` (order kept);
 * - `dict` -> a plain object when every key is a str (not an integer-looking one) or a
 *   non-negative int (which becomes its string), else a `Map` with the keys as they are;
 * - list -> array; tuple -> array marked with `isTuple`; set -> `Set`; bytes -> `Buffer`;
 * - int -> number (bigint beyond 2^53), float -> number, None -> null.
 * Shared references and cycles are kept.
 */
export function toJS(value: unknown, options: ToJSOptions = {}): unknown {
  const memo = new Map<unknown, unknown>();
  const conv = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (depth > 1000) throw new PickleError('values nested more than 1000 deep', 'unsupported');
    if (memo.has(v)) return memo.get(v);
    if (Buffer.isBuffer(v)) return v;
    if (Array.isArray(v)) {
      const out: unknown[] = isTuple(v) ? tuple() : [];
      memo.set(v, out);
      for (const x of v) out.push(conv(x, depth + 1));
      return out;
    }
    if (v instanceof PyDict) {
      const keys = [...v.map.keys()];
      const asObject = !v.ordered && keys.every((k) => objectKey(k) !== undefined);
      if (asObject) {
        const out: Record<string, unknown> = {};
        memo.set(v, out);
        for (const [k, x] of v.map) {
          const key = objectKey(k)!;
          const val = conv(x, depth + 1);
          if (key === '__proto__') Object.defineProperty(out, key, { value: val, enumerable: true, writable: true, configurable: true });
          else out[key] = val;
        }
        return out;
      }
      const out = new Map<unknown, unknown>();
      memo.set(v, out);
      for (const [k, x] of v.map) out.set(conv(k, depth + 1), conv(x, depth + 1));
      if (v.attrs.size && options.onAttrs) options.onAttrs(v.attrs, out);
      return out;
    }
    if (v instanceof Set) {
      const out = new Set<unknown>();
      memo.set(v, out);
      for (const x of v) out.add(conv(x, depth + 1));
      return out;
    }
    const c = options.convert?.(v);
    if (c === undefined) {
      const name = v instanceof PyMarker || isCallable(v) ? (v as PyMarker).qualname : v instanceof PyGlobal ? v.qualname : describe(v);
      throw new PickleError(`unsupported value ${name} in the pickle`, 'unsupported');
    }
    memo.set(v, c);
    return c;
  };
  return conv(value, 0);
}

// ---- the writer ------------------------------------------------------------------------

/** How the writer turns an object it does not know into REDUCE: `func(*args)`. */
export interface Reduction {
  func: PyGlobal;
  args: unknown[];
}

export interface PickleOptions {
  /** A value to write as a persistent id instead (BINPERSID), or undefined. */
  persistentId?: (v: object) => unknown;
  /** A reduction for a value the writer does not know (e.g. a Tensor), or undefined. */
  reduce?: (v: object) => Reduction | undefined;
  /** Replaces a value before it is written (return it unchanged when nothing applies). */
  replace?: (v: object) => unknown;
  /** The name of the root value in error messages. */
  rootName?: string;
}

/** Thrown when a value cannot be written; `path` says where it is (`obj.model_state_dict['fc.weight']`). */
export class PickleWriteError extends TypeError {
  /** A value save() cannot write is an argument of the wrong type. */
  readonly code: string = ERROR_CODES.argType;
  constructor(message: string, readonly path: string) {
    super(message);
    this.name = 'PickleWriteError';
  }
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function pathKey(k: unknown): string {
  if (typeof k === 'string') return /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
  return `[${typeof k === 'bigint' ? `${k}n` : String(k)}]`;
}

/** Grows a byte buffer in chunks. */
class Out {
  private chunks: Buffer[] = [];
  private cur = Buffer.allocUnsafe(1 << 16);
  private n = 0;
  byte(b: number): void {
    this.ensure(1);
    this.cur[this.n++] = b;
  }
  bytes(b: Uint8Array): void {
    if (b.byteLength > 4096) {
      this.flush();
      this.chunks.push(Buffer.from(b));
      return;
    }
    this.ensure(b.byteLength);
    this.cur.set(b, this.n);
    this.n += b.byteLength;
  }
  u32(v: number): void {
    this.ensure(4);
    this.cur.writeUInt32LE(v, this.n);
    this.n += 4;
  }
  private ensure(k: number): void {
    if (this.n + k > this.cur.length) this.flush();
  }
  private flush(): void {
    if (this.n) this.chunks.push(Buffer.from(this.cur.subarray(0, this.n)));
    this.n = 0;
  }
  result(): Buffer {
    this.flush();
    return Buffer.concat(this.chunks);
  }
}

const BATCH = 1000;

/**
 * Writes `value` as a protocol-2 pickle. Numbers that are safe integers are written as
 * Python ints, other numbers as floats; bigints as ints; strings as str; Buffers as
 * bytes; arrays as lists (tuples when marked with `tuple()`); Maps as OrderedDicts;
 * Sets as sets; plain objects as dicts, with non-negative integer keys (`"0"`) as ints.
 * Anything else (undefined, functions, class instances) throws a PickleWriteError
 * naming where it is, unless `options.reduce` knows it.
 */
export function pickle(value: unknown, options: PickleOptions = {}): Buffer {
  const out = new Out();
  const memo = new Map<unknown, number>();
  const globalMemo = new Map<string, number>();
  const inProgress = new Set<object>();
  const replaced = new Map<object, unknown>();
  const path: string[] = [options.rootName ?? 'obj'];
  const where = (): string => path.join('');

  let nextMemo = 0;
  const put = (key: unknown, globalKey?: string): void => {
    const i = nextMemo++;
    if (globalKey !== undefined) globalMemo.set(globalKey, i);
    else memo.set(key, i);
    if (i < 256) {
      out.byte(0x71);
      out.byte(i);
    } else {
      out.byte(0x72);
      out.u32(i);
    }
  };
  const get = (i: number): void => {
    if (i < 256) {
      out.byte(0x68);
      out.byte(i);
    } else {
      out.byte(0x6a);
      out.u32(i);
    }
  };
  const writeInt = (v: number | bigint): void => {
    if (typeof v === 'number' && v >= 0 && v < 256) {
      out.byte(0x4b);
      out.byte(v);
    } else if (typeof v === 'number' && v >= 0 && v < 65536) {
      out.byte(0x4d);
      out.byte(v & 0xff);
      out.byte(v >> 8);
    } else if (typeof v === 'number' && v >= -0x80000000 && v <= 0x7fffffff) {
      out.byte(0x4a);
      const b = Buffer.alloc(4);
      b.writeInt32LE(v);
      out.bytes(b);
    } else {
      // LONG1: little-endian two's complement, as few bytes as hold the sign.
      let x = BigInt(v);
      // Size it first: the byte loop below copies x at every step, too slow for a huge bigint.
      const hexDigits = (x < 0n ? -x : x).toString(16).length;
      if (hexDigits > 2 * 255) throw new PickleWriteError(`Cannot save an integer of ${Math.ceil(hexDigits / 2)} bytes at ${where()}`, where());
      const bs: number[] = [];
      for (;;) {
        const byte = Number(x & 0xffn);
        bs.push(byte);
        x >>= 8n;
        if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) break;
      }
      if (bs.length > 255) throw new PickleWriteError(`Cannot save an integer of ${bs.length} bytes at ${where()}`, where());
      out.byte(0x8a);
      out.byte(bs.length);
      out.bytes(Buffer.from(bs));
    }
  };
  const writeStr = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    out.byte(0x58);
    out.u32(b.length);
    out.bytes(b);
  };
  const writeGlobal = (g: PyGlobal): void => {
    const key = `${g.module}\n${g.name}`;
    const i = globalMemo.get(key);
    if (i !== undefined) return get(i);
    out.byte(0x63);
    out.bytes(Buffer.from(`${g.module}\n${g.name}\n`, 'utf8'));
    put(undefined, key);
  };
  const writeTupleItems = (items: readonly unknown[]): void => {
    if (items.length === 0) return out.byte(0x29);
    if (items.length <= 3) {
      items.forEach((x, i) => at(`[${i}]`, () => save(x)));
      out.byte([0x85, 0x86, 0x87][items.length - 1]);
      return;
    }
    out.byte(0x28);
    items.forEach((x, i) => at(`[${i}]`, () => save(x)));
    out.byte(0x74);
  };
  const at = (seg: string, fn: () => void): void => {
    path.push(seg);
    fn();
    path.pop();
  };
  const writeItems = (entries: Iterable<[unknown, unknown]>): void => {
    let n = 0;
    for (const [k, v] of entries) {
      if (n === 0) out.byte(0x28);
      at(pathKey(k), () => {
        save(k);
        save(v);
      });
      if (++n === BATCH) {
        out.byte(0x75);
        n = 0;
      }
    }
    if (n) out.byte(0x75);
  };

  const save = (v: unknown): void => {
    if (v === null) return out.byte(0x4e);
    switch (typeof v) {
      case 'boolean':
        return out.byte(v ? 0x88 : 0x89);
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) return writeInt(v);
        {
          const b = Buffer.alloc(8);
          b.writeDoubleBE(v);
          out.byte(0x47);
          return out.bytes(b);
        }
      case 'bigint':
        return writeInt(v);
      case 'string':
        return writeStr(v);
      case 'undefined':
        throw new PickleWriteError(`Cannot save undefined at ${where()} (use null for None)`, where());
      case 'function':
      case 'symbol':
        throw new PickleWriteError(`Cannot save ${typeof v === 'function' ? 'a function' : 'a symbol'} at ${where()}`, where());
    }
    const obj = v as object;
    if (obj instanceof PyGlobal) return writeGlobal(obj);
    const m = memo.get(obj);
    if (m !== undefined) return get(m);
    if (options.replace) {
      let r = replaced.get(obj);
      if (r === undefined && !replaced.has(obj)) {
        r = options.replace(obj);
        replaced.set(obj, r);
        if (r !== null && typeof r === 'object') replaced.set(r, r);
      }
      if (r !== obj) {
        save(r);
        if (r !== null && typeof r === 'object' && memo.has(r)) memo.set(obj, memo.get(r)!);
        return;
      }
    }
    if (options.persistentId) {
      const pid = options.persistentId(obj);
      if (pid !== undefined) {
        save(pid);
        return out.byte(0x51);
      }
    }
    if (inProgress.has(obj)) throw new PickleWriteError(`Cannot save a value that contains itself through a tuple or tensor at ${where()}`, where());
    let red: Reduction | undefined;
    try {
      red = options.reduce?.(obj);
    } catch (e) {
      if (e instanceof PickleWriteError) throw e;
      throw new PickleWriteError(`Cannot save ${describe(obj)} at ${where()}: ${(e as Error).message}`, where());
    }
    if (red) {
      inProgress.add(obj);
      save(red.func);
      at('', () => writeTupleItems(red.args));
      out.byte(0x52);
      inProgress.delete(obj);
      return put(obj);
    }
    if (ArrayBuffer.isView(obj)) {
      if (!(obj instanceof Uint8Array)) {
        throw new PickleWriteError(`Cannot save a ${obj.constructor.name} at ${where()} (wrap numeric data in a tensor; Buffers are saved as bytes)`, where());
      }
      // Protocol 2 has no bytes opcode: Python 3 writes _codecs.encode(latin-1 str, 'latin1').
      if (obj.byteLength === 0) {
        writeGlobal(new PyGlobal('__builtin__', 'bytes'));
        out.byte(0x29);
      } else {
        writeGlobal(new PyGlobal('_codecs', 'encode'));
        writeStr(Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('latin1'));
        writeStr('latin1');
        out.byte(0x86);
      }
      out.byte(0x52);
      return put(obj);
    }
    if (Array.isArray(obj)) {
      if (isTuple(obj)) {
        inProgress.add(obj);
        writeTupleItems(obj);
        inProgress.delete(obj);
        return put(obj);
      }
      out.byte(0x5d);
      put(obj);
      for (let i = 0; i < obj.length; i += BATCH) {
        out.byte(0x28);
        for (let j = i; j < Math.min(obj.length, i + BATCH); j++) at(`[${j}]`, () => save(obj[j]));
        out.byte(0x65);
      }
      return;
    }
    if (obj instanceof Map) {
      writeGlobal(new PyGlobal('collections', 'OrderedDict'));
      out.byte(0x29);
      out.byte(0x52);
      put(obj);
      return writeItems(obj);
    }
    if (obj instanceof Set) {
      writeGlobal(new PyGlobal('__builtin__', 'set'));
      out.byte(0x5d);
      if (obj.size) {
        out.byte(0x28);
        let i = 0;
        for (const x of obj) at(`[set item ${i++}]`, () => save(x));
        out.byte(0x65);
      }
      out.byte(0x85);
      out.byte(0x52);
      return put(obj);
    }
    if (isPlainObject(obj)) {
      out.byte(0x7d);
      put(obj);
      return writeItems(
        Object.entries(obj).map(([k, x]): [unknown, unknown] => [CANONICAL_INDEX.test(k) && Number.isSafeInteger(Number(k)) ? Number(k) : k, x]),
      );
    }
    throw new PickleWriteError(`Cannot save ${describe(obj)} at ${where()} (only tensors, numbers, strings, booleans, null, arrays, Maps, Sets, Buffers and plain objects can be saved)`, where());
  };

  out.byte(0x80);
  out.byte(2);
  save(value);
  out.byte(0x2e);
  return out.result();
}
