// The training report (`npm run train -- ... --report FILE`) opened in headless
// Chromium: every image loads, nothing is fetched from elsewhere, no console errors.
// Skips with a reason when Chromium is absent or the built CLI has no --report yet.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { launch, problems, screenshot, skipReason } from './browser';

// The page's globals, for the functions that run in it (see page.test.ts).
declare const document: any;

const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'train.js');

function reportReason(): string | null {
  if (!fs.existsSync(cli)) return 'report e2e skipped: dist/cli/train.js is not built (npx tsc -p tsconfig.json)';
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8', timeout: 60000 });
  if (!/--report\b/.test(`${help.stdout}${help.stderr}`)) {
    return 'report e2e skipped: dist/cli/train.js --help lists no --report option yet (build lib/report and rebuild dist/)';
  }
  return null;
}

const browserReason = skipReason();
const cliReason = browserReason ? null : reportReason();
if (browserReason) {
  // Jest lists no test names for a file whose tests all skip; say why here as well.
  console.warn(browserReason);
  test.skip(browserReason, () => undefined);
} else if (cliReason) console.warn(cliReason);

jest.setTimeout(60000);

let browser: Browser;
let dir: string;

beforeAll(async () => {
  if (browserReason) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-report-'));
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Checked {
  issues: string[];
  images: { src: string; ok: boolean }[];
  visuals: number;
  text: string;
}

/** Opens an HTML file and lists what is wrong with it: broken images, outside requests, errors. */
async function check(file: string, shot?: string): Promise<Checked> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const issues = problems(page);
  page.on('request', (r) => {
    if (!/^(file|data|blob):/.test(r.url())) issues.push(`outside request: ${r.url()}`);
  });
  try {
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    const images = await page.evaluate(() =>
      [...document.images].map((img) => ({ src: img.currentSrc.slice(0, 80) || img.getAttribute('src') || '', ok: img.complete && img.naturalWidth > 0 })),
    );
    const visuals = await page.evaluate(() => document.querySelectorAll('img, svg, canvas').length);
    const text = await page.evaluate(() => document.body.innerText);
    if (shot) await screenshot(page, shot);
    return { issues, images, visuals, text };
  } finally {
    await context.close();
  }
}

const suite = browserReason ? describe.skip : describe;

suite('report: throw cases', () => {
  test('the check finds a missing image, a request to another host and a script error', async () => {
    const bad = path.join(dir, 'bad.html');
    fs.writeFileSync(
      bad,
      '<!doctype html><title>bad</title><img src="missing.png" alt="x"><img src="http://127.0.0.1:9/x.png" alt="y"><script>nope()</script>',
    );
    const r = await check(bad);
    expect(r.images).toEqual([
      { src: expect.stringMatching(/missing\.png$/), ok: false },
      { src: 'http://127.0.0.1:9/x.png', ok: false },
    ]);
    expect(r.issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/request failed: GET file:.*missing\.png/),
        expect.stringMatching(/outside request: http:\/\/127\.0\.0\.1:9\/x\.png/),
        expect.stringMatching(/uncaught: nope is not defined/),
      ]),
    );
  });
});

suite('report', () => {
  if (cliReason) {
    test.skip(cliReason, () => undefined);
    return;
  }

  test('a report from npm run train -- --report: all images load, nothing outside, no console errors', async () => {
    const file = path.join(dir, 'r.html');
    const run = spawnSync(
      process.execPath,
      [cli, '--seed', '0', '--limit', '300', '--epochs', '1', '--threads', '1', '--test-limit', '200', '--no-progress', '--report', file],
      { encoding: 'utf8', timeout: 60000 },
    );
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    expect(fs.existsSync(file)).toBe(true);
    const r = await check(file, 'report.png');
    expect(r.issues).toEqual([]);
    expect(r.images.filter((i) => !i.ok)).toEqual([]);
    expect(r.visuals).toBeGreaterThan(0);
    // It reports this run: the accuracy the CLI printed appears, as a fraction or a percentage.
    const acc = Number(/Accuracy: ([\d.]+)/.exec(run.stdout)![1]);
    const forms = [acc.toFixed(4), acc.toFixed(3), acc.toFixed(2), (acc * 100).toFixed(2), (acc * 100).toFixed(1)];
    expect({ text: r.text.slice(0, 200), found: forms.some((f) => r.text.includes(f)) }).toEqual({ text: r.text.slice(0, 200), found: true });
  });
});
