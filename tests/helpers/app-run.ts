/**
 * Driving the built app like a user for the benches: train with the form's defaults and time the run's parts
 * from what the Train page shows, then read the run's metrics at full precision from its export.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobReader, TextWriter, ZipReader } from '@zip.js/zip.js';
import type { Page } from 'playwright-core';

export interface TrainTimes {
  /**
   * Start → the base's features are computed (split, model and weights included): train's and val's, and test's
   * when the app extracts them before the head.
   */
  features: number;
  /** Features done → the last epoch's row (the head's epochs). */
  head: number;
  /** The last epoch's row → the run finished and kept (best weights, the test split through the network, report). */
  evaluate: number;
  backend: string | null;
  /** WASM's thread count from the backend line; null on other backends. */
  threads: number | null;
  backendLine: string;
  /** The base's images per second for each split, as the Train page last showed it (null: not shown). */
  featuresPerSecond: { train: number | null; val: number | null; test: number | null };
  /** This process's performance.now() when Start was pressed (the parts above follow it in order). */
  startedAt: number;
}

/** On the Train page: picks `backend` ('auto' leaves the form's), presses Start and waits for the run to be kept. */
export async function trainWithDefaults(page: Page, backend = 'auto'): Promise<TrainTimes> {
  await page.getByRole('tab', { name: 'Train' }).click();
  await page.getByTestId('train-page').waitFor();
  await page.waitForFunction(
    () => !document.querySelector('[data-testid="train-page"]')?.textContent?.includes('checking…'),
  );
  if (backend !== 'auto') await page.getByLabel('Backend').selectOption(backend);
  await page.evaluate(() => {
    // The page's status line and epoch table as they change: when the features text goes away (the head's first
    // batch replaces it), each split's last features text, and when the last epoch row shows up.
    const w = window as unknown as {
      benchTimes: {
        featuresEndAt?: number;
        sawFeatures?: boolean;
        lastEpochAt?: number;
        epochRows?: number;
        featuresText: Record<string, string>;
      };
    };
    w.benchTimes = { featuresText: {} };
    const t = w.benchTimes;
    const observer = new MutationObserver(() => {
      const status = document.querySelector('[data-testid="train-status"]')?.textContent ?? '';
      const features = /(Computing|Reading cached) (train|val|test) features:[^—]*/.exec(status);
      if (features) {
        t.sawFeatures = true;
        t.featuresText[features[2] as string] = features[0];
      } else if (t.sawFeatures && t.featuresEndAt === undefined) {
        t.featuresEndAt = performance.now();
      }
      const rows = document.querySelectorAll(
        '[data-testid="epoch-loss-chart"] table.numbers tbody tr',
      ).length;
      if (rows !== (t.epochRows ?? 0)) {
        t.epochRows = rows;
        t.lastEpochAt = performance.now();
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const startedAt = await page.evaluate(() => performance.now());
  const startedHere = performance.now();
  await page.getByTestId('start').click();
  await page.getByTestId('train-done').waitFor({ timeout: 3_600_000 });
  await page.waitForFunction(
    () => !document.querySelector('[data-testid="train-status"]')?.textContent?.includes('keeping the best'),
    undefined,
    { timeout: 600_000 },
  );
  const doneAt = await page.evaluate(() => performance.now());
  const times = await page.evaluate(
    () =>
      (
        window as unknown as {
          benchTimes: { featuresEndAt?: number; lastEpochAt?: number; featuresText: Record<string, string> };
        }
      ).benchTimes,
  );
  const featuresEndAt = times.featuresEndAt ?? startedAt;
  const lastEpochAt = times.lastEpochAt ?? doneAt;
  const backendLine = ((await page.getByTestId('backend').textContent()) ?? '').replace(/\s+/g, ' ').trim();
  const usedBackend = /Backend (\w+)/.exec(backendLine)?.[1] ?? null;
  const threads = /(\d+) threads?/.exec(backendLine)?.[1];
  const rate = (split: string): number | null => {
    const match = /([\d.]+) images\/s/.exec(times.featuresText[split] ?? '');
    return match ? Number(match[1]) : null;
  };
  return {
    features: (featuresEndAt - startedAt) / 1000,
    head: (lastEpochAt - featuresEndAt) / 1000,
    evaluate: (doneAt - lastEpochAt) / 1000,
    backend: usedBackend,
    threads: usedBackend === 'wasm' && threads !== undefined ? Number(threads) : null,
    backendLine,
    featuresPerSecond: { train: rate('train'), val: rate('val'), test: rate('test') },
    startedAt: startedHere,
  };
}

export interface RunMetrics {
  balanced_accuracy: number;
  macro_f1: number;
  accuracy: number;
  samples: number;
  recall: Record<string, number>;
  epochs: number;
}

/** The newest run's metrics.json and history.csv, from its export on the Runs page (saved into `dir`). */
export async function exportedMetrics(page: Page, dir: string): Promise<RunMetrics> {
  await page.getByRole('tab', { name: 'Runs' }).click();
  await page.getByTestId('run-row').first().waitFor();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-run').first().click(),
  ]);
  const zipPath = join(dir, download.suggestedFilename());
  await download.saveAs(zipPath);
  const reader = new ZipReader(new BlobReader(new Blob([await readFile(zipPath)])));
  try {
    const entries = await reader.getEntries();
    const text = async (name: string) => {
      const entry = entries.find((e) => e.filename === name);
      if (!entry || entry.directory) throw new Error(`the run export has no ${name}`);
      return entry.getData(new TextWriter());
    };
    const metrics = JSON.parse(await text('metrics.json')) as {
      accuracy: number;
      balanced_accuracy: number;
      macro_avg: { f1: number };
      per_class: Record<string, { recall: number; support: number }>;
    };
    const history = (await text('history.csv')).trim().split('\n').length - 1;
    return {
      balanced_accuracy: metrics.balanced_accuracy,
      macro_f1: metrics.macro_avg.f1,
      accuracy: metrics.accuracy,
      samples: Object.values(metrics.per_class).reduce((sum, c) => sum + c.support, 0),
      recall: Object.fromEntries(Object.entries(metrics.per_class).map(([k, v]) => [k, v.recall])),
      epochs: history,
    };
  } finally {
    await reader.close();
  }
}
