/**
 * The steps shared by `cli pack` and `cli sample`: list and match the inputs with the core's rules, then write the
 * metadata CSV (its bytes as given) and the images into a PackWriter, downscaled with the core's resize when larger
 * than the pack's size, byte for byte otherwise.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { decodeText } from '../../lib/data/listing.ts';
import { describeMatch, matchImages, type MatchedImage, type MatchResult } from '../../lib/data/match.ts';
import { parseMetadata } from '../../lib/data/metadata.ts';
import { jpegSize } from '../../lib/data/jpeg-size.ts';
import { packedSize, packImagePath } from '../../lib/data/pack.ts';
import type { Metadata } from '../../lib/data/types.ts';
import { listImages } from './images.ts';
import { DownscalePool } from './pack-pool.ts';
import type { PackWriter } from './pack-writer.ts';

export interface PackInputs {
  csvName: string;
  /** The CSV's bytes exactly as on disk (BOM, line endings and all), written into the pack unchanged. */
  csvBytes: Uint8Array;
  metadata: Metadata;
  match: MatchResult;
}

/** Reads and parses the CSV, lists the images (a folder or a zip) and matches them, as the app would. */
export async function readPackInputs(imagesPath: string, csvPath: string): Promise<PackInputs> {
  let csvBytes: Uint8Array;
  try {
    csvBytes = new Uint8Array(await readFile(csvPath));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${csvPath}: ${code === 'ENOENT' ? 'no such file' : String(error)}`, {
      cause: error,
    });
  }
  const csvName = basename(csvPath);
  const metadata = parseMetadata(decodeText(csvBytes), csvName);
  const { listing } = await listImages(imagesPath);
  const match = matchImages(metadata.records, listing);
  process.stderr.write(`${imagesPath} + ${csvName}: ${describeMatch(match.report)}\n`);
  if (match.matched.length === 0) {
    throw new Error(`no image in ${imagesPath} matches a row of ${csvName}: nothing to pack`);
  }
  return { csvName, csvBytes, metadata, match };
}

export interface SkippedFile {
  image_id: string;
  location: string;
  reason: string;
}

export interface PackedImages {
  resized: number;
  copied: number;
  skipped: SkippedFile[];
}

export interface PackImagesOptions {
  /** Longer side in pixels; larger images are downscaled to it. Null: every image is copied as it is. */
  size: number | null;
  /** JPEG quality of re-encoded images. */
  quality: number;
  /** Shrinks the images that need it (on several cores); without one, in this thread. */
  pool?: DownscalePool;
  onProgress?: (done: number, total: number) => void;
}

type Outcome = { kind: 'copied' | 'resized'; bytes: Uint8Array } | { kind: 'failed'; error: unknown };

/**
 * Writes `images` (in this order) under the pack's image folder. A file that is not a readable JPEG is skipped and
 * reported, not fatal, as in the CLI's training input; `size: null` (the sample) makes it fatal instead, since a
 * sample must hold exactly what was chosen. Reads and shrinking run ahead of the writes in a bounded window; the
 * zip's order is the order given, whatever finishes first.
 */
export async function packImages(
  writer: PackWriter,
  images: readonly MatchedImage[],
  options: PackImagesOptions,
): Promise<PackedImages> {
  const result: PackedImages = { resized: 0, copied: 0, skipped: [] };
  const pool = options.pool ?? new DownscalePool(1);
  const window = Math.max(8, 2 * pool.jobs);
  const outcomes: Array<Promise<Outcome> | undefined> = [];
  const start = (i: number) => {
    outcomes[i] = (async (): Promise<Outcome> => {
      try {
        const bytes = await (images[i] as MatchedImage).image.read();
        const found = jpegSize(bytes);
        if (found === null) throw new Error('not a JPEG file (a pack holds JPEGs only)');
        const target = options.size === null ? null : packedSize(found.width, found.height, options.size);
        if (target === null) return { kind: 'copied', bytes };
        return { kind: 'resized', bytes: await pool.downscale(bytes, target, options.quality) };
      } catch (error) {
        return { kind: 'failed', error };
      }
    })();
  };
  for (let i = 0; i < Math.min(window, images.length); i++) start(i);
  for (let i = 0; i < images.length; i++) {
    const outcome = await (outcomes[i] as Promise<Outcome>);
    outcomes[i] = undefined;
    if (i + window < images.length) start(i + window);
    const { record, image } = images[i] as MatchedImage;
    if (outcome.kind === 'failed') {
      const reason = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      if (options.size === null) throw new Error(`${image.location}: ${reason}`, { cause: outcome.error });
      result.skipped.push({ image_id: record.imageId, location: image.location, reason });
    } else {
      writer.add(packImagePath(record.imageId), outcome.bytes);
      result[outcome.kind]++;
    }
    options.onProgress?.(i + 1, images.length);
  }
  return result;
}
