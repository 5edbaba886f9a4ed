/**
 * torch.optim: optimizers with PyTorch's names, options and arithmetic.
 * @example
 * import { optim } from 'torchnode';
 * const opt = new optim.Adam(model.parameters(), { lr: 0.01 });
 */
export { Optimizer } from './optimizer';
export type { OptimizerStateDict, ParamGroup, ParamGroupInput, Params, ParamState, StateValue, HasParameters } from './optimizer';
export { SGD } from './sgd';
export type { SGDOptions } from './sgd';
export { Adam } from './adam';
export type { AdamOptions } from './adam';
