/**
 * Metadata fusion in the built app: drop 60 real originals (every class) with the real metadata CSV, cache them at
 * 96 px, tick "Also use the metadata" on the Train form (MetaBlock fusion), train 2 epochs with the served weights,
 * then predict one image on the Predict page, which asks for age, sex and site: other answers give other
 * probabilities, and leaving them unknown works too.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { testIdText } from '../helpers/app-run.ts';
import { useBuiltApp, useOriginalsZip } from '../helpers/e2e-setup.ts';
import { METADATA_CSV } from '../helpers/zips.ts';

const IMAGES = 60;

describe('a run with metadata, and Predict with age, sex and site', () => {
  const app = useBuiltApp();
  const originals = useOriginalsZip(IMAGES);
  const text = testIdText;

  /** The "All classes" table of the prediction, as text (probabilities to 2 decimals). */
  const allClasses = (page: Page) =>
    page.evaluate(
      () =>
        document.querySelector('[data-testid="predict-result"] table')?.textContent?.replace(/\s+/g, ' ') ??
        '',
    );

  it('trains with metadata and predicts with what the user enters', async () => {
    const context = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(app.origin);

    await page.getByTestId('file-input').setInputFiles([originals.zipPath, METADATA_CSV]);
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: `Decode and cache ${IMAGES} images` }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });

    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('train-page').waitFor();
    await page.getByTestId('image-size').selectOption('96');
    await page.waitForFunction(
      () => !document.querySelector('[data-testid="train-page"]')?.textContent?.includes('checking…'),
    );
    // Keyboard: the option is a checkbox reached and ticked without a mouse.
    await page.getByTestId('use-metadata').focus();
    await page.keyboard.press('Space');
    expect(await page.getByTestId('use-metadata').isChecked()).toBe(true);
    await page.getByTestId('fusion').selectOption('metablock');
    await page.getByTestId('epochs').fill('2');
    await page.getByTestId('start').click();
    await page.waitForFunction(
      () =>
        document.querySelector('[data-testid="train-done"]') !== null ||
        document.querySelector('[data-testid="train-error"]') !== null,
      undefined,
      { timeout: 480_000 },
    );
    expect(await page.getByTestId('train-error').count(), await text(page, 'train-page')).toBe(0);
    await page.waitForFunction(
      () =>
        !document.querySelector('[data-testid="train-status"]')?.textContent?.includes('keeping the best'),
      undefined,
      { timeout: 120_000 },
    );

    await page.getByRole('tab', { name: 'Predict' }).click();
    await page.getByTestId('predict-metadata').waitFor({ timeout: 60_000 });
    // The site list is the run's vocabulary (from its train split), "unknown" first.
    const sites = await page.getByTestId('predict-site').locator('option').allTextContents();
    expect(sites[0]).toBe('unknown');
    expect(sites.length).toBeGreaterThan(3);
    await page.getByTestId('predict-file').setInputFiles(originals.images[0]!.path);
    await page.getByTestId('predict-result').waitFor({ timeout: 120_000 });
    const unknown = await allClasses(page);

    await page.getByTestId('predict-age').fill('85');
    await page.getByTestId('predict-age').press('Tab');
    await page.getByTestId('predict-sex').selectOption('male');
    await page.getByTestId('predict-site').selectOption('back');
    await page.waitForFunction(
      (before) =>
        document.querySelector('[data-testid="predict-result"] table')?.textContent?.replace(/\s+/g, ' ') !==
        before,
      unknown,
      { timeout: 60_000 },
    );
    const old = await allClasses(page);
    expect(old).not.toBe(unknown);
    expect(await page.getByTestId('predict-error').count()).toBe(0);
    // A wrong age is refused with its reason.
    await page.getByTestId('predict-age').fill('300');
    await page.getByTestId('predict-age').press('Tab');
    await page.getByTestId('predict-error').waitFor();
    expect(await text(page, 'predict-error')).toContain('from 0 to 120');
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
