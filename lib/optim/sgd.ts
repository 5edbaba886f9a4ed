/**
 * Stochastic gradient descent (optionally with momentum, dampening, Nesterov and
 * weight decay), op for op PyTorch 1.13's `_single_tensor_sgd`.
 */
import { expected, argTypeError, outOfRangeError } from '../errors';
import { keep } from '../memory';
import { Tensor } from '../tensor';
import { checkOption, Optimizer, ParamGroup, Params, ParamState, torchAtLeast } from './optimizer';

export interface SGDOptions {
  /** Learning rate (required, as in PyTorch 1.13). */
  lr: number;
  /** Momentum factor. Default 0. */
  momentum?: number;
  /** Dampening for momentum. Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient. Default 0. */
  weightDecay?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov?: boolean;
  /** Maximize the objective instead of minimizing. Default false. */
  maximize?: boolean;
}

type SGDGroupOptions = Required<SGDOptions>;

/**
 * SGD, like `torch.optim.SGD`. With momentum the update is
 * `buf = momentum * buf + (1 - dampening) * g; p -= lr * (nesterov ? g + momentum * buf : buf)`.
 * @example
 * const opt = new SGD([w, b], { lr: 0.1, momentum: 0.9 });
 * opt.zeroGrad(); loss.backward(); opt.step();
 */
export class SGD extends Optimizer<SGDGroupOptions> {
  constructor(params: Params<SGDGroupOptions>, options: SGDOptions) {
    if (options === null || typeof options !== 'object') expected('an options object {lr, ...}', 'options', options);
    const defaults = {
      lr: options.lr,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      weightDecay: options.weightDecay ?? 0,
      nesterov: options.nesterov ?? false,
      maximize: options.maximize ?? false,
    } as SGDGroupOptions;
    for (const k of Object.keys(options)) {
      if (!(k in defaults)) throw argTypeError(`Unknown option '${k}' for SGD (known: ${Object.keys(defaults).join(', ')})`);
    }
    SGD.check(defaults, '', true);
    super(params, defaults);
  }

  private static check(o: SGDGroupOptions, where: string, lrOptional: boolean): void {
    if (!(lrOptional && o.lr === undefined)) {
      checkOption(o.lr, 'lr', where);
      if (o.lr < 0) throw outOfRangeError(`Invalid learning rate${where}: ${o.lr} (lr must be >= 0)`);
    }
    checkOption(o.momentum, 'momentum', where);
    if (o.momentum < 0) throw outOfRangeError(`Invalid momentum value${where}: ${o.momentum} (momentum must be >= 0)`);
    checkOption(o.dampening, 'dampening', where);
    checkOption(o.weightDecay, 'weightDecay', where);
    if (o.weightDecay < 0) throw outOfRangeError(`Invalid weight_decay value${where}: ${o.weightDecay} (weightDecay must be >= 0)`);
    checkOption(o.nesterov, 'nesterov', where, 'boolean');
    checkOption(o.maximize, 'maximize', where, 'boolean');
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw outOfRangeError(
        `Nesterov momentum requires a momentum and zero dampening${where} (got momentum=${o.momentum}, dampening=${o.dampening})`,
      );
    }
  }

  protected validateOptions(o: SGDGroupOptions, where: string): void {
    SGD.check(o, where, false);
  }

  protected update(group: ParamGroup<SGDGroupOptions>): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    for (const param of group.params) {
      const grad = param.grad;
      if (grad === null) continue;
      // 2.x keeps no state at all for a parameter when momentum is 0.
      const state: ParamState | null = momentum !== 0 || !torchAtLeast(2, 0) ? this.stateOf(param) : null;
      let dp: Tensor = maximize ? grad.neg() : grad;
      if (weightDecay !== 0) dp = dp.add(param, { alpha: weightDecay });
      if (momentum !== 0 && state) {
        let buf = state.momentum_buffer as Tensor | null | undefined;
        if (buf == null) {
          buf = keep(dp.clone().detach());
          state.momentum_buffer = buf;
        } else {
          buf.mul_(momentum).add_(dp, { alpha: 1 - dampening });
        }
        dp = nesterov ? dp.add(buf, { alpha: momentum }) : buf;
      } else if (state) {
        // 1.13 records the (absent) buffer too, so state dicts have the same keys;
        // 2.x stores momentum buffers only when momentum != 0.
        state.momentum_buffer = null;
      }
      param.add_(dp, { alpha: -lr });
    }
  }
}
