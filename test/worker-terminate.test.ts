// Ending a worker thread at any point of its native work ends only that worker.
// Before, a Napi::Error thrown while the worker's environment was being torn down
// escaped a native callback and std::terminate()d the whole process. Each case runs
// in a child process (test/fixtures/terminate/run.js), so a crash is a failed
// assertion here instead of the end of jest.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { N } from '../lib/native';

const runJs = path.join(__dirname, 'fixtures', 'terminate', 'run.js');

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  result: { mode: string; alive: boolean; codes: (number | string)[] } | null;
  stderr: string;
}

function run(mode: string, rounds?: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const args = [runJs, mode, ...(rounds ? [String(rounds)] : [])];
    execFile(process.execPath, args, { timeout: 90000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
      const line = stdout.trim().split('\n').pop() ?? '';
      let result: Outcome['result'] = null;
      try {
        result = JSON.parse(line);
      } catch {
        result = null;
      }
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, result, stderr: stderr.slice(-2000) });
    });
  });
}

describe('worker termination during native work', () => {
  test('worker.terminate() at 20 random points: exit code 1, the process goes on', async () => {
    const o = await run('terminate', 20);
    expect({ code: o.code, signal: o.signal, stderr: o.code === 0 ? '' : o.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(o.result).toEqual({ mode: 'terminate', alive: true, codes: new Array(20).fill(1) });
  }, 120000);

  test('worker.terminate() while the worker may still be loading the addon: the process goes on', async () => {
    const o = await run('terminate-early', 15);
    expect({ code: o.code, signal: o.signal, stderr: o.code === 0 ? '' : o.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(o.result?.alive).toBe(true);
    // 1 once the worker runs; 0 when it is stopped before it ran any JS.
    expect(o.result?.codes.filter((c) => c !== 0 && c !== 1)).toEqual([]);
  }, 120000);

  const gloo = N.distAvailable().gloo;
  const distName = 'worker.terminate() while c10d collectives are in flight: exit code 1, the process goes on';
  (gloo ? test : test.skip)(gloo ? distName : `${distName} [skipped: ${N.distAvailable().reason}]`, async () => {
    const o = await run('distributed', 10);
    expect({ code: o.code, signal: o.signal, stderr: o.code === 0 ? '' : o.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(o.result).toEqual({ mode: 'distributed', alive: true, codes: new Array(10).fill(1) });
  }, 120000);

  test('process.exit() inside a worker mid-work ends that worker with its code', async () => {
    const o = await run('exit-in-worker', 6);
    expect({ code: o.code, signal: o.signal, stderr: o.code === 0 ? '' : o.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(o.result).toEqual({ mode: 'exit-in-worker', alive: true, codes: new Array(6).fill(7) });
  }, 120000);

  test('process.exit() in the main thread while workers compute exits cleanly', async () => {
    for (let i = 0; i < 3; i++) {
      const o = await run('main-exit');
      expect({ code: o.code, signal: o.signal, stderr: o.code === 0 ? '' : o.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(o.result?.alive).toBe(true);
    }
  }, 120000);

  const hasDist = fs.existsSync(path.join(__dirname, '..', 'dist', 'worker', 'entry.js'));
  const name = 'runInWorker() cancelled past abortGraceMs: AbortError, the process goes on';
  (hasDist ? test : test.skip)(hasDist ? name : `${name} [skipped: dist/ is missing; npm run build:ts]`, async () => {
    const o = await run('run-in-worker', 5);
    expect({ code: o.code, signal: o.signal, stderr: o.code === 0 ? '' : o.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(o.result).toEqual({ mode: 'run-in-worker', alive: true, codes: new Array(5).fill('AbortError') });
  }, 120000);
});
