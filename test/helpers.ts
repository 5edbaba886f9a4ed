// Shared by the tests: fixture loading and float comparison.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor, tensor as makeTensor, DType } from '../lib';

export interface FixtureTensor {
  shape: number[];
  dtype: string;
  data: (number | string)[];
}

export function fixture<T = any>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8')) as T;
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
