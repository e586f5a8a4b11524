/**
 * `npm run -s bench -- runs-list [--no-build] [--pages N]`
 *
 * How long a fresh page of the built app takes to show the stored runs: one run (a real export made with the app's
 * exportRunZip, imported on the Runs page) is stored, then N new pages (default 5) of the same browser profile
 * (no service worker, so every file is requested as on a first visit's reload) open the app, click Runs as soon as
 * the tab is there and wait for the run's row. Prints one JSON object:
 *
 *   seconds_to_list     per page: navigation start → the run's row is shown (the page's own clock)
 *   seconds_after_click per page: the Runs tab clicked → the row is shown
 *   median              of each
 *   load_average        1-minute, at the start and the end (other jobs share the cores)
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { importRunZip } from '../helpers/app-run.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { startPreview } from '../helpers/preview.ts';
import { makeRunZip } from '../helpers/run-zips.ts';
import { makeTempDir, removeTempDir } from '../helpers/zips.ts';

const root = resolve(import.meta.dirname, '..', '..');
const log = (message: string): void => void process.stderr.write(`[bench runs-list] ${message}\n`);

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function bench(args: string[]) {
  const pages = Number(option(args, 'pages') ?? 5);
  if (!args.includes('--no-build')) {
    log('building the app (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const dir = await makeTempDir();
  const app = await startPreview();
  const browser = await launchChromium();
  const loadStart = loadavg()[0];
  try {
    const context = await browser.newContext({
      serviceWorkers: 'block',
      viewport: { width: 1280, height: 900 },
    });
    const zipPath = join(dir, 'bench-run.zip');
    await writeFile(zipPath, await makeRunZip('runs-list bench'));
    await importRunZip(context, app.origin, zipPath);

    const toList: number[] = [];
    const afterClick: number[] = [];
    for (let i = 0; i < pages; i++) {
      const page = await context.newPage();
      await page.goto(app.origin);
      await page.getByRole('tab', { name: 'Runs' }).click();
      const clickedAt = await page.evaluate(() => performance.now());
      // The page's clock when the row is first there (polled every frame): falsy until then.
      const shown = await page.waitForFunction(
        () => (document.querySelector('[data-testid="run-row"]') ? performance.now() : 0),
        undefined,
        { timeout: 120_000, polling: 'raf' },
      );
      const shownAt = await shown.jsonValue();
      toList.push(shownAt / 1000);
      afterClick.push((shownAt - clickedAt) / 1000);
      log(
        `page ${i + 1}: list after ${(shownAt / 1000).toFixed(2)} s (${((shownAt - clickedAt) / 1000).toFixed(2)} s after the click)`,
      );
      await page.close();
    }
    await context.close();
    return {
      seconds_to_list: toList,
      seconds_after_click: afterClick,
      median: { seconds_to_list: median(toList), seconds_after_click: median(afterClick) },
      pages,
      hardware_concurrency: availableParallelism(),
      load_average: { start: loadStart, end: loadavg()[0] },
    };
  } finally {
    await browser.close();
    await app.close();
    await removeTempDir(dir);
  }
}
