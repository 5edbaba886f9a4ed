// CUDA: tensors, ops, autograd, modules and optimizers on the GPU, checked against
// the same work on the CPU. They run where torch.cuda.isAvailable() is true (a CUDA
// build of libtorch and a GPU: `npm run check:cuda` builds one and runs this file
// with TORCHNODE_EXPECT_CUDA=1, which turns a missing GPU into a failure instead of
// a skip). Elsewhere every CUDA test shows as skipped, with the reason in its name,
// and the tests at the end check that CUDA calls fail with clear errors instead.
import * as torch from '../lib';
import { Tensor, TorchError, nn, optim, F, tidy, memory, resolveDevice, trainInThisThread } from '../lib';
import { flat, maxRelErr } from './helpers';

const HAS_CUDA = torch.cuda.isAvailable();
const EXPECT_CUDA = process.env.TORCHNODE_EXPECT_CUDA === '1';
const CFG = torch.config();
const WHY_NOT = `no CUDA device (torch.cuda.isAvailable() is false; libtorch ${torch.version}, ${CFG.cudaCompiled ? 'built with CUDA' : 'a CPU-only build'})`;
const describeCuda = HAS_CUDA ? describe : describe.skip;
const cudaTitle = (name: string) => (HAS_CUDA ? name : `${name} [skipped: ${WHY_NOT}]`);

/** Largest |a - b| over two tensors' elements (any devices). */
function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = flat(a.cpu());
  const y = flat(b.cpu());
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= worst)) worst = d; // NaN propagates
  }
  return worst;
}

/** Expects a GPU result close to its CPU twin: on cuda, same shape and dtype, within atol + rtol*|cpu|. */
function expectClose(onGpu: Tensor, onCpu: Tensor, rtol: number, atol: number): void {
  expect(onGpu.device).toBe('cuda:0');
  expect(onCpu.device).toBe('cpu');
  expect(onGpu.shape).toEqual(onCpu.shape);
  expect(onGpu.dtype).toBe(onCpu.dtype);
  const back = onGpu.cpu();
  const ok = back.allclose(onCpu, rtol, atol);
  if (!ok) throw new Error(`cuda and cpu differ: max |diff| ${maxAbsDiff(back, onCpu)} (rtol ${rtol}, atol ${atol})`);
}

if (EXPECT_CUDA) {
  test('TORCHNODE_EXPECT_CUDA=1: this build sees a CUDA device', () => {
    if (!HAS_CUDA) throw new Error(`TORCHNODE_EXPECT_CUDA=1, but ${WHY_NOT}: the CUDA tests below would only be skipped`);
    expect(CFG.cudaCompiled).toBe(true);
    expect(CFG.cudaAvailable).toBe(true);
    expect(torch.cuda.deviceCount()).toBeGreaterThanOrEqual(1);
  });
}

describeCuda(cudaTitle('CUDA tests'), () => {
  // cuDNN may use TF32 for float32 convolutions (PyTorch's default), which keeps ~10
  // mantissa bits of each product: conv results are compared at 1e-2. Elementwise ops,
  // reductions and cuBLAS matrix products (TF32 off by default) are compared at 1e-4.
  const R = 1e-4;

  test('the build sees the GPU', () => {
    expect(CFG.cudaCompiled).toBe(true);
    expect(torch.cuda.deviceCount()).toBeGreaterThanOrEqual(1);
    expect(resolveDevice('auto')).toBe('cuda');
    expect(resolveDevice('cuda:0')).toBe('cuda:0');
  });

  // First of the tests that allocate on the GPU: nothing else is there yet, so no
  // garbage collected meanwhile moves the figures.
  test('memoryStats() and memory().cuda follow an allocation and its release', () => {
    const MiB = 2 ** 20;
    const near = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(MiB);
    torch.cuda.synchronize();
    const s0 = torch.cuda.memoryStats()!;
    expect(s0).toEqual({ allocated: expect.any(Number), reserved: expect.any(Number), maxAllocated: expect.any(Number) });
    near(memory().cuda!.allocated, s0.allocated);
    const big = torch.zeros([16, MiB], { device: 'cuda' }); // 64 MiB of float32
    torch.cuda.synchronize();
    const s1 = torch.cuda.memoryStats()!;
    near(s1.allocated - s0.allocated, 64 * MiB);
    expect(s1.reserved).toBeGreaterThanOrEqual(s1.allocated);
    expect(s1.maxAllocated).toBeGreaterThanOrEqual(s1.allocated);
    near(torch.cuda.memoryStats(0)!.allocated, s1.allocated);
    near(memory().cuda!.allocated, s1.allocated);
    big.dispose();
    const s2 = torch.cuda.memoryStats()!;
    near(s1.allocated - s2.allocated, 64 * MiB);
    expect(s2.maxAllocated).toBeGreaterThanOrEqual(s1.allocated);
    // The block stays reserved in the caching allocator until emptyCache().
    expect(s2.reserved).toBeGreaterThanOrEqual(s2.allocated + 63 * MiB);
    torch.cuda.emptyCache();
    const s3 = torch.cuda.memoryStats()!;
    expect(s3.reserved).toBeLessThanOrEqual(s2.reserved - 63 * MiB);
    expect(s3.reserved).toBeGreaterThanOrEqual(s3.allocated);
  });

  test('tensors go to cuda and back with the same values, for every dtype', () => {
    const cases: [torch.DType, (number | boolean)[]][] = [
      ['float32', [1.5, -2, 3.25, 1e-30, -0]],
      ['float64', [Math.PI, -1e300, 2 ** -1000, 0.1]],
      ['int64', [2 ** 53 - 1, -(2 ** 40), 0, 7]],
      ['int32', [2 ** 31 - 1, -(2 ** 31), 5]],
      ['uint8', [0, 1, 254, 255]],
      ['bool', [true, false, true]],
    ];
    for (const [dtype, data] of cases) {
      tidy(() => {
        const x = torch.tensor(data as number[], { dtype });
        const g = x.to('cuda');
        expect(g.device).toBe('cuda:0');
        expect(g.isCuda).toBe(true);
        expect(g.dtype).toBe(dtype);
        const back = g.cpu();
        expect(back.device).toBe('cpu');
        expect(back.toArray()).toEqual(x.toArray());
      });
    }
    tidy(() => {
      const x = torch.arange(24, { dtype: 'float32' }).reshape(2, 3, 4);
      expect(x.cuda(0).device).toBe('cuda:0');
      expect(x.to({ device: 'cuda', dtype: 'float64' }).dtype).toBe('float64');
      expect(x.cuda().permute([2, 0, 1]).contiguous().cpu().toArray()).toEqual(x.permute([2, 0, 1]).contiguous().toArray());
      const z = torch.zeros([2, 3], { device: 'cuda' });
      expect(z.device).toBe('cuda:0');
      expect(z.sum().item()).toBe(0);
      expect(torch.full([3], 2.5, { device: 'cuda:0' }).cpu().toArray()).toEqual([2.5, 2.5, 2.5]);
    });
  });

  test('ops on cuda give the CPU results within tolerance, and stay on cuda', () => {
    tidy(() => {
      torch.manualSeed(1);
      const a = torch.randn([64, 128]);
      const b = torch.randn([128, 32]);
      const ga = a.cuda();
      const gb = b.cuda();
      expectClose(ga.matmul(gb), a.matmul(b), R, R);
      expectClose(ga.mul(2).add(1).exp().log(), a.mul(2).add(1).exp().log(), R, R);
      expectClose(ga.sigmoid().tanh().sqrt(), a.sigmoid().tanh().sqrt(), R, R);
      expectClose(ga.sum(1), a.sum(1), R, R);
      expectClose(ga.mean(), a.mean(), R, 1e-6);
      expectClose(F.softmax(ga, 1), F.softmax(a, 1), R, 1e-6);
      expect(ga.argmax(1).cpu().toArray()).toEqual(a.argmax(1).toArray());
      expect(ga.gt(0).sum().item()).toBe(a.gt(0).sum().item());
      const x = torch.randn([4, 3, 28, 28]);
      const w = torch.randn([8, 3, 3, 3]);
      const y = F.maxPool2d(F.relu(F.conv2d(x, w, { padding: 1 })), 2);
      const gy = F.maxPool2d(F.relu(F.conv2d(x.cuda(), w.cuda(), { padding: 1 })), 2);
      expect(gy.shape).toEqual([4, 8, 14, 14]);
      expectClose(gy, y, 1e-2, 1e-2);
      const target = torch.tensor([1n, 0n, 3n, 2n]);
      const logits = a.narrow(0, 0, 4).narrow(1, 0, 5);
      expectClose(F.crossEntropy(logits.cuda(), target.cuda()), F.crossEntropy(logits, target), R, 1e-6);
    });
  });

  test('mixing cpu and cuda tensors is a TorchError, not a crash', () => {
    tidy(() => {
      const c = torch.ones(3);
      const g = torch.ones(3, { device: 'cuda' });
      expect(() => c.add(g)).toThrow(TorchError);
      expect(() => g.matmul(torch.ones(3, 2))).toThrow(/device/i);
      expect(g.add(1).sum().item()).toBe(6); // the GPU still works afterwards
    });
  });

  test('autograd on cuda gives the CPU gradients, on cuda', () => {
    tidy(() => {
      torch.manualSeed(2);
      const x0 = torch.randn([8, 16]);
      const w0 = torch.randn([16, 4]);
      const grads = (device: 'cpu' | 'cuda') => {
        // detach(): to('cpu') hands back x0's own tensor, and x0 itself must stay a plain leaf
        const x = x0.to(device).detach().requiresGrad_();
        const w = w0.to(device).detach().requiresGrad_();
        expect(x.isLeaf).toBe(true);
        expect(x.device).toBe(device === 'cuda' ? 'cuda:0' : 'cpu');
        const loss = x.matmul(w).tanh().square().sum();
        loss.backward();
        return { loss, gx: x.grad!, gw: w.grad! };
      };
      const c = grads('cpu');
      const g = grads('cuda');
      expect(g.gx.device).toBe('cuda:0');
      expect(g.gw.device).toBe('cuda:0');
      expectClose(g.loss, c.loss, R, R);
      expectClose(g.gx, c.gx, R, R);
      expectClose(g.gw, c.gw, R, R);
    });
  });

  test("Module.to('cuda') moves every parameter; its forward and one SGD step match the CPU", () => {
    tidy(() => {
      torch.manualSeed(3);
      const cpuModel = new nn.CNN();
      const gpuModel = new nn.CNN();
      gpuModel.loadStateDict(cpuModel.stateDict());
      const params = gpuModel.parameters();
      expect(gpuModel.to('cuda')).toBe(gpuModel);
      // Same Parameter objects, now on the GPU (optimizers built before keep working).
      gpuModel.parameters().forEach((p, i) => expect(p).toBe(params[i]));
      for (const [name, p] of gpuModel.namedParameters()) expect([name, p.device]).toEqual([name, 'cuda:0']);
      const x = torch.rand([16, 1, 28, 28]);
      const y = torch.randint(0, 10, [16]);
      expectClose(gpuModel.call(x.cuda()), cpuModel.call(x), 1e-2, 1e-2);

      const step = (model: nn.CNN, device: 'cpu' | 'cuda') => {
        const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
        opt.zeroGrad();
        const loss = F.crossEntropy(model.call(x.to(device)), y.to(device));
        loss.backward();
        opt.step();
        return loss.item() as number;
      };
      const lossCpu = step(cpuModel, 'cpu');
      const lossGpu = step(gpuModel, 'cuda');
      expect(Math.abs(lossGpu - lossCpu) / Math.abs(lossCpu)).toBeLessThan(1e-3);
      const cpuParams = cpuModel.namedParameters();
      for (const [i, [name, p]] of gpuModel.namedParameters().entries()) {
        expect(p.device).toBe('cuda:0');
        const d = maxAbsDiff(p, cpuParams[i][1]);
        if (!(d < 1e-3)) throw new Error(`${name} after one SGD step: cuda and cpu differ by ${d}`);
      }
      expect(gpuModel.to('cpu').parameters()[0].device).toBe('cpu');
    });
  });

  test('three Adam steps on cuda keep their state on the GPU and match the CPU', () => {
    tidy(() => {
      torch.manualSeed(4);
      const make = () => new nn.Sequential(new nn.Linear(20, 32), new nn.ReLU(), new nn.Linear(32, 5));
      const cpuModel = make();
      const gpuModel = make();
      gpuModel.loadStateDict(cpuModel.stateDict());
      gpuModel.cuda();
      const x = torch.randn([12, 20]);
      const y = torch.randint(0, 5, [12]);
      const run = (model: nn.Sequential, device: 'cpu' | 'cuda') => {
        const opt = new optim.Adam(model.parameters(), { lr: 0.01 });
        for (let i = 0; i < 3; i++) {
          opt.zeroGrad();
          F.crossEntropy(model.call(x.to(device)), y.to(device)).backward();
          opt.step();
        }
        return opt;
      };
      run(cpuModel, 'cpu');
      const opt = run(gpuModel, 'cuda');
      const state = opt.stateDict().state;
      const first = (state as any)[0] ?? (state as any).get?.(0);
      expect(first).toBeDefined();
      expect(first.exp_avg.device).toBe('cuda:0');
      expect(first.exp_avg_sq.device).toBe('cuda:0');
      const cpuParams = cpuModel.parameters();
      gpuModel.parameters().forEach((p, i) => {
        expect(p.device).toBe('cuda:0');
        const rel = maxRelErr(flat(p.cpu()), flat(cpuParams[i]), 1e-2);
        if (!(rel < 1e-4)) throw new Error(`parameter ${i} after 3 Adam steps: cuda and cpu differ (max relative error ${rel})`);
      });
    });
  });

  test('the seed CNN trains on cuda like on the CPU (first batch loss, epoch cost) and evaluates there', async () => {
    const opts = { limit: 2000, epochs: 1, seed: 0, testData: null } as const;
    const run = async (device: 'cpu' | 'cuda') => {
      const losses: number[] = [];
      const r = await trainInThisThread({ ...opts, device, onBatch: (e) => losses.push(e.loss) });
      return { r, losses };
    };
    const c = await run('cpu');
    const g = await run('cuda');
    expect(g.r.device).toBe('cuda');
    expect(g.r.model.parameters()[0].device).toBe('cuda:0');
    expect(g.losses).toHaveLength(20);
    // The same weights and batch before any step: only the kernels differ.
    expect(Math.abs(g.losses[0] - c.losses[0]) / c.losses[0]).toBeLessThan(1e-3);
    expect(Math.abs(g.r.history[0].cost - c.r.history[0].cost) / c.r.history[0].cost).toBeLessThan(2e-2);
    const test = new torch.datasets.MNIST({ train: false, limit: 1000 });
    const accGpu = torch.evaluate(g.r.model, test);
    const accCpu = torch.evaluate(c.r.model, test);
    expect(accGpu).toBeGreaterThan(0.3);
    expect(Math.abs(accGpu - accCpu)).toBeLessThan(0.05);
    expect(g.r.model.parameters()[0].device).toBe('cuda:0');
  });

  test('cuda.synchronize waits for queued work and checks its argument', () => {
    tidy(() => {
      let x = torch.ones([512, 512], { device: 'cuda' }).div(512);
      for (let i = 0; i < 20; i++) x = x.matmul(x); // queued asynchronously
      expect(torch.cuda.synchronize()).toBeUndefined();
      expect(torch.cuda.synchronize(0)).toBeUndefined();
      // (1/512 * 512)^k stays 1/512 in every element
      expect(Math.abs((x.mean().item() as number) - 1 / 512)).toBeLessThan(1e-6);
      expect(() => torch.cuda.synchronize(-1)).toThrow(/Expected a device index for device but received -1/);
      expect(() => torch.cuda.synchronize(0.5)).toThrow(/device index/);
    });
  });

  test('a device index past the last GPU is an error naming the index', () => {
    const n = torch.cuda.deviceCount();
    const named = new RegExp(`\\b${n}\\b`);
    expect(() => torch.cuda.synchronize(n)).toThrow(named);
    expect(() => torch.cuda.memoryStats(n)).toThrow(named);
    expect(() => resolveDevice(`cuda:${n}`)).toThrow(new RegExp(`'cuda:${n}' requested but only ${n} CUDA device`));
    expect(() => torch.ones(2).to(`cuda:${n}`)).toThrow(TorchError);
    expect(() => torch.zeros([2], { device: `cuda:${n}` })).toThrow(TorchError);
    expect(() => new nn.Linear(2, 2).to(`cuda:${n}`)).toThrow(TorchError);
    // and the GPU that exists still works
    expect(torch.ones(2, { device: 'cuda:0' }).sum().item()).toBe(2);
  });

  test('manualSeed and cuda.manualSeedAll make GPU randomness reproducible', () => {
    tidy(() => {
      const draw = () => torch.randn([1000], { device: 'cuda' }).cpu().toArray();
      torch.cuda.manualSeedAll(7);
      const a = draw();
      torch.cuda.manualSeedAll(7);
      expect(draw()).toEqual(a);
      torch.manualSeed(7); // seeds the GPUs too, like torch.manual_seed
      expect(draw()).toEqual(a);
      torch.cuda.manualSeedAll(8);
      expect(draw()).not.toEqual(a);
    });
  });
});

// Without a CUDA device: no crash, clear errors. Runs wherever CUDA is not available.
(HAS_CUDA ? describe.skip : describe)(HAS_CUDA ? 'without CUDA [skipped: CUDA is available here]' : 'without CUDA', () => {
  test('cuda calls fail with a clear error rather than crashing', () => {
    expect(torch.cuda.isAvailable()).toBe(false);
    expect(torch.cuda.deviceCount()).toBe(0);
    expect(torch.cuda.memoryStats()).toBeNull();
    expect(memory().cuda).toBeNull();
    expect(CFG.cudaAvailable).toBe(false);
    expect(() => torch.cuda.synchronize()).toThrow(/cuda.synchronize: CUDA is not available/);
    expect(() => torch.cuda.synchronize(0)).toThrow(TorchError);
    expect(() => torch.cuda.emptyCache()).not.toThrow();
    expect(() => torch.cuda.manualSeedAll(1)).not.toThrow();
    expect(() => torch.ones(2).to('cuda')).toThrow(/Cannot use device 'cuda': CUDA is not available/);
    expect(() => torch.ones(2).cuda(1)).toThrow(/Cannot use device 'cuda:1': CUDA is not available/);
    expect(() => torch.zeros([2], { device: 'cuda:0' })).toThrow(TorchError);
    expect(() => torch.randn([2], { device: 'cuda' })).toThrow(/CUDA is not available/);
    expect(() => new nn.Linear(2, 2).to('cuda')).toThrow(/CUDA is not available/);
    expect(() => new nn.CNN().cuda()).toThrow(TorchError);
    // and the CPU still works afterwards
    expect(torch.ones(2).add(1).sum().item()).toBe(4);
  });

  test('resolveDevice and train() refuse cuda with a message that names the way out', async () => {
    expect(resolveDevice('auto')).toBe('cpu');
    expect(() => resolveDevice('cuda')).toThrow("Device 'cuda' requested but CUDA is not available (no GPU or a CPU-only libtorch); use --device cpu");
    await expect(trainInThisThread({ device: 'cuda:0', epochs: 1, limit: 100, testData: null })).rejects.toThrow(
      /Device 'cuda:0' requested but CUDA is not available/,
    );
  });
});
