/**
 * native/allocator.cc: the CPU caching allocator. Freed tensor blocks of 256 KiB and
 * more are kept by size and reused; releaseMemory() hands them back; the limit and
 * the off switch come from TORCHNODE_CPU_CACHE_MB.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as torch from '../lib';

const dist = path.join(__dirname, '..', 'dist');
const cacheOf = () => torch.memory().cpuCache!;

/** Runs `code` in a fresh node with torchnode as `t` and the given environment; returns its JSON output. */
function child(code: string, env: Record<string, string>): unknown {
  const r = spawnSync(process.execPath, ['-e', `const t=require(${JSON.stringify(dist)});${code}`], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('CPU caching allocator', () => {
  test('is on by default and says so in config() and memory()', () => {
    expect(torch.config().cpuCache).toEqual({ enabled: true, reason: expect.stringMatching(/^on: .*1024 MiB/) });
    expect(cacheOf().limitBytes).toBe(1024 * 2 ** 20);
  });

  test('a freed block is reused by the next tensor of its size, with correct contents', () => {
    torch.releaseMemory();
    const n = 300 * 1024; // 1.2 MB of float32: cached
    const a = torch.ones([n]);
    const before = cacheOf();
    a.dispose();
    const freed = cacheOf();
    expect(freed.cachedBytes).toBeGreaterThanOrEqual(before.cachedBytes + n * 4);
    const b = torch.zeros([n]);
    const after = cacheOf();
    expect(after.hits).toBe(freed.hits + 1);
    expect(after.cachedBytes).toBeLessThan(freed.cachedBytes);
    expect(b.sum().item()).toBe(0); // the old ones were overwritten
    b.dispose();
  });

  test('small tensors bypass it', () => {
    const before = cacheOf();
    torch.tidy(() => torch.ones([1000]).add(1));
    const after = cacheOf();
    expect(after.hits + after.misses).toBe(before.hits + before.misses);
  });

  test('releaseMemory() empties it', () => {
    torch.ones([400 * 1024]).dispose();
    expect(cacheOf().cachedBytes).toBeGreaterThan(0);
    torch.releaseMemory();
    expect(cacheOf().cachedBytes).toBe(0);
    expect(cacheOf().cachedBlocks).toBe(0);
  });

  test('oneDNN convolutions (which allocate raw blocks through it) train and free cleanly', () => {
    torch.manualSeed(0);
    const conv = new torch.nn.Conv2d(1, 32, 3, { padding: 1 });
    torch.tidy(() => {
      for (let i = 0; i < 3; i++) conv.call(torch.randn([64, 1, 28, 28])).relu().sum().backward();
    });
    expect(conv.weight.grad!.shape).toEqual([32, 1, 3, 3]);
    torch.releaseMemory();
    expect(cacheOf().cachedBytes).toBe(0);
  });

  test('TORCHNODE_CPU_CACHE_MB sets the limit; beyond it, freed blocks go back to malloc', () => {
    const out = child(
      'const xs=[0,1,2].map(()=>t.ones([256*1024]));xs.forEach(x=>x.dispose());' +
        'process.stdout.write(JSON.stringify(t.memory().cpuCache))',
      { TORCHNODE_CPU_CACHE_MB: '2' },
    ) as { cachedBytes: number; limitBytes: number };
    expect(out.limitBytes).toBe(2 * 2 ** 20);
    expect(out.cachedBytes).toBe(2 * 2 ** 20); // two 1 MiB blocks kept, the third freed
  });

  test('TORCHNODE_CPU_CACHE_MB=0 turns it off; a bad value is reported, not guessed', () => {
    const code = 'process.stdout.write(JSON.stringify([t.config().cpuCache,t.memory().cpuCache,t.ones([512*1024]).sum().item()]))';
    expect(child(code, { TORCHNODE_CPU_CACHE_MB: '0' })).toEqual([{ enabled: false, reason: 'off: TORCHNODE_CPU_CACHE_MB=0' }, null, 512 * 1024]);
    expect(child(code, { TORCHNODE_CPU_CACHE_MB: 'lots' })).toEqual([
      { enabled: false, reason: "off: TORCHNODE_CPU_CACHE_MB must be a whole number of MiB, got 'lots'" },
      null,
      512 * 1024,
    ]);
  });
});
