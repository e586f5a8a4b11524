import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium } from '../helpers/chromium.ts';
import { startPreview } from '../helpers/preview.ts';
import { METADATA_CSV, buildKaggleZip, makeTempDir, pickAcrossClasses, readOriginals } from '../helpers/zips.ts';
import { rawZip } from '../helpers/hostile-inputs.ts';

const dir = await makeTempDir();
const valid = pickAcrossClasses(readOriginals(), 8);
const validZip = (await buildKaggleZip(join(dir, 'valid.zip'), { images: valid, lowerCaseCopies: false, hmnist: false })).path;
const validBytes = readFileSync(validZip);
const real = (i: number) => readFileSync(valid[i]!.path);
const centralOffset = validBytes.readUInt32LE(validBytes.length - 22 + 16);
const files: Record<string, Buffer> = {
  'no-directory.zip': validBytes.subarray(0, centralOffset),
  'lying-central.zip': rawZip([
    ...[0, 1, 2].map((i) => ({ name: `${valid[i]!.imageId}.jpg`, data: real(i) })),
    { name: 'ISIC_9999992.jpg', data: new Uint8Array(60_000_000), deflate: true, centralSize: 300_000 },
  ]),
  'many.zip': rawZip([
    ...Array.from({ length: 50_000 }, (_, i) => ({ name: `junk/${String(i).padStart(5, '0')}.txt`, data: new Uint8Array([i & 0xff]) })),
    ...[0, 1].map((i) => ({ name: `${valid[i]!.imageId}.jpg`, data: real(i) })),
  ]),
  'nested.zip': rawZip([{ name: 'inner.zip', data: validBytes }]),
  'traversal.zip': rawZip([
    { name: `../../etc/${valid[0]!.imageId}.jpg`, data: real(0) },
    { name: `${valid[1]!.imageId}.jpg`, data: real(1) },
  ]),
};
const app = await startPreview();
const browser = await launchChromium();
for (const [name, bytes] of Object.entries(files)) {
  const path = join(dir, name);
  await writeFile(path, bytes);
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log('PAGEERROR', e.message));
  await page.goto(app.origin);
  const t0 = Date.now();
  await page.getByTestId('file-input').setInputFiles([path, METADATA_CSV]);
  await page.waitForTimeout(name === 'many.zip' ? 25000 : 6000);
  await page.evaluate(() => document.querySelectorAll('details').forEach((d) => (d.open = true)));
  const text = (await page.innerText('main')).replace(/\s+/g, ' ');
  console.log('=====', name, Date.now() - t0, text.slice(text.indexOf('Last import'), text.indexOf('Last import') + 1200));
  await page.close();
}
await browser.close();
await app.close();
