/**
 * The JSON index that sits next to each flat pixel file of the decoded-image cache (see
 * src/worker/cache/opfs-cache.ts). Entry i of `entries` is the image stored at byte offset i·bytesPerImage of the
 * pixel file. The index also carries everything needed to restore the dataset after a reload without a new
 * drop: the parsed metadata (so the EDA comes back), the match report, and where the data came from.
 *
 * An index is only ever written after every pixel of its file is written and flushed, and it says so
 * (`complete: true`); `parseCacheIndex` rejects anything else, so a cancelled or crashed run can never pass for
 * a cache.
 */
import { DX, dxIndex, isDx, type Dx } from './dx.ts';
import { IMAGE_SIZES, type ImageSize, type LesionRecord, type MatchReport, type Metadata } from './types.ts';
import { RESIZE_MODE, type ResizeMode } from './resize.ts';

export const CACHE_INDEX_VERSION = 1;
/** The cache stores RGB, 8 bits per channel. */
export const CACHE_CHANNELS = 3;

export interface CacheEntry {
  imageId: string;
  /** Index into `metadata.records`. */
  row: number;
  /** Class index (alphabetical DX order, as Keras assigns it). */
  label: number;
  dx: Dx;
  lesionId: string | null;
}

/** A dropped file the cache was built from, for "restored from …" messages. */
export interface CacheSource {
  name: string;
  size: number;
  lastModified: number;
  /** The same-origin URL the file was opened from (the sample, a pack); absent for a dropped file. */
  url?: string;
}

export interface CacheIndex {
  version: typeof CACHE_INDEX_VERSION;
  complete: true;
  size: ImageSize;
  channels: typeof CACHE_CHANNELS;
  bytesPerImage: number;
  count: number;
  resize: ResizeMode;
  /** ISO 8601. */
  createdAt: string;
  /** Name of the pixel file in the cache directory. */
  pixelsFile: string;
  sources: CacheSource[];
  metadata: Metadata;
  match: MatchReport;
  entries: CacheEntry[];
}

/** A missing, partial, foreign or damaged index. The cache it describes is treated as absent. */
export class CacheIndexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CacheIndexError';
  }
}

export function bytesPerImage(size: ImageSize): number {
  return size * size * CACHE_CHANNELS;
}

/** File names of one resolution's cache. The pixel file is written under `partial` and renamed when done. */
export function cacheFileNames(size: ImageSize): { pixels: string; partial: string; index: string } {
  return { pixels: `pixels-${size}.rgb`, partial: `pixels-${size}.rgb.partial`, index: `index-${size}.json` };
}

export function isImageSize(value: unknown): value is ImageSize {
  return typeof value === 'number' && (IMAGE_SIZES as readonly number[]).includes(value);
}

/**
 * The index for caching `records` (already matched to images, in cache order) at `size`. `metadata.records` must
 * contain each record object (rows are found by identity, as matchImages returns the metadata's own records).
 */
export function buildCacheIndex(options: {
  size: ImageSize;
  metadata: Metadata;
  match: MatchReport;
  records: readonly LesionRecord[];
  sources: CacheSource[];
  createdAt: Date;
}): CacheIndex {
  const { size, metadata, match, records, sources, createdAt } = options;
  const rowOf = new Map<LesionRecord, number>(metadata.records.map((r, i) => [r, i]));
  const entries = records.map((record): CacheEntry => {
    const row = rowOf.get(record);
    if (row === undefined) throw new Error(`record ${record.imageId} is not one of the metadata's records`);
    return {
      imageId: record.imageId,
      row,
      label: dxIndex(record.dx),
      dx: record.dx,
      lesionId: record.lesionId,
    };
  });
  const names = cacheFileNames(size);
  return {
    version: CACHE_INDEX_VERSION,
    complete: true,
    size,
    channels: CACHE_CHANNELS,
    bytesPerImage: bytesPerImage(size),
    count: entries.length,
    resize: RESIZE_MODE,
    createdAt: createdAt.toISOString(),
    pixelsFile: names.pixels,
    sources,
    metadata,
    match,
    entries,
  };
}

export function serializeCacheIndex(index: CacheIndex): string {
  return JSON.stringify(index);
}

function fail(message: string): never {
  throw new CacheIndexError(message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringOrNull(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

function checkRecord(value: unknown, i: number): asserts value is LesionRecord {
  if (!isRecord(value)) fail(`metadata record ${i} is not an object`);
  if (typeof value.imageId !== 'string' || value.imageId === '') fail(`metadata record ${i} has no imageId`);
  if (typeof value.dx !== 'string' || !isDx(value.dx)) fail(`metadata record ${i} has an unknown dx`);
  if (!isStringOrNull(value.lesionId) || !isStringOrNull(value.dxType))
    fail(`metadata record ${i} is malformed`);
  if (!isStringOrNull(value.sex) || !isStringOrNull(value.localization))
    fail(`metadata record ${i} is malformed`);
  if (value.age !== null && typeof value.age !== 'number') fail(`metadata record ${i} has a non-numeric age`);
  if (typeof value.line !== 'number') fail(`metadata record ${i} has no line number`);
}

function checkMetadata(value: unknown): asserts value is Metadata {
  if (!isRecord(value)) fail('the index has no metadata');
  if (typeof value.fileName !== 'string') fail('the metadata has no file name');
  if (value.format !== 'ham10000' && value.format !== 'isic2018-onehot')
    fail('the metadata format is unknown');
  if (!Array.isArray(value.records)) fail('the metadata has no records');
  for (const key of ['columns', 'extraColumns', 'warnings'] as const) {
    const list = value[key];
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string'))
      fail(`the metadata's ${key} are malformed`);
  }
  if (typeof value.hasLesionIds !== 'boolean') fail('the metadata is malformed (hasLesionIds)');
  value.records.forEach(checkRecord);
}

function checkMatch(value: unknown): asserts value is MatchReport {
  if (!isRecord(value)) fail('the index has no match report');
  for (const key of ['matched', 'rowsWithoutImage', 'imagesWithoutRow', 'duplicatesSkipped'] as const) {
    if (typeof value[key] !== 'number') fail(`the match report's ${key} is missing`);
  }
  for (const key of ['rowsWithoutImageIds', 'imagesWithoutRowIds'] as const) {
    const list = value[key];
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string'))
      fail(`the match report's ${key} is malformed`);
  }
}

/**
 * Parses and fully validates an index. `expectedSize`, when given, must be the index's size (the file name
 * says which resolution it should be). Throws CacheIndexError with a reason.
 */
export function parseCacheIndex(text: string, expectedSize?: ImageSize): CacheIndex {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail('the index is not valid JSON (an interrupted write?)');
  }
  if (!isRecord(value)) fail('the index is not a JSON object');
  if (value.version !== CACHE_INDEX_VERSION)
    fail(`the index has version ${String(value.version)}, not ${CACHE_INDEX_VERSION}`);
  if (value.complete !== true) fail('the index does not describe a complete cache');
  if (!isImageSize(value.size)) fail(`the index has an unsupported size ${String(value.size)}`);
  if (expectedSize !== undefined && value.size !== expectedSize) {
    fail(`the index is for ${value.size} px, expected ${expectedSize} px`);
  }
  if (value.channels !== CACHE_CHANNELS) fail('the index is not for RGB pixels');
  if (value.bytesPerImage !== bytesPerImage(value.size)) fail('the index has a wrong bytesPerImage');
  if (value.resize !== RESIZE_MODE) fail(`the index was made with resize mode ${String(value.resize)}`);
  if (typeof value.createdAt !== 'string' || Number.isNaN(Date.parse(value.createdAt)))
    fail('createdAt is malformed');
  if (value.pixelsFile !== cacheFileNames(value.size).pixels) fail('the index names another pixel file');
  if (!Array.isArray(value.sources)) fail('the index has no sources');
  for (const s of value.sources as unknown[]) {
    if (
      !isRecord(s) ||
      typeof s.name !== 'string' ||
      typeof s.size !== 'number' ||
      typeof s.lastModified !== 'number' ||
      (s.url !== undefined && typeof s.url !== 'string')
    ) {
      fail('a source of the index is malformed');
    }
  }
  checkMetadata(value.metadata);
  checkMatch(value.match);
  if (!Array.isArray(value.entries)) fail('the index has no entries');
  if (value.count !== value.entries.length)
    fail(`the index counts ${String(value.count)} images but lists ${value.entries.length}`);
  const records = value.metadata.records;
  const seen = new Set<string>();
  value.entries.forEach((entry: unknown, i: number) => {
    if (!isRecord(entry)) fail(`entry ${i} is not an object`);
    const { imageId, row, label, dx, lesionId } = entry;
    if (typeof imageId !== 'string') fail(`entry ${i} has no imageId`);
    if (seen.has(imageId)) fail(`entry ${i} repeats image ${imageId}`);
    seen.add(imageId);
    if (typeof row !== 'number' || !Number.isInteger(row) || row < 0 || row >= records.length) {
      fail(`entry ${i} (${imageId}) has row ${String(row)} outside the metadata`);
    }
    const record = records[row] as LesionRecord;
    if (record.imageId !== imageId)
      fail(`entry ${i} (${imageId}) points at row ${row}, which is ${record.imageId}`);
    if (dx !== record.dx || label !== DX.indexOf(record.dx))
      fail(`entry ${i} (${imageId}) has a wrong label`);
    if (lesionId !== record.lesionId) fail(`entry ${i} (${imageId}) has a wrong lesion id`);
  });
  return value as unknown as CacheIndex;
}

/** Throws unless the pixel file holds exactly the index's images (a truncated or foreign file is no cache). */
export function checkPixelFileSize(index: CacheIndex, byteLength: number): void {
  const expected = index.count * index.bytesPerImage;
  if (byteLength !== expected) {
    fail(
      `the pixel file holds ${byteLength} bytes, expected ${expected} (${index.count} images of ${index.size} px)`,
    );
  }
}

/** Bytes a cache of `count` images at `size` needs: the pixel file plus room for the index (≈ 300 B per image). */
export function cacheBytesNeeded(size: ImageSize, count: number): number {
  return count * bytesPerImage(size) + 2_000_000 + count * 400;
}

/**
 * Compares what a cache needs with navigator.storage.estimate()'s answer: null when it fits (or the browser
 * does not say), else the shortfall for the "needs X MB, Y MB available" message.
 */
export function quotaShortfall(
  neededBytes: number,
  estimate: { quota?: number; usage?: number } | undefined,
): { neededBytes: number; availableBytes: number } | null {
  if (estimate?.quota === undefined) return null;
  const availableBytes = Math.max(0, estimate.quota - (estimate.usage ?? 0));
  return neededBytes > availableBytes ? { neededBytes, availableBytes } : null;
}

/** Whole megabytes, rounded up, for quota messages. */
export function toMegabytes(bytes: number): number {
  return Math.ceil(bytes / 1_000_000);
}
