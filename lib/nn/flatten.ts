/**
 * Flatten: turns feature maps into vectors for the classifier (the step that drops
 * spatial structure, so it comes after the convolutions).
 */
import { checkKeys, expected } from '../errors';
import { checkInt, Tensor } from '../tensor';
import { flatten } from './functional';
import { Module } from './module';

/**
 * Flattens dims `startDim..endDim` into one. Shape: [N, C, H, W] -> [N, C*H*W] by default.
 * @example new Flatten() // [100, 64, 7, 7] -> [100, 3136]
 */
export class Flatten extends Module {
  readonly startDim: number;
  readonly endDim: number;
  constructor(options: { startDim?: number; endDim?: number } = {}) {
    super();
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    checkKeys(options, ['startDim', 'endDim'], 'nn.Flatten');
    this.startDim = checkInt(options.startDim ?? 1, 'startDim');
    this.endDim = checkInt(options.endDim ?? -1, 'endDim');
  }
  forward(input: Tensor): Tensor {
    return flatten(input, this.startDim, this.endDim);
  }
  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}
