/**
 * A fresh page shows the stored runs without waiting for TensorFlow.js: the runs worker answers the list (and which
 * runs have a model) from IndexedDB, and loads tfjs only for what needs it (here: Export zip). Asserted as an order
 * of events in Playwright's request log of the built app, not as a time: no built file of the runs worker that holds
 * tfjs is requested before the Runs table shows the run, and one is once the run is exported.
 */
import { describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importRunZip } from '../helpers/app-run.ts';
import { makeRunZip } from '../helpers/run-zips.ts';
import { useBuiltApp } from '../helpers/e2e-setup.ts';
import { makeTempDir, removeTempDir } from '../helpers/zips.ts';

const assets = join(import.meta.dirname, '..', '..', 'dist', 'assets');

/**
 * The built JavaScript files that hold TensorFlow.js (its kernel and backend registries), but for the training
 * worker's own bundle: the page starts that worker on load (it looks for interrupted runs), apart from the runs.
 */
async function tfjsFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const name of await readdir(assets)) {
    if (!name.endsWith('.js') || name.startsWith('train.worker-')) continue;
    const text = await readFile(join(assets, name), 'utf8');
    if (text.includes('registerKernel') || text.includes('Backend name')) files.push(name);
  }
  return files;
}

describe('the stored runs on a fresh page', () => {
  const app = useBuiltApp();

  it('are listed, with which have a model, before TensorFlow.js is requested', async () => {
    const tfjs = await tfjsFiles();
    expect(tfjs.length).toBeGreaterThan(0);
    const dir = await makeTempDir();
    // No service worker: every file then comes through the page's and its workers' own requests, in the log.
    const context = await app.browser.newContext({ serviceWorkers: 'block', acceptDownloads: true });
    try {
      const zipPath = join(dir, 'stored-run.zip');
      await writeFile(zipPath, await makeRunZip('stored before the reload'));
      await importRunZip(context, app.origin, zipPath);

      const page = await context.newPage();
      const requested: string[] = [];
      page.on('request', (request) => requested.push(new URL(request.url()).pathname));
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(app.origin);
      await page.getByRole('tab', { name: 'Runs' }).click();
      const row = page.getByTestId('run-row');
      await row.waitFor();
      const beforeList = [...requested];
      expect(await row.getByTestId('run-name').textContent()).toBe('stored before the reload');
      // The Model column: the run's model is known without tfjs.
      expect(await row.locator('td').nth(5).textContent()).toBe('yes');

      const isTfjs = (path: string) => tfjs.some((name) => path.endsWith(`/${name}`));
      // The runs worker was started (its script is in the log) and no file of tfjs was asked for.
      expect(beforeList.some((path) => /\/predict\.worker-[\w-]+\.js$/.test(path))).toBe(true);
      expect(beforeList.filter(isTfjs)).toEqual([]);

      // Exporting needs the model, so the worker loads tfjs now: the log does see the worker's requests.
      await Promise.all([page.waitForEvent('download'), row.getByTestId('export-run').click()]);
      expect(requested.filter(isTfjs).length).toBeGreaterThan(0);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
      await removeTempDir(dir);
    }
  });
});
