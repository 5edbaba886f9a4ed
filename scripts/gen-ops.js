#!/usr/bin/env node
// Writes the typed op surface from the operator schemas of every supported libtorch: the
// loaded engine's own (N.opSchemas()) plus the snapshots in lib/ops/schemas/<version>.json
// (one per engine; the loaded engine's snapshot is replaced by its live schemas):
//   lib/ops/generated.ts   every public ATen op as a typed function (torch.ops.*), Tensor
//                          methods for ops whose first argument is `Tensor self`, and the
//                          overload metadata the runtime (lib/ops/runtime.ts) binds with
//   lib/ops/functions.ts   the generated functions that go on `torch.*` (no hand-written
//                          export of that name exists)
//   lib/ops/clashes.json   the names left to the hand-written code, and the ops skipped, with reasons
// Run after building: `npm run build && npm run gen:ops && npm run build:ts`. The output is
// checked in, so types exist without a build; the file says which engines it was written from.
// Each overload is typed from the newest engine that has it; the doc comment lists each
// distinct schema with its engines, and "Only in libtorch X." where some engines lack it.
// The output depends only on the schemas, not on which engine runs the generator.
//
//   node scripts/gen-ops.js                 writes lib/ops/{generated.ts,functions.ts,clashes.json}
//   node scripts/gen-ops.js --out DIR       writes them to DIR instead (the up-to-date test)
//   node scripts/gen-ops.js --snapshot      writes lib/ops/schemas/<loaded version>.json
//                                           (--out DIR: to DIR/<version>.json)
// An engine torchnode is not built against: scripts/op_schemas.py prints the same snapshot
// from its python3-torch (`.ci/trixie.sh run 'python3 scripts/op_schemas.py'`).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const argv = process.argv.slice(2);
const outAt = argv.indexOf('--out');
if (outAt >= 0 && !argv[outAt + 1]) throw new Error('gen:ops: --out needs a directory');
const SNAPSHOT = argv.includes('--snapshot');
const schemasDir = path.join(root, 'lib', 'ops', 'schemas');
const outDir = outAt >= 0 ? path.resolve(argv[outAt + 1]) : SNAPSHOT ? schemasDir : path.join(root, 'lib', 'ops');

const { N } = require(path.join(dist, 'native.js'));
const { parseSchema, camel, isDimnameArg } = require(path.join(dist, 'ops', 'schema.js'));
const torch = require(path.join(dist, 'index.js'));
const GENERATED = Symbol.for('torchnode.generated');
/** `1.13.0` (no local suffix): the snapshot's name. */
const version = /^\d+\.\d+\.\d+/.exec(torch.version)?.[0] ?? torch.version;

const RESERVED = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function if ' +
    'import in instanceof new null return super switch this throw true try typeof var void while with yield let static ' +
    'implements interface package private protected public await arguments eval')
    .split(' '),
);

// ---- selection ----------------------------------------------------------------

/** Why an op is not public, or null. */
function opExcluded(name) {
  if (!name.startsWith('aten::')) return 'not in the aten namespace';
  const short = name.slice(6);
  if (short.startsWith('_')) return 'private (leading underscore)';
  if (/backward/.test(short)) return 'a backward op';
  return null;
}

/** Why an overload is left out of the typed surface, or null. */
function overloadExcluded(s) {
  if (s.overload === 'out' || /(^|_)out$/.test(s.overload)) return 'an out= overload';
  if (s.args.some((a) => a.writes && a.kwargOnly)) return 'writes a keyword-only out argument';
  if (s.args.some((a) => isDimnameArg(s.overload, a)) || /dimname/i.test(s.overload)) return 'a Dimname (named tensor) overload';
  return null;
}

// ---- the schemas of every engine -----------------------------------------------

/**
 * Whether a snapshot keeps this schema: the name-level rules below (public aten ops, no
 * out= overloads); scripts/op_schemas.py applies the same ones.
 */
function snapshotKeeps(schema) {
  const m = /^aten::([^.(]+)(?:\.([^(]+))?\(/.exec(schema);
  if (!m) return false;
  const short = m[1];
  const overload = m[2] || '';
  if (short.startsWith('_') || /backward/.test(short)) return false;
  return !(overload === 'out' || /(^|_)out$/.test(overload));
}
const snapshotText = (list) => `[\n${list.map((x) => JSON.stringify(x)).join(',\n')}\n]\n`;
const liveSchemas = [...new Set(N.opSchemas().map((e) => e.schema).filter(snapshotKeeps))].sort();

if (SNAPSHOT) {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${version}.json`);
  fs.writeFileSync(file, snapshotText(liveSchemas));
  console.log(`gen:ops: wrote ${path.relative(process.cwd(), file)} (${liveSchemas.length} schemas of libtorch ${version})`);
  process.exit(0);
}

const vparts = (v) => v.split('.').map(Number);
const newerFirst = (a, b) => {
  const x = vparts(a);
  const y = vparts(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return y[i] - x[i];
  return 0;
};
const engines = new Map();
for (const f of fs.existsSync(schemasDir) ? fs.readdirSync(schemasDir) : []) {
  if (/^\d+\.\d+\.\d+\.json$/.test(f)) engines.set(f.slice(0, -5), JSON.parse(fs.readFileSync(path.join(schemasDir, f), 'utf8')));
}
if (engines.has(version) && snapshotText(engines.get(version)) !== snapshotText(liveSchemas)) {
  console.warn(
    `gen:ops: warning: the loaded libtorch ${version}'s schemas differ from lib/ops/schemas/${version}.json; ` +
      'using the live ones (run `node scripts/gen-ops.js --snapshot` to update the snapshot)',
  );
}
engines.set(version, liveSchemas);
/** Newest first. */
const versions = [...engines.keys()].sort(newerFirst);
const ascending = [...versions].reverse();
const listWords = (xs) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

// One parsed schema per overload, from the newest engine that has it, with `versions`
// (the engines that have it, oldest first) and `variants` ([schema, versions] for each
// distinct schema string, newest first).
const byKey = new Map();
for (const v of versions) {
  for (const text of engines.get(v)) {
    const s = parseSchema(text);
    const key = `${s.name}.${s.overload}`;
    let e = byKey.get(key);
    if (!e) byKey.set(key, (e = { s, versions: [], variants: new Map() }));
    e.versions.unshift(v);
    if (!e.variants.has(text)) e.variants.set(text, []);
    e.variants.get(text).unshift(v);
  }
}
const all = [...byKey.values()].map((e) => Object.assign(e.s, { versions: e.versions, variants: [...e.variants] }));
const byOp = new Map();
const skippedOps = {};
const skippedOverloads = [];
for (const s of all) {
  const why = opExcluded(s.name);
  if (why) continue;
  if (!byOp.has(s.name)) byOp.set(s.name, []);
  byOp.get(s.name).push(s);
}
const ops = [];
for (const [name, list] of [...byOp].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
  const kept = [];
  for (const s of list) {
    const why = overloadExcluded(s);
    if (why) skippedOverloads.push({ schema: s.schema, reason: why });
    else kept.push(s);
  }
  if (!kept.length) {
    skippedOps[name] = [...new Set(list.map((s) => overloadExcluded(s)))].join('; ');
    continue;
  }
  // The overload without a name first (the op's plain form), then the rest by name: the
  // dispatcher's own order is a hash map's, and the checked-in file must not change with it.
  kept.sort((a, b) => (a.overload === b.overload ? 0 : a.overload === '' ? -1 : b.overload === '' ? 1 : a.overload < b.overload ? -1 : 1));
  ops.push({ name, short: name.slice(6), js: camel(name.slice(6)), overloads: kept });
}

// ---- TypeScript types ---------------------------------------------------------

/** `one`: a lone number is accepted for a list (a fixed length `int[2]`, or the varargs form). */
function tsArg(a, one = false) {
  let t;
  const num = a.n > 0 || one ? 'number | readonly number[]' : 'readonly number[]';
  switch (a.base) {
    case 'Tensor': t = a.list ? (a.elemOptional ? '(Tensor | null)[]' : 'Tensor[]') : 'Tensor'; break;
    case 'int': t = a.list ? num : 'number'; break;
    case 'float': t = a.list ? num : 'number'; break;
    case 'bool': t = a.list ? 'boolean | readonly boolean[]' : 'boolean'; break;
    // A 0-dim tensor stands for a Scalar too (PyTorch's parser rule; lib/ops/runtime.ts).
    case 'Scalar': t = a.list ? 'readonly Scalar[]' : 'Scalar | Tensor'; break;
    case 'ScalarType': t = 'OpDType'; break;
    case 'Layout': t = 'OpLayout'; break;
    case 'Device': t = 'DeviceType'; break;
    case 'MemoryFormat': t = 'MemoryFormat'; break;
    case 'str': t = a.list ? 'readonly string[]' : 'string'; break;
    case 'Generator': t = 'GeneratorLike'; break;
    default: return 'never';
  }
  if (a.elemOptional && a.base !== 'Tensor') return 'never';
  return a.optional || a.base === 'Generator' ? `${t.includes('|') ? `(${t})` : t} | null` : t;
}

function tsRet(r, selfIdx) {
  if (r.writes && selfIdx !== undefined) return 'this';
  const p = /^(.*?)(\?)?$/.exec(r.type);
  let t;
  switch (p[1]) {
    case 'Tensor': t = 'Tensor'; break;
    case 'Tensor[]': t = 'Tensor[]'; break;
    case 'Tensor?[]': t = '(Tensor | null)[]'; break;
    case 'int': case 'SymInt': case 'float': t = 'number'; break;
    case 'int[]': case 'SymInt[]': case 'float[]': t = 'number[]'; break;
    case 'bool': t = 'boolean'; break;
    case 'Scalar': t = 'Scalar'; break;
    case 'ScalarType': t = 'OpDType'; break;
    case 'str': t = 'string'; break;
    case 'Device': t = 'string'; break;
    default: t = 'unknown';
  }
  return p[2] ? `${t} | null` : t;
}

function tsReturns(s, method) {
  const rets = s.returns;
  if (rets.length === 0) return 'void';
  const selfIdx = method && s.args[0] && s.args[0].writes ? 0 : undefined;
  const each = rets.map((r) => (r.writes && r.alias && s.args[0] && s.args[0].alias === r.alias ? tsRet(r, selfIdx) : tsRet(r, undefined)));
  if (rets.length === 1) return each[0] === 'this' ? 'this' : each[0];
  const tuple = `[${each.map((t) => (t === 'this' ? 'Tensor' : t)).join(', ')}]`;
  const named = rets.filter((r) => r.name).map((r, i) => `${r.name}: ${each[i] === 'this' ? 'Tensor' : each[i]}`);
  return named.length === rets.length ? `${tuple} & { ${named.join('; ')} }` : tuple;
}

/** TS overload signatures for one schema; `method` drops self. */
function signatures(s, method, tuple = false) {
  const args = method ? s.args.slice(1) : s.args;
  const positional = args.filter((a) => !a.kwargOnly);
  let lastRequired = -1;
  positional.forEach((a, i) => {
    if (!a.hasDefault) lastRequired = i;
  });
  const required = positional.slice(0, lastRequired + 1);
  const optional = positional.slice(lastRequired + 1);
  const kwRequired = args.filter((a) => a.kwargOnly && !a.hasDefault);
  const kwFields = args
    .filter((a) => a.hasDefault || a.kwargOnly)
    .map((a) => `${camel(a.name)}${a.hasDefault ? '?' : ''}: ${tsArg(a)}`);
  if (s.args.some((a) => a.name === 'pin_memory')) kwFields.push('requiresGrad?: boolean');
  const opts = kwFields.length ? `{ ${kwFields.join('; ')} }` : null;
  const optsParam = opts ? `options${kwRequired.length ? '' : '?'}: ${opts}` : null;
  const names = new Set();
  const pname = (a) => {
    let n = camel(a.name);
    if (RESERVED.has(n) || n === 'options') n = `${n}_`;
    while (names.has(n)) n += '_';
    names.add(n);
    return n;
  };
  const lone = positional.length === 1 ? positional[0] : null;
  const req = required.map((a) => `${pname(a)}: ${tsArg(a, a === lone)}`);
  const opt = optional.map((a) => `${pname(a)}?: ${tsArg(a, a === lone)}`);
  const ret = tsReturns(s, method);
  const forms = [];
  const list = (xs) => xs.filter(Boolean).join(', ');
  forms.push(list([...req, ...opt, optsParam]));
  if (opt.length && optsParam) forms.push(list([...req, optsParam]));
  // Python's varargs form for a lone int list.
  const varargs = positional.length === 1 && positional[0].base === 'int' && positional[0].list;
  if (varargs) {
    forms.push(`...${pname({ name: positional[0].name + '_' })}: number[]`);
    if (opts) forms.push(`...${pname({ name: positional[0].name + '__' })}: number[], options: ${opts}`);
  }
  if (!tuple) {
    return forms.map((f) => (f.startsWith('...') && f.includes(', options') ? `(...args: [${f}]): ${ret}` : `(${f}): ${ret}`));
  }
  // Methods: one signature per schema (the first optional positional parameter may be
  // the options object instead). Tensor carries every generated method, and each extra
  // signature or union of argument lists multiplies the cost of every structural check
  // of Tensor: tsc took 4x as long with the forms above as overloads.
  const firstOpt = opt.length && opts ? [opt[0].replace(/\?: (.*)$/, (_m, t) => `?: ${t} | ${opts}`), ...opt.slice(1)] : opt;
  const main = `(${list([...req, ...firstOpt, optsParam])}): ${ret}`;
  // Python's varargs form (`x.view(2, -1)`, `x.permute(1, 0)`): one more signature, for
  // the few methods whose only positional argument is an int list.
  return varargs ? [main, `(...${pname({ name: positional[0].name + '_' })}: number[]): ${ret}`] : [main];
}

// ---- metadata -------------------------------------------------------------------

function defOf(s) {
  const args = s.args.map((a) => `${a.kwargOnly ? '*' : ''}${a.name}:${a.type}${a.hasDefault ? '=' : ''}`);
  const rets = s.returns.map((r) => {
    let idx = -1;
    if (r.writes && r.alias) idx = s.args.findIndex((a) => a.writes && a.alias === r.alias && a.base === 'Tensor' && !a.list);
    return `${r.name ? `${r.name}:` : ''}${r.type}${idx >= 0 ? `@${idx}` : ''}`;
  });
  return s.versions.length < versions.length ? [s.overload, args, rets, s.versions] : [s.overload, args, rets];
}

// ---- what stays hand-written ------------------------------------------------------

const clashFunctions = [];
const clashMethods = [];
const reservedSkipped = [];
const handWritten = (v) => v !== undefined && !(typeof v === 'function' && v[GENERATED]);
const protoHas = (name) => {
  if (!(name in torch.Tensor.prototype)) return false;
  let p = torch.Tensor.prototype;
  while (p) {
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d) return !(d.value && d.value[GENERATED]);
    p = Object.getPrototypeOf(p);
  }
  return false;
};
const EXTRA_RESERVED_EXPORTS = new Set(['ops', 'default']);

const seenJs = new Set();
for (const o of ops) {
  if (seenJs.has(o.js)) throw new Error(`two ops map to ${o.js}`);
  seenJs.add(o.js);
  o.fn = !EXTRA_RESERVED_EXPORTS.has(o.js) && !handWritten(torch[o.js]);
  if (!o.fn) clashFunctions.push(o.js);
  if (RESERVED.has(o.js)) reservedSkipped.push(o.js);
  o.methodOverloads = o.overloads.filter((s) => s.args[0] && s.args[0].name === 'self' && s.args[0].base === 'Tensor' && !s.args[0].list);
  o.method = o.methodOverloads.length > 0 && !protoHas(o.js);
  if (o.methodOverloads.length > 0 && !o.method) clashMethods.push(o.js);
}

// ---- write ---------------------------------------------------------------------------

const L = [];
const esc = (t) => t.replace(/\*\//g, '*\\/');
const schemaDoc = (list, indent) =>
  `${indent}/**\n${list
    .map((s) => {
      const lines =
        s.variants.length === 1
          ? [`\`${esc(s.schema)}\``]
          : s.variants.map(([text, vs]) => `\`${esc(text)}\` (libtorch ${listWords(vs)})`);
      if (s.versions.length < versions.length) lines.push(`Only in libtorch ${listWords(s.versions)}.`);
      return lines.map((x) => `${indent} * ${x}`).join(`\n${indent} *\n`);
    })
    .join(`\n${indent} *\n`)}\n${indent} */`;
L.push(
  `// Generated by scripts/gen-ops.js from the operator schemas of libtorch ${listWords(ascending)} (lib/ops/schemas/). ` +
    'Do not edit: run `npm run gen:ops`.',
);
L.push(`// ${ops.length} public ATen ops, ${ops.reduce((n, o) => n + o.overloads.length, 0)} overloads.`);
L.push('/* eslint-disable */');
L.push("import type { DeviceType, GeneratorLike, MemoryFormat, Scalar } from '../tensor';");
L.push("import { Tensor } from '../tensor';");
L.push("import { callOp as call, op, OverloadDef, setGeneratedFrom } from './runtime';");
L.push('');
L.push('/** The libtorch versions whose schemas wrote this file, oldest first. */');
L.push(`export const GENERATED_FROM_ENGINES: readonly string[] = ${JSON.stringify(ascending)};`);
L.push('/** The same, as one string; an op the loaded engine lacks throws a TorchError naming the engines that have it. */');
L.push(`export const GENERATED_FROM = ${JSON.stringify(ascending.join(', '))};`);
L.push('setGeneratedFrom(GENERATED_FROM_ENGINES);');
L.push('/** Every dtype name the engine knows. */');
L.push("export type OpDType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool' | 'float16' | 'bfloat16' | 'int16' | 'int8' | 'complex64' | 'complex128';");
L.push("export type OpLayout = 'strided' | 'sparse_coo' | 'sparse_csr' | 'sparse_csc' | 'sparse_bsr' | 'sparse_bsc' | 'mkldnn';");
L.push("const GENERATED = Symbol.for('torchnode.generated');");
L.push('function mark<F extends Function>(f: F): F {');
L.push('  Object.defineProperty(f, GENERATED, { value: true });');
L.push('  return f;');
L.push('}');
L.push('');
L.push(
  '// ---- overload metadata: [overload, args (`*`: keyword-only, `=`: has a default), returns (`@i`: argument i in place), ' +
    'the engines that have it (where not all do)]',
);
// One JSON string, parsed at load: a literal this size would cost the type checker more than the rest of the file.
const meta = {};
for (const o of ops) meta[o.short] = o.overloads.map(defOf);
L.push(`const META: Record<string, OverloadDef[]> = JSON.parse(${JSON.stringify(JSON.stringify(meta))});`);
for (const o of ops) L.push(`const $${o.short} = op(${JSON.stringify(o.name)}, META[${JSON.stringify(o.short)}]);`);
L.push('');
L.push('// ---- functions: torch.ops.* (all), torch.* (those in functions.ts) ----');
for (const o of ops) {
  const fname = RESERVED.has(o.js) ? `${o.js}_op` : o.js;
  const sigs = o.overloads.flatMap((s) => signatures(s, false).map((sig) => ({ s, sig })));
  for (const { s, sig } of sigs) {
    L.push(schemaDoc([s], ''));
    L.push(`export function ${fname}${sig};`);
  }
  L.push(`export function ${fname}(...args: unknown[]): any {`);
  L.push(`  return call($${o.short}, args);`);
  L.push('}');
  L.push(`mark(${fname});`);
}
L.push('');
L.push('// ---- Tensor methods (where no hand-written method of that name exists) ----');
L.push("declare module '../tensor' {");
L.push('  interface Tensor {');
for (const o of ops.filter((x) => x.method)) {
  for (const s of o.methodOverloads) {
    for (const sig of signatures(s, true, true)) {
      L.push(schemaDoc([s], '    '));
      L.push(`    ${o.js}${sig};`);
    }
  }
}
L.push('  }');
L.push('}');
L.push('');
L.push('/** The generated methods, by name. */');
L.push(`export const METHOD_NAMES: readonly string[] = ${JSON.stringify(ops.filter((x) => x.method).map((x) => x.js))};`);
// One function literal per method (not closures made in a loop): V8 shares the type
// feedback of closures made from one literal, so a shared wrapper would see every op's
// arguments at one call site and run about 1 us slower per call.
L.push('type M = (this: Tensor, ...args: unknown[]) => unknown;');
L.push('const METHODS: Record<string, M> = {');
for (const o of ops.filter((x) => x.method)) {
  L.push(`  ${JSON.stringify(o.js)}: function (this: Tensor, ...args: unknown[]): unknown { return call($${o.short}, [this, ...args], true); },`);
}
L.push('};');
L.push('for (const name of METHOD_NAMES) {');
L.push('  if (name in Tensor.prototype) continue; // hand-written wins');
L.push('  const fn = mark(METHODS[name]);');
L.push("  Object.defineProperty(fn, 'name', { value: name });");
L.push('  Object.defineProperty(Tensor.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });');
L.push('}');
L.push('');
if (reservedSkipped.length) {
  L.push('// Ops whose names are JavaScript reserved words: declared as <name>_op, exported as <name>.');
  L.push(`export { ${reservedSkipped.map((n) => `${n}_op as ${n}`).join(', ')} };`);
}
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, 'generated.ts'), L.join('\n') + '\n');

const F = [];
F.push(`// Generated by scripts/gen-ops.js from libtorch ${listWords(ascending)}. Do not edit: run \`npm run gen:ops\`.`);
F.push('// The generated functions exported on `torch.*`: every public op without a hand-written');
F.push('// export of the same name (those are listed in clashes.json and reachable as torch.ops.<name>).');
const fnNames = ops.filter((o) => o.fn).map((o) => o.js);
F.push('export {');
for (const n of fnNames) F.push(RESERVED.has(n) ? `  ${n}_op as ${n},` : `  ${n},`);
F.push("} from './generated';");
fs.writeFileSync(path.join(outDir, 'functions.ts'), F.join('\n') + '\n');

const report = {
  generatedFrom: ascending,
  ops: ops.length,
  overloads: ops.reduce((n, o) => n + o.overloads.length, 0),
  functionsOnTorch: fnNames.length,
  methods: ops.filter((o) => o.method).length,
  clashFunctions: clashFunctions.sort(),
  clashMethods: clashMethods.sort(),
  reservedNames: reservedSkipped,
  skippedOps,
  skippedOverloads: skippedOverloads.length,
  /** The typed ops that some engines lack: the engines that have them. */
  opsNotInEvery: Object.fromEntries(
    ops
      .map((o) => [o.name, ascending.filter((v) => o.overloads.some((s) => s.versions.includes(v)))])
      .filter(([, vs]) => vs.length < versions.length),
  ),
};
fs.writeFileSync(path.join(outDir, 'clashes.json'), JSON.stringify(report, null, 2) + '\n');
console.log(
  `gen:ops: libtorch ${listWords(ascending)} (loaded: ${version}): ${report.ops} ops (${report.overloads} overloads); ${report.functionsOnTorch} on torch.*, ` +
    `${report.methods} Tensor methods; left to hand-written code: ${clashFunctions.length} functions, ${clashMethods.length} methods; ` +
    `${Object.keys(skippedOps).length} ops with no usable overload`,
);
