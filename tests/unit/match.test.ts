import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listLooseFiles, mergeListings, type LooseFile } from '../../src/lib/data/listing.ts';
import { describeMatch, matchImages } from '../../src/lib/data/match.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import type { Listing, Metadata } from '../../src/lib/data/types.ts';
import { HAM_DIR, METADATA_CSV, diskFile, readOriginals, type OriginalImage } from '../helpers/zips.ts';

const originals = readOriginals();
const originalIds = new Set(originals.map((o) => o.imageId));
const metadata: Metadata = parseMetadata(readFileSync(METADATA_CSV, 'utf8'), 'HAM10000_metadata.csv');

/** The 240 originals as a dropped copy of Kaggle's extracted folder: every file in both part-folder spellings. */
let kaggleFolder: Listing;

async function looseOriginals(folder: string, images: readonly OriginalImage[]): Promise<LooseFile[]> {
  return Promise.all(
    images.map(async (o) => ({ ...(await diskFile(o.path)), path: `${folder}/${o.imageId}.jpg` })),
  );
}

beforeAll(async () => {
  kaggleFolder = listLooseFiles([
    ...(await looseOriginals('HAM10000_images_part_1', originals)),
    ...(await looseOriginals('ham10000_images_part_1', originals)),
  ]);
});

describe('matchImages on the real metadata file', () => {
  it('matches the 240 originals, in metadata order, and lists the first rows without an image', () => {
    const { matched, report } = matchImages(metadata.records, kaggleFolder);
    const expectedMatched = metadata.records.filter((r) => originalIds.has(r.imageId));
    const expectedMissing = metadata.records.filter((r) => !originalIds.has(r.imageId));

    expect(report.matched).toBe(240);
    expect(matched.map((m) => m.record)).toEqual(expectedMatched);
    for (const { record, image } of matched) {
      expect(image.imageId).toBe(record.imageId);
      expect(image.location).toBe(`HAM10000_images_part_1/${record.imageId}.jpg`);
    }
    const dxById = new Map(originals.map((o) => [o.imageId, o.dx]));
    expect(matched.every((m) => dxById.get(m.record.imageId) === m.record.dx)).toBe(true);

    expect(report.rowsWithoutImage).toBe(10_015 - 240);
    expect(report.rowsWithoutImage).toBe(expectedMissing.length);
    expect(report.rowsWithoutImageIds).toEqual(expectedMissing.slice(0, 10).map((r) => r.imageId));
    expect(report.imagesWithoutRow).toBe(0);
    expect(report.imagesWithoutRowIds).toEqual([]);
    expect(report.duplicatesSkipped).toBe(240);

    const first = report.rowsWithoutImageIds.join(', ');
    expect(describeMatch(report)).toBe(
      `240 images matched; 9,775 rows without an image (first: ${first}, …); 0 images without a row; ` +
        '240 duplicate copies skipped.',
    );
  });

  it('reports images that have no row, and honours sampleIds', async () => {
    const [a, b] = originals as [OriginalImage, OriginalImage];
    const strangers = listLooseFiles([
      { ...(await diskFile(a.path)), path: 'extra/ISIC_9999998.jpg' },
      { ...(await diskFile(b.path)), path: 'extra/ISIC_9999999.jpg' },
    ]);
    const { report } = matchImages(metadata.records, mergeListings([kaggleFolder, strangers]), 3);
    expect(report.matched).toBe(240);
    expect(report.imagesWithoutRow).toBe(2);
    expect(report.imagesWithoutRowIds).toEqual(['ISIC_9999998', 'ISIC_9999999']);
    expect(report.rowsWithoutImageIds).toHaveLength(3);
    expect(describeMatch(report)).toContain('; 2 images without a row (ISIC_9999998, ISIC_9999999);');
  });

  it('uses singular forms for one of each', async () => {
    const [a, b] = originals as [OriginalImage, OriginalImage];
    const record = metadata.records.find((r) => r.imageId === a.imageId);
    const missing = metadata.records.find((r) => !originalIds.has(r.imageId));
    if (!record || !missing) throw new Error('the manifest and the metadata file disagree');
    const listing = listLooseFiles([
      { ...(await diskFile(a.path)), path: `HAM10000_images_part_1/${a.imageId}.jpg` },
      { ...(await diskFile(a.path)), path: `ham10000_images_part_1/${a.imageId}.jpg` },
      { ...(await diskFile(b.path)), path: 'other/ISIC_9999999.jpg' },
    ]);
    const { report } = matchImages([record, missing], listing);
    expect(describeMatch(report)).toBe(
      `1 image matched; 1 row without an image (${missing.imageId}); ` +
        '1 image without a row (ISIC_9999999); 1 duplicate copy skipped.',
    );
  });

  it('matches nothing for ISIC 2018 labels, whose ids are not HAM10000 images', () => {
    const path = join(HAM_DIR, 'variants', 'ISIC2018_Task3_Validation_GroundTruth.csv');
    const isic = parseMetadata(readFileSync(path, 'utf8'), 'ISIC2018_Task3_Validation_GroundTruth.csv');
    const { matched, report } = matchImages(isic.records, kaggleFolder);
    expect(matched).toEqual([]);
    expect(report.rowsWithoutImage).toBe(isic.records.length);
    expect(report.imagesWithoutRow).toBe(240);
    expect(describeMatch(report)).toMatch(
      /^0 images matched; 193 rows without an image \(first: ISIC_\d{7},/,
    );
  });
});
