// Shared by the browser tests: Debian's Chromium driven by playwright-core, a record
// of everything that went wrong on a page, and the screenshot folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';

/** The browser the tests drive; CHROMIUM_PATH overrides it. Never a downloaded one. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can. */
export function skipReason(): string | null {
  if (!fs.existsSync(CHROMIUM)) return `e2e skipped: ${CHROMIUM} not found (apt-get install chromium, or set CHROMIUM_PATH)`;
  let pw: { version: string; engines?: { node?: string } };
  try {
    pw = require('playwright-core/package.json');
  } catch {
    return 'e2e skipped: playwright-core is not installed (npm install --save-dev playwright-core@1)';
  }
  // playwright-core exits the whole process (not throws) on a Node older than it supports
  // (1.65: `engines.node` >=20), which would take the jest worker down with it.
  const min = Number(/\d+/.exec(pw.engines?.node ?? '')?.[0] ?? 0);
  if (Number(process.versions.node.split('.')[0]) < min) {
    return `e2e skipped: playwright-core ${pw.version} needs Node ${pw.engines?.node} (this is ${process.version})`;
  }
  return null;
}

/**
 * Launches headless Chromium with the flags this machine needs: no sandbox (root),
 * no GPU, and no background connections (the network is closed). Playwright gives
 * every launch a new empty profile directory of its own.
 */
export async function launch(): Promise<Browser> {
  // Required lazily so a machine without playwright-core only skips.
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
}

/** Collects console errors, uncaught exceptions, failed requests and HTTP errors of a page. */
export function problems(page: Page): string[] {
  const list: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') list.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => list.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => list.push(`request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    if (r.status() >= 400) list.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  return list;
}

/** test-artifacts/ at the repository root (gitignored): screenshots to look at after a run. */
export const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage });
  return file;
}
