/**
 * What a network sees: the feature maps its layers produce for an input, and its
 * learned convolution kernels, as plain arrays for drawing.
 */
import { expected, outOfRangeError } from './errors';
import { noGrad } from './autograd';
import { tidy, keep } from './memory';
import { Module, AnyModule } from './nn/module';
import { Conv2d } from './nn/conv';
import { Tensor, fromBuffer } from './tensor';

export interface FeatureMap {
  /** The layer's name in the model (e.g. "layer1"). */
  name: string;
  /** [channels, height, width] of one image's output. */
  shape: [number, number, number];
  /** channels x height x width values, row-major. */
  data: Float32Array;
}

/**
 * Runs one image (a [1, 28, 28] or [1, 1, 28, 28] tensor, or 784 pixels in 0..1)
 * through the model and records the output of each named layer (default: every
 * direct child whose output is a feature map, i.e. 4-D).
 * @example featureMaps(model, image, ['layer1', 'layer2']) // 32 maps of 14x14, 64 of 7x7
 */
export function featureMaps(model: Module, image: Tensor | ArrayLike<number>, layers?: string[]): FeatureMap[] {
  if (!(model instanceof Module)) expected('a Module', 'model', model);
  const named = new Map(model.namedModules());
  const wanted = layers ?? model.namedChildren().map(([n]) => n);
  for (const n of wanted) if (!named.has(n)) throw outOfRangeError(`featureMaps: the model has no layer '${n}' (it has: ${[...named.keys()].filter(Boolean).join(', ')})`);
  const out: FeatureMap[] = [];
  const wasTraining = model.training;
  model.eval();
  const hooks = wanted.map((name) =>
    (named.get(name) as AnyModule).registerForwardHook((_m, _args, output) => {
      if (output instanceof Tensor && output.dim() === 4) {
        const [, c, hgt, w] = output.shape;
        out.push({ name, shape: [c, hgt, w], data: output.select(0, 0).contiguous().toTypedArray() as Float32Array });
      }
    }),
  );
  try {
    tidy(() =>
      noGrad(() => {
        const x =
          image instanceof Tensor
            ? image.reshape([1, 1, image.size(-2), image.size(-1)])
            : fromBuffer(Float32Array.from(image as ArrayLike<number>), [1, 1, 28, 28]);
        model.call(x);
      }),
    );
  } finally {
    hooks.forEach((h) => h.remove());
    if (wasTraining) model.train();
  }
  return out;
}

/** The first Conv2d's kernels: `outChannels` maps of kH x kW (input channel 0). */
export function firstLayerKernels(model: Module): FeatureMap {
  const conv = model.modules().find((m) => m instanceof Conv2d) as Conv2d | undefined;
  if (!conv) throw outOfRangeError('firstLayerKernels: the model has no Conv2d layer');
  const name = model.namedModules().find(([, m]) => m === conv)![0];
  const w = keep(noGrad(() => conv.weight.select(1, 0).contiguous()));
  try {
    const [c, kh, kw] = w.shape;
    return { name, shape: [c, kh, kw], data: w.toTypedArray() as Float32Array };
  } finally {
    w.dispose();
  }
}
