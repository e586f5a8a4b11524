/**
 * `npm run -s cli -- pack`: a pack made from the 240 real originals is listed and matched by the core exactly like
 * the originals themselves (same ids, labels and lesions), with every image's longer side at --size; images
 * already that small are copied byte for byte; the CSV goes in as given.
 */
import { openAsBlob } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../helpers/cli.ts';
import jpeg from 'jpeg-js';
import { listZip } from '../../src/lib/data/archive.ts';
import { jpegSize } from '../../src/lib/data/jpeg-size.ts';
import { matchImages } from '../../src/lib/data/match.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { PACK_IMAGE_FOLDER, packedSize } from '../../src/lib/data/pack.ts';
import { listImages } from '../../src/cli/node/images.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const HAM = resolve(ROOT, '../shared/data/ham10000');
const CSV = join(HAM, 'HAM10000_metadata.csv');
const ORIGINALS = join(HAM, 'originals-600x450');
const SMALL = join(HAM, 'all-200x150');

function json(run: CliRun): Record<string, unknown> {
  expect(run.code, run.stderr).toBe(0);
  const lines = run.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'lesion-lab-pack-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('jpegSize', () => {
  it('reads the frame size of real JPEGs without decoding them', async () => {
    const original = new Uint8Array(await readFile(join(ORIGINALS, 'ISIC_0024306.jpg')));
    expect(jpegSize(original)).toEqual({ width: 600, height: 450 });
    const small = new Uint8Array(await readFile(join(SMALL, 'ISIC_0024306.jpg')));
    expect(jpegSize(small)).toEqual({ width: 200, height: 150 });
    const decoded = jpeg.decode(small, { useTArray: true });
    expect([decoded.width, decoded.height]).toEqual([200, 150]);
  });

  it('says null for what is not a JPEG or is cut before its frame header', async () => {
    const csv = new Uint8Array(await readFile(CSV));
    expect(jpegSize(csv)).toBeNull();
    const original = new Uint8Array(await readFile(join(ORIGINALS, 'ISIC_0024306.jpg')));
    expect(jpegSize(original.subarray(0, 20))).toBeNull();
    expect(jpegSize(new Uint8Array())).toBeNull();
  });
});

describe('packedSize', () => {
  it('fits the longer side to the size, keeps the aspect ratio and never upscales', () => {
    expect(packedSize(600, 450, 224)).toEqual({ width: 224, height: 168 });
    expect(packedSize(450, 600, 224)).toEqual({ width: 168, height: 224 });
    expect(packedSize(600, 450, 96)).toEqual({ width: 96, height: 72 });
    expect(packedSize(600, 600, 100)).toEqual({ width: 100, height: 100 });
    expect(packedSize(200, 150, 224)).toBeNull();
    expect(packedSize(224, 168, 224)).toBeNull();
    expect(packedSize(5000, 1, 100)).toEqual({ width: 100, height: 1 });
    expect(() => packedSize(600, 450, 0)).toThrow(RangeError);
  });
});

describe('npm run -s cli -- pack', () => {
  it('packs the 240 originals so that the core lists and matches them exactly like the originals', async () => {
    const out = join(tmp, 'originals-96.zip');
    const result = json(
      await runCli('pack', '--images', ORIGINALS, '--csv', CSV, '--size', '96', '--out', out),
    );
    expect(result).toMatchObject({
      images: 240,
      resized: 240,
      copied: 0,
      skipped: [],
      size: 96,
      rows: 10015,
    });
    expect(result.bytes).toBe((await stat(out)).size);
    expect(result.seconds).toBeGreaterThan(0);

    const csvBytes = new Uint8Array(await readFile(CSV));
    const metadata = parseMetadata(new TextDecoder().decode(csvBytes), 'HAM10000_metadata.csv');
    const original = matchImages(metadata.records, (await listImages(ORIGINALS)).listing);

    const packListing = await listZip(await openAsBlob(out), 'originals-96.zip');
    expect(packListing.entries).toBe(241);
    expect(packListing.ignored).toEqual([]);
    expect(packListing.duplicates).toEqual([]);
    expect(packListing.metadata.map((m) => m.location)).toEqual(['originals-96.zip:HAM10000_metadata.csv']);
    // The CSV inside is the file as given, byte for byte.
    expect(await (packListing.metadata[0] as (typeof packListing.metadata)[number]).readText()).toBe(
      new TextDecoder('utf-8', { ignoreBOM: true }).decode(csvBytes),
    );
    const packed = matchImages(metadata.records, packListing);
    expect(packed.report).toEqual(original.report);
    expect(packed.report.matched).toBe(240);
    const summary = (m: typeof packed.matched) =>
      m.map(({ record }) => [record.imageId, record.dx, record.lesionId]);
    expect(summary(packed.matched)).toEqual(summary(original.matched));

    for (const { image, record } of packed.matched) {
      expect(image.location).toBe(`originals-96.zip:${PACK_IMAGE_FOLDER}/${record.imageId}.jpg`);
      const bytes = await image.read();
      expect(jpegSize(bytes)).toEqual({ width: 96, height: 72 });
    }
    // A real image, not noise: the downscaled pixels follow the original's (mean of each channel close).
    const first = packed.matched[0] as (typeof packed.matched)[number];
    const small = jpeg.decode(await first.image.read(), { useTArray: true, formatAsRGBA: false });
    const big = jpeg.decode(await readFile(join(ORIGINALS, `${first.record.imageId}.jpg`)), {
      useTArray: true,
      formatAsRGBA: false,
    });
    const mean = (d: Uint8Array, c: number) => {
      let s = 0;
      for (let i = c; i < d.length; i += 3) s += d[i] as number;
      return s / (d.length / 3);
    };
    for (let c = 0; c < 3; c++) expect(Math.abs(mean(small.data, c) - mean(big.data, c))).toBeLessThan(2);
  });

  it('copies images already within --size byte for byte, and is deterministic', async () => {
    const dir = join(tmp, 'small');
    await mkdir(dir);
    const ids = ['ISIC_0024306', 'ISIC_0024307', 'ISIC_0024308', 'ISIC_0024309', 'ISIC_0024310'];
    for (const id of ids) await copyFile(join(SMALL, `${id}.jpg`), join(dir, `${id}.jpg`));
    const out = join(tmp, 'small-224.zip');
    const again = join(tmp, 'small-224-again.zip');
    expect(json(await runCli('pack', '--images', dir, '--csv', CSV, '--out', out))).toMatchObject({
      images: 5,
      resized: 0,
      copied: 5,
      size: 224,
    });
    json(await runCli('pack', '--images', dir, '--csv', CSV, '--out', again));
    expect(Buffer.compare(await readFile(out), await readFile(again))).toBe(0);
    const listing = await listZip(await openAsBlob(out), 'small-224.zip');
    for (const image of listing.images) {
      expect(
        Buffer.compare(Buffer.from(await image.read()), await readFile(join(SMALL, `${image.imageId}.jpg`))),
      ).toBe(0);
    }
  });

  it('gives the same pack with worker threads (--jobs 2) as with one', async () => {
    const dir = join(tmp, 'few-originals');
    await mkdir(dir);
    const names = (await readdir(ORIGINALS)).filter((n) => n.endsWith('.jpg')).slice(0, 6);
    for (const name of names) await copyFile(join(ORIGINALS, name), join(dir, name));
    const one = join(tmp, 'jobs-1.zip');
    const two = join(tmp, 'jobs-2.zip');
    expect(
      json(await runCli('pack', '--images', dir, '--csv', CSV, '--size', '128', '--out', one)),
    ).toMatchObject({
      images: 6,
      resized: 6,
      jobs: 1,
    });
    expect(
      json(await runCli('pack', '--images', dir, '--csv', CSV, '--size', '128', '--jobs', '2', '--out', two)),
    ).toMatchObject({ images: 6, resized: 6, jobs: 2 });
    expect((await readFile(one)).equals(await readFile(two))).toBe(true);
  });

  it('explains bad arguments and leaves no file behind when nothing matches', async () => {
    const usage = await runCli('pack', '--images', ORIGINALS, '--csv', CSV);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--out are required');
    const badSize = await runCli(
      'pack',
      '--images',
      ORIGINALS,
      '--csv',
      CSV,
      '--size',
      'big',
      '--out',
      join(tmp, 'x.zip'),
    );
    expect(badSize.code).toBe(2);
    expect(badSize.stderr).toContain('--size big');
    const isic = join(HAM, 'variants', 'ISIC2018_Task3_Validation_GroundTruth.csv');
    const out = join(tmp, 'none.zip');
    const none = await runCli('pack', '--images', ORIGINALS, '--csv', isic, '--out', out);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('nothing to pack');
    await expect(stat(out)).rejects.toThrow();
    await expect(stat(`${out}.partial`)).rejects.toThrow();
  });
});
