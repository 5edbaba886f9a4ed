import * as torch from '../lib';
import { tidy, scope, keep, memory, F } from '../lib';
import { undisposed } from './helpers';

describe('memory: throw cases', () => {
  test('tidy refuses async functions and non-functions', () => {
    expect(() => tidy((async () => torch.ones(1)) as any)).toThrow(/use `await scope/);
    expect(() => tidy(3 as any)).toThrow(/Expected a function for fn/);
  });
  test('tensors are freed even when the body throws', () => {
    let inner: torch.Tensor | undefined;
    expect(() => tidy(() => { inner = torch.ones(3); throw new Error('x'); })).toThrow('x');
    expect(inner!.isDisposed).toBe(true);
  });
});

describe('memory', () => {
  test('tidy frees temporaries and keeps what is returned', async () => {
    const before = undisposed();
    let tmp: torch.Tensor | undefined;
    const out = tidy(() => {
      tmp = torch.ones(1000).mul(2);
      return { y: tmp.add(1), list: [tmp.sum()] };
    });
    expect(tmp!.isDisposed).toBe(true);
    expect(out.y.isDisposed).toBe(false);
    expect(out.list[0].item()).toBe(2000);
    expect(undisposed()).toBe(before + 2);
    out.y.dispose();
    out.list[0].dispose();
    expect(undisposed()).toBe(before);
  });
  test('nested tidy hands kept tensors to the outer scope; keep() exempts', () => {
    let kept: torch.Tensor | undefined;
    let fromInner: torch.Tensor | undefined;
    tidy(() => {
      fromInner = tidy(() => torch.ones(2));
      kept = keep(torch.zeros(2));
    });
    expect(fromInner!.isDisposed).toBe(true);
    expect(kept!.isDisposed).toBe(false);
  });
  test('scope works across await', async () => {
    let a: torch.Tensor | undefined;
    const r = await scope(async () => {
      a = torch.ones(10);
      await new Promise((res) => setTimeout(res, 5));
      const b = a.mul(3);
      await Promise.resolve();
      return b.sum();
    });
    expect(a!.isDisposed).toBe(true);
    expect(r.item()).toBe(30);
  });
  test('memory() counts bytes and what was disposed or collected', () => {
    const t = torch.zeros([1000], { dtype: 'float64' });
    const m1 = memory();
    t.dispose();
    const m2 = memory();
    // Measured around dispose(), which allocates nothing that could start a GC.
    expect(m1.bytes - m2.bytes).toBe(8000);
    expect(m1.tensors - m2.tensors).toBe(1);
    expect(m2.disposed - m1.disposed).toBe(1);
    expect(m2.created).toBeGreaterThanOrEqual(m2.disposed + m2.collected);
    // The CUDA caching allocator's figures with a GPU (test/cuda.test.ts follows them), null without.
    expect(memory().cuda).toEqual(
      torch.cuda.isAvailable() ? { allocated: expect.any(Number), reserved: expect.any(Number), maxAllocated: expect.any(Number) } : null,
    );
  });

  // 20,000 forward+backward steps of a small conv net with no dispose at all: the
  // finalizers plus the external-memory figures reported to V8 must keep both the
  // live tensor count and RSS flat after warm-up.
  test('20,000 steps without dispose stay flat in RSS and live tensors', () => {
    torch.setNumThreads(1);
    const w1 = torch.randn([4, 1, 3, 3], { requiresGrad: true });
    const w2 = torch.randn([10, 4 * 4 * 4], { requiresGrad: true });
    const x = torch.randn([2, 1, 8, 8]);
    const y = torch.tensor([1n, 7n]);
    const step = () => {
      const h = F.maxPool2d(F.relu(F.conv2d(x, w1, { padding: 1 })), 2);
      const loss = F.crossEntropy(F.linear(h.flatten(1), w2), y);
      loss.backward();
      w1.grad = null;
      w2.grad = null;
    };
    const gc = (global as any).gc as (() => void) | undefined;
    for (let i = 0; i < 8000; i++) step();
    gc?.();
    const rss0 = process.memoryUsage().rss;
    const live0 = memory().tensors;
    let peakLive = live0;
    for (let i = 0; i < 12000; i++) {
      step();
      if (i % 1000 === 0) peakLive = Math.max(peakLive, memory().tensors);
    }
    gc?.();
    const rss1 = process.memoryUsage().rss;
    const live1 = memory().tensors;
    // 12,000 steps make ~72,000 handles; the GC must free them as it goes (a
    // synchronous loop never yields to the event loop, so nothing may wait for it).
    expect(peakLive).toBeLessThan(50000);
    expect(live1).toBeLessThan(50000);
    // Before handles were freed inside the GC this grew by ~24 MB over these steps.
    expect(rss1 - rss0).toBeLessThan(16 * 1024 * 1024);
  }, 120000);
});
