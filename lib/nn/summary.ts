/**
 * summary(): a torchinfo-style table of a model's layers, output shapes and parameter
 * counts, from one forward pass on zeros. It is also the quickest way to find where a
 * model's shapes stop fitting (the error names the layer and both sizes).
 */
import { noGrad } from '../autograd';
import { checkKeys, expected, TorchError } from '../errors';
import { tidy } from '../memory';
import { checkDtype, checkShape, DeviceType, DType, Tensor, zeros } from '../tensor';
import { Conv2d } from './conv';
import { convOutputSize, IntOrPair, pair } from './functional';
import { AnyModule, ModuleError, RemovableHandle } from './module';
import { AvgPool2d, MaxPool2d } from './pooling';

/** One output's shape, or a list of them for modules that return several tensors; null if not a tensor or not run. */
export type ShapeInfo = number[] | ShapeInfo[] | null;

export interface LayerSummary {
  /** Qualified name, as in the state dict (`layer1.0`). */
  name: string;
  /** Class name (`Conv2d`). */
  type: string;
  /** Nesting depth below the model (children of the model are 1). */
  depth: number;
  /** Running index among layers of the same depth (torchinfo's `depth-idx`). */
  index: number;
  /** Whether the layer has no children. */
  leaf: boolean;
  /** Shape of the first input of its last call. */
  inputShape: ShapeInfo;
  outputShape: ShapeInfo;
  /** Parameters held directly by this layer (not its children). */
  params: number;
  /** Of those, the ones requiring grad. */
  trainableParams: number;
  /** All its own parameters require grad (true when it has none). */
  trainable: boolean;
}

export interface ModelSummary {
  model: string;
  /** Every submodule in definition order (the model itself is not a row). */
  layers: LayerSummary[];
  inputShape: number[] | number[][];
  outputShape: ShapeInfo;
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
  /** Bytes held by the parameters. */
  paramsBytes: number;
  /** The torchinfo-like table. */
  toString(): string;
}

export interface SummaryOptions {
  /** Where to run the forward (default: where the model's first parameter is, else cpu). */
  device?: DeviceType;
  /** One dtype per input (default float32). */
  dtypes?: DType[];
}

const ELEMENT_BYTES: Record<string, number> = { float32: 4, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1, float16: 2, bfloat16: 2 };

function shapeOf(v: unknown): ShapeInfo {
  if (v instanceof Tensor) return v.isDisposed ? null : v.shape;
  if (Array.isArray(v)) return v.map(shapeOf);
  return null;
}

function shapeText(s: ShapeInfo): string {
  if (s === null) return '--';
  if (s.length && s.every((x) => typeof x === 'number')) return `[${s.join(', ')}]`;
  if (s.length === 0) return '[]';
  return s.map((x) => shapeText(x as ShapeInfo)).join(', ');
}

function commas(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * Runs `model` once on zeros of `inputShape` (one shape, or one per input) in eval mode
 * without gradients, records every layer's output shape and parameter count, and
 * restores each module's training flag afterwards.
 * @example
 * console.log(summary(new CNN(), [1, 1, 28, 28]).toString()); // ... Total params: 333,526
 */
export function summary(model: AnyModule, inputShape: number[] | number[][], options: SummaryOptions = {}): ModelSummary {
  if (!model || typeof (model as AnyModule).namedModules !== 'function') expected('a Module', 'model', model);
  checkKeys(options, ['device', 'dtypes'], 'nn.summary');
  if (!Array.isArray(inputShape) || inputShape.length === 0) expected('an input shape or a list of input shapes', 'inputShape', inputShape);
  const multi = Array.isArray(inputShape[0]);
  const shapes = (multi ? (inputShape as number[][]) : [inputShape as number[]]).map((s, i) => checkShape(s, `inputShape[${i}]`));
  const dtypes = options.dtypes ?? [];
  if (!Array.isArray(dtypes)) expected('an array of dtypes', 'dtypes', dtypes);
  dtypes.forEach((d, i) => checkDtype(d, `dtypes[${i}]`));
  const params = model.parameters();
  const device = options.device ?? (params.length ? params[0].device : 'cpu');

  const named = model.namedModules();
  const records = new Map<AnyModule, { input: ShapeInfo; output: ShapeInfo }>();
  let lastDone: [string, ShapeInfo] | null = null;
  const nameOf = new Map(named.map(([n, m]) => [m, n]));
  const modes = named.map(([, m]) => [m, m.training] as const);
  const handles: RemovableHandle[] = [];
  let output: ShapeInfo = null;
  try {
    model.eval();
    for (const [, m] of named) {
      handles.push(
        m.registerForwardPreHook((mod, args) => {
          records.set(mod, { input: shapeOf(args[0]), output: null });
        }),
        m.registerForwardHook((mod, _args, out) => {
          const r = records.get(mod);
          const s = shapeOf(out);
          if (r) r.output = s;
          lastDone = [nameOf.get(mod) || model.constructor.name, s];
        }),
      );
    }
    output = tidy(() =>
      noGrad(() => {
        const xs = shapes.map((s, i) => zeros(s, { dtype: dtypes[i] ?? 'float32', device }));
        return shapeOf(model.call(...xs));
      }),
    );
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    const inputs = shapes.map((s) => `[${s.join(', ')}]`).join(', ');
    const done = lastDone as [string, ShapeInfo] | null;
    const before = done ? ` (last output before the failure: ${done[0]} -> ${shapeText(done[1])})` : '';
    const err = new TorchError(`summary of ${model.constructor.name} on input ${inputs} failed at ${e.message}${before}`);
    (err as Error & { cause?: unknown }).cause = e;
    if ('modulePath' in e) (err as unknown as ModuleError).modulePath = (e as ModuleError).modulePath;
    throw err;
  } finally {
    for (const hd of handles) hd.remove();
    for (const [m, t] of modes) m.training = t;
  }

  const counters = new Map<number, number>();
  const layers: LayerSummary[] = [];
  for (const [name, m] of named) {
    if (name === '') continue;
    const depth = name.split('.').length;
    const index = (counters.get(depth) ?? 0) + 1;
    counters.set(depth, index);
    const own = m.parameters(false);
    const p = own.reduce((n, t) => n + t.numel(), 0);
    const tp = own.filter((t) => t.requiresGrad).reduce((n, t) => n + t.numel(), 0);
    const r = records.get(m);
    layers.push({
      name, type: m.constructor.name, depth, index, leaf: m.children().length === 0,
      inputShape: r?.input ?? null, outputShape: r?.output ?? null, params: p, trainableParams: tp, trainable: tp === p,
    });
  }
  const totalParams = params.reduce((n, t) => n + t.numel(), 0);
  const trainableParams = params.filter((t) => t.requiresGrad).reduce((n, t) => n + t.numel(), 0);
  const paramsBytes = params.reduce((n, t) => n + t.numel() * (ELEMENT_BYTES[t.dtype] ?? 4), 0);
  const rootParams = model.parameters(false).reduce((n, t) => n + t.numel(), 0);
  const modelName = model.constructor.name;

  const result: ModelSummary = {
    model: modelName,
    layers,
    inputShape: multi ? shapes : shapes[0],
    outputShape: output,
    totalParams,
    trainableParams,
    nonTrainableParams: totalParams - trainableParams,
    paramsBytes,
    toString(): string {
      const rows: [string, string, string][] = [[modelName, shapeText(output), rootParams ? commas(rootParams) : '--']];
      for (const l of layers) {
        const lead = l.depth === 1 ? '├─' : '│    '.repeat(l.depth - 1) + '└─';
        const varName = l.name.slice(l.name.lastIndexOf('.') + 1);
        rows.push([`${lead}${l.type} (${varName}): ${l.depth}-${l.index}`, shapeText(l.outputShape), l.params ? commas(l.params) : '--']);
      }
      const header: [string, string, string] = ['Layer (type (var_name):depth-idx)', 'Output Shape', 'Param #'];
      const w0 = Math.max(40, ...rows.map((r) => r[0].length + 1), header[0].length + 1);
      const w1 = Math.max(25, ...rows.map((r) => r[1].length + 1));
      const line = (r: [string, string, string]) => (r[0].padEnd(w0) + r[1].padEnd(w1) + r[2]).trimEnd();
      const rule = '='.repeat(w0 + w1 + 15);
      const mb = (b: number) => (b / 1e6).toFixed(2);
      const inputBytes = shapes.reduce((n, s, i) => n + s.reduce((a, b) => a * b, 1) * (ELEMENT_BYTES[dtypes[i] ?? 'float32'] ?? 4), 0);
      return [
        rule, line(header), rule, ...rows.map(line), rule,
        `Total params: ${commas(totalParams)}`,
        `Trainable params: ${commas(trainableParams)}`,
        `Non-trainable params: ${commas(totalParams - trainableParams)}`,
        rule,
        `Input size (MB): ${mb(inputBytes)}`,
        `Params size (MB): ${mb(paramsBytes)}`,
        rule,
      ].join('\n');
    },
  };
  return result;
}

/**
 * The feature-map size `[H_out, W_out]` after a conv or pooling layer, or after a
 * kernel with options (stride then defaults to 1, as for a convolution), by the
 * seed's formula `O = floor((I - K + 2P) / S + 1)` as `F.convOutputSize` implements
 * it (dilation and ceilMode included).
 * @example featureMapSize([28, 28], new MaxPool2d(2)) // [14, 14]
 */
export function featureMapSize(size: number | [number, number], layer: Conv2d | MaxPool2d | AvgPool2d): [number, number];
export function featureMapSize(
  size: number | [number, number],
  kernelSize: IntOrPair,
  options?: { stride?: IntOrPair; padding?: IntOrPair; dilation?: IntOrPair; ceilMode?: boolean },
): [number, number];
export function featureMapSize(
  size: number | [number, number],
  layerOrKernel: Conv2d | MaxPool2d | AvgPool2d | IntOrPair,
  options: { stride?: IntOrPair; padding?: IntOrPair; dilation?: IntOrPair; ceilMode?: boolean } = {},
): [number, number] {
  checkKeys(options, ['stride', 'padding', 'dilation', 'ceilMode'], 'nn.featureMapSize');
  const hw = pair(size, 'size', 0);
  let k: [number, number];
  let o = options;
  if (layerOrKernel instanceof Conv2d) {
    if (layerOrKernel.padding === 'same') return hw;
    k = layerOrKernel.kernelSize;
    o = { stride: layerOrKernel.stride, padding: layerOrKernel.padding === 'valid' ? 0 : layerOrKernel.padding, dilation: layerOrKernel.dilation };
  } else if (layerOrKernel instanceof MaxPool2d) {
    k = pair(layerOrKernel.kernelSize, 'kernelSize', 1);
    o = { stride: layerOrKernel.stride, padding: layerOrKernel.padding, dilation: layerOrKernel.dilation, ceilMode: layerOrKernel.ceilMode };
  } else if (layerOrKernel instanceof AvgPool2d) {
    k = pair(layerOrKernel.kernelSize, 'kernelSize', 1);
    o = { stride: layerOrKernel.stride, padding: layerOrKernel.padding, ceilMode: layerOrKernel.ceilMode };
  } else {
    k = pair(layerOrKernel as IntOrPair, 'kernelSize', 1);
  }
  const s = pair(o.stride ?? 1, 'stride', 1);
  const p = pair(o.padding ?? 0, 'padding', 0);
  const d = pair(o.dilation ?? 1, 'dilation', 1);
  const ceilMode = !!o.ceilMode;
  return [0, 1].map((i) => convOutputSize(hw[i], k[i], { stride: s[i], padding: p[i], dilation: d[i], ceilMode })) as [number, number];
}
