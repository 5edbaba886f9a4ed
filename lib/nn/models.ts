/**
 * Ready-made models, written the way a user writes a model.
 */
import { Tensor } from '../tensor';
import { ReLU } from './activation';
import { Conv2d } from './conv';
import { Linear } from './linear';
import { Module } from './module';
import { MaxPool2d } from './pooling';
import { Sequential } from './sequential';

/**
 * The seed's MNIST classifier: two conv -> ReLU -> max-pool blocks (28x28 -> 14x14 -> 7x7,
 * channels 1 -> 32 -> 64), flattened and classified by a 2-layer MLP. 333,526 parameters;
 * after `manualSeed(s)` its initial weights equal PyTorch's `CNN()` bit for bit.
 * Shape: [N, 1, 28, 28] -> [N, 10] (logits).
 * @example
 * manualSeed(0);
 * const model = new CNN();
 * const logits = model.call(torch.zeros(1, 1, 28, 28)); // [1, 10]
 */
export class CNN extends Module {
  readonly layer1 = this.registerModule(
    'layer1',
    new Sequential(new Conv2d(1, 32, 3, { stride: 1, padding: 1 }), new ReLU(), new MaxPool2d(2, { stride: 2 })),
  );
  readonly layer2 = this.registerModule(
    'layer2',
    new Sequential(new Conv2d(32, 64, 3, { stride: 1, padding: 1 }), new ReLU(), new MaxPool2d(2, { stride: 2 })),
  );
  readonly fc = this.registerModule('fc', new Sequential(new Linear(7 * 7 * 64, 100), new ReLU(), new Linear(100, 10)));

  /** Shape: [N, 1, 28, 28] -> [N, 10]. */
  forward(x: Tensor): Tensor {
    let out = this.layer1.call(x);
    out = this.layer2.call(out);
    // The seed writes out.view(out.size(0), -1); reshape is the same view for a
    // contiguous tensor and, for a channels-last one, copies to NCHW order first.
    out = out.reshape(out.size(0), -1);
    return this.fc.call(out);
  }
}
