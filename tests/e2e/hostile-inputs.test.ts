/**
 * Hostile and malformed inputs on the built app (issue #10), every one made at test time
 * (tests/helpers/hostile-inputs.ts, run-zips.ts, zips.ts) and given to the app as a user would: dropped on the
 * Data page, picked as weight files on the Train page, imported on the Runs page, chosen on the Predict page.
 *
 * Each case asserts the message the page shows (naming the file and the entry, line, column or weight at fault)
 * and that a valid input works afterwards in the same page. Cases that are fine as they are (HTML in a CSV cell is
 * shown as text; a PNG named .jpg, a 1x1 image, CMYK and EXIF-rotated JPEGs decode) are asserted too.
 *
 * One browser context for the suite, one page per group, every input generated once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TextReader, Uint8ArrayReader, ZipWriter, BlobWriter } from '@zip.js/zip.js';
import type { BrowserContext, Page } from 'playwright-core';
import { recordRequests } from '../helpers/chromium.ts';
import { useBuiltApp } from '../helpers/e2e-setup.ts';
import {
  METADATA_CSV,
  PROJECT_ROOT,
  SHARED_DIR,
  buildKaggleZip,
  makeTempDir,
  pickAcrossClasses,
  readOriginals,
  removeTempDir,
  writeZip,
  type OriginalImage,
} from '../helpers/zips.ts';
import { flatJpeg, flatPng, noise, rawZip, withExifOrientation } from '../helpers/hostile-inputs.ts';
import { makeRunZip, unzipFiles, zipFiles } from '../helpers/run-zips.ts';

const VALID_IMAGES = 8;
const WEIGHTS_DIR = join(PROJECT_ROOT, 'public', 'models', 'mobilenet_v2_0.35');
const WRONG_H5 = join(
  SHARED_DIR,
  'weights',
  'keras-mobilenet-v1-0.25-224-notop',
  'mobilenet_2_5_224_tf_no_top.h5',
);

type ArchiveCase =
  | 'empty'
  | 'notZip'
  | 'truncated'
  | 'noDirectory'
  | 'bomb'
  | 'lyingLocal'
  | 'lyingCentral'
  | 'many'
  | 'nested'
  | 'traversal'
  | 'encrypted';
type CsvCase =
  | 'empty'
  | 'headerOnly'
  | 'missingColumn'
  | 'semicolon'
  | 'utf16'
  | 'bom'
  | 'duplicate'
  | 'unknownDx'
  | 'badAge'
  | 'unclosedQuote'
  | 'hugeField'
  | 'html'
  | 'formulas';
type WeightsCase =
  'notJson' | 'missingShard' | 'shortShard' | 'longShard' | 'wrongShape' | 'wrongArchitecture' | 'textH5';
type RunCase = 'random' | 'missing' | 'garbageConfig' | 'paddedConfig' | 'brokenTopology' | 'sizeMismatch';

/** Every input, written once to a temporary folder; the keys name the case. */
interface Inputs {
  validZip: string;
  archives: Record<ArchiveCase, string>;
  /** The image id whose entry inflates past its announced size in lying-central.zip. */
  lyingCentralId: string;
  csvs: Record<CsvCase, string>;
  images: { zip: string; ids: Record<string, string>; valid: number };
  weights: Record<WeightsCase, string[]>;
  validWeights: string[];
  runs: Record<RunCase, string>;
  validRun: string;
  predict: Record<'textJpg' | 'zero' | 'huge', string>;
  validPhoto: string;
}

async function makeInputs(dir: string): Promise<Inputs> {
  const write = async (name: string, bytes: Uint8Array | string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, bytes);
    return path;
  };
  const originals = pickAcrossClasses(readOriginals(), VALID_IMAGES + 8);
  const valid = originals.slice(0, VALID_IMAGES);
  const validZip = (
    await buildKaggleZip(join(dir, 'valid.zip'), { images: valid, lowerCaseCopies: false, hmnist: false })
  ).path;
  const real = (image: OriginalImage) => readFileSync(image.path);
  const csv = readFileSync(METADATA_CSV, 'utf8');
  const csvLines = csv.trimEnd().split('\n');

  // Archives.
  const validBytes = readFileSync(validZip);
  const centralOffset = validBytes.readUInt32LE(validBytes.length - 22 + 16);
  const bombEntries = [
    ...valid.slice(0, 4).map((image) => ({ name: `ISIC/${image.imageId}.jpg`, data: real(image) })),
    { name: 'ISIC/ISIC_9999991.jpg', data: new Uint8Array(60_000_000), deflate: true },
  ];
  const nested = rawZip([{ name: 'inner.zip', data: validBytes }]);
  const encryptedWriter = new ZipWriter(new BlobWriter('application/zip'), {
    useWebWorkers: false,
    password: 'secret',
  });
  for (const image of valid.slice(0, 3)) {
    await encryptedWriter.add(
      `HAM10000_images_part_1/${image.imageId}.jpg`,
      new Uint8ArrayReader(real(image)),
    );
  }
  await encryptedWriter.add('HAM10000_metadata.csv', new TextReader(csv));
  const encrypted = new Uint8Array(await (await encryptedWriter.close()).arrayBuffer());
  const archives = {
    empty: await write('empty.zip', new Uint8Array(0)),
    notZip: await write('not-a-zip.zip', 'This is a text file, not a zip archive.\n'.repeat(20)),
    truncated: await write('truncated.zip', validBytes.subarray(0, Math.floor(validBytes.length / 2))),
    noDirectory: await write('no-directory.zip', validBytes.subarray(0, centralOffset)),
    bomb: await write('bomb.zip', rawZip(bombEntries)),
    lyingLocal: await write(
      'lying-local.zip',
      rawZip(
        valid.slice(0, 4).map((image) => ({ name: `${image.imageId}.jpg`, data: real(image), localSize: 7 })),
      ),
    ),
    lyingCentral: await write(
      'lying-central.zip',
      rawZip([
        ...valid.slice(0, 3).map((image) => ({ name: `${image.imageId}.jpg`, data: real(image) })),
        {
          name: `${originals[VALID_IMAGES + 7]!.imageId}.jpg`,
          data: new Uint8Array(60_000_000),
          deflate: true,
          centralSize: 300_000,
        },
      ]),
    ),
    many: await write(
      'many.zip',
      rawZip([
        ...Array.from({ length: 50_000 }, (_, i) => ({
          name: `junk/${String(i).padStart(5, '0')}.txt`,
          data: new Uint8Array([i & 0xff]),
        })),
        ...valid.slice(0, 2).map((image) => ({ name: `${image.imageId}.jpg`, data: real(image) })),
      ]),
    ),
    nested: await write('nested.zip', nested),
    traversal: await write(
      'traversal.zip',
      rawZip([
        { name: `../../etc/${valid[0]!.imageId}.jpg`, data: real(valid[0]!) },
        { name: `${valid[1]!.imageId}.jpg`, data: real(valid[1]!) },
      ]),
    ),
    encrypted: await write('encrypted.zip', encrypted),
  };

  // CSVs: each a small edit of the real metadata's first rows.
  const head = csvLines.slice(0, 30);
  const edit = (row: number, column: number, value: string): string =>
    head
      .map((line, i) => {
        if (i !== row) return line;
        const cells = line.split(',');
        cells[column] = value;
        return cells.join(',');
      })
      .join('\n');
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(head.join('\r\n'), 'utf16le')]);
  const csvs = {
    empty: await write('empty.csv', ''),
    headerOnly: await write('header-only.csv', `${head[0]}\n`),
    missingColumn: await write(
      'missing-column.csv',
      head
        .map((l) =>
          l
            .split(',')
            .filter((_, i) => i !== 2)
            .join(','),
        )
        .join('\n'),
    ),
    semicolon: await write('semicolon.csv', head.map((l) => l.replace(/,/g, ';')).join('\n')),
    utf16: await write('utf16.csv', utf16),
    bom: await write('bom.csv', `\uFEFF${head.join('\n')}`),
    duplicate: await write('duplicate.csv', [...head, head[5]].join('\n')),
    unknownDx: await write('unknown-dx.csv', edit(7, 2, 'melanomaX')),
    badAge: await write('bad-age.csv', edit(9, 4, 'eighty')),
    unclosedQuote: await write('unclosed-quote.csv', edit(11, 6, '"scalp')),
    hugeField: await write('huge-field.csv', edit(3, 6, `"${'y'.repeat(5_000_000)}"`)),
    html: await write('html.csv', edit(4, 6, '"<img src=x onerror=alert(1)><script>alert(2)</script>"')),
    formulas: await write('formulas.csv', edit(6, 6, '"=HYPERLINK(""http://example.org"",""x"")"')),
  };

  // Images: hostile bytes under real image ids, next to real ones, in one zip.
  const hostile = originals.slice(VALID_IMAGES, VALID_IMAGES + 7);
  const imageBytes: Record<string, Uint8Array> = {
    truncated: real(hostile[0]!).subarray(0, 2000),
    zero: new Uint8Array(0),
    pngNamedJpg: flatPng(64, 48),
    onePixel: flatJpeg({ width: 1, height: 1, components: 3 }),
    cmyk: flatJpeg({ width: 64, height: 48, components: 4 }),
    huge: flatJpeg({ width: 12000, height: 9000, components: 3 }),
    exifRotated: withExifOrientation(flatJpeg({ width: 64, height: 48, components: 3 }), 6),
  };
  const ids: Record<string, string> = {};
  Object.keys(imageBytes).forEach((key, i) => (ids[key] = hostile[i]!.imageId));
  const imageZip = (
    await writeZip(
      join(dir, 'hostile-images.zip'),
      [
        ...Object.entries(imageBytes).map(([key, bytes]) => ({ name: `${ids[key]}.jpg`, bytes })),
        ...valid.slice(0, 4).map((image) => ({ name: `${image.imageId}.jpg`, file: image.path })),
        { name: 'HAM10000_metadata.csv', file: METADATA_CSV },
      ],
      { level: 0 },
    )
  ) // stored: a flat test JPEG deflates far past any real photo's ratio
  .path;

  // Weights: the served MobileNetV2 0.35 files, edited.
  const modelJson = readFileSync(join(WEIGHTS_DIR, 'model.json'), 'utf8');
  const shard = readFileSync(join(WEIGHTS_DIR, 'group1-shard1of1.bin'));
  const weightsDir = (name: string) => join(dir, name);
  const pair = async (name: string, json: string, bin: Uint8Array | null): Promise<string[]> => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(weightsDir(name), { recursive: true });
    const files = [join(weightsDir(name), 'model.json')];
    await writeFile(files[0]!, json);
    if (bin) {
      files.push(join(weightsDir(name), 'group1-shard1of1.bin'));
      await writeFile(files[1]!, bin);
    }
    return files;
  };
  const manifest = JSON.parse(modelJson) as {
    weightsManifest: { weights: { name: string; shape: number[] }[] }[];
  };
  const first = manifest.weightsManifest[0]!.weights[0]!;
  const firstName = first.name;
  first.shape = [...first.shape].reverse();
  const weights = {
    notJson: await pair('not-json', '<html>not json</html>', shard),
    missingShard: await pair('missing-shard', modelJson, null),
    shortShard: await pair('short-shard', modelJson, shard.subarray(0, shard.length - 4096)),
    longShard: await pair('long-shard', modelJson, Buffer.concat([shard, Buffer.alloc(64)])),
    wrongShape: await pair('wrong-shape', JSON.stringify(manifest), shard),
    wrongArchitecture: [WRONG_H5],
    textH5: [await write('weights.h5', 'this is not an HDF5 file\n')],
  };
  void firstName;

  // Run zips: a real export and its edits.
  const runZip = await makeRunZip();
  const runFiles = await unzipFiles(runZip);
  const withFile = async (name: string, bytes: Uint8Array | null): Promise<Uint8Array> => {
    const files = new Map(runFiles);
    if (bytes === null) files.delete(name);
    else files.set(name, bytes);
    return zipFiles(files);
  };
  const text = (name: string) => new TextDecoder().decode(runFiles.get(name));
  const enc = (t: string) => new TextEncoder().encode(t);
  const topology = JSON.parse(text('model/model.json')) as {
    modelTopology: { config: { layers: { class_name: string }[] } };
  };
  topology.modelTopology.config.layers[1]!.class_name = 'Nope';
  const runs = {
    random: await write('random.zip', noise(100_000)),
    missing: await write('missing-config.zip', await withFile('config.json', null)),
    garbageConfig: await write('garbage-config.zip', await withFile('config.json', enc('{"model": [1, 2'))),
    paddedConfig: await write(
      'padded-config.zip',
      await withFile('config.json', enc(text('config.json') + ' '.repeat(64_000_000))),
    ),
    brokenTopology: await write(
      'broken-topology.zip',
      await withFile('model/model.json', enc(JSON.stringify(topology))),
    ),
    sizeMismatch: await write(
      'size-mismatch.zip',
      await withFile('config.json', enc(text('config.json').replace('"inputSize": 96', '"inputSize": 224'))),
    ),
  };
  const validRun = await write('valid-run.zip', runZip);

  const predict = {
    textJpg: await write('notes.jpg', 'Patient notes: this is text, not a photo.\n'),
    zero: await write('empty.jpg', new Uint8Array(0)),
    huge: await write('huge.jpg', imageBytes.huge!),
  };
  return {
    validZip,
    archives,
    lyingCentralId: originals[VALID_IMAGES + 7]!.imageId,
    csvs,
    images: { zip: imageZip, ids, valid: 4 },
    weights,
    validWeights: [join(WEIGHTS_DIR, 'model.json'), join(WEIGHTS_DIR, 'group1-shard1of1.bin')],
    runs,
    validRun,
    predict,
    validPhoto: valid[0]!.path,
  };
}

describe('hostile inputs on the built app', () => {
  const app = useBuiltApp();
  let context: BrowserContext;
  let dir: string;
  let inputs: Inputs;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dir = await makeTempDir();
    inputs = await makeInputs(dir);
    context = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
  }, 180_000);

  afterAll(async () => {
    expect(pageErrors).toEqual([]);
    if (dir) await removeTempDir(dir);
  });

  async function openPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => {
      pageErrors.push(`a dialog opened: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(app.origin);
    await page.getByRole('tablist', { name: 'Lesion Lab pages' }).waitFor();
    return page;
  }
  const squash = (t: string | null) => (t ?? '').replace(/\s+/g, ' ').trim();

  /** Waits for an error on the Data page that matches, and returns every error's text. */
  async function dataErrors(page: Page, expected: RegExp, timeout = 20_000): Promise<string> {
    const errors = page.locator('.errors .notice');
    const deadline = Date.now() + timeout;
    for (;;) {
      const texts = (await errors.allTextContents()).map(squash).join('\n');
      if (expected.test(texts)) return texts;
      if (Date.now() > deadline) {
        throw new Error(
          `no error matching ${expected} on the Data page; it shows:\n${squash(await page.innerText('main'))}`,
        );
      }
      await page.waitForTimeout(100);
    }
  }
  async function resetData(page: Page) {
    const dismiss = page.getByRole('button', { name: 'Dismiss this error' });
    while ((await dismiss.count()) > 0) await dismiss.first().click();
    const forget = page.getByRole('button', { name: 'Forget dataset…' });
    if ((await forget.count()) === 0) return;
    // Busy (listing, matching) disables it; nothing loaded too.
    await page.waitForFunction(() => !document.querySelector('[data-testid="opening-url"]'));
    for (let i = 0; i < 600 && !(await forget.isEnabled()); i++) await page.waitForTimeout(100);
    if (!(await forget.isEnabled())) return;
    await forget.click();
    await page.getByRole('dialog').getByRole('button', { name: 'Forget dataset' }).click();
    // The button is disabled as soon as forgetting starts; a drop before it ends is refused as busy.
    await page.getByText(/^Forgotten:/).waitFor({ timeout: 60_000 });
    // Forgotten once nothing is loaded: the button is then disabled or gone.
    await page.waitForFunction(
      () =>
        ![...document.querySelectorAll('button')].some(
          (b) => b.textContent?.trim() === 'Forget dataset…' && !b.disabled,
        ),
    );
  }
  /** The text of the ignored entries, with their reasons (the list is folded away under "Ignored files"). */
  async function ignoredEntries(page: Page): Promise<string> {
    const details = page.locator('details', { hasText: 'Ignored files' });
    await details.waitFor();
    await details.evaluate((d) => ((d as HTMLDetailsElement).open = true));
    return squash(await details.innerText());
  }
  async function drop(page: Page, files: string[]) {
    await page.getByTestId('file-input').setInputFiles(files);
  }
  /** The valid dataset after a hostile one: listed and matched in the same page. */
  async function validDropWorks(page: Page) {
    await resetData(page);
    await drop(page, [inputs.validZip, METADATA_CSV]);
    await page
      .getByTestId('matched-count')
      .filter({ hasText: `${VALID_IMAGES} images matched` })
      .waitFor({ timeout: 60_000 });
    expect(await page.locator('.errors .notice').count()).toBe(0);
    await resetData(page);
  }

  describe('archives and metadata on the Data page', () => {
    let page: Page;
    beforeAll(async () => {
      page = await openPage();
    });

    const archiveCases: [string, keyof Inputs['archives'], RegExp][] = [
      ['an empty file', 'empty', /empty\.zip (is empty|isn't a readable zip file)/],
      ['text named .zip', 'notZip', /not-a-zip\.zip isn't a readable zip file/],
      ['a truncated zip', 'truncated', /truncated\.zip isn't a readable zip file.*(incomplete|interrupted)/],
      [
        'a zip without its central directory',
        'noDirectory',
        /no-directory\.zip (isn't a readable zip file|lists no files: its central directory .* is missing)/,
      ],
      [
        'an encrypted zip, once for the archive',
        'encrypted',
        /encrypted\.zip is encrypted \(4 of its images and data files need a password\).*extract the zip with its password/,
      ],
    ];
    it.each(archiveCases)(
      '%s is refused by name, and a valid drop works afterwards',
      async (_, key, expected) => {
        await drop(page, [inputs.archives[key]]);
        const texts = await dataErrors(page, expected);
        if (key === 'encrypted') {
          expect(texts.split('\n')).toHaveLength(1);
          expect(texts).not.toMatch(/interrupted download/);
        }
        await validDropWorks(page);
      },
    );

    it('a zip bomb entry is refused by name before it is inflated; the other images still match', async () => {
      await drop(page, [inputs.archives.bomb, METADATA_CSV]);
      await page.getByTestId('matched-count').waitFor({ timeout: 20_000 });
      expect(await ignoredEntries(page)).toMatch(
        /ISIC\/ISIC_9999991\.jpg \(it would inflate to 60(\.0)? MB, more than the/,
      );
      expect(squash(await page.getByTestId('matched-count').textContent())).toBe('4 images matched');
      await validDropWorks(page);
    });

    it('a size that lies in the local header does not matter: the directory is read', async () => {
      await drop(page, [inputs.archives.lyingLocal, METADATA_CSV]);
      await page
        .getByTestId('matched-count')
        .filter({ hasText: '4 images matched' })
        .waitFor({ timeout: 20_000 });
      await validDropWorks(page);
    });

    it('an entry that inflates past the size its directory announces is named when it is read', async () => {
      await drop(page, [inputs.archives.lyingCentral, METADATA_CSV]);
      await page
        .getByTestId('matched-count')
        .filter({ hasText: '4 images matched' })
        .waitFor({ timeout: 20_000 });
      await page.getByRole('button', { name: 'Decode and cache 4 images' }).click();
      await dataErrors(page, new RegExp(`${inputs.lyingCentralId}\\.jpg`));
      await page
        .getByTestId('cache-status')
        .filter({ hasText: 'Cached: 3 images' })
        .waitFor({ timeout: 20_000 });
      await validDropWorks(page);
    });

    it('50,000 entries are listed, the junk ignored with its reason, the images found', async () => {
      await drop(page, [inputs.archives.many, METADATA_CSV]);
      await page
        .getByTestId('matched-count')
        .filter({ hasText: '2 images matched' })
        .waitFor({ timeout: 120_000 });
      expect(squash(await page.innerText('main'))).toMatch(
        /50,003 entries listed: 2 distinct images, 0 duplicate copies, 50,000 other files ignored/,
      );
      await validDropWorks(page);
    });

    it('a zip inside the zip and ../ names are ignored, each with its reason', async () => {
      await drop(page, [inputs.archives.nested, inputs.archives.traversal, METADATA_CSV]);
      await page
        .getByTestId('matched-count')
        .filter({ hasText: '1 image matched' })
        .waitFor({ timeout: 20_000 });
      const ignored = await ignoredEntries(page);
      expect(ignored).toMatch(/inner\.zip.*a zip inside a zip is not opened: extract it/);
      expect(ignored).toMatch(/\.\.\/\.\.\/etc\/ISIC_\d+\.jpg.*\.\./);
      await validDropWorks(page);
    });

    const csvCases: [string, keyof Inputs['csvs'], RegExp][] = [
      ['an empty CSV', 'empty', /empty\.csv.*(empty|no header)/i],
      ['a header without rows', 'headerOnly', /header-only\.csv.*(no rows|no data)/i],
      ['a missing column', 'missingColumn', /missing-column\.csv, line 1: missing required column "dx"/],
      [
        'a duplicate image id',
        'duplicate',
        /duplicate\.csv, line 31, column "image_id": the image id "ISIC_\d+" is already used on line 6/,
      ],
      ['an unknown dx', 'unknownDx', /unknown-dx\.csv, line 8, column "dx": unknown diagnosis "melanomaX"/],
      [
        'an age that is no number',
        'badAge',
        /bad-age\.csv, line 10, column "age": the age "eighty" is not a number/,
      ],
      ['an unclosed quote', 'unclosedQuote', /unclosed-quote\.csv, line 12.*quote/i],
    ];
    it.each(csvCases)('%s is refused with the file, line and column', async (_, key, expected) => {
      await drop(page, [inputs.csvs[key]]);
      await dataErrors(page, expected);
      await validDropWorks(page);
    });

    it('UTF-16, a BOM and ";" as the separator are read', async () => {
      for (const key of ['utf16', 'bom', 'semicolon'] as const) {
        await drop(page, [inputs.csvs[key]]);
        await page.getByText(/Metadata: .*29 rows/).waitFor({ timeout: 30_000 });
        expect(await page.locator('.errors .notice').count()).toBe(0);
        await resetData(page);
      }
      await validDropWorks(page);
    });

    it('a 5 MB field, HTML and formulas are shown as short, inert text on the Explore page', async () => {
      await drop(page, [inputs.csvs.hugeField]);
      await page.getByText(/Metadata: .*29 rows/).waitFor({ timeout: 30_000 });
      await page.getByRole('tab', { name: 'Explore' }).click();
      await page.getByText('(5,000,000 characters)').first().waitFor({ state: 'attached' });
      const html = await page.locator('main').innerHTML();
      expect(html.length).toBeLessThan(1_000_000);
      await page.getByRole('tab', { name: 'Data' }).click();
      await resetData(page);
      for (const key of ['html', 'formulas'] as const) {
        await drop(page, [inputs.csvs[key]]);
        await page.getByText(/Metadata: .*29 rows/).waitFor({ timeout: 30_000 });
        await page.getByRole('tab', { name: 'Explore' }).click();
        const value =
          key === 'html'
            ? '<img src=x onerror=alert(1)><script>alert(2)</script>'
            : '=HYPERLINK("http://example.org","x")';
        await page.getByText(value).first().waitFor({ state: 'attached' });
        expect(await page.locator('main img[src="x"], main script').count()).toBe(0);
        await page.getByRole('tab', { name: 'Data' }).click();
        await resetData(page);
      }
      await validDropWorks(page);
    });
  });

  describe('images on the Data page', () => {
    it('damaged images are named, the others cached; odd but valid images decode', async () => {
      const page = await openPage();
      const { ids } = inputs.images;
      await drop(page, [inputs.images.zip]);
      await page
        .getByTestId('matched-count')
        .filter({ hasText: '11 images matched' })
        .waitFor({ timeout: 20_000 });
      await page.getByLabel('Image size').selectOption('96');
      await page.getByRole('button', { name: 'Decode and cache 11 images' }).click();
      await page.getByTestId('cache-status').waitFor({ timeout: 120_000 });
      const errors = (await page.locator('.errors .notice').allTextContents()).map(squash).join('\n');
      expect(errors).toMatch(
        new RegExp(`hostile-images\\.zip:${ids.zero}\\.jpg: the file is empty \\(0 bytes\\)`),
      );
      expect(errors).toMatch(
        new RegExp(
          `hostile-images\\.zip:${ids.truncated}\\.jpg: the bytes are not an image this browser can decode`,
        ),
      );
      for (const key of ['pngNamedJpg', 'onePixel', 'cmyk', 'huge', 'exifRotated']) {
        expect(errors, key).not.toContain(ids[key]!);
      }
      expect(squash(await page.getByTestId('cache-status').textContent())).toContain(
        'Cached: 9 images at 96 × 96 px',
      );
      await validDropWorks(page);
      await page.close();
    });
  });

  describe('weights on the Train page', () => {
    let page: Page;
    beforeAll(async () => {
      page = await openPage();
      await page.getByRole('button', { name: 'Try it with a sample' }).click();
      await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
      await page.getByLabel('Image size').selectOption('96');
      await page.getByRole('button', { name: 'Decode and cache 1,007 images' }).click();
      await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });
      await page.getByRole('tab', { name: 'Train' }).click();
      await page.getByTestId('image-size').selectOption('96');
      await page.getByTestId('epochs').fill('1');
    }, 300_000);

    const cases: [string, WeightsCase, 'tfjs' | 'h5', RegExp][] = [
      ['model.json that is not JSON', 'notJson', 'tfjs', /model\.json is not valid JSON/],
      [
        'a missing shard',
        'missingShard',
        'tfjs',
        /Also choose the \.bin weight shards that model\.json lists/,
      ],
      [
        'a short shard',
        'shortShard',
        'tfjs',
        /group1-shard1of1\.bin holds [\d,]+ bytes, 4,096 fewer than the [\d,]+ that model\.json describes: the data runs out at the weight \S+/,
      ],
      [
        'a long shard',
        'longShard',
        'tfjs',
        /group1-shard1of1\.bin holds [\d,]+ bytes, 64 more than the [\d,]+ that model\.json describes/,
      ],
      ['a weight of the wrong shape', 'wrongShape', 'tfjs', /Conv1\/kernel.*shape|shape.*Conv1\/kernel/],
      [
        'another architecture (MobileNet v1 weights)',
        'wrongArchitecture',
        'h5',
        /mobilenet_2_5_224_tf_no_top\.h5/,
      ],
      ['an .h5 that is text', 'textH5', 'h5', /weights\.h5 is not an HDF5 file/],
    ];
    it.each(cases)('%s is refused naming the file (and weight)', async (_, key, kind, expected) => {
      await page.getByTestId(kind === 'tfjs' ? 'weights-kind-tfjs' : 'weights-kind-h5').check();
      await page.getByTestId('weights-files').setInputFiles(inputs.weights[key]);
      const deadline = Date.now() + 60_000;
      let shown = '';
      for (;;) {
        const start = page.getByTestId('start');
        const field = squash(await page.locator('main').innerText());
        if (expected.test(field)) {
          shown = field;
          break;
        }
        if (
          (await start.isEnabled()) &&
          ['idle', 'failed', 'done', 'stopped'].includes(
            (await page.getByTestId('train-status').getAttribute('data-state')) ?? '',
          )
        ) {
          await start.click().catch(() => undefined);
        }
        if (Date.now() > deadline) throw new Error(`no message matching ${expected}:\n${field}`);
        await page.waitForTimeout(250);
      }
      expect(shown).toMatch(expected);
      const dismiss = page.getByTestId('train-error').getByRole('button', { name: 'Dismiss' });
      if ((await dismiss.count()) > 0) await dismiss.click();
    });

    it('valid weight files train afterwards in the same page', async () => {
      await page.getByTestId('weights-kind-tfjs').check();
      await page.getByTestId('weights-files').setInputFiles(inputs.validWeights);
      await page.getByTestId('start').click();
      await page.getByTestId('train-done').waitFor({ timeout: 180_000 });
      expect(await page.getByTestId('train-error').count()).toBe(0);
    });
  });

  describe('run zips on the Runs page, then Predict', () => {
    let page: Page;
    beforeAll(async () => {
      page = await openPage();
      await page.getByRole('tab', { name: 'Runs' }).click();
    });
    const notice = () => page.getByTestId('runs-notice');
    async function importZip(path: string) {
      const dismiss = notice().getByRole('button', { name: 'Dismiss' });
      if ((await dismiss.count()) > 0) await dismiss.click();
      await notice().waitFor({ state: 'detached' });
      await page.getByTestId('import-run').setInputFiles(path);
      await page.waitForFunction(() => {
        const n = document.querySelector('[data-testid="runs-notice"]');
        return n !== null && n.textContent !== '';
      });
    }

    const cases: [string, keyof Inputs['runs'], RegExp][] = [
      ['random bytes', 'random', /^random\.zip isn't a readable zip file/],
      [
        'a missing config.json',
        'missing',
        /^missing-config\.zip: config\.json is missing from missing-config\.zip/,
      ],
      ['a garbage config.json', 'garbageConfig', /^garbage-config\.zip: config\.json: not valid JSON/],
      [
        'a config.json padded to 64 MB',
        'paddedConfig',
        /^padded-config\.zip: config\.json: 64(\.0)? MB uncompressed .* over the 1 MB this app reads for it/,
      ],
      [
        'a topology with an unknown layer class',
        'brokenTopology',
        /^broken-topology\.zip: model\/model\.json: layer "[^"]+" is a "Nope", a layer class TensorFlow\.js does not have/,
      ],
      [
        'a config whose image size disagrees with the model',
        'sizeMismatch',
        /^size-mismatch\.zip: model\/model\.json: the model does not fit the run: its input is \[batch, 96, 96, 3\], the run's images are \[batch, 224, 224, 3\]/,
      ],
    ];
    it.each(cases)('%s is refused at import, naming the file', async (_, key, expected) => {
      await importZip(inputs.runs[key]);
      const text = squash(await notice().textContent()).replace(/ Dismiss$/, '');
      expect(text).toMatch(expected);
      expect(text).not.toMatch(/This may be due to|Unexpected end of JSON/);
      expect(await notice().getAttribute('role')).toBe('alert');
      expect(await page.getByRole('row').filter({ hasText: 'hostile test run' }).count()).toBe(0);
    });

    it('a valid run imports afterwards with its model', async () => {
      await importZip(inputs.validRun);
      expect(squash(await notice().textContent())).toBe(
        'Imported run "hostile test run" with its model. Dismiss',
      );
    });

    it('Predict names a text file, an empty file; a 12000x9000 image works; a photo afterwards', async () => {
      await page.getByRole('tab', { name: 'Predict' }).click();
      const predictFile = page.getByTestId('predict-file');
      const error = page.getByTestId('predict-error');
      for (const [key, expected] of [
        ['textJpg', /"notes\.jpg" is not an image this browser can read/],
        ['zero', /"empty\.jpg" (is empty|is not an image this browser can read)/],
      ] as const) {
        await predictFile.setInputFiles(inputs.predict[key]);
        await error.filter({ hasText: expected }).waitFor();
      }
      await predictFile.setInputFiles(inputs.predict.huge);
      await page
        .locator('[data-testid="top3"], [data-testid="predict-error"]')
        .first()
        .waitFor({ timeout: 120_000 });
      expect(await error.count(), (await error.allTextContents()).join()).toBe(0);
      await page.getByTestId('top3').waitFor();
      expect(await error.count()).toBe(0);
      await predictFile.setInputFiles(inputs.validPhoto);
      await page.getByTestId('top3').waitFor();
      expect(await error.count()).toBe(0);
      void recordRequests;
    });
  });
});
