/**
 * nn.Module: the base class of every layer and model, with PyTorch's registration,
 * traversal, state-dict and repr behaviour.
 *
 * JavaScript has no `__setattr__`, so registration is explicit:
 * `this.fc = this.registerModule('fc', new Linear(4, 2))` in the constructor, or the
 * field form `fc = this.registerModule('fc', new Linear(4, 2))`. Registering a name
 * also defines an accessor of that name on the instance, so `this.fc` reads the
 * registered value and assigning to it re-registers, with PyTorch's type checks.
 * (A class field redefines the name as a plain property after registration; with the
 * field form, replace a child or parameter later by calling `registerX` again.)
 * JavaScript objects cannot be called either: `module.call(x)` is PyTorch's `module(x)`
 * (hooks, and errors annotated with the layer's path); `module.forward(x)` is the bare
 * forward, as in PyTorch.
 */
import { noGrad } from '../autograd';
import { checkKeys, describe, expected, TorchError, argTypeError } from '../errors';
import { keep } from '../memory';
import { N, NativeTensor } from '../native';
import { parseToTarget, Tensor, ToTarget } from '../tensor';

/**
 * A tensor that is a module parameter: it requires grad by default and is exempt from
 * tidy()/scope() (it lives until disposed or its module is garbage-collected).
 * Like `torch.nn.Parameter`, it shares storage with the tensor it is made from.
 * @example const w = new Parameter(torch.zeros(3, 4));
 */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    if (!(data instanceof Tensor)) expected('a Tensor', 'data', data);
    if (typeof requiresGrad !== 'boolean') expected('a boolean', 'requiresGrad', requiresGrad);
    super(N.detach(data.handle));
    N.requiresGrad_(this.handle, requiresGrad);
    keep(this);
  }

  /**
   * Replaces the data this parameter holds, keeping the Parameter object itself (and
   * its requiresGrad), like PyTorch's `param.data = t`. Optimizers and attributes that
   * hold this parameter see the new data. Used by `Module.to()`.
   */
  setData_(data: Tensor): this {
    if (!(data instanceof Tensor)) expected('a Tensor', 'data', data);
    const rg = this.requiresGrad;
    const fresh = data.detach();
    // Swap native handles so this object holds the new data, then free the old one
    // through Tensor.dispose(). Tensor has no public way to rebind its handle.
    const self = this as unknown as { _h: NativeTensor | null };
    const other = fresh as unknown as { _h: NativeTensor | null };
    if (!('_h' in self) || !('_h' in other)) throw new Error('Parameter.setData_: Tensor no longer keeps its handle in _h');
    [self._h, other._h] = [other._h, self._h];
    fresh.dispose();
    this.requiresGrad_(rg);
    return this;
  }

  override toString(): string {
    return `Parameter containing:\n${super.toString()}`;
  }
}

/** Returned by `registerForwardHook` and `registerForwardPreHook`; `remove()` unregisters. */
export interface RemovableHandle {
  remove(): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModule = Module<any, any>;
/** Called before forward with the arguments; may return replacement arguments. */
export type ForwardPreHook = (module: AnyModule, args: unknown[]) => unknown[] | void;
/** Called after forward with the arguments and output; may return a replacement output. */
export type ForwardHook = (module: AnyModule, args: unknown[], output: unknown) => unknown;

/**
 * A state dict: ordered keys exactly like PyTorch's (`layer1.0.weight`) to tensors.
 * `stateDict()` returns a Map; `loadStateDict` also takes a plain object.
 */
export type StateDict = Map<string, Tensor>;

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** An error annotated with the path of the module whose forward raised it. */
export interface ModuleError extends Error {
  /** The module path from the called root, e.g. `fc.0` ('' for the root itself). */
  modulePath: string;
}

const ANNOTATED = Symbol('torchnode.moduleAnnotated');
/** Modules whose `call` is running, outermost first (forward is synchronous). */
const callStack: AnyModule[] = [];

function checkName(kind: string, name: unknown): string {
  if (typeof name !== 'string') expected('a string', `${kind} name`, name);
  if (name === '') throw argTypeError(`${kind} name can't be empty string ""`);
  if (name.includes('.')) throw argTypeError(`${kind} name can't contain "." but received '${name}'`);
  return name;
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** PyTorch's `_addindent`: indents every line but the first. */
function addIndent(s: string, spaces: number): string {
  const lines = s.split('\n');
  if (lines.length === 1) return s;
  return [lines[0], ...lines.slice(1).map((l) => ' '.repeat(spaces) + l)].join('\n');
}

/**
 * Base class for all layers and models. Subclasses register their parameters,
 * buffers and submodules in the constructor and implement `forward`.
 * Type parameters: `I` the forward arguments, `O` its result.
 * @example
 * class TwoLayer extends nn.Module {
 *   fc1 = this.registerModule('fc1', new nn.Linear(4, 8));
 *   fc2 = this.registerModule('fc2', new nn.Linear(8, 2));
 *   forward(x: Tensor): Tensor { return this.fc2.call(this.fc1.call(x).relu()); }
 * }
 * const model = new TwoLayer();
 * model.call(torch.randn(3, 4)); // [3, 2]
 */
export abstract class Module<I extends unknown[] = [Tensor], O = Tensor> {
  /** Whether the module is in training mode (see `train()` / `eval()`). */
  training = true;
  /** @internal */ readonly _parameters = new Map<string, Parameter | null>();
  /** @internal */ readonly _buffers = new Map<string, Tensor | null>();
  /** @internal */ readonly _nonPersistentBuffers = new Set<string>();
  /** @internal */ readonly _modules = new Map<string, AnyModule | null>();
  /** @internal */ readonly _forwardPreHooks = new Map<number, ForwardPreHook>();
  /** @internal */ readonly _forwardHooks = new Map<number, ForwardHook>();
  private static _nextHookId = 0;

  /** The computation, called by `call()`. Subclasses must implement it. */
  abstract forward(...args: I): O;

  /**
   * Runs the module: what PyTorch's `module(x)` is. Runs forward pre-hooks, `forward`,
   * then forward hooks. An error thrown inside is annotated once, by the innermost
   * module running, with that module's path and repr: `fc.0 (Linear(...)): <message>`.
   */
  call(...args: I): O {
    callStack.push(this);
    try {
      let a = args as unknown[];
      if (this._forwardPreHooks.size) {
        for (const hook of [...this._forwardPreHooks.values()]) {
          const r = hook(this, a);
          if (r !== undefined) a = Array.isArray(r) ? r : [r];
        }
      }
      let out = this.forward(...(a as I)) as unknown;
      if (this._forwardHooks.size) {
        for (const hook of [...this._forwardHooks.values()]) {
          const r = hook(this, a, out);
          if (r !== undefined) out = r;
        }
      }
      return out as O;
    } catch (e) {
      throw annotate(e);
    } finally {
      callStack.pop();
    }
  }

  // ---- registration --------------------------------------------------------------

  private _checkFree(kind: string, name: string, own: Map<string, unknown>): void {
    if (own.has(name)) return;
    const registered = this._parameters.has(name) || this._buffers.has(name) || this._modules.has(name);
    const desc = Object.getOwnPropertyDescriptor(this, name);
    const freeField = desc !== undefined && 'value' in desc && desc.value === undefined;
    if (registered || (name in this && !freeField)) {
      throw argTypeError(`Cannot register ${kind} '${name}' on ${this._getName()}: attribute '${name}' already exists`);
    }
  }

  private _defineAccessor(name: string, get: () => unknown, set: (v: unknown) => void): void {
    Object.defineProperty(this, name, { get, set, enumerable: true, configurable: true });
  }

  /**
   * Adds a parameter (or a null placeholder) under `name`; returns it. A plain Tensor
   * is wrapped in a Parameter (sharing storage, requiring grad).
   * @example this.weight = this.registerParameter('weight', new Parameter(torch.empty(3, 4)));
   */
  registerParameter<P extends Tensor | null>(name: string, param: P): P extends null ? null : Parameter {
    checkName('parameter', name);
    if (param !== null && !(param instanceof Tensor)) expected('a Parameter, a Tensor or null', `parameter '${name}'`, param);
    this._checkFree('parameter', name, this._parameters);
    const p = param === null ? null : param instanceof Parameter ? keep(param) : new Parameter(param);
    this._parameters.set(name, p);
    this._defineAccessor(name, () => this._parameters.get(name), (v) => {
      if (v !== null && !(v instanceof Parameter)) {
        throw argTypeError(`cannot assign ${describe(v)} as parameter '${name}' (Parameter or null expected)`);
      }
      this._parameters.set(name, v === null ? null : keep(v));
    });
    return p as P extends null ? null : Parameter;
  }

  /**
   * Adds a buffer: state that is not a parameter (e.g. running statistics). Persistent
   * buffers are part of the state dict. Buffers are exempt from tidy().
   */
  registerBuffer<B extends Tensor | null>(name: string, tensor: B, persistent = true): B {
    checkName('buffer', name);
    if (tensor !== null && !(tensor instanceof Tensor)) expected('a Tensor or null', `buffer '${name}'`, tensor);
    if (typeof persistent !== 'boolean') expected('a boolean', 'persistent', persistent);
    this._checkFree('buffer', name, this._buffers);
    if (tensor) keep(tensor);
    this._buffers.set(name, tensor);
    if (persistent) this._nonPersistentBuffers.delete(name);
    else this._nonPersistentBuffers.add(name);
    this._defineAccessor(name, () => this._buffers.get(name), (v) => {
      if (v !== null && !(v instanceof Tensor)) throw argTypeError(`cannot assign ${describe(v)} as buffer '${name}' (Tensor or null expected)`);
      this._buffers.set(name, v === null ? null : keep(v));
    });
    return tensor;
  }

  /**
   * Adds a child module under `name` (its key prefix in the state dict); returns it.
   * @example this.fc = this.registerModule('fc', new nn.Linear(3136, 100));
   */
  registerModule<M extends AnyModule | null>(name: string, module: M): M {
    checkName('module', name);
    if (module !== null && !(module instanceof Module)) expected('a Module or null', `module '${name}'`, module);
    this._checkFree('module', name, this._modules);
    this._modules.set(name, module);
    this._defineAccessor(name, () => this._modules.get(name), (v) => {
      if (v !== null && !(v instanceof Module)) throw argTypeError(`cannot assign ${describe(v)} as child module '${name}' (Module or null expected)`);
      this._modules.set(name, v as AnyModule | null);
    });
    return module;
  }

  /** Alias of registerModule (PyTorch's `add_module`). */
  addModule<M extends AnyModule | null>(name: string, module: M): M {
    return this.registerModule(name, module);
  }

  /** Runs `fn` after each forward; see `call()`. */
  registerForwardHook(fn: ForwardHook): RemovableHandle {
    if (typeof fn !== 'function') expected('a function', 'hook', fn);
    const id = Module._nextHookId++;
    this._forwardHooks.set(id, fn);
    return { remove: () => void this._forwardHooks.delete(id) };
  }

  /** Runs `fn` before each forward; it may return replacement arguments. */
  registerForwardPreHook(fn: ForwardPreHook): RemovableHandle {
    if (typeof fn !== 'function') expected('a function', 'hook', fn);
    const id = Module._nextHookId++;
    this._forwardPreHooks.set(id, fn);
    return { remove: () => void this._forwardPreHooks.delete(id) };
  }

  // ---- traversal (definition order) ------------------------------------------------

  /** Direct submodules as `[name, module]`, in registration order. */
  namedChildren(): [string, AnyModule][] {
    const seen = new Set<AnyModule>();
    const out: [string, AnyModule][] = [];
    for (const [n, m] of this._modules) {
      if (m && !seen.has(m)) {
        seen.add(m);
        out.push([n, m]);
      }
    }
    return out;
  }
  children(): AnyModule[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and all below it, preorder, as `[qualifiedName, module]` ('' for this one). */
  namedModules(prefix = '', removeDuplicate = true): [string, AnyModule][] {
    const out: [string, AnyModule][] = [];
    const memo = new Set<AnyModule>();
    const walk = (m: AnyModule, p: string): void => {
      if (removeDuplicate) {
        if (memo.has(m)) return;
        memo.add(m);
      }
      out.push([p, m]);
      for (const [n, c] of m._modules) if (c) walk(c, p ? `${p}.${n}` : n);
    };
    walk(this, prefix);
    return out;
  }
  modules(): AnyModule[] {
    return this.namedModules().map(([, m]) => m);
  }

  private _namedMembers<X>(get: (m: AnyModule) => Iterable<[string, X | null]>, prefix: string, recurse: boolean): [string, X][] {
    const mods: [string, AnyModule][] = recurse ? this.namedModules(prefix) : [[prefix, this]];
    const seen = new Set<X>();
    const out: [string, X][] = [];
    for (const [mp, m] of mods) {
      for (const [n, v] of get(m)) {
        if (v === null || seen.has(v)) continue;
        seen.add(v);
        out.push([mp ? `${mp}.${n}` : n, v]);
      }
    }
    return out;
  }

  /** `[name, parameter]` pairs (`layer1.0.weight`), each shared parameter once. */
  namedParameters(prefix = '', recurse = true): [string, Parameter][] {
    return this._namedMembers((m) => m._parameters, prefix, recurse);
  }
  /** All parameters, in definition order; what an optimizer takes. */
  parameters(recurse = true): Parameter[] {
    return this.namedParameters('', recurse).map(([, p]) => p);
  }
  namedBuffers(prefix = '', recurse = true): [string, Tensor][] {
    return this._namedMembers((m) => m._buffers, prefix, recurse);
  }
  buffers(recurse = true): Tensor[] {
    return this.namedBuffers('', recurse).map(([, b]) => b);
  }

  /** The number of parameter elements (each shared parameter counted once). */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    checkKeys(options, ['trainableOnly'], 'numParameters');
    return this.parameters()
      .filter((p) => !options.trainableOnly || p.requiresGrad)
      .reduce((n, p) => n + p.numel(), 0);
  }

  /** Calls `fn` on every submodule (children first) and then on this one; returns this. */
  apply(fn: (module: AnyModule) => void): this {
    if (typeof fn !== 'function') expected('a function', 'fn', fn);
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  // ---- modes ---------------------------------------------------------------------

  /** Sets training mode on this module and all below it; returns this. */
  train(mode = true): this {
    if (typeof mode !== 'boolean') expected('a boolean', 'mode', mode);
    this.training = mode;
    for (const c of this.children()) c.train(mode);
    return this;
  }
  /** Evaluation mode (`train(false)`): dropout off. */
  eval(): this {
    return this.train(false);
  }

  /** Turns gradient recording on or off for every parameter; returns this. */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }

  /**
   * Clears every parameter's gradient: to null by default (PyTorch 2.x), or to zeros.
   */
  zeroGrad(setToNone = true): void {
    for (const p of this.parameters()) {
      if (setToNone) {
        p.grad = null;
        continue;
      }
      const g = p.grad;
      if (g) {
        g.zero_();
        g.dispose();
      }
    }
  }

  // ---- conversion ----------------------------------------------------------------

  /**
   * Moves and/or casts parameters and buffers in place: `to('cuda')`, `to('float64')`,
   * `to({device, dtype, memoryFormat})`. A dtype applies to floating-point tensors only
   * (integer buffers keep theirs); a memory format, as in PyTorch, to 4-D and 5-D ones
   * (`to({ memoryFormat: 'channels_last' })` lays out conv weights N, H, W, C).
   * Parameters stay the same objects (their data is replaced, grads are converted
   * too), so optimizers built before still hold them. Returns this.
   */
  to(target: ToTarget): this {
    // Module.to has no `copy` (Tensor.to's): parameters are always converted in place.
    if (target && typeof target === 'object') checkKeys(target, ['dtype', 'device', 'memoryFormat'], 'Module.to');
    const { dtype, device, memoryFormat } = parseToTarget(target);
    if (dtype !== undefined && dtype !== 'float32' && dtype !== 'float64') {
      throw argTypeError(`Module.to only accepts floating point dtypes, but got dtype=${dtype}`);
    }
    const convert = (t: Tensor): Tensor =>
      t.to({
        dtype: t.isFloatingPoint() ? dtype : undefined,
        device,
        memoryFormat: memoryFormat && (t.dim() === 4 || t.dim() === 5) ? memoryFormat : undefined,
      });
    noGrad(() => {
      for (const m of this.modules()) {
        for (const [, p] of m._parameters) {
          if (!p) continue;
          const g = p.grad;
          const np = convert(p);
          p.setData_(np);
          np.dispose();
          if (g) {
            const ng = convert(g);
            p.grad = ng;
            ng.dispose();
            g.dispose();
          }
        }
        for (const [n, b] of m._buffers) {
          if (!b) continue;
          m._buffers.set(n, keep(convert(b)));
          syncDataProperty(m, n, b, m._buffers.get(n));
          b.dispose();
        }
      }
    });
    return this;
  }
  cpu(): this { return this.to('cpu'); }
  cuda(device?: number): this { return this.to(device === undefined ? 'cuda' : `cuda:${device}`); }
  float(): this { return this.to('float32'); }
  double(): this { return this.to('float64'); }

  // ---- state dict ------------------------------------------------------------------

  /**
   * The module's state: parameters and persistent buffers, keys exactly PyTorch's
   * (`layer1.0.weight`), in PyTorch's order (each module's parameters, then its
   * buffers, then its children). Values are detached tensors sharing the module's
   * storage (pass `keepVars` for the Parameters themselves).
   * @example for (const [k, v] of model.stateDict()) console.log(k, v.shape);
   */
  stateDict(options: { prefix?: string; keepVars?: boolean } = {}): StateDict {
    checkKeys(options, ['prefix', 'keepVars'], 'stateDict');
    const out: StateDict = new Map();
    const walk = (m: AnyModule, prefix: string): void => {
      for (const [n, p] of m._parameters) if (p) out.set(prefix + n, options.keepVars ? p : p.detach());
      for (const [n, b] of m._buffers) {
        if (b && !m._nonPersistentBuffers.has(n)) out.set(prefix + n, options.keepVars ? b : b.detach());
      }
      for (const [n, c] of m._modules) if (c) walk(c, `${prefix}${n}.`);
    };
    walk(this, options.prefix ?? '');
    return out;
  }

  /**
   * Copies values from a state dict into this module's parameters and persistent
   * buffers (in place, without recording gradients; dtype and device are converted).
   * Checks everything before copying anything: with `strict` (default), one error
   * lists every missing and unexpected key; a shape mismatch is an error either way.
   * @example model.loadStateDict(saved); // throws listing every problem at once
   */
  loadStateDict(stateDict: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadStateDictResult {
    checkKeys(options, ['strict'], 'loadStateDict');
    const strict = options.strict ?? true;
    if (typeof strict !== 'boolean') expected('a boolean', 'strict', strict);
    let entries: [string, unknown][];
    if (stateDict instanceof Map) entries = [...stateDict.entries()];
    else if (stateDict && typeof stateDict === 'object' && !Array.isArray(stateDict)) entries = Object.entries(stateDict);
    else return expected('a Map or an object of Tensors', 'stateDict', stateDict);
    const given = new Map(entries);
    const own = this.stateDict({ keepVars: true });
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const errors: string[] = [];
    const copies: [Tensor, Tensor][] = [];
    for (const [k, dst] of own) {
      if (!given.has(k)) continue;
      const src = given.get(k);
      if (!(src instanceof Tensor)) {
        errors.push(`While copying the parameter named "${k}", expected a Tensor from checkpoint but received ${describe(src)}.`);
        continue;
      }
      if (src.isDisposed) {
        errors.push(`While copying the parameter named "${k}", the checkpoint's tensor has been disposed.`);
        continue;
      }
      const ss = src.shape;
      const ds = dst.shape;
      if (ss.length !== ds.length || ss.some((d, i) => d !== ds[i])) {
        errors.push(
          `size mismatch for ${k}: copying a param with shape ${shapeStr(ss)} from checkpoint, the shape in current model is ${shapeStr(ds)}.`,
        );
        continue;
      }
      copies.push([dst, src]);
    }
    if (strict) {
      if (unexpectedKeys.length) errors.unshift(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
      if (missingKeys.length) errors.unshift(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    }
    if (errors.length) {
      throw new TorchError(`Error(s) in loading state_dict for ${this._getName()}:\n\t${errors.join('\n\t')}`);
    }
    noGrad(() => {
      for (const [dst, src] of copies) dst.copy_(src);
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---- repr ------------------------------------------------------------------------

  /** The class name shown in the repr. */
  protected _getName(): string {
    return this.constructor.name;
  }

  /** The layer's settings for the repr, e.g. `in_features=4, out_features=2, bias=True`. */
  extraRepr(): string {
    return '';
  }

  /** The repr, exactly like PyTorch's `print(model)`. */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra ? extra.split('\n') : [];
    const childLines = [...this._modules].map(([k, m]) => `(${k}): ${addIndent(m ? m.toString() : 'None', 2)}`);
    const lines = [...extraLines, ...childLines];
    let s = `${this._getName()}(`;
    if (lines.length) {
      if (extraLines.length === 1 && childLines.length === 0) s += extraLines[0];
      else s += '\n  ' + lines.join('\n  ') + '\n';
    }
    return s + ')';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /** @internal One-line description for error messages: `Linear(in_features=4, ...)`. */
  _label(): string {
    const extra = this.extraRepr();
    return extra && !extra.includes('\n') ? `${this._getName()}(${extra})` : this._getName();
  }
}

/** Keeps a plain data property (a class field assigned from registerX) in step with the registry. */
function syncDataProperty(m: AnyModule, name: string, old: unknown, now: unknown): void {
  const d = Object.getOwnPropertyDescriptor(m, name);
  if (d && 'value' in d && d.value === old && d.writable) (m as unknown as Record<string, unknown>)[name] = now;
}

/** Finds how `child` is named inside `parent` (a direct child, else any descendant). */
function nameWithin(parent: AnyModule, child: AnyModule): string {
  for (const [n, m] of parent._modules) if (m === child) return n;
  for (const [n, m] of parent.namedModules()) if (m === child && n) return n;
  return `<${child._label()}>`;
}

function annotate(e: unknown): unknown {
  if (!(e instanceof Error) || (e as unknown as Record<symbol, boolean>)[ANNOTATED]) return e;
  const parts: string[] = [];
  for (let i = 1; i < callStack.length; i++) parts.push(nameWithin(callStack[i - 1], callStack[i]));
  const path = parts.join('.');
  const self = callStack[callStack.length - 1];
  const label = path ? `${path} (${self._label()})` : self._label();
  const oldMsg = e.message;
  e.message = `${label}: ${oldMsg}`;
  if (typeof e.stack === 'string' && oldMsg) e.stack = e.stack.replace(oldMsg, e.message);
  Object.defineProperty(e, ANNOTATED, { value: true, enumerable: false });
  (e as ModuleError).modulePath = path;
  return e;
}
