// The typed op surface covers every supported engine (scripts/gen-ops.js merges the
// loaded libtorch's schemas with lib/ops/schemas/<version>.json): an op only some
// engines have is typed everywhere, works where the engine has it, and elsewhere throws
// a TorchError naming the engines that have it. Runs on both CI engines (1.13, 2.6).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as torch from '../lib';
import { Tensor, TorchError } from '../lib';
import { N } from '../lib/native';
import { GENERATED_FROM_ENGINES } from '../lib/ops/generated';

const root = path.resolve(__dirname, '..');
const loaded = /^\d+\.\d+\.\d+/.exec(torch.version)![0];
const major = Number(loaded.split('.')[0]);
const schemasDir = path.join(root, 'lib', 'ops', 'schemas');
const snapshot = (v: string): string[] => JSON.parse(fs.readFileSync(path.join(schemasDir, `${v}.json`), 'utf8'));
const close = (a: number[], b: number[], tol = 1e-5): void => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThan(tol));
};

// Compile-time: the 2.x-only ops are typed on torch.ops and torch.* whatever engine this is.
const typedRmsNorm: (input: Tensor, normalizedShape: readonly number[], weight?: Tensor | null, eps?: number | null) => Tensor = torch.ops.rmsNorm;
const typedRmsNormTop: typeof torch.ops.rmsNorm = torch.rmsNorm;
const typedSdpa: (query: Tensor, key: Tensor, value: Tensor) => Tensor = torch.ops.scaledDotProductAttention;

describe('ops: every engine', () => {
  test('the surface was generated from a snapshot of each engine, 1.13.0 and 2.6.0 among them', () => {
    expect(GENERATED_FROM_ENGINES).toEqual(expect.arrayContaining(['1.13.0', '2.6.0']));
    const files = fs.readdirSync(schemasDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    expect([...GENERATED_FROM_ENGINES].sort()).toEqual(files.sort());
    for (const v of GENERATED_FROM_ENGINES) {
      const list = snapshot(v);
      expect(list.length).toBeGreaterThan(1000);
      expect([...list].sort()).toEqual(list);
      expect(list.every((s) => s.startsWith('aten::'))).toBe(true);
    }
    expect(snapshot('2.6.0')).toContain('aten::rms_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight=None, float? eps=None) -> Tensor');
    expect(snapshot('1.13.0').some((s) => s.startsWith('aten::rms_norm('))).toBe(false);
  });

  test('a 2.x-only op (aten::rms_norm) is a function on torch.ops and torch.*; it runs on 2.x and is a clear TorchError on 1.13', () => {
    expect(typeof typedRmsNorm).toBe('function');
    expect(typedRmsNormTop).toBe(typedRmsNorm);
    expect(typeof typedSdpa).toBe('function');
    const x = torch.tensor([[1, 2, 3, 4], [-1, 0.5, 2, -3]], { dtype: 'float32' });
    const w = torch.tensor([1, 0.5, 2, 1], { dtype: 'float32' });
    if (major >= 2) {
      const y = torch.ops.rmsNorm(x, [4], w, 1e-6);
      const rows = x.toArray() as number[][];
      const want = rows.flatMap((r) => {
        const rms = Math.sqrt(r.reduce((a, v) => a + v * v, 0) / r.length + 1e-6);
        return r.map((v, i) => (v / rms) * [1, 0.5, 2, 1][i]);
      });
      close((y.toArray() as number[][]).flat(), want);
    } else {
      expect(() => torch.ops.rmsNorm(x, [4], w, 1e-6)).toThrow(TorchError);
      expect(() => torch.ops.rmsNorm(x, [4], w, 1e-6)).toThrow(
        new TorchError(`torch.ops.rmsNorm: aten::rms_norm is not in libtorch ${loaded} (it is in libtorch 2.6.0)`),
      );
      expect(() => torch.rmsNorm(x, [4])).toThrow(/^torch\.ops\.rmsNorm: aten::rms_norm is not in libtorch 1\.13\.0 \(it is in libtorch 2\.6\.0\)$/);
    }
  });

  test('a 2.x-only overload (aten::squeeze.dims) runs on 2.x; on 1.13 the call that needs it names it, the others still work', () => {
    const x = torch.zeros(1, 3, 1, 2);
    expect(torch.ops.squeeze(x, 0).shape).toEqual([3, 1, 2]);
    if (major >= 2) {
      expect(torch.ops.squeeze(x, [0, 2]).shape).toEqual([3, 2]);
    } else {
      expect(() => torch.ops.squeeze(x, [0, 2])).toThrow(
        new TorchError(`torch.ops.squeeze: aten::squeeze.dims is not in libtorch ${loaded} (it is in libtorch 2.6.0)`),
      );
    }
  });

  test('an op 2.x dropped (aten::symeig) is still typed, and on 2.x names the engine that has it', () => {
    const a = torch.tensor([[2, 1], [1, 2]], { dtype: 'float64' });
    if (major >= 2) {
      expect(() => torch.ops.symeig(a)).toThrow(new TorchError(`torch.ops.symeig: aten::symeig is not in libtorch ${loaded} (it is in libtorch 1.13.0)`));
    } else {
      // Present in 1.13 (deprecated there: not run, for its warning on stderr).
      expect(typeof torch.ops.symeig).toBe('function');
      expect(() => N.opHandle('aten::symeig', '')).not.toThrow();
    }
  });

  test('an overload whose schema changed between engines is typed from the newest and runs on each (aten::to_dense)', () => {
    // 2.x added the keyword masked_grad; the runtime binds the loaded engine's own argument list.
    const x = torch.tensor([1, 2], { dtype: 'float32' });
    expect(torch.ops.toDense(x).toArray()).toEqual([1, 2]);
    if (major >= 2) expect(torch.ops.toDense(x, null, { maskedGrad: false }).toArray()).toEqual([1, 2]);
    else expect(() => torch.ops.toDense(x, null, { maskedGrad: false })).toThrow(/unknown keyword argument 'maskedGrad'/);
  });

  const snapshotHere = fs.existsSync(path.join(schemasDir, `${loaded}.json`));
  const distHere = fs.existsSync(path.join(root, 'dist', 'ops', 'schema.js'));
  (snapshotHere && distHere ? test : test.skip)(
    snapshotHere && distHere
      ? 'the checked-in snapshot of the loaded engine and the generated files are up to date (gen-ops --snapshot / --out into a temp dir)'
      : `generated-files check skipped: ${distHere ? `no snapshot lib/ops/schemas/${loaded}.json for the loaded libtorch` : 'no dist/ (run npm run build:ts)'}`,
    () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-gen-ops-'));
      try {
        const run = (...args: string[]): void => {
          const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'gen-ops.js'), ...args], { encoding: 'utf8', timeout: 60000 });
          expect(r.stderr).toBe('');
          expect(r.status).toBe(0);
        };
        run('--snapshot', '--out', path.join(tmp, 'schemas'));
        expect(fs.readFileSync(path.join(tmp, 'schemas', `${loaded}.json`), 'utf8')).toBe(fs.readFileSync(path.join(schemasDir, `${loaded}.json`), 'utf8'));
        run('--out', tmp);
        for (const f of ['generated.ts', 'functions.ts', 'clashes.json']) {
          const fresh = fs.readFileSync(path.join(tmp, f), 'utf8');
          const checkedIn = fs.readFileSync(path.join(root, 'lib', 'ops', f), 'utf8');
          // A plain toBe would print two 900 KB strings; name the first differing line instead.
          if (fresh !== checkedIn) {
            const a = checkedIn.split('\n');
            const b = fresh.split('\n');
            const i = a.findIndex((line, k) => line !== b[k]);
            throw new Error(`lib/ops/${f} is out of date (run npm run gen:ops): line ${i + 1} is\n  ${a[i]}\nbut the generator writes\n  ${b[i]}`);
          }
        }
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    },
  );
});
