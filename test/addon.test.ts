import * as fs from 'node:fs';
import * as path from 'node:path';
import * as torch from '../lib';
import { explainLoadError, readLibtorchRecord } from '../lib/native';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const checkSources = require('../scripts/check-sources.js');

describe('addon: throw cases', () => {
  test('load failures name the cause and the fix', () => {
    const rec = { path: '/opt/lt', cmakeDir: '', libDir: '/opt/lt/lib', includeDirs: [], version: '2.9.1', variant: 'cpu', cuda: false, how: 'download' as const };
    const notBuilt = explainLoadError(new Error('No native build was found for platform=linux'), rec);
    expect(notBuilt.message).toMatch(/has not been built.*npm rebuild torchnode/);
    const noLib = explainLoadError(new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory'), rec);
    expect(noLib.message).toMatch(/libtorch is missing from \/opt\/lt\/lib/);
    const mismatch = explainLoadError(new Error('undefined symbol: _ZN3c106detail14torchCheckFail'), rec);
    expect(mismatch.message).toMatch(/different libtorch.*2\.9\.1/);
    const nodeAbi = explainLoadError(new Error('was compiled against a different Node.js version using NODE_MODULE_VERSION 108'), rec);
    expect(nodeAbi.message).toMatch(/different Node\.js version/);
    expect(explainLoadError(new Error('x'), null, 'win32').message).toMatch(/Linux and macOS/);
  });
  test('binding.gyp and CMakeLists.txt list the same sources', () => {
    const d = checkSources.diff();
    expect(d.onlyCmake).toEqual([]);
    expect(d.onlyGyp).toEqual([]);
    expect(d.unlisted).toEqual([]);
    expect(d.cmake.length).toBeGreaterThanOrEqual(8);
  });
});

describe('addon', () => {
  test('reports the libtorch version it was built against', () => {
    const rec = readLibtorchRecord();
    expect(rec).not.toBeNull();
    expect(torch.version).toMatch(/^\d+\.\d+\.\d+/);
    // The header version and the installer's record agree (major.minor).
    expect(torch.version.split('.').slice(0, 2)).toEqual(rec!.version.split('.').slice(0, 2));
  });
  test('config() is truthful on this machine', () => {
    const c = torch.config();
    const rec = readLibtorchRecord()!;
    expect(c.libtorchPath).toBe(rec.path);
    expect(c.foundBy).toBe(rec.how);
    expect(c.variant).toBe(rec.variant);
    expect(fs.existsSync(path.join(rec.libDir, process.platform === 'darwin' ? 'libtorch.dylib' : 'libtorch.so'))).toBe(true);
    expect(c.cudaAvailable).toBe(torch.cuda.isAvailable());
    expect(c.cudaDeviceCount).toBe(torch.cuda.deviceCount());
    expect(c.cudaCompiled).toBe(rec.cuda);
    expect(c.threads).toBe(torch.getNumThreads());
    expect(c.parallelInfo).toContain('ATen/Parallel');
    expect(c.mkldnn).toBe(/MKL-DNN|oneDNN/.test(c.parallelInfo));
  });
  test('setNumThreads / getNumThreads', () => {
    const prev = torch.getNumThreads();
    torch.setNumThreads(2);
    expect(torch.getNumThreads()).toBe(2);
    torch.setNumThreads(prev);
    expect(() => torch.setNumThreads(0)).toThrow(/Expected a positive integer for threads but received 0/);
  });
  test('the package loads through require and import', async () => {
    const pkg = require('../package.json');
    expect(pkg.name).toBe('torchnode');
    const cjs = require(path.join(__dirname, '..', pkg.main));
    expect(typeof cjs.tensor).toBe('function');
  });
});

describe('cuda', () => {
  const hasGpu = torch.cuda.isAvailable();
  if (!hasGpu) {
    test.skip('CUDA tests skipped: no CUDA device (cuda.isAvailable() is false on this machine)', () => undefined);
    test('without a GPU, CUDA calls give clear errors', () => {
      expect(torch.cuda.deviceCount()).toBe(0);
      expect(torch.cuda.memoryStats()).toBeNull();
      expect(() => torch.cuda.synchronize()).toThrow(/CUDA is not available/);
      expect(() => torch.cuda.manualSeedAll(1)).not.toThrow();
    });
    return;
  }
  test('tensors move to the GPU and back with the same values', () => {
    const x = torch.randn([64, 64]);
    const g = x.cuda();
    expect(g.device).toBe('cuda:0');
    expect(g.matmul(g).cpu().allclose(x.matmul(x), 1e-4, 1e-4)).toBe(true);
    torch.cuda.synchronize();
    expect(torch.cuda.memoryStats()!.allocated).toBeGreaterThan(0);
  });
  test('the seed CNN trains a few batches on cuda', async () => {
    const r = await torch.train({ device: 'cuda', limit: 300, epochs: 1, testLimit: 200, seed: 0 });
    expect(r.device).toBe('cuda');
    expect(r.history[0].cost).toBeLessThan(3);
  });
});
