import { createHash } from 'node:crypto';
import { openAsBlob, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveError, listZip } from '../../src/lib/data/archive.ts';
import { imageIdFromPath, listLooseFiles, mergeListings } from '../../src/lib/data/listing.ts';
import type { ImageSource, Listing } from '../../src/lib/data/types.ts';
import {
  DATAVERSE_PART_NAMES,
  HMNIST_NAMES,
  KAGGLE_ZIP_NAME,
  METADATA_CSV,
  buildDataverseZips,
  buildKaggleZip,
  diskFile,
  findZip64Records,
  makeTempDir,
  readOriginals,
  removeTempDir,
  writeZip,
  type BuiltDataverse,
  type BuiltZip,
  type OriginalImage,
} from '../helpers/zips.ts';

const originals = readOriginals();
const sha256ById = new Map(originals.map((o) => [o.imageId, o.sha256]));
const metadataText = readFileSync(METADATA_CSV, 'utf8');

let dir: string;
let kaggle: BuiltZip;
let kaggle64: BuiltZip;
let dataverse: BuiltDataverse;

beforeAll(async () => {
  dir = await makeTempDir();
  // Deflated like Kaggle's archive; the Zip64 and Dataverse ones are stored, so both methods are read.
  kaggle = await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images: originals, csvPath: METADATA_CSV });
  kaggle64 = await buildKaggleZip(join(dir, `zip64-${KAGGLE_ZIP_NAME}`), {
    images: originals,
    csvPath: METADATA_CSV,
    zip64: true,
    level: 0,
  });
  dataverse = await buildDataverseZips(dir, { images: originals, csvPath: METADATA_CSV, level: 0 });
});

afterAll(async () => {
  if (dir) await removeTempDir(dir);
});

async function listFile(path: string, name = path.slice(path.lastIndexOf('/') + 1)): Promise<Listing> {
  return listZip(await openAsBlob(path), name);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads every image (a few at a time, as the ingest worker does) and returns image_id → sha256. */
async function digests(images: readonly ImageSource[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const queue = [...images];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let image = queue.shift(); image; image = queue.shift())
        out.set(image.imageId, sha256(await image.read()));
    }),
  );
  return out;
}

function sortedIds(images: readonly ImageSource[]): string[] {
  return images.map((i) => i.imageId).sort();
}

const originalIds = originals.map((o) => o.imageId).sort();

describe('listZip on a Kaggle-shaped archive (part folders, lower-case copies, CSV, hmnist)', () => {
  it('lists each image_id once, from the upper-case part folders', async () => {
    const listing = await listFile(kaggle.path);
    expect(listing.entries).toBe(kaggle.entries);
    expect(listing.entries).toBe(2 * 240 + 1 + HMNIST_NAMES.length);
    expect(sortedIds(listing.images)).toEqual(originalIds);
    for (const image of listing.images) {
      expect(image.location).toMatch(
        new RegExp(`^${KAGGLE_ZIP_NAME}:HAM10000_images_part_[12]/${image.imageId}\\.jpg$`),
      );
    }
  });

  it('reports the lower-case copies as duplicates of the kept image', async () => {
    const listing = await listFile(kaggle.path);
    expect(listing.duplicates).toHaveLength(240);
    expect(listing.duplicates.map((d) => d.imageId).sort()).toEqual(originalIds);
    for (const d of listing.duplicates) {
      expect(d.location).toMatch(
        new RegExp(`^${KAGGLE_ZIP_NAME}:ham10000_images_part_[12]/${d.imageId}\\.jpg$`),
      );
      expect(d.keptLocation).toBe(d.location.replace(':ham10000_', ':HAM10000_'));
    }
  });

  it('finds the metadata CSV with its exact text and ignores the hmnist files', async () => {
    const listing = await listFile(kaggle.path);
    expect(listing.metadata.map((m) => [m.name, m.location])).toEqual([
      ['HAM10000_metadata.csv', `${KAGGLE_ZIP_NAME}:HAM10000_metadata.csv`],
    ]);
    expect(await listing.metadata[0]?.readText()).toBe(metadataText);
    expect(listing.ignored).toEqual(
      HMNIST_NAMES.map((n) => `${KAGGLE_ZIP_NAME}:${n} (Kaggle's pixel table (hmnist), not the metadata)`),
    );
  });

  it('returns the original bytes of every image (sha256 as in the manifest)', async () => {
    const listing = await listFile(kaggle.path);
    expect(await digests(listing.images)).toEqual(sha256ById);
  });

  it('reads an archive written with Zip64 records', async () => {
    const records = await findZip64Records(kaggle64.path);
    expect(records).not.toBeNull();
    expect(records?.endOfCentralDirectory64).toBeGreaterThan(0);
    expect(await findZip64Records(kaggle.path)).toBeNull();
    const listing = await listFile(kaggle64.path, KAGGLE_ZIP_NAME);
    expect(listing.entries).toBe(kaggle64.entries);
    expect(sortedIds(listing.images)).toEqual(originalIds);
    expect(listing.duplicates).toHaveLength(240);
    expect(await digests(listing.images)).toEqual(sha256ById);
  });
});

describe('Dataverse-shaped part zips and loose metadata', () => {
  it('lists the top-level images of each part and merges them with the .csv and .tab', async () => {
    const [part1, part2] = dataverse.zips;
    const listings = [await listFile(part1.path), await listFile(part2.path)];
    expect(listings.map((l) => l.entries)).toEqual([part1.entries, part2.entries]);
    expect(listings[0]?.images[0]?.location).toMatch(
      new RegExp(`^${DATAVERSE_PART_NAMES[0]}:ISIC_\\d{7}\\.jpg$`),
    );
    const metadataFiles = [dataverse.csvPath, dataverse.tabPath] as string[];
    const loose = listLooseFiles(await Promise.all(metadataFiles.map((p) => diskFile(p))));
    const merged = mergeListings([...listings, loose]);

    expect(merged.entries).toBe(240 + 2);
    expect(sortedIds(merged.images)).toEqual(originalIds);
    expect(merged.duplicates).toEqual([]);
    expect(merged.ignored).toEqual([]);
    expect(merged.metadata.map((m) => m.name)).toEqual(['HAM10000_metadata.csv', 'HAM10000_metadata.tab']);
    expect(await merged.metadata[0]?.readText()).toBe(metadataText);
    const tab = await merged.metadata[1]?.readText();
    expect(tab).toBe(readFileSync(dataverse.tabPath as string, 'utf8'));
    expect(tab?.split('\n')[0]).toBe('lesion_id\timage_id\tdx\tdx_type\tage\tsex\tlocalization');
    expect(await digests(merged.images)).toEqual(sha256ById);
  });
});

describe('mergeListings: several containers dropped one after another', () => {
  it('keeps the first drop between equal copies and re-points every duplicate at the kept one', async () => {
    const kaggleListing = await listFile(kaggle.path);
    const parts = await Promise.all(dataverse.zips.map((z) => listFile(z.path)));
    const merged = mergeListings([kaggleListing, ...parts]);
    expect(merged.entries).toBe(kaggle.entries + 240);
    expect(sortedIds(merged.images)).toEqual(originalIds);
    expect(merged.images.map((i) => i.location)).toEqual(kaggleListing.images.map((i) => i.location));
    expect(merged.duplicates).toHaveLength(480);
    const kept = new Map(merged.images.map((i) => [i.imageId, i.location]));
    for (const d of merged.duplicates) expect(d.keptLocation).toBe(kept.get(d.imageId));
    expect(merged.metadata).toHaveLength(1);
  });

  it('prefers a later drop over an earlier lower-case copy (same rule as inside one archive)', async () => {
    const few = originals.slice(0, 5);
    const lowerOnly = await writeZip(
      join(dir, 'lower-only.zip'),
      few.map((o) => ({ name: `ham10000_images_part_1/${o.imageId}.jpg`, file: o.path })),
    );
    const first = await listFile(lowerOnly.path);
    expect(first.duplicates).toEqual([]);
    const parts = await Promise.all(dataverse.zips.map((z) => listFile(z.path)));
    const merged = mergeListings([first, ...parts]);
    expect(sortedIds(merged.images)).toEqual(originalIds);
    for (const image of merged.images) expect(image.location).toMatch(/^HAM10000_images_part_[12]\.zip:/);
    expect(merged.duplicates.map((d) => [d.location, d.keptLocation])).toEqual(
      few.map((o) => [
        `lower-only.zip:ham10000_images_part_1/${o.imageId}.jpg`,
        `${DATAVERSE_PART_NAMES[0]}:${o.imageId}.jpg`,
      ]),
    );
  });

  it('reports a zip dropped twice as all duplicates', async () => {
    const once = await listFile(dataverse.zips[1].path);
    const merged = mergeListings([once, await listFile(dataverse.zips[1].path)]);
    expect(merged.images).toHaveLength(once.images.length);
    expect(merged.duplicates).toHaveLength(once.images.length);
    expect(merged.entries).toBe(2 * once.entries);
  });
});

describe('entries that are not data', () => {
  it('ignores directories, __MACOSX, dotfiles, other files and nested zips (with a note)', async () => {
    const [a, b, c] = originals as [OriginalImage, OriginalImage, OriginalImage];
    const inner = await writeZip(join(dir, 'inner.zip'), [{ name: `${a.imageId}.jpg`, file: a.path }]);
    const odd = await writeZip(join(dir, 'odd.zip'), [
      { name: 'images/', directory: true },
      { name: `images/${a.imageId}.JPG`, file: a.path },
      { name: `${b.imageId}.jpeg`, file: b.path },
      { name: `deep/er/${c.imageId}.jpg`, file: c.path },
      { name: `__MACOSX/images/._${a.imageId}.JPG`, text: 'resource fork' },
      { name: 'images/.DS_Store', text: 'finder' },
      { name: `.hidden/${b.imageId}.jpg`, text: 'not an image' },
      { name: 'README.txt', text: 'read me' },
      { name: 'nested/inner.zip', file: inner.path },
      { name: 'hmnist_8_8_L.csv', text: 'pixel0000,label\n' },
      { name: 'labels/HAM10000_metadata.tab', text: 'lesion_id\timage_id\n' },
      { name: `../${c.imageId}.jpg`, file: c.path },
    ]);
    const listing = await listFile(odd.path);
    expect(listing.entries).toBe(11);
    expect(listing.images.map((i) => [i.imageId, i.location])).toEqual([
      [a.imageId, `odd.zip:images/${a.imageId}.JPG`],
      [b.imageId, `odd.zip:${b.imageId}.jpeg`],
      [c.imageId, `odd.zip:deep/er/${c.imageId}.jpg`],
    ]);
    expect(listing.metadata.map((m) => m.location)).toEqual(['odd.zip:labels/HAM10000_metadata.tab']);
    expect(await listing.metadata[0]?.readText()).toBe('lesion_id\timage_id\n');
    const other = 'neither an image named ISIC_<7 digits>.jpg/.jpeg/.png nor a metadata .csv/.tab';
    expect(listing.ignored).toEqual([
      `odd.zip:__MACOSX/images/._${a.imageId}.JPG (macOS archive metadata)`,
      'odd.zip:images/.DS_Store (a hidden file)',
      `odd.zip:.hidden/${b.imageId}.jpg (a hidden file)`,
      `odd.zip:README.txt (${other})`,
      'odd.zip:nested/inner.zip (a zip inside a zip is not opened: extract it and drop its contents)',
      "odd.zip:hmnist_8_8_L.csv (Kaggle's pixel table (hmnist), not the metadata)",
      `odd.zip:../${c.imageId}.jpg (its path climbs out of the archive (../), so it is not read)`,
    ]);
    expect(listing.duplicates).toEqual([]);
    expect(await digests(listing.images)).toEqual(
      new Map([a, b, c].map((o) => [o.imageId, o.sha256] as [string, string])),
    );
  });

  it('derives image_ids from .jpg, .jpeg and .png names only', () => {
    expect(imageIdFromPath('HAM10000_images_part_1/ISIC_0024306.jpg')).toBe('ISIC_0024306');
    expect(imageIdFromPath('ISIC_0024306.JPEG')).toBe('ISIC_0024306');
    expect(imageIdFromPath('a/b/ISIC_0024306.Png')).toBe('ISIC_0024306');
    expect(imageIdFromPath('ISIC_0024306.jpg.txt')).toBeNull();
    expect(imageIdFromPath('ISIC_0024306.gif')).toBeNull();
    expect(imageIdFromPath('__MACOSX/._ISIC_0024306.jpg')).toBeNull();
    expect(imageIdFromPath('.jpg')).toBeNull();
  });
});

describe('zip bombs and oversized entries', () => {
  it('refuses them by name from the central directory, before inflating, and still reads the other images', async () => {
    const good = originals.slice(0, 13);
    const bomb = await writeZip(join(dir, 'bomb.zip'), [
      ...good.map((o) => ({ name: `images/${o.imageId}.jpg`, file: o.path })),
      { name: 'images/ISIC_9999991.jpg', bytes: new Uint8Array(60 * 1024 * 1024) },
      { name: 'images/ISIC_9999992.jpg', bytes: new Uint8Array(4 * 1024 * 1024) },
      { name: 'HAM10000_metadata.csv', bytes: new Uint8Array(70 * 1024 * 1024).fill(0x2c) },
    ]);
    // Deflated zeros: a few hundred kB on disk for 134 MB announced.
    expect(bomb.bytes).toBeLessThan(5_000_000);
    const listing = await listFile(bomb.path);
    expect(sortedIds(listing.images)).toEqual(good.map((o) => o.imageId).sort());
    expect(listing.metadata).toEqual([]);
    expect(listing.ignored).toHaveLength(3);
    expect(listing.ignored[0]).toBe(
      'bomb.zip:images/ISIC_9999991.jpg (it would inflate to 62.9 MB, more than the 52.4 MB any image here ' +
        'needs, so it is not read (a damaged or malicious archive?))',
    );
    expect(listing.ignored[1]).toMatch(
      /^bomb\.zip:images\/ISIC_9999992\.jpg \(it would inflate [\d,]+ times \([\d.]+ kB to 4\.2 MB\); no image compresses like that, so it is not read \(a zip bomb\?\)\)$/,
    );
    expect(listing.ignored[2]).toMatch(
      /^bomb\.zip:HAM10000_metadata\.csv \(it would inflate to 73\.4 MB, more than the 67\.1 MB any metadata file here needs/,
    );
    expect(await digests(listing.images)).toEqual(
      new Map(good.map((o) => [o.imageId, o.sha256] as [string, string])),
    );
  });
});

describe('listLooseFiles: a folder drop', () => {
  it('lists the JPEGs of a dropped folder and the CSV next to them, reading original bytes', async () => {
    const files = [
      ...(await Promise.all(
        originals.map(async (o) => ({ ...(await diskFile(o.path)), path: `drop/${o.imageId}.jpg` })),
      )),
      { ...(await diskFile(METADATA_CSV)), path: 'drop/HAM10000_metadata.csv' },
      { name: 'notes.txt', size: 4, bytes: async () => new TextEncoder().encode('note') },
    ];
    const listing = listLooseFiles(files);
    expect(listing.entries).toBe(242);
    expect(sortedIds(listing.images)).toEqual(originalIds);
    expect(listing.images[0]?.location).toBe(`drop/${originals[0]?.imageId}.jpg`);
    expect(listing.images[0]?.size).toBe(originals[0]?.bytes);
    expect(listing.ignored).toEqual([
      'notes.txt (neither an image named ISIC_<7 digits>.jpg/.jpeg/.png nor a metadata .csv/.tab)',
    ]);
    expect(await listing.metadata[0]?.readText()).toBe(metadataText);
    expect(await digests(listing.images)).toEqual(sha256ById);
  });
});

describe('bad archives', () => {
  async function expectUnreadable(path: string, name: string): Promise<void> {
    const error = await listFile(path, name).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as ArchiveError).fileName).toBe(name);
    expect((error as Error).message).toMatch(
      new RegExp(`^${name.replace('.', '\\.')} isn't a readable zip file`),
    );
  }

  it('names a file that is not a zip', async () => {
    const path = join(dir, 'metadata-renamed.zip');
    await writeFile(path, metadataText);
    await expectUnreadable(path, 'metadata-renamed.zip');
  });

  it('names an empty file and a truncated download', async () => {
    const empty = join(dir, 'empty.zip');
    await writeFile(empty, new Uint8Array(0));
    await expectUnreadable(empty, 'empty.zip');
    const whole = await readFile(dataverse.zips[1].path);
    const truncated = join(dir, 'truncated.zip');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    await expectUnreadable(truncated, DATAVERSE_PART_NAMES[1]);
  });

  it('names a zip cut just before its central directory (it lists no files)', async () => {
    const whole = await readFile(dataverse.zips[1].path);
    const directory = whole.readUInt32LE(whole.length - 22 + 16);
    const cut = join(dir, 'no-directory.zip');
    await writeFile(cut, whole.subarray(0, directory));
    const error = await listFile(cut, 'no-directory.zip').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as Error).message).toMatch(
      /^no-directory\.zip (lists no files: its central directory .* is missing or empty|isn't a readable zip file)/,
    );
  });

  it('names the entry whose bytes were damaged (CRC check), and still reads the others', async () => {
    const whole = await readFile(dataverse.zips[1].path);
    const damaged = join(dir, 'damaged.zip');
    const copy = Buffer.from(whole);
    const middle = Math.floor(copy.length / 2);
    copy[middle] = (copy[middle] as number) ^ 0xff;
    await writeFile(damaged, copy);
    const listing = await listFile(damaged, DATAVERSE_PART_NAMES[1]);
    const results = await Promise.allSettled(listing.images.map((i) => i.read()));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(ArchiveError);
    expect((failures[0] as Error).message).toMatch(
      new RegExp(`^Could not read ISIC_\\d{7}\\.jpg from ${DATAVERSE_PART_NAMES[1].replace('.', '\\.')} \\(`),
    );
  });
});

describe('cancellation', () => {
  it('does not start listing with an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const blob = await openAsBlob(kaggle.path);
    await expect(listZip(blob, KAGGLE_ZIP_NAME, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('stops listing when aborted from a progress callback', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const blob = await openAsBlob(kaggle.path);
    const listing = listZip(blob, KAGGLE_ZIP_NAME, {
      signal: controller.signal,
      onProgress: (read, total) => {
        seen.push(read);
        expect(total).toBeGreaterThanOrEqual(kaggle.entries);
        if (read === 10) controller.abort();
      },
    });
    await expect(listing).rejects.toMatchObject({ name: 'AbortError' });
    expect(Math.max(...seen)).toBeLessThan(kaggle.entries);
  });

  it('stops reading entries, including one already in progress', async () => {
    const listing = await listFile(kaggle.path);
    const controller = new AbortController();
    const image = listing.images[0] as ImageSource;
    const inFlight = image.read(controller.signal);
    controller.abort();
    await expect(inFlight).rejects.toMatchObject({ name: 'AbortError' });
    await expect(image.read(controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
    // The same source reads fine again with a live signal: nothing was left half-open.
    expect(sha256(await image.read())).toBe(sha256ById.get(image.imageId));
  });
});
