/**
 * Convolution layers.
 */
import { checkKeys, expected, TorchError } from '../errors';
import { checkInt, DeviceType, DType, empty, Tensor } from '../tensor';
import { conv2d, IntOrPair, pair } from './functional';
import { calculateFanInAndFanOut, kaimingUniform_, uniform_ } from './init';
import { Module, Parameter } from './module';

/** Formats a pair the way Python prints a tuple: `(3, 3)`. */
export function tupleRepr(v: readonly number[]): string {
  return `(${v.join(', ')}${v.length === 1 ? ',' : ''})`;
}

/** @internal A Parameter from a fresh tensor, freeing the temporary handle. */
export function freshParameter(t: Tensor): Parameter {
  const p = new Parameter(t);
  t.dispose();
  return p;
}

/** @internal `{dtype, device}` factory options, as PyTorch layers take them. */
export interface FactoryOptions {
  dtype?: DType;
  device?: DeviceType;
}

export interface Conv2dOptions extends FactoryOptions {
  stride?: IntOrPair;
  /** Zero padding on each side, or `'same'` (output size = input size; stride 1 only) or `'valid'` (none). */
  padding?: IntOrPair | 'same' | 'valid';
  dilation?: IntOrPair;
  groups?: number;
  bias?: boolean;
  /** Only `'zeros'` is supported. */
  paddingMode?: 'zeros';
}

/**
 * 2-D convolution over [N, C_in, H, W] (or unbatched [C_in, H, W]) inputs, with a
 * learnable weight [C_out, C_in/groups, kH, kW] and one bias per output channel.
 * Initialised like PyTorch: weight kaiming-uniform with a = sqrt(5), bias
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Shape: [N, C_in, H, W] -> [N, C_out, H_out, W_out],
 * `H_out = floor((H + 2P - D(K-1) - 1) / S + 1)`.
 * @example new Conv2d(1, 32, 3, { stride: 1, padding: 1 }) // 28x28 stays 28x28
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  /** The padding as given: a pair, or 'same' / 'valid'. */
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;
  readonly paddingMode = 'zeros' as const;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  /** Per dim: the symmetric padding passed to conv2d, and whether to drop the first output (odd 'same'). */
  private readonly _pad: [number, number];
  private readonly _trim: [boolean, boolean];

  constructor(inChannels: number, outChannels: number, kernelSize: IntOrPair, options: Conv2dOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['stride', 'padding', 'dilation', 'groups', 'bias', 'paddingMode', 'dtype', 'device'], 'nn.Conv2d');
    this.inChannels = checkInt(inChannels, 'inChannels', 1);
    this.outChannels = checkInt(outChannels, 'outChannels', 1);
    this.kernelSize = pair(kernelSize, 'kernelSize', 1);
    this.stride = pair(options.stride ?? 1, 'stride', 1);
    this.dilation = pair(options.dilation ?? 1, 'dilation', 1);
    this.groups = checkInt(options.groups ?? 1, 'groups', 1);
    if (inChannels % this.groups !== 0) expected(`an integer divisible by groups (${this.groups})`, 'inChannels', inChannels);
    if (outChannels % this.groups !== 0) expected(`an integer divisible by groups (${this.groups})`, 'outChannels', outChannels);
    const bias = options.bias ?? true;
    if (typeof bias !== 'boolean') expected('a boolean', 'bias', bias);
    if ((options.paddingMode ?? 'zeros') !== 'zeros') expected("'zeros' (the only padding mode supported)", 'paddingMode', options.paddingMode);
    const padding = options.padding ?? 0;
    if (padding === 'same' || padding === 'valid') {
      if (padding === 'same' && (this.stride[0] !== 1 || this.stride[1] !== 1)) {
        throw new TorchError(`padding='same' is not supported for strided convolutions (stride=${tupleRepr(this.stride)})`);
      }
      this.padding = padding;
    } else if (typeof padding === 'string') {
      expected("an integer, a pair of integers, 'same' or 'valid'", 'padding', padding);
    } else {
      this.padding = pair(padding, 'padding', 0);
    }
    if (this.padding === 'same') {
      // PyTorch pads total = D(K-1): floor(total/2) before, the rest after. For an odd
      // total, pad the larger amount on both sides and drop the first output row/column.
      const totals = [0, 1].map((i) => this.dilation[i] * (this.kernelSize[i] - 1));
      this._pad = [Math.ceil(totals[0] / 2), Math.ceil(totals[1] / 2)];
      this._trim = [totals[0] % 2 === 1, totals[1] % 2 === 1];
    } else {
      this._pad = this.padding === 'valid' ? [0, 0] : this.padding;
      this._trim = [false, false];
    }
    const f = { dtype: options.dtype, device: options.device };
    const wshape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    this.weight = this.registerParameter('weight', freshParameter(empty(wshape, f)));
    this.bias = this.registerParameter('bias', bias ? freshParameter(empty([outChannels], f)) : null);
    this.resetParameters();
  }

  /** Re-initialises weight and bias exactly as PyTorch's `reset_parameters` (same draws, same order). */
  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const [fanIn] = calculateFanInAndFanOut(this.weight);
      if (fanIn !== 0) {
        const bound = 1 / Math.sqrt(fanIn);
        uniform_(this.bias, -bound, bound);
      }
    }
  }

  /** Shape: [N, C_in, H, W] -> [N, C_out, H_out, W_out]. */
  forward(input: Tensor): Tensor {
    let out = conv2d(input, this.weight, {
      bias: this.bias, stride: this.stride, padding: this._pad, dilation: this.dilation, groups: this.groups,
    });
    const nd = out.dim();
    if (this._trim[0]) out = out.narrow(nd - 2, 1, out.size(nd - 2) - 1);
    if (this._trim[1]) out = out.narrow(nd - 1, 1, out.size(nd - 1) - 1);
    return out;
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${tupleRepr(this.kernelSize)}, stride=${tupleRepr(this.stride)}`;
    if (typeof this.padding === 'string') s += `, padding=${this.padding}`;
    else if (this.padding[0] !== 0 || this.padding[1] !== 0) s += `, padding=${tupleRepr(this.padding)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${tupleRepr(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === null) s += ', bias=False';
    return s;
  }
}
