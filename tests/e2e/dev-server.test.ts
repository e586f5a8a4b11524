/**
 * `npm run dev` as a developer runs it: the security headers come from the dev server (no CSP <meta> is needed or
 * added), nothing violates the CSP on any page, and no service worker or manifest is involved, so an edit shows
 * on reload instead of a cached copy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type ViteDevServer } from 'vite';
import { join } from 'node:path';
import { PAGES } from '../../src/state/nav.svelte.ts';
import { recordRequests } from '../helpers/chromium.ts';
import { useChromium } from '../helpers/e2e-setup.ts';

const root = join(import.meta.dirname, '..', '..');

describe('the dev server', () => {
  let server: ViteDevServer;
  const chromium = useChromium();
  let origin: string;

  beforeAll(async () => {
    server = await createServer({
      root,
      server: { host: '127.0.0.1', port: 0, strictPort: false },
      logLevel: 'warn',
    });
    await server.listen();
    const address = server.httpServer?.address();
    if (!address || typeof address === 'string') throw new Error('the dev server has no port');
    origin = `http://localhost:${address.port}`;
  });

  afterAll(async () => {
    await server?.close();
  });

  it('serves every page under its CSP header with no violation, and registers no service worker', async () => {
    const page = await chromium.browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await page.exposeFunction('reportViolation', (text: string) => problems.push(`violation: ${text}`));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        (window as unknown as { reportViolation(t: string): void }).reportViolation(
          `${e.effectiveDirective} ${e.blockedURI}`,
        );
      });
    });
    const requests = recordRequests(page);

    const response = await page.goto(origin);
    expect(response?.headers()['content-security-policy']).toContain("connect-src 'self'");
    await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();
    for (const { id, label } of PAGES.filter((p) => p.available)) {
      await page.getByRole('tab', { name: label }).click();
      await page.locator(`#panel-${id}`).getByRole('heading').first().waitFor();
    }

    const state = await page.evaluate(async () => ({
      isolated: crossOriginIsolated,
      registrations: (await navigator.serviceWorker.getRegistrations()).length,
      manifest: document.querySelector('link[rel="manifest"]') !== null,
      cspMeta: document.querySelector('meta[http-equiv="Content-Security-Policy"]') !== null,
    }));
    expect(state).toEqual({ isolated: true, registrations: 0, manifest: false, cspMeta: false });
    // The threaded WASM build's helper worker and glue (deploy/vite-plugin-wasm-threads.ts), with the headers that
    // keep a helper worker cross-origin isolated.
    for (const name of ['pthread-worker.js', 'tfjs-backend-wasm-threaded-simd.js']) {
      const file = await page.request.get(`${origin}/tfjs-wasm/4.22.0/${name}`);
      expect(file.status(), name).toBe(200);
      expect(file.headers()['cross-origin-embedder-policy'], name).toBe('require-corp');
      expect(file.headers()['content-type'], name).toMatch(/javascript/);
    }
    expect(problems).toEqual([]);
    expect(requests.foreign(origin)).toEqual([]);
    await page.close();
  });
});
