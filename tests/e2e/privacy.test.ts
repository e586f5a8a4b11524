/**
 * The Privacy page on the built app, served with the deployment's headers, driven like a user in Chromium:
 *
 * - It is reached from the page tabs with the keyboard (End on the tab list).
 * - The policy it shows is the one served: the CSP <meta> of the built index.html, which is the header's policy
 *   less `frame-ancestors` (a <meta> cannot carry it).
 * - After "Try it with a sample" and caching at 96 px, the storage list shows the image cache with its measured
 *   size (at least 1,007 × 96 × 96 × 3 bytes of pixels), and deleting it (with the confirm step) removes it from
 *   the list and from the browser's storage.
 * - The request count covers every request the page made, all to the page's own origin (checked against
 *   Playwright's own record of the page's requests); after the service worker stored the app and the page
 *   reloaded, no request went over the network to another origin.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { recordRequests } from '../helpers/chromium.ts';
import { useBuiltApp } from '../helpers/e2e-setup.ts';

const SAMPLE_IMAGES = 1007;

describe('the Privacy page', () => {
  const app = useBuiltApp();

  const openPrivacy = async (page: Page) => {
    await page.getByRole('tab', { selected: true }).focus();
    await page.keyboard.press('End');
    await page.getByTestId('privacy-page').waitFor();
    expect(await page.getByRole('tab', { selected: true }).textContent()).toContain('Privacy');
  };

  it('shows the policy served, the stored dataset with its size (and deletes it), and same-origin requests only', async () => {
    const context = await app.browser.newContext();
    const page = await context.newPage();
    const recorded = recordRequests(page);
    const response = await page.goto(app.origin);
    const header = response!.headers()['content-security-policy'];
    expect(header).toContain("connect-src 'self'");
    const html = await response!.text();
    const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
    expect(meta).toBeDefined();

    // Cache the sample at 96 px (the quickest size), so that there is a dataset in browser storage.
    await page.getByRole('button', { name: 'Try it with a sample' }).click();
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: `Decode and cache 1,007 images` }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });

    // The Train page keeps its form in localStorage, which the storage list counts in settings.
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('train-page').waitFor();
    await openPrivacy(page);
    // 1. The policy in force is the one the server sent in the page.
    const shown = (await page.getByTestId('csp-policy').textContent())!.trim();
    expect(shown).toBe(
      meta!
        .replace(/&#39;/g, "'")
        .replace(/&quot;/g, '"')
        .replace(/&amp;/g, '&'),
    );
    const withoutFrameAncestors = header!
      .split(';')
      .map((d) => d.trim())
      .filter((d) => !d.startsWith('frame-ancestors'))
      .join('; ');
    expect(shown).toBe(withoutFrameAncestors);
    expect(await page.getByTestId('csp-violations').textContent()).toContain('No request was blocked');

    // 2. The cached sample is listed with its size, and one click (and a confirm) deletes it.
    const cacheRow = page.locator(
      '[data-testid="storage-item"][data-key="opfs:lesion-lab-cache/images at 96 px"]',
    );
    await cacheRow.waitFor();
    const bytes = Number(await cacheRow.getByTestId('storage-size').getAttribute('data-bytes'));
    expect(bytes).toBeGreaterThanOrEqual(SAMPLE_IMAGES * 96 * 96 * 3);
    expect(await cacheRow.getByTestId('storage-size').textContent()).toMatch(/^\d+\.\d MB$/);
    expect((await cacheRow.textContent())!.replace(/\s+/g, ' ')).toContain('(2 files)');
    // One of a kind is counted in the singular, with the kind's own unit.
    const formRow = page.locator('[data-testid="storage-item"][data-key="local:lesion-lab:train-form"]');
    expect((await formRow.textContent())!.replace(/\s+/g, ' ')).toContain('(1 setting)');
    const opfsFiles = () =>
      page.evaluate(async () => {
        const root = await navigator.storage.getDirectory();
        const names: string[] = [];
        try {
          const dir = await root.getDirectoryHandle('lesion-lab-cache');
          for await (const key of (dir as unknown as { keys(): AsyncIterable<string> }).keys())
            names.push(key);
        } catch {
          // no cache folder at all
        }
        return names.sort();
      });
    expect(await opfsFiles()).toEqual(['index-96.json', 'pixels-96.rgb']);
    await cacheRow.getByTestId('storage-delete').click();
    await cacheRow.getByTestId('storage-confirm-delete').click();
    await cacheRow.waitFor({ state: 'detached' });
    expect(await opfsFiles()).toEqual([]);
    expect(await page.getByRole('status').filter({ hasText: 'Deleted lesion-lab-cache' }).count()).toBe(1);

    // 3. Every request so far went to this origin, and the page's count agrees with Playwright's record.
    const foreign = page.getByTestId('request-foreign');
    expect(await foreign.getAttribute('data-count')).toBe('0');
    expect(await foreign.textContent()).toContain(`all to this site (${app.origin})`);
    expect(recorded.foreign(app.origin)).toEqual([]);
    const counted = Number((await page.getByTestId('request-count').textContent())!.replace(/,/g, ''));
    const pageRequests = await page.evaluate(
      () =>
        performance.getEntriesByType('resource').filter((e) => !/^(data|blob):/.test(e.name)).length +
        performance.getEntriesByType('navigation').length,
    );
    expect(counted).toBe(pageRequests);
    expect(counted).toBeGreaterThan(3);

    // 4. Once the service worker has stored the app, a reload makes no request to the network for the app's files.
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await page.reload();
    await page.getByTestId('offline-ready').waitFor();
    await openPrivacy(page);
    expect(await page.getByTestId('request-foreign').getAttribute('data-count')).toBe('0');
    const afterReload = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .filter((e) => (e as PerformanceResourceTiming).transferSize > 0)
        .map((e) => e.name),
    );
    expect(afterReload).toEqual([]);
    await context.close();
  });
});
