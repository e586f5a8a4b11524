/**
 * The app as a static host serves it: a production build made with `--base /lesion-lab/` into dist-subpath/,
 * served by tests/helpers/static-server.ts with no security headers (like GitHub Pages or
 * `python3 -m http.server`). Steps a test can chain: build, serve, open the app, let the service worker take the
 * page, go offline.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { startStaticServer, type StaticServer } from './static-server.ts';

const root = join(import.meta.dirname, '..', '..');

export const SUBPATH = '/lesion-lab/';
export const SUBPATH_OUT_DIR = join(root, 'dist-subpath');

/**
 * Builds the app for SUBPATH into dist-subpath/ with the project's own `vite build`, in a child process: under
 * the test runner NODE_ENV is 'test', which would give a development build of Svelte.
 */
export async function buildForSubpath(): Promise<string> {
  const env = { ...process.env };
  delete env.NODE_ENV;
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const args = [
    vite,
    'build',
    '--base',
    SUBPATH,
    '--outDir',
    SUBPATH_OUT_DIR,
    '--emptyOutDir',
    '--logLevel',
    'warn',
  ];
  try {
    await promisify(execFile)(process.execPath, args, { cwd: root, env, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`vite build --base ${SUBPATH} failed:\n${stderr ?? ''}${stdout ?? ''}`, { cause: error });
  }
  if (!existsSync(join(SUBPATH_OUT_DIR, 'index.html'))) {
    throw new Error(`vite build --base ${SUBPATH} wrote no ${join(SUBPATH_OUT_DIR, 'index.html')}`);
  }
  return SUBPATH_OUT_DIR;
}

/** The sub-path build, served plainly under SUBPATH. */
export async function serveSubpathBuild(): Promise<StaticServer> {
  return startStaticServer({ root: SUBPATH_OUT_DIR, base: SUBPATH });
}

/** Opens the app at its sub-path and waits for the shell (the page tabs). */
export async function openApp(context: BrowserContext, deploy: StaticServer): Promise<Page> {
  const page = await context.newPage();
  await page.goto(deploy.url);
  await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();
  return page;
}

/**
 * Waits until the service worker has installed (precached everything) and activated, then reloads so that it
 * controls the page: from then on the app opens offline. Returns the service worker's script URL.
 */
export async function waitForOfflineCopy(page: Page): Promise<string> {
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await page.reload();
  await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();
  const controller = await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL ?? null);
  if (!controller) throw new Error(`no service worker controls ${page.url()} after a reload`);
  return controller;
}

/**
 * The browser loses the network and the host becomes unreachable. Both: Playwright's setOffline() does not cover
 * the service worker's own fetches, so a file missing from the precache would still be fetched from the host.
 */
export async function goOffline(context: BrowserContext, deploy: StaticServer): Promise<void> {
  deploy.unreachable = true;
  await context.setOffline(true);
}

export async function goOnline(context: BrowserContext, deploy: StaticServer): Promise<void> {
  deploy.unreachable = false;
  await context.setOffline(false);
}

/** The URLs (relative to the app's base) of everything in the service worker's precache, with their sizes. */
export async function precachedFiles(page: Page): Promise<{ path: string; bytes: number }[]> {
  return page.evaluate(async (base) => {
    const files: { path: string; bytes: number }[] = [];
    for (const name of await caches.keys()) {
      if (!name.includes('precache')) continue;
      const cache = await caches.open(name);
      for (const request of await cache.keys()) {
        const response = await cache.match(request);
        const bytes = response ? (await response.arrayBuffer()).byteLength : 0;
        const url = new URL(request.url);
        url.searchParams.delete('__WB_REVISION__');
        files.push({ path: `${url.pathname}${url.search}`.replace(base, ''), bytes });
      }
    }
    return files.sort((a, b) => a.path.localeCompare(b.path));
  }, SUBPATH);
}
