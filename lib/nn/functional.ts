/**
 * torch.nn.functional: stateless ops with PyTorch's arguments and defaults.
 * Arguments are checked here first so a mistake names the argument and the
 * shapes involved; libtorch's own checks back these up.
 */
import { checkKeys, expected, TorchError, outOfRangeError } from '../errors';
import { N } from '../native';
import { checkInt, checkNumber, h, Tensor, wrap, getThreadGenerator } from '../tensor';
import { zerosLike, emptyLike } from '../ops/generated';

export type IntOrPair = number | [number, number];
export type Reduction = 'mean' | 'sum' | 'none';

/** @internal Expands `k` or `[kh, kw]` to a pair, checking each entry. */
export function pair(v: IntOrPair, name: string, min = 0): [number, number] {
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2) expected('an integer or a pair of integers', name, v);
  arr.forEach((x, i) => checkInt(x, `${name}[${i}]`, min));
  return [arr[0], arr[1]];
}

function shapeStr(s: number[]): string {
  return `[${s.join(', ')}]`;
}

function checkReduction(r: unknown): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') expected("'mean', 'sum' or 'none'", 'reduction', r);
  return r;
}

export interface Conv2dOptions {
  bias?: Tensor | null;
  stride?: IntOrPair;
  padding?: IntOrPair;
  dilation?: IntOrPair;
  groups?: number;
}

/**
 * 2-D convolution. Shape: input [N, C_in, H, W] (or [C_in, H, W]), weight
 * [C_out, C_in/groups, kH, kW] -> [N, C_out, H_out, W_out] with
 * `H_out = floor((H + 2P - D(K-1) - 1) / S + 1)`.
 * @example conv2d(x, w, { padding: 1 })
 */
export function conv2d(input: Tensor, weight: Tensor, options: Conv2dOptions = {}): Tensor {
  checkKeys(options, ['bias', 'stride', 'padding', 'dilation', 'groups'], 'F.conv2d');
  const x = h(input, 'input');
  const w = h(weight, 'weight');
  const stride = pair(options.stride ?? 1, 'stride', 1);
  const padding = pair(options.padding ?? 0, 'padding', 0);
  const dilation = pair(options.dilation ?? 1, 'dilation', 1);
  const groups = checkInt(options.groups ?? 1, 'groups', 1);
  const xs = input.shape;
  const ws = weight.shape;
  if (ws.length !== 4) throw new TorchError(`conv2d: expected a 4-D weight [C_out, C_in/groups, kH, kW] but got ${shapeStr(ws)}`);
  if (xs.length !== 3 && xs.length !== 4) {
    throw new TorchError(`conv2d: expected a 3-D or 4-D input [N, C, H, W] but got ${shapeStr(xs)}`);
  }
  const cin = xs[xs.length - 3];
  if (cin !== ws[1] * groups) {
    throw new TorchError(
      `conv2d: input ${shapeStr(xs)} has ${cin} channels but weight ${shapeStr(ws)} with groups=${groups} expects ${ws[1] * groups}`,
    );
  }
  const b = options.bias == null ? null : h(options.bias, 'bias');
  if (oneDnnInference && xs.length === 4 && xs[0] === 1 && input.dtype === 'float32' && input.device === 'cpu' && !N.isGradEnabled()) {
    return wrap(N.conv2dMkldnn(x, w, b, stride, padding, dilation, groups));
  }
  return wrap(N.conv2d(x, w, b, stride, padding, dilation, groups));
}

// Set by withOneDnnInference(): one-image CPU inference uses oneDNN's convolution.
let oneDnnInference = false;
const hasOneDnn = N.buildInfo().mkldnn;

/**
 * @internal Runs `fn` with one-image float32 CPU convolutions (under noGrad) on
 * oneDNN. libtorch uses a slow path for a single small image; oneDNN is what it
 * uses from batch 2 up, so results equal those of a batched forward.
 */
export function withOneDnnInference<R>(fn: () => R): R {
  if (!hasOneDnn || oneDnnInference) return fn();
  oneDnnInference = true;
  try {
    return fn();
  } finally {
    oneDnnInference = false;
  }
}

export interface Pool2dOptions {
  stride?: IntOrPair | null;
  padding?: IntOrPair;
  ceilMode?: boolean;
}

function checkPoolPadding(kernel: [number, number], padding: [number, number]): void {
  if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
    throw new TorchError(`pad should be at most half of kernel size, but got padding=${shapeStr(padding)} and kernelSize=${shapeStr(kernel)}`);
  }
}

/**
 * 2-D max pooling; stride defaults to the kernel size. Shape: [N, C, H, W] -> [N, C, H_out, W_out].
 * @example maxPool2d(x, 2) // 28x28 -> 14x14
 */
export function maxPool2d(input: Tensor, kernelSize: IntOrPair, options: Pool2dOptions & { dilation?: IntOrPair } = {}): Tensor {
  checkKeys(options, ['stride', 'padding', 'dilation', 'ceilMode'], 'F.maxPool2d');
  const k = pair(kernelSize, 'kernelSize', 1);
  const s = options.stride == null ? k : pair(options.stride, 'stride', 1);
  const p = pair(options.padding ?? 0, 'padding', 0);
  checkPoolPadding(k, p);
  return wrap(N.maxPool2d(h(input, 'input'), k, s, p, pair(options.dilation ?? 1, 'dilation', 1), !!options.ceilMode));
}

/** 2-D average pooling; stride defaults to the kernel size. */
export function avgPool2d(
  input: Tensor,
  kernelSize: IntOrPair,
  options: Pool2dOptions & { countIncludePad?: boolean; divisorOverride?: number | null } = {},
): Tensor {
  checkKeys(options, ['stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride'], 'F.avgPool2d');
  const k = pair(kernelSize, 'kernelSize', 1);
  const s = options.stride == null ? k : pair(options.stride, 'stride', 1);
  const p = pair(options.padding ?? 0, 'padding', 0);
  checkPoolPadding(k, p);
  const div = options.divisorOverride == null ? null : checkInt(options.divisorOverride, 'divisorOverride', 1);
  return wrap(N.avgPool2d(h(input, 'input'), k, s, p, !!options.ceilMode, options.countIncludePad ?? true, div));
}

/** Adaptive average pooling to a fixed output size. */
export function adaptiveAvgPool2d(input: Tensor, outputSize: IntOrPair): Tensor {
  return wrap(N.adaptiveAvgPool2d(h(input, 'input'), pair(outputSize, 'outputSize', 1)));
}

/**
 * `input @ weight^T + bias`. Shape: [*, in] x [out, in] -> [*, out].
 */
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const x = h(input, 'input');
  const w = h(weight, 'weight');
  const xs = input.shape;
  const ws = weight.shape;
  if (ws.length !== 2) throw new TorchError(`linear: expected a 2-D weight [out, in] but got ${shapeStr(ws)}`);
  if (xs.length === 0 || xs[xs.length - 1] !== ws[1]) {
    throw new TorchError(
      `linear: input ${shapeStr(xs)} has ${xs[xs.length - 1] ?? 0} features in its last dim but weight ${shapeStr(ws)} expects ${ws[1]}`,
    );
  }
  const b = bias == null ? null : h(bias, 'bias');
  if (oneDnnInference && xs.length === 2 && xs[0] === 1 && input.dtype === 'float32' && input.device === 'cpu' && !N.isGradEnabled()) {
    // One row: a 1x1 oneDNN convolution beats the gemv of the generic BLAS that
    // distribution builds of libtorch often use.
    const x4 = N.view(x, [1, ws[1], 1, 1]);
    const w4 = N.view(w, [ws[0], ws[1], 1, 1]);
    const y = N.conv2dMkldnn(x4, w4, b, [1, 1], [0, 0], [1, 1], 1);
    N.dispose(x4);
    N.dispose(w4);
    const out = N.view(y, [1, ws[0]]);
    N.dispose(y);
    return wrap(out);
  }
  return wrap(N.linear(x, w, b));
}

export function relu(input: Tensor): Tensor {
  return wrap(N.relu(h(input, 'input')));
}
export function leakyRelu(input: Tensor, negativeSlope = 0.01): Tensor {
  return wrap(N.leakyRelu(h(input, 'input'), checkNumber(negativeSlope, 'negativeSlope')));
}
export function sigmoid(input: Tensor): Tensor {
  return wrap(N.sigmoid(h(input, 'input')));
}
export function tanh(input: Tensor): Tensor {
  return wrap(N.tanh(h(input, 'input')));
}
/** Softmax over `dim`. */
export function softmax(input: Tensor, dim: number): Tensor {
  return wrap(N.softmax(h(input, 'input'), checkInt(dim, 'dim')));
}
/** log(softmax(x)) over `dim`, computed stably. */
export function logSoftmax(input: Tensor, dim: number): Tensor {
  return wrap(N.logSoftmax(h(input, 'input'), checkInt(dim, 'dim')));
}
/** Zeroes elements with probability `p` and scales the rest by 1/(1-p) when `training`. */
export function dropout(input: Tensor, p = 0.5, training = true): Tensor {
  checkNumber(p, 'p');
  if (p < 0 || p > 1) throw outOfRangeError(`Expected a probability in [0, 1] for p but received ${p}`);
  const x = h(input, 'input');
  if (training && p > 0 && getThreadGenerator() && input.device === 'cpu') {
    // This thread has its own generator (a training worker), and ATen's dropout
    // only draws from the global one: build the mask here, exactly as ATen's CPU
    // dropout does (bernoulli_(1 - p), divided by 1 - p).
    if (p === 1) return input.mul(zerosLike(input));
    const noise = emptyLike(input).bernoulli_(1 - p);
    noise.div_(1 - p);
    const out = input.mul(noise);
    noise.dispose();
    return out;
  }
  return wrap(N.dropout(x, p, !!training));
}
/** Flattens dims `startDim..endDim` into one. */
export function flatten(input: Tensor, startDim = 0, endDim = -1): Tensor {
  return input.flatten(startDim, endDim);
}

export interface LossOptions {
  weight?: Tensor | null;
  reduction?: Reduction;
  ignoreIndex?: number;
}

function checkClassTarget(fn: string, input: Tensor, target: Tensor): void {
  const xs = input.shape;
  const ts = target.shape;
  if (xs.length < 1) throw new TorchError(`${fn}: expected input [N, C] or [C] but got a 0-D tensor`);
  const expectTs = xs.length === 1 ? [] : [xs[0], ...xs.slice(2)];
  const sameShapeProbs = ts.length === xs.length && ts.every((d, i) => d === xs[i]);
  if (!sameShapeProbs && (ts.length !== expectTs.length || ts.some((d, i) => d !== expectTs[i]))) {
    throw new TorchError(`${fn}: input ${shapeStr(xs)} expects a target of shape ${shapeStr(expectTs)} but got ${shapeStr(ts)}`);
  }
  // Class indices must be int64. JS numbers make float32 tensors, so say how to get int64.
  if (!sameShapeProbs && target.dtype !== 'int64') {
    throw new TorchError(
      `${fn}: expected class indices of dtype int64 for target but received ${target.dtype} ${shapeStr(ts)}` +
        (target.isFloatingPoint() ? " (JS numbers make float tensors: use BigInts, tensor([1n, 0n]), or { dtype: 'int64' })" : ''),
    );
  }
}

/**
 * Cross-entropy between logits and class indices (int64) or class probabilities.
 * Shape: input [N, C], target [N] -> scalar (or [N] with reduction 'none').
 * @example crossEntropy(logits, labels)
 */
export function crossEntropy(input: Tensor, target: Tensor, options: LossOptions & { labelSmoothing?: number } = {}): Tensor {
  checkKeys(options, ['weight', 'reduction', 'ignoreIndex', 'labelSmoothing'], 'F.crossEntropy');
  const x = h(input, 'input');
  const t = h(target, 'target');
  checkClassTarget('crossEntropy', input, target);
  return wrap(
    N.crossEntropy(x, t, options.weight == null ? null : h(options.weight, 'weight'), checkReduction(options.reduction ?? 'mean'),
      checkInt(options.ignoreIndex ?? -100, 'ignoreIndex'), checkNumber(options.labelSmoothing ?? 0, 'labelSmoothing')),
  );
}

/** Negative log-likelihood of log-probabilities and class indices. */
export function nllLoss(input: Tensor, target: Tensor, options: LossOptions = {}): Tensor {
  checkKeys(options, ['weight', 'reduction', 'ignoreIndex'], 'F.nllLoss');
  const x = h(input, 'input');
  const t = h(target, 'target');
  checkClassTarget('nllLoss', input, target);
  return wrap(
    N.nllLoss(x, t, options.weight == null ? null : h(options.weight, 'weight'), checkReduction(options.reduction ?? 'mean'),
      checkInt(options.ignoreIndex ?? -100, 'ignoreIndex')),
  );
}

/** Mean squared error. */
export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  checkKeys(options, ['reduction'], 'F.mseLoss');
  return wrap(N.mseLoss(h(input, 'input'), h(target, 'target'), checkReduction(options.reduction ?? 'mean')));
}

/**
 * The seed's feature-map size formula, `O = floor((I - K + 2P) / S + 1)`, with
 * dilation D generalising K to D(K-1)+1 and ceilMode rounding up (as pooling does).
 * @example convOutputSize(28, 3, { padding: 1 }) // 28
 */
export function convOutputSize(
  inputSize: number,
  kernelSize: number,
  options: { stride?: number; padding?: number; dilation?: number; ceilMode?: boolean } = {},
): number {
  checkKeys(options, ['stride', 'padding', 'dilation', 'ceilMode'], 'F.convOutputSize');
  checkInt(inputSize, 'inputSize', 0);
  checkInt(kernelSize, 'kernelSize', 1);
  const s = checkInt(options.stride ?? 1, 'stride', 1);
  const p = checkInt(options.padding ?? 0, 'padding', 0);
  const d = checkInt(options.dilation ?? 1, 'dilation', 1);
  const span = d * (kernelSize - 1) + 1;
  const num = inputSize + 2 * p - span;
  if (num < 0) return 0;
  if (!options.ceilMode) return Math.floor(num / s) + 1;
  let out = Math.ceil(num / s) + 1;
  // PyTorch: the last window must start inside the input or left padding.
  if ((out - 1) * s >= inputSize + p) out--;
  return out;
}
