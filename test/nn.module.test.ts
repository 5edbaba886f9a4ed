/**
 * nn.Module, Sequential and the layers: registration, traversal, state dicts,
 * modes, conversion, hooks, error annotation and PyTorch's reprs.
 */
import * as torch from '../lib';
import { Tensor, TorchError } from '../lib';
import * as nn from '../lib/nn';
import { Module, Parameter } from '../lib/nn';
import { catchError } from './helpers';

const CNN_KEYS = [
  'layer1.0.weight', 'layer1.0.bias', 'layer2.0.weight', 'layer2.0.bias',
  'fc.0.weight', 'fc.0.bias', 'fc.2.weight', 'fc.2.bias',
];

// print(CNN()) in PyTorch 1.13 (checked with /usr/bin/python3).
const CNN_REPR = `CNN(
  (layer1): Sequential(
    (0): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    (1): ReLU()
    (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  )
  (layer2): Sequential(
    (0): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    (1): ReLU()
    (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  )
  (fc): Sequential(
    (0): Linear(in_features=3136, out_features=100, bias=True)
    (1): ReLU()
    (2): Linear(in_features=100, out_features=10, bias=True)
  )
)`;

/** A module with a parameter, both kinds of buffer and a child, to check ordering. */
class WithBuffers extends Module {
  readonly scale: Parameter;
  readonly running: Tensor;
  readonly scratch: Tensor;
  readonly inner: nn.Linear;
  constructor() {
    super();
    this.scale = this.registerParameter('scale', torch.ones(2));
    this.running = this.registerBuffer('running', torch.zeros(2));
    this.scratch = this.registerBuffer('scratch', torch.zeros(3), false);
    this.inner = this.registerModule('inner', new nn.Linear(2, 2));
  }
  forward(x: Tensor): Tensor {
    return this.inner.call(x.mul(this.scale));
  }
}

describe('nn.Module: throw cases', () => {
  test('registration checks names, types and clashes', () => {
    class M extends Module {
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    const m = new M();
    expect(() => m.registerParameter('w', [1, 2] as any)).toThrow(
      new TypeError("Expected a Parameter, a Tensor or null for parameter 'w' but received [1, 2]"),
    );
    expect(() => m.registerParameter('a.b', null)).toThrow(/can't contain "\."/);
    expect(() => m.registerBuffer('', null)).toThrow(/can't be empty/);
    expect(() => m.registerModule('child', {} as any)).toThrow(/Expected a Module or null for module 'child' but received an object/);
    m.registerParameter('w', torch.ones(1));
    expect(() => m.registerBuffer('w', torch.ones(1))).toThrow(/attribute 'w' already exists/);
    expect(() => m.registerModule('forward', new nn.ReLU())).toThrow(/attribute 'forward' already exists/);
    expect(() => m.registerModule('training', new nn.ReLU())).toThrow(/attribute 'training' already exists/);
    expect(() => ((m as any).w = torch.ones(1))).toThrow(/cannot assign a Tensor as parameter 'w' \(Parameter or null expected\)/);
  });

  test('layer constructors check their arguments', () => {
    expect(() => new nn.Conv2d('1' as any, 32, 3)).toThrow(new TypeError("Expected an integer >= 1 for inChannels but received '1'"));
    expect(() => new nn.Conv2d(1, 0, 3)).toThrow(/Expected an integer >= 1 for outChannels but received 0/);
    expect(() => new nn.Conv2d(1, 2, [3, 0] as any)).toThrow(/kernelSize\[1\]/);
    expect(() => new nn.Conv2d(3, 6, 3, { groups: 2 })).toThrow(/Expected an integer divisible by groups \(2\) for inChannels but received 3/);
    expect(() => new nn.Conv2d(1, 2, 3, { padding: 'full' as any })).toThrow(/Expected an integer, a pair of integers, 'same' or 'valid' for padding but received 'full'/);
    expect(() => new nn.Conv2d(1, 2, 3, { padding: 'same', stride: 2 })).toThrow(/padding='same' is not supported for strided convolutions/);
    expect(() => new nn.Conv2d(1, 2, 3, { paddingMode: 'reflect' as any })).toThrow(/paddingMode but received 'reflect'/);
    expect(() => new nn.Conv2d(1, 2, 3, { bias: 1 as any })).toThrow(/Expected a boolean for bias but received 1/);
    expect(() => new nn.Linear(3.5, 2)).toThrow(/Expected a non-negative integer for inFeatures but received 3.5/);
    expect(() => new nn.MaxPool2d(0)).toThrow(/kernelSize\[0\] but received 0/);
    expect(() => new nn.MaxPool2d(2, { padding: 2 })).toThrow(/Expected a padding at most half the kernel size \(2\) for padding but received 2/);
    expect(() => new nn.AvgPool2d(2, { divisorOverride: 0 })).toThrow(/divisorOverride/);
    expect(() => new nn.Dropout(1.5)).toThrow(/Expected a probability in \[0, 1\] for p but received 1.5/);
    expect(() => new nn.Flatten({ startDim: 'a' as any })).toThrow(/startDim/);
    expect(() => new nn.CrossEntropyLoss({ reduction: 'avg' as any })).toThrow(/Expected 'mean', 'sum' or 'none' for reduction but received 'avg'/);
    expect(() => new nn.CrossEntropyLoss({ weight: [1, 2] as any })).toThrow(/Expected a Tensor or null for weight/);
    expect(() => new nn.Sequential(new nn.ReLU(), 3 as any)).toThrow(/Expected a Module for modules\[1\] but received 3/);
  });

  test('Sequential indexing out of range', () => {
    const s = new nn.Sequential(new nn.ReLU(), new nn.ReLU());
    expect(() => s.at(2)).toThrow(new RangeError('index 2 is out of range for Sequential of length 2'));
    expect(() => s.at(-3)).toThrow(RangeError);
    expect(() => s.at(0.5)).toThrow(TypeError);
  });

  test('a shape error names the layer path once, with the layer and both sizes', () => {
    const model = new nn.CNN();
    const e = catchError(() => model.call(torch.zeros(1, 1, 32, 32)));
    expect(e).toBeInstanceOf(TorchError);
    expect(e.message).toBe(
      'fc.0 (Linear(in_features=3136, out_features=100, bias=True)): linear: input [1, 4096] has 4096 features in its last dim but weight [100, 3136] expects 3136',
    );
    expect((e as nn.ModuleError).modulePath).toBe('fc.0');
    expect(e.stack).toContain('fc.0 (Linear');

    const seq = new nn.Sequential(new nn.Sequential(new nn.Conv2d(3, 4, 3)));
    const e2 = catchError(() => seq.call(torch.zeros(1, 1, 8, 8)));
    expect(e2.message).toBe(
      '0.0 (Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1))): conv2d: input [1, 1, 8, 8] has 1 channels but weight [4, 3, 3, 3] with groups=1 expects 3',
    );
    // called directly, the layer names itself
    const e3 = catchError(() => new nn.Linear(3, 2).call(torch.zeros(2, 4)));
    expect(e3.message).toMatch(/^Linear\(in_features=3, out_features=2, bias=True\): linear: input \[2, 4\] has 4 features/);
    // forward() is the bare function: no annotation
    const e4 = catchError(() => new nn.Linear(3, 2).forward(torch.zeros(2, 4)));
    expect(e4.message).toMatch(/^linear: input/);
  });

  test('loadStateDict (strict) throws one error listing every problem, and copies nothing', () => {
    torch.manualSeed(0);
    const model = new nn.CNN();
    const before = model.fc.at<nn.Linear>(2).weight.clone();
    const sd = model.stateDict();
    sd.delete('fc.0.bias');
    sd.delete('layer1.0.bias');
    sd.set('fc.1.weight', torch.zeros(3));
    sd.set('fc.0.weight', torch.zeros(100, 3200));
    sd.set('fc.2.weight', torch.zeros(10, 100));
    expect(() => model.loadStateDict(sd)).toThrow(
      new TorchError(
        'Error(s) in loading state_dict for CNN:\n' +
          '\tMissing key(s) in state_dict: "layer1.0.bias", "fc.0.bias".\n' +
          '\tUnexpected key(s) in state_dict: "fc.1.weight".\n' +
          '\tsize mismatch for fc.0.weight: copying a param with shape [100, 3200] from checkpoint, the shape in current model is [100, 3136].',
      ),
    );
    expect(model.fc.at<nn.Linear>(2).weight.equal(before)).toBe(true);
    // non-strict: key problems are reported, not thrown; a size mismatch still throws
    expect(() => model.loadStateDict(sd, { strict: false })).toThrow(/^Error\(s\) in loading state_dict for CNN:\n\tsize mismatch for fc\.0\.weight/);
    expect(() => model.loadStateDict({ 'fc.2.bias': 'x' as any }, { strict: false })).toThrow(/expected a Tensor from checkpoint but received 'x'/);
    expect(() => model.loadStateDict([] as any)).toThrow(/Expected a Map or an object of Tensors for stateDict/);
  });

  test('to() accepts floating dtypes and devices only', () => {
    const m = new nn.Linear(2, 2);
    expect(() => m.to('int64')).toThrow(/only accepts floating point dtypes, but got dtype=int64/);
    expect(() => m.to('gpu' as any)).toThrow(/Expected 'cpu', 'cuda' or 'cuda:N' for target but received 'gpu'/);
  });
});

describe('nn.Module', () => {
  test('the CNN registers everything in definition order with PyTorch keys', () => {
    torch.manualSeed(0);
    const model = new nn.CNN();
    expect(model.namedParameters().map(([k]) => k)).toEqual(CNN_KEYS);
    expect([...model.stateDict().keys()]).toEqual(CNN_KEYS);
    expect(model.parameters()).toHaveLength(8);
    expect(model.numParameters()).toBe(333526);
    expect(model.namedModules().map(([k, m]) => `${k}:${m.constructor.name}`)).toEqual([
      ':CNN', 'layer1:Sequential', 'layer1.0:Conv2d', 'layer1.1:ReLU', 'layer1.2:MaxPool2d',
      'layer2:Sequential', 'layer2.0:Conv2d', 'layer2.1:ReLU', 'layer2.2:MaxPool2d',
      'fc:Sequential', 'fc.0:Linear', 'fc.1:ReLU', 'fc.2:Linear',
    ]);
    expect(model.namedChildren().map(([k]) => k)).toEqual(['layer1', 'layer2', 'fc']);
    expect(model.children()[2]).toBe(model.fc);
    expect(model.modules()).toHaveLength(13);
    expect(model.layer1.namedParameters('layer1').map(([k]) => k)).toEqual(['layer1.0.weight', 'layer1.0.bias']);
    expect(model.parameters(false)).toEqual([]);
    for (const p of model.parameters()) {
      expect(p).toBeInstanceOf(Parameter);
      expect(p.requiresGrad).toBe(true);
      expect(p.isLeaf).toBe(true);
    }
    expect(model.call(torch.zeros(2, 1, 28, 28)).shape).toEqual([2, 10]);
  });

  test('the repr equals PyTorch print(model)', () => {
    expect(new nn.CNN().toString()).toBe(CNN_REPR);
    expect(String(new nn.Conv2d(3, 6, [3, 5], { stride: 2, dilation: 2, groups: 3, bias: false }))).toBe(
      'Conv2d(3, 6, kernel_size=(3, 5), stride=(2, 2), dilation=(2, 2), groups=3, bias=False)',
    );
    expect(String(new nn.Conv2d(3, 6, 3, { padding: 'same' }))).toBe('Conv2d(3, 6, kernel_size=(3, 3), stride=(1, 1), padding=same)');
    expect(String(new nn.Conv2d(3, 6, 4, { padding: [1, 2] }))).toBe('Conv2d(3, 6, kernel_size=(4, 4), stride=(1, 1), padding=(1, 2))');
    expect(String(new nn.MaxPool2d([2, 3], { stride: [1, 2], padding: 1, ceilMode: true }))).toBe(
      'MaxPool2d(kernel_size=(2, 3), stride=(1, 2), padding=1, dilation=1, ceil_mode=True)',
    );
    expect(String(new nn.MaxPool2d(2, 2))).toBe('MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)');
    expect(String(new nn.AvgPool2d(3, { stride: 2, padding: 1 }))).toBe('AvgPool2d(kernel_size=3, stride=2, padding=1)');
    expect(String(new nn.Linear(3, 4, { bias: false }))).toBe('Linear(in_features=3, out_features=4, bias=False)');
    expect(String(new nn.ReLU({ inplace: true }))).toBe('ReLU(inplace=True)');
    expect(String(new nn.Flatten())).toBe('Flatten(start_dim=1, end_dim=-1)');
    expect(String(new nn.Dropout())).toBe('Dropout(p=0.5, inplace=False)');
    expect(String(new nn.Dropout(0.2))).toBe('Dropout(p=0.2, inplace=False)');
    expect(String(new nn.CrossEntropyLoss({ weight: torch.ones(3), labelSmoothing: 0.1 }))).toBe('CrossEntropyLoss()');
    expect(String(new nn.LeakyReLU())).toBe('LeakyReLU(negative_slope=0.01)');
    expect(String(new nn.Softmax(1))).toBe('Softmax(dim=1)');
    expect(String(new nn.Sequential(new nn.Linear(2, 3), new nn.Sequential(new nn.ReLU()), new nn.Identity(), new nn.Sequential()))).toBe(
      'Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): Sequential(\n    (0): ReLU()\n  )\n  (2): Identity()\n  (3): Sequential()\n)',
    );
    expect(new Parameter(torch.zeros(2)).toString()).toBe('Parameter containing:\ntensor([0., 0.], requires_grad=True)');
  });

  test('buffers: persistent ones in the state dict, in PyTorch order', () => {
    const m = new WithBuffers();
    expect(m.namedBuffers().map(([k]) => k)).toEqual(['running', 'scratch']);
    expect(m.buffers()).toHaveLength(2);
    expect([...m.stateDict().keys()]).toEqual(['scale', 'running', 'inner.weight', 'inner.bias']);
    const ce = new nn.CrossEntropyLoss({ weight: torch.tensor([1, 2, 3], { dtype: 'float32' }) });
    expect([...ce.stateDict().keys()]).toEqual(['weight']);
    expect([...new nn.CrossEntropyLoss().stateDict().keys()]).toEqual([]);
  });

  test('stateDict / loadStateDict round trip', () => {
    torch.manualSeed(0);
    const a = new nn.CNN();
    torch.manualSeed(1);
    const b = new nn.CNN();
    const x = torch.rand(2, 1, 28, 28);
    expect(a.call(x).equal(b.call(x))).toBe(false);
    const sd = a.stateDict();
    for (const v of sd.values()) expect(v.requiresGrad).toBe(false);
    const bWeight = b.layer1.at<nn.Conv2d>(0).weight;
    expect(b.loadStateDict(sd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(b.layer1.at<nn.Conv2d>(0).weight).toBe(bWeight); // copied in place
    expect(bWeight.requiresGrad).toBe(true);
    expect(a.call(x).equal(b.call(x))).toBe(true);
    // a plain object works too, and non-strict reports the key differences
    const c = new nn.CNN();
    const obj: Record<string, Tensor> = Object.fromEntries(a.stateDict());
    delete obj['fc.2.bias'];
    obj.extra = torch.zeros(1);
    expect(c.loadStateDict(obj, { strict: false })).toEqual({ missingKeys: ['fc.2.bias'], unexpectedKeys: ['extra'] });
    expect(c.fc.at<nn.Linear>(0).weight.equal(a.fc.at<nn.Linear>(0).weight)).toBe(true);
    // the state dict shares storage with the model, like PyTorch's
    const w = a.stateDict().get('fc.2.bias')!;
    w.fill_(7);
    expect(a.fc.at<nn.Linear>(2).bias!.toTypedArray()[0]).toBe(7);
    // float64 values are converted on copy
    const d = new nn.Linear(2, 2);
    d.loadStateDict({ weight: torch.ones([2, 2], { dtype: 'float64' }), bias: torch.zeros(2) });
    expect(d.weight.dtype).toBe('float32');
    expect(Array.from(d.weight.toTypedArray() as Float32Array)).toEqual([1, 1, 1, 1]);
  });

  test('parameters survive tidy(); forward temporaries do not', () => {
    const m = torch.tidy(() => new nn.Linear(4, 3));
    expect(m.weight.isDisposed).toBe(false);
    expect(m.bias!.isDisposed).toBe(false);
    const temps: torch.Tensor[] = [];
    const y = torch.tidy(() => {
      const x = torch.ones(2, 4);
      const out = m.call(x);
      temps.push(x, out);
      return out.sum();
    });
    expect(typeof y.item()).toBe('number');
    // Checked per tensor: process-wide counts also move when the GC frees handles.
    expect(temps.map((t) => t.isDisposed)).toEqual([true, true]);
    expect(m.weight.isDisposed || m.bias!.isDisposed).toBe(false);
    y.dispose();
  });

  test('train() / eval() propagate, and Dropout follows them', () => {
    const model = new nn.Sequential(new nn.Linear(4, 4), new nn.Sequential(new nn.Dropout(0.5)));
    expect(model.modules().every((m) => m.training)).toBe(true);
    expect(model.eval()).toBe(model);
    expect(model.modules().every((m) => !m.training)).toBe(true);
    const x = torch.ones(1000);
    const drop = model.at<nn.Sequential>(1).at<nn.Dropout>(0);
    expect(drop.call(x).equal(x)).toBe(true);
    model.train();
    expect(drop.training).toBe(true);
    const out = Array.from(drop.call(x).toTypedArray() as Float32Array);
    expect(new Set(out)).toEqual(new Set([0, 2]));
    model.train(false);
    expect(drop.training).toBe(false);
  });

  test('zeroGrad sets grads to null by default, or to zeros', () => {
    const m = new nn.Linear(3, 2);
    m.call(torch.ones(4, 3)).sum().backward();
    expect(m.weight.grad!.sum().item()).toBeCloseTo(24, 5); // 4 rows of ones into 6 weights
    m.zeroGrad(false);
    expect(m.weight.grad!.abs().sum().item()).toBe(0);
    expect(m.bias!.grad!.shape).toEqual([2]);
    m.zeroGrad();
    expect(m.weight.grad).toBeNull();
    expect(m.bias!.grad).toBeNull();
  });

  test("to('float64') converts in place, keeping the Parameter objects", () => {
    const model = new nn.CNN();
    const w = model.fc.at<nn.Linear>(0).weight;
    model.call(torch.rand(1, 1, 28, 28)).sum().backward();
    expect(model.to('float64')).toBe(model);
    expect(model.fc.at<nn.Linear>(0).weight).toBe(w);
    for (const p of model.parameters()) {
      expect(p.dtype).toBe('float64');
      expect(p.requiresGrad).toBe(true);
      expect(p.isLeaf).toBe(true);
      expect(p.grad!.dtype).toBe('float64');
    }
    const out = model.call(torch.rand([1, 1, 28, 28], { dtype: 'float64' }));
    expect(out.dtype).toBe('float64');
    out.sum().backward();
    expect(w.grad!.dtype).toBe('float64');
    model.float();
    expect(w.dtype).toBe('float32');
    // integer buffers keep their dtype
    class Counter extends Module {
      readonly steps = this.registerBuffer('steps', torch.zeros([1], { dtype: 'int64' }));
      readonly w = this.registerParameter('w', torch.ones(1));
      readonly mean = this.registerBuffer('mean', torch.zeros(1));
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    const c = new Counter().to('float64');
    expect(c.steps.dtype).toBe('int64');
    expect(c.w.dtype).toBe('float64');
    expect(c.mean.dtype).toBe('float64'); // a replaced buffer is seen through its field
    expect(c.buffers()[1]).toBe(c.mean);
    expect(c.to({ device: 'cpu' }).w.device).toBe('cpu');
  });

  test('apply() visits children first, then the module', () => {
    const model = new nn.Sequential(new nn.Linear(2, 2), new nn.Sequential(new nn.ReLU()));
    const seen: string[] = [];
    expect(model.apply((m) => seen.push(m.constructor.name))).toBe(model);
    expect(seen).toEqual(['Linear', 'ReLU', 'Sequential', 'Sequential']);
    // the usual use: re-initialise every Linear
    model.apply((m) => {
      if (m instanceof nn.Linear) nn.init.zeros_(m.weight);
    });
    expect(model.at<nn.Linear>(0).weight.abs().sum().item()).toBe(0);
  });

  test('Sequential: indexing, length, append, iteration, slicing, named children', () => {
    const a = new nn.Linear(2, 3);
    const r = new nn.ReLU();
    const b = new nn.Linear(3, 1);
    const s = new nn.Sequential(a, r);
    expect(s.length).toBe(2);
    expect(s.at(0)).toBe(a);
    expect(s.get(-1)).toBe(r);
    expect(s.append(b)).toBe(s);
    expect(s.length).toBe(3);
    expect(s.at(-1)).toBe(b);
    expect((s as any)['2']).toBe(b);
    expect([...s]).toEqual([a, r, b]);
    expect(s.namedParameters().map(([k]) => k)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    const tail = s.slice(1);
    expect(tail.namedChildren().map(([k]) => k)).toEqual(['1', '2']);
    expect(s.call(torch.ones(4, 2)).shape).toEqual([4, 1]);
    const named = new nn.Sequential(new Map<string, nn.AnyModule>([['conv', new nn.Conv2d(1, 2, 3)], ['act', new nn.ReLU()]]));
    expect([...named.stateDict().keys()]).toEqual(['conv.weight', 'conv.bias']);
    expect(named.toString()).toBe('Sequential(\n  (conv): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))\n  (act): ReLU()\n)');
  });

  test('forward hooks see inputs and outputs and can be removed; pre-hooks can replace inputs', () => {
    const lin = new nn.Linear(2, 2);
    const shapes: number[][] = [];
    const h1 = lin.registerForwardHook((_m, args, out) => {
      shapes.push((args[0] as Tensor).shape, (out as Tensor).shape);
    });
    lin.call(torch.ones(3, 2));
    expect(shapes).toEqual([[3, 2], [3, 2]]);
    h1.remove();
    lin.call(torch.ones(3, 2));
    expect(shapes).toHaveLength(2);
    const h2 = lin.registerForwardPreHook(() => [torch.zeros(5, 2)]);
    expect(lin.call(torch.ones(3, 2)).shape).toEqual([5, 2]);
    h2.remove();
    const h3 = lin.registerForwardHook(() => torch.zeros(1));
    expect(lin.call(torch.ones(3, 2)).shape).toEqual([1]);
    h3.remove();
    expect(lin.forward(torch.ones(3, 2)).shape).toEqual([3, 2]);
  });

  test('attributes follow the registry', () => {
    const m = new WithBuffers();
    const p = new Parameter(torch.full([2], 3, { dtype: 'float32' }));
    (m as any).scale = p;
    expect(m.scale).toBe(p);
    expect(m.parameters()[0]).toBe(p);
    m.registerModule('inner', new nn.Linear(2, 5));
    expect(m.inner.outFeatures).toBe(5);
    (m as any).inner = null;
    expect(m.children()).toEqual([]);
    expect(m.numParameters()).toBe(2);
    const q = m.registerParameter('extra', torch.ones(2, 2));
    expect(q).toBeInstanceOf(Parameter);
    expect(m.numParameters({ trainableOnly: true })).toBe(6);
    q.requiresGrad_(false);
    expect(m.numParameters({ trainableOnly: true })).toBe(2);
    // field form (CNN declares `fc = this.registerModule(...)`): registering again replaces
    const cnn = new nn.CNN();
    const head = new nn.Sequential(new nn.Linear(3136, 10));
    cnn.registerModule('fc', head);
    expect(cnn.fc).toBe(head);
    expect([...cnn.stateDict().keys()].slice(-2)).toEqual(['fc.0.weight', 'fc.0.bias']);
    expect(cnn.call(torch.zeros(1, 1, 28, 28)).shape).toEqual([1, 10]);
  });

  test("Conv2d padding 'same' matches PyTorch, also for even kernels", () => {
    const c = new nn.Conv2d(1, 1, 2, { padding: 'same', bias: false });
    torch.noGrad(() => c.weight.fill_(1));
    const x = torch.arange(1, 10, 1, { dtype: 'float32' }).view(1, 1, 3, 3);
    // nn.Conv2d(1, 1, 2, padding='same', bias=False) with weight 1 in PyTorch 1.13
    expect(Array.from(c.call(x).toTypedArray() as Float32Array)).toEqual([12, 16, 9, 24, 28, 15, 15, 17, 9]);
    const c2 = new nn.Conv2d(1, 1, [2, 3], { padding: 'same', dilation: [1, 2], bias: false });
    torch.noGrad(() => c2.weight.copy_(torch.arange(1, 7, 1, { dtype: 'float32' }).view(1, 1, 2, 3)));
    const y = c2.call(torch.arange(1, 21, 1, { dtype: 'float32' }).view(1, 1, 4, 5));
    expect(y.shape).toEqual([1, 1, 4, 5]);
    expect(Array.from(y.toTypedArray() as Float32Array)).toEqual([
      89, 105, 146, 83, 95, 169, 185, 251, 143, 155, 249, 265, 356, 203, 215, 86, 91, 112, 55, 58,
    ]);
    expect(new nn.Conv2d(1, 1, 3, { padding: 'valid' }).call(torch.zeros(1, 1, 5, 5)).shape).toEqual([1, 1, 3, 3]);
  });

  test('loss and utility layers call the functional ops', () => {
    const logits = torch.tensor([[1, 2, 3], [1, 0, -1]], { dtype: 'float32' });
    const target = torch.tensor([2n, 0n]);
    const ce = new nn.CrossEntropyLoss();
    expect(ce.call(logits, target).item()).toBeCloseTo(torch.F.crossEntropy(logits, target).item() as number, 7);
    const none = new nn.CrossEntropyLoss({ reduction: 'none' }).call(logits, target);
    expect(none.shape).toEqual([2]);
    expect(new nn.NLLLoss().call(torch.F.logSoftmax(logits, 1), target).item()).toBeCloseTo(ce.call(logits, target).item() as number, 6);
    expect(new nn.MSELoss().call(torch.ones(3), torch.zeros(3)).item()).toBe(1);
    expect(new nn.Flatten().call(torch.zeros(2, 64, 7, 7)).shape).toEqual([2, 3136]);
    expect(new nn.Flatten({ startDim: 0 }).call(torch.zeros(2, 3)).shape).toEqual([6]);
    expect(new nn.AvgPool2d(2).call(torch.ones(1, 1, 4, 4)).shape).toEqual([1, 1, 2, 2]);
    const relu = new nn.ReLU({ inplace: true });
    const v = torch.tensor([-1, 2], { dtype: 'float32' });
    expect(relu.call(v)).toBe(v);
    expect(Array.from(v.toTypedArray() as Float32Array)).toEqual([0, 2]);
  });
});

// Sequential frees each intermediate output of a library layer as soon as the next
// layer has used it, and with autograd off lets a plain ReLU overwrite such an
// intermediate instead of allocating another buffer. Neither may touch anything the
// caller can see: the input, views of it, what a hook was shown, or what autograd saved.
describe('Sequential: its own intermediates only', () => {
  const data = () => torch.tensor([[-1, 2, -3, 4], [5, -6, 7, -8]], { dtype: 'float32' });

  test('in no-grad and inference mode, the result equals layer by layer and the input is untouched', () => {
    torch.manualSeed(0);
    const seq = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 2), new nn.ReLU());
    torch.tidy(() => {
      const x = data();
      const expected = torch.noGrad(() => {
        const l0 = seq.at<nn.Linear>(0).call(x).relu();
        return seq.at<nn.Linear>(2).call(l0).relu();
      });
      for (const mode of [torch.noGrad, torch.inferenceMode]) {
        const created = torch.memory().created;
        const y = mode(() => seq.call(x));
        // Two Linear outputs, each overwritten by its ReLU: no third or fourth tensor.
        expect(torch.memory().created - created).toBe(2);
        expect(y.toArray()).toEqual(expected.toArray());
        expect(x.toArray()).toEqual(data().toArray());
      }
    });
  });

  test('a ReLU straight on the input, or on a view of it (Flatten, Dropout), does not overwrite it', () => {
    torch.tidy(() => {
      const x = data().reshape(2, 2, 2);
      const before = x.toArray();
      for (const seq of [new nn.Sequential(new nn.ReLU()), new nn.Sequential(new nn.Flatten(), new nn.ReLU()), new nn.Sequential(new nn.Dropout(), new nn.ReLU()).eval()]) {
        const y = torch.noGrad(() => seq.call(x));
        expect(y.min().item()).toBe(0);
        expect(x.toArray()).toEqual(before);
      }
    });
  });

  test('what a forward hook was shown stays as it was', () => {
    torch.manualSeed(0);
    const lin = new nn.Linear(4, 3);
    const seq = new nn.Sequential(lin, new nn.ReLU());
    let shown: Tensor | null = null;
    const h = lin.registerForwardHook((_m, _args, out) => {
      shown = out as Tensor;
      return undefined;
    });
    torch.tidy(() => {
      const x = data();
      const raw = torch.noGrad(() => torch.F.linear(x, lin.weight, lin.bias)).toArray() as number[][];
      expect(raw.flat().some((v) => v < 0)).toBe(true);
      torch.noGrad(() => seq.call(x));
      expect(shown!.isDisposed).toBe(false);
      expect(shown!.toArray()).toEqual(raw);
    });
    h.remove();
  });

  test('with autograd recording, gradients are those of the plain layers', () => {
    torch.manualSeed(0);
    const seq = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 1));
    torch.tidy(() => {
      const x = data();
      seq.call(x).sum().backward();
      const g = seq.at<nn.Linear>(0).weight.grad!.clone();
      seq.zeroGrad();
      const l0 = seq.at<nn.Linear>(0).call(x);
      seq.at<nn.Linear>(2).call(l0.relu()).sum().backward();
      expect(seq.at<nn.Linear>(0).weight.grad!.toArray()).toEqual(g.toArray());
    });
  });
});

describe('Module.to memory formats', () => {
  test("to({ memoryFormat: 'channels_last' }) converts 4-D parameters only, and the model computes the same function", () => {
    torch.manualSeed(0);
    const ref = new nn.CNN();
    torch.manualSeed(0);
    const model = new nn.CNN();
    const conv2 = model.layer2.at<nn.Conv2d>(0).weight;
    expect(model.to({ memoryFormat: 'channels_last' })).toBe(model);
    expect(model.layer2.at<nn.Conv2d>(0).weight).toBe(conv2); // same Parameter object
    expect(conv2.isContiguous('channels_last')).toBe(true);
    expect(conv2.isContiguous()).toBe(false);
    expect(model.fc.at<nn.Linear>(0).weight.isContiguous()).toBe(true);
    torch.tidy(() => {
      const x = torch.randn([4, 1, 28, 28]);
      const diff = ref.call(x).sub(model.call(x.contiguous('channels_last'))).abs().max().item() as number;
      expect(diff).toBeLessThan(1e-5);
    });
    expect(() => model.to({ memoryFormat: 'rows' as any })).toThrow(/for memoryFormat but received 'rows'/);
  });
});
