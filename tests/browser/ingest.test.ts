/**
 * The ingest pipeline, for real, in headless Chromium: a Kaggle-shaped zip of the 240 real 600x450 originals
 * (built in Node in a temp dir, handed to a file input by path) goes through the ingest worker, the decode
 * workers and OPFS; a new client restores it; cancel stops; a bad CSV reports its line and column; a quota too
 * small gives a clear error; forget clears everything.
 *
 * Reference for the pixel check: the JPEG decoded by jpeg-js (an independent JavaScript decoder, not the
 * browser's libjpeg-turbo) and squashed 600x450 → 224x224 by resizeRgb's 'catmull-rom' filter
 * (src/lib/data/resize.ts), the kernel Chromium's resizeQuality 'high' uses and the one the decode workers apply
 * to JPEGs themselves (squashRgba, in fixed point: unit-tested within 1 level of resizeRgb on < 1 % of samples).
 * What remains is the two decoders'
 * IDCT and chroma-upsampling differences. A centre-cropped reference differs far more, which pins the geometry
 * (squash, not crop). Tolerance and measured values: TOLERANCE at the end of this file.
 */
import { pickFiles } from '../helpers/pick-files.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cdp, commands } from 'vitest/browser';
import jpeg from 'jpeg-js';
import type {} from '../helpers/ingest-commands.ts';
import type { IngestFixture } from '../helpers/ingest-commands.ts';
import { pixelDifference, resizeRgb, RESIZE_MODE } from '../../src/lib/data/resize.ts';
import { DX } from '../../src/lib/data/dx.ts';
import {
  IngestClient,
  IngestFailure,
  type IngestEvent,
  type StageProgress,
} from '../../src/worker/ingest-client.ts';
import { CACHE_DIRECTORY, openImageCache } from '../../src/worker/cache/opfs-cache.ts';

let fixture: IngestFixture;
const clients: IngestClient[] = [];

function client(): IngestClient {
  const c = new IngestClient();
  clients.push(c);
  return c;
}

function record(c: IngestClient): IngestEvent[] {
  const events: IngestEvent[] = [];
  c.on((e) => events.push(e));
  return events;
}

async function opfsNames(): Promise<string[]> {
  const root = await navigator.storage.getDirectory();
  try {
    const dir = await root.getDirectoryHandle(CACHE_DIRECTORY);
    const names: string[] = [];
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    return names.sort();
  } catch {
    return [];
  }
}

async function failure(promise: Promise<unknown>): Promise<IngestFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof IngestFailure) return error;
    throw error;
  }
  throw new Error('expected the command to fail');
}

beforeAll(async () => {
  fixture = await commands.buildIngestFixture();
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(CACHE_DIRECTORY, { recursive: true }).catch(() => {});
});

afterAll(async () => {
  for (const c of clients) c.dispose();
  if (fixture) await commands.removeIngestFixture(fixture.dir);
});

describe('ingest pipeline (workers, decoding, OPFS cache)', () => {
  let createdAt = '';

  it('lists the Kaggle-shaped zip, parses and matches, and caches every matched image at 224 px', async () => {
    const ingest = client();
    const events = record(ingest);
    const [zip] = await pickFiles([fixture.zipPath]);
    const snapshot = await ingest.addFiles([zip as File]);

    expect(snapshot.errors).toEqual([]);
    // 240 images in HAM10000_images_part_N/ and again in ham10000_images_part_N/, the CSV, 4 hmnist files.
    expect(snapshot.listing).toMatchObject({ entries: fixture.zipEntries, images: 240, duplicates: 240 });
    expect(snapshot.metadataLocation).toBe('skin-cancer-mnist-ham10000.zip:HAM10000_metadata.csv');
    expect(snapshot.rows).toBe(fixture.metadataRows);
    expect(snapshot.match).toMatchObject({
      matched: 240,
      rowsWithoutImage: fixture.metadataRows - 240,
      imagesWithoutRow: 0,
      duplicatesSkipped: 240,
    });
    const metadata = events.find((e) => e.type === 'metadata');
    expect(metadata?.type === 'metadata' && metadata.summary.rows).toBe(10015);
    expect(metadata?.type === 'metadata' && metadata.summary.classes.nv.count).toBe(6705);
    const match = events.find((e) => e.type === 'match');
    expect(match?.type === 'match' && match.description).toMatch(
      /^240 images matched; 9,775 rows without an image/,
    );

    const started = performance.now();
    const cache = await ingest.startCaching(224);
    const seconds = (performance.now() - started) / 1000;
    expect(cache).toMatchObject({ size: 224, count: 240, bytes: 240 * 224 * 224 * 3 });
    createdAt = cache.createdAt;
    expect(await opfsNames()).toEqual(['index-224.json', 'pixels-224.rgb']);

    // Progress: every stage reports counts, a rate and an ETA, ends complete, and posts stay ≤ 10 a second
    // (plus the forced posts at the start and end of each stage).
    const progress = events.filter((e) => e.type === 'progress');
    const last = progress.at(-1);
    expect(last?.type).toBe('progress');
    const stages = (last as { stages: StageProgress[] }).stages;
    expect(stages.map((s) => s.stage)).toEqual(['reading', 'decoding', 'caching']);
    for (const s of stages) expect(s).toMatchObject({ done: 240, total: 240, finished: true, etaSeconds: 0 });
    for (const s of stages) expect(s.rate).toBeGreaterThan(0);
    const running = progress
      .flatMap((e) => (e.type === 'progress' ? e.stages : []))
      .filter((s) => !s.finished);
    expect(running.some((s) => s.etaSeconds !== null && s.etaSeconds > 0 && s.done < 240)).toBe(true);
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(seconds * 10) + 12);
  });

  it('caches pixels that match a reference decode (jpeg-js + Catmull-Rom, squashed) within tolerance', async () => {
    const cache = await openImageCache(224);
    try {
      expect(cache.index.resize).toBe(RESIZE_MODE);
      const byId = new Map(fixture.originals.map((o) => [o.imageId, o]));
      // The index keeps image_id → row, label, lesion; every entry is one of the 240 originals, once.
      expect(new Set(cache.index.entries.map((e) => e.imageId)).size).toBe(240);
      for (const entry of cache.index.entries) {
        const original = byId.get(entry.imageId);
        expect(original, entry.imageId).toBeDefined();
        expect(entry.dx).toBe(original?.dx);
        expect(entry.label).toBe(DX.indexOf(entry.dx));
        expect(entry.lesionId).toBe(original?.lesionId);
        expect(cache.index.metadata.records[entry.row]?.imageId).toBe(entry.imageId);
      }

      // Two images of each class, spread over the cache.
      const picks: number[] = [];
      for (const dx of DX) {
        const ofClass = cache.index.entries.flatMap((e, i) => (e.dx === dx ? [i] : []));
        picks.push(ofClass[0] as number, ofClass[ofClass.length - 1] as number);
      }
      const files = await pickFiles(picks.map((i) => byId.get(cache.index.entries[i]!.imageId)!.path));
      const pixels = await cache.readImages(picks);
      let sumMean = 0;
      let worstMean = 0;
      let worstMax = 0;
      let cropRatioMin = Infinity;
      for (const [j, i] of picks.entries()) {
        const file = files[j] as File;
        expect(file.name).toBe(`${cache.index.entries[i]!.imageId}.jpg`);
        const decoded = jpeg.decode(new Uint8Array(await file.arrayBuffer()), {
          useTArray: true,
          formatAsRGBA: false,
        });
        expect([decoded.width, decoded.height]).toEqual([600, 450]);
        const source = { width: 600, height: 450, data: decoded.data, channels: 3 as const };
        const reference = resizeRgb(source, 224, 224, 'catmull-rom');
        const cached = pixels.subarray(j * cache.bytesPerImage, (j + 1) * cache.bytesPerImage);
        const diff = pixelDifference(cached, reference.data);
        sumMean += diff.meanAbs;
        worstMean = Math.max(worstMean, diff.meanAbs);
        worstMax = Math.max(worstMax, diff.maxAbs);
        // The same image centre-cropped to 450x450 first: what the cache must NOT be.
        const crop = new Uint8Array(450 * 450 * 3);
        for (let y = 0; y < 450; y++) {
          crop.set(decoded.data.subarray((y * 600 + 75) * 3, (y * 600 + 525) * 3), y * 450 * 3);
        }
        const cropped = resizeRgb(
          { width: 450, height: 450, data: crop, channels: 3 },
          224,
          224,
          'catmull-rom',
        );
        cropRatioMin = Math.min(cropRatioMin, pixelDifference(cached, cropped.data).meanAbs / diff.meanAbs);
      }
      const mean = sumMean / picks.length;
      console.info(
        `cache vs reference over ${picks.length} images: mean abs diff ${mean.toFixed(3)} (worst image ` +
          `${worstMean.toFixed(3)}), max abs diff ${worstMax}; a centre-crop reference is ≥ ` +
          `${cropRatioMin.toFixed(1)}x further off`,
      );
      expect(mean).toBeLessThanOrEqual(TOLERANCE.meanAbs);
      expect(worstMean).toBeLessThanOrEqual(TOLERANCE.worstImageMeanAbs);
      expect(worstMax).toBeLessThanOrEqual(TOLERANCE.maxAbs);
      expect(cropRatioMin).toBeGreaterThan(5);
    } finally {
      cache.close();
    }
  });

  it('restores the dataset in a new client (a reload) from OPFS alone: metadata, EDA, match report, cache', async () => {
    const ingest = client();
    const events = record(ingest);
    const snapshot = await ingest.restore();
    expect(snapshot).toMatchObject({ restored: true, rows: 10015, matched: 240, files: [] });
    expect(snapshot?.cache).toMatchObject({ size: 224, count: 240, createdAt });
    expect(snapshot?.cache?.sources.map((s) => s.name)).toEqual(['skin-cancer-mnist-ham10000.zip']);
    const metadata = events.find((e) => e.type === 'metadata');
    expect(metadata).toMatchObject({ restored: true, location: 'HAM10000_metadata.csv' });
    expect(metadata?.type === 'metadata' && metadata.summary.lesions).toBe(7470);
    expect(metadata?.type === 'metadata' && metadata.summary.age.count).toBe(9958);
    expect(events.find((e) => e.type === 'match')).toMatchObject({
      restored: true,
      report: { matched: 240 },
    });
    expect(events.find((e) => e.type === 'cache')).toMatchObject({ cache: { size: 224, count: 240 } });
    expect(await ingest.caches()).toMatchObject([{ size: 224, count: 240, createdAt }]);

    // The sample grid reads the cache in the worker (shared read-only SyncAccessHandle); it must see the same
    // pixels as a File read on this thread.
    const samples = await ingest.samples(2);
    expect(samples).toHaveLength(14);
    expect(new Set(samples.map((s) => s.dx))).toEqual(new Set(DX));
    const cache = await openImageCache(224);
    try {
      for (const sample of samples) {
        expect([sample.width, sample.height, sample.rgba.length]).toEqual([224, 224, 224 * 224 * 4]);
        const i = cache.index.entries.findIndex((e) => e.imageId === sample.imageId);
        const rgb = await cache.readImages([i]);
        for (let p = 0; p < 224 * 224; p += 997) {
          expect([...sample.rgba.subarray(p * 4, p * 4 + 4)]).toEqual([
            ...rgb.subarray(p * 3, p * 3 + 3),
            255,
          ]);
        }
      }
    } finally {
      cache.close();
    }
  });

  it('takes Dataverse part zips and a .tab dropped one after another, and a folder of loose JPEGs', async () => {
    const ingest = client();
    const [part1, part2, tab] = await pickFiles([...fixture.dataverse.zipPaths, fixture.dataverse.tabPath]);
    const first = await ingest.addFiles([part1 as File]);
    expect(first).toMatchObject({
      errors: [],
      rows: 0,
      match: null,
      listing: { images: expect.any(Number) },
    });
    await ingest.addFiles([part2 as File]);
    const last = await ingest.addFiles([tab as File]);
    expect(last).toMatchObject({
      errors: [],
      metadataLocation: 'HAM10000_metadata.tab',
      rows: 10015,
      matched: 240,
      listing: { entries: 241, images: 240, duplicates: 0 },
    });
    expect(last.files.map((f) => f.kind)).toEqual(['zip', 'zip', 'metadata']);

    const folder = client();
    const loose = await pickFiles([...fixture.originals.map((o) => o.path), fixture.dataverse.tabPath]);
    const snapshot = await folder.addFiles(loose);
    expect(snapshot).toMatchObject({
      errors: [],
      rows: 10015,
      matched: 240,
      listing: { entries: 241, images: 240 },
    });
  });

  it('reports a file that is not a zip by name, and still uses the good files of the same drop', async () => {
    const ingest = client();
    const [broken, zip] = await pickFiles([fixture.brokenZipPath, fixture.zipPath]);
    const snapshot = await ingest.addFiles([broken as File, zip as File]);
    expect(snapshot.errors).toHaveLength(1);
    expect(snapshot.errors[0]).toMatchObject({ code: 'archive', fileName: 'broken.zip' });
    expect(snapshot.errors[0]?.message).toContain('broken.zip');
    expect(snapshot).toMatchObject({ rows: 10015, matched: 240 });
  });

  it('reports a bad CSV with its file, line and column, and keeps the worker and the cache', async () => {
    const ingest = client();
    const events = record(ingest);
    await ingest.restore();
    const [bad] = await pickFiles([fixture.badCsv.path]);
    const snapshot = await ingest.addFiles([bad as File]);
    expect(snapshot.errors).toHaveLength(1);
    expect(snapshot.errors[0]).toMatchObject({
      code: 'metadata',
      fileName: fixture.badCsv.name,
      line: fixture.badCsv.line,
      column: fixture.badCsv.column,
    });
    expect(snapshot.errors[0]?.message).toContain(fixture.badCsv.value);
    expect(snapshot.errors[0]?.message).toContain(`line ${fixture.badCsv.line}`);
    expect(events.filter((e) => e.type === 'error')).toMatchObject([{ error: { code: 'metadata' } }]);
    // The restored metadata stays in use, and the worker still works.
    expect(snapshot).toMatchObject({ restored: true, rows: 10015 });
    expect(await ingest.caches()).toMatchObject([{ size: 224, count: 240, createdAt }]);
    const [zip] = await pickFiles([fixture.zipPath]);
    const next = await ingest.addFiles([zip as File]);
    expect(next).toMatchObject({ errors: [], rows: 10015, matched: 240 });
  });

  it('cancel stops caching at once, leaves no partial file or index, and keeps the existing cache', async () => {
    const ingest = client();
    const events = record(ingest);
    const [zip] = await pickFiles([fixture.zipPath]);
    await ingest.addFiles([zip as File]);
    const started = new Promise<void>((resolve) => {
      ingest.on((e) => {
        if (e.type === 'progress' && e.stages.some((s) => s.stage === 'caching' && s.done >= 10)) resolve();
      });
    });
    const caching = ingest.startCaching(96);
    await started;
    expect(await opfsNames()).toContain('pixels-96.rgb.partial');
    expect(await ingest.cancel()).toBe(true);
    const error = await failure(caching);
    expect(error.error.code).toBe('cancelled');
    expect(events.some((e) => e.type === 'cancelled')).toBe(true);

    const progressAfter = events.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(events.slice(progressAfter).filter((e) => e.type === 'progress')).toEqual([]);
    const written = events
      .flatMap((e) => (e.type === 'progress' ? e.stages : []))
      .filter((s) => s.stage === 'caching')
      .at(-1);
    expect(written?.done).toBeLessThan(240);
    expect(await opfsNames()).toEqual(['index-224.json', 'pixels-224.rgb']);
    expect(await ingest.caches()).toMatchObject([{ size: 224, count: 240, createdAt }]);
  });

  it('reserves the space before decoding, and a quota error says how much is needed and available', async () => {
    const ingest = client();
    const events = record(ingest);
    const [zip] = await pickFiles([fixture.zipPath]);
    await ingest.addFiles([zip as File]);
    // Chromium enforces this override on writes, though navigator.storage.estimate() keeps reporting the real
    // quota: so this exercises the up-front reservation, the check that catches a disk fuller than estimated.
    const { usage = 0 } = await navigator.storage.estimate();
    const session = cdp();
    await session.send('Storage.overrideQuotaForOrigin', {
      origin: location.origin,
      quotaSize: usage + 5_000_000,
    });
    try {
      const error = await failure(ingest.startCaching(160));
      expect(error.error.code).toBe('quota');
      // 240 images of 160x160x3 bytes plus room for the index.
      const needed = Math.ceil((240 * 160 * 160 * 3 + 2_000_000 + 240 * 400) / 1_000_000);
      expect(error.error.neededMB).toBe(needed);
      expect(error.error.availableMB).toBeTypeOf('number');
      expect(error.message).toContain(`needs ${needed} MB`);
      expect(error.message).toContain(`reports ${error.error.availableMB} MB available`);
      expect(error.message).toContain('160 px cache already on this device, if any, is kept');
    } finally {
      await session.send('Storage.overrideQuotaForOrigin', { origin: location.origin });
    }
    // Nothing was decoded for nothing, and nothing was left behind.
    const decoding = events
      .flatMap((e) => (e.type === 'progress' ? e.stages : []))
      .filter((s) => s.stage === 'decoding');
    expect(decoding.every((s) => s.done === 0)).toBe(true);
    expect(await opfsNames()).toEqual(['index-224.json', 'pixels-224.rgb']);
  });

  it('names a damaged image entry, caches every other image, and matches the rest by row', async () => {
    const ingest = client();
    const events = record(ingest);
    const [zip] = await pickFiles([fixture.damagedZip.path]);
    const snapshot = await ingest.addFiles([zip as File]);
    expect(snapshot.errors).toEqual([]);
    expect(snapshot.matched).toBe(240);
    const cache = await ingest.startCaching(96);
    expect(cache.count).toBe(239);
    const errors = events.flatMap((e) => (e.type === 'error' ? [e.error] : []));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'archive',
      entry: fixture.damagedZip.entry,
      fileName: `skin-cancer-mnist-ham10000.zip:${fixture.damagedZip.entry}`,
    });
    expect(errors[0]?.message).toMatch(
      /^Could not read HAM10000_images_part_\d\/ISIC_\d{7}\.jpg from skin-cancer-mnist-ham10000\.zip \(/,
    );
    const opened = await openImageCache(96);
    try {
      const ids = opened.index.entries.map((e) => e.imageId);
      expect(ids).toHaveLength(239);
      expect(new Set(ids).size).toBe(239);
      expect(ids).not.toContain(fixture.damagedZip.imageId);
    } finally {
      opened.close();
    }
  });

  it('forget deletes every cache, and a reload then finds nothing to restore', async () => {
    const ingest = client();
    await ingest.restore();
    // 224 px from the first test, 96 px from the damaged archive's.
    expect(await ingest.forget()).toEqual([96, 224]);
    expect(await opfsNames()).toEqual([]);
    const fresh = client();
    expect(await fresh.restore()).toBeNull();
    expect(await fresh.caches()).toEqual([]);
    await expect(openImageCache()).rejects.toThrow(/No image cache/);
  });
});

/**
 * Pixel tolerance of the cache against the reference decode, in 8-bit levels (0–255), over 14 images (2 per
 * class). Measured on Chromium 156 (Debian bookworm): mean abs diff 0.50 over all images, worst image 0.54,
 * max abs diff 4 (jpeg-js vs libjpeg-turbo rounding) with the decode workers' ImageDecoder + squashRgba way (the
 * same with squashRgba in floats and in fixed point: 0.501 / 0.536 / 4); 0.52,
 * 0.55 and 4 with their fallback, createImageBitmap's own 'high' resize (which matches Catmull–Rom to ≤ 1 level).
 * The bounds leave room for another libjpeg-turbo build, not for a different geometry or filter: the area
 * filter instead of Catmull–Rom already gives ~1.1 mean / 68 max, a centre crop ≥ 5 mean.
 */
const TOLERANCE = { meanAbs: 1, worstImageMeanAbs: 1.5, maxAbs: 12 };
