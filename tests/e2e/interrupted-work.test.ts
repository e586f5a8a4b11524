/**
 * Interrupted work on the built app, driven like a user in Debian's Chromium on the sample served with the app:
 *
 * - Caching interrupted by a reload: the cache is not marked complete; on return the app offers to continue, and
 *   continuing decodes only the images not cached yet and ends with all 1,007.
 * - Training interrupted by a reload (augmented epochs, so an epoch lasts seconds): on return the app offers
 *   "Resume <run> from epoch N of M"; Resume (pressed with the keyboard) trains the remaining epochs only, and the
 *   stored run's history continues from the checkpoint's epoch with the first N epochs as they were.
 * - A reload after training ended but before the page stored the run (its writes held back by a transaction kept
 *   open on the runs database): the run is offered again (from its last epoch), never lost; resuming it keeps it,
 *   and once it is stored nothing is offered any more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { useBuiltApp } from '../helpers/e2e-setup.ts';

const EPOCHS = 3;

interface StoredRun {
  id: string;
  name: string;
  status: string;
  error: string | null;
  history: Array<{ phase: number; epoch: number; loss: number; val_loss: number }>;
  metrics: unknown;
}

/** The run records as the app stores them (IndexedDB `lesion-lab-runs`). */
function storedRuns(page: Page): Promise<StoredRun[]> {
  return page.evaluate(
    () =>
      new Promise<StoredRun[]>((resolve, reject) => {
        const open = indexedDB.open('lesion-lab-runs');
        // Before the app made the database there is nothing to read, and creating it here would leave it
        // without the app's object store: the upgrade is called off.
        let absent = false;
        open.onupgradeneeded = () => {
          absent = true;
          open.transaction?.abort();
        };
        open.onerror = () => (absent ? resolve([]) : reject(open.error));
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('runs')) {
            db.close();
            resolve([]);
            return;
          }
          const request = db.transaction('runs').objectStore('runs').getAll();
          request.onsuccess = () => {
            db.close();
            resolve(request.result as StoredRun[]);
          };
          request.onerror = () => reject(request.error);
        };
      }),
  );
}

/** Waits (up to 2 minutes) for a stored run that satisfies `wanted`. */
async function storedRun(page: Page, wanted: (run: StoredRun) => boolean): Promise<StoredRun> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const run = (await storedRuns(page)).find(wanted);
    if (run) return run;
    if (Date.now() > deadline) throw new Error(`no stored run as wanted: ${wanted.toString()}`);
    await page.waitForTimeout(50);
  }
}

/**
 * Holds the runs database (IndexedDB `lesion-lab-runs`) with a readwrite transaction kept busy, so the app's writes
 * wait: the run is not stored until the page goes away.
 */
function holdRunsDatabase(page: Page): Promise<void> {
  return page.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('lesion-lab-runs');
        // The app makes the database with its first stored run (the test before this one): made here, it would
        // lack the app's object store.
        open.onupgradeneeded = () => {
          open.transaction?.abort();
          reject(new Error('no runs database yet: run this test after one that stores a run'));
        };
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          let store: IDBObjectStore;
          try {
            store = open.result.transaction('runs', 'readwrite').objectStore('runs');
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
            return;
          }
          // A transaction commits once no request is pending: one more, each time one ends.
          const busy = () => (store.count().onsuccess = busy);
          busy();
          resolve();
        };
      }),
  );
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('interrupted work', () => {
  const app = useBuiltApp();
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    context = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(app.origin);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('a reload during caching leaves no complete cache; Continue decodes only the rest and ends with all images', async () => {
    // A fresh browser context: its own, empty storage.
    const other = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const cachePage = await other.newPage();
      const errors: string[] = [];
      cachePage.on('pageerror', (e) => errors.push(e.message));
      await cachePage.goto(app.origin);
      await cachePage.getByRole('button', { name: 'Try it with a sample' }).click();
      await cachePage.getByTestId('matched-count').waitFor({ timeout: 120_000 });
      await cachePage.getByLabel('Image size').selectOption('96');
      await cachePage.getByRole('button', { name: 'Decode and cache 1,007 images' }).click();
      const written = cachePage.getByRole('progressbar', { name: 'Writing to the cache' });
      const deadline = Date.now() + 300_000;
      while (Number((await written.getAttribute('aria-valuenow').catch(() => null)) ?? 0) < 300) {
        if (Date.now() > deadline) throw new Error('caching did not reach 300 images');
        await cachePage.waitForTimeout(50);
      }
      const atReload = Number(await written.getAttribute('aria-valuenow'));
      await cachePage.reload();

      const offer = cachePage.getByTestId('cache-offer');
      await offer.waitFor({ timeout: 60_000 });
      const text = ((await offer.textContent()) ?? '').replace(/\s+/g, ' ').trim();
      const [, cached, total] =
        /Caching at 96 px was interrupted: ([\d,]+) of ([\d,]+) images are cached\./.exec(text) ?? [];
      const already = Number(cached!.replace(/,/g, ''));
      console.info(
        '[interrupted-work] caching',
        JSON.stringify({ writtenAtReload: atReload, journaled: already }),
      );
      expect(total).toBe('1,007');
      // The journal is brought up to date every second, so nearly everything written before the reload counts.
      expect(already).toBeGreaterThan(0);
      expect(already).toBeLessThanOrEqual(Math.max(atReload, 1007));
      // Not marked complete: no cache is restored, and Train has nothing to train on.
      expect(await cachePage.getByTestId('cache-status').count()).toBe(0);

      await cachePage.getByTestId('continue-caching').focus();
      await cachePage.keyboard.press('Enter');
      await cachePage.getByTestId('cache-status').waitFor({ timeout: 300_000 });
      const status = ((await cachePage.getByTestId('cache-status').textContent()) ?? '').replace(/\s+/g, ' ');
      expect(status).toContain('1,007');
      const notice = (await cachePage.locator('.notice.ok').allTextContents()).join(' ').replace(/\s+/g, ' ');
      expect(notice).toContain(
        `Continued the interrupted caching: ${already.toLocaleString('en-US')} images were already cached, ` +
          `${(1007 - already).toLocaleString('en-US')} decoded now; 1,007 images at 96 px in all.`,
      );
      expect(await cachePage.getByTestId('cache-offer').count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('caches the sample at 96 px', async () => {
    await page.getByRole('button', { name: 'Try it with a sample' }).click();
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: 'Decode and cache 1,007 images' }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 300_000 });
  });

  it('a reload during training offers to resume from the last epoch; the run ends with its history continued', async () => {
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('image-size').selectOption('96');
    await page.getByTestId('epochs').fill(String(EPOCHS));
    // Augmentation sends images through the base every epoch, so an epoch takes seconds, not milliseconds.
    await page.getByTestId('augment').check();
    await page.getByLabel('EarlyStopping').uncheck();
    await page.waitForFunction(() => !document.querySelector('[data-testid="start-blockers"]'));
    await page.getByTestId('start').click();
    // The page shows epoch 1 only once its checkpoint is written; the reload comes during epoch 2.
    await page.waitForFunction(
      () => /epoch 2, batch/.test(document.querySelector('[data-testid="train-status"]')?.textContent ?? ''),
      undefined,
      { timeout: 300_000 },
    );
    // The page stores the run's record after each epoch (through the runs worker): wait until it has.
    const before = await storedRun(page, (r) => r.status === 'running' && r.history.length > 0);
    await page.reload();

    const offer = page.getByTestId('resume-offer');
    await offer.waitFor({ timeout: 60_000 });
    const text = ((await offer.textContent()) ?? '').replace(/\s+/g, ' ').trim();
    const from = Number(
      new RegExp(`Resume ${escape(before.name)} from epoch (\\d+) of ${EPOCHS}\\?`).exec(text)?.[1],
    );
    console.info(
      '[interrupted-work] training',
      JSON.stringify({ storedEpochs: before.history.length, from }),
    );
    // At most the epoch in progress is lost.
    expect(from).toBeGreaterThanOrEqual(before.history.length);
    expect(from).toBeLessThan(EPOCHS);
    expect(await offer.getAttribute('data-run-id')).toBe(before.id);
    // The form is usable from the keyboard: focus Resume, press Enter.
    await page.getByTestId('resume-run').focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('train-done').waitFor({ timeout: 400_000 });
    const done = ((await page.getByTestId('train-done').textContent()) ?? '').replace(/\s+/g, ' ');
    expect(done).toContain(`Ended (completed) after ${EPOCHS} epoch(s), resumed after epoch ${from}`);
    expect(await page.getByTestId('resume-offer').count()).toBe(0);

    // The record is completed once the model and test results are kept, just after the done line.
    const after = await storedRun(page, (r) => r.id === before.id && r.status !== 'running');
    expect(after.status).toBe('completed');
    expect(after.name).toBe(before.name);
    expect(after.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    // The epochs trained before the reload are kept as they were, not trained again from the start.
    expect(after.history.slice(0, before.history.length)).toEqual(before.history);
    expect(after.metrics).not.toBeNull();
    expect(pageErrors).toEqual([]);
  });

  it('a reload while the page keeps a finished run: the run is offered again, and resuming it keeps it', async () => {
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('image-size').selectOption('96');
    await page.getByTestId('epochs').fill('1');
    await page.getByTestId('augment').uncheck();
    await page.getByLabel('EarlyStopping').uncheck();
    await page.waitForFunction(() => !document.querySelector('[data-testid="start-blockers"]'));
    await page.getByTestId('start').click();
    await holdRunsDatabase(page);
    await page.getByText('keeping the best model and the test results').waitFor({ timeout: 300_000 });
    // Training has ended and the page is storing the run, which the held database makes it wait for.
    await page.reload();

    const offer = page.getByTestId('resume-offer');
    await offer.waitFor({ timeout: 60_000 });
    const text = ((await offer.textContent()) ?? '').replace(/\s+/g, ' ').trim();
    expect(text).toMatch(/Resume .+ from epoch 1 of 1\?/);
    const id = (await offer.getAttribute('data-run-id'))!;
    await page.getByTestId('resume-run').focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('train-done').waitFor({ timeout: 400_000 });
    const after = await storedRun(page, (r) => r.id === id && r.status !== 'running');
    expect(after.status).toBe('completed');
    expect(after.history.map((h) => h.epoch)).toEqual([1]);
    expect(after.metrics).not.toBeNull();

    // Stored: the page deletes its resume point, so nothing is left to offer.
    await page.waitForFunction(
      async () => {
        const root = await navigator.storage.getDirectory();
        const train = await root.getDirectoryHandle('lesion-lab-train');
        const resume = await train.getDirectoryHandle('resume');
        for await (const _ of (resume as unknown as { keys(): AsyncIterable<string> }).keys()) return false;
        return true;
      },
      undefined,
      { timeout: 60_000, polling: 250 },
    );
    expect(await page.getByTestId('resume-offer').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
