/**
 * Architecture specs: a plain-JSON description of a model built from the
 * library's layers, so it can be rebuilt in another thread (training workers)
 * or process. Weights travel separately, as a state dict.
 */
import { Module, AnyModule } from './module';
import { Sequential } from './sequential';
import { Conv2d } from './conv';
import { MaxPool2d, AvgPool2d } from './pooling';
import { Linear, Identity } from './linear';
import { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from './activation';
import { Flatten } from './flatten';
import { Dropout } from './dropout';
import { CNN } from './models';
import { argTypeError } from '../errors';

export interface ModuleSpec {
  type: string;
  args?: unknown[];
  children?: ModuleSpec[];
}

type Builder = { cls: new (...a: any[]) => AnyModule; args: (m: any) => unknown[]; build?: (spec: ModuleSpec) => AnyModule };

const BUILDERS: Record<string, Builder> = {
  Conv2d: {
    cls: Conv2d,
    args: (m: Conv2d) => [m.inChannels, m.outChannels, m.kernelSize, { stride: m.stride, padding: m.padding, dilation: m.dilation, groups: m.groups, bias: m.bias !== null }],
  },
  Linear: { cls: Linear, args: (m: Linear) => [m.inFeatures, m.outFeatures, { bias: m.bias !== null }] },
  MaxPool2d: {
    cls: MaxPool2d,
    args: (m: MaxPool2d) => [m.kernelSize, { stride: m.stride, padding: m.padding, dilation: m.dilation, ceilMode: m.ceilMode }],
  },
  AvgPool2d: {
    cls: AvgPool2d,
    args: (m: AvgPool2d) => [m.kernelSize, { stride: m.stride, padding: m.padding, ceilMode: m.ceilMode, countIncludePad: m.countIncludePad, divisorOverride: m.divisorOverride }],
  },
  ReLU: { cls: ReLU, args: (m: ReLU) => [{ inplace: m.inplace }] },
  LeakyReLU: { cls: LeakyReLU, args: (m: LeakyReLU) => [{ negativeSlope: m.negativeSlope }] },
  Sigmoid: { cls: Sigmoid, args: () => [] },
  Tanh: { cls: Tanh, args: () => [] },
  Softmax: { cls: Softmax, args: (m: Softmax) => [{ dim: m.dim }] },
  LogSoftmax: { cls: LogSoftmax, args: (m: LogSoftmax) => [{ dim: m.dim }] },
  Flatten: { cls: Flatten, args: (m: Flatten) => [{ startDim: m.startDim, endDim: m.endDim }] },
  Dropout: { cls: Dropout, args: (m: Dropout) => [{ p: m.p }] },
  Identity: { cls: Identity, args: () => [] },
  CNN: { cls: CNN, args: () => [] },
};

/**
 * The spec of a model made of library layers (any nesting of Sequential).
 * Throws for a user-defined Module subclass: such a model is rebuilt from the
 * file that exports it (train's `modelFile` option).
 */
export function moduleSpec(module: AnyModule): ModuleSpec {
  if (!(module instanceof Module)) throw argTypeError(`Expected a Module for model but received ${typeof module}`);
  const ctor = module.constructor as { name: string };
  if (module instanceof Sequential && ctor === Sequential) {
    return { type: 'Sequential', children: module.children().map(moduleSpec) };
  }
  const b = BUILDERS[ctor.name];
  if (!b || b.cls !== ctor) {
    throw argTypeError(
      `Model ${ctor.name} is a user-defined Module: it cannot be rebuilt in another thread from its layers. ` +
        "Pass `modelFile: '/path/to/file.js'` (and `modelExport`, `modelArgs`) naming the file that exports the class.",
    );
  }
  return { type: ctor.name, args: b.args(module) };
}

/** Rebuilds a module from its spec (fresh weights; load a state dict after). */
export function buildModule(spec: ModuleSpec): AnyModule {
  if (!spec || typeof spec !== 'object' || typeof spec.type !== 'string') {
    throw argTypeError(`Expected a module spec {type, args} but received ${JSON.stringify(spec)}`);
  }
  if (spec.type === 'Sequential') return new Sequential(...(spec.children ?? []).map(buildModule));
  const b = BUILDERS[spec.type];
  if (!b) throw argTypeError(`Unknown module type '${spec.type}' in spec; known: Sequential, ${Object.keys(BUILDERS).join(', ')}`);
  return new b.cls(...(spec.args ?? []));
}
