/**
 * The steps shared by `cli pack` and `cli sample`: list and match the inputs with the core's rules, then write the
 * metadata CSV (its bytes as given) and the images into a PackWriter, downscaled with the core's resize when larger
 * than the pack's size, byte for byte otherwise.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import jpeg from 'jpeg-js';
import { decodeText } from '../../lib/data/listing.ts';
import { describeMatch, matchImages, type MatchedImage, type MatchResult } from '../../lib/data/match.ts';
import { parseMetadata } from '../../lib/data/metadata.ts';
import { jpegSize } from '../../lib/data/jpeg-size.ts';
import { packedSize, packImagePath } from '../../lib/data/pack.ts';
import { resizeRgb } from '../../lib/data/resize.ts';
import type { Metadata } from '../../lib/data/types.ts';
import { listImages } from './images.ts';
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
  /** Reads in flight while encoding. */
  readAhead?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Writes `images` (in this order) under the pack's image folder. A file that is not a readable JPEG is skipped and
 * reported, not fatal, as in the CLI's training input; `size: null` (the sample) makes it fatal instead, since a
 * sample must hold exactly what was chosen.
 */
export async function packImages(
  writer: PackWriter,
  images: readonly MatchedImage[],
  options: PackImagesOptions,
): Promise<PackedImages> {
  const result: PackedImages = { resized: 0, copied: 0, skipped: [] };
  const readAhead = Math.max(1, options.readAhead ?? 8);
  const reads: Array<Promise<Uint8Array> | undefined> = [];
  const startRead = (i: number) => {
    const read = (images[i] as MatchedImage).image.read();
    read.catch(() => undefined);
    reads[i] = read;
  };
  for (let i = 0; i < Math.min(readAhead, images.length); i++) startRead(i);
  for (let i = 0; i < images.length; i++) {
    if (i + readAhead < images.length) startRead(i + readAhead);
    const { record, image } = images[i] as MatchedImage;
    try {
      const bytes = await (reads[i] as Promise<Uint8Array>);
      const found = jpegSize(bytes);
      if (found === null) throw new Error('not a JPEG file (a pack holds JPEGs only)');
      const target = options.size === null ? null : packedSize(found.width, found.height, options.size);
      if (target === null) {
        writer.add(packImagePath(record.imageId), bytes);
        result.copied++;
      } else {
        writer.add(packImagePath(record.imageId), downscale(bytes, target, options.quality));
        result.resized++;
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (options.size === null) throw new Error(`${image.location}: ${reason}`, { cause: error });
      result.skipped.push({ image_id: record.imageId, location: image.location, reason });
    } finally {
      reads[i] = undefined;
    }
    options.onProgress?.(i + 1, images.length);
  }
  return result;
}

/** Decodes, shrinks with the core's area filter (no aliasing, a neutral reference) and re-encodes a JPEG. */
function downscale(
  bytes: Uint8Array,
  target: { width: number; height: number },
  quality: number,
): Uint8Array {
  const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
  const small = resizeRgb(
    { width: decoded.width, height: decoded.height, data: decoded.data, channels: 3 },
    target.width,
    target.height,
    'area',
  );
  // jpeg-js encodes from RGBA.
  const rgba = new Uint8Array(target.width * target.height * 4);
  for (let p = 0, q = 0; p < small.data.length; p += 3, q += 4) {
    rgba[q] = small.data[p] as number;
    rgba[q + 1] = small.data[p + 1] as number;
    rgba[q + 2] = small.data[p + 2] as number;
    rgba[q + 3] = 255;
  }
  return new Uint8Array(
    jpeg.encode({ width: target.width, height: target.height, data: rgba }, quality).data,
  );
}
