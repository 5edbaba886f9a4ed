/**
 * Consecutive batches of a dataset, in order, for evaluation: no sampler and no
 * random draws (iterating a DataLoader draws a seed from the global generator, which
 * would move a training's random stream). Each batch lives in its own tidy().
 */
import { tidy } from '../memory';
import { Generator } from '../random';
import { Tensor } from '../tensor';
import { DataLoader } from './dataloader';
import { Dataset, isTensorsDataset, TensorsDataset } from './dataset';

/**
 * Calls `fn(tensors, offset)` for each batch of `batchSize` samples, in order.
 * Tensor datasets are sliced (their `batchSource` when they have one, so MNIST
 * scales uint8 rows per batch); other datasets go through a DataLoader with a
 * generator of its own.
 */
export function forEachBatch(dataset: Dataset<Tensor[]>, batchSize: number, fn: (batch: Tensor[], offset: number) => void): void {
  if (isTensorsDataset(dataset)) {
    const ds = dataset as TensorsDataset;
    const source = ds.batchSource;
    const tensors = (source ? source.tensors : ds.tensors) as Tensor[];
    const n = tensors[0].shape[0];
    for (let start = 0; start < n; start += batchSize) {
      const len = Math.min(batchSize, n - start);
      tidy(() => {
        const rows = tensors.map((t) => t.narrow(0, start, len));
        fn(source ? source.transform(rows) : rows, start);
      });
    }
    return;
  }
  const loader = new DataLoader(dataset, { batchSize, shuffle: false, generator: new Generator() });
  const it = (loader as Iterable<Tensor[]>)[Symbol.iterator]();
  for (let offset = 0; ; ) {
    const done = tidy(() => {
      const next = it.next();
      if (next.done) return true;
      const batch = next.value as Tensor[];
      fn(batch, offset);
      offset += batch[0].shape[0];
      return false;
    });
    if (done) return;
  }
}
