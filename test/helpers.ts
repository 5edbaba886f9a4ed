// Shared by the tests: fixture loading and float comparison.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Tensor, tensor as makeTensor, DType, version as torchVersion } from '../lib';

export interface FixtureTensor {
  shape: number[];
  dtype: string;
  data: (number | string)[];
}

/**
 * PyTorch's numbers depend on the engine version (Adam's formula changed in 2.0, for
 * one), so parity fixtures live in one folder per version, `test/fixtures/<major.minor>/`
 * (patch releases keep the numerics, and Debian's 1.13.1 headers say 1.13.0),
 * each written by that version's real PyTorch (`npm run fixtures`). This is the set
 * for the libtorch the addon was built against, or null when none was generated.
 */
export const FIXTURE_VERSION = torchVersion.split('.').slice(0, 2).join('.');
export const FIXTURE_DIR: string | null = (() => {
  const dir = path.join(__dirname, 'fixtures', FIXTURE_VERSION);
  return fs.existsSync(path.join(dir, 'seed_cnn_train.json')) ? dir : null;
})();
/** Why parity tests skip, when FIXTURE_DIR is null. */
export const NO_FIXTURES = `no PyTorch fixtures for libtorch ${torchVersion} (test/fixtures/${FIXTURE_VERSION}/ is missing; make them with that version's PyTorch: npm run fixtures)`;
/** `describe` for tests that compare with PyTorch's fixtures; a visible skip without them. */
export const describeParity: (name: string, fn: () => void) => void = (name, fn) =>
  FIXTURE_DIR ? describe(name, fn) : describe.skip(`${name} [skipped: ${NO_FIXTURES}]`, fn);

/** `test` for one test that compares with PyTorch's fixtures; a visible skip without them. */
export const testParity = ((name: string, fn: jest.ProvidesCallback, timeout?: number) =>
  FIXTURE_DIR ? test(name, fn, timeout) : test.skip(`${name} [skipped: ${NO_FIXTURES}]`, fn, timeout)) as (
  name: string, fn: jest.ProvidesCallback, timeout?: number) => void;

/** Path of a file in this engine's fixture set (throws naming the missing set). */
export function fixturePath(name: string): string {
  if (!FIXTURE_DIR) throw new Error(NO_FIXTURES);
  return path.join(FIXTURE_DIR, name);
}

/** A JSON fixture of this engine's set; `{}` when there is no set (its tests are skipped). */
export function fixture<T = any>(name: string): T {
  if (!FIXTURE_DIR) return {} as T;
  return JSON.parse(fs.readFileSync(fixturePath(name), 'utf8')) as T;
}

/** A Tensor from a fixture `{shape, dtype, data}`. */
export function fromFixture(f: FixtureTensor): Tensor {
  const dtype = f.dtype as DType;
  const flat = f.data.map(Number);
  const t = makeTensor(flat.length ? flat : [], { dtype });
  return t.reshape(f.shape);
}

/** Max relative error |a-b| / max(|b|, floor). Throws if lengths differ. */
export function maxRelErr(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-7): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = Number(expected[i]);
    const err = Math.abs(Number(actual[i]) - e) / Math.max(Math.abs(e), floor);
    if (!(err <= worst)) worst = err; // NaN propagates
  }
  return worst;
}

export function flat(t: Tensor): number[] {
  return Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);
}

import { memory } from '../lib';

/**
 * Handles made but not disposed so far (created - disposed). Unlike the live
 * count it does not move when the GC frees garbage, so a before/after difference
 * says exactly what a piece of code left undisposed.
 */
export function undisposed(): number {
  const m = memory();
  return m.created - m.disposed;
}

/** The error `fn` throws (fails the test when it throws nothing). */
export function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

/** A TCP port free on 127.0.0.1 right now (for a rank 0 store or a test server). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
