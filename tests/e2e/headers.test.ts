import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium, recordRequests } from '../helpers/chromium.ts';
import { startPreview } from '../helpers/preview.ts';

describe('the built app is served cross-origin isolated and sealed to its origin', () => {
  let browser: Browser;
  let app: Awaited<ReturnType<typeof startPreview>>;
  beforeAll(async () => {
    app = await startPreview();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('sends COOP/COEP and a CSP that allows no foreign connection', async () => {
    const page = await browser.newPage();
    const requests = recordRequests(page);
    const response = await page.goto(app.origin);
    const headers = response!.headers();
    expect(headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect(headers['content-security-policy']).toContain("connect-src 'self'");
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    const blocked = await page.evaluate(async () => {
      try {
        await fetch('https://example.org/');
        return false;
      } catch {
        return true;
      }
    });
    expect(blocked).toBe(true);
    await page.close();
    // The blocked fetch is refused by the CSP before any request is made.
    expect(requests.foreign(app.origin)).toEqual([]);
  });
});
