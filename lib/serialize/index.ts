/**
 * Checkpoints that move between torchnode and PyTorch: `save` / `load` in
 * `torch.save`'s zip format, safetensors, and the PyTorch tutorial's checkpoint
 * layout `{model_state_dict, optimizer_state_dict, epoch, ...}` for resuming training.
 * @example
 * torch.save(model.stateDict(), 'model.pt');      // torch.load('model.pt') in Python
 * model.loadStateDict(torch.load('model.pt') as Map<string, Tensor>);
 */
import { checkKeys, describe, expected, argTypeError } from '../errors';
import { Tensor } from '../tensor';
import { loadSafetensors } from './safetensors';
import { CheckpointError, load, LoadOptions, save } from './torch';

export { save, load, saveToBuffer, CheckpointError } from './torch';
export type { LoadOptions, SaveOptions } from './torch';
export { saveSafetensors, loadSafetensors, readSafetensorsHeader, safetensorsToBuffer } from './safetensors';
export type { SafetensorsEntry, SafetensorsHeader } from './safetensors';
export { tuple, isTuple } from './pickle';

/** Anything with a state dict, like an `nn.Module` (duck-typed). */
export interface HasStateDict {
  stateDict(): Map<string, Tensor>;
  loadStateDict(stateDict: Map<string, Tensor> | Record<string, Tensor>, options?: { strict?: boolean }): {
    missingKeys: string[];
    unexpectedKeys: string[];
  };
}

/** Anything with an optimizer state dict, like an `optim.Optimizer` (duck-typed). */
export interface HasOptimizerState {
  stateDict(): object;
  loadStateDict(stateDict: never): void;
}

/** What `saveCheckpoint` writes: the model and optimizer, plus anything else (epoch, loss, ...). */
export interface CheckpointParts {
  model?: HasStateDict | Map<string, Tensor>;
  optimizer?: HasOptimizerState | object;
  epoch?: number;
  [extra: string]: unknown;
}

/** What `loadCheckpoint` returns: PyTorch's tutorial keys plus whatever else the file holds. */
export interface Checkpoint {
  model_state_dict?: Map<string, Tensor>;
  optimizer_state_dict?: { state: Record<string, unknown>; param_groups: Record<string, unknown>[] };
  epoch?: number;
  [extra: string]: unknown;
}

function hasMethods(v: unknown, ...names: string[]): boolean {
  return v !== null && typeof v === 'object' && names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function');
}

/**
 * Saves a training checkpoint in the layout of PyTorch's "saving and loading a general
 * checkpoint" tutorial: `{model_state_dict, optimizer_state_dict, epoch, ...extra}`,
 * which Python resumes with `model.load_state_dict(ck['model_state_dict'])` and
 * `optimizer.load_state_dict(ck['optimizer_state_dict'])`. Atomic, like `save`.
 * @example saveCheckpoint('ckpt.pt', { model, optimizer, epoch, loss: 0.12 });
 */
export function saveCheckpoint(file: string, parts: CheckpointParts): void {
  if (parts === null || typeof parts !== 'object') expected('an object {model, optimizer, epoch, ...}', 'parts', parts);
  const { model, optimizer, ...extra } = parts;
  const obj: Record<string, unknown> = {};
  if (model !== undefined) {
    if (model instanceof Map) obj.model_state_dict = model;
    else if (hasMethods(model, 'stateDict')) obj.model_state_dict = (model as HasStateDict).stateDict();
    else expected('a Module or a state dict Map', 'model', model);
  }
  if (optimizer !== undefined) {
    obj.optimizer_state_dict = hasMethods(optimizer, 'stateDict') ? (optimizer as HasOptimizerState).stateDict() : optimizer;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (k === 'model_state_dict' || k === 'optimizer_state_dict') {
      throw argTypeError(`Expected '${k}' to come from the model/optimizer options, not as an extra key`);
    }
    obj[k] = v;
  }
  save(obj, file);
}

/**
 * Loads a checkpoint written by `saveCheckpoint` or by PyTorch in the tutorial layout.
 * With `model` / `optimizer`, loads their states in place (the model's with `strict`,
 * default true: every missing, unexpected or mis-shaped key is named in one error).
 * Returns the whole checkpoint, e.g. to read `epoch` and resume after it; its tensors
 * are copies (the model and optimizer hold their own), so free them with
 * `disposeTensors(ck)` once done, or leave them to the garbage collector.
 * @example
 * const ck = loadCheckpoint('ckpt.pt', { model, optimizer });
 * const startEpoch = (ck.epoch ?? 0) + 1;
 */
export function loadCheckpoint(
  file: string | Uint8Array,
  targets: { model?: HasStateDict; optimizer?: HasOptimizerState; strict?: boolean } & LoadOptions = {},
): Checkpoint {
  if (targets === null || typeof targets !== 'object') expected('an options object {model, optimizer, strict, maxBytes}', 'targets', targets);
  checkKeys(targets, ['model', 'optimizer', 'strict', 'maxBytes'], 'loadCheckpoint');
  const ck = load(file, { maxBytes: targets.maxBytes });
  const name = typeof file === 'string' ? file : '<buffer>';
  if (ck === null || typeof ck !== 'object' || Array.isArray(ck) || ck instanceof Map || ck instanceof Tensor) {
    throw new CheckpointError(`Not a training checkpoint: ${name} holds ${describe(ck)}, not a dict like {model_state_dict, optimizer_state_dict, epoch}`, name);
  }
  const c = ck as Checkpoint;
  if (targets.model !== undefined) {
    if (!hasMethods(targets.model, 'loadStateDict')) expected('a Module', 'model', targets.model);
    if (!(c.model_state_dict instanceof Map) && (c.model_state_dict === null || typeof c.model_state_dict !== 'object')) {
      throw new CheckpointError(`Checkpoint ${name} has no model_state_dict (keys: ${Object.keys(c).join(', ')})`, name);
    }
    targets.model.loadStateDict(c.model_state_dict as Map<string, Tensor>, { strict: targets.strict ?? true });
  }
  if (targets.optimizer !== undefined) {
    if (!hasMethods(targets.optimizer, 'loadStateDict')) expected('an Optimizer', 'optimizer', targets.optimizer);
    if (c.optimizer_state_dict === null || typeof c.optimizer_state_dict !== 'object') {
      throw new CheckpointError(`Checkpoint ${name} has no optimizer_state_dict (keys: ${Object.keys(c).join(', ')})`, name);
    }
    targets.optimizer.loadStateDict(c.optimizer_state_dict as never);
  }
  return c;
}

/**
 * Loads a state dict into `model` from a file (a `torch.save`d state dict, a
 * checkpoint holding `model_state_dict` or `state_dict`, or a `.safetensors` file) or
 * from a Map / object. The loaded tensors are freed after copying. With `strict`
 * (default) one error names every missing and unexpected key; shape mismatches are
 * always errors.
 * @example loadStateDictInto(model, 'cnn.pt');
 */
export function loadStateDictInto(
  model: HasStateDict,
  source: string | Uint8Array | Map<string, Tensor> | Record<string, Tensor>,
  options: { strict?: boolean } & LoadOptions = {},
): { missingKeys: string[]; unexpectedKeys: string[] } {
  if (!hasMethods(model, 'loadStateDict')) expected('a Module', 'model', model);
  if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
  checkKeys(options, ['strict', 'maxBytes'], 'loadStateDictInto');
  // Module.loadStateDict takes only `strict` (maxBytes is for reading the file).
  const strict = { strict: options.strict };
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) return model.loadStateDict(source, strict);
  const name = typeof source === 'string' ? source : '<buffer>';
  // safetensors starts with a little-endian length followed by '{'; torch.save files with 'PK'.
  const isSafetensors = typeof source === 'string' ? /\.safetensors$/i.test(source) : source.length > 8 && source[8] === 0x7b;
  const loaded: unknown = isSafetensors ? loadSafetensors(source) : load(source, { maxBytes: options.maxBytes });
  let sd: unknown = loaded;
  if (!(sd instanceof Map) && sd !== null && typeof sd === 'object' && !(sd instanceof Tensor)) {
    const o = sd as Record<string, unknown>;
    const values = Object.values(o);
    if (!values.every((v) => v instanceof Tensor)) {
      sd = o.model_state_dict ?? o.state_dict;
      if (sd === undefined) {
        throw new CheckpointError(`No state dict in ${name}: expected tensors, or a checkpoint with model_state_dict or state_dict (keys: ${Object.keys(o).join(', ')})`, name);
      }
    }
  }
  if (!(sd instanceof Map) && (sd === null || typeof sd !== 'object' || sd instanceof Tensor)) {
    throw new CheckpointError(`No state dict in ${name}: it holds ${describe(sd)}`, name);
  }
  try {
    return model.loadStateDict(sd as Map<string, Tensor>, strict);
  } finally {
    disposeTensors(loaded);
  }
}

/**
 * Frees every tensor inside a loaded value (Maps, arrays, objects), e.g. after copying them into a model.
 * @example const ck = loadCheckpoint(f, { model, optimizer }); disposeTensors(ck);
 */
export function disposeTensors(value: unknown): void {
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Tensor) return v.dispose();
    if (v instanceof Map) for (const x of v.values()) walk(x);
    else if (Array.isArray(v) || v instanceof Set) for (const x of v) walk(x);
    else if (!ArrayBuffer.isView(v)) for (const x of Object.values(v)) walk(x);
  };
  walk(value);
}
