import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describe, it } from 'vitest';

/** Debian's Chromium (no browser downloads). Override with AGENTWIRE_CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.AGENTWIRE_CHROMIUM_PATH || '/usr/bin/chromium';
/** CI sets this: a missing Chromium is then a failure, never a skip. */
export const BROWSER_REQUIRED = process.env.AGENTWIRE_REQUIRE_BROWSER === '1';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function missingReason(): string | undefined {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return undefined;
  } catch {
    return `Chromium is not installed at ${CHROMIUM_PATH} (Debian: apt-get install chromium)`;
  }
}

/**
 * `describe` for suites that need a real Chromium. Without one the suite is skipped with a loud
 * warning, unless AGENTWIRE_REQUIRE_BROWSER=1, in which case it fails.
 */
export function describeWithBrowser(name: string, suite: () => void): void {
  const missing = missingReason();
  if (!missing) {
    describe(name, suite);
    return;
  }
  if (BROWSER_REQUIRED) {
    describe(name, () => {
      it('has a Chromium to run in', () => {
        throw new Error(`AGENTWIRE_REQUIRE_BROWSER=1 but ${missing}`);
      });
    });
    return;
  }
  const bar = '!'.repeat(100);
  console.warn(`\n${bar}\n!!! SKIPPING browser tests "${name}": ${missing}.\n!!! Set AGENTWIRE_REQUIRE_BROWSER=1 to make this a failure (CI does).\n${bar}\n`);
  describe.skip(name, suite);
}

/** Headless Chromium with the flags CI uses; every launch gets a fresh profile. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 20_000 });
}
