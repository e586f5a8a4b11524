/**
 * A bench's page in headless Chromium: Vite's dev server over the repository (http://localhost, a secure context,
 * where Chromium offers WebGPU), the page at `html` loaded and waited for until it sets `globalThis[ready].ready`.
 * Used by the kernels and train benches; the page's console goes to stderr.
 */
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { chromiumArgs, chromiumPath } from './chromium.ts';

const root = resolve(import.meta.dirname, '..', '..');

export interface BenchPage {
  page: Page;
  origin: string;
  close(): Promise<void>;
}

export interface BenchPageOptions {
  /** The page, relative to the repository root (e.g. tests/bench/kernels-harness.html). */
  html: string;
  /** The global the page sets to `{ ready: true, … }` once its modules are loaded. */
  ready: string;
  /** Dependencies to pre-bundle up front: one found late makes Vite reload the page in the middle of the run. */
  include: string[];
  /** Chromium flags on top of the test flags (tests/helpers/chromium.ts). */
  extraArgs?: string[];
  log(message: string): void;
}

async function startServer(
  html: string,
  include: string[],
): Promise<{ server: ViteDevServer; origin: string }> {
  const server = await createServer({
    configFile: false,
    root,
    logLevel: 'warn',
    server: { host: 'localhost', port: 0, strictPort: false, hmr: false },
    optimizeDeps: { entries: [html], include },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('the dev server has no port');
  return { server, origin: `http://localhost:${address.port}` };
}

export async function openBenchPage(options: BenchPageOptions): Promise<BenchPage> {
  const { server, origin } = await startServer(options.html, options.include);
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [...chromiumArgs, ...(options.extraArgs ?? [])],
      headless: true,
    });
    const page = await browser.newPage();
    page.on('console', (m) => options.log(`page ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => options.log(`page error: ${e.message}`));
    await page.goto(`${origin}/${options.html}`, { timeout: 180_000, waitUntil: 'domcontentloaded' });
    await page.waitForFunction(
      (name) => (globalThis as unknown as Record<string, { ready?: boolean } | undefined>)[name]?.ready,
      options.ready,
      { timeout: 180_000 },
    );
    const opened = browser;
    return {
      page,
      origin,
      async close() {
        await opened.close();
        await server.close();
      },
    };
  } catch (error) {
    await browser?.close();
    await server.close();
    throw error;
  }
}
