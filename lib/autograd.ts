/**
 * Grad mode and autograd.grad. Grad mode is per thread, as in PyTorch; the
 * helpers restore the previous mode even when `fn` throws.
 */
import { checkKeys, expected, argTypeError } from './errors';
import { N } from './native';
import { h, Tensor, wrap } from './tensor';

function withGradMode<R>(enabled: boolean, fn: () => R): R {
  if (typeof fn !== 'function') expected('a function', 'fn', fn);
  const prev = N.setGradEnabled(enabled);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    N.setGradEnabled(prev);
    throw e;
  }
  if (result instanceof Promise) {
    // Restore at once: an async body would otherwise leak the mode into unrelated code
    // that runs while it awaits. Use noGrad inside the async function instead.
    N.setGradEnabled(prev);
    throw argTypeError('noGrad()/enableGrad() take a synchronous function; call them inside your async function instead');
  }
  N.setGradEnabled(prev);
  return result;
}

/**
 * Runs `fn` with gradient tracking off (PyTorch's `torch.no_grad()`).
 * @example const pred = noGrad(() => model.forward(x));
 */
export function noGrad<R>(fn: () => R): R {
  return withGradMode(false, fn);
}

/** Runs `fn` with gradient tracking on, e.g. inside noGrad. */
export function enableGrad<R>(fn: () => R): R {
  return withGradMode(true, fn);
}

/** Whether operations are currently recorded for autograd. */
export function isGradEnabled(): boolean {
  return N.isGradEnabled();
}

/** Turns grad mode on or off; returns the previous mode. Prefer noGrad(). */
export function setGradEnabled(enabled: boolean): boolean {
  if (typeof enabled !== 'boolean') expected('a boolean', 'enabled', enabled);
  return N.setGradEnabled(enabled);
}

/**
 * Runs `fn` in libtorch's inference mode (`torch.inference_mode()`): like noGrad,
 * and also skips autograd's version and view tracking, so it is a little faster.
 * Tensors made inside cannot be used in autograd afterwards.
 * @example const logits = inferenceMode(() => model.call(x));
 */
export function inferenceMode<R>(fn: () => R): R {
  if (typeof fn !== 'function') expected('a function', 'fn', fn);
  N.enterInferenceMode();
  let result: R;
  try {
    result = fn();
  } finally {
    N.exitInferenceMode();
  }
  if (result instanceof Promise) throw argTypeError('inferenceMode() takes a synchronous function; call it inside your async function instead');
  return result;
}

/** Whether this thread is in inference mode. */
export function isInferenceMode(): boolean {
  return N.isInferenceMode();
}

export interface GradOptions {
  gradOutputs?: Tensor[];
  retainGraph?: boolean;
  createGraph?: boolean;
  allowUnused?: boolean;
}

/**
 * Gradients of `outputs` with respect to `inputs`, without touching `.grad`
 * (PyTorch's `torch.autograd.grad`). Unused inputs give null when `allowUnused`.
 * @example const [dx] = autograd.grad([x.pow(2).sum()], [x]);
 */
function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], options: GradOptions = {}): (Tensor | null)[] {
  checkKeys(options, ['gradOutputs', 'retainGraph', 'createGraph', 'allowUnused'], 'autograd.grad');
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const res = N.autogradGrad(
    outs.map((t, i) => h(t, `outputs[${i}]`)),
    ins.map((t, i) => h(t, `inputs[${i}]`)),
    options.gradOutputs ? options.gradOutputs.map((t, i) => h(t, `gradOutputs[${i}]`)) : null,
    options.retainGraph ?? null,
    options.createGraph ?? false,
    options.allowUnused ?? false,
  );
  return res.map((r) => (r ? wrap(r) : null));
}

export const autograd = { grad };
