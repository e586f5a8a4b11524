import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TextReader, Uint8ArrayReader, Uint8ArrayWriter, ZipWriter } from '@zip.js/zip.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveError, listZip } from '../../src/lib/data/archive.ts';
import { crc32 } from '../../src/lib/data/crc32.ts';
import type { ImageSource, Listing } from '../../src/lib/data/types.ts';
import {
  LOCAL_HEADER_SIGNATURE,
  RANGE_BYTES,
  extractEntry,
  planReads,
  readRange,
  type ReadStep,
  type ZipSpan,
} from '../../src/lib/data/zip-span.ts';
import {
  KAGGLE_ZIP_NAME,
  METADATA_CSV,
  buildKaggleZip,
  makeTempDir,
  readOriginals,
  removeTempDir,
  type BuiltZip,
} from '../helpers/zips.ts';

const originals = readOriginals();
const sha256ById = new Map(originals.map((o) => [o.imageId, o.sha256]));

let dir: string;
let deflated: BuiltZip;
let stored: BuiltZip;

beforeAll(async () => {
  dir = await makeTempDir();
  deflated = await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images: originals, csvPath: METADATA_CSV });
  stored = await buildKaggleZip(join(dir, `stored-${KAGGLE_ZIP_NAME}`), {
    images: originals,
    csvPath: METADATA_CSV,
    zip64: true,
    level: 0,
  });
});

afterAll(async () => {
  if (dir) await removeTempDir(dir);
});

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function listPath(path: string): Promise<Listing> {
  return listZip(await openAsBlob(path), KAGGLE_ZIP_NAME);
}

function spanOf(image: ImageSource): ZipSpan {
  expect(image.span, `${image.location} has a span`).toBeDefined();
  return image.span as ZipSpan;
}

/** Runs a plan the way the ingest does: one read per range, then each entry out of it. */
async function runPlan(steps: Array<ReadStep<ImageSource>>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const step of steps) {
    if (step.kind === 'single') {
      out.set(step.item.imageId, sha256(await step.item.read()));
      continue;
    }
    const { blob, start, end, members } = step.range;
    const chunk = await readRange(blob, start, end);
    expect(chunk.length).toBe(end - start);
    for (const { item, span } of members) out.set(item.imageId, sha256(extractEntry(chunk, start, span)));
  }
  return out;
}

describe('crc32', () => {
  it('gives the standard check value and the CRC that zip.js recorded for each entry', async () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const listing = await listPath(deflated.path);
    for (const image of listing.images.slice(0, 20)) {
      const bytes = await image.read();
      expect(crc32(bytes)).toBe(spanOf(image).crc32);
    }
  });
});

describe('entry spans from listZip', () => {
  it.each([
    ['deflated', () => deflated, 8],
    ['stored, Zip64', () => stored, 0],
  ] as const)(
    '(%s) gives every image a span inside the archive, in archive order, not overlapping',
    async (_, zip, method) => {
      const { path, bytes } = zip();
      const listing = await listPath(path);
      expect(listing.images).toHaveLength(originals.length);
      let previousEnd = 0;
      for (const image of listing.images) {
        const span = spanOf(image);
        expect(span.method).toBe(method);
        expect(span.start).toBeGreaterThanOrEqual(previousEnd);
        expect(span.end).toBeGreaterThan(span.start + 30 + span.compressedSize);
        expect(span.end).toBeLessThanOrEqual(bytes);
        previousEnd = span.end;
      }
    },
  );
});

describe('planReads', () => {
  it('reads the 240 kept images of a Kaggle-shaped zip in a few ranges of at most RANGE_BYTES, bytes identical', async () => {
    for (const zip of [deflated, stored]) {
      const listing = await listPath(zip.path);
      const steps = planReads(listing.images, (image) => image.span);
      const ranges = steps.flatMap((s) => (s.kind === 'range' ? [s.range] : []));
      expect(ranges).toHaveLength(steps.length);
      const total = listing.images.reduce((sum, image) => sum + spanOf(image).end - spanOf(image).start, 0);
      expect(ranges.length).toBeLessThanOrEqual(Math.ceil(total / RANGE_BYTES) + 1);
      for (const range of ranges) expect(range.end - range.start).toBeLessThanOrEqual(RANGE_BYTES);
      expect(ranges.flatMap((r) => r.members.map((m) => m.item))).toEqual(listing.images);
      const digests = await runPlan(steps);
      expect(digests.size).toBe(originals.length);
      for (const [id, digest] of digests) expect(digest, id).toBe(sha256ById.get(id));
    }
  });

  it('splits at the byte limit, at gaps, at another blob and around items without a span', async () => {
    const listing = await listPath(deflated.path);
    const images = listing.images.slice(0, 12);
    const sizes = images.map((i) => spanOf(i).end - spanOf(i).start);
    const limit = Math.max(...sizes) * 2;
    const small = planReads(images, (i) => i.span, { maxBytes: limit });
    for (const step of small) {
      if (step.kind !== 'range') throw new Error('every image has a span');
      expect(step.range.members.length).toBeGreaterThanOrEqual(1);
      expect(step.range.members.length === 1 || step.range.end - step.range.start <= limit).toBe(true);
    }
    expect(small.length).toBeGreaterThan(1);
    expect(small.length).toBeLessThan(images.length);

    // Skipping every other image leaves gaps the size of an image: read through when allowed, else apart.
    const sparse = images.filter((_, i) => i % 2 === 0);
    expect(planReads(sparse, (i) => i.span, { gap: 0 })).toHaveLength(sparse.length);
    expect(planReads(sparse, (i) => i.span, { gap: Math.max(...sizes) })).toHaveLength(1);

    // A loose file in the middle is a single step and closes the range before it.
    const loose: ImageSource = {
      imageId: 'loose',
      location: 'loose.jpg',
      size: 1,
      read: () => Promise.resolve(new Uint8Array(1)),
    };
    const mixed = planReads([images[0]!, images[1]!, loose, images[2]!, images[3]!], (i) => i.span);
    expect(mixed.map((s) => (s.kind === 'range' ? s.range.members.length : 'single'))).toEqual([
      2,
      'single',
      2,
    ]);

    // The same entries seen through another Blob (another drop) never share a read.
    const other = await listPath(deflated.path);
    const twoBlobs = planReads([images[0]!, other.images[1]!], (i) => i.span);
    expect(twoBlobs).toHaveLength(2);

    // Going backwards in the archive starts a new range.
    expect(planReads([images[1]!, images[0]!], (i) => i.span)).toHaveLength(2);
  });
});

describe('damaged archives', () => {
  it('names the entry whose local header or data is damaged, and still extracts its neighbours', async () => {
    const whole = Buffer.from(await readFile(deflated.path));
    const listing = await listPath(deflated.path);
    const [first, second, third] = listing.images.map(spanOf);
    const header = Buffer.from(whole);
    header.writeUInt32LE(0, second!.start);
    expect(whole.readUInt32LE(second!.start)).toBe(LOCAL_HEADER_SIGNATURE);
    const data = Buffer.from(whole);
    const middle = third!.start + 30 + Math.floor((third!.end - third!.start - 30) / 2);
    data[middle] = (data[middle] as number) ^ 0xff;

    for (const [damaged, entry, message] of [
      [header, second!, /no local file header/],
      [data, third!, /inflating failed|CRC-32 mismatch/],
    ] as const) {
      const chunk = new Uint8Array(damaged.subarray(first!.start, third!.end));
      const error = (() => {
        try {
          return extractEntry(chunk, first!.start, entry);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ArchiveError);
      expect((error as ArchiveError).entry).toBe(entry.entry);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^Could not read ${entry.entry.replace(/\./g, '\\.')} from ${KAGGLE_ZIP_NAME.replace(/\./g, '\\.')} \\(`,
        ),
      );
      expect((error as Error).message).toMatch(message);
      const bytes = extractEntry(chunk, first!.start, first!);
      expect(sha256(bytes)).toBe(sha256ById.get(listing.images[0]!.imageId));
    }
  });

  it('refuses an entry whose range was not read whole', async () => {
    const listing = await listPath(stored.path);
    const span = spanOf(listing.images[0]!);
    const chunk = await readRange(span.blob, span.start, span.start + 40);
    expect(() => extractEntry(chunk, span.start, span)).toThrow(/not read whole/);
  });
});

describe('entries zip-span does not read', () => {
  it('lists encrypted entries as ignored, with the reason, and reads the plain ones by span', async () => {
    const writer = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
    const jpeg = await readFile(originals[0]!.path);
    await writer.add(`secret/${originals[0]!.imageId}.jpg`, new Uint8ArrayReader(jpeg), { password: 'x' });
    await writer.add(
      `plain/${originals[1]!.imageId}.jpg`,
      new Uint8ArrayReader(await readFile(originals[1]!.path)),
    );
    await writer.add('notes.txt', new TextReader('not data'));
    const path = join(dir, 'encrypted.zip');
    await writeFile(path, await writer.close());
    const listing = await listZip(await openAsBlob(path), 'encrypted.zip');
    expect(listing.images.map((i) => i.imageId)).toEqual([originals[1]!.imageId]);
    const [plain] = listing.images;
    expect(plain?.span).toBeDefined();
    expect(listing.ignored).toContain(
      `encrypted.zip:secret/${originals[0]!.imageId}.jpg (encrypted: this app asks for no password)`,
    );
    expect(sha256(await plain!.read())).toBe(originals[1]!.sha256);
  });

  it('refuses a wholly encrypted zip with one message for the archive', async () => {
    const writer = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
    for (const original of originals.slice(0, 15))
      await writer.add(`${original.imageId}.jpg`, new Uint8ArrayReader(await readFile(original.path)), {
        password: 'x',
      });
    await writer.add('HAM10000_metadata.csv', new TextReader('lesion_id,image_id\n'), { password: 'x' });
    const path = join(dir, 'all-encrypted.zip');
    await writeFile(path, await writer.close());
    const error = await listZip(await openAsBlob(path), 'all-encrypted.zip').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as Error).message).toBe(
      'all-encrypted.zip is encrypted (16 of its images and data files need a password). This app asks for no ' +
        'password: extract the zip with its password, then drop the folder or a new zip.',
    );
  });
});
