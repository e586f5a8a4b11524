/**
 * `npm run -s icons` renders the app's PNG icons from the committed SVGs in public/icons/ with headless Chromium
 * (playwright-core, Debian's /usr/bin/chromium or CHROMIUM_PATH), so the PNGs can be made again after an edit of
 * the SVG instead of being drawn by hand. Prints one JSON object: the files written and their sizes.
 */
import { chromium } from 'playwright-core';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ICONS_DIR = resolve(import.meta.dirname, '..', 'public', 'icons');
/** The served icon (also the favicon), and the maskable variant's source, which is not served itself. */
const ICON_SVG = join(ICONS_DIR, 'icon.svg');
const MASKABLE_SVG = resolve(import.meta.dirname, 'icon-maskable.svg');

/** Each PNG the web app manifest (deploy/pwa.ts) and index.html name, from its SVG. */
export const ICON_RENDERS = [
  { svg: ICON_SVG, png: 'icon-192.png', size: 192 },
  { svg: ICON_SVG, png: 'icon-512.png', size: 512 },
  { svg: MASKABLE_SVG, png: 'icon-maskable-512.png', size: 512 },
] as const;

export async function renderIcons(dir = ICONS_DIR): Promise<{ file: string; size: number; bytes: number }[]> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--font-render-hinting=none'],
    headless: true,
  });
  try {
    const written = [];
    for (const { svg, png, size } of ICON_RENDERS) {
      const page = await browser.newPage({ viewport: { width: size, height: size }, deviceScaleFactor: 1 });
      const data = (await readFile(svg)).toString('base64');
      await page.setContent(
        `<body style="margin:0"><img alt="" width="${size}" height="${size}" style="display:block" ` +
          `src="data:image/svg+xml;base64,${data}"></body>`,
      );
      await page.locator('img').evaluate((img: HTMLImageElement) => img.decode());
      const out = join(dir, png);
      await writeFile(out, await page.screenshot({ omitBackground: true, type: 'png' }));
      await page.close();
      written.push({ file: `public/icons/${png}`, size, bytes: (await stat(out)).size });
      process.stderr.write(`icons: wrote ${png} (${size}x${size}) from ${basename(svg)}\n`);
    }
    return written;
  } finally {
    await browser.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    process.stdout.write(`${JSON.stringify({ icons: await renderIcons() })}\n`);
  } catch (error) {
    process.stderr.write(`icons: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
