// The public surface is deliberate: every name lib/index.ts exports (one level into
// its namespaces, and each exported class's public members) against the committed
// list in test/fixtures/public-api.txt. Internal helpers (h, wrap, gen, checkInt,
// setThreadGenerator, ...) must not appear. After a deliberate change, rewrite the
// list with UPDATE_PUBLIC_API=1 npx jest test/public-api.test.ts and review the diff.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

const root = path.join(__dirname, '..');
const snapshot = path.join(__dirname, 'fixtures', 'public-api.txt');

function kindOf(sym: ts.Symbol): string {
  const f = sym.flags;
  if (f & ts.SymbolFlags.Class) return 'class';
  if (f & ts.SymbolFlags.Function) return 'function';
  if (f & ts.SymbolFlags.Enum) return 'enum';
  if (f & (ts.SymbolFlags.ValueModule | ts.SymbolFlags.NamespaceModule)) return 'namespace';
  if (f & ts.SymbolFlags.Variable) return 'const';
  if (f & ts.SymbolFlags.Interface) return 'interface';
  if (f & ts.SymbolFlags.TypeAlias) return 'type';
  return 'other';
}

function surface(): string[] {
  const entry = path.join(root, 'lib', 'index.ts');
  const program = ts.createProgram([entry], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const lines: string[] = [];
  const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const members = (prefix: string, sym: ts.Symbol) => {
    const decl = sym.valueDeclaration ?? sym.declarations?.[0];
    if (!decl) return;
    const type = checker.getTypeOfSymbolAtLocation(sym, decl);
    // Instance members, then static ones; private/protected/#/_ names and @internal ones are not surface.
    const inst = checker.getDeclaredTypeOfSymbol(sym).getProperties();
    const stat = type.getProperties().filter((p) => p.name !== 'prototype');
    for (const [list, mark] of [[inst, '#'], [stat, '.']] as const) {
      for (const p of list) {
        const d = p.valueDeclaration ?? p.declarations?.[0];
        const mods = d && ts.canHaveModifiers(d) ? ts.getModifiers(d) ?? [] : [];
        if (mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) continue;
        if (p.name.startsWith('_') || p.name.startsWith('#') || p.name.startsWith('__@')) continue;
        if (d && ts.getJSDocTags(d).some((t) => t.tagName.text === 'internal')) continue;
        lines.push(`${prefix}${mark}${p.name}`);
      }
    }
  };
  const walk = (prefix: string, exports: ts.Symbol[], depth: number) => {
    for (const e of exports) {
      const sym = resolve(e);
      const d = sym.valueDeclaration ?? sym.declarations?.[0];
      if (d && ts.getJSDocTags(d).some((t) => t.tagName.text === 'internal')) continue;
      const kind = kindOf(sym);
      const name = `${prefix}${e.name}`;
      lines.push(`${name}: ${kind}`);
      if (kind === 'class') members(name, sym);
      if (kind === 'namespace' && depth < 1) walk(`${name}.`, checker.getExportsOfModule(sym), depth + 1);
    }
  };
  const mod = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  walk('', checker.getExportsOfModule(mod), 0);
  return [...new Set(lines)].sort();
}

describe('public API', () => {
  const got = surface();
  test('internal helpers are not exported', () => {
    for (const name of ['h', 'wrap', 'gen', 'checkInt', 'checkDtype', 'checkDevice', 'checkShape', 'checkNumber', 'setThreadGenerator', 'getThreadGenerator', 'parseToTarget']) {
      expect(got.filter((l) => l.split(':')[0] === name)).toEqual([]);
    }
  });
  test('the exported names match test/fixtures/public-api.txt', () => {
    if (process.env.UPDATE_PUBLIC_API === '1') fs.writeFileSync(snapshot, got.join('\n') + '\n');
    const want = fs.readFileSync(snapshot, 'utf8').trim().split('\n');
    const added = got.filter((l) => !want.includes(l));
    const removed = want.filter((l) => !got.includes(l));
    // On failure: review, then UPDATE_PUBLIC_API=1 to accept.
    expect({ added, removed }).toEqual({ added: [], removed: [] });
  });
});
