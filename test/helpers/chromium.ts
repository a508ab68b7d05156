// Debian's Chromium for the browser suites, driven by playwright-core: whether it is there (without it the suites skip
// locally and fail under CI=true, where .ci/run must have installed it), how it is launched, and where screenshots go.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM) && spawnSync(CHROMIUM, ['--version']).status === 0;
if (!hasChromium) {
  if (process.env.CI === 'true') throw new Error('chromium is not installed: CI must install it (scripts/setup.sh --test)');
  console.warn('skipping the browser suites: chromium is not installed (bash scripts/setup.sh --test installs it)');
}

/** Where the browser suites save screenshots (git-ignored). */
export const OUTPUT = join(__dirname, '..', '..', 'test-output');

/** Headless, without the background traffic a desktop browser makes (updates, sync, QUIC probes). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Launches Chromium before the calling suite's tests and closes it after them; the getter returns it. */
export function useChromium(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });
  return () => browser!;
}
