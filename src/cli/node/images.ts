/**
 * Images for headless training: a folder or a zip is listed with the core's listing rules (one copy per image_id,
 * Kaggle's duplicate folders and macOS debris skipped), matched to the metadata rows, optionally cut down to a
 * stratified subset, then decoded with jpeg-js and resized to the model's square input into a MemoryImageDataset.
 *
 * The resize is the core's `resizeRgb` with the Catmull–Rom filter, which reproduces what the browser's decode
 * workers produce with createImageBitmap(…, {resizeQuality: 'high'}), so the CLI trains on the same pixels as the
 * app (squashed to a square, never cropped: see RESIZE_NOTE).
 */
import { openAsBlob } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import jpeg from 'jpeg-js';
import { listZip } from '../../lib/data/archive.ts';
import { DX, dxIndex } from '../../lib/data/dx.ts';
import { listLooseFiles, type LooseFile } from '../../lib/data/listing.ts';
import type { MatchedImage } from '../../lib/data/match.ts';
import { resizeRgb } from '../../lib/data/resize.ts';
import type { Listing } from '../../lib/data/types.ts';
import { createRandom } from '../../lib/random.ts';
import { MemoryImageDataset, type ImageDataset } from '../../lib/train/dataset.ts';

export type ImageContainer = 'folder' | 'zip';

/** Lists a folder (recursively) or a zip file of HAM10000 images and metadata. */
export async function listImages(path: string): Promise<{ listing: Listing; container: ImageContainer }> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file or folder' : String(error)}`, {
      cause: error,
    });
  }
  if (info.isDirectory())
    return { listing: listLooseFiles(await looseFilesUnder(path)), container: 'folder' };
  return { listing: await listZip(await openAsBlob(path), basename(path)), container: 'zip' };
}

async function looseFilesUnder(root: string): Promise<LooseFile[]> {
  const files: LooseFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(full);
      } else if (entry.isFile()) {
        const { size } = await stat(full);
        files.push({
          name: entry.name,
          path: relative(root, full).split(sep).join('/'),
          size,
          bytes: async () => new Uint8Array(await readFile(full)),
        });
      }
    }
  };
  await walk(root);
  return files;
}

/**
 * `limit` of the matched images, seeded: every class first gets an equal share of half the limit (all of its
 * images when it has fewer), the rest is shared in proportion to the class sizes. The rare classes of HAM10000
 * (df, vasc: about 1 % each) would otherwise get two or three images in a few hundred, too few to appear in every
 * split. The result keeps the order of `matched` (the metadata's order).
 */
export function stratifiedSubset(
  matched: readonly MatchedImage[],
  limit: number,
  seed: number,
): MatchedImage[] {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`the limit must be a whole number ≥ 1; got ${limit}`);
  if (limit >= matched.length) return [...matched];
  const byClass = DX.map((dx) => matched.filter((m) => m.record.dx === dx));
  const present = byClass.filter((c) => c.length > 0).length;
  const quota = byClass.map((c) => Math.min(c.length, Math.ceil(limit / (2 * present))));
  let left = limit - quota.reduce((a, b) => a + b, 0);
  // The remainder in proportion to what each class still has, by largest remainder; never more than it has.
  while (left > 0) {
    const spare = byClass.map((c, i) => c.length - quota[i]!);
    const total = spare.reduce((a, b) => a + b, 0);
    if (total === 0) break;
    const raw = spare.map((s) => (s / total) * left);
    const add = raw.map((r, i) => Math.min(spare[i]!, Math.floor(r)));
    let given = add.reduce((a, b) => a + b, 0);
    const order = raw
      .map((r, i) => [r - Math.floor(r), i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (const [, i] of order) {
      if (given >= left) break;
      if (add[i]! < spare[i]!) {
        add[i]! += 1;
        given++;
      }
    }
    add.forEach((a, i) => (quota[i]! += a));
    left -= given;
    if (given === 0) break;
  }
  const random = createRandom(seed);
  const chosen = new Set<MatchedImage>();
  byClass.forEach((images, i) => {
    const ids = random.fork().shuffle([...images]);
    for (const m of ids.slice(0, quota[i])) chosen.add(m);
  });
  return matched.filter((m) => chosen.has(m));
}

export interface SkippedImage {
  image_id: string;
  location: string;
  reason: string;
}

export interface DecodedImages {
  dataset: MemoryImageDataset;
  /** The images in `dataset`, in its order. */
  images: MatchedImage[];
  /** Images that could not be read or decoded: left out, with the reason. */
  skipped: SkippedImage[];
  seconds: number;
}

export interface DecodeOptions {
  /** Square edge of the dataset (the model's input size). */
  size: number;
  /** Called every `progressEvery` images and at the end. */
  onProgress?: (done: number, total: number, seconds: number) => void;
  progressEvery?: number;
  /** Reads in flight while decoding (overlaps file/zip reads with decoding). Default 8. */
  readAhead?: number;
}

/** Decodes one JPEG and resizes it to size×size RGB. */
export function decodeToSquare(bytes: Uint8Array, size: number): Uint8Array {
  const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
  return resizeRgb(
    { width: decoded.width, height: decoded.height, data: decoded.data, channels: 3 },
    size,
    size,
    'catmull-rom',
  ).data;
}

function looksLikeJpeg(bytes: Uint8Array): boolean {
  return bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/**
 * A dataset over `matched` that decodes an image only when a batch asks for it (nothing is kept): for runs whose
 * features are already known, so that images are never read unless something needs their pixels.
 */
export function lazyDataset(matched: readonly MatchedImage[], size: number): ImageDataset {
  const bytes = size * size * 3;
  return {
    count: matched.length,
    size,
    labels: Int32Array.from(matched, (m) => dxIndex(m.record.dx)),
    async readBatch(indices) {
      const out = new Uint8Array(indices.length * bytes);
      for (const [i, index] of indices.entries()) {
        const m = matched[index];
        if (!m) throw new Error(`image index ${index} is outside the dataset (0..${matched.length - 1})`);
        out.set(decodeToSquare(await m.image.read(), size), i * bytes);
      }
      return out;
    },
  };
}

/**
 * Decodes `matched` into one MemoryImageDataset of `size`×`size` images labelled by dx (DX order). An image that
 * cannot be read or is not a decodable JPEG is skipped and reported, not fatal: one bad file in 10,000 should not
 * cost a whole run.
 */
export async function decodeImages(
  matched: readonly MatchedImage[],
  options: DecodeOptions,
): Promise<DecodedImages> {
  const t0 = performance.now();
  const { size } = options;
  const bytesPerImage = size * size * 3;
  const pixels = new Uint8Array(matched.length * bytesPerImage);
  const images: MatchedImage[] = [];
  const labels: number[] = [];
  const skipped: SkippedImage[] = [];
  const readAhead = Math.max(1, options.readAhead ?? 8);
  const every = options.progressEvery ?? 500;
  const reads: Promise<Uint8Array>[] = [];
  const startRead = (i: number): void => {
    const read = matched[i]!.image.read();
    read.catch(() => undefined);
    reads[i] = read;
  };
  for (let i = 0; i < Math.min(readAhead, matched.length); i++) startRead(i);
  for (let i = 0; i < matched.length; i++) {
    const m = matched[i]!;
    if (i + readAhead < matched.length) startRead(i + readAhead);
    try {
      const bytes = await reads[i]!;
      if (!looksLikeJpeg(bytes)) throw new Error('not a JPEG file (the CLI decodes JPEG only)');
      pixels.set(decodeToSquare(bytes, size), images.length * bytesPerImage);
      images.push(m);
      labels.push(dxIndex(m.record.dx));
    } catch (error) {
      skipped.push({
        image_id: m.record.imageId,
        location: m.image.location,
        reason: error instanceof Error ? error.message : String(error),
      });
    } finally {
      delete reads[i];
    }
    if (options.onProgress && ((i + 1) % every === 0 || i + 1 === matched.length)) {
      options.onProgress(i + 1, matched.length, (performance.now() - t0) / 1000);
    }
  }
  const dataset = new MemoryImageDataset(size, pixels.subarray(0, images.length * bytesPerImage), labels);
  return { dataset, images, skipped, seconds: (performance.now() - t0) / 1000 };
}
