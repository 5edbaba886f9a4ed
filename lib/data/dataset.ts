/**
 * Map-style datasets (`torch.utils.data.Dataset`, `TensorDataset`) and the default
 * collate function that turns a list of samples into a batch.
 */
import { describe, expected, argTypeError, outOfRangeError } from '../errors';
import { isTensor, Tensor, tensor } from '../tensor';
import { stack } from '../ops/generated';

/**
 * A map-style dataset: a length and random access by index, like PyTorch's
 * `Dataset` with `__len__` and `__getitem__`. Plain arrays work as datasets too.
 */
export interface Dataset<T = unknown> {
  readonly length: number;
  get(index: number): T;
}

/**
 * A dataset whose samples are rows of equally long tensors. DataLoader batches
 * such datasets with one `indexSelect` per tensor instead of stacking samples.
 */
export interface TensorsDataset extends Dataset<Tensor[]> {
  readonly tensors: readonly Tensor[];
  /**
   * Optional: compact tensors DataLoader gathers rows from instead of `tensors`,
   * and the per-batch transform that turns those rows into `tensors`' form (MNIST
   * keeps uint8 pixels and scales each batch, rather than holding 4x the memory).
   */
  readonly batchSource?: { readonly tensors: readonly Tensor[]; transform(rows: Tensor[]): Tensor[] };
}

/** @internal */
export function isTensorsDataset(d: unknown): d is TensorsDataset {
  const t = (d as TensorsDataset | null)?.tensors;
  return Array.isArray(t) && t.length > 0 && t.every(isTensor);
}

/** @internal Checks a dataset-like value and gives it a `get`. */
export function asDataset<T>(d: Dataset<T> | readonly T[], name = 'dataset'): Dataset<T> {
  if (Array.isArray(d)) return { length: d.length, get: (i: number) => d[i] };
  const ds = d as Dataset<T>;
  if (ds === null || typeof ds !== 'object' || typeof ds.get !== 'function' || !Number.isInteger(ds.length) || ds.length < 0) {
    expected('a Dataset (an object with length and get(i)) or an array', name, d);
  }
  return ds;
}

/**
 * Wraps tensors that share their first dimension; sample `i` is `[t0[i], t1[i], ...]`.
 * Shape: each tensor [N, ...].
 * @example const ds = new TensorDataset(images, labels); const [x, y] = ds.get(0);
 */
export class TensorDataset implements TensorsDataset {
  readonly tensors: Tensor[];

  constructor(...tensors: Tensor[]) {
    if (tensors.length === 0) throw argTypeError('TensorDataset needs at least one tensor');
    tensors.forEach((t, i) => {
      if (!isTensor(t)) expected('a Tensor', `tensors[${i}]`, t);
      if (t.dim() === 0) throw outOfRangeError(`TensorDataset: tensors[${i}] is 0-dimensional; each tensor needs a first (sample) dimension`);
    });
    const n = tensors[0].shape[0];
    tensors.forEach((t, i) => {
      if (t.shape[0] !== n) {
        throw outOfRangeError(`Size mismatch between tensors: tensors[0] has ${n} rows but tensors[${i}] has ${t.shape[0]} (shape [${t.shape}])`);
      }
    });
    this.tensors = tensors;
  }

  get length(): number {
    return this.tensors[0].shape[0];
  }

  /** Sample `index`: one row (a view) of each tensor. */
  get(index: number): Tensor[] {
    checkIndex(index, this.length);
    return this.tensors.map((t) => t.select(0, index));
  }
}

/** @internal */
export function checkIndex(index: number, length: number): void {
  if (!Number.isInteger(index)) expected('an integer', 'index', index);
  if (index < 0 || index >= length) throw outOfRangeError(`index ${index} is out of range for a dataset of length ${length}`);
}

/**
 * PyTorch's `default_collate`: stacks tensors along a new first dim; numbers become
 * a tensor (int64 when all are integers, else float64, as Python ints and floats do);
 * booleans a bool tensor, bigints int64; strings stay a list; arrays and plain objects
 * are collated element-wise / key-wise.
 * @example defaultCollate([[x0, 1], [x1, 7]]) // [stack([x0, x1]), tensor([1, 7])]
 */
export function defaultCollate(batch: unknown[]): unknown {
  if (!Array.isArray(batch) || batch.length === 0) expected('a non-empty array of samples', 'batch', batch);
  const first = batch[0];
  if (isTensor(first)) {
    batch.forEach((b, i) => {
      if (!isTensor(b)) throw argTypeError(`defaultCollate: sample 0 is a Tensor but sample ${i} is ${describe(b)}`);
    });
    return stack(batch as Tensor[], 0);
  }
  if (typeof first === 'number') {
    const nums = batch as number[];
    if (nums.some((v) => typeof v !== 'number')) throw argTypeError('defaultCollate: samples mix numbers and other types');
    const allInt = nums.every((v) => Number.isInteger(v));
    return tensor(nums, { dtype: allInt ? 'int64' : 'float64' });
  }
  if (typeof first === 'boolean' || typeof first === 'bigint') {
    return tensor(batch as (boolean | bigint)[], typeof first === 'bigint' ? { dtype: 'int64' } : {});
  }
  if (typeof first === 'string') return [...batch];
  if (Array.isArray(first)) {
    const n = first.length;
    batch.forEach((b, i) => {
      if (!Array.isArray(b) || b.length !== n) {
        throw outOfRangeError(`defaultCollate: each sample should have the same length: sample 0 has ${n} elements but sample ${i} has ${Array.isArray(b) ? b.length : describe(b)}`);
      }
    });
    return first.map((_, j) => defaultCollate(batch.map((b) => (b as unknown[])[j])));
  }
  if (first !== null && typeof first === 'object' && Object.getPrototypeOf(first) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(first)) out[k] = defaultCollate(batch.map((b) => (b as Record<string, unknown>)[k]));
    return out;
  }
  throw argTypeError(`defaultCollate: batch must contain tensors, numbers, booleans, strings, arrays or plain objects; found ${describe(first)}`);
}
