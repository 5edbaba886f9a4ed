/**
 * predict(): classify 28x28 digit images with a trained model, without autograd
 * and with no per-call setup beyond one copy of the pixels in and out.
 */
import * as zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { checkKeys, expected, argTypeError, outOfRangeError } from './errors';
import { inferenceMode } from './autograd';
import { tidy } from './memory';
import { Module } from './nn/module';
import { fromBuffer, Tensor } from './tensor';
import { softmax, withOneDnnInference } from './nn/functional';

export interface Prediction {
  /** The most probable class. */
  class: number;
  /** Softmax probabilities, one per class. */
  probabilities: number[];
}

export type ImageInput = ArrayLike<number> | number[][] | Buffer | Tensor;

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];

function isPng(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length > 8 && PNG_MAGIC.every((b, i) => v[i] === b);
}

/** The most image data a 28x28 PNG can inflate to (16-bit RGBA, interlaced: 7 passes of filter bytes), with room to spare. */
const MAX_PNG_INFLATED = 65536;

/**
 * Checks a PNG's IHDR chunk (which must come first) before anything is decoded:
 * a small file can declare 16000x16000 pixels, and decoding it allocates
 * gigabytes only to refuse it afterwards. Interlaced image data, which pngjs
 * inflates without a bound, is inflated here first with one.
 */
function checkPngHeader(buf: Buffer, name: string): void {
  if (buf.length < 33 || buf.readUInt32BE(8) !== 13 || buf.toString('latin1', 12, 16) !== 'IHDR') {
    throw argTypeError(`Could not decode ${name} as PNG: it does not start with a 13-byte IHDR chunk (${buf.length} bytes in all)`);
  }
  const width = buf.readUInt32BE(16), height = buf.readUInt32BE(20);
  if (width !== 28 || height !== 28) {
    throw outOfRangeError(`Expected a 28x28 image for ${name} but received ${width}x${height} (declared by its PNG header; not decoded)`);
  }
  if (buf[28] !== 1) return; // not interlaced: pngjs bounds the inflate by the declared size
  const idat: Buffer[] = [];
  for (let off = 8; off + 12 <= buf.length;) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (off + 12 + len > buf.length) break; // truncated: pngjs says so
    if (type === 'IDAT') idat.push(buf.subarray(off + 8, off + 8 + len));
    if (type === 'IEND') break;
    off += 12 + len;
  }
  try {
    zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: MAX_PNG_INFLATED });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw outOfRangeError(`Could not decode ${name} as PNG: its 28x28 image data inflates past ${MAX_PNG_INFLATED} bytes`);
    }
    // other zlib errors: pngjs reports them while decoding
  }
}

/** Decodes a PNG to 28x28 grey levels 0..255 (colour by luma, transparency over black, like MNIST's background). */
export function decodePng(buf: Uint8Array, name = 'image'): Float32Array {
  let png: PNG;
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (bytes.length > 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) checkPngHeader(bytes, name);
  try {
    png = PNG.sync.read(bytes);
  } catch (e) {
    throw argTypeError(`Could not decode ${name} as PNG: ${(e as Error).message}`);
  }
  if (png.width !== 28 || png.height !== 28) {
    throw outOfRangeError(`Expected a 28x28 image for ${name} but received ${png.width}x${png.height}`);
  }
  const out = new Float32Array(784);
  for (let i = 0; i < 784; i++) {
    const r = png.data[4 * i], g = png.data[4 * i + 1], b = png.data[4 * i + 2], a = png.data[4 * i + 3];
    out[i] = ((0.299 * r + 0.587 * g + 0.114 * b) * a) / 255;
  }
  return out;
}

/** Turns one input into 784 floats in [0, 1]; `name` labels errors. */
function toPixels(img: unknown, name: string): Float32Array {
  if (isPng(img)) return Float32Array.from(decodePng(img, name), (v) => v / 255);
  let flat: ArrayLike<number>;
  let bytes = false;
  if (img instanceof Uint8Array || img instanceof Uint8ClampedArray) {
    flat = img;
    bytes = true;
  } else if (ArrayBuffer.isView(img) && !(img instanceof DataView) && !(img instanceof BigInt64Array) && !(img instanceof BigUint64Array)) {
    flat = img as unknown as ArrayLike<number>;
  } else if (Array.isArray(img)) {
    flat = Array.isArray(img[0]) ? (img as unknown[][]).flat(2) as number[] : (img as number[]);
  } else {
    return expected('28x28 pixels (a TypedArray, nested arrays, a Tensor or a PNG Buffer)', name, img);
  }
  if (flat.length !== 784) throw outOfRangeError(`Expected 784 pixels (28x28) for ${name} but received ${flat.length}`);
  const out = new Float32Array(784);
  let max = 0;
  for (let i = 0; i < 784; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 255) {
      throw outOfRangeError(`Expected pixel values in 0..255 or 0..1 for ${name} but received ${v} at index ${i}`);
    }
    out[i] = v;
    if (v > max) max = v;
  }
  // 0..255 unless every value is within 0..1 (bytes are always 0..255).
  if (bytes || max > 1) for (let i = 0; i < 784; i++) out[i] /= 255;
  return out;
}

function isBatch(images: unknown): images is unknown[] {
  if (!Array.isArray(images) || images.length === 0) return false;
  const first = images[0];
  // [28][28] is one image; [N][28][28] or [N][784] or [pngBuffer...] is a batch.
  if (isPng(first) || ArrayBuffer.isView(first)) return true;
  if (Array.isArray(first)) return Array.isArray(first[0]) || first.length === 784;
  return false;
}

/**
 * Classifies one image or a batch. An image is 28x28 pixels: a TypedArray or array
 * of 784 values (0..255, or 0..1 when every value is at most 1; uint8 data is
 * always 0..255), a [28][28] nested array, a PNG Buffer, or a [1, 28, 28] Tensor.
 * A batch is an array of those, or an [N, 1, 28, 28] Tensor scaled to [0, 1].
 * Runs in eval mode, in inference mode (no autograd), and restores the model's mode.
 * @example
 * const { class: digit, probabilities } = predict(model, pixels);
 */
export interface PredictOptions {
  /**
   * Use libtorch's default kernels even for a single image (bit-identical to
   * `model.call(x)` on one image, about 3x slower here). By default one image
   * goes through oneDNN, which equals what libtorch computes for batches of 2+.
   */
  exact?: boolean;
}

export function predict(model: Module, images: ImageInput, options?: PredictOptions): Prediction;
export function predict(model: Module, images: ImageInput[], options?: PredictOptions): Prediction[];
export function predict(model: Module, images: ImageInput | ImageInput[], options: PredictOptions = {}): Prediction | Prediction[] {
  if (!(model instanceof Module)) expected('a Module', 'model', model);
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  checkKeys(options, ['exact'], 'predict');
  const batch = isBatch(images);
  const device = model.parameters()[0]?.device ?? 'cpu';
  const wasTraining = model.training;
  if (wasTraining) model.eval();
  try {
    const probs = tidy(() =>
      inferenceMode(() => {
        let x: Tensor;
        if (images instanceof Tensor) {
          x = images.dim() === 3 ? images.unsqueeze(0) : images.dim() === 2 ? images.reshape([1, 1, 28, 28]) : images;
        } else {
          const list = batch ? (images as unknown[]) : [images];
          const data = new Float32Array(784 * list.length);
          list.forEach((img, i) => data.set(toPixels(img, batch ? `images[${i}]` : 'image'), 784 * i));
          x = fromBuffer(data, [list.length, 1, 28, 28]);
        }
        if (device !== 'cpu') x = x.to(device);
        const logits = options.exact ? model.call(x) : withOneDnnInference(() => model.call(x));
        return softmax(logits, 1).cpu().toTypedArray() as Float32Array;
      }),
    );
    const out: Prediction[] = [];
    for (let i = 0; i < probs.length; i += 10) {
      const p = Array.from(probs.subarray(i, i + 10));
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
      out.push({ class: best, probabilities: p });
    }
    if (images instanceof Tensor) return images.dim() === 4 && images.size(0) !== 1 ? out : out.length === 1 ? out[0] : out;
    return batch ? out : out[0];
  } finally {
    if (wasTraining) model.train();
  }
}
