// Mismatched collectives (issue 13): two ranks on this machine call a collective
// with different sizes, dtypes, shapes, roots, counts or collectives. Before, Gloo
// aborted rank 0 (gloo::EnforceNotMet on its transport thread, exit 134) or
// returned garbage; now every rank rejects with the same message naming the
// collective, the argument and both ranks' values, and the group stays usable.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { distributed } from '../lib';
import { freePort } from './helpers';

const rankScript = path.join(__dirname, 'fixtures', 'dist', 'mismatch-rank.js');
const available = distributed.isAvailable();

type Step = { step: string; ok: boolean; value?: unknown; error?: string };
type Ran = { code: number | null; signal: string | null; stdout: string; stderr: string; steps: Step[] };

function runRank(rank: number, port: number, which: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  const child = spawn(process.execPath, [rankScript, String(rank), String(port), which], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const kill = setTimeout(() => child.kill('SIGKILL'), 30000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(kill);
      const steps = stdout.split('\n').filter((l) => l.startsWith('result ')).map((l) => JSON.parse(l.slice(7)) as Step);
      resolve({ code, signal, stdout, stderr, steps });
    });
  });
}

async function pair(which: string, env: NodeJS.ProcessEnv = {}): Promise<Ran[]> {
  const port = await freePort();
  return Promise.all([runRank(0, port, which, env), runRank(1, port, which, env)]);
}

function expectBothReject(ranks: Ran[], which: string, message: string) {
  for (const r of ranks) {
    // Never a crash: both exit normally (an abort was exit code 134 / SIGABRT).
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(r.steps).toEqual([
      { step: which, ok: false, error: message },
      // The group is still usable: ones*1 + ones*2 summed over the ranks.
      { step: 'after', ok: true, value: [3, 3, 3] },
    ]);
  }
}

describe('distributed: mismatched collectives', () => {
  test('checkShapes must be a boolean', () => {
    expect(() => distributed.resolveInitOptions({ checkShapes: 'yes' as any }, {})).toThrow(/Expected true or false for checkShapes/);
    expect(distributed.resolveInitOptions({}, {}).checkShapes).toBe(true);
  });

  if (!available.gloo) {
    test.skip(`c10d tests skipped: ${available.reason}`, () => undefined);
    return;
  }

  const cases: [string, string][] = [
    ['allreduce-size', 'allReduce: tensors[0] differs between ranks: rank 0 has float32 [4] but rank 1 has float32 [5]'],
    ['allreduce-dtype', 'allReduce: tensors[0] differs between ranks: rank 0 has float32 [4] but rank 1 has float64 [4]'],
    ['allgather-size', 'allGather: tensor differs between ranks: rank 0 has float32 [4] but rank 1 has float32 [5]'],
    ['broadcast-shape', 'broadcast: tensors[0] differs between ranks: rank 0 has float32 [2, 3] but rank 1 has float32 [3, 2]'],
    ['broadcast-root', 'broadcast: root differs between ranks: rank 0 has root 0 but rank 1 has root 1'],
    ['broadcast-second', 'broadcast: tensors[1] differs between ranks: rank 0 has int32 [2, 2] but rank 1 has int32 [2]'],
    ['allreduce-count', 'allReduce: the number of tensors differs between ranks: rank 0 has 1 tensor but rank 1 has 2 tensors'],
  ];
  test.each(cases)('%s: both ranks reject with the same message and the group stays usable', async (which, message) => {
    expectBothReject(await pair(which), which, message);
  }, 40000);

  test('allReduce on one rank and allGather on the other: each names its own call and the other', async () => {
    const [a, b] = await pair('allreduce-vs-allgather');
    for (const r of [a, b]) expect([r.code, r.signal]).toEqual([0, null]);
    expect(a.steps[0].error).toBe('allReduce: the collective differs between ranks: rank 0 called allReduce but rank 1 called allGather');
    expect(b.steps[0].error).toBe('allGather: the collective differs between ranks: rank 0 called allReduce but rank 1 called allGather');
    for (const r of [a, b]) expect(r.steps[1]).toEqual({ step: 'after', ok: true, value: [3, 3, 3] });
  }, 40000);

  test('barrier on one rank and allReduce on the other: both reject naming both calls', async () => {
    const [a, b] = await pair('barrier-vs-allreduce');
    for (const r of [a, b]) expect([r.code, r.signal]).toEqual([0, null]);
    expect(a.steps[0].error).toBe('barrier: the collective differs between ranks: rank 0 called barrier but rank 1 called allReduce');
    expect(b.steps[0].error).toBe('allReduce: the collective differs between ranks: rank 0 called barrier but rank 1 called allReduce');
    for (const r of [a, b]) expect(r.steps[1]).toEqual({ step: 'after', ok: true, value: [3, 3, 3] });
  }, 40000);

  test('fuzz: 40 rounds of random collectives, ops, roots, counts, dtypes and shapes per rank: never a crash or a hang, both ranks always agree on the outcome', async () => {
    const [a, b] = await pair('random:7:40');
    for (const r of [a, b]) expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    const [ra, rb] = [a, b].map((r) => r.steps[0].value as { round: number; agree: boolean; kind: string; ok: boolean; error?: string }[]);
    expect(ra).toHaveLength(40);
    expect(rb).toHaveLength(40);
    for (let i = 0; i < 40; i++) {
      // Calls that agree succeed on both ranks; any mismatch rejects on both, with one message
      // (up to each rank's own collective, which starts it).
      expect(ra[i].ok).toBe(rb[i].ok);
      if (ra[i].agree) expect(ra[i].ok).toBe(true);
      if (!ra[i].ok) expect(ra[i].error!.replace(/^\w+: /, '')).toBe(rb[i].error!.replace(/^\w+: /, ''));
    }
    expect(ra.filter((x) => !x.ok).length).toBeGreaterThan(10);
    for (const r of [a, b]) expect(r.steps[1]).toEqual({ step: 'after', ok: true, value: [3, 3, 3] });
  }, 60000);

  test('checkShapes: false skips the check (same element count: broadcast goes through as before)', async () => {
    const [a, b] = await pair('broadcast-shape', { CHECK_SHAPES: '0' });
    for (const r of [a, b]) expect([r.code, r.signal]).toEqual([0, null]);
    expect(a.steps[0]).toEqual({ step: 'broadcast-shape', ok: true, value: [[1, 1, 1], [1, 1, 1]] });
    expect(b.steps[0]).toEqual({ step: 'broadcast-shape', ok: true, value: [[1, 1], [1, 1], [1, 1]] });
  }, 40000);

  test('a c10d/Gloo failure inside the collective rejects (no crash) and names the collective', async () => {
    for (const env of [{}, { CHECK_SHAPES: '0' }]) {
      const [a, b] = await pair('peer-gone', { DIST_TIMEOUT_MS: '3000', ...env });
      expect([a.code, a.signal]).toEqual([0, null]);
      expect([b.code, b.signal]).toEqual([0, null]);
      // libtorch 2.x logs c10d's own warnings (e.g. "sendBytes failed ... Connection reset
      // by peer") to stderr when the peer is gone; anything but such log lines is a crash.
      expect(b.stderr).not.toMatch(/terminate called|Aborted|Segmentation fault|core dumped|FATAL ERROR/);
      expect(b.steps[0].ok).toBe(false);
      expect(b.steps[0].error).toMatch(/^Lost rank 0 .*; rank 1 stops: allReduce\b.*(closed|reset|Read error|Timed out|timeout)/i);
    }
  }, 40000);
});
