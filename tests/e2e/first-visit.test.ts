/**
 * What a first-time visitor meets, on the built app served with the deployment's headers (the walk's findings,
 * notes/walk.md): the sample's rows without an image are said as information, not a warning (a user's own data
 * keeps the warning); after a reload the Data page says how to cache at another size and offers the way; a binary
 * file opened as a lesson is called not a lesson file, without its bytes; bad inputs leave one error in view and
 * fold the earlier ones; the page tabs fit a phone's screen; "Available offline" is said only once the service
 * worker is activated, and a reload offline at that instant opens the app.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAsBlob } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { listZip } from '../../src/lib/data/archive.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { PAGES } from '../../src/state/nav.svelte.ts';
import { launchChromium, recordRequests } from '../helpers/chromium.ts';
import { startPreview } from '../helpers/preview.ts';
import { PROJECT_ROOT } from '../helpers/zips.ts';

const SAMPLE_ZIP = join(PROJECT_ROOT, 'public/samples/ham10000-sample.zip');
const count = (n: number) => n.toLocaleString('en-US');
const squash = (t: string | null | undefined) => (t ?? '').replace(/\s+/g, ' ').trim();

describe('a first-time visitor', () => {
  let browser: Browser;
  let app: Awaited<ReturnType<typeof startPreview>>;
  /** The sample's images and its metadata's rows, read from the pack served with the app. */
  let sample: { images: number; rows: number };

  beforeAll(async () => {
    const listing = await listZip(await openAsBlob(SAMPLE_ZIP), 'ham10000-sample.zip');
    const csv = listing.metadata[0];
    if (!csv) throw new Error(`${SAMPLE_ZIP} holds no metadata file`);
    sample = {
      images: listing.images.length,
      rows: parseMetadata(await csv.readText(), csv.name).records.length,
    };
    app = await startPreview();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  interface Session {
    context: BrowserContext;
    page: Page;
    done(): Promise<void>;
  }

  /** A fresh profile on the app; done() checks that no page error happened and nothing left the origin. */
  async function open(viewport = { width: 1280, height: 900 }): Promise<Session> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(app.origin);
    await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();
    return {
      context,
      page,
      async done() {
        expect(errors).toEqual([]);
        expect(requests.foreign(app.origin)).toEqual([]);
        await context.close();
      },
    };
  }

  async function text(page: Page, testId: string): Promise<string> {
    return squash(await page.getByTestId(testId).first().textContent());
  }

  async function cacheAt96(page: Page): Promise<void> {
    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: `Decode and cache ${count(sample.images)} images` }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 300_000 });
  }

  async function reloadRestored(page: Page): Promise<void> {
    await page.reload();
    await page
      .getByTestId('dataset-notice')
      .filter({ hasText: 'Restored the dataset' })
      .waitFor({ timeout: 60_000 });
  }

  it('the sample’s rows without an image are information; after a reload it offers to open the sample again', async () => {
    const s = await open();
    await s.page.getByRole('button', { name: 'Try it with a sample' }).click();
    await s.page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    const sampleLine =
      `The sample has ${count(sample.images)} of the ${count(sample.rows)} metadata rows’ images; ` +
      `the other ${count(sample.rows - sample.images)} rows still feed Explore’s counts.`;
    expect(await text(s.page, 'sample-rows')).toContain(sampleLine);
    expect(await text(s.page, 'match-report')).not.toContain('have no image');
    expect(await s.page.locator('[data-testid="match-report"] li.attention').count()).toBe(0);

    await cacheAt96(s.page);
    await reloadRestored(s.page);
    // The restored cache remembers it was made of the sample.
    expect(await text(s.page, 'sample-rows')).toContain(sampleLine);
    expect(await text(s.page, 'cache-another-size')).toContain(
      'To cache at another size, open the sample again: this browser keeps its images at 96 px only.',
    );
    expect(await s.page.getByLabel('Image size').count()).toBe(0);
    await s.page.getByRole('button', { name: 'Open the sample again' }).click();
    // The size menu is back, and the keyboard is on the cache button.
    await s.page.getByLabel('Image size').waitFor({ timeout: 120_000 });
    await s.page.waitForFunction(() => document.activeElement?.hasAttribute('data-cache-start'));
    await s.page.getByLabel('Image size').selectOption('128');
    await s.page
      .getByRole('button', { name: `Cache ${count(sample.images)} images again at 128 px` })
      .waitFor();
    await s.done();
  });

  it('a user’s own data keeps the warning; after a reload “Add the files again…” opens the file picker', async () => {
    const s = await open();
    // The same zip, dropped as one's own file: its rows without an image may be a problem, so they are a warning.
    await s.page.getByTestId('file-input').setInputFiles([SAMPLE_ZIP]);
    await s.page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    const warning = s.page.locator('[data-testid="match-report"] li.attention');
    expect(squash(await warning.first().textContent())).toMatch(
      new RegExp(`^${count(sample.rows - sample.images)} rows have no image`),
    );
    expect(await s.page.getByTestId('sample-rows').count()).toBe(0);

    await cacheAt96(s.page);
    await reloadRestored(s.page);
    expect(await warning.count()).toBe(1);
    expect(await text(s.page, 'cache-another-size')).toContain(
      'To cache at another size, add the files again: this browser keeps the images at 96 px only',
    );
    const chooser = s.page.waitForEvent('filechooser');
    await s.page.getByRole('button', { name: 'Add the files again…' }).click();
    await (await chooser).setFiles([SAMPLE_ZIP]);
    await s.page.getByLabel('Image size').waitFor({ timeout: 120_000 });
    await s.page
      .getByRole('button', { name: `Cache ${count(sample.images)} images again at 96 px` })
      .waitFor({ timeout: 120_000 });
    await s.done();
  });

  it('a binary file opened as a lesson is not a lesson file, and its bytes are not shown', async () => {
    const s = await open();
    await s.page.getByRole('tab', { name: 'Learn' }).click();
    const input = s.page.getByTestId('lesson-file');
    const error = s.page.getByTestId('lesson-error');
    const zip = await readFile(SAMPLE_ZIP);
    // The whole sample pack (4 MB, over a lesson's size limit), then a small piece of it named as in the walk.
    const files = [
      { name: 'ham10000-sample.zip', mimeType: 'application/zip', buffer: zip },
      { name: 'random.zip', mimeType: 'application/zip', buffer: zip.subarray(1000, 1000 + 8192) },
    ];
    for (const file of files) {
      await input.setInputFiles([file]);
      await error.filter({ hasText: file.name }).waitFor();
      const message = squash(await error.textContent());
      expect(message).toBe(
        `${file.name} is not a lesson file: it holds binary data, not text. A lesson is a .json text file (the ` +
          'format is in the README, “Writing a lesson”); the built-in lessons on the Learn page are examples',
      );
    }
    // A text file that is broken JSON still gets the parser's words.
    await input.setInputFiles([
      { name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"format": ') },
    ]);
    await error.filter({ hasText: 'broken.json' }).waitFor();
    expect(squash(await error.textContent())).toMatch(/^broken\.json: is not valid JSON \(.+\)$/);
    await s.done();
  });

  it('bad inputs leave the newest error in view and fold the earlier ones, every message still reachable', async () => {
    const s = await open();
    const zip = await readFile(SAMPLE_ZIP);
    const bad = [
      { name: 'empty.csv', mimeType: 'text/csv', buffer: Buffer.alloc(0) },
      { name: 'cut.zip', mimeType: 'application/zip', buffer: zip.subarray(0, 4096) },
      { name: 'notes.csv', mimeType: 'text/csv', buffer: Buffer.from('name,value\nfirst,1\n') },
      { name: 'tail.zip', mimeType: 'application/zip', buffer: zip.subarray(zip.length - 4096) },
    ];
    const shown = s.page.locator('.errors > .notice.error');
    const all = s.page.locator('.errors .notice.error');
    for (const [i, file] of bad.entries()) {
      await s.page.getByTestId('file-input').setInputFiles([file]);
      await shown.filter({ hasText: file.name }).waitFor({ timeout: 60_000 });
      expect(await all.count()).toBe(i + 1);
    }
    expect(await shown.count()).toBe(1);
    const earlier = s.page.getByTestId('earlier-errors');
    const summary = earlier.locator('summary');
    expect(squash(await summary.textContent())).toBe('3 earlier problems');
    expect(await earlier.getAttribute('open')).toBeNull();
    expect(await earlier.locator('.notice').first().isVisible()).toBe(false);

    // The same bad file again replaces its earlier notice rather than adding one.
    await s.page.getByTestId('file-input').setInputFiles([bad[1]!]);
    await shown.filter({ hasText: 'cut.zip' }).waitFor({ timeout: 60_000 });
    expect(await all.count()).toBe(4);

    // Keyboard: the summary is a tab stop after the newest error's Dismiss; Enter opens the earlier ones.
    await shown.getByRole('button', { name: 'Dismiss this error' }).focus();
    await s.page.keyboard.press('Tab');
    expect(await summary.evaluate((el) => el === document.activeElement)).toBe(true);
    await s.page.keyboard.press('Enter');
    expect(await earlier.getAttribute('open')).not.toBeNull();
    const texts = (await earlier.locator('.notice').allTextContents()).map(squash);
    expect(texts.map((t) => ['tail.zip', 'notes.csv', 'empty.csv'].find((n) => t.includes(n)))).toEqual([
      'tail.zip',
      'notes.csv',
      'empty.csv',
    ]);
    for (const notice of await earlier.locator('.notice').all()) expect(await notice.isVisible()).toBe(true);

    await earlier.getByRole('button', { name: 'Dismiss the earlier problems' }).click();
    expect(await all.count()).toBe(1);
    expect(await s.page.getByTestId('earlier-errors').count()).toBe(0);
    await shown.getByRole('button', { name: 'Dismiss this error' }).click();
    expect(await all.count()).toBe(0);
    await s.done();
  });

  it('on a phone (375 px) every page tab is on screen, and the arrow keys still move between them', async () => {
    const s = await open({ width: 375, height: 812 });
    const tablist = s.page.getByRole('tablist', { name: 'Lesion Lab pages' });
    const tabs = tablist.getByRole('tab');
    const labels = PAGES.filter((p) => p.available).map((p) => p.label);
    expect((await tabs.allTextContents()).map(squash)).toEqual(labels);
    for (const tab of await tabs.all()) {
      const box = (await tab.boundingBox())!;
      const name = squash(await tab.textContent());
      expect(box.x, name).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, name).toBeLessThanOrEqual(375);
    }
    expect(await tablist.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);

    await s.page.getByRole('tab', { name: 'Data' }).focus();
    await s.page.keyboard.press('ArrowRight');
    expect(squash(await s.page.getByRole('tab', { selected: true }).textContent())).toBe('Explore');
    await s.page.keyboard.press('End');
    const last = labels.at(-1)!;
    expect(squash(await s.page.getByRole('tab', { selected: true }).textContent())).toBe(last);
    expect(await s.page.evaluate(() => document.activeElement?.textContent?.trim())).toBe(last);
    await s.page.keyboard.press('ArrowRight');
    expect(squash(await s.page.getByRole('tab', { selected: true }).textContent())).toBe('Data');
    await s.done();
  });

  it('says “Available offline” only once the service worker is activated; a reload offline then opens the app', async () => {
    const context = await browser.newContext();
    // The worker's state at the moment the note appears, recorded in the page itself.
    await context.addInitScript(() => {
      const w = window as unknown as { __activeWorker?: ServiceWorker | null; __noteStates: string[] };
      w.__noteStates = [];
      void navigator.serviceWorker.ready.then((r) => (w.__activeWorker = r.active));
      new MutationObserver(() => {
        if (w.__noteStates.length > 0 || !document.querySelector('[data-testid="offline-ready"]')) return;
        w.__noteStates.push(w.__activeWorker?.state ?? 'no active worker');
      }).observe(document, { childList: true, subtree: true });
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(app.origin);
    await page.getByTestId('offline-ready').waitFor({ timeout: 120_000 });
    expect(await page.evaluate(() => (window as unknown as { __noteStates: string[] }).__noteStates)).toEqual(
      ['activated'],
    );
    // At once, as the walk did: offline, reload.
    await context.setOffline(true);
    try {
      await page.reload();
      await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor({ timeout: 60_000 });
      await page.getByTestId('offline-ready').waitFor();
    } finally {
      await context.setOffline(false);
    }
    expect(errors).toEqual([]);
    await context.close();
  });
});
