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

// A full garbage collection, without --expose-gc on the command line.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { memory } from '../lib';
v8.setFlagsFromString('--expose-gc');
const gcNow = vm.runInNewContext('gc') as () => void;

/**
 * Live native tensors once all garbage is collected. Handles that became garbage
 * earlier are freed whenever a GC runs (part of it in V8's second-pass callbacks,
 * which may wait for the event loop), so a raw memory().tensors can drop in the
 * middle of a test; settling first makes before/after counts exact.
 */
export async function liveTensors(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 10; i++) {
    gcNow();
    await new Promise((r) => setImmediate(r));
    const n = memory().tensors;
    if (n === last) return n;
    last = n;
  }
  return last;
}
