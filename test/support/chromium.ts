// Debian's headless Chromium for the browser tests, driven by playwright-core (never a
// downloaded browser build). `.ci/run` installs it; without it a test is skipped loudly here,
// and fails under CI=true.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here (false: they can). */
export function chromiumSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true')
    throw new Error(`${CHROMIUM} is missing: .ci/run should have installed chromium`);
  const skip = `${CHROMIUM} is missing (apt-get install chromium)`;
  process.stderr.write(`\n!!! browser test SKIPPED: ${skip} !!!\n\n`);
  return skip;
}

/**
 * A headless Chromium with an empty profile and no background networking (this machine's
 * closed network refuses those connections).
 *
 * @example
 * ```ts
 * const context = await launchChromium();
 * const page = await context.newPage();
 * ```
 */
export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sg-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
