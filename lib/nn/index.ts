/**
 * The `nn` namespace: layers, containers, losses, init, summary and functional.
 * @example
 * import { nn } from 'torchnode';
 * const model = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 2));
 */
export { Module, Parameter } from './module';
export type { AnyModule, ForwardHook, ForwardPreHook, LoadStateDictResult, ModuleError, RemovableHandle, StateDict } from './module';
export { Sequential } from './sequential';
export { Conv2d } from './conv';
export type { Conv2dOptions } from './conv';
export { MaxPool2d, AvgPool2d } from './pooling';
export type { MaxPool2dOptions, AvgPool2dOptions } from './pooling';
export { Linear, Identity } from './linear';
export type { LinearOptions } from './linear';
export { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from './activation';
export { Flatten } from './flatten';
export { Dropout } from './dropout';
export { CrossEntropyLoss, NLLLoss, MSELoss } from './loss';
export type { CrossEntropyLossOptions } from './loss';
export { summary, featureMapSize } from './summary';
export type { ModelSummary, LayerSummary, SummaryOptions, ShapeInfo } from './summary';
export { CNN } from './models';
export * as init from './init';
export * as functional from './functional';
export * as F from './functional';
