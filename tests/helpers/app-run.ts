/**
 * Driving the built app like a user, for the benches and the e2e tests: drop files and cache them, train with the
 * form's defaults and time the run's parts from what the Train page shows, wait for a run to be kept, and read the
 * newest run's files (metrics at full precision, config, predictions) from its export.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobReader, TextWriter, ZipReader } from '@zip.js/zip.js';
import type { BrowserContext, Page } from 'playwright-core';
import type { Interval } from '../../src/lib/metrics/bootstrap.ts';
import type { RunEvaluation } from '../../src/lib/runs/evaluation.ts';

/** A test id's text as a user reads it: white space folded, trimmed (the first match). */
export async function testIdText(page: Page, testId: string): Promise<string> {
  return ((await page.getByTestId(testId).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

/**
 * On the Data page: drops `files`, waits for the match report (which must say `images` images matched), picks the
 * image size and presses "Decode and cache", until the cache is ready.
 */
export async function dropAndCache(
  page: Page,
  files: string[],
  { images, size }: { images: number; size: string },
): Promise<void> {
  await page.getByTestId('file-input').setInputFiles(files);
  await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
  const matched = await testIdText(page, 'matched-count');
  if (matched !== `${images} images matched`)
    throw new Error(`expected ${images} images matched: ${matched}`);
  await page.getByLabel('Image size').selectOption(size);
  await page.getByRole('button', { name: `Decode and cache ${images} images` }).click();
  await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });
}

/**
 * After Start on the Train page: waits until the run is done and kept (best weights restored, the test split
 * through the network, stored); a run that fails throws with what the Train page says.
 */
export async function waitForRunKept(page: Page, timeout = 480_000): Promise<void> {
  await page.waitForFunction(
    () =>
      document.querySelector('[data-testid="train-done"]') !== null ||
      document.querySelector('[data-testid="train-error"]') !== null,
    undefined,
    { timeout },
  );
  if ((await page.getByTestId('train-error').count()) > 0) {
    throw new Error(`the run failed: ${await testIdText(page, 'train-page')}`);
  }
  await page.waitForFunction(
    () => !document.querySelector('[data-testid="train-status"]')?.textContent?.includes('keeping the best'),
    undefined,
    { timeout: 120_000 },
  );
}

/** Stores a run in `context`'s browser profile as a user would: a page of its own imports `zipPath` on Runs. */
export async function importRunZip(context: BrowserContext, origin: string, zipPath: string): Promise<void> {
  const page = await context.newPage();
  try {
    await page.goto(origin);
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByTestId('import-run').setInputFiles(zipPath);
    await page.getByTestId('run-row').waitFor({ timeout: 120_000 });
  } finally {
    await page.close();
  }
}

/**
 * The newest run's export from the Runs page (the zip saved into `dir`): the text of each of `names` that it holds
 * (run.json, config.json, metrics.json, predictions.json, evaluation.json, history.csv, …).
 */
export async function exportedRunFiles(
  page: Page,
  dir: string,
  names: readonly string[],
): Promise<Map<string, string>> {
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
    const files = new Map<string, string>();
    for (const entry of await reader.getEntries()) {
      if (!entry.directory && names.includes(entry.filename)) {
        files.set(entry.filename, await entry.getData(new TextWriter()));
      }
    }
    return files;
  } finally {
    await reader.close();
  }
}

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
  /** The run's 95 % lesion-bootstrap intervals (evaluation.json); null when the export has none. */
  balanced_accuracy_ci: Interval | null;
  macro_f1: number;
  macro_f1_ci: Interval | null;
  macro_auc_ci: Interval | null;
  accuracy: number;
  samples: number;
  recall: Record<string, number>;
  epochs: number;
}

/** The newest run's test metrics at full precision and its evaluation (CIs, calibration), from its export. */
export interface ExportedRun {
  metrics: RunMetrics;
  /** evaluation.json; null when the export has none. */
  evaluation: RunEvaluation | null;
}

/**
 * The newest run's metrics.json, evaluation.json (bootstrap CIs, calibration) and history.csv, from its export on
 * the Runs page (saved into `dir`).
 */
export async function exportedRun(page: Page, dir: string): Promise<ExportedRun> {
  const files = await exportedRunFiles(page, dir, ['metrics.json', 'evaluation.json', 'history.csv']);
  const text = (name: string): string => {
    const found = files.get(name);
    if (found === undefined) throw new Error(`the run export has no ${name}`);
    return found;
  };
  const metrics = JSON.parse(text('metrics.json')) as {
    accuracy: number;
    balanced_accuracy: number;
    macro_avg: { f1: number };
    per_class: Record<string, { recall: number; support: number }>;
  };
  const evaluation = files.has('evaluation.json')
    ? (JSON.parse(text('evaluation.json')) as RunEvaluation)
    : null;
  const history = text('history.csv').trim().split('\n').length - 1;
  return {
    metrics: {
      balanced_accuracy: metrics.balanced_accuracy,
      balanced_accuracy_ci: evaluation?.ci.balanced_accuracy_ci ?? null,
      macro_f1: metrics.macro_avg.f1,
      macro_f1_ci: evaluation?.ci.macro_f1_ci ?? null,
      macro_auc_ci: evaluation?.ci.macro_auc_ci ?? null,
      accuracy: metrics.accuracy,
      samples: Object.values(metrics.per_class).reduce((sum, c) => sum + c.support, 0),
      recall: Object.fromEntries(Object.entries(metrics.per_class).map(([k, v]) => [k, v.recall])),
      epochs: history,
    },
    evaluation,
  };
}

/** The newest run's test metrics from its export (see exportedRun). */
export async function exportedMetrics(page: Page, dir: string): Promise<RunMetrics> {
  return (await exportedRun(page, dir)).metrics;
}
