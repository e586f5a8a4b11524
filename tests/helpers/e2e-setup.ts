/**
 * The start and end every e2e file shares, registered as the calling file's (or describe block's) vitest hooks:
 * a headless Debian Chromium, and with `useBuiltApp` also the built app served with its headers (vite preview).
 * Hooks registered after these run after them, and their afterAll before these close the browser and the server.
 *
 *   const app = useBuiltApp();
 *   it('…', async () => {
 *     const page = await app.browser.newPage();
 *     await page.goto(app.origin);
 *   });
 */
import { afterAll, beforeAll } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium } from './chromium.ts';
import { startPreview } from './preview.ts';

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not started: use it inside a test or a later hook`);
  return value;
}

/** A headless Chromium for the calling file's tests, closed after them. */
export function useChromium(): { readonly browser: Browser } {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return {
    get browser() {
      return started(browser, 'Chromium');
    },
  };
}

/** The built app (`dist/`, served by vite preview with the deployment's headers) and a Chromium to drive it. */
export function useBuiltApp(): { readonly browser: Browser; readonly origin: string } {
  let app: Awaited<ReturnType<typeof startPreview>> | undefined;
  beforeAll(async () => {
    app = await startPreview();
  });
  afterAll(async () => {
    await app?.close();
  });
  const chromium = useChromium();
  return {
    get browser() {
      return chromium.browser;
    },
    get origin() {
      return started(app, 'The built app').origin;
    },
  };
}
