/**
 * The built app on a host that sends no headers at all, under a sub-path (/lesion-lab/), as on GitHub Pages or
 * `python3 -m http.server`: the CSP carried by the page itself still blocks foreign connections, the app works
 * without cross-origin isolation and says so, the service worker takes over and the app opens offline with its
 * default weights, and a new deployment is announced rather than swapped in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { headersFile } from '../../deploy/security-headers.ts';
import { PAGES } from '../../src/state/nav.svelte.ts';
import { launchChromium, recordRequests } from '../helpers/chromium.ts';
import {
  buildForSubpath,
  goOffline,
  goOnline,
  openApp,
  precachedFiles,
  serveSubpathBuild,
  SUBPATH_OUT_DIR,
  waitForOfflineCopy,
} from '../helpers/static-deploy.ts';
import type { StaticServer } from '../helpers/static-server.ts';
import {
  KAGGLE_ZIP_NAME,
  METADATA_CSV,
  buildKaggleZip,
  makeTempDir,
  readOriginals,
  removeTempDir,
} from '../helpers/zips.ts';

const root = join(import.meta.dirname, '..', '..');
const DEFAULT_WEIGHTS = 'models/mobilenet_v2_0.35';

/** Page errors and console errors, so that a CSP refusal (a style, a worker, the manifest) fails the test. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text()))
      errors.push(`console: ${m.text()}`);
  });
  return errors;
}

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = `${prefix}${entry.name}`;
    if (entry.isDirectory()) out.push(...(await filesUnder(join(dir, entry.name), `${path}/`)));
    else out.push(path);
  }
  return out;
}

describe('the build on a static host with no headers, under a sub-path', () => {
  let browser: Browser;
  let deploy: StaticServer;
  let dir: string;
  const contexts: BrowserContext[] = [];
  const newContext = async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    return context;
  };

  beforeAll(async () => {
    dir = await makeTempDir();
    await buildForSubpath();
    deploy = await serveSubpathBuild();
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await deploy?.close();
    if (dir) await removeTempDir(dir);
  });

  it('writes _headers from the single source, in both builds', async () => {
    for (const dir of [join(root, 'dist'), SUBPATH_OUT_DIR]) {
      expect(await readFile(join(dir, '_headers'), 'utf8'), `${dir}/_headers`).toBe(headersFile());
    }
  });

  it('is sealed to its origin by the CSP in the page, and works without cross-origin isolation', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    const requests = recordRequests(page);
    const response = await page.goto(deploy.url);
    expect(response?.status()).toBe(200);
    // The host sends none of the security headers: only the page protects itself.
    const headers = response!.headers();
    expect(headers['content-security-policy']).toBeUndefined();
    expect(headers['cross-origin-opener-policy']).toBeUndefined();
    await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();

    const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).not.toContain('frame-ancestors');

    const violation = await page.evaluate(async () => {
      const seen = new Promise<{ violated: string; effective: string; blocked: string }>((resolve) => {
        document.addEventListener(
          'securitypolicyviolation',
          (e) =>
            resolve({
              violated: e.violatedDirective,
              effective: e.effectiveDirective,
              blocked: e.blockedURI,
            }),
          { once: true },
        );
      });
      const refused = await fetch('https://example.org/').then(
        () => false,
        () => true,
      );
      return { refused, ...(await seen) };
    });
    expect(violation).toEqual({
      refused: true,
      violated: 'connect-src',
      effective: 'connect-src',
      blocked: 'https://example.org/',
    });

    expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
    const note = page.getByTestId('isolation-note').first();
    expect(await note.getAttribute('data-isolated')).toBe('false');
    expect(await note.textContent()).toMatch(/WebAssembly runs single-threaded/);

    expect(requests.foreign(deploy.origin)).toEqual([]);
    // The only console error allowed is the CSP report of the fetch refused on purpose above.
    expect(errors.filter((e) => !e.includes('https://example.org/'))).toEqual([]);
  });

  it('installs a service worker, then opens offline: every page, and the default weights from the cache', async () => {
    const context = await newContext();
    const page = await openApp(context, deploy);
    const errors = watchErrors(page);
    const requests = recordRequests(page);
    const controller = await waitForOfflineCopy(page);
    expect(controller).toBe(`${deploy.url}sw.js`);
    await page.getByTestId('offline-ready').waitFor();

    // Everything the app needs offline is in the precache; the other backbones' weights are not.
    const cached = await precachedFiles(page);
    const paths = cached.map((f) => f.path);
    const built = await filesUnder(SUBPATH_OUT_DIR);
    const mustHave = built.filter(
      (f) =>
        /^assets\/.*\.(js|css|wasm)$/.test(f) ||
        f.startsWith(`${DEFAULT_WEIGHTS}/`) ||
        /^samples\/.*\.zip$/.test(f) ||
        /^icons\//.test(f) ||
        f === 'index.html' ||
        f === 'manifest.webmanifest',
    );
    expect(mustHave.filter((f) => f.endsWith('.wasm')).length).toBeGreaterThanOrEqual(1);
    expect(mustHave).toContain(`${DEFAULT_WEIGHTS}/model.json`);
    expect(paths.filter((p) => mustHave.includes(p)).sort()).toEqual([...mustHave].sort());
    expect(paths.filter((p) => p.startsWith('models/') && !p.startsWith(`${DEFAULT_WEIGHTS}/`))).toEqual([]);
    const bytes = cached.reduce((sum, f) => sum + f.bytes, 0);
    const largest = [...cached].sort((a, b) => b.bytes - a.bytes).slice(0, 3);
    process.stderr.write(
      `static-deploy: precache ${cached.length} files, ${bytes} bytes; largest ${largest
        .map((f) => `${f.path} ${f.bytes}`)
        .join(', ')}\n`,
    );

    await goOffline(context, deploy);
    try {
      await checkOffline();
    } finally {
      await goOnline(context, deploy);
    }
    expect(requests.foreign(deploy.origin)).toEqual([]);
    expect(errors).toEqual([]);

    async function checkOffline() {
      const servedBefore = deploy.log.length;
      const workers: string[] = [];
      page.on('worker', (worker) => workers.push(worker.url()));
      await page.reload();
      await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();
      for (const { id, label } of PAGES.filter((p) => p.available)) {
        await page.getByRole('tab', { name: label }).click();
        const panel = page.locator(`#panel-${id}`);
        await panel.getByRole('heading').first().waitFor();
        expect((await panel.innerText()).trim().length, `the ${label} page`).toBeGreaterThan(0);
      }

      // The Train and Runs pages start the train and predict workers: their chunks came from the cache too.
      expect(
        workers.some((url) => /\/assets\/train\.worker-[^/]+\.js$/.test(url)),
        workers.join(', '),
      ).toBe(true);
      expect(
        workers.some((url) => /\/assets\/predict\.worker-[^/]+\.js$/.test(url)),
        workers.join(', '),
      ).toBe(true);

      const modelResponse = page.waitForResponse((r) => r.url().endsWith(`${DEFAULT_WEIGHTS}/model.json`));
      const weights = await page.evaluate(async (dir) => {
        const json = await fetch(`${dir}/model.json`);
        const model = (await json.json()) as { weightsManifest: { paths: string[] }[] };
        const shards = model.weightsManifest.flatMap((group) => group.paths);
        let shardBytes = 0;
        for (const shard of shards)
          shardBytes += (await (await fetch(`${dir}/${shard}`)).arrayBuffer()).byteLength;
        const inCache =
          (await caches.match(new URL(`${dir}/model.json`, document.baseURI).href, {
            ignoreSearch: true,
          })) !== undefined;
        return { ok: json.ok, shards: shards.length, shardBytes, inCache };
      }, DEFAULT_WEIGHTS);
      expect(weights.ok).toBe(true);
      expect(weights.inCache).toBe(true);
      expect((await modelResponse).fromServiceWorker()).toBe(true);
      expect(weights.shards).toBeGreaterThan(0);
      expect(weights.shardBytes).toBeGreaterThan(1_000_000);

      // Nothing reached the host while offline, but the browser's own check for a newer sw.js.
      expect(
        deploy.log.slice(servedBefore).filter((line) => !line.startsWith(`GET ${deploy.base}sw.js `)),
      ).toEqual([]);
    }
  });

  it('offline, a first-time visitor trains on the sample with the served default weights and reads the results', async () => {
    const context = await newContext();
    const page = await openApp(context, deploy);
    const errors = watchErrors(page);
    const requests = recordRequests(page);
    await waitForOfflineCopy(page);
    await goOffline(context, deploy);
    try {
      const servedBefore = deploy.log.length;
      await page.reload();
      await page.getByRole('heading', { name: 'Your data' }).waitFor();

      // Data: the sample served with the app (from the offline copy), cached at a small size for speed.
      await page.getByRole('button', { name: 'Try it with a sample' }).click();
      await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
      const matched = Number(
        ((await page.getByTestId('matched-count').textContent()) ?? '').replace(/\D/g, ''),
      );
      expect(matched).toBeGreaterThan(900);
      await page.getByLabel('Image size').selectOption('96');
      await page.getByRole('button', { name: /^Decode and cache/ }).click();
      await page.getByTestId('cache-status').waitFor({ timeout: 300_000 });

      // Train: every default but the size and the number of epochs; the weights are the ones served with the app.
      await page.getByRole('tab', { name: 'Train' }).click();
      await page.getByTestId('train-page').waitFor();
      await page.waitForFunction(
        () => !document.querySelector('[data-testid="train-page"]')?.textContent?.includes('checking…'),
      );
      expect(await page.getByTestId('weights-kind-served').isChecked()).toBe(true);
      await page.getByTestId('image-size').selectOption('96');
      await page.getByTestId('epochs').fill('2');
      await page.getByTestId('start').click();
      await page.getByTestId('train-done').waitFor({ timeout: 480_000 });
      expect(await page.getByTestId('train-error').count()).toBe(0);
      expect(await page.getByTestId('train-done').textContent()).toMatch(
        /test balanced accuracy\s+\d\.\d{3}/,
      );

      // Results: the confusion matrix of the sample's test split.
      await page.getByRole('tab', { name: 'Results' }).click();
      await page.getByTestId('confusion-matrix').waitFor({ timeout: 60_000 });
      const counts = await page
        .locator('[data-testid^="cell-"][data-count]')
        .evaluateAll((cells) => cells.map((c) => Number(c.getAttribute('data-count'))));
      expect(counts).toHaveLength(49);
      expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
      expect(await page.getByTestId('balanced-accuracy').first().textContent()).toMatch(/^\d\.\d{4}$/);

      // Nothing reached the host while offline, but the browser's own check for a newer sw.js.
      expect(
        deploy.log.slice(servedBefore).filter((line) => !line.startsWith(`GET ${deploy.base}sw.js `)),
      ).toEqual([]);
    } finally {
      await goOnline(context, deploy);
    }
    expect(requests.foreign(deploy.origin)).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('announces a new deployment and swaps it in only when the user reloads', async () => {
    const context = await newContext();
    const page = await openApp(context, deploy);
    const first = await waitForOfflineCopy(page);
    await expect(page.getByTestId('update-banner').count()).resolves.toBe(0);

    // A new deployment: a service worker script that differs from the running one.
    const next = `${await readFile(join(SUBPATH_OUT_DIR, 'sw.js'), 'utf8')}\n// the next deployment\n`;
    deploy.route(`${deploy.base}sw.js`, (_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
      response.end(next);
    });
    try {
      await page.evaluate(async () => {
        await (await navigator.serviceWorker.getRegistration())?.update();
      });
      const banner = page.getByTestId('update-banner');
      await banner.waitFor();
      expect(await banner.textContent()).toContain('A new version of Lesion Lab is ready');
      // Nothing runs, so nothing holds the update back.
      expect(await page.getByTestId('update-wait').count()).toBe(0);
      // Still the old version until the user says so.
      expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toBe(first);
      expect(
        await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.waiting?.state),
      ).toBe('installed');

      // While the dataset is being read and cached, the update waits: a reload would stop the ingest.
      const reload = banner.getByRole('button', { name: 'Reload' });
      expect(await reload.isEnabled()).toBe(true);
      const images = readOriginals();
      const zip = await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images });
      await page.getByTestId('file-input').setInputFiles([zip.path, METADATA_CSV]);
      await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
      await page.getByRole('button', { name: `Decode and cache ${images.length} images` }).click();
      await page.getByTestId('update-wait').waitFor();
      expect(await page.getByTestId('update-wait').textContent()).toContain(
        'until the dataset has been read',
      );
      expect(await reload.isDisabled()).toBe(true);
      await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });
      expect(await page.getByTestId('update-wait').count()).toBe(0);
      expect(await reload.isEnabled()).toBe(true);

      await Promise.all([page.waitForEvent('load'), reload.click()]);
      await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();
      const after = await page.evaluate(async () => {
        const registration = await navigator.serviceWorker.getRegistration();
        return {
          waiting: registration?.waiting ?? null,
          controlled: navigator.serviceWorker.controller !== null,
        };
      });
      expect(after).toEqual({ waiting: null, controlled: true });
      expect(await page.getByTestId('update-banner').count()).toBe(0);
    } finally {
      deploy.unroute(`${deploy.base}sw.js`);
    }
  });
});
