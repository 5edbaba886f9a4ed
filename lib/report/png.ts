/**
 * Small PNG images from arrays of numbers (digits, kernels, feature maps), for the
 * training report: nearest-neighbour upscaling, grey or a diverging blue-white-red map.
 */
import { PNG } from 'pngjs';
import { checkKeys, expected, outOfRangeError } from '../errors';

export interface GrayPngOptions {
  /** Integer upscaling factor, nearest neighbour (default 1, at most 64). */
  scale?: number;
  /** The value drawn black (or full blue when diverging). Default: the data's minimum (diverging: -max|v|). */
  min?: number;
  /** The value drawn white (or full red when diverging). Default: the data's maximum (diverging: max|v|). */
  max?: number;
  /**
   * Draws with a diverging colour map instead of grey: `min` blue, the midpoint of
   * `[min, max]` white, `max` red. Default ranges are symmetric around zero, so
   * white is zero: weights that excite are red, weights that inhibit are blue.
   */
  diverging?: boolean;
}

// ColorBrewer RdBu, from negative (blue) through white to positive (red).
const DIVERGING: [number, number, number][] = [
  [0x21, 0x66, 0xac],
  [0x92, 0xc5, 0xde],
  [0xf7, 0xf7, 0xf7],
  [0xf4, 0xa5, 0x82],
  [0xb2, 0x18, 0x2b],
];

/** @internal The diverging map at t in [0, 1]. */
export function divergingColor(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (DIVERGING.length - 1);
  const i = Math.min(DIVERGING.length - 2, Math.floor(x));
  const f = x - i;
  const a = DIVERGING[i];
  const b = DIVERGING[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as [number, number, number];
}

/**
 * Encodes `width x height` values (row-major) as a PNG, scaled up `scale` times with
 * nearest neighbour. Grey: `min` is black, `max` white (values outside are clamped,
 * NaN is drawn as `min`). A constant image is drawn mid-grey (or white when diverging).
 * Shape: values [height * width] -> PNG of (width * scale) x (height * scale).
 * @example
 * const png = grayPng(mnist.data.select(0, 0).toTypedArray(), 28, 28, { scale: 3, min: 0, max: 255 }); // 84x84
 * const src = `data:image/png;base64,${png.toString('base64')}`;
 */
export function grayPng(values: ArrayLike<number>, width: number, height: number, options: GrayPngOptions = {}): Buffer {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') expected('an array of numbers', 'values', values);
  if (!Number.isInteger(width) || width < 1) expected('a positive integer', 'width', width);
  if (!Number.isInteger(height) || height < 1) expected('a positive integer', 'height', height);
  if (values.length !== width * height) {
    throw outOfRangeError(`grayPng: expected ${width}x${height} = ${width * height} values but received ${values.length}`);
  }
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  checkKeys(options, ['scale', 'min', 'max', 'diverging'], 'grayPng');
  const scale = options.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1 || scale > 64) expected('an integer from 1 to 64', 'scale', scale);
  const diverging = !!options.diverging;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) lo = hi = 0; // all NaN
  if (diverging) {
    const lim = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -lim;
    hi = lim;
  }
  const min = options.min ?? lo;
  const max = options.max ?? hi;
  if (typeof min !== 'number' || !Number.isFinite(min)) expected('a finite number', 'min', options.min);
  if (typeof max !== 'number' || !Number.isFinite(max)) expected('a finite number', 'max', options.max);
  if (max < min) throw outOfRangeError(`grayPng: max (${max}) is below min (${min})`);
  const span = max - min;

  const w = width * scale;
  const h = height * scale;
  const png = new PNG({ width: w, height: h });
  const px = png.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = Number(values[y * width + x]);
      let t = span > 0 ? (v - min) / span : 0.5;
      if (!(t >= 0)) t = 0; // NaN and below min
      if (t > 1) t = 1;
      let r: number, g: number, b: number;
      if (diverging) [r, g, b] = divergingColor(t);
      else r = g = b = Math.round(t * 255);
      for (let dy = 0; dy < scale; dy++) {
        let o = ((y * scale + dy) * w + x * scale) * 4;
        for (let dx = 0; dx < scale; dx++, o += 4) {
          px[o] = r;
          px[o + 1] = g;
          px[o + 2] = b;
          px[o + 3] = 255;
        }
      }
    }
  }
  // Grey images as 1-channel PNGs, colour as RGB: no alpha, so they stay small.
  return PNG.sync.write(png, { colorType: diverging ? 2 : 0 });
}

/** A PNG as a `data:` URI for an `<img src>`. */
export function pngDataUri(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}
