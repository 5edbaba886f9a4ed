/**
 * Fully connected layers.
 */
import { checkKeys, expected } from '../errors';
import { checkInt, empty, Tensor } from '../tensor';
import { linear } from './functional';
import { calculateFanInAndFanOut, kaimingUniform_, uniform_ } from './init';
import { Module, Parameter } from './module';
import { FactoryOptions, freshParameter } from './conv';

export interface LinearOptions extends FactoryOptions {
  bias?: boolean;
}

/**
 * `y = x W^T + b` with weight [out, in] and bias [out], initialised like PyTorch
 * (kaiming-uniform with a = sqrt(5), bias U(-1/sqrt(in), 1/sqrt(in))).
 * Shape: [*, inFeatures] -> [*, outFeatures].
 * @example new Linear(7 * 7 * 64, 100)
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['bias', 'dtype', 'device'], 'nn.Linear');
    this.inFeatures = checkInt(inFeatures, 'inFeatures', 0);
    this.outFeatures = checkInt(outFeatures, 'outFeatures', 0);
    const bias = options.bias ?? true;
    if (typeof bias !== 'boolean') expected('a boolean', 'bias', bias);
    const f = { dtype: options.dtype, device: options.device };
    this.weight = this.registerParameter('weight', freshParameter(empty([outFeatures, inFeatures], f)));
    this.bias = this.registerParameter('bias', bias ? freshParameter(empty([outFeatures], f)) : null);
    this.resetParameters();
  }

  /** Re-initialises weight and bias exactly as PyTorch's `reset_parameters`. */
  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const [fanIn] = calculateFanInAndFanOut(this.weight);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      uniform_(this.bias, -bound, bound);
    }
  }

  /** Shape: [*, inFeatures] -> [*, outFeatures]. */
  forward(input: Tensor): Tensor {
    return linear(input, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }
}

/** Returns its input unchanged (a placeholder layer). */
export class Identity extends Module {
  forward(input: Tensor): Tensor {
    return input;
  }
}
