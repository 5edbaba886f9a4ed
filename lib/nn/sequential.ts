/**
 * Sequential: a chain of modules, each fed the previous one's output.
 */
import { isGradEnabled } from '../autograd';
import { expected, outOfRangeError } from '../errors';
import { checkInt, Tensor } from '../tensor';
import { AnyModule, Module } from './module';
import { Conv2d } from './conv';
import { Linear } from './linear';
import { MaxPool2d, AvgPool2d } from './pooling';
import { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from './activation';
import { Flatten } from './flatten';
import { Dropout } from './dropout';

/**
 * Runs its children in order; they are named "0", "1", ... (state-dict keys
 * `fc.0.weight`), or by the keys of a Map / object passed instead.
 * Shape: whatever the first child takes -> whatever the last returns.
 * @example
 * const block = new Sequential(new Conv2d(1, 32, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2));
 * block.call(x); block.at(-1); block.length; for (const layer of block) console.log(layer.toString());
 */
// Library layers whose outputs nothing else references.
const STATELESS_OUTPUT = new Set<unknown>([Conv2d, Linear, MaxPool2d, AvgPool2d, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Flatten, Dropout]);

// ... and of those, the ones whose output is always new memory, never a view of their input.
const FRESH_OUTPUT = new Set<unknown>([Conv2d, Linear, MaxPool2d, AvgPool2d, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax]);

// TORCHNODE_REUSE_INTERMEDIATES=0 turns off both the early frees and the in-place ReLU
// (read when torchnode loads; `npm run bench` uses it for its before/after figures).
const REUSE = process.env.TORCHNODE_REUSE_INTERMEDIATES !== '0';

function freesOutput(producer: AnyModule | null, out: Tensor): boolean {
  return REUSE && !!producer && STATELESS_OUTPUT.has(producer.constructor) && producer._forwardHooks.size === 0 && !out.isDisposed;
}

/**
 * Whether `m` is a plain ReLU that may overwrite `x`: x is new memory made by the
 * previous library layer, which this chain frees right after anyway, no hook can see
 * either, and autograd records nothing that would need x (no grad mode, or x does
 * not require grad). Then relu_ gives the same values without a second buffer: for
 * the seed CNN's 1000-image evaluation batches, 100 MB less to allocate and fault in.
 */
function reluInPlace(m: AnyModule, producer: AnyModule | null, x: Tensor): boolean {
  if (!(m instanceof ReLU) || m.constructor !== ReLU || m.inplace || m._forwardPreHooks.size || m._forwardHooks.size) return false;
  return !!producer && FRESH_OUTPUT.has(producer.constructor) && freesOutput(producer, x) && !(x.requiresGrad && isGradEnabled());
}

export class Sequential extends Module<[Tensor], Tensor> implements Iterable<AnyModule> {
  constructor(...modules: AnyModule[] | [Map<string, AnyModule> | Record<string, AnyModule>]) {
    super();
    const first = modules[0];
    if (modules.length === 1 && !(first instanceof Module) && first !== null && typeof first === 'object') {
      const entries = first instanceof Map ? [...first.entries()] : Object.entries(first);
      for (const [name, m] of entries) this.registerModule(name, m);
    } else {
      (modules as AnyModule[]).forEach((m, i) => {
        if (!(m instanceof Module)) expected('a Module', `modules[${i}]`, m);
        this.registerModule(String(i), m);
      });
    }
  }

  /** The number of children. */
  get length(): number {
    return this._modules.size;
  }

  private _index(i: number): number {
    checkInt(i, 'index');
    const n = this.length;
    const j = i < 0 ? i + n : i;
    if (j < 0 || j >= n) throw outOfRangeError(`index ${i} is out of range for Sequential of length ${n}`);
    return j;
  }

  /** The child at `index` (negative counts from the end), like `seq[i]`. */
  at<M extends AnyModule = AnyModule>(index: number): M {
    return [...this._modules.values()][this._index(index)] as M;
  }
  /** Alias of `at`. */
  get<M extends AnyModule = AnyModule>(index: number): M {
    return this.at<M>(index);
  }

  /** A new Sequential of children `start..end` (exclusive, negatives from the end), keeping their names, like `seq[a:b]`. */
  slice(start = 0, end = this.length): Sequential {
    const entries = [...this._modules.entries()].slice(start, end);
    return new Sequential(new Map(entries as [string, AnyModule][]));
  }

  /** Adds a module at the end (named by its position); returns this. */
  append(module: AnyModule): this {
    if (!(module instanceof Module)) expected('a Module', 'module', module);
    this.registerModule(String(this.length), module);
    return this;
  }

  /** Appends each module; returns this. */
  extend(modules: Iterable<AnyModule>): this {
    for (const m of modules) this.append(m);
    return this;
  }

  [Symbol.iterator](): Iterator<AnyModule> {
    return ([...this._modules.values()] as AnyModule[])[Symbol.iterator]();
  }

  /** Feeds `input` through every child in order (each via `call`, so errors name the layer). */
  forward(input: Tensor): Tensor {
    let x: unknown = input;
    for (const m of this._modules.values()) {
      if (!m) continue;
      const next = x !== input && x instanceof Tensor && reluInPlace(m, this._lastProducer, x) ? x.relu_() : m.call(x);
      // Free each intermediate output as soon as the next layer has consumed it, as
      // Python's reference counting does: otherwise every activation of the chain
      // stays alive until the caller's tidy() ends (for a 1000-image evaluation of
      // the seed CNN, 450 MB at once instead of 200 MB). Only outputs made by the
      // library's own layers, which keep no reference to them, and only when no hook
      // could have kept them. Autograd holds its own references to what it saves.
      if (x !== input && x !== next && x instanceof Tensor && freesOutput(this._lastProducer, x)) x.dispose();
      this._lastProducer = m;
      x = next;
    }
    this._lastProducer = null;
    return x as Tensor;
  }

  private _lastProducer: AnyModule | null = null;
}
