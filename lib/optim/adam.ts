/**
 * Adam (and AMSGrad), op for op PyTorch 1.13's `_single_tensor_adam`, including its
 * float32 tensor step counter and its double-precision bias corrections.
 */
import { expected, argTypeError, outOfRangeError } from '../errors';
import { keep } from '../memory';
import { full, Tensor } from '../tensor';
import { zerosLike } from '../ops/generated';
import { checkOption, Optimizer, ParamGroup, Params, ParamState, pyPow, torchAtLeast } from './optimizer';

export interface AdamOptions {
  /** Learning rate. Default 0.001. */
  lr?: number;
  /** Decay rates of the running averages of the gradient and its square. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to the denominator for numerical stability. Default 1e-8. */
  eps?: number;
  /** L2 penalty added to the gradient (not AdamW's decoupled decay). Default 0. */
  weightDecay?: number;
  /** Use the AMSGrad variant (the max of past squared-gradient averages). Default false. */
  amsgrad?: boolean;
  /** Maximize the objective instead of minimizing. Default false. */
  maximize?: boolean;
}

type AdamGroupOptions = Required<AdamOptions>;

/**
 * Adam, like `torch.optim.Adam`. Per parameter, with `t` the step count:
 * `m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`.
 * @example
 * const opt = new Adam(model.parameters(), { lr: 0.01 });
 * opt.zeroGrad(); loss.backward(); opt.step();
 */
// The engine's own formulas (see TORCH_VERSION in ./optimizer).
const LERP_FIRST_MOMENT = torchAtLeast(2, 0);
const POW_HALF_SQRT = torchAtLeast(2, 0);

export class Adam extends Optimizer<AdamGroupOptions> {
  constructor(params: Params<AdamGroupOptions>, options: AdamOptions = {}) {
    if (options === null || typeof options !== 'object') expected('an options object', 'options', options);
    const defaults: AdamGroupOptions = {
      lr: options.lr ?? 1e-3,
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
      amsgrad: options.amsgrad ?? false,
      maximize: options.maximize ?? false,
    };
    for (const k of Object.keys(options)) {
      if (!(k in defaults)) throw argTypeError(`Unknown option '${k}' for Adam (known: ${Object.keys(defaults).join(', ')})`);
    }
    Adam.check(defaults, '');
    defaults.betas = [defaults.betas[0], defaults.betas[1]];
    super(params, defaults);
  }

  private static check(o: AdamGroupOptions, where: string): void {
    checkOption(o.lr, 'lr', where);
    if (!(o.lr >= 0)) throw outOfRangeError(`Invalid learning rate${where}: ${o.lr} (lr must be >= 0)`);
    checkOption(o.eps, 'eps', where);
    if (!(o.eps >= 0)) throw outOfRangeError(`Invalid epsilon value${where}: ${o.eps} (eps must be >= 0)`);
    const b = o.betas as unknown;
    if (!Array.isArray(b) || b.length !== 2) expected('a pair of numbers [beta1, beta2]', `betas${where}`, b);
    for (const i of [0, 1]) {
      checkOption(b[i], `betas[${i}]`, where);
      if (!(b[i] >= 0 && b[i] < 1)) {
        throw outOfRangeError(`Invalid beta parameter at index ${i}${where}: ${b[i]} (betas[${i}] must be in [0, 1))`);
      }
    }
    checkOption(o.weightDecay, 'weightDecay', where);
    if (!(o.weightDecay >= 0)) throw outOfRangeError(`Invalid weight_decay value${where}: ${o.weightDecay} (weightDecay must be >= 0)`);
    checkOption(o.amsgrad, 'amsgrad', where, 'boolean');
    checkOption(o.maximize, 'maximize', where, 'boolean');
  }

  protected validateOptions(o: AdamGroupOptions, where: string): void {
    Adam.check(o, where);
  }

  protected override torchGroupExtras(): Record<string, unknown> {
    // 1.13's default is fused=False; 2.x's is fused=None (chosen per device).
    return { foreach: null, capturable: false, differentiable: false, fused: torchAtLeast(2, 0) ? null : false };
  }

  protected override normalizeLoadedState(state: ParamState): ParamState {
    // Checkpoints from before PyTorch 1.12 store step as a number; 1.13 turns it into a float32 tensor.
    if (typeof state.step === 'number') state.step = keep(full([], state.step, { dtype: 'float32' }));
    return state;
  }

  protected update(group: ParamGroup<AdamGroupOptions>): void {
    const { lr, eps, weightDecay, amsgrad, maximize } = group;
    const [beta1, beta2] = group.betas;
    // Parameters usually share their step count: compute each bias correction once per step.
    const powCache = new Map<number, [number, number]>();
    for (const param of group.params) {
      let grad = param.grad;
      if (grad === null) continue;
      const state = this.stateOf(param);
      if (Object.keys(state).length === 0) {
        state.step = keep(full([], 0, { dtype: 'float32' }));
        state.exp_avg = keep(zerosLike(param));
        state.exp_avg_sq = keep(zerosLike(param));
        if (amsgrad) state.max_exp_avg_sq = keep(zerosLike(param));
      }
      if (maximize) grad = grad.neg();
      const expAvg = state.exp_avg as Tensor;
      const expAvgSq = state.exp_avg_sq as Tensor;
      const stepT = state.step as Tensor;

      stepT.add_(1);
      if (weightDecay !== 0) grad = grad.add(param, { alpha: weightDecay });
      // 1.13: exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1); 2.x: exp_avg.lerp_(grad, 1 - beta1).
      if (LERP_FIRST_MOMENT) expAvg.lerp_(grad, 1 - beta1);
      else expAvg.mul_(beta1).add_(grad, { alpha: 1 - beta1 });
      expAvgSq.mul_(beta2).addcmul_(grad, grad, { value: 1 - beta2 });

      const step = stepT.item() as number;
      let corrections = powCache.get(step);
      if (!corrections) {
        const biasCorrection1 = 1 - pyPow(beta1, step);
        const biasCorrection2 = 1 - pyPow(beta2, step);
        // 1.13: math.sqrt(bias_correction2); 2.x: bias_correction2 ** 0.5 (C pow, which
        // differs from sqrt in the last bit for about 1 in 700 steps).
        corrections = [biasCorrection1, POW_HALF_SQRT ? pyPow(biasCorrection2, 0.5) : Math.sqrt(biasCorrection2)];
        powCache.set(step, corrections);
      }
      const [biasCorrection1, biasCorrection2Sqrt] = corrections;
      const stepSize = lr / biasCorrection1;

      let denom: Tensor;
      if (amsgrad) {
        let maxSq = state.max_exp_avg_sq as Tensor | undefined;
        if (maxSq == null) {
          // amsgrad switched on after the state was made: PyTorch would fail on the missing key; start from zeros.
          maxSq = keep(zerosLike(param));
          state.max_exp_avg_sq = maxSq;
        }
        // torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        const m = maxSq.maximum(expAvgSq);
        maxSq.copy_(m);
        m.dispose();
        denom = maxSq.sqrt().div(biasCorrection2Sqrt).add_(eps);
      } else {
        denom = expAvgSq.sqrt().div(biasCorrection2Sqrt).add_(eps);
      }
      param.addcdiv_(expAvg, denom, { value: -stepSize });
    }
  }
}
