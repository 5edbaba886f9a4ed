// npm run train end to end: checkpoints that resume exactly, and --nproc ranks.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { distributed, loadCheckpoint } from '../lib';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'train.js');
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120000 });
const common = ['--seed', '0', '--limit', '600', '--threads', '1', '--test-limit', '500', '--no-progress', '--no-report'];

describe('cli: throw cases', () => {
  test('bad --resume and --nproc options exit 2 with a message', () => {
    const missing = run([...common, '--resume', '/nonexistent/ckpt.pt']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--resume: .*\/nonexistent\/ckpt\.pt/);
    const bad = run(['--nproc', '0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--nproc expects an integer >= 1 but received '0'/);
    const both = run(['--nproc', '2', '--dist']);
    expect(both.status).toBe(2);
  });
  test('WORLD_SIZE and RANK that are not counts exit 2 naming the variable (WORLD_SIZE=abc ran one process)', () => {
    const env = (e: Record<string, string>) => spawnSync(process.execPath, [cli, ...common, '--epochs', '1'], { encoding: 'utf8', timeout: 60000, env: { ...process.env, ...e } });
    const abc = env({ WORLD_SIZE: 'abc', RANK: '0' });
    expect(abc.status).toBe(2);
    expect(abc.stderr).toMatch(/WORLD_SIZE must be an integer >= 1 but is 'abc'/);
    const rank = env({ WORLD_SIZE: '2', RANK: '2' });
    expect(rank.status).toBe(2);
    expect(rank.stderr).toMatch(/RANK must be an integer in 0\.\.1 \(WORLD_SIZE 2\) but is '2'/);
  });
});

/** The pids of `pid`'s children whose environment has RANK=<rank>, from /proc. */
function childWithRank(pid: number, rank: number): number | null {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      if (fs.readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`)) return Number(e);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

/** Children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The local addresses ("127.0.0.1:port", "0.0.0.0:port", "[::]:port") of the TCP sockets `pids` listen on, from /proc/net. */
function listeningAddresses(pids: number[]): string[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      }
    } catch {
      // exited meanwhile
    }
  }
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue;
      const [hex, port] = f[1].split(':');
      const p = parseInt(port, 16);
      if (hex.length === 8) out.push(`${[3, 2, 1, 0].map((i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16)).join('.')}:${p}`);
      else out.push(/^0+$/.test(hex) ? `[::]:${p}` : hex === '00000000000000000000000001000000' ? `[::1]:${p}` : `[${hex}]:${p}`);
    }
  }
  return out;
}

describe('cli', () => {
  test('--save then --resume continues exactly where an uninterrupted run would be', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tn-cli-'));
    const ck = path.join(dir, 'ck.pt');
    const first = run([...common, '--epochs', '1', '--save', ck]);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`Saved ${ck}`);
    const saved = loadCheckpoint(ck);
    expect(saved.epoch).toBe(1);
    expect([...saved.model_state_dict!.keys()]).toContain('fc.2.bias');
    const resumed = run([...common, '--epochs', '2', '--resume', ck]);
    const straight = run([...common, '--epochs', '2']);
    expect(resumed.status).toBe(0);
    const epoch2 = (s: string) => s.split('\n').find((l) => l.startsWith('[Epoch:    2]'))!.split('  (')[0];
    expect(resumed.stdout).toMatch(/Resuming from .* after epoch 1/);
    expect(resumed.stdout).not.toMatch(/\[Epoch:    1\]/);
    expect(epoch2(resumed.stdout)).toBe(epoch2(straight.stdout));
    expect(resumed.stdout.match(/Accuracy: \S+/)![0]).toBe(straight.stdout.match(/Accuracy: \S+/)![0]);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120000);

  const gloo = distributed.isAvailable();
  (gloo.gloo && fs.existsSync('/proc/self/stat') ? test : test.skip)(
    `--nproc: a rank killed mid-run stops the others at once, with its exit status${gloo.gloo ? '' : ` (skipped: ${gloo.reason})`}`,
    async () => {
      // A run long enough that only the kill can end it soon; c10d alone would wait --dist-timeout.
      const t0 = Date.now();
      const launcher = spawn(process.execPath, [cli, '--nproc', '2', '--seed', '0', '--epochs', '5', '--threads', '1', '--no-report', '--no-progress', '--dist-timeout', '120'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      launcher.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
      let victim: number | null = null;
      while (victim === null && Date.now() - t0 < 30000) {
        await new Promise((r) => setTimeout(r, 200));
        victim = childWithRank(launcher.pid!, 1);
      }
      expect(victim).not.toBeNull();
      await new Promise((r) => setTimeout(r, 1500)); // inside rendezvous or training
      const killedAt = Date.now();
      process.kill(victim!, 'SIGKILL');
      const code = await exited;
      expect(Date.now() - killedAt).toBeLessThan(15000);
      expect(code).toBe(128 + os.constants.signals.SIGKILL);
      expect(stderr).toMatch(/rank 1 exited with SIGKILL; stopping the other ranks/);
      expect(stderr).not.toMatch(/rank 0 exited/);
    },
    60000,
  );

  (distributed.isAvailable().gloo && fs.existsSync('/proc/net/tcp') ? test : test.skip)(
    `--nproc: the ranks listen on loopback only (the store is a file, Gloo binds 127.0.0.1)${distributed.isAvailable().gloo ? '' : ` (skipped: ${distributed.isAvailable().reason})`}`,
    async () => {
      const launcher = spawn(process.execPath, [cli, '--nproc', '2', '--seed', '0', '--limit', '3000', '--batch-size', '50', '--epochs', '1', '--threads', '1', '--test-limit', '200', '--no-report', '--no-progress'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      launcher.stdout!.on('data', (d) => (stdout += d));
      const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
      let done = false;
      void exited.then(() => (done = true));
      const seen = new Set<string>();
      let samples = 0;
      while (!done) {
        const ranks = childrenOf(launcher.pid!);
        if (ranks.length) {
          samples++;
          for (const a of listeningAddresses(ranks)) seen.add(a);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(await exited).toBe(0);
      expect(stdout).toMatch(/Accuracy:/);
      expect(samples).toBeGreaterThan(10);
      // Before: rank 0's TCPStore listened on 0.0.0.0 for the whole run.
      expect([...seen].filter((a) => !a.startsWith('127.0.0.1:') && !a.startsWith('[::1]:'))).toEqual([]);
    },
    120000,
  );

  test('--nproc 2 trains with two ranks; only rank 0 prints', () => {
    if (!distributed.isAvailable().gloo) return;
    const r = run(['--nproc', '2', '--seed', '0', '--limit', '400', '--batch-size', '50', '--epochs', '1', '--threads', '1', '--test-limit', '200', '--no-report']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Starting 2 ranks on this machine \(c10d, Gloo on 127\.0\.0\.1, file store\)/);
    expect(r.stdout.match(/\[Epoch:    1\]/g)).toHaveLength(1);
    expect(r.stdout).toMatch(/\(\d+\.\d+ s, \d+ samples\/s\)/);
    expect(r.stdout.match(/Accuracy:/g)).toHaveLength(1);
  }, 120000);
});
