// The service's live page (examples/service/public) in headless Chromium: train and
// watch the loss, cancel, draw a digit and read it, on a desktop and a phone screen.
// The service runs in this process from dist/ (it requires the built package); the
// test talks to it only over HTTP. Screenshots go to test-artifacts/.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createServer, Service } from '../../examples/service/server';
import { launch, problems, screenshot, skipReason } from './browser';

// Browser globals for the functions that run in the page (page.evaluate); declared
// here, not through lib "dom", so Node code in the project keeps Node's types only.
declare const document: any, window: any, MutationObserver: any, getComputedStyle: any;

const reason = skipReason();
const suite = reason ? describe.skip : describe;
if (reason) {
  // Jest lists no test names for a file whose tests all skip; say why here as well.
  console.warn(reason);
  test.skip(reason, () => undefined);
}

jest.setTimeout(60000);

let dataDir: string;
let service: Service;
let base: string;
let browser: Browser;

/** A quick model's options: about a second on one thread. */
const QUICK = { epochs: 1, limit: 1000, batchSize: 20, lr: 0.003, testLimit: 500, threads: 1, seed: 0 };

beforeAll(async () => {
  if (reason) return;
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-e2e-'));
  service = createServer({ dataDir });
  ({ url: base } = await service.listen(0, '127.0.0.1'));
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await service?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** A new page (own context: no shared state between tests) with its problems recorded. */
async function open(viewport = { width: 1280, height: 900 }, options: { hasTouch?: boolean; isMobile?: boolean } = {}) {
  const context: BrowserContext = await browser.newContext({ viewport, deviceScaleFactor: 1, ...options });
  const page = await context.newPage();
  const issues = problems(page);
  await page.goto(base + '/');
  await page.waitForSelector('body[data-ready="true"]');
  return { page, issues, close: () => context.close() };
}

/** Fills the training form (empty string: leave the field empty). */
async function fillForm(page: Page, values: Record<string, string | number>) {
  for (const [name, v] of Object.entries(values)) {
    const el = page.locator(`#train-form [name="${name}"]`);
    if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(String(v));
    else await el.fill(String(v));
  }
}

/** Makes sure the service has a model (the training test makes one; alone, this trains it over HTTP). */
async function ensureModel() {
  const models: any = await (await fetch(base + '/models')).json();
  if (models.default) return;
  const r = await fetch(base + '/train', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(QUICK) });
  const { id }: any = await r.json();
  for (const until = Date.now() + 30000; Date.now() < until; ) {
    const job: any = await (await fetch(`${base}/jobs/${id}`)).json();
    if (job.state === 'succeeded') return;
    if (job.state !== 'running') throw new Error(`quick training ${job.state}: ${job.error}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('quick training took over 30 s');
}

/** Draws strokes with a finger (Chromium's touch input, through the DevTools protocol). */
async function drawTouch(page: Page, strokes: [number, number][][]) {
  const box = (await page.locator('#pad').boundingBox())!;
  const cdp = await page.context().newCDPSession(page);
  for (const stroke of strokes) {
    const pts: { x: number; y: number }[] = [];
    for (let i = 0; i + 1 < stroke.length; i++) {
      const [[x0, y0], [x1, y1]] = [stroke[i], stroke[i + 1]];
      for (let k = 0; k <= 12; k++) pts.push({ x: box.x + (x0 + ((x1 - x0) * k) / 12) * box.width, y: box.y + (y0 + ((y1 - y0) * k) / 12) * box.height });
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [pts[0]] });
    for (const p of pts.slice(1)) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [p] });
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  }
  await cdp.detach();
}

/** Draws strokes (lists of points in 0..1 of the pad) with the mouse. */
async function draw(page: Page, strokes: [number, number][][]) {
  const box = (await page.locator('#pad').boundingBox())!;
  for (const stroke of strokes) {
    const at = ([x, y]: [number, number]) => [box.x + x * box.width, box.y + y * box.height] as const;
    await page.mouse.move(...at(stroke[0]));
    await page.mouse.down();
    for (const p of stroke.slice(1)) await page.mouse.move(...at(p), { steps: 12 });
    await page.mouse.up();
  }
}

const ONE: [number, number][][] = [[[0.5, 0.18], [0.5, 0.82]]];

suite('page: throw cases', () => {
  test('before any model: the page says so, offers to train, and a drawing sends no request', async () => {
    const { page, issues, close } = await open();
    try {
      await expect(page.locator('#model-status').textContent()).resolves.toMatch(/No trained model yet/);
      await expect(page.locator('#no-model').isVisible()).resolves.toBe(true);
      await expect(page.locator('#train-quick').isEnabled()).resolves.toBe(true);
      const predicts: string[] = [];
      page.on('request', (r) => r.url().endsWith('/predict') && predicts.push(r.url()));
      await draw(page, ONE);
      await page.waitForTimeout(200);
      expect(predicts).toEqual([]);
      await expect(page.locator('#pred-digit').textContent()).resolves.toBe('–');
      await screenshot(page, 'page-no-model.png');
      expect(issues).toEqual([]);
    } finally {
      await close();
    }
  });

  test('a refused option shows the service message and starts nothing', async () => {
    const { page, issues, close } = await open();
    try {
      await fillForm(page, { lr: '-1' });
      await page.locator('#start').click();
      await expect(page.locator('#train-error').textContent()).resolves.toBe('');
      // The browser's own check stops it first; with that bypassed the service answers 400.
      await page.locator('#f-lr').evaluate((el: any) => el.removeAttribute('min'));
      await page.locator('#start').click();
      await page.waitForSelector('#train-error:not([hidden])');
      await expect(page.locator('#train-error').textContent()).resolves.toMatch(/Expected a positive number for lr but received -1/);
      await expect(page.locator('#job-state').textContent()).resolves.toBe('idle');
      // The 400 itself is the only problem (Chromium logs every 4xx to the console too).
      expect(issues.sort()).toEqual([
        expect.stringMatching(/^HTTP 400: POST .*\/train$/),
        expect.stringMatching(/^console.error: Failed to load resource: .* 400/),
      ]);
      expect(((await (await fetch(base + '/jobs')).json()) as any).jobs).toEqual([]);
    } finally {
      await close();
    }
  });

  test('Cancel stops a long job: the page shows cancelled and the service agrees', async () => {
    const { page, issues, close } = await open();
    try {
      await fillForm(page, { epochs: 3, limit: 60000, batchSize: 100, testLimit: 1000, threads: 1 });
      await expect(page.locator('#cancel').isDisabled()).resolves.toBe(true);
      await page.locator('#start').click();
      await page.waitForFunction(() => Number(document.getElementById('loss-chart')!.dataset.points) >= 2);
      await page.locator('#cancel').click();
      await page.waitForSelector('#job-state[data-state="cancelled"]', { timeout: 15000 });
      await expect(page.locator('#train-status').textContent()).resolves.toMatch(/cancelled/);
      await expect(page.locator('#start').isEnabled()).resolves.toBe(true);
      await expect(page.locator('#accuracy').textContent()).resolves.toBe('–');
      const jobs = ((await (await fetch(base + '/jobs')).json()) as any).jobs;
      expect(jobs.map((j: any) => j.state)).toEqual(['cancelled']);
      await screenshot(page, 'page-cancelled.png');
      expect(issues).toEqual([]);
    } finally {
      await close();
    }
  });
});

suite('page', () => {
  test('trains from the form: the loss curve grows while it runs, then epoch cost and accuracy appear', async () => {
    const { page, issues, close } = await open();
    try {
      await fillForm(page, { ...QUICK, optimizer: 'adam' });
      // Every redraw of the curve, with the time it happened.
      await page.evaluate(() => {
        const svg = document.getElementById('loss-chart')!;
        const seen: { n: number; t: number }[] = [];
        (window as any).seen = seen;
        new MutationObserver(() => seen.push({ n: Number(svg.dataset.points), t: performance.now() })).observe(svg, { attributeFilter: ['data-points'] });
      });
      await page.locator('#start').click();
      await page.waitForFunction(() => Number(document.getElementById('loss-chart')!.dataset.points) >= 3);
      const early = await page.locator('#loss-line').getAttribute('points');
      await screenshot(page, 'page-training.png');
      await page.waitForSelector('#accuracy[data-state="done"]', { timeout: 30000 });
      const late = await page.locator('#loss-line').getAttribute('points');
      const count = (s: string | null) => (s ? s.trim().split(/\s+/).length : 0);
      expect(count(early)).toBeGreaterThanOrEqual(3);
      expect(count(late)).toBe(QUICK.limit / QUICK.batchSize);
      expect(count(late)).toBeGreaterThan(count(early));
      // Drawn as the events came, not at the end: many distinct, increasing counts over time.
      const seen: { n: number; t: number }[] = await page.evaluate(() => (window as any).seen);
      const counts = [...new Set(seen.map((s) => s.n))];
      expect(counts.length).toBeGreaterThanOrEqual(5);
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
      expect(seen[seen.length - 1].t - seen[0].t).toBeGreaterThan(100);
      // Points stay inside the plot, and the loss fell.
      const ys = late!.trim().split(/\s+/).map((p) => Number(p.split(',')[1]));
      expect(Math.min(...ys)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...ys)).toBeLessThanOrEqual(240);
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      expect(mean(ys.slice(-10))).toBeGreaterThan(mean(ys.slice(0, 10))); // y grows downwards
      await expect(page.locator('#epoch-rows tr').count()).resolves.toBe(1);
      await expect(page.locator('#epoch-rows tr td').nth(1).textContent()).resolves.toMatch(/^\d+\.\d{4}$/);
      const accuracy = await page.locator('#accuracy').textContent();
      expect(accuracy).toMatch(/^\d{1,3}\.\d{2} %$/);
      expect(parseFloat(accuracy!)).toBeGreaterThan(50);
      await expect(page.locator('#job-state').textContent()).resolves.toBe('succeeded');
      await expect(page.locator('#model-status').textContent()).resolves.toMatch(/^Model: job-\d+ · \d+\.\d %/);
      await expect(page.locator('#no-model').isHidden()).resolves.toBe(true);
      await screenshot(page, 'page-trained.png');
      expect(issues).toEqual([]);
    } finally {
      await close();
    }
  });

  test('draw a 1 with the mouse: a class, ten bars with numbers, 32 + 64 feature maps; Clear resets', async () => {
    await ensureModel();
    const { page, issues, close } = await open();
    try {
      const sent: any[] = [];
      page.on('request', (r) => r.url().endsWith('/predict') && sent.push(r.postDataJSON()));
      await draw(page, ONE);
      await page.waitForSelector('#pred-digit[data-state="done"]');
      await page.waitForFunction(() => document.querySelectorAll('#maps-layer1 canvas').length === 32);
      // What was sent: 784 grey levels, a vertical stroke centred like MNIST's digits.
      expect(sent).toHaveLength(1);
      expect(sent[0].features).toBe(true);
      const px: number[] = sent[0].pixels;
      expect(px).toHaveLength(784);
      expect(Math.max(...px)).toBeGreaterThan(200);
      let mass = 0, mx = 0, my = 0;
      px.forEach((v, i) => ((mass += v), (mx += v * (i % 28)), (my += v * Math.floor(i / 28))));
      expect(Math.abs(mx / mass - 13.5)).toBeLessThan(1.5);
      expect(Math.abs(my / mass - 13.5)).toBeLessThan(1.5);
      const rows = Array.from({ length: 28 }, (_, y) => px.slice(28 * y, 28 * y + 28).some((v) => v > 64));
      expect(rows.filter(Boolean).length).toBeGreaterThanOrEqual(18); // tall: about 20 of 28 rows

      const digit = await page.locator('#pred-digit').textContent();
      expect(digit).toMatch(/^[0-9]$/);
      await expect(page.locator('#pred-live').textContent()).resolves.toContain(`reads ${digit}`);
      const bars = await page.locator('#bars .bar').evaluateAll((els) =>
        els.map((el) => ({ value: el.querySelector('.bar-value')!.textContent!, width: (el.querySelector('.bar-fill') as any).style.width, top: el.classList.contains('top') })),
      );
      expect(bars).toHaveLength(10);
      const values = bars.map((b) => parseFloat(b.value));
      for (const b of bars) expect(b.value).toMatch(/^\d{1,3}\.\d %$/);
      expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(100, -0.5);
      expect(bars.findIndex((b) => b.top)).toBe(Number(digit));
      expect(Math.max(...values)).toBe(values[Number(digit)]);
      await expect(page.locator('#maps-layer2 canvas').count()).resolves.toBe(64);
      // The maps are drawn: the 14x14 canvases hold different colours, not one fill.
      const distinct = await page.locator('#maps-layer1 canvas').evaluateAll((cs) =>
        cs.map((c) => {
          const d = (c as any).getContext('2d')!.getImageData(0, 0, 14, 14).data;
          const set = new Set<number>();
          for (let i = 0; i < d.length; i += 4) set.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          return set.size;
        }),
      );
      expect(distinct.filter((n) => n > 4).length).toBeGreaterThan(16);
      await screenshot(page, 'page-predicted.png');

      await page.locator('#clear').click();
      await expect(page.locator('#pred-digit').textContent()).resolves.toBe('–');
      const ink = await page.locator('#pad').evaluate((c: any) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let max = 0;
        for (let i = 0; i < d.length; i += 4) max = Math.max(max, d[i]);
        return max;
      });
      expect(ink).toBe(0);
      expect(issues).toEqual([]);
    } finally {
      await close();
    }
  });

  test('keyboard: every control is reached by Tab with a visible focus ring; Clear and Predict work from the keyboard', async () => {
    await ensureModel();
    const { page, issues, close } = await open();
    try {
      const reached: { id: string; outline: string }[] = [];
      for (let i = 0; i < 30; i++) {
        await page.keyboard.press('Tab');
        const f = await page.evaluate(() => {
          const el = document.activeElement as any;
          const s = getComputedStyle(el);
          return { id: el.id, outline: `${s.outlineStyle} ${s.outlineWidth}` };
        });
        if (!f.id || reached.some((r) => r.id === f.id)) break;
        reached.push(f);
        if (f.id === 'start') await screenshot(page, 'page-focus.png', false);
      }
      const ids = reached.map((r) => r.id);
      for (const id of ['f-epochs', 'f-limit', 'f-batch', 'f-lr', 'f-optimizer', 'f-seed', 'f-test-limit', 'f-threads', 'start', 'clear', 'predict']) {
        expect(ids).toContain(id);
      }
      for (const r of reached) expect({ id: r.id, outline: r.outline }).toEqual({ id: r.id, outline: expect.stringMatching(/^solid [1-9]/) });
      // Every control has a label a screen reader reads.
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, button, canvas#pad')]
          .filter((el) => {
            const e = el as any;
            const text = (e.labels?.length ? e.labels[0].textContent : '') || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' ? e.textContent : '');
            return !text || !text.trim();
          })
          .map((el) => el.id),
      );
      expect(unlabelled).toEqual([]);
      await expect(page.locator('#pad').getAttribute('aria-describedby')).resolves.toBe('pad-help');
      await expect(page.locator('#pred-live').getAttribute('aria-live')).resolves.toBe('polite');

      await draw(page, ONE);
      await page.waitForSelector('#pred-digit[data-state="done"]');
      await page.locator('#clear').focus();
      await page.keyboard.press('Enter');
      await expect(page.locator('#pred-digit').textContent()).resolves.toBe('–');
      await draw(page, ONE);
      await page.waitForSelector('#pred-digit[data-state="done"]');
      const first = await page.locator('#pred-digit').textContent();
      await page.locator('#predict').focus();
      const again = page.waitForResponse((r) => r.url().endsWith('/predict'));
      await page.keyboard.press('Space');
      expect((await again).status()).toBe(200);
      await expect(page.locator('#pred-digit').textContent()).resolves.toBe(first);
      expect(issues).toEqual([]);
    } finally {
      await close();
    }
  });

  test('a phone screen (390x844): one column, no horizontal scroll, the pad fits, drawing with a finger works', async () => {
    await ensureModel();
    const { page, issues, close } = await open({ width: 390, height: 844 }, { hasTouch: true, isMobile: true });
    try {
      const sizes = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth,
        cards: [...document.querySelectorAll('.card')].map((c) => c.getBoundingClientRect()).map((r) => [Math.round(r.left), Math.round(r.right)]),
      }));
      expect(sizes.client).toBe(390);
      expect(sizes.scroll).toBeLessThanOrEqual(sizes.client);
      for (const [left, right] of sizes.cards) {
        expect(left).toBeGreaterThanOrEqual(0);
        expect(right).toBeLessThanOrEqual(390);
      }
      await screenshot(page, 'page-phone-top.png', false);
      const pad = (await page.locator('#pad').boundingBox())!;
      expect(pad.width).toBeGreaterThanOrEqual(250);
      expect(pad.x + pad.width).toBeLessThanOrEqual(390);
      await page.locator('#pad').scrollIntoViewIfNeeded();
      await drawTouch(page, ONE);
      await page.waitForSelector('#pred-digit[data-state="done"]');
      await page.waitForFunction(() => document.querySelectorAll('#maps-layer2 canvas').length === 64);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.locator('#pred-digit').scrollIntoViewIfNeeded();
      await screenshot(page, 'page-phone-predicted.png', false);
      await screenshot(page, 'page-phone.png');
      expect(issues).toEqual([]);
    } finally {
      await close();
    }
  });
});
