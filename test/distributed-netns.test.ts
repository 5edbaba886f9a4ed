// Data-parallel training across two machines, played by two network namespaces joined by
// a veth pair (one rank in each, `ip netns exec NS node rank.js`): it trains to the same
// parameters as on loopback; a link taken down mid-epoch makes both ranks fail within
// the timeout, each naming the other; a wrong GLOO_SOCKET_IFNAME says so.
// Needs root, iproute2 and Gloo; skips with the reason otherwise.
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { distributed } from '../lib';
import { freePort } from './helpers';

const rankScript = path.join(__dirname, 'fixtures', 'dist', 'netns-rank.js');
const available = distributed.isAvailable();
const TIMEOUT_MS = 5000;
// A rank still alive this long after it should have ended is killed, and the test fails.
const BOUND_MS = TIMEOUT_MS + 25000;

// Unique per run; interface names must stay within 15 characters (pid_max is 7 digits).
const pid = process.pid;
const NS = { a: `tn-${pid}-a`, b: `tn-${pid}-b` };
const VETH = { a: `tnva${pid}`, b: `tnvb${pid}` };
const NET = `10.213.${pid % 256}`;
const ADDR = { a: `${NET}.1`, b: `${NET}.2` };

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10000 });
  return { ok: !r.error && r.status === 0, err: (r.error?.message ?? r.stderr ?? '').trim() };
}

/**
 * What this host's name resolves to inside namespace `side` (`ip netns exec` bind-mounts
 * /etc/netns/NS/* over /etc). Without GLOO_SOCKET_IFNAME, Gloo's default device binds to
 * that address; the host's /etc/hosts may say 127.0.0.1, which in a namespace is its own
 * loopback, unreachable from the peer (Gloo then connects each rank to itself: "Connect
 * timeout [127.0.0.1]:..."). By default each namespace gets its own address, as a
 * cluster machine's name resolves to its own address; tests override it for a while.
 */
function setHosts(side: 'a' | 'b', addr: string): void {
  const dir = path.join('/etc/netns', NS[side]);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'hosts'), `127.0.0.1 localhost\n${addr} ${os.hostname()}\n`);
}

const children = new Set<ChildProcess>();
let torn = false;
function teardown(): void {
  if (torn) return;
  torn = true;
  for (const c of children) c.kill('SIGKILL');
  // Deleting a namespace deletes the veth end in it, and with it the pair.
  for (const side of ['a', 'b'] as const) {
    ip('netns', 'del', NS[side]);
    fs.rmSync(path.join('/etc/netns', NS[side]), { recursive: true, force: true });
  }
  ip('link', 'del', VETH.a); // only there when setup failed before moving it
  stopJanitor();
}

/**
 * Not every way a Jest run ends reaches afterAll or an 'exit' listener (Ctrl-C left the
 * namespaces behind; so would a killed worker), so a detached janitor waits for this
 * process to end, whichever way, then kills what is left in the namespaces and deletes them.
 */
let janitor: ChildProcess | null = null;
function startJanitor(): void {
  const clean = (['a', 'b'] as const)
    .map((s) => `ip netns pids ${NS[s]} 2>/dev/null | xargs -r kill -9; ip netns del ${NS[s]} 2>/dev/null; rm -rf /etc/netns/${NS[s]}`)
    .join('; ');
  janitor = spawn('sh', ['-c', `while kill -0 ${pid} 2>/dev/null; do sleep 1; done; ${clean}; ip link del ${VETH.a} 2>/dev/null; true`], {
    detached: true,
    stdio: 'ignore',
  });
  janitor.unref();
}
function stopJanitor(): void {
  janitor?.kill('SIGKILL');
  janitor = null;
}

/** Namespaces left by an earlier run of this file that was killed before cleaning up. */
function sweepStale(): void {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const m of (r.stdout ?? '').matchAll(/^tn-(\d+)-[ab]\b/gm)) {
    const owner = Number(m[1]);
    try {
      process.kill(owner, 0);
      continue; // still running
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    ip('netns', 'del', m[0]);
    fs.rmSync(path.join('/etc/netns', m[0]), { recursive: true, force: true });
  }
}

/** Creates the two namespaces and the veth between them; null, or why not. */
function setUp(): string | null {
  if (!available.gloo) return `no Gloo: ${available.reason}`;
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['-V']).error) return "no 'ip' command (iproute2)";
  sweepStale();
  process.on('exit', teardown);
  startJanitor();
  const steps: string[][] = [
    ['netns', 'add', NS.a],
    ['netns', 'add', NS.b],
    ['link', 'add', VETH.a, 'type', 'veth', 'peer', 'name', VETH.b],
    ['link', 'set', VETH.a, 'netns', NS.a],
    ['link', 'set', VETH.b, 'netns', NS.b],
  ];
  for (const side of ['a', 'b'] as const) {
    steps.push(
      ['-n', NS[side], 'addr', 'add', `${ADDR[side]}/30`, 'dev', VETH[side]],
      ['-n', NS[side], 'link', 'set', 'lo', 'up'], // down in a fresh namespace
      ['-n', NS[side], 'link', 'set', VETH[side], 'up'],
    );
  }
  steps.push(['netns', 'exec', NS.a, process.execPath, '-e', '']); // entering one works too
  for (const s of steps) {
    const r = ip(...s);
    if (!r.ok) {
      teardown();
      return `cannot create network namespaces (ip ${s.join(' ')}: ${r.err})`;
    }
  }
  try {
    setHosts('a', ADDR.a);
    setHosts('b', ADDR.b);
  } catch (e) {
    teardown();
    return `cannot write /etc/netns: ${(e as Error).message}`;
  }
  return null;
}

interface Result { code: number | null; signal: string | null; stdout: string; stderr: string; ms: number; exitedAt: number; hung: boolean }
interface Rank { child: ChildProcess; out: () => string; done: Promise<Result> }

/** One rank, in namespace `ns` (null: this one), configured from the environment. */
function rank(ns: string | null, r: number, env: Record<string, string>, args: number[]): Rank {
  const base = { ...process.env };
  delete base.GLOO_SOCKET_IFNAME;
  const cmd = ns ? ['ip', ['netns', 'exec', ns, process.execPath, rankScript, ...args.map(String)]] as const
    : [process.execPath, [rankScript, ...args.map(String)]] as const;
  const child = spawn(cmd[0], [...cmd[1]], {
    env: { ...base, WORLD_SIZE: '2', RANK: String(r), TORCHNODE_DIST_TIMEOUT_MS: String(TIMEOUT_MS), ...env },
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const t0 = Date.now();
  const done = new Promise<Result>((resolve) => {
    let hung = false;
    const bound = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, BOUND_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(bound);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, exitedAt: Date.now(), hung });
    });
  });
  return { child, out: () => stdout, done };
}

/** Both ranks: rank 0 in `nsA`, rank 1 in `nsB` (null: this namespace). */
async function pair(where: [string | null, string | null], masterAddr: string, env: [Record<string, string>, Record<string, string>], args: number[]) {
  const port = String(await freePort());
  return [0, 1].map((r) => rank(where[r], r, { MASTER_ADDR: masterAddr, MASTER_PORT: port, ...env[r] }, args));
}

/** Resolves once every rank's stdout matches `re`; rejects when one exits first or after `ms`. */
function allPrinted(ranks: Rank[], re: RegExp, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup: (() => void)[] = [];
    const finish = (err?: Error) => {
      cleanup.forEach((f) => f());
      if (err) reject(err);
      else resolve();
    };
    const check = () => ranks.every((k) => re.test(k.out())) && finish();
    const timer = setTimeout(() => finish(new Error(`ranks did not print ${re} within ${ms} ms: ${ranks.map((k) => JSON.stringify(k.out().slice(-200))).join(' / ')}`)), ms);
    cleanup.push(() => clearTimeout(timer));
    for (const k of ranks) {
      const onExit = (code: number | null) => finish(new Error(`a rank exited (${code}) before printing ${re}`));
      k.child.stdout!.on('data', check);
      k.child.on('exit', onExit);
      cleanup.push(() => {
        k.child.stdout!.off('data', check);
        k.child.off('exit', onExit);
      });
    }
    check();
  });
}

const params = (r: Result) => r.stdout.match(/^param .*$/gm) ?? [];
const describeResult = (r: Result) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''} after ${r.ms} ms${r.hung ? ', HUNG and killed' : ''}; stderr: ${r.stderr.trim().slice(-600)}`;

const skip = setUp();

describe('distributed across two network namespaces', () => {
  if (skip) {
    test.skip(`two-machine tests skipped: ${skip}`, () => undefined);
    return;
  }
  afterAll(() => {
    teardown();
    process.off('exit', teardown);
  });

  let loopback: string[] = [];
  const BATCH = 50;
  const LIMIT = 400;
  // How a PyTorch cluster user configures a rank: MASTER_ADDR (rank 0's address) and
  // GLOO_SOCKET_IFNAME (this machine's interface towards the others).
  const ifname = (side: 'a' | 'b') => ({ GLOO_SOCKET_IFNAME: VETH[side] });

  test('MASTER_ADDR + GLOO_SOCKET_IFNAME across the veth train to the same parameters as on loopback', async () => {
    const local = await Promise.all((await pair([null, null], '127.0.0.1', [{}, {}], [BATCH, LIMIT])).map((k) => k.done));
    for (const r of local) expect(describeResult(r)).toMatch(/^exit 0 /);
    loopback = params(local[0]);
    expect(loopback.length).toBeGreaterThan(0);
    expect(params(local[1])).toEqual(loopback);
    // Both host names resolve to loopback, as on many a machine: only the interfaces
    // named in GLOO_SOCKET_IFNAME reach the other rank.
    setHosts('a', '127.0.0.1');
    setHosts('b', '127.0.0.1');
    try {
      const res = await Promise.all((await pair([NS.a, NS.b], ADDR.a, [ifname('a'), ifname('b')], [BATCH, LIMIT])).map((k) => k.done));
      for (const r of res) expect(describeResult(r)).toMatch(/^exit 0 /);
      // Bit-identical: same samples, same reduction order; only the transport differs.
      expect(params(res[0])).toEqual(loopback);
      expect(params(res[1])).toEqual(loopback);
    } finally {
      setHosts('a', ADDR.a);
      setHosts('b', ADDR.b);
    }
  }, 60000);

  test("without GLOO_SOCKET_IFNAME, Gloo's default device (the host name's address) works too, beside a rank that sets it", async () => {
    // Rank 0: no GLOO_SOCKET_IFNAME, its host name resolves to its own address (setHosts).
    // Rank 1: its host name resolves to loopback; GLOO_SOCKET_IFNAME names its veth.
    setHosts('b', '127.0.0.1');
    try {
      const res = await Promise.all((await pair([NS.a, NS.b], ADDR.a, [{}, ifname('b')], [BATCH, LIMIT])).map((k) => k.done));
      for (const r of res) expect(describeResult(r)).toMatch(/^exit 0 /);
      expect(params(res[1])).toEqual(params(res[0]));
      if (loopback.length) expect(params(res[0])).toEqual(loopback);
    } finally {
      setHosts('b', ADDR.b);
    }
  }, 60000);

  test('a wrong GLOO_SOCKET_IFNAME fails, naming the variable and the interface; its peer names it as lost', async () => {
    // Only rank 1 is wrong: with both wrong, one run in five ended otherwise (the first
    // to fail can take the store down before the other reaches its own interface).
    const res = await Promise.all((await pair([NS.a, NS.b], ADDR.a, [ifname('a'), { GLOO_SOCKET_IFNAME: 'nosuch0' }], [BATCH, LIMIT])).map((k) => k.done));
    expect(describeResult(res[1])).toMatch(/^exit 3 /);
    expect(res[1].stderr).toMatch(new RegExp(`rank 1 failed: .*GLOO_SOCKET_IFNAME: no usable network interface 'nosuch0' on this machine \\(it has: lo, ${VETH.b}\\)`));
    // Without waiting out the timeout (the time includes starting node and libtorch).
    expect(res[1].ms).toBeLessThan(TIMEOUT_MS + 2000);
    // Rank 0 waits for it in vain, and gives up within the timeout, naming it.
    expect(describeResult(res[0])).toMatch(/^exit 3 /);
    expect(res[0].stderr).toMatch(/rank 0 failed: .*rank 1/);
    expect(res[0].ms).toBeLessThan(TIMEOUT_MS + 8000);
  }, 60000);

  test('the link taken down mid-epoch: both ranks fail within the timeout, each naming the other', async () => {
    const ranks = await pair([NS.a, NS.b], ADDR.a, [ifname('a'), ifname('b')], [BATCH, 12000]);
    let downAt = 0;
    try {
      await allPrinted(ranks, /batch 3\n/, 30000);
      const down = ip('-n', NS.b, 'link', 'set', VETH.b, 'down');
      downAt = Date.now();
      expect(down).toEqual({ ok: true, err: '' });
      const res = await Promise.all(ranks.map((k) => k.done));
      for (const r of res) {
        expect(describeResult(r)).toMatch(/^exit 3 /);
        expect(r.stdout).not.toMatch(/done cost/);
        // The collective's timeout, then a few heartbeat periods to tell who stopped
        // (rank 1 also waits out its store read, blocked on the lost link: about 2 x TIMEOUT_MS).
        expect(r.exitedAt - downAt).toBeLessThan(2 * TIMEOUT_MS + 5000);
      }
      // Rank 0 hosts the store: rank 1's heartbeats stop reaching it.
      expect(res[0].stderr).toMatch(/rank 0 failed: Lost rank 1; rank 0 stops: /);
      // Rank 1 cannot reach the store any more, so the lost one is rank 0.
      expect(res[1].stderr).toMatch(/rank 1 failed: Lost rank 0 \(it hosts the store, which no longer answers\); rank 1 stops: /);
    } finally {
      for (const k of ranks) if (k.child.exitCode === null) k.child.kill('SIGKILL');
      ip('-n', NS.b, 'link', 'set', VETH.b, 'up');
    }
  }, 60000);
});
