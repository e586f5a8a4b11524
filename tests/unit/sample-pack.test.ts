/**
 * The committed sample pack, public/samples/ham10000-sample.zip: what it holds (the full real metadata CSV, at
 * most 150 images per diagnosis, whole lesions only, the downscaled JPEGs' bytes unchanged), its size, and that
 * `npm run -s cli -- sample` rebuilds it byte for byte from ../shared.
 */
import { openAsBlob, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { listZip } from '../../src/lib/data/archive.ts';
import { DX, type Dx } from '../../src/lib/data/dx.ts';
import { matchImages } from '../../src/lib/data/match.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { chooseSample, PACK_IMAGE_FOLDER } from '../../src/lib/data/pack.ts';
import type { LesionRecord, Listing, Metadata } from '../../src/lib/data/types.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const HAM = resolve(ROOT, '../shared/data/ham10000');
const CSV = join(HAM, 'HAM10000_metadata.csv');
const SMALL = join(HAM, 'all-200x150');
const SAMPLE = join(ROOT, 'public/samples/ham10000-sample.zip');
const ATTRIBUTION = join(ROOT, 'public/samples/ATTRIBUTION.md');

let tmp: string;
let listing: Listing;
let metadata: Metadata;
let inSample: LesionRecord[];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'lesion-lab-sample-'));
  listing = await listZip(await openAsBlob(SAMPLE), 'ham10000-sample.zip');
  metadata = parseMetadata(await (listing.metadata[0] as Listing['metadata'][number]).readText(), 'x.csv');
  inSample = matchImages(metadata.records, listing).matched.map((m) => m.record);
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('public/samples/ham10000-sample.zip', () => {
  it('holds the full real metadata CSV, unchanged, and about 1,000 images, all of them with a row', async () => {
    expect(listing.metadata.map((m) => m.location)).toEqual(['ham10000-sample.zip:HAM10000_metadata.csv']);
    const text = await (listing.metadata[0] as Listing['metadata'][number]).readText();
    expect(text).toBe(await readFile(CSV, 'utf8'));
    expect(metadata.records).toHaveLength(10015);
    expect(listing.ignored).toEqual([]);
    expect(listing.duplicates).toEqual([]);
    expect(listing.images.length).toBeGreaterThanOrEqual(900);
    expect(listing.images.length).toBeLessThanOrEqual(1100);
    const report = matchImages(metadata.records, listing).report;
    expect(report.imagesWithoutRow).toBe(0);
    expect(report.matched).toBe(listing.images.length);
    expect((await stat(SAMPLE)).size).toBeLessThanOrEqual(8_000_000);
  });

  it('has at most 150 images per diagnosis, and every image of the classes that have fewer', () => {
    const count = (records: readonly LesionRecord[], dx: Dx) => records.filter((r) => r.dx === dx).length;
    const available = new Set(readdirSync(SMALL).map((name) => name.replace(/\.jpg$/, '')));
    for (const dx of DX) {
      const n = count(inSample, dx);
      expect(n, dx).toBeLessThanOrEqual(150);
      expect(n, dx).toBeGreaterThan(100);
      const all = metadata.records.filter((r) => r.dx === dx && available.has(r.imageId)).length;
      if (all <= 150) expect(n, dx).toBe(all);
    }
  });

  it('keeps each lesion whole: no lesion has images both in and out of the sample', () => {
    const chosen = new Set(inSample.map((r) => r.imageId));
    const byLesion = new Map<string, boolean[]>();
    for (const r of metadata.records) {
      const list = byLesion.get(r.lesionId as string) ?? [];
      list.push(chosen.has(r.imageId));
      byLesion.set(r.lesionId as string, list);
    }
    const split = [...byLesion].filter(([, flags]) => flags.some((f) => f) && flags.some((f) => !f));
    expect(split).toEqual([]);
    expect(new Set(inSample.map((r) => r.lesionId)).size).toBeGreaterThan(500);
  });

  it('stores the downscaled JPEGs byte for byte, under the pack folder', async () => {
    for (const image of listing.images) {
      expect(image.location).toBe(`ham10000-sample.zip:${PACK_IMAGE_FOLDER}/${image.imageId}.jpg`);
      const bytes = Buffer.from(await image.read());
      expect(bytes.equals(await readFile(join(SMALL, `${image.imageId}.jpg`))), image.imageId).toBe(true);
    }
  });

  it('is the seeded choice of the core, and the script rebuilds it byte for byte', async () => {
    const available = new Set(readdirSync(SMALL).map((name) => name.replace(/\.jpg$/, '')));
    const choice = chooseSample(metadata.records, available, { perClass: 150, seed: 1337 });
    expect(inSample.map((r) => r.imageId)).toEqual(choice.imageIds);

    const out = join(tmp, 'again.zip');
    const run = await runCli('sample', '--images', SMALL, '--csv', CSV, '--out', out);
    expect(run.code, run.stderr).toBe(0);
    const printed = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(printed).toMatchObject({
      images: choice.imageIds.length,
      per_class: choice.perClass,
      lesions: choice.lesions,
      seed: 1337,
      per_class_limit: 150,
      bytes: (await stat(SAMPLE)).size,
    });
    expect((await readFile(out)).equals(await readFile(SAMPLE))).toBe(true);
  });

  it('comes with its attribution', async () => {
    const text = await readFile(ATTRIBUTION, 'utf8');
    for (const needle of [
      'CC BY-NC 4.0',
      'Tschandl',
      '180161',
      '10.7910/DVN/DBW86T',
      '200 × 150',
      'mmalek06',
    ]) {
      expect(text).toContain(needle);
    }
  });
});

describe('chooseSample', () => {
  const record = (imageId: string, lesionId: string, dx: Dx, line: number): LesionRecord => ({
    imageId,
    lesionId,
    dx,
    dxType: null,
    age: null,
    sex: null,
    localization: null,
    line,
  });

  it('takes lesions whole, skips one that would overflow the class, and is reproducible', () => {
    const records = [
      record('a1', 'L1', 'nv', 2),
      record('a2', 'L1', 'nv', 3),
      record('a3', 'L1', 'nv', 4),
      record('b1', 'L2', 'nv', 5),
      record('c1', 'L3', 'nv', 6),
      record('d1', 'L4', 'mel', 7),
    ];
    const all = new Set(records.map((r) => r.imageId));
    const choice = chooseSample(records, all, { perClass: 2, seed: 7 });
    expect(choice.perClass.nv).toBe(2);
    expect(choice.imageIds).toEqual(['b1', 'c1', 'd1']);
    expect(chooseSample(records, all, { perClass: 2, seed: 7 })).toEqual(choice);
    // A lesion with a missing image is never taken.
    const partial = chooseSample(records, new Set(['a1', 'a2', 'b1', 'd1']), { perClass: 5, seed: 7 });
    expect(partial.imageIds).toEqual(['b1', 'd1']);
    expect(partial.incompleteLesions).toEqual(['L1', 'L3']);
  });

  it('refuses label files without lesion ids and lesions with two labels', () => {
    const noLesion = { ...record('x', 'L', 'nv', 2), lesionId: null };
    expect(() => chooseSample([noLesion], new Set(['x']), { perClass: 1, seed: 1 })).toThrow(/line 2/);
    const mixed = [record('x', 'L', 'nv', 2), record('y', 'L', 'mel', 3)];
    expect(() => chooseSample(mixed, new Set(['x', 'y']), { perClass: 1, seed: 1 })).toThrow(
      /line 3.*both nv and mel/,
    );
  });
});
