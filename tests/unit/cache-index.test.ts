import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildCacheIndex,
  bytesPerImage,
  cacheBytesNeeded,
  cacheFileNames,
  CacheIndexError,
  checkPixelFileSize,
  parseCacheIndex,
  quotaShortfall,
  serializeCacheIndex,
  toMegabytes,
  type CacheIndex,
} from '../../src/lib/data/cache-index.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import type { MatchReport, Metadata } from '../../src/lib/data/types.ts';

const HAM = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'ham10000');

let metadata: Metadata;
let index: CacheIndex;
const report: MatchReport = {
  matched: 240,
  rowsWithoutImage: 9775,
  rowsWithoutImageIds: ['ISIC_0027419'],
  imagesWithoutRow: 0,
  imagesWithoutRowIds: [],
  duplicatesSkipped: 240,
};

beforeAll(() => {
  metadata = parseMetadata(readFileSync(join(HAM, 'HAM10000_metadata.csv'), 'utf8'), 'HAM10000_metadata.csv');
  // The 240 originals, as matched: in metadata order.
  const ids = new Set(
    readFileSync(join(HAM, 'originals-600x450-manifest.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0]),
  );
  const records = metadata.records.filter((r) => ids.has(r.imageId));
  index = buildCacheIndex({
    size: 224,
    metadata,
    match: report,
    records,
    sources: [{ name: 'skin-cancer-mnist-ham10000.zip', size: 5_000_000, lastModified: 1 }],
    createdAt: new Date('2026-01-02T03:04:05Z'),
  });
});

/** The serialized index with one change, for the rejection cases. */
function tampered(
  change: (value: Record<string, unknown> & { entries: Array<Record<string, unknown>> }) => void,
): string {
  const value = JSON.parse(serializeCacheIndex(index));
  change(value);
  return JSON.stringify(value);
}

describe('cache index', () => {
  it('maps each cached image to its metadata row, label and lesion, in cache order', () => {
    expect(index).toMatchObject({
      version: 1,
      complete: true,
      size: 224,
      channels: 3,
      bytesPerImage: 224 * 224 * 3,
      count: 240,
      resize: 'squash',
      createdAt: '2026-01-02T03:04:05.000Z',
      pixelsFile: 'pixels-224.rgb',
    });
    for (const entry of index.entries) {
      const record = metadata.records[entry.row];
      expect(record?.imageId).toBe(entry.imageId);
      expect(entry).toMatchObject({ dx: record?.dx, lesionId: record?.lesionId });
      expect(entry.label).toBe(['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'].indexOf(entry.dx));
    }
    const counts: Record<string, number> = {};
    for (const e of index.entries) counts[e.dx] = (counts[e.dx] ?? 0) + 1;
    expect(counts).toEqual({ akiec: 15, bcc: 21, bkl: 30, df: 14, mel: 29, nv: 117, vasc: 14 });
  });

  it('survives a JSON round trip unchanged (the restored metadata is the parsed one)', () => {
    const text = serializeCacheIndex(index);
    expect(parseCacheIndex(text, 224)).toEqual(index);
    expect(parseCacheIndex(text).metadata.records).toHaveLength(10015);
  });

  it.each([
    ['a truncated write', () => serializeCacheIndex(index).slice(0, 1000), /not valid JSON/],
    ['an incomplete cache', () => tampered((v) => (v.complete = false)), /complete/],
    ['another version', () => tampered((v) => (v.version = 2)), /version/],
    ['an unsupported size', () => tampered((v) => (v.size = 100)), /size/],
    ['a wrong image count', () => tampered((v) => (v.count = 239)), /counts 239/],
    ['a cropped cache', () => tampered((v) => (v.resize = 'crop')), /resize mode/],
    ['a wrong label', () => tampered((v) => (v.entries[0]!.label = 6)), /wrong label/],
    ['a row of another image', () => tampered((v) => (v.entries[0]!.row = 0)), /points at row 0/],
    ['a repeated image', () => tampered((v) => (v.entries[1] = v.entries[0]!)), /repeats/],
    [
      'a bad metadata record',
      () => tampered((v) => ((v.metadata as Metadata).records[3]!.dx = 'x' as never)),
      /unknown dx/,
    ],
  ])('rejects %s', (_name, text, message) => {
    expect(() => parseCacheIndex(text())).toThrow(CacheIndexError);
    expect(() => parseCacheIndex(text())).toThrow(message);
  });

  it('rejects an index for another size than its file name says', () => {
    expect(() => parseCacheIndex(serializeCacheIndex(index), 96)).toThrow(/for 224 px, expected 96 px/);
  });

  it('checks that the pixel file holds exactly the indexed images', () => {
    expect(() => checkPixelFileSize(index, 240 * 150_528)).not.toThrow();
    expect(() => checkPixelFileSize(index, 239 * 150_528)).toThrow(/holds 35976192 bytes, expected 36126720/);
  });

  it('names the files of each size and sizes the cache', () => {
    expect(cacheFileNames(96)).toEqual({
      pixels: 'pixels-96.rgb',
      partial: 'pixels-96.rgb.partial',
      index: 'index-96.json',
    });
    expect(bytesPerImage(128)).toBe(128 * 128 * 3);
    // The real dataset at 224 px: 1.5 GB of pixels.
    expect(toMegabytes(cacheBytesNeeded(224, 10_015))).toBe(1514);
  });

  it('compares the need with navigator.storage.estimate()', () => {
    expect(quotaShortfall(100, { quota: 1000, usage: 800 })).toBeNull();
    expect(quotaShortfall(300, { quota: 1000, usage: 800 })).toEqual({
      neededBytes: 300,
      availableBytes: 200,
    });
    expect(quotaShortfall(300, { quota: 1000, usage: 1200 })).toEqual({
      neededBytes: 300,
      availableBytes: 0,
    });
    expect(quotaShortfall(300, undefined)).toBeNull();
    expect(quotaShortfall(300, {})).toBeNull();
  });

  it('refuses to index a record that is not one of the metadata records', () => {
    const stranger = { ...(metadata.records[0] as Metadata['records'][number]) };
    expect(() =>
      buildCacheIndex({
        size: 96,
        metadata,
        match: report,
        records: [stranger],
        sources: [],
        createdAt: new Date(),
      }),
    ).toThrow(/not one of the metadata's records/);
  });
});
