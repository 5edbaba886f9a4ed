/**
 * Activation layers.
 */
import { checkKeys, expected } from '../errors';
import { checkInt, checkNumber, Tensor } from '../tensor';
import { leakyRelu, logSoftmax, relu, sigmoid, softmax, tanh } from './functional';
import { Module } from './module';

/**
 * `max(0, x)` elementwise. With `inplace`, overwrites its input. Shape: any -> same.
 * @example new ReLU()
 */
export class ReLU extends Module {
  readonly inplace: boolean;
  constructor(options: boolean | { inplace?: boolean } = {}) {
    super();
    const inplace = typeof options === 'boolean' ? options : checkKeys(options ?? undefined, ['inplace'], 'nn.ReLU')?.inplace ?? false;
    if (typeof inplace !== 'boolean') expected('a boolean', 'inplace', inplace);
    this.inplace = inplace;
  }
  forward(input: Tensor): Tensor {
    return this.inplace ? input.relu_() : relu(input);
  }
  override extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}

/** `x` for x >= 0, `negativeSlope * x` otherwise. */
export class LeakyReLU extends Module {
  readonly negativeSlope: number;
  constructor(options: number | { negativeSlope?: number } = {}) {
    super();
    this.negativeSlope = checkNumber(typeof options === 'number' ? options : checkKeys(options ?? undefined, ['negativeSlope'], 'nn.LeakyReLU')?.negativeSlope ?? 0.01, 'negativeSlope');
  }
  forward(input: Tensor): Tensor {
    return leakyRelu(input, this.negativeSlope);
  }
  override extraRepr(): string {
    return `negative_slope=${this.negativeSlope}`;
  }
}

export class Sigmoid extends Module {
  forward(input: Tensor): Tensor {
    return sigmoid(input);
  }
}

export class Tanh extends Module {
  forward(input: Tensor): Tensor {
    return tanh(input);
  }
}

function dimOption(options: number | { dim?: number }, fn: string): number {
  const dim = typeof options === 'number' ? options : checkKeys(options ?? undefined, ['dim'], fn)?.dim;
  return checkInt(dim, 'dim');
}

/** Softmax over `dim`. */
export class Softmax extends Module {
  readonly dim: number;
  constructor(options: number | { dim: number }) {
    super();
    this.dim = dimOption(options, 'nn.Softmax');
  }
  forward(input: Tensor): Tensor {
    return softmax(input, this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** log(softmax(x)) over `dim`. */
export class LogSoftmax extends Module {
  readonly dim: number;
  constructor(options: number | { dim: number }) {
    super();
    this.dim = dimOption(options, 'nn.LogSoftmax');
  }
  forward(input: Tensor): Tensor {
    return logSoftmax(input, this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
