/**
 * The built app, end to end, in Debian's Chromium: a real drop (through the file input) of a Kaggle-shaped zip
 * of the 240 real originals plus the real metadata CSV, caching, the Explore page's figures, a reload that
 * restores the dataset, a bad CSV that is reported by line and column without losing anything — and not one
 * request leaving the page's origin along the way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { recordRequests } from '../helpers/chromium.ts';
import { useBuiltApp } from '../helpers/e2e-setup.ts';
import {
  HAM_DIR,
  KAGGLE_ZIP_NAME,
  METADATA_CSV,
  buildKaggleZip,
  makeTempDir,
  readOriginals,
  removeTempDir,
} from '../helpers/zips.ts';

/** Where the EDA screenshot goes for a human look; never committed. */
const SCREENSHOT = '/tmp/lesion-lab-eda.png';

describe('drop the dataset, cache it, explore it, reload it — all on this machine', () => {
  const app = useBuiltApp();
  let dir: string;
  let zipPath: string;
  let badCsvPath: string;

  beforeAll(async () => {
    dir = await makeTempDir();
    zipPath = (await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images: readOriginals() })).path;
    // The real file with one age made non-numeric: line 12 is data row 11.
    const lines = (await readFile(METADATA_CSV, 'utf8')).split('\n');
    lines[11] = (lines[11] as string).replace(',55.0,', ',fifty-five,');
    badCsvPath = join(dir, 'HAM10000_metadata_edited.csv');
    await writeFile(badCsvPath, lines.join('\n'));
  });

  afterAll(async () => {
    if (dir) await removeTempDir(dir);
  });

  async function text(page: Page, testId: string): Promise<string> {
    return ((await page.getByTestId(testId).textContent()) ?? '').replace(/\s+/g, ' ').trim();
  }

  /** Cells of the first table whose caption matches, as rows of trimmed texts. */
  async function table(page: Page, caption: string): Promise<string[][]> {
    return page.evaluate((caption) => {
      const t = Array.from(document.querySelectorAll('table')).find((x) =>
        x.caption?.textContent?.includes(caption),
      );
      if (!t) return [];
      return Array.from(t.tBodies[0]?.rows ?? []).map((r) =>
        Array.from(r.cells).map((c) => (c.textContent ?? '').replace(/\s+/g, ' ').trim()),
      );
    }, caption);
  }

  async function expectEda(page: Page) {
    await page.getByTestId('eda-rows').waitFor();
    expect(await text(page, 'eda-rows')).toBe('10,015');
    expect(await text(page, 'eda-lesions')).toBe('7,470');
    const classes = await table(page, 'Images per diagnosis, largest class first');
    expect(classes[0]).toEqual(['nv', 'Melanocytic nevi', '6,705', '66.95 %']);
    expect(classes[6]).toEqual(['df', 'Dermatofibroma', '115', '1.15 %']);
    const missing = await table(page, 'Empty cells per column');
    expect(missing.find((r) => r[0] === 'age')?.[1]).toBe('57');
    const age = Object.fromEntries((await table(page, 'Age in years')).map((r) => [r[0], r[1]]));
    expect(age['Count']).toBe('9,958');
    expect(age['Mean']).toBe('51.86');
    expect(age['Std. deviation']).toBe('16.97');
    const lesions = await page.getByText('7,470 lesions for 10,015 images').count();
    expect(lesions).toBeGreaterThan(0);
    // Every chart has a labelled SVG and a "Show numbers" table.
    const charts = await page.locator('figure.chart').count();
    expect(charts).toBeGreaterThanOrEqual(8);
    expect(await page.locator('figure.chart details > summary', { hasText: 'Show numbers' }).count()).toBe(
      charts,
    );
  }

  it('ingests, explores, restores after a reload, and reports a bad CSV by line and column', async () => {
    const context: BrowserContext = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));

    await page.goto(app.origin);
    await expect(page.getByText('your images never leave this machine').count()).resolves.toBe(1);
    await expect(page.getByText('not a medical device').count()).resolves.toBeGreaterThan(0);
    // The footer's dataset licence (the sample's attribution link names it too).
    await expect(page.locator('footer').getByText('CC BY-NC 4.0').count()).resolves.toBe(1);

    // The first screen says that decoding is a second step.
    expect(await page.locator('.lead').first().innerText()).toMatch(/1\. Add .*2\. Decode and cache/s);

    // A drop through the file input: the zip (images only, with Kaggle's duplicate folders) and the CSV.
    await page.getByTestId('file-input').setInputFiles([zipPath, METADATA_CSV]);
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    expect(await text(page, 'matched-count')).toBe('240 images matched');
    const report = await text(page, 'match-report');
    expect(report).toContain('9,775 rows have no image');
    expect(report).toContain('0 images have no row');
    expect(report).toContain('240 duplicate copies skipped');

    // Cancel really stops a run: the bars stay, marked stopped, nothing half-written passes for a cache.
    await page.getByRole('button', { name: 'Decode and cache 240 images' }).click();
    await page.waitForFunction(
      () =>
        Number(
          document
            .querySelector('[data-stage="caching"] [role="progressbar"]')
            ?.getAttribute('aria-valuenow'),
        ) > 0,
      undefined,
      { timeout: 120_000 },
    );
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('dataset-notice').waitFor();
    expect(await text(page, 'dataset-notice')).toContain('Stopped');
    // The heading follows the worker's "cancelled" event, which can land a frame after the notice.
    await page
      .locator('#progress-h')
      .filter({ hasText: /^Import stopped$/ })
      .waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Decode and cache 240 images' }).waitFor();
    expect(await page.getByTestId('cache-status').count()).toBe(0);
    expect(await page.getByText('Nothing cached yet.').count()).toBe(1);
    const stoppedAt = Number(
      await page.locator('[data-stage="caching"] [role="progressbar"]').getAttribute('aria-valuenow'),
    );
    expect(stoppedAt).toBeLessThan(240);
    expect(await page.locator('[data-stage="caching"]').getAttribute('class')).toContain('stopped');

    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: 'Decode and cache 240 images' }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });
    expect(await text(page, 'cache-status')).toContain('Cached: 240 images at 96 × 96 px');
    // The finished import's bars stay, full, with counts, under a title that cannot be read as a training run.
    expect(await page.locator('#progress-h').textContent()).toBe('Last import');
    const bars = page.getByRole('progressbar');
    expect(await bars.count()).toBe(3);
    for (const bar of await bars.all()) {
      expect(await bar.getAttribute('aria-valuenow')).toBe('240');
      expect(await bar.getAttribute('aria-valuemax')).toBe('240');
    }

    // Keyboard: the tab list moves with the arrow keys.
    await page.getByRole('tab', { name: 'Data' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Explore' }).getAttribute('aria-selected')).toBe('true');
    await expectEda(page);

    // Sample images come from the cache, painted into canvases.
    await page.locator('#eda-samples canvas').first().waitFor({ timeout: 60_000 });
    expect(await page.locator('#eda-samples [role="img"]').count()).toBe(42);
    const painted = await page.evaluate(() => {
      const canvas = document.querySelector('#eda-samples canvas') as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let sum = 0;
      for (let i = 0; i < data.length; i += 4) sum += data[i]! + data[i + 1]! + data[i + 2]!;
      return { width: canvas.width, mean: sum / ((data.length / 4) * 3) };
    });
    expect(painted.width).toBe(96);
    expect(painted.mean).toBeGreaterThan(20);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // A reload brings the dataset back from the cache, with no new drop.
    await page.reload();
    await page.getByTestId('eda-rows').waitFor({ timeout: 60_000 });
    await expectEda(page);
    await page.getByRole('tab', { name: 'Data' }).click();
    await page.getByTestId('dataset-notice').waitFor();
    expect(await text(page, 'dataset-notice')).toContain('Restored the dataset cached in this browser');
    expect(await text(page, 'dataset-notice')).toContain('240 images at 96 px');
    expect(await text(page, 'matched-count')).toBe('240 images matched');
    expect(await text(page, 'cache-status')).toContain('240 images at 96 × 96 px');

    // A bad CSV is reported with its file, line and column; the restored dataset stays.
    await page.getByTestId('file-input').setInputFiles([badCsvPath]);
    const alert = page.locator('[role="alert"] .notice.error');
    await alert.first().waitFor({ timeout: 60_000 });
    const message = ((await alert.first().textContent()) ?? '').replace(/\s+/g, ' ');
    expect(message).toContain('HAM10000_metadata_edited.csv');
    expect(message).toContain('line 12');
    expect(message).toContain('column age');
    expect(await text(page, 'cache-status')).toContain('240 images at 96 × 96 px');
    await page.getByRole('tab', { name: 'Explore' }).click();
    expect(await text(page, 'eda-rows')).toBe('10,015');

    expect(pageErrors).toEqual([]);
    expect(requests.urls.length).toBeGreaterThan(3);
    expect(requests.foreign(app.origin)).toEqual([]);
    await context.close();
  });

  it('says that an ISIC 2018 one-hot label file makes a lesion-grouped split impossible', async () => {
    const context = await app.browser.newContext();
    const page = await context.newPage();
    const requests = recordRequests(page);
    await page.goto(app.origin);
    await page
      .getByTestId('file-input')
      .setInputFiles([join(HAM_DIR, 'variants', 'ISIC2018_Task3_Validation_GroundTruth.csv')]);
    const warning = page.locator('.notice.warn', { hasText: 'no lesion ids' });
    await warning.first().waitFor({ timeout: 60_000 });
    expect(await warning.first().textContent()).toContain('lesion-grouped split is impossible');
    expect(requests.foreign(app.origin)).toEqual([]);
    await context.close();
  });
});
