/**
 * Pooling layers: shrink feature maps (usually 2x2 windows with stride 2, halving H and W).
 */
import { checkKeys, expected } from '../errors';
import { checkInt, Tensor } from '../tensor';
import { avgPool2d, IntOrPair, maxPool2d, pair } from './functional';
import { Module } from './module';

/** Python's repr of an int or a tuple, as PyTorch pooling layers print their arguments. */
function intOrTupleRepr(v: IntOrPair): string {
  return typeof v === 'number' ? String(v) : `(${v.join(', ')})`;
}
function pyBool(b: boolean): string {
  return b ? 'True' : 'False';
}
function checkBool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') expected('a boolean', name, v);
  return v;
}

export interface MaxPool2dOptions {
  /** Default: the kernel size. */
  stride?: IntOrPair | null;
  padding?: IntOrPair;
  dilation?: IntOrPair;
  ceilMode?: boolean;
}

/** The second argument of a pooling layer: a stride (`MaxPool2d(2, 2)`) or an options object. */
function splitOptions<O extends { stride?: IntOrPair | null }>(v: IntOrPair | O | undefined, known: readonly string[], fn: string): O {
  if (v === undefined || v === null) return {} as O;
  if (typeof v === 'number' || Array.isArray(v)) return { stride: v } as O;
  if (typeof v !== 'object') expected('a stride or an options object', 'options', v);
  return checkKeys(v as O, known, fn);
}

/**
 * Max pooling over 2-D windows. Shape: [N, C, H, W] -> [N, C, H_out, W_out].
 * @example new MaxPool2d(2) // or new MaxPool2d(2, { stride: 2 }); 28x28 -> 14x14
 */
export class MaxPool2d extends Module {
  readonly kernelSize: IntOrPair;
  readonly stride: IntOrPair;
  readonly padding: IntOrPair;
  readonly dilation: IntOrPair;
  readonly ceilMode: boolean;

  constructor(kernelSize: IntOrPair, options?: IntOrPair | MaxPool2dOptions) {
    super();
    const o = splitOptions<MaxPool2dOptions>(options, ['stride', 'padding', 'dilation', 'ceilMode'], 'nn.MaxPool2d');
    pair(kernelSize, 'kernelSize', 1);
    this.kernelSize = kernelSize;
    this.stride = o.stride ?? kernelSize;
    pair(this.stride, 'stride', 1);
    this.padding = o.padding ?? 0;
    const k = pair(kernelSize, 'kernelSize', 1);
    const p = pair(this.padding, 'padding', 0);
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2) {
      expected(`a padding at most half the kernel size (${intOrTupleRepr(kernelSize)})`, 'padding', this.padding);
    }
    this.dilation = o.dilation ?? 1;
    pair(this.dilation, 'dilation', 1);
    this.ceilMode = checkBool(o.ceilMode ?? false, 'ceilMode');
  }

  forward(input: Tensor): Tensor {
    return maxPool2d(input, this.kernelSize, { stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode });
  }

  override extraRepr(): string {
    return `kernel_size=${intOrTupleRepr(this.kernelSize)}, stride=${intOrTupleRepr(this.stride)}, padding=${intOrTupleRepr(this.padding)}, dilation=${intOrTupleRepr(this.dilation)}, ceil_mode=${pyBool(this.ceilMode)}`;
  }
}

export interface AvgPool2dOptions {
  /** Default: the kernel size. */
  stride?: IntOrPair | null;
  padding?: IntOrPair;
  ceilMode?: boolean;
  /** Count the zero padding in the divisor (default true). */
  countIncludePad?: boolean;
  /** Divide by this instead of the window size. */
  divisorOverride?: number | null;
}

/**
 * Average pooling over 2-D windows. Shape: [N, C, H, W] -> [N, C, H_out, W_out].
 * @example new AvgPool2d(2) // 28x28 -> 14x14
 */
export class AvgPool2d extends Module {
  readonly kernelSize: IntOrPair;
  readonly stride: IntOrPair;
  readonly padding: IntOrPair;
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  readonly divisorOverride: number | null;

  constructor(kernelSize: IntOrPair, options?: IntOrPair | AvgPool2dOptions) {
    super();
    const o = splitOptions<AvgPool2dOptions>(options, ['stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride'], 'nn.AvgPool2d');
    const k = pair(kernelSize, 'kernelSize', 1);
    this.kernelSize = kernelSize;
    this.stride = o.stride ?? kernelSize;
    pair(this.stride, 'stride', 1);
    this.padding = o.padding ?? 0;
    const p = pair(this.padding, 'padding', 0);
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2) {
      expected(`a padding at most half the kernel size (${intOrTupleRepr(kernelSize)})`, 'padding', this.padding);
    }
    this.ceilMode = checkBool(o.ceilMode ?? false, 'ceilMode');
    this.countIncludePad = checkBool(o.countIncludePad ?? true, 'countIncludePad');
    this.divisorOverride = o.divisorOverride == null ? null : checkInt(o.divisorOverride, 'divisorOverride', 1);
  }

  forward(input: Tensor): Tensor {
    return avgPool2d(input, this.kernelSize, {
      stride: this.stride, padding: this.padding, ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad, divisorOverride: this.divisorOverride,
    });
  }

  override extraRepr(): string {
    return `kernel_size=${intOrTupleRepr(this.kernelSize)}, stride=${intOrTupleRepr(this.stride)}, padding=${intOrTupleRepr(this.padding)}`;
  }
}
