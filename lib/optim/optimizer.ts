/**
 * The Optimizer base class: parameter groups, zeroGrad, and PyTorch-compatible
 * stateDict()/loadStateDict(). Subclasses (SGD, Adam) implement the update rule
 * in `update()` with PyTorch 1.13's single-tensor (`foreach=False`) arithmetic.
 */
import { noGrad, enableGrad } from '../autograd';
import { describe, expected, argTypeError, ValueError } from '../errors';
import { keep, tidy } from '../memory';
import { full, isTensor, Tensor } from '../tensor';
import { version as libtorchVersion } from '../device';

/**
 * The loaded libtorch's version as [major, minor]. PyTorch's optimizers are Python
 * code whose arithmetic changed between releases (Adam's first moment became a
 * `lerp_` in 2.0, for one), and "the same numbers as the PyTorch you have" means
 * following the formula of the version that is loaded: each update() asks here.
 * @internal
 */
export const TORCH_VERSION: readonly [number, number] = (() => {
  const [major, minor] = libtorchVersion.split('.').map((s) => parseInt(s, 10));
  return [major || 0, minor || 0] as const;
})();

/** True when the loaded libtorch is `major.minor` or newer. @internal */
export function torchAtLeast(major: number, minor = 0): boolean {
  return TORCH_VERSION[0] > major || (TORCH_VERSION[0] === major && TORCH_VERSION[1] >= minor);
}

/** Something that owns parameters, like an `nn.Module` (duck-typed on `parameters()`). */
export interface HasParameters {
  parameters(): Iterable<Tensor>;
}

/** One parameter group: its tensors and its (complete) options. */
export type ParamGroup<O> = O & { params: Tensor[] };

/** A parameter group as passed in: options left out fall back to the optimizer's defaults. */
export type ParamGroupInput<O> = Partial<O> & { params: Tensor | Iterable<Tensor> | HasParameters };

/** What an optimizer accepts: tensors, parameter groups, or a module-like object. */
export type Params<O> = Iterable<Tensor> | Iterable<ParamGroupInput<O>> | HasParameters;

/** A per-parameter state value: tensors, numbers and flags as PyTorch stores them. */
export type StateValue = Tensor | number | boolean | null;

/** The state of one parameter, keyed by PyTorch's names (`exp_avg`, `momentum_buffer`, ...). */
export type ParamState = Record<string, StateValue>;

/**
 * `Optimizer.stateDict()`'s layout, the same as PyTorch's `optimizer.state_dict()`:
 * `state` is keyed by the parameter's index across all groups, `param_groups`
 * holds each group's options with PyTorch's snake_case names and `params` as indices.
 */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  param_groups: Array<Record<string, unknown> & { params: number[] }>;
}

/** PyTorch group keys that have no counterpart here (ignored on load, written on save). */
const TORCH_ONLY_KEYS = new Set(['foreach', 'differentiable', 'capturable', 'fused']);

/** @internal `weightDecay` -> `weight_decay` */
export function camelToSnake(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
/** @internal `weight_decay` -> `weightDecay` */
export function snakeToCamel(k: string): string {
  return k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function hasParameters(v: unknown): v is HasParameters {
  return v !== null && typeof v === 'object' && !isTensor(v) && typeof (v as HasParameters).parameters === 'function';
}

function isIterable(v: unknown): v is Iterable<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function';
}

/**
 * Python's `float ** float` (C `pow`), bit for bit. V8's `**` rounds differently
 * from glibc's pow for about 5% of `beta ** step` values, and Adam's bias
 * correction must equal PyTorch's to the last bit; a one-element float64 tensor
 * pow goes through ATen's scalar loop, which calls the same libm `pow` Python does.
 * @internal
 */
export function pyPow(base: number, exponent: number): number {
  if (exponent === 1) return base;
  if (exponent === 0) return 1;
  return tidy(() => full([], base, { dtype: 'float64' }).pow(full([], exponent, { dtype: 'float64' })).item() as number);
}

/**
 * Base class of all optimizers, like `torch.optim.Optimizer`.
 * Subclasses pass their filled-in defaults and implement `update()`.
 * @example
 * const opt = new SGD([w, b], { lr: 0.1 });
 * opt.zeroGrad(); loss.backward(); opt.step();
 */
export abstract class Optimizer<O extends object = Record<string, unknown>> {
  /** The options each group falls back to (camelCase). */
  readonly defaults: O;
  /** The parameter groups, each `{params, ...options}` with every option filled in. Options may be changed between steps. */
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Per-parameter state, keyed by the parameter tensor; values use PyTorch's key names. */
  readonly state: Map<Tensor, ParamState> = new Map();

  /**
   * @param params tensors, parameter groups (`[{params: [w]}, {params: [b], lr: 0.5}]`), or an object with `parameters()`
   * @param defaults the options, already validated by the subclass
   */
  protected constructor(params: Params<O>, defaults: O) {
    this.defaults = defaults;
    if (isTensor(params)) {
      throw argTypeError(
        'params argument given to the optimizer should be an iterable of Tensors or parameter groups, but got a Tensor (wrap it in an array)',
      );
    }
    let list: unknown[];
    if (hasParameters(params)) list = Array.from(params.parameters());
    else if (isIterable(params) && typeof params !== 'string') list = Array.from(params as Iterable<unknown>);
    else return expected('an iterable of Tensors, parameter groups, or an object with parameters()', 'params', params);
    if (list.length === 0) throw new ValueError('optimizer got an empty parameter list');
    const groups = isPlainObject(list[0]) ? list : [{ params: list }];
    groups.forEach((g) => this.addParamGroup(g as ParamGroupInput<O>));
  }

  /** The class name used in messages. */
  protected get name(): string {
    return this.constructor.name;
  }

  /**
   * Checks one group's complete options; throws naming the option and the value.
   * `where` is '' for the constructor's options or ' in param group N'.
   */
  protected abstract validateOptions(options: O, where: string): void;

  /** Applies one update to every parameter of `group` that has a gradient. Runs under noGrad and tidy. */
  protected abstract update(group: ParamGroup<O>): void;

  /** PyTorch's extra group keys written by stateDict() (e.g. `foreach: null`), so PyTorch reads the same dict it writes. */
  protected torchGroupExtras(): Record<string, unknown> {
    // 2.x's SGD has a fused implementation too, so its groups carry `fused: None`.
    return torchAtLeast(2, 0) ? { foreach: null, differentiable: false, fused: null } : { foreach: null, differentiable: false };
  }

  /** Optimizer-specific fix-ups of a loaded parameter state (e.g. Adam's `step` as a tensor). */
  protected normalizeLoadedState(state: ParamState, _param: Tensor): ParamState {
    return state;
  }

  /**
   * Adds a parameter group, e.g. layers unfrozen during fine-tuning. Options it leaves
   * out come from the defaults.
   * @example opt.addParamGroup({ params: head.parameters(), lr: 0.01 })
   */
  addParamGroup(group: ParamGroupInput<O>): void {
    if (!isPlainObject(group)) expected('a parameter group object {params, ...options}', 'param group', group);
    const where = ` in param group ${this.paramGroups.length}`;
    const raw = group.params as unknown;
    let params: unknown[];
    if (isTensor(raw)) params = [raw];
    else if (hasParameters(raw)) params = Array.from(raw.parameters());
    else if (isIterable(raw) && typeof raw !== 'string') params = Array.from(raw);
    else return expected('a Tensor, an iterable of Tensors or an object with parameters()', `params${where}`, raw);

    params.forEach((p, i) => {
      if (!isTensor(p)) {
        throw argTypeError(`optimizer can only optimize Tensors, but params[${i}]${where} is ${describe(p)}`);
      }
      if (!p.isLeaf) throw new ValueError(`can't optimize a non-leaf Tensor (params[${i}]${where}); use .detach().requiresGrad_() to make a leaf`);
    });
    const tensors = params as Tensor[];
    if (new Set(tensors).size !== tensors.length) {
      throw new ValueError(`optimizer got a parameter group with duplicate parameters${where}`);
    }
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (tensors.includes(p)) throw new ValueError('some parameters appear in more than one parameter group');
      }
    }

    const options: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(group)) {
      if (k === 'params') continue;
      if (!(k in (this.defaults as object))) {
        throw argTypeError(`Unknown option '${k}'${where} for ${this.name} (known: ${Object.keys(this.defaults).join(', ')})`);
      }
      options[k] = v;
    }
    for (const [k, v] of Object.entries(this.defaults)) {
      if (options[k] === undefined) {
        if (v === undefined) throw new ValueError(`parameter group didn't specify a value of required optimization parameter ${k}${where}`);
        options[k] = Array.isArray(v) ? [...v] : v;
      }
    }
    this.validateOptions(options as O, where);
    this.paramGroups.push({ ...(options as O), params: [...tensors] });
  }

  /**
   * Clears the gradients of all parameters: sets them to null (the default, PyTorch 2's),
   * or with `setToNone = false` zeroes them in place (PyTorch 1.13's default).
   */
  zeroGrad(setToNone = true): void {
    if (typeof setToNone !== 'boolean') expected('a boolean', 'setToNone', setToNone);
    noGrad(() =>
      tidy(() => {
        for (const group of this.paramGroups) {
          for (const p of group.params) {
            const g = p.grad;
            if (g === null) continue;
            if (setToNone) {
              p.grad = null;
            } else if (g.requiresGrad) {
              // A graph-carrying grad (createGraph) is cut loose first, as PyTorch's detach_().
              const d = g.detach();
              p.grad = d;
              d.zero_();
            } else {
              g.zero_();
            }
          }
        }
      }),
    );
  }

  /**
   * Performs one update of every parameter that has a gradient. With a closure,
   * calls it first (with grad enabled) and returns its loss.
   * @example opt.zeroGrad(); loss.backward(); opt.step();
   */
  step(): void;
  step<L>(closure: () => L): L;
  step<L>(closure?: () => L): L | void {
    let loss: L | undefined;
    if (closure !== undefined) {
      if (typeof closure !== 'function') expected('a function', 'closure', closure);
      loss = enableGrad(closure);
    }
    noGrad(() =>
      tidy(() => {
        for (const group of this.paramGroups) this.update(group);
      }),
    );
    return loss;
  }

  /** The state of `p`, created empty on first use. @internal */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /**
   * The optimizer's state in PyTorch's layout (see OptimizerStateDict). The tensors
   * are the optimizer's own buffers, not copies (as in PyTorch): clone them to snapshot.
   * @example const sd = opt.stateDict(); other.loadStateDict(sd);
   */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    let next = 0;
    const groups = this.paramGroups.map((g) => {
      const packed: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) {
        if (k === 'params') continue;
        packed[camelToSnake(k)] = Array.isArray(v) ? [...v] : v;
      }
      for (const [k, v] of Object.entries(this.torchGroupExtras())) if (!(k in packed)) packed[k] = v;
      packed.params = g.params.map((p) => {
        if (!index.has(p)) index.set(p, next++);
        return index.get(p)!;
      });
      return packed as Record<string, unknown> & { params: number[] };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = { ...s };
    }
    return { state, param_groups: groups };
  }

  /**
   * Loads a state from stateDict() (ours or PyTorch's, same layout). Tensors are
   * copied, and all but `step` are cast to their parameter's dtype and device.
   * Throws when the group count or a group's size differs, or a buffer's shape
   * does not match its parameter.
   */
  loadStateDict(stateDict: OptimizerStateDict): void {
    if (!isPlainObject(stateDict) || !isPlainObject(stateDict.state) || !Array.isArray(stateDict.param_groups)) {
      expected('a state dict {state, param_groups}', 'stateDict', stateDict);
    }
    const saved = stateDict.param_groups;
    const groups = this.paramGroups;
    if (saved.length !== groups.length) {
      throw new ValueError(
        `loaded state dict has ${saved.length} parameter group${saved.length === 1 ? '' : 's'} but ${this.name} has ${groups.length}`,
      );
    }
    const idMap = new Map<string, Tensor>();
    saved.forEach((sg, gi) => {
      if (!isPlainObject(sg) || !Array.isArray(sg.params)) expected('a group {params: number[], ...options}', `param_groups[${gi}]`, sg);
      if (sg.params.length !== groups[gi].params.length) {
        throw new ValueError(
          `loaded state dict's parameter group ${gi} has ${sg.params.length} parameters but ${this.name}'s group ${gi} has ${groups[gi].params.length}`,
        );
      }
      sg.params.forEach((id, j) => idMap.set(String(id), groups[gi].params[j]));
    });

    // Build every new group and state before touching ours, so a bad dict changes nothing.
    const newOptions = saved.map((sg, gi) => {
      const opts: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(groups[gi])) if (k !== 'params') opts[k] = v;
      for (const [k, v] of Object.entries(sg)) {
        if (k === 'params' || TORCH_ONLY_KEYS.has(k)) continue;
        const ck = snakeToCamel(k);
        if (!(ck in (this.defaults as object))) {
          throw new ValueError(`loaded state dict's parameter group ${gi} has an unknown option '${k}' for ${this.name}`);
        }
        opts[ck] = Array.isArray(v) ? [...v] : v;
      }
      this.validateOptions(opts as O, ` in loaded param group ${gi}`);
      return opts;
    });

    const newState = new Map<Tensor, ParamState>();
    const made: Tensor[] = [];
    try {
      for (const [id, s] of Object.entries(stateDict.state)) {
        const p = idMap.get(id);
        if (!p) throw new ValueError(`loaded state dict has state for parameter ${id}, which is in none of its param_groups`);
        if (!isPlainObject(s)) expected('an object of state values', `state[${id}]`, s);
        const out: ParamState = {};
        for (const [k, v] of Object.entries(s)) {
          if (isTensor(v)) {
            let t: Tensor;
            if (k === 'step') {
              t = v.clone();
            } else {
              const shape = v.shape;
              const ps = p.shape;
              if (shape.length !== ps.length || shape.some((d, i) => d !== ps[i])) {
                throw new ValueError(`loaded state for parameter ${id} has ${k} of shape [${shape}] but the parameter has shape [${ps}]`);
              }
              t = v.to({ dtype: p.isFloatingPoint() ? p.dtype : v.dtype, device: p.device, copy: true });
            }
            made.push(keep(t));
            out[k] = t;
          } else if (v === null || typeof v === 'number' || typeof v === 'boolean') {
            out[k] = v;
          } else {
            expected('a Tensor, a number, a boolean or null', `state[${id}].${k}`, v);
          }
        }
        newState.set(p, this.normalizeLoadedState(out, p));
      }
    } catch (e) {
      made.forEach((t) => t.dispose());
      throw e;
    }

    newOptions.forEach((opts, gi) => Object.assign(groups[gi], opts));
    this.state.clear();
    for (const [p, s] of newState) this.state.set(p, s);
  }

  /** Frees the optimizer's state buffers now (the optimizer must not step afterwards without reloading state). */
  dispose(): void {
    for (const s of this.state.values()) {
      for (const v of Object.values(s)) if (isTensor(v)) v.dispose();
    }
    this.state.clear();
  }

  /** PyTorch-style summary of the groups' options. */
  toString(): string {
    const lines = [`${this.name} (`];
    this.paramGroups.forEach((g, i) => {
      lines.push(`Parameter Group ${i}`);
      for (const k of Object.keys(g).filter((k) => k !== 'params').sort()) {
        const v = (g as Record<string, unknown>)[k];
        lines.push(`    ${k}: ${Array.isArray(v) ? `[${v.join(', ')}]` : String(v)}`);
      }
    });
    lines.push(')');
    return lines.join('\n');
  }
}

/** @internal Checks a finite number option, naming it in the message. */
export function checkOption(v: unknown, name: string, where: string, kind: 'number' | 'boolean' = 'number'): void {
  if (kind === 'boolean') {
    if (typeof v !== 'boolean') expected('a boolean', `${name}${where}`, v);
  } else if (typeof v !== 'number' || Number.isNaN(v)) {
    expected('a number', `${name}${where}`, v);
  }
}
