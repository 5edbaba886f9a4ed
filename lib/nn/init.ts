/**
 * torch.nn.init: in-place initialisers with PyTorch's formulas. Bounds are computed
 * in double precision exactly as Python computes them, and the draws go through
 * libtorch's own `uniform_`/`normal_`, so after `manualSeed(s)` the values equal
 * PyTorch's bit for bit. Every function runs without recording gradients and returns
 * its tensor.
 */
import { noGrad } from '../autograd';
import { checkKeys, expected, outOfRangeError } from '../errors';
import { checkNumber, GeneratorLike, Tensor } from '../tensor';

export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'conv_transpose1d' | 'conv_transpose2d' | 'conv_transpose3d'
  | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fan_in' | 'fan_out';

const LINEAR_LIKE = new Set(['linear', 'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d', 'conv_transpose2d', 'conv_transpose3d', 'sigmoid']);

function checkTensor(t: unknown, name = 'tensor'): Tensor {
  if (!(t instanceof Tensor)) expected('a Tensor', name, t);
  return t;
}

/**
 * The recommended gain for a nonlinearity (PyTorch's `calculate_gain`):
 * 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
 * sqrt(2 / (1 + a^2)) for leaky_relu with negative slope `param` (default 0.01), 3/4 for selu.
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  if (LINEAR_LIKE.has(nonlinearity)) return 1;
  switch (nonlinearity) {
    case 'tanh':
      return 5.0 / 3;
    case 'relu':
      return Math.sqrt(2.0);
    case 'leaky_relu': {
      const slope = param === undefined || param === null ? 0.01 : checkNumber(param, 'param');
      return Math.sqrt(2.0 / (1 + slope * slope));
    }
    case 'selu':
      return 3.0 / 4;
    default:
      return expected(`one of ${[...LINEAR_LIKE, 'tanh', 'relu', 'leaky_relu', 'selu'].join(', ')}`, 'nonlinearity', nonlinearity);
  }
}

/**
 * `[fanIn, fanOut]` of a weight: dim 1 and dim 0 times the receptive field (the
 * product of the dims after the first two). Shape: at least 2-D.
 * @example calculateFanInAndFanOut(conv.weight) // [32*3*3, 64*3*3] for Conv2d(32, 64, 3)
 */
export function calculateFanInAndFanOut(tensor: Tensor): [number, number] {
  const s = checkTensor(tensor).shape;
  if (s.length < 2) {
    throw outOfRangeError(`Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (got shape [${s.join(', ')}])`);
  }
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return [s[1] * receptive, s[0] * receptive];
}

function correctFan(tensor: Tensor, mode: FanMode): number {
  if (mode !== 'fan_in' && mode !== 'fan_out') expected("'fan_in' or 'fan_out'", 'mode', mode);
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  return mode === 'fan_in' ? fanIn : fanOut;
}

export interface GeneratorOption {
  generator?: GeneratorLike;
}

/** Fills with U(a, b). */
export function uniform_<T extends Tensor>(tensor: T, a = 0, b = 1, options: GeneratorOption = {}): T {
  checkTensor(tensor);
  checkKeys(options, ['generator'], 'nn.init.uniform_');
  return noGrad(() => tensor.uniform_(checkNumber(a, 'a'), checkNumber(b, 'b'), options));
}

/** Fills with N(mean, std^2). */
export function normal_<T extends Tensor>(tensor: T, mean = 0, std = 1, options: GeneratorOption = {}): T {
  checkTensor(tensor);
  checkKeys(options, ['generator'], 'nn.init.normal_');
  return noGrad(() => tensor.normal_(checkNumber(mean, 'mean'), checkNumber(std, 'std'), options));
}

/** Fills with a constant. */
export function constant_<T extends Tensor>(tensor: T, value: number): T {
  checkTensor(tensor);
  return noGrad(() => tensor.fill_(checkNumber(value, 'value')));
}
export function zeros_<T extends Tensor>(tensor: T): T {
  checkTensor(tensor);
  return noGrad(() => tensor.zero_());
}
export function ones_<T extends Tensor>(tensor: T): T {
  return constant_(tensor, 1);
}

export interface KaimingOptions extends GeneratorOption {
  /** Negative slope of the leaky ReLU after this layer (default 0). */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function skipEmpty(tensor: Tensor): boolean {
  return checkTensor(tensor).shape.includes(0);
}

/**
 * He initialisation, uniform: U(-bound, bound) with
 * `bound = sqrt(3) * gain / sqrt(fan)`, gain from `calculateGain(nonlinearity, a)`.
 * Conv2d and Linear use `a = sqrt(5)`, giving bound = 1/sqrt(fan_in).
 * @example kaimingUniform_(w, { a: Math.sqrt(5) })
 */
export function kaimingUniform_<T extends Tensor>(tensor: T, options: KaimingOptions = {}): T {
  checkKeys(options, ['a', 'mode', 'nonlinearity', 'generator'], 'nn.init.kaimingUniform_');
  if (skipEmpty(tensor)) return tensor; // PyTorch warns and leaves an empty tensor as is
  const fan = correctFan(tensor, options.mode ?? 'fan_in');
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  const std = gain / Math.sqrt(fan);
  const bound = Math.sqrt(3.0) * std;
  return noGrad(() => tensor.uniform_(-bound, bound, { generator: options.generator }));
}

/** He initialisation, normal: N(0, std^2) with `std = gain / sqrt(fan)`. */
export function kaimingNormal_<T extends Tensor>(tensor: T, options: KaimingOptions = {}): T {
  checkKeys(options, ['a', 'mode', 'nonlinearity', 'generator'], 'nn.init.kaimingNormal_');
  if (skipEmpty(tensor)) return tensor;
  const fan = correctFan(tensor, options.mode ?? 'fan_in');
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  const std = gain / Math.sqrt(fan);
  return noGrad(() => tensor.normal_(0, std, { generator: options.generator }));
}

/** Glorot initialisation, uniform: U(-a, a) with `a = gain * sqrt(6 / (fan_in + fan_out))`. */
export function xavierUniform_<T extends Tensor>(tensor: T, options: GeneratorOption & { gain?: number } = {}): T {
  checkKeys(options, ['gain', 'generator'], 'nn.init.xavierUniform_');
  const [fanIn, fanOut] = calculateFanInAndFanOut(checkTensor(tensor));
  const std = checkNumber(options.gain ?? 1, 'gain') * Math.sqrt(2.0 / (fanIn + fanOut));
  const a = Math.sqrt(3.0) * std;
  return noGrad(() => tensor.uniform_(-a, a, { generator: options.generator }));
}

/** Glorot initialisation, normal: N(0, std^2) with `std = gain * sqrt(2 / (fan_in + fan_out))`. */
export function xavierNormal_<T extends Tensor>(tensor: T, options: GeneratorOption & { gain?: number } = {}): T {
  checkKeys(options, ['gain', 'generator'], 'nn.init.xavierNormal_');
  const [fanIn, fanOut] = calculateFanInAndFanOut(checkTensor(tensor));
  const std = checkNumber(options.gain ?? 1, 'gain') * Math.sqrt(2.0 / (fanIn + fanOut));
  return noGrad(() => tensor.normal_(0, std, { generator: options.generator }));
}
