/**
 * Dropout: active only in training mode (`module.train()`), the identity after `eval()`.
 */
import { checkNumber, Tensor } from '../tensor';
import { dropout } from './functional';
import { Module } from './module';
import { checkKeys, outOfRangeError } from '../errors';

/**
 * Zeroes each element with probability `p` and scales the rest by 1/(1-p) while
 * training; passes the input through in eval mode. Shape: any -> same.
 * @example new Dropout({ p: 0.2 }) // or new Dropout(0.2)
 */
export class Dropout extends Module {
  readonly p: number;
  constructor(options: number | { p?: number } = {}) {
    super();
    const p = checkNumber(typeof options === 'number' ? options : checkKeys(options ?? undefined, ['p'], 'nn.Dropout')?.p ?? 0.5, 'p');
    if (p < 0 || p > 1) throw outOfRangeError(`Expected a probability in [0, 1] for p but received ${p}`);
    this.p = p;
  }
  forward(input: Tensor): Tensor {
    return dropout(input, this.p, this.training);
  }
  override extraRepr(): string {
    return `p=${this.p}, inplace=False`;
  }
}
