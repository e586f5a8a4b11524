/**
 * `npm run -s bench -- e2e [--limit N] [--backend auto|wasm|webgpu|webgl|cpu] [--no-build] [--keep] [--archive PATH]`
 *
 * The whole job, from the drop to the confusion matrix, on the built app (`npm run build`, served by
 * `vite preview` with the app's headers, so the page is cross-origin isolated) in headless /usr/bin/chromium,
 * with every default. The archive is Kaggle-shaped (tests/helpers/zips.ts buildKaggleZip: both part folders,
 * the lower-case copies, the metadata CSV and the hmnist stand-ins, deflated) and holds the real downscaled
 * HAM10000 images of ../shared/data/ham10000/all-200x150/ under their own ids (10,013 of the 10,015; --limit N:
 * the first N). Steps, as a user: drop the zip on the Data page, "Decode and cache", Train → Start (MobileNetV2
 * α 0.35, served ImageNet weights, frozen, lesion-grouped split, class weights, 30 epochs with early stopping),
 * Results → the confusion matrix. Prints one JSON object:
 *
 *   images              images cached
 *   backend, threads    what the Train page's backend line says (threads: WASM's; null on GPU backends)
 *   seconds.ingest      drop → match report → "Decode and cache" → the cache is ready
 *   seconds.features    Start → the base's features computed (split, weights, model included): train, val and
 *                       test (the app extracts the test split's too, so the evaluation runs only the head)
 *   seconds.head        → the last epoch's row (the head's epochs on cached features)
 *   seconds.evaluate    → the run is kept (best weights, the head on the test and val features, report)
 *   seconds.results     the Results tab → the confusion matrix drawn
 *   seconds.total       the sum: drop to confusion matrix, without the bench's own steps
 *   test                balanced_accuracy, macro_f1, accuracy, samples, recall per class, epochs, and the run's
 *                       95 % lesion-bootstrap CIs (balanced_accuracy_ci, macro_f1_ci, macro_auc_ci; evaluation.json)
 *   features_per_second the base's rate on the train, val and test splits, as the Train page showed it
 *   peak_renderer_rss_mb  the largest sum of VmRSS over Chromium's renderer processes, sampled every 250 ms
 *   chromium_cpu_seconds  CPU time of all of Chromium's processes over the job (≈ total × cores when all busy)
 *   cores_busy          per part, Chromium's CPU seconds over the part's wall seconds (2 = both cores of this
 *                       machine busy all along; sampled every 500 ms, so a part of a few seconds is rough)
 *   load_average        the machine's 1-minute load average at the start and the end (others' jobs share the cores)
 *   backend_line, archive (entries, bytes, build seconds), page_errors
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumArgs, chromiumPath } from '../helpers/chromium.ts';
import { startPreview } from '../helpers/preview.ts';
import { exportedMetrics, trainWithDefaults } from '../helpers/app-run.ts';
import { sampleRenderers } from '../helpers/renderer-rss.ts';
import {
  buildKaggleZip,
  KAGGLE_ZIP_NAME,
  makeTempDir,
  METADATA_CSV,
  readSmallImages,
  removeTempDir,
} from '../helpers/zips.ts';

const root = resolve(import.meta.dirname, '..', '..');
const log = (message: string): void => void process.stderr.write(`[bench e2e] ${message}\n`);
const now = (): number => performance.now();

interface Options {
  limit: number | null;
  backend: string;
  build: boolean;
  keep: boolean;
  archive: string | null;
}

function parseArgs(args: string[]): Options {
  const options: Options = { limit: null, backend: 'auto', build: true, keep: false, archive: null };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--limit') options.limit = Number(value());
    else if (arg === '--backend') options.backend = value();
    else if (arg === '--no-build') options.build = false;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--archive') options.archive = resolve(value());
    else throw new Error(`unknown argument ${arg}`);
  }
  if (options.limit !== null && !(Number.isInteger(options.limit) && options.limit > 0))
    throw new Error('--limit must be a positive integer');
  if (!['auto', 'wasm', 'webgpu', 'webgl', 'cpu'].includes(options.backend))
    throw new Error('--backend must be auto, wasm, webgpu, webgl or cpu');
  return options;
}

export async function bench(args: string[]) {
  const options = parseArgs(args);
  if (options.build) {
    log('building the app (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const dir = await makeTempDir('lesion-lab-e2e-bench-');
  let archivePath = options.archive;
  let archive: { entries: number | null; bytes: number; seconds: number };
  if (archivePath === null) {
    let images = readSmallImages();
    if (options.limit !== null) images = images.slice(0, options.limit);
    archivePath = join(dir, KAGGLE_ZIP_NAME);
    const t = now();
    const built = await buildKaggleZip(archivePath, { images, csvPath: METADATA_CSV });
    archive = { entries: built.entries, bytes: built.bytes, seconds: (now() - t) / 1000 };
    log(`archive: ${built.entries} entries, ${built.bytes} bytes in ${archive.seconds.toFixed(1)} s`);
  } else {
    archive = { entries: null, bytes: statSync(archivePath).size, seconds: 0 };
  }
  const app = await startPreview();
  // A persistent profile on disk, as a user has: in Playwright's default (incognito-like) contexts Chromium keeps
  // OPFS in memory and refuses a file over 1 GB, and the whole dataset's cache at 224 px is 1.5 GB.
  const profile = await makeTempDir('lesion-lab-e2e-bench-profile-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    args: chromiumArgs,
    headless: true,
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  const sampler = sampleRenderers();
  // Chromium's CPU seconds over time, to say per part how many cores the job kept busy.
  const cpuSeries: { at: number; cpu: number }[] = [];
  const cpuTimer = setInterval(() => cpuSeries.push({ at: now(), cpu: sampler.cpuSeconds() }), 500);
  const cpuAt = (at: number): number => {
    const after = cpuSeries.findIndex((s) => s.at >= at);
    if (after <= 0) return cpuSeries[after === 0 ? 0 : cpuSeries.length - 1]?.cpu ?? 0;
    const a = cpuSeries[after - 1]!;
    const b = cpuSeries[after]!;
    return a.cpu + ((b.cpu - a.cpu) * (at - a.at)) / (b.at - a.at);
  };
  const busy = (from: number, seconds: number): number =>
    seconds > 0 ? (cpuAt(from + seconds * 1000) - cpuAt(from)) / seconds : 0;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(app.origin);
    await page.getByRole('heading', { name: 'Your data' }).waitFor();

    const loadBefore = loadavg()[0];
    const cpuBefore = sampler.cpuSeconds();
    let t = now();
    const ingestStart = t;
    await page.getByTestId('file-input').setInputFiles(archivePath);
    await page.getByTestId('matched-count').waitFor({ timeout: 600_000 });
    const alertsBefore = await page.getByRole('alert').count();
    await page.getByRole('button', { name: /^Decode and cache/ }).click();
    // The cache, or a new error on the Data page: a failed ingest must end the bench, not hang it.
    await page.waitForFunction(
      (before) =>
        document.querySelector('[data-testid="cache-status"]') !== null ||
        document.querySelectorAll('[role="alert"]').length > before,
      alertsBefore,
      { timeout: 3_600_000, polling: 1000 },
    );
    if (!(await page.getByTestId('cache-status').isVisible())) {
      throw new Error(`the ingest failed: ${(await page.getByRole('alert').last().textContent()) ?? ''}`);
    }
    const ingest = (now() - t) / 1000;
    const cached = Number(
      /Cached: ([\d,]+) images/
        .exec((await page.getByTestId('cache-status').textContent()) ?? '')?.[1]
        ?.replace(/,/g, ''),
    );
    log(`ingest: ${cached} images cached in ${ingest.toFixed(1)} s`);

    const train = await trainWithDefaults(page, options.backend);
    log(
      `features ${train.features.toFixed(1)} s, head ${train.head.toFixed(1)} s, evaluate ` +
        `${train.evaluate.toFixed(1)} s on ${train.backendLine}`,
    );

    t = now();
    const resultsStart = t;
    await page.getByRole('tab', { name: 'Results' }).click();
    await page.getByTestId('confusion-matrix').waitFor({ timeout: 300_000 });
    const results = (now() - t) / 1000;
    const cpu = sampler.cpuSeconds() - cpuBefore;
    cpuSeries.push({ at: now(), cpu: sampler.cpuSeconds() });
    const headStart = train.startedAt + train.features * 1000;
    const evaluateStart = headStart + train.head * 1000;
    const coresBusy = {
      ingest: busy(ingestStart, ingest),
      features: busy(train.startedAt, train.features),
      head: busy(headStart, train.head),
      evaluate: busy(evaluateStart, train.evaluate),
      results: busy(resultsStart, results),
    };

    const metrics = await exportedMetrics(page, dir);
    if (errors.length > 0) log(`page errors: ${errors.join(' | ')}`);
    const total = ingest + train.features + train.head + train.evaluate + results;
    return {
      images: cached,
      backend: train.backend,
      threads: train.threads,
      seconds: {
        ingest,
        features: train.features,
        head: train.head,
        evaluate: train.evaluate,
        results,
        total,
      },
      test: metrics,
      features_per_second: train.featuresPerSecond,
      peak_renderer_rss_mb: sampler.peakMb,
      chromium_cpu_seconds: cpu,
      cores_busy: coresBusy,
      load_average: { start: loadBefore, end: loadavg()[0] },
      backend_line: train.backendLine,
      archive: { ...archive, path: options.keep || options.archive ? archivePath : null },
      page_errors: errors,
    };
  } finally {
    clearInterval(cpuTimer);
    sampler.stop();
    await context.close();
    await app.close();
    await removeTempDir(profile);
    if (options.keep && options.archive === null) log(`archive kept: ${archivePath}`);
    else await removeTempDir(dir);
  }
}
