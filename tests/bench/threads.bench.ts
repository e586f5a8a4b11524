/**
 * `npm run -s bench -- threads [--no-build] [--epochs N]`
 *
 * The WASM backend multi- against single-threaded, in one run, on the same built app and the same images: the app
 * is served twice, by `vite preview` with the app's headers (cross-origin isolated: threads) and by a plain static
 * server with no headers (as GitHub Pages: one thread). On each, in a fresh browser context: "Try it with a
 * sample", "Decode and cache", then Train on WASM with the defaults (MobileNetV2 α 0.35, served weights, frozen)
 * but --epochs (default 1: the base's features are what is measured). Prints one JSON object:
 *
 *   multi, single       for each: isolated, threads (from the backend line), features_per_second {train, val}
 *                       (the Train page's rate), seconds {ingest, features, head, evaluate}, chromium_cpu_seconds
 *                       over the training, backend_line
 *   speedup             multi.features_per_second.train / single.features_per_second.train
 *   hardware_concurrency, load_average (1-minute, at the start and the end: other jobs share the cores)
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.ts';
import { startPreview } from '../helpers/preview.ts';
import { startStaticServer } from '../helpers/static-server.ts';
import { trainWithDefaults } from '../helpers/app-run.ts';
import { sampleRenderers } from '../helpers/renderer-rss.ts';

const root = resolve(import.meta.dirname, '..', '..');
const log = (message: string): void => void process.stderr.write(`[bench threads] ${message}\n`);
const now = (): number => performance.now();

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

async function measure(browser: Browser, url: string, epochs: number) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.getByRole('heading', { name: 'Your data' }).waitFor();
    const isolated = await page.evaluate(() => crossOriginIsolated);
    let t = now();
    await page.getByRole('button', { name: 'Try it with a sample' }).click();
    await page.getByTestId('matched-count').waitFor({ timeout: 300_000 });
    await page.getByRole('button', { name: /^Decode and cache/ }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 600_000 });
    const ingest = (now() - t) / 1000;
    await page.getByRole('tab', { name: 'Train' }).click();
    await page.getByTestId('epochs').fill(String(epochs));
    const sampler = sampleRenderers();
    t = now();
    const train = await trainWithDefaults(page, 'wasm');
    const cpu = sampler.cpuSeconds();
    sampler.stop();
    log(`${url}: isolated ${isolated}, ${train.backendLine}, ${JSON.stringify(train.featuresPerSecond)}`);
    return {
      isolated,
      threads: train.threads,
      features_per_second: train.featuresPerSecond,
      seconds: { ingest, features: train.features, head: train.head, evaluate: train.evaluate },
      chromium_cpu_seconds: cpu,
      backend_line: train.backendLine,
    };
  } finally {
    await context.close();
  }
}

export async function bench(args: string[]) {
  const epochs = Number(option(args, 'epochs') ?? 1);
  if (!args.includes('--no-build')) {
    log('building the app (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const preview = await startPreview();
  const plain = await startStaticServer({ root: join(root, 'dist') });
  const browser = await launchChromium();
  const loadStart = loadavg()[0];
  try {
    const multi = await measure(browser, preview.origin, epochs);
    const single = await measure(browser, plain.url, epochs);
    const speedup =
      multi.features_per_second.train !== null && single.features_per_second.train !== null
        ? multi.features_per_second.train / single.features_per_second.train
        : null;
    return {
      multi,
      single,
      speedup,
      hardware_concurrency: availableParallelism(),
      load_average: { start: loadStart, end: loadavg()[0] },
      epochs,
    };
  } finally {
    await browser.close();
    await preview.close();
    await plain.close();
  }
}
