// Issue 13, "Service memory": the service's resident memory after PNG bombs, the
// largest PNGs it accepts, and 600 event-stream clients that go away, must come back
// near its baseline. The service runs in a child process (bench/service-rss.js starts
// it, and prints the same figures: `node bench/service-rss.js`), so its RSS
// (/proc/<pid>/status) is its own.
//
// Measured on 2 shared cores, libtorch 1.13 (MiB over the baseline, which was 235-247
// after the warm-up; "before" is commit 1eb311f, its bombs with the IHDR check disabled):
//
//   attack                               before the fixes      after them
//                                        peak    after         peak    after
//   3 PNG bombs (16000x16000 declared)   +1719   +1467         +4      +3
//   12 largest accepted PNGs (~1 MiB)    +19     +11           +16     +7
//   600 aborted streams, finished job    +102    +70           +18     +12
//   600 aborted streams, running job     +169    +120          +78     +22
//   a cancelled job (idleReleaseMs 0)            +47 to +57            -3 to +14
//
// ("after" is cumulative: each attack follows the ones above it in one service.)
// The bounds: a peak within baseline + 64 MiB where no training runs, and every
// "after" within baseline + 48 MiB. The baseline is mostly libtorch's code, which no
// attack moves, so a fixed margin rather than a ratio; 48 MiB is twice the largest
// "after" measured with the fixes (+22, of which ~10 is V8's heap staying sized for
// the burst), and well under the +70 and +120 the streams left before them.
import * as fs from 'node:fs';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const bench = require('../bench/service-rss.js');

const MiB = 1024 * 1024;
const PEAK_MARGIN = 64 * MiB;
const AFTER_MARGIN = 48 * MiB;
const linux = fs.existsSync('/proc/self/status');
const describeLinux = linux ? describe : describe.skip;

interface Svc {
  pid: number;
  port: number;
  stop(): Promise<void>;
  stderr(): string;
}

const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

describeLinux(`the service's RSS comes back after attacks${linux ? '' : ' [skipped: needs /proc]'}`, () => {
  let svc: Svc;
  let baseline = 0;
  let warmJob = '';
  const figures: string[] = [];

  /** Runs an attack; returns its peak and the settled RSS after it, both as a rise over the baseline. */
  async function attack(name: string, fn: () => Promise<unknown>): Promise<{ peak: number; after: number; result: any }> {
    let result: unknown;
    const peak = await bench.peakDuring(svc.pid, async () => {
      result = await fn();
    });
    const after = await bench.settledRss(svc.pid);
    figures.push(`${name}: peak ${mib(peak)} (+${mib(peak - baseline)}), after ${mib(after)} (${after >= baseline ? '+' : '-'}${mib(Math.abs(after - baseline))})`);
    return { peak: peak - baseline, after: after - baseline, result };
  }

  beforeAll(async () => {
    svc = await bench.startService();
    warmJob = await bench.warmUp(svc.port);
    baseline = await bench.settledRss(svc.pid);
    figures.push(`baseline after the warm-up: ${mib(baseline)}`);
  }, 120000);

  afterAll(async () => {
    await svc?.stop();
    // The figures, for the record (jest prints console output of a passing file too).
    console.log(figures.join('\n'));
  });

  test('three PNG bombs (16000x16000 declared, ~250 KB each) are refused without decoding: RSS stays put', async () => {
    const { peak, after, result } = await attack('3 PNG bombs', () => bench.sendBombs(svc.port, 3));
    expect(result).toEqual([400, 400, 400]);
    // Decoding one would allocate 256 MB of rows and a 1 GB RGBA buffer.
    expect(peak).toBeLessThan(PEAK_MARGIN);
    expect(after).toBeLessThan(AFTER_MARGIN);
  });

  test('the largest accepted PNGs (28x28 16-bit RGBA in ~1 MiB bodies) are answered; RSS comes back', async () => {
    const { peak, after, result } = await attack('12 largest accepted PNGs', () => bench.sendLargeAllowed(svc.port, 12));
    expect(result).toEqual(Array(12).fill(200));
    expect(peak).toBeLessThan(PEAK_MARGIN);
    expect(after).toBeLessThan(AFTER_MARGIN);
  });

  test('600 aborted event streams of a finished job (a 1000-event replay each) hold no buffers once gone', async () => {
    const { peak, after, result } = await attack('600 aborted streams, finished job', async () => {
      await bench.abortStreams(svc.port, warmJob, 600);
      return (await bench.request(svc.port, 'GET', '/health')).body.streams;
    });
    expect(result).toBe(0);
    // Queuing each client's whole replay at once, gone or not, peaked ~100 MiB up.
    expect(peak).toBeLessThan(PEAK_MARGIN);
    expect(after).toBeLessThan(AFTER_MARGIN);
  });

  test('600 aborted event streams of a running job, then the job cancelled: RSS comes back', async () => {
    const { after, result } = await attack('600 aborted streams, running job (cancelled after)', async () => {
      const r = await bench.request(svc.port, 'POST', '/train', { limit: 6000, batchSize: 2, epochs: 1, testLimit: 100, threads: 1, seed: 1 });
      expect(r.status).toBe(202);
      const id = r.body.id as string;
      const job = async () => (await bench.request(svc.port, 'GET', `/jobs/${id}`)).body;
      for (let t = Date.now(); !((await job()).lastBatch?.batch > 50); ) {
        if (Date.now() - t > 60000) throw new Error('no batches after 60 s');
        await new Promise((res) => setTimeout(res, 50));
      }
      await bench.abortStreams(svc.port, id, 600);
      const streams = (await bench.request(svc.port, 'GET', '/health')).body.streams;
      expect((await bench.request(svc.port, 'DELETE', `/jobs/${id}`)).status).toBe(202);
      for (let t = Date.now(); (await job()).state === 'running'; ) {
        if (Date.now() - t > 30000) throw new Error('the job did not end 30 s after DELETE');
        await new Promise((res) => setTimeout(res, 50));
      }
      return { streams, state: (await job()).state };
    });
    expect(result).toEqual({ streams: 0, state: 'cancelled' });
    // The peak includes the training itself (MNIST in the worker, its tensors): no bound.
    expect(after).toBeLessThan(AFTER_MARGIN);
  });
});

describeLinux(`a cancelled training job gives its memory back when its thread ends${linux ? '' : ' [skipped: needs /proc]'}`, () => {
  test('without the service\'s idle release (idleReleaseMs: 0), two cancelled jobs leave RSS near the baseline', async () => {
    const svc: Svc = await bench.startService({ options: { idleReleaseMs: 0 } });
    try {
      await bench.warmUp(svc.port, { quick: true });
      const baseline = await bench.settledRss(svc.pid);
      const rises: number[] = [];
      for (let k = 0; k < 2; k++) {
        const r = await bench.request(svc.port, 'POST', '/train', { limit: 6000, batchSize: 2, epochs: 1, testLimit: 100, threads: 1, seed: k });
        expect(r.status).toBe(202);
        const job = async () => (await bench.request(svc.port, 'GET', `/jobs/${r.body.id}`)).body;
        while (!((await job()).lastBatch?.batch > 50)) await new Promise((res) => setTimeout(res, 50));
        await bench.request(svc.port, 'DELETE', `/jobs/${r.body.id}`);
        while ((await job()).state === 'running') await new Promise((res) => setTimeout(res, 50));
        expect((await job()).state).toBe('cancelled');
        rises.push((await bench.settledRss(svc.pid)) - baseline);
      }
      console.log(`cancelled jobs, idleReleaseMs 0: baseline ${mib(baseline)}, after each job ${rises.map((b) => `${b >= 0 ? '+' : ''}${mib(b)}`).join(', ')}`);
      // releaseMemory() ran only on success, before the thread ended: each cancelled job left 47-57 MiB.
      for (const rise of rises) expect(rise).toBeLessThan(32 * MiB);
    } finally {
      await svc.stop();
    }
  });
});
