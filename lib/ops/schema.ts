/**
 * Reads c10 operator schemas, as the dispatcher prints them
 * (`aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor`).
 * Used by scripts/gen-ops.js to write lib/ops/generated.ts, and by the tests.
 * @internal
 */

export interface SchemaArg {
  name: string;
  /** The type without alias annotations: `Tensor`, `int[2]`, `Tensor?[]`, `SymInt[]?`. */
  type: string;
  /** `Tensor`, `int` (SymInt too), `float`, `bool`, `Scalar`, `ScalarType`, `Layout`, `Device`, `MemoryFormat`, `str`, `Generator`, or the raw name. */
  base: string;
  optional: boolean;
  list: boolean;
  elemOptional: boolean;
  /** Fixed list length (`int[2]`), else 0. */
  n: number;
  hasDefault: boolean;
  /** The default as the schema prints it (`1`, `None`, `[]`, `"mean"`). */
  default?: string;
  kwargOnly: boolean;
  /** Written in place (`Tensor(a!)`). */
  writes: boolean;
  /** The alias set letter, when annotated (`a` in `Tensor(a!)`). */
  alias?: string;
}

export interface SchemaReturn {
  name?: string;
  type: string;
  writes: boolean;
  alias?: string;
}

export interface ParsedSchema {
  /** Qualified name without the overload: `aten::add`. */
  name: string;
  overload: string;
  args: SchemaArg[];
  returns: SchemaReturn[];
  schema: string;
}

/** Splits at top-level commas (outside (), [] and quotes). */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      cur += c;
      if (c === '\\') {
        cur += s[++i] ?? '';
      } else if (c === quote) {
        quote = null;
      }
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** The index of the first space outside parentheses (`Tensor(a -> *) self`). */
function topSpace(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    else if (s[i] === ' ' && depth === 0) return i;
  }
  return -1;
}

/** The index of the `)` matching the `(` at `open`. */
function matching(s: string, open: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced schema: ${s}`);
}

/** `Tensor(a!)[]` -> { type: 'Tensor[]', writes: true, alias: 'a' }. */
function stripAlias(t: string): { type: string; writes: boolean; alias?: string } {
  const m = /\(([a-z0-9]+)?(!)?(?: -> [^)]*)?\)/.exec(t);
  if (!m) return { type: t, writes: false };
  return { type: t.slice(0, m.index) + t.slice(m.index + m[0].length), writes: m[2] === '!', alias: m[1] };
}

const BASES: Record<string, string> = { SymInt: 'int' };

export function typeParts(type: string): Pick<SchemaArg, 'base' | 'optional' | 'list' | 'elemOptional' | 'n'> {
  let t = type;
  let optional = false;
  let list = false;
  let elemOptional = false;
  let n = 0;
  if (t.endsWith('?')) {
    optional = true;
    t = t.slice(0, -1);
  }
  const lm = /\[(\d*)\]$/.exec(t);
  if (lm) {
    list = true;
    n = lm[1] ? Number(lm[1]) : 0;
    t = t.slice(0, lm.index);
    if (t.endsWith('?')) {
      elemOptional = true;
      t = t.slice(0, -1);
    }
  }
  return { base: BASES[t] ?? t, optional, list, elemOptional, n };
}

export function parseSchema(schema: string): ParsedSchema {
  const open = schema.indexOf('(');
  const close = matching(schema, open);
  const full = schema.slice(0, open);
  const dot = full.indexOf('.', full.indexOf('::') + 2);
  const name = dot < 0 ? full : full.slice(0, dot);
  const overload = dot < 0 ? '' : full.slice(dot + 1);
  const args: SchemaArg[] = [];
  let kwargOnly = false;
  for (const part of splitTop(schema.slice(open + 1, close))) {
    if (part === '*') {
      kwargOnly = true;
      continue;
    }
    const sp = topSpace(part);
    const rawType = part.slice(0, sp);
    const rest = part.slice(sp + 1);
    const eq = rest.indexOf('=');
    const argName = eq < 0 ? rest : rest.slice(0, eq);
    const a = stripAlias(rawType);
    args.push({
      name: argName,
      type: a.type,
      ...typeParts(a.type),
      hasDefault: eq >= 0,
      default: eq >= 0 ? rest.slice(eq + 1) : undefined,
      kwargOnly,
      writes: a.writes,
      alias: a.alias,
    });
  }
  let retText = schema.slice(close + 1).trim().replace(/^->\s*/, '');
  const returns: SchemaReturn[] = [];
  if (retText.startsWith('(')) retText = retText.slice(1, matching(retText, 0));
  for (const part of splitTop(retText)) {
    const sp = part.lastIndexOf(' ');
    const hasName = sp > 0 && !/[)\]]$/.test(part.slice(sp + 1)) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part.slice(sp + 1));
    const rawType = hasName ? part.slice(0, sp) : part;
    const a = stripAlias(rawType);
    returns.push({ name: hasName ? part.slice(sp + 1) : undefined, type: a.type, writes: a.writes, alias: a.alias });
  }
  return { name, overload, args, returns, schema };
}

/** PyTorch's snake_case in camelCase, keeping a trailing `_` (in-place) as it is: `index_put_` -> `indexPut_`. */
export function camel(s: string): string {
  const trail = /_+$/.exec(s)?.[0] ?? '';
  const core = s.slice(0, s.length - trail.length);
  return core.replace(/_+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase()) + trail;
}

/** The schema parser reads `Dimname` as `str`; these are named-tensor arguments (see native/dispatch.cc). */
export function isDimnameArg(overload: string, a: SchemaArg): boolean {
  if (a.base !== 'str') return false;
  if (/dimname|names/i.test(overload)) return true;
  return ['dim', 'dims', 'dim0', 'dim1', 'names', 'out_dim', 'start_dim', 'end_dim', 'outdim', 'order'].includes(a.name);
}
