/**
 * Random numbers: the global generator (manualSeed) and Generator objects.
 * Both use ATen's CPU generator, so the draws equal PyTorch's for the same seed.
 */
import { N, NativeGenerator } from './native';
import { checkKeys, expected } from './errors';
import { Tensor, wrap, h, setThreadGenerator, getThreadGenerator } from './tensor';

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
  const own = getThreadGenerator();
  if (own) {
    (own as Generator).manualSeed(s);
    return;
  }
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
    checkKeys(options, ['device'], 'Generator');
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

/** ATen's process-wide default generator (what manualSeed() seeds unless this thread has its own). */
export const defaultGenerator: Generator = Generator.defaultGenerator();

/**
 * Gives this thread a generator of its own: random ops and manualSeed() here use
 * it instead of the process-wide one, so concurrent jobs in worker threads never
 * share a generator (training workers do this). Pass null to go back.
 * A fresh Generator seeded with s draws exactly what the global one does after manualSeed(s).
 */
export function useThreadGenerator(g: Generator | null): void {
  if (g !== null && !(g instanceof Generator)) expected('a Generator or null', 'generator', g);
  setThreadGenerator(g);
}

/** The generator random ops on this thread use by default. */
export function currentGenerator(): Generator {
  return (getThreadGenerator() as Generator | null) ?? defaultGenerator;
}

/** The seed of the global generator. */
export function initialSeed(): bigint {
  return defaultGenerator.initialSeed();
}
