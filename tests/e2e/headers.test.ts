import { describe, expect, it } from 'vitest';
import { recordRequests } from '../helpers/chromium.ts';
import { useBuiltApp } from '../helpers/e2e-setup.ts';

describe('the built app is served cross-origin isolated and sealed to its origin', () => {
  const app = useBuiltApp();

  it('sends COOP/COEP and a CSP that allows no foreign connection', async () => {
    const page = await app.browser.newPage();
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
