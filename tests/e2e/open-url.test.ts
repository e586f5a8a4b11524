/**
 * The built app opens datasets from URLs on its own origin, like a workshop would serve them: a pack made by
 * `cli pack` from the 240 real originals, downloaded into the browser's private storage over a real connection
 * that range-serves, drops mid-way (the app resumes), or cannot resume (the app says so); a reload mid-download;
 * `?dataset=` on load; the sample button through to a decoded cache; another origin (refused by the CSP, with the
 * message) and a 404 (named). Not one request leaves the page's origin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { openAsBlob } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { listZip } from '../../src/lib/data/archive.ts';
import { recordRequests } from '../helpers/chromium.ts';
import { useChromium } from '../helpers/e2e-setup.ts';
import { startPackServer, type PackServer } from '../helpers/pack-server.ts';
import { METADATA_CSV, ORIGINALS_DIR, PROJECT_ROOT, makeTempDir, removeTempDir } from '../helpers/zips.ts';

const FIELD = 'Or open a dataset zip from this site';

function pack(out: string): Promise<void> {
  return new Promise((done, fail) => {
    execFile(
      join(PROJECT_ROOT, 'node_modules/.bin/tsx'),
      [
        'src/cli/main.ts',
        'pack',
        '--images',
        ORIGINALS_DIR,
        '--csv',
        METADATA_CSV,
        '--size',
        '96',
        '--out',
        out,
      ],
      { cwd: PROJECT_ROOT, encoding: 'utf8' },
      (error, _stdout, stderr) => (error ? fail(new Error(stderr)) : done()),
    );
  });
}

describe('open a dataset from a URL on this site', () => {
  const chromium = useChromium();
  let server: PackServer;
  let dir: string;
  let sampleImages: number;

  beforeAll(async () => {
    dir = await makeTempDir();
    const packPath = join(dir, 'originals-96.zip');
    await pack(packPath);
    const size = (await openAsBlob(packPath)).size;
    server = await startPackServer({ packPath, cutAfter: Math.floor(size * 0.4), slowChunk: 8 * 1024 });
    sampleImages = (
      await listZip(
        await openAsBlob(join(PROJECT_ROOT, 'public/samples/ham10000-sample.zip')),
        'ham10000-sample.zip',
      )
    ).images.length;
  });

  afterAll(async () => {
    await server?.close();
    if (dir) await removeTempDir(dir);
  });

  interface Session {
    context: BrowserContext;
    page: Page;
    done(): Promise<void>;
  }

  /** A fresh browser profile (its own OPFS) on the app; done() checks no page error and no foreign request. */
  async function open(path = '/'): Promise<Session> {
    const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.origin}${path}`);
    return {
      context,
      page,
      async done() {
        expect(errors).toEqual([]);
        expect(requests.foreign(server.origin)).toEqual([]);
        await context.close();
      },
    };
  }

  async function text(page: Page, testId: string): Promise<string> {
    return ((await page.getByTestId(testId).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
  }

  async function openTyped(page: Page, address: string): Promise<void> {
    await page.getByLabel(FIELD).fill(address);
    await page.getByLabel(FIELD).press('Enter');
  }

  async function matched(page: Page): Promise<string> {
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    return text(page, 'matched-count');
  }

  async function alertText(page: Page): Promise<string> {
    const alert = page.locator('[role="alert"] .notice.error');
    await alert.first().waitFor({ timeout: 60_000 });
    return ((await alert.first().textContent()) ?? '').replace(/\s+/g, ' ');
  }

  /** SHA-256 of the downloaded file in the page's OPFS, to compare with the served pack. */
  async function downloadedSha256(page: Page): Promise<string[]> {
    return page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle('lesion-lab-downloads');
      const out: string[] = [];
      for await (const [name, handle] of (
        dir as unknown as { entries(): AsyncIterable<[string, FileSystemFileHandle]> }
      ).entries()) {
        if (!name.endsWith('.zip')) continue;
        const bytes = await (await handle.getFile()).arrayBuffer();
        const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        out.push(Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join(''));
      }
      return out;
    });
  }

  /** Waits until the download bar shows more than `fraction` of the pack. */
  async function downloadedMoreThan(page: Page, fraction: number): Promise<void> {
    await page.waitForFunction(
      (min) =>
        Number(
          document
            .querySelector('[data-stage="downloading"] [role="progressbar"]')
            ?.getAttribute('aria-valuenow'),
        ) > min,
      server.packBytes * fraction,
      { timeout: 60_000 },
    );
  }

  it('downloads a pack from a server with range support and matches its 240 images', async () => {
    const s = await open();
    await openTyped(s.page, '/test-packs/ranged.zip');
    expect(await matched(s.page)).toBe('240 images matched');
    const bar = s.page.locator('[data-stage="downloading"] [role="progressbar"]');
    expect(await bar.getAttribute('aria-valuenow')).toBe(String(server.packBytes));
    expect(await bar.getAttribute('aria-valuemax')).toBe(String(server.packBytes));
    expect(await text(s.page, 'match-report')).toContain('9,775 rows have no image');
    expect(await text(s.page, 'dataset-notice')).toContain(`Opened ${server.origin}/test-packs/ranged.zip`);
    expect(await downloadedSha256(s.page)).toEqual([server.packSha256]);
    expect(server.requestsTo('/test-packs/ranged.zip').map((r) => [r.range, r.status])).toEqual([
      ['bytes=0-', 206],
    ]);

    // Opening it again checks the copy with its last byte and keeps it; the listing is replaced, not doubled.
    await s.page.getByRole('button', { name: 'Open', exact: true }).click();
    await s.page.getByTestId('dataset-notice').filter({ hasText: 'Opened' }).waitFor();
    await s.page.getByRole('button', { name: 'Open', exact: true }).waitFor();
    expect(server.requestsTo('/test-packs/ranged.zip').map((r) => [r.range, r.status])).toEqual([
      ['bytes=0-', 206],
      [`bytes=${server.packBytes - 1}-`, 206],
    ]);
    expect(await text(s.page, 'matched-count')).toBe('240 images matched');
    expect(await text(s.page, 'match-report')).toContain('0 duplicate copies skipped');
    await s.done();
  });

  it('uses the downloaded copy when the server cannot be reached any more', async () => {
    const s = await open();
    await openTyped(s.page, '/test-packs/offline-after-first.zip');
    expect(await matched(s.page)).toBe('240 images matched');
    await s.page.getByRole('button', { name: 'Open', exact: true }).click();
    const notice = s.page.getByTestId('dataset-notice').filter({ hasText: 'cannot be reached' });
    await notice.waitFor({ timeout: 60_000 });
    expect(await notice.textContent()).toContain(
      `using the copy of ${server.origin}/test-packs/offline-after-first.zip downloaded on`,
    );
    expect(await text(s.page, 'matched-count')).toBe('240 images matched');
    // Chromium itself retries a connection closed before any answer, so the closed ones may be several.
    const statuses = server.requestsTo('/test-packs/offline-after-first.zip').map((r) => r.status);
    expect(statuses[0]).toBe(206);
    expect(statuses.length).toBeGreaterThan(1);
    expect(statuses.slice(1).every((status) => status === 0)).toBe(true);
    await s.done();
  });

  it('resumes after the connection drops mid-way, and finishes with every byte right', async () => {
    const s = await open();
    await openTyped(s.page, '/test-packs/cut-once.zip');
    expect(await matched(s.page)).toBe('240 images matched');
    const asked = server.requestsTo('/test-packs/cut-once.zip');
    expect(asked).toHaveLength(2);
    expect(asked[0]).toMatchObject({ range: 'bytes=0-', status: 206 });
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(asked[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(Math.floor(server.packBytes * 0.4));
    expect(asked[1]?.status).toBe(206);
    expect(await downloadedSha256(s.page)).toEqual([server.packSha256]);
    await s.done();
  });

  it('says plainly that a server without range support cannot resume, and a retry from the start works', async () => {
    const s = await open();
    await openTyped(s.page, '/test-packs/no-range.zip');
    const message = await alertText(s.page);
    expect(message).toContain(`${server.origin}/test-packs/no-range.zip`);
    expect(message).toContain(
      `the server at ${server.origin} does not support range requests, so the download cannot resume`,
    );
    expect(message).toContain('Retry from the start');
    expect(await s.page.getByTestId('matched-count').count()).toBe(0);
    // Open it again: the partial file was dropped, so it starts from 0 and this time the connection holds.
    await s.page.getByRole('button', { name: 'Open', exact: true }).click();
    expect(await matched(s.page)).toBe('240 images matched');
    expect(server.requestsTo('/test-packs/no-range.zip').map((r) => [r.range, r.status])).toEqual([
      ['bytes=0-', 200],
      ['bytes=0-', 200],
    ]);
    await s.done();
  });

  it('opens ?dataset= on load, and a reload mid-download resumes from the partial file', async () => {
    const s = await open('/?dataset=test-packs/slow.zip');
    // Wait until more than a second of trickle has been flushed to disk, then reload.
    await downloadedMoreThan(s.page, 0.3);
    await s.page.reload();
    expect(await matched(s.page)).toBe('240 images matched');
    const asked = server.requestsTo('/test-packs/slow.zip');
    expect(asked.length).toBeGreaterThanOrEqual(2);
    expect(asked[0]?.range).toBe('bytes=0-');
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(asked.at(-1)?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(await downloadedSha256(s.page)).toEqual([server.packSha256]);
    await s.done();
  });

  it('resumes a typed URL after a reload without another click, and Forget deletes the download', async () => {
    const s = await open();
    await openTyped(s.page, '/test-packs/slow-typed.zip');
    await downloadedMoreThan(s.page, 0.3);
    await s.page.reload();
    expect(await matched(s.page)).toBe('240 images matched');
    const asked = server.requestsTo('/test-packs/slow-typed.zip');
    expect(asked.length).toBeGreaterThanOrEqual(2);
    expect(Number(/^bytes=(\d+)-$/.exec(asked.at(-1)?.range ?? '')?.[1])).toBeGreaterThan(0);
    expect(await downloadedSha256(s.page)).toEqual([server.packSha256]);

    await s.page.getByRole('button', { name: 'Forget dataset…' }).click();
    await s.page.getByRole('button', { name: 'Forget dataset', exact: true }).click();
    await s.page.getByText('Forgotten:').waitFor();
    const left = await s.page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      const names: string[] = [];
      for await (const name of (root as unknown as { keys(): AsyncIterable<string> }).keys())
        names.push(name);
      return names;
    });
    expect(left).not.toContain('lesion-lab-downloads');
    await s.done();
  });

  it('cancels a download, keeps what it got, and resumes from there when opened again', async () => {
    const s = await open();
    await openTyped(s.page, '/test-packs/slow-cancel.zip');
    await downloadedMoreThan(s.page, 0.3);
    await s.page.getByRole('button', { name: 'Cancel' }).click();
    await s.page.getByTestId('dataset-notice').filter({ hasText: 'Stopped' }).waitFor();
    expect(await text(s.page, 'dataset-notice')).toContain('The part downloaded so far is kept');
    expect(await s.page.locator('[data-stage="downloading"]').getAttribute('class')).toContain('stopped');
    await s.page.getByRole('button', { name: 'Open', exact: true }).click();
    expect(await matched(s.page)).toBe('240 images matched');
    const asked = server.requestsTo('/test-packs/slow-cancel.zip');
    expect(asked).toHaveLength(2);
    expect(Number(/^bytes=(\d+)-$/.exec(asked[1]?.range ?? '')?.[1])).toBeGreaterThan(server.packBytes * 0.3);
    expect(await downloadedSha256(s.page)).toEqual([server.packSha256]);
    await s.done();
  });

  it('tries the sample: matched count, then decode and cache, with its attribution linked', async () => {
    const s = await open();
    const link = s.page.getByTestId('sample-attribution');
    expect(await link.textContent()).toBe('HAM10000 sample, CC BY-NC 4.0, Tschandl et al. 2018, downscaled');
    const href = (await link.getAttribute('href')) as string;
    expect(href).toBe(`${server.origin}/samples/ATTRIBUTION.md`);
    const attribution = await s.page.evaluate(async (url) => (await fetch(url)).text(), href);
    expect(attribution).toContain('CC BY-NC 4.0');

    // Keyboard only: focus the button and press Enter.
    await s.page.getByRole('button', { name: 'Try it with a sample' }).focus();
    await s.page.keyboard.press('Enter');
    const count = sampleImages.toLocaleString('en-US');
    expect(await matched(s.page)).toBe(`${count} images matched`);
    // The next step takes the focus: the cache button for exactly those images.
    const cacheButton = s.page.getByRole('button', { name: `Decode and cache ${count} images` });
    await cacheButton.waitFor();
    await s.page.waitForFunction(() => document.activeElement?.hasAttribute('data-cache-start'));
    await s.page.getByLabel('Image size').selectOption('96');
    await cacheButton.click();
    await s.page.getByTestId('cache-status').waitFor({ timeout: 300_000 });
    expect(await text(s.page, 'cache-status')).toContain(`Cached: ${count} images at 96 × 96 px`);
    expect(server.requestsTo('/samples/ham10000-sample.zip').length).toBeGreaterThanOrEqual(1);
    await s.done();
  });

  it('refuses another origin with the CSP message, and names the URL of a 404', async () => {
    const s = await open();
    const foreign = `${server.otherOrigin}/test-packs/ranged.zip`;
    await openTyped(s.page, foreign);
    const message = await alertText(s.page);
    expect(message).toContain(foreign);
    expect(message).toContain(
      `this page connects only to its own origin, ${server.origin} (its Content-Security-Policy keeps clinic data on this machine)`,
    );
    expect(message).toContain("see the README's 'Workshop packs'");
    // The browser never sent it.
    expect(server.requests.filter((r) => r.host.startsWith('127.0.0.1'))).toEqual([]);

    await s.page.getByRole('button', { name: 'Dismiss this error' }).click();
    await openTyped(s.page, '/test-packs/missing.zip');
    const missing = await alertText(s.page);
    expect(missing).toContain(
      `Could not download ${server.origin}/test-packs/missing.zip: the server answered 404 Not Found.`,
    );
    expect(missing).toContain('HTTP 404');

    // Something that is there but is not a zip: the archive error, naming the file.
    await s.page.getByRole('button', { name: 'Dismiss this error' }).click();
    await openTyped(s.page, '/samples/ATTRIBUTION.md');
    const notZip = await alertText(s.page);
    expect(notZip).toContain("ATTRIBUTION.md isn't a readable zip file");
    await s.done();
  });
});
