/**
 * `npm run -s bench -- sample [--backend auto|wasm|webgl|cpu|webgpu] [--no-build]`
 *
 * What a first-time visitor does with the sample pack, timed on the built app (`npm run build`, served by
 * `vite preview` with the app's headers) in headless /usr/bin/chromium, with every default: "Try it with a sample"
 * (the pack served with the app: about 1,000 HAM10000 images + the full metadata), "Decode and cache" at the
 * default size, the Explore page's charts, Train with the defaults (MobileNetV2 α 0.35 with the served ImageNet
 * weights, frozen, lesion-grouped split, class weights, 30 epochs with early stopping), then the Results page's
 * confusion matrix. The figures come from the page as a user sees it (the moments each step's result shows up),
 * and the test metrics at full precision from the run's exported metrics.json. Prints one JSON object:
 *
 *   images               images cached (matched rows of the sample)
 *   backend              the backend the Train page reports
 *   seconds.ingest       click on the sample button → the cache is ready (download, list, match, decode, write)
 *   seconds.explore      the Explore tab → its charts drawn
 *   seconds.train        Start → the last epoch's row (split, weights, features of train/val, head epochs)
 *   seconds.evaluate     the last epoch's row → the run is finished and kept (best weights restored, the test
 *                        split's images through the whole network, report, model stored)
 *   seconds.results      the Results tab → the confusion matrix drawn
 *   seconds.total        the sum: first click to confusion matrix, without the bench's own steps
 *   test                 balanced_accuracy, macro_f1, accuracy, samples (test split of the sample), with the
 *                        run's 95 % lesion-bootstrap CIs, Brier, ECE before/after temperature (evaluation.json)
 *   epochs               epochs run (early stopping)
 *   lessons              with --lessons: each built-in lesson's experiments run from the lesson panel ("Run this
 *                        experiment") on the same cache, in the lesson's order: seconds (click → run kept), the
 *                        backend and test balanced accuracy (from the Train page, 3 decimals) of each
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exportedRun, trainWithDefaults } from '../helpers/app-run.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { startPreview } from '../helpers/preview.ts';
import { BUILTIN_LESSONS } from '../../src/lib/lessons/builtin.ts';
import type { Page } from 'playwright-core';

const root = resolve(import.meta.dirname, '..', '..');
const log = (message: string): void => void process.stderr.write(`[bench sample] ${message}\n`);
const now = (): number => performance.now();

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function bench(args: string[]) {
  const backend = option(args, 'backend') ?? 'auto';
  if (!args.includes('--no-build')) {
    log('building the app (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const app = await startPreview();
  const browser = await launchChromium();
  const dir = await mkdtemp(join(tmpdir(), 'lesion-lab-sample-bench-'));
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(app.origin);
    await page.getByRole('heading', { name: 'Your data' }).waitFor();

    // Data: the sample, then decode and cache at the default size.
    let t = now();
    await page.getByRole('button', { name: 'Try it with a sample' }).click();
    await page.getByTestId('matched-count').waitFor({ timeout: 300_000 });
    const matched = Number(
      ((await page.getByTestId('matched-count').textContent()) ?? '').replace(/\D/g, ''),
    );
    await page.getByRole('button', { name: /^Decode and cache/ }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 600_000 });
    const ingest = (now() - t) / 1000;
    const cached = Number(
      /Cached: ([\d,]+) images/
        .exec((await page.getByTestId('cache-status').textContent()) ?? '')?.[1]
        ?.replace(/,/g, ''),
    );
    log(`ingest: ${matched} matched, ${cached} cached in ${ingest.toFixed(1)} s`);

    // Explore: the charts.
    t = now();
    await page.getByRole('tab', { name: 'Explore' }).click();
    await page.locator('[data-lesson-target="images-per-lesion"] svg').first().waitFor({ timeout: 120_000 });
    const explore = (now() - t) / 1000;

    // Train with the defaults (the backend only if asked): `train` is Start → the last epoch's row (the base's
    // features and the head), `evaluate` the rest (best weights restored, the test split scored, the run kept).
    const trained = await trainWithDefaults(page, backend);
    const train = trained.features + trained.head;
    const evaluate = trained.evaluate;
    const backendLine = trained.backendLine;
    const usedBackend = trained.backend;
    log(`train ${train.toFixed(1)} s, evaluate ${evaluate.toFixed(1)} s on ${usedBackend}`);

    // Results: the confusion matrix.
    t = now();
    await page.getByRole('tab', { name: 'Results' }).click();
    await page.getByTestId('confusion-matrix').waitFor({ timeout: 120_000 });
    const results = (now() - t) / 1000;

    // The run's metrics at full precision, from its export.
    const { metrics, evaluation } = await exportedRun(page, dir);
    const lessons = args.includes('--lessons') ? await timeLessons(page) : undefined;
    if (errors.length > 0) log(`page errors: ${errors.join(' | ')}`);
    await context.close();
    return {
      images: cached,
      backend: usedBackend,
      backend_line: backendLine,
      seconds: {
        ingest,
        explore,
        train,
        evaluate,
        results,
        total: ingest + explore + train + evaluate + results,
      },
      test: {
        balanced_accuracy: metrics.balanced_accuracy,
        balanced_accuracy_ci: metrics.balanced_accuracy_ci,
        macro_f1: metrics.macro_f1,
        macro_f1_ci: metrics.macro_f1_ci,
        macro_auc_ci: metrics.macro_auc_ci,
        accuracy: metrics.accuracy,
        brier: evaluation?.calibration.brier ?? null,
        ece: evaluation?.calibration.ece ?? null,
        ece_after_temperature: evaluation?.temperature?.calibration.ece ?? null,
        samples: metrics.samples,
        recall: metrics.recall,
      },
      epochs: metrics.epochs,
      ...(lessons ? { lessons } : {}),
      page_errors: errors,
    };
  } finally {
    await browser.close();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every built-in lesson's experiments, one click each from the lesson panel, timed until the run is kept. */
async function timeLessons(page: Page) {
  const out: Record<
    string,
    Record<string, { seconds: number; backend: string | null; balanced_accuracy: number | null }>
  > = {};
  for (const lesson of BUILTIN_LESSONS) {
    out[lesson.id] = {};
    await page.getByRole('tab', { name: 'Learn' }).click();
    await page.getByTestId(`open-lesson-${lesson.id}`).click();
    for (const [i, step] of lesson.steps.entries()) {
      if (step.experiment) {
        const t = now();
        await page.getByTestId('lesson-run').click();
        await page.getByTestId('lesson-run-done').waitFor({ timeout: 1_800_000 });
        const seconds = (now() - t) / 1000;
        const done = ((await page.getByTestId('train-done').textContent()) ?? '').replace(/\s+/g, ' ');
        const line = ((await page.getByTestId('backend').textContent()) ?? '').replace(/\s+/g, ' ');
        const accuracy = /test balanced accuracy ([\d.]+)/.exec(done)?.[1];
        out[lesson.id]![step.experiment] = {
          seconds,
          backend: /Backend (\w+)/.exec(line)?.[1] ?? null,
          balanced_accuracy: accuracy === undefined ? null : Number(accuracy),
        };
        log(`lesson ${lesson.id}, ${step.experiment}: ${seconds.toFixed(1)} s`);
      }
      if (i < lesson.steps.length - 1) await page.getByTestId('lesson-next').click();
    }
    await page.getByRole('button', { name: 'Close the lesson' }).click();
  }
  return out;
}
