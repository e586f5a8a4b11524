/**
 * The start and end every e2e file shares, registered as the calling file's (or describe block's) vitest hooks:
 * a headless Debian Chromium, with `useBuiltApp` also the built app served with its headers (vite preview), and
 * `useOriginalsZip` a zip of real originals to drop.
 * Hooks registered after these run after them, and their afterAll before these close the browser and the server.
 *
 *   const app = useBuiltApp();
 *   it('…', async () => {
 *     const page = await app.browser.newPage();
 *     await page.goto(app.origin);
 *   });
 */
import { afterAll, beforeAll } from 'vitest';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from './chromium.ts';
import { startPreview } from './preview.ts';
import {
  KAGGLE_ZIP_NAME,
  buildKaggleZip,
  makeTempDir,
  pickAcrossClasses,
  readOriginals,
  removeTempDir,
  type OriginalImage,
} from './zips.ts';

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not started: use it inside a test or a later hook`);
  return value;
}

/** A headless Chromium for the calling file's tests, closed after them. */
export function useChromium(): { readonly browser: Browser } {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return {
    get browser() {
      return started(browser, 'Chromium');
    },
  };
}

/** The built app (`dist/`, served by vite preview with the deployment's headers) and a Chromium to drive it. */
export function useBuiltApp(): { readonly browser: Browser; readonly origin: string } {
  let app: Awaited<ReturnType<typeof startPreview>> | undefined;
  beforeAll(async () => {
    app = await startPreview();
  });
  afterAll(async () => {
    await app?.close();
  });
  const chromium = useChromium();
  return {
    get browser() {
      return chromium.browser;
    },
    get origin() {
      return started(app, 'The built app').origin;
    },
  };
}

/**
 * A Kaggle-shaped zip of `count` real originals picked across the classes, written into a temp folder before the
 * calling file's tests and deleted after them (`dir` also takes the tests' downloads).
 */
export function useOriginalsZip(count: number): {
  readonly dir: string;
  readonly zipPath: string;
  readonly images: OriginalImage[];
} {
  let made: { dir: string; zipPath: string; images: OriginalImage[] } | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    dir = await makeTempDir();
    const images = pickAcrossClasses(readOriginals(), count);
    const zipPath = (await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images })).path;
    made = { dir, zipPath, images };
  });
  afterAll(async () => {
    if (dir) await removeTempDir(dir);
  });
  return {
    get dir() {
      return started(made, 'The originals zip').dir;
    },
    get zipPath() {
      return started(made, 'The originals zip').zipPath;
    },
    get images() {
      return started(made, 'The originals zip').images;
    },
  };
}
