/**
 * The built app, end to end, in Debian's Chromium: drop a Kaggle-shaped zip of 60 real originals (every class)
 * and the real metadata CSV, cache them at 96 px, train MobileNetV2 α=0.35 for 2 epochs with the real weights
 * served with the app (the default source), watch the curves update, open the confusion matrix and a cell's
 * thumbnails, read the report, export the run, delete it, import it back, and predict one image with Grad-CAM —
 * without a request leaving the page's origin or an uncaught error.
 */
import { describe, expect, it } from 'vitest';
import { readFile, stat } from 'node:fs/promises';
import { BlobReader, ZipReader } from '@zip.js/zip.js';
import { join } from 'node:path';
import { recordRequests } from '../helpers/chromium.ts';
import { testIdText } from '../helpers/app-run.ts';
import { useBuiltApp, useOriginalsZip } from '../helpers/e2e-setup.ts';
import { METADATA_CSV } from '../helpers/zips.ts';

const IMAGES = 60;

describe('train a small model, read its results, export/delete/import it, predict', () => {
  const app = useBuiltApp();
  const originals = useOriginalsZip(IMAGES);
  const text = testIdText;

  it('runs the whole flow', async () => {
    expect(originals.images).toHaveLength(IMAGES);
    const context = await app.browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(app.origin);

    // Data: drop, cache at 96 px.
    await page.getByTestId('file-input').setInputFiles([originals.zipPath, METADATA_CSV]);
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    expect(await text(page, 'matched-count')).toBe(`${IMAGES} images matched`);
    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: `Decode and cache ${IMAGES} images` }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });

    // Train: MobileNetV2 0.35 (the default), 96 px, 2 epochs, with the weights served with the app (the default
    // source on a first visit: nothing is stored in this browser yet).
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('train-page').waitFor();
    expect(await page.getByTestId('backbone').inputValue()).toBe('mobilenet_v2_0.35');
    await page.getByTestId('image-size').selectOption('96');
    await page.waitForFunction(
      () => !document.querySelector('[data-testid="train-page"]')?.textContent?.includes('checking…'),
    );
    expect(await page.getByTestId('weights-kind-served').isChecked()).toBe(true);
    expect(await page.getByTestId('weights-kind-stored').isDisabled()).toBe(true);
    // A backbone this app serves no weights for says so, and the form moves to files from disk.
    await page.getByTestId('backbone').selectOption('vgg16');
    await page.getByTestId('served-missing').waitFor();
    expect(await page.getByTestId('weights-kind-served').isDisabled()).toBe(true);
    await page.getByTestId('weights-files').waitFor();
    expect(await page.getByTestId('weights-kind-tfjs').isChecked()).toBe(true);
    await page.getByTestId('backbone').selectOption('mobilenet_v2_0.35');
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="weights-kind-served"]') as HTMLInputElement).checked,
    );
    await page.getByTestId('epochs').fill('0');
    await page.getByTestId('start').click();
    // A bad value is refused with its reason, and nothing starts.
    expect(await page.locator('#err-epochs').textContent()).toBe('Must be at least 1.');
    expect(await page.getByTestId('train-status').getAttribute('data-state')).toBe('idle');
    await page.getByTestId('epochs').fill('2');
    // Every batch-count the live chart shows, to see it update while training runs (it can take a second).
    // And each progress line about the test split's features, with the epoch rows shown at that moment.
    await page.evaluate(() => {
      const seen = new Set<string>();
      const testFeatures: { text: string; epochRows: number }[] = [];
      Object.assign(window, { seenPoints: seen, testFeatures });
      const observer = new MutationObserver(() => {
        const value = document.querySelector('[data-testid="batch-loss-chart"]')?.getAttribute('data-points');
        if (value) seen.add(value);
        const status = document.querySelector('[data-testid="train-status"]')?.textContent ?? '';
        const line = /(Computing|Reading cached) test features: \d+(,\d{3})* \/ \d+(,\d{3})*/.exec(
          status,
        )?.[0];
        if (line && line !== testFeatures.at(-1)?.text) {
          const epochRows = document.querySelectorAll(
            '[data-testid="epoch-loss-chart"] table.numbers tbody tr',
          ).length;
          testFeatures.push({ text: line, epochRows });
        }
      });
      observer.observe(document.body, {
        subtree: true,
        childList: true,
        attributes: true,
        characterData: true,
      });
    });
    await page.getByTestId('start').click();

    // The curves update as batches and epochs finish.
    await page.waitForFunction(
      () =>
        Number(document.querySelector('[data-testid="batch-loss-chart"]')?.getAttribute('data-points')) > 0 ||
        document.querySelector('[data-testid="train-error"]') !== null,
      undefined,
      { timeout: 300_000 },
    );
    // A failed start says why, here rather than as a timeout.
    expect(await page.getByTestId('train-error').count(), await text(page, 'train-page')).toBe(0);
    const firstPoints = Number(await page.getByTestId('batch-loss-chart').getAttribute('data-points'));
    await page.getByTestId('train-done').waitFor({ timeout: 480_000 });
    const lastPoints = Number(await page.getByTestId('batch-loss-chart').getAttribute('data-points'));
    expect(lastPoints).toBeGreaterThanOrEqual(Math.max(2, firstPoints));
    const seen = await page.evaluate(() => [
      ...(window as unknown as { seenPoints: Set<string> }).seenPoints,
    ]);
    expect(seen.length).toBeGreaterThan(1);
    expect(await page.locator('[data-testid="epoch-loss-chart"] table.numbers tbody tr').count()).toBe(2);
    expect(await text(page, 'backend')).toMatch(/Backend (webgpu|webgl|wasm|cpu)/);
    // The memory gauge shows the worker's tf.memory() figures.
    expect(await text(page, 'memory-gauge')).toMatch(
      /Backend memory [\d.,]+ MB in [\d,]+ tensors \(peak [\d.,]+ MB\)/,
    );
    expect(await page.getByTestId('split-table').count()).toBe(1);
    expect(await text(page, 'train-done')).toMatch(/after 2 epoch/);
    // The augmentation preview draws the original and its augmented variants from the cache.
    await page.getByTestId('augment').check();
    await page.getByTestId('augment-preview').getByRole('button', { name: 'Preview augmentation' }).click();
    await page.locator('[data-testid="augment-preview"] canvas').first().waitFor();
    expect(await page.locator('[data-testid="augment-preview"] canvas').count()).toBeGreaterThan(1);
    expect(await page.locator('[data-testid="augment-preview"] [role="alert"]').count()).toBe(0);
    await page.getByTestId('augment').uncheck();
    // The weights picked from disk were kept in this browser for the next run of this backbone.
    const stored = page.getByTestId('weights-kind-stored');
    await page.waitForFunction(
      () => !(document.querySelector('[data-testid="weights-kind-stored"]') as HTMLInputElement).disabled,
    );
    expect(await stored.isDisabled()).toBe(false);
    expect(await page.locator('label', { has: stored }).innerText()).toMatch(
      /Stored in this browser: .*\/models\/mobilenet_v2_0\.35\/model\.json, 1\.6 MB/,
    );
    // The run is kept with its model once the status stops saying so.
    await page.waitForFunction(
      () =>
        !document.querySelector('[data-testid="train-status"]')?.textContent?.includes('keeping the best'),
      undefined,
      { timeout: 120_000 },
    );
    expect(await page.locator('[data-testid="train-page"] .notice.warn').count()).toBe(0);

    // Results: matrix, a cell's thumbnails, the report.
    await page.getByRole('tab', { name: 'Results' }).click();
    await page.getByTestId('confusion-matrix').waitFor({ timeout: 60_000 });
    const counts = await page
      .locator('[data-testid^="cell-"][data-count]')
      .evaluateAll((cells) => cells.map((c) => Number(c.getAttribute('data-count'))));
    expect(counts).toHaveLength(49);
    const tested = counts.reduce((a, b) => a + b, 0);
    expect(tested).toBeGreaterThan(0);
    const nonEmpty = page.locator('[data-testid^="cell-"][data-count]:not([data-count="0"])').first();
    const inCell = Number(await nonEmpty.getAttribute('data-count'));
    await nonEmpty.focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('cell-images').waitFor();
    expect(await page.getByTestId('cell-image').count()).toBe(inCell);
    await page.locator('[data-testid="cell-images"] canvas').first().waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-testid="cell-images"] canvas').count()).toBe(inCell);
    const report = await page.getByTestId('report-text').textContent();
    expect(report).toMatch(/precision\s+recall\s+f1-score\s+support/);
    expect(report).toMatch(/macro avg/);
    expect(report).toMatch(new RegExp(`accuracy\\s+\\d\\.\\d\\d\\s+${tested}\\n`));
    expect(await text(page, 'balanced-accuracy')).toMatch(/^\d\.\d{4}$/);
    // Calibration reads the ECE against its bootstrap interval, and says whether scaling's change is noise.
    expect(await text(page, 'ece-ci')).toMatch(/^95 % CI \d\.\d{4}–\d\.\d{4}$/);
    expect(await text(page, 'ece-change')).toMatch(
      new RegExp(
        `of the ${tested} test images as the scores above\\)\\. The (interval holds 0|whole interval is)`,
      ),
    );
    // The test split's features were computed before the first epoch, for every image the matrix counts: the
    // evaluation after the last epoch only ran the head on them.
    const testFeatures = await page.evaluate(
      () => (window as unknown as { testFeatures: { text: string; epochRows: number }[] }).testFeatures,
    );
    expect(testFeatures.length).toBeGreaterThan(0);
    expect(testFeatures.every((t) => t.epochRows === 0)).toBe(true);
    expect(testFeatures.at(-1)!.text).toBe(`Computing test features: ${tested} / ${tested}`);

    // Runs: export, delete, import back.
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByTestId('run-row').first().waitFor();
    expect(await page.getByTestId('run-row').count()).toBe(1);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('export-run').click(),
    ]);
    const exported = join(originals.dir, download.suggestedFilename());
    await download.saveAs(exported);
    expect(download.suggestedFilename()).toMatch(/^lesion-lab-.*\.zip$/);
    expect((await stat(exported)).size).toBeGreaterThan(1_000_000);
    // The zip from the Runs page carries the run's charts as SVG, like the one from the Results page.
    const entries = await new ZipReader(new BlobReader(new Blob([await readFile(exported)]))).getEntries();
    const names = entries.map((e) => e.filename);
    expect(names).toEqual(expect.arrayContaining(['config.json', 'history.csv', 'metrics.json']));
    expect(names.some((n) => n.endsWith('.svg'))).toBe(true);
    await page.getByTestId('delete-run').click();
    await page.getByTestId('confirm-delete').click();
    await page.getByTestId('no-runs').waitFor();
    await page.getByTestId('import-run').setInputFiles(exported);
    await page.getByTestId('run-row').first().waitFor({ timeout: 60_000 });
    expect(await text(page, 'runs-notice')).toContain('with its model');

    // Predict one original with Grad-CAM; the notice is visible.
    const runName = await text(page, 'run-name');
    await page.getByRole('tab', { name: 'Predict' }).click();
    expect(await page.getByTestId('not-medical-device').isVisible()).toBe(true);
    // The run picker shows the date the run's name carries, once: no second, locale-formatted date after it.
    expect(runName).toMatch(/ · \d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
    const option = (await page.getByTestId('run-picker').locator('option').first().textContent()) ?? '';
    expect(option.trim()).toMatch(/^.+ \([a-z-]+\)$/);
    expect(option.trim().slice(0, runName.length)).toBe(runName);
    expect(option).not.toContain(' — ');
    await page.getByTestId('predict-file').setInputFiles(originals.images[0]!.path);
    await page.getByTestId('predict-result').waitFor({ timeout: 120_000 });
    expect(await page.locator('[data-testid="top3"] li').count()).toBe(3);
    const probabilities = await page
      .locator('[data-testid="top3"] meter')
      .evaluateAll((ms) => ms.map((m) => (m as HTMLMeterElement).value));
    expect(probabilities.every((p, i) => p > 0 && (i === 0 || p <= probabilities[i - 1]!))).toBe(true);
    expect(await page.getByTestId('gradcam').getAttribute('aria-label')).toMatch(
      /^Grad-CAM heatmap for \w+ over ISIC_/,
    );
    expect(await page.getByTestId('predict-error').count()).toBe(0);

    // On a phone (375 px), with a run kept: no page is wider than the screen (the run picker's long names, the
    // report's preformatted text), and the Train form and the Learn page's file input fit without scrolling
    // sideways inside their cards (a fieldset's long select or file name made the form 630 px wide).
    await page.setViewportSize({ width: 375, height: 812 });
    for (const [tab, ready] of [
      ['Predict', 'run-picker'],
      ['Results', 'confusion-matrix'],
      ['Train', 'train-page'],
      ['Learn', 'lesson-file'],
    ] as const) {
      await page.getByRole('tab', { name: tab }).click();
      await page.getByTestId(ready).waitFor();
      const widths = await page.evaluate(() => {
        const form = document.querySelector('[data-testid="train-page"] form');
        const file = document.querySelector('[data-testid="lesson-file"]');
        return {
          page: document.documentElement.scrollWidth,
          screen: document.documentElement.clientWidth,
          form: form ? form.scrollWidth - form.clientWidth : 0,
          fileRight: file ? file.getBoundingClientRect().right : 0,
        };
      });
      expect(widths.page, `${tab} at 375 px`).toBeLessThanOrEqual(widths.screen);
      expect(widths.form, `the Train form scrolls sideways by`).toBeLessThanOrEqual(0);
      expect(widths.fileRight, `the lesson file input's right edge`).toBeLessThanOrEqual(widths.screen);
    }

    expect(pageErrors).toEqual([]);
    expect(requests.foreign(app.origin)).toEqual([]);
    await context.close();
  });
});
