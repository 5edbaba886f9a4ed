/**
 * Loss layers: `loss.call(input, target)`.
 */
import { checkKeys, expected, outOfRangeError } from '../errors';
import { checkInt, checkNumber, Tensor } from '../tensor';
import { crossEntropy, mseLoss, nllLoss, Reduction } from './functional';
import { Module } from './module';

function checkReduction(r: unknown): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') expected("'mean', 'sum' or 'none'", 'reduction', r);
  return r;
}
function checkWeight(w: unknown): Tensor | null {
  if (w === undefined || w === null) return null;
  if (!(w instanceof Tensor)) expected('a Tensor or null', 'weight', w);
  return w;
}

export interface CrossEntropyLossOptions {
  /** A manual rescaling weight per class, shape [C]. */
  weight?: Tensor | null;
  /** Targets equal to this are skipped (default -100). */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** In [0, 1]: mixes the target with the uniform distribution. */
  labelSmoothing?: number;
}

/**
 * Cross-entropy of logits against class indices (log-softmax then NLL), as the seed
 * uses to train its classifier. Shape: input [N, C], target [N] (int64) -> scalar
 * (or [N] with reduction 'none').
 * @example const loss = new CrossEntropyLoss().call(model.call(x), y);
 */
export class CrossEntropyLoss extends Module<[Tensor, Tensor], Tensor> {
  readonly weight: Tensor | null;
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  readonly labelSmoothing: number;

  constructor(options: CrossEntropyLossOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['weight', 'ignoreIndex', 'reduction', 'labelSmoothing'], 'nn.CrossEntropyLoss');
    this.weight = this.registerBuffer('weight', checkWeight(options.weight));
    this.ignoreIndex = checkInt(options.ignoreIndex ?? -100, 'ignoreIndex');
    this.reduction = checkReduction(options.reduction ?? 'mean');
    const ls = checkNumber(options.labelSmoothing ?? 0, 'labelSmoothing');
    if (ls < 0 || ls > 1) throw outOfRangeError(`Expected a number in [0, 1] for labelSmoothing but received ${ls}`);
    this.labelSmoothing = ls;
  }

  /** Shape: input [N, C] logits, target [N] class indices -> loss. */
  forward(input: Tensor, target: Tensor): Tensor {
    return crossEntropy(input, target, {
      weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction, labelSmoothing: this.labelSmoothing,
    });
  }
}

/** Negative log-likelihood of log-probabilities (e.g. after LogSoftmax) against class indices. */
export class NLLLoss extends Module<[Tensor, Tensor], Tensor> {
  readonly weight: Tensor | null;
  readonly ignoreIndex: number;
  readonly reduction: Reduction;

  constructor(options: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {}) {
    super();
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['weight', 'ignoreIndex', 'reduction'], 'nn.NLLLoss');
    this.weight = this.registerBuffer('weight', checkWeight(options.weight));
    this.ignoreIndex = checkInt(options.ignoreIndex ?? -100, 'ignoreIndex');
    this.reduction = checkReduction(options.reduction ?? 'mean');
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return nllLoss(input, target, { weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction });
  }
}

/** Mean squared error. */
export class MSELoss extends Module<[Tensor, Tensor], Tensor> {
  readonly reduction: Reduction;
  constructor(options: { reduction?: Reduction } = {}) {
    super();
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['reduction'], 'nn.MSELoss');
    this.reduction = checkReduction(options.reduction ?? 'mean');
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, { reduction: this.reduction });
  }
}
