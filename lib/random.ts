/**
 * Random numbers: the global generator (manualSeed) and Generator objects.
 * Both use ATen's CPU generator, so the draws equal PyTorch's for the same seed.
 */
import { N, NativeGenerator } from './native';
import { expected } from './errors';
import { Tensor, wrap, h } from './tensor';

function checkSeed(seed: unknown): number | bigint {
  if (typeof seed === 'bigint') return seed;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) expected('an integer or bigint', 'seed', seed);
  return seed;
}

/**
 * Seeds the global generator (and every CUDA device's), like `torch.manual_seed`.
 * @example manualSeed(0); rand(3); // the same values as PyTorch after torch.manual_seed(0)
 */
export function manualSeed(seed: number | bigint): void {
  const s = checkSeed(seed);
  N.manualSeed(s);
  N.cudaManualSeedAll(s);
}

/**
 * A random-number generator of its own, like `torch.Generator()`.
 * @example const g = new Generator().manualSeed(42); randperm(10, { generator: g });
 */
export class Generator {
  /** @internal */
  readonly _g: NativeGenerator;

  constructor(options: { device?: 'cpu' } = {}) {
    if (options.device !== undefined && options.device !== 'cpu') expected("'cpu'", 'device', options.device);
    this._g = new N.NativeGenerator();
  }

  /** @internal The global default generator. */
  static defaultGenerator(): Generator {
    const g = Object.create(Generator.prototype) as { _g: NativeGenerator };
    g._g = new N.NativeGenerator(true);
    return g as unknown as Generator;
  }

  /** Seeds this generator; returns it. */
  manualSeed(seed: number | bigint): this {
    this._g.manualSeed(checkSeed(seed));
    return this;
  }
  /** The seed last set. */
  initialSeed(): bigint {
    return this._g.initialSeed();
  }
  /** Seeds from a non-deterministic source; returns the seed. */
  seed(): bigint {
    return this._g.seed();
  }
  /** The generator's full state as a uint8 tensor. */
  getState(): Tensor {
    return wrap(this._g.getState());
  }
  setState(state: Tensor): this {
    this._g.setState(h(state, 'state'));
    return this;
  }
}

/** The global generator that manualSeed() seeds. */
export const defaultGenerator: Generator = Generator.defaultGenerator();

/** The seed of the global generator. */
export function initialSeed(): bigint {
  return defaultGenerator.initialSeed();
}
