/**
 * The rough edges a new user hit on the built app (issue #9), driven like a user in Debian's Chromium with a
 * Kaggle-shaped zip of 60 real originals (every class) and the real metadata CSV:
 *
 * - Before any cache, and with a size that is not cached, the Train page says what is missing next to Start, and
 *   Start refuses; phase 2 on WASM is accepted (the worker registers conv gradient kernels for WASM).
 * - The class-weights label is one text box (its <sub> no longer a grid column): checked on the layout, and a
 *   screenshot is written where LESION_LAB_SHOTS points.
 * - Pause says "Pausing…" at once and the run pauses at the next batch; the elapsed time stands still while
 *   paused and the final duration is the same clock.
 * - The backend line names what WASM runs on, not the WebGPU adapter.
 * - Runs get distinct names, can be renamed, and the compare checkboxes are named after them; a run that fails
 *   before its first epoch is not stored.
 * - Results and Predict give the same probabilities (±0.5 points) for the same original file.
 * - A reload keeps the Train form; a stored weights choice that is gone falls back; Reset to defaults stays.
 * - No Observable Plot warning in the console.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { recordRequests } from '../helpers/chromium.ts';
import { testIdText } from '../helpers/app-run.ts';
import { useBuiltApp, useOriginalsZip } from '../helpers/e2e-setup.ts';
import { METADATA_CSV, SHARED_DIR } from '../helpers/zips.ts';

const IMAGES = 60;
/** Real Keras weights of another backbone (MobileNet v1 0.25): loading them into MobileNetV2 fails by name. */
const WRONG_H5 = join(
  SHARED_DIR,
  'weights',
  'keras-mobilenet-v1-0.25-224-notop',
  'mobilenet_2_5_224_tf_no_top.h5',
);
const DX = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'];

describe('rough edges of the Train, Runs, Results and Predict pages', () => {
  const app = useBuiltApp();
  const originals = useOriginalsZip(IMAGES);
  const text = testIdText;
  const state = (page: Page) => page.getByTestId('train-status').getAttribute('data-state');
  /** Screenshots for a person to look at, where LESION_LAB_SHOTS points (none otherwise). */
  const shot = async (target: Locator, name: string) => {
    if (process.env.LESION_LAB_SHOTS)
      await target.screenshot({ path: join(process.env.LESION_LAB_SHOTS, name) });
  };
  const blockers = async (page: Page) =>
    (await page.getByTestId('start-blockers').count()) === 0 ? '' : await text(page, 'start-blockers');

  it('is fixed', async () => {
    const context = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const pageErrors: string[] = [];
    const warnings: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'warning' || m.type() === 'error') warnings.push(m.text());
    });
    await page.goto(app.origin);

    // 1. No cache yet: the Train page says so next to Start, and Start refuses.
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('start-blockers').waitFor();
    expect(await blockers(page)).toContain('There is no image cache on this device yet');
    expect(await page.getByTestId('start').getAttribute('aria-describedby')).toBe('start-blockers');
    await page.getByTestId('start').click();
    expect(await state(page)).toBe('idle');

    // 4. The class-weights label: the checkbox, then one text box holding the <sub>.
    const label = page.locator('label', { has: page.getByTestId('class-weights') });
    const layout = await label.evaluate((el) => {
      const box = (e: Element | null) => e?.getBoundingClientRect() ?? null;
      const input = el.querySelector('input');
      const sub = el.querySelector('sub');
      const textBox = sub?.parentElement ?? null;
      return {
        children: el.children.length,
        textIsChild: textBox?.parentElement === el && textBox !== el,
        input: box(input),
        text: box(textBox),
        sub: box(sub),
        label: box(el),
      };
    });
    expect(layout.children).toBe(2);
    expect(layout.textIsChild).toBe(true);
    // The sub sits inside the text's box, after the checkbox, not in a column of its own.
    expect(layout.sub!.left).toBeGreaterThan(layout.text!.left);
    expect(layout.sub!.right).toBeLessThanOrEqual(layout.text!.right + 0.5);
    expect(layout.text!.left - layout.input!.right).toBeLessThan(12);
    await shot(label.locator('xpath=..'), 'class-weights.png');

    // Data: drop, cache at 96 px.
    await page.getByRole('tab', { name: 'Data' }).click();
    await page.getByTestId('file-input').setInputFiles([originals.zipPath, METADATA_CSV]);
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: `Decode and cache ${IMAGES} images` }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });

    // 1. A size that is not cached is named, with the one that is; picking it clears the list.
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('image-size').selectOption('224');
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="start-blockers"]')?.textContent?.includes('96 px'),
    );
    expect(await blockers(page)).toContain(
      'There is no 224 px image cache on this device (there is one at 96 px)',
    );
    await page.getByTestId('image-size').selectOption('96');
    await page.waitForFunction(
      () =>
        !document.querySelector('[data-testid="train-page"]')?.textContent?.includes('checking…') &&
        !document.querySelector('[data-testid="start-blockers"]'),
    );

    // 9. Phase 2 on WASM: once refused before Start (tfjs's WASM backend has no conv gradient kernels); the train
    // worker now registers JavaScript ones (src/lib/train/conv-gradients.ts), so nothing blocks it. A backend that
    // cannot do the work is still refused before Start: tests/unit/backend.test.ts and train-readiness.test.ts.
    await page.getByTestId('backend-choice').selectOption('wasm');
    await page.getByLabel('Phase 2: fine-tune the top blocks').check();
    // The phase-2 block count names the backbone's real number of blocks.
    await page.getByLabel(/^Blocks to unfreeze \(of \d+\)/).waitFor();
    await page.waitForFunction(
      () => !document.querySelector('[data-testid="train-page"]')?.textContent?.includes('checking…'),
    );
    expect(await page.getByTestId('start-blockers').count()).toBe(0);
    await page.getByLabel('Phase 2: fine-tune the top blocks').uncheck();
    await page.getByTestId('backend-choice').selectOption('auto');

    // 2 and 5. A run of 20 epochs (no early stop), batch 1: Pause says so at once, the run pauses at the next
    // batch, the elapsed time stands still while paused, and the final duration is the same clock.
    await page.getByTestId('epochs').fill('20');
    await page.getByTestId('batch-size').fill('1');
    await page.getByLabel('EarlyStopping').uncheck();
    await page.getByTestId('start').click();
    await page.waitForFunction(
      () =>
        Number(document.querySelector('[data-testid="batch-loss-chart"]')?.getAttribute('data-points')) >= 3,
      undefined,
      { timeout: 300_000 },
    );
    expect(await page.getByTestId('train-error').count()).toBe(0);
    await page.getByTestId('pause').click();
    const right = await page.evaluate(() => ({
      label: document.querySelector('[data-testid="train-state-label"]')?.textContent,
      button: document.querySelector('[data-testid="pause"]')?.textContent,
      state: document.querySelector('[data-testid="train-status"]')?.getAttribute('data-state'),
    }));
    // Either still pausing (the label and the button say so) or already paused.
    if (right.state === 'training') {
      expect(right.label).toBe('Pausing at the next batch…');
      expect(right.button).toBe('Pausing…');
    } else expect(right.state).toBe('paused');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="train-status"]')?.getAttribute('data-state') === 'paused',
      undefined,
      { timeout: 10_000 },
    );
    const pointsPaused = await page.getByTestId('batch-loss-chart').getAttribute('data-points');
    await page.getByTestId('elapsed').waitFor({ timeout: 5_000 });
    const elapsedPaused = await text(page, 'elapsed');
    await page.waitForTimeout(2_500);
    expect(await page.getByTestId('batch-loss-chart').getAttribute('data-points')).toBe(pointsPaused);
    expect((await text(page, 'elapsed')).split(',')[0]).toBe(elapsedPaused.split(',')[0]);
    await page.getByTestId('resume').click();
    await page.getByTestId('train-done').waitFor({ timeout: 480_000 });
    expect(await text(page, 'train-done')).toMatch(/after 20 epoch\(s\) in \d+ s \(pauses not counted\)/);

    // 10. The backend line: what WASM runs on (headless Chromium here has only a fallback WebGPU adapter).
    const backendLine = await text(page, 'backend');
    console.info('[rough-edges] backend line:', backendLine);
    // The built app is cross-origin isolated (preview's headers): WASM runs one thread per core, up to 8.
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const threads = Math.min(Math.max(cores, 1), 8);
    expect(backendLine).toMatch(
      new RegExp(`^Backend wasm on WebAssembly, SIMD, ${threads} thread${threads === 1 ? '' : 's'}[ —;]`),
    );
    // The frozen base's features on one feature worker per core (at most 4), each with the cores left over as
    // threads (src/lib/train/feature-pool.ts); a single core extracts in the training worker.
    if (cores >= 2) {
      const workers = Math.min(cores, 4);
      const each = Math.max(1, Math.min(Math.floor(cores / workers), 8));
      expect(await text(page, 'feature-workers')).toBe(
        `features on ${workers} workers, ${each} thread${each === 1 ? '' : 's'} each`,
      );
    }
    expect(backendLine).not.toMatch(/adapter google/);
    await page.waitForFunction(
      () =>
        !document.querySelector('[data-testid="train-status"]')?.textContent?.includes('keeping the best'),
      undefined,
      { timeout: 120_000 },
    );

    // 6. Results vs Predict on the same original file: the thumbnails' probabilities against Predict's.
    await page.getByRole('tab', { name: 'Results' }).click();
    await page.getByTestId('confusion-matrix').waitFor({ timeout: 60_000 });
    const cell = page.locator('[data-testid^="cell-"][data-count]:not([data-count="0"])').first();
    await cell.focus();
    await page.keyboard.press('Enter');
    const first = page.getByTestId('cell-image').first();
    await first.waitFor();
    const imageId = ((await first.locator('.id').textContent()) ?? '').trim();
    const fromResults = Object.fromEntries(
      (await first.locator('ol.probs li').allTextContents()).map((t) => {
        const [dx, value] = t.trim().split(/\s+/);
        return [dx!, Number(value)];
      }),
    );
    const original = originals.images.find((i) => i.imageId === imageId);
    expect(original, imageId).toBeDefined();
    await page.getByRole('tab', { name: 'Predict' }).click();
    await page.getByTestId('predict-file').setInputFiles(original!.path);
    await page.getByTestId('predict-result').waitFor({ timeout: 120_000 });
    const predicted = (
      await page.locator('[data-testid="predict-result"] table.numbers tbody td').allTextContents()
    ).map((t) => Number(t.replace('%', '').trim()));
    expect(predicted).toHaveLength(DX.length);
    const compared = Object.entries(fromResults).map(([dx, p]) => ({
      dx,
      results: p,
      predict: predicted[DX.indexOf(dx)]!,
    }));
    console.info('[rough-edges] Results vs Predict for', imageId, JSON.stringify(compared));
    for (const c of compared) expect(Math.abs(c.results - c.predict), c.dx).toBeLessThanOrEqual(0.5);

    // 3. A second run with other settings, and a third that fails before its first epoch (not stored).
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('epochs').fill('1');
    await page.getByTestId('batch-size').fill('16');
    await page.getByTestId('start').click();
    await page.getByTestId('train-done').waitFor({ timeout: 480_000 });
    await page.waitForFunction(
      () =>
        !document.querySelector('[data-testid="train-status"]')?.textContent?.includes('keeping the best'),
      undefined,
      { timeout: 120_000 },
    );
    // A run that fails before its first epoch (weights of another backbone) says why and is not stored.
    await page.getByTestId('weights-kind-h5').check();
    await page.getByTestId('weights-files').setInputFiles(WRONG_H5);
    await page.getByTestId('start').click();
    await page.getByTestId('train-error').waitFor({ timeout: 120_000 });
    expect(await text(page, 'train-error')).toMatch(/weight/i);
    await page.getByTestId('weights-kind-served').check();

    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByTestId('run-row').first().waitFor();
    expect(await page.getByTestId('run-row').count()).toBe(2);
    const names = await page.getByTestId('run-name').allTextContents();
    console.info('[rough-edges] run names:', JSON.stringify(names));
    expect(new Set(names).size).toBe(2);
    expect(names[0]).toMatch(
      /^MobileNetV2 α=0\.35 96 px · 20 ep · served weights · class weights · grouped split · /,
    );
    expect(names[1]).toMatch(/ · 1 ep · stored weights · /);
    for (const name of names) await page.getByRole('checkbox', { name: `Compare ${name}` }).waitFor();
    // Rename the first run; the name is checked, kept, and names its compare box.
    await page.getByTestId('rename-run').first().click();
    await page.getByTestId('rename-input').fill(names[1]!);
    await page.getByTestId('rename-save').click();
    expect(await page.locator('#rename-error').textContent()).toContain('Another run is already named');
    await page.getByTestId('rename-input').fill('  Baseline, paused once  ');
    await page.keyboard.press('Enter');
    await page.getByRole('checkbox', { name: 'Compare Baseline, paused once' }).check();
    await page.getByRole('checkbox', { name: `Compare ${names[1]}` }).check();
    await page.getByTestId('compare-curves').waitFor();
    await shot(page.getByTestId('runs-table'), 'runs-table.png');

    // 7. A reload keeps the form (epochs, batch size, size) and the run's new name.
    await page.reload();
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByTestId('run-row').first().waitFor();
    expect(await page.getByTestId('run-name').first().textContent()).toBe('Baseline, paused once');
    await page.getByRole('tab', { name: 'Train' }).click();
    expect(await page.getByTestId('epochs').inputValue()).toBe('1');
    expect(await page.getByTestId('batch-size').inputValue()).toBe('16');
    expect(await page.getByTestId('image-size').inputValue()).toBe('96');
    // A stored weights choice that no longer exists (nothing stored for this backbone) falls back.
    await page.evaluate(() => {
      const key = 'lesion-lab:train-form';
      const form = JSON.parse(localStorage.getItem(key) ?? '{}') as Record<string, unknown>;
      localStorage.setItem(
        key,
        JSON.stringify({ ...form, backbone: 'mobilenet_v1_0.25', weightsKind: 'stored' }),
      );
    });
    await page.reload();
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.waitForFunction(
      () => !document.querySelector('[data-testid="train-page"]')?.textContent?.includes('checking…'),
    );
    expect(await page.getByTestId('backbone').inputValue()).toBe('mobilenet_v1_0.25');
    // Once the stored and served weights are known, the form moves to the files from disk.
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="weights-kind-tfjs"]') as HTMLInputElement).checked,
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.getByTestId('weights-kind-stored').isChecked()).toBe(false);
    expect(await page.getByTestId('weights-kind-stored').isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Reset to defaults' }).click();
    expect(await page.getByTestId('epochs').inputValue()).toBe('30');
    expect(await page.getByTestId('backbone').inputValue()).toBe('mobilenet_v2_0.35');

    // 8. No Observable Plot warning while all those charts were drawn.
    expect(warnings.filter((w) => /cardinality/.test(w))).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(requests.foreign(app.origin)).toEqual([]);
    await context.close();
  });
});
