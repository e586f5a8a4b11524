/**
 * Packs: one zip holding a metadata CSV and downscaled JPEGs, small enough for a slow network (a workshop, the
 * public demo's sample), in a layout the app's ingest already reads like a drop: the CSV at the top and the
 * images in one folder (listing.ts classifies each entry by name; match.ts pairs them with the rows by image_id).
 *
 * What is pure lives here (the layout, the target size, the sample's choice); the zip is written in Node
 * (src/cli/node/pack-writer.ts) by `npm run -s cli -- pack` and `… sample`.
 */
import { DX, type Dx } from './dx.ts';
import { createRandom } from '../random.ts';
import type { LesionRecord } from './types.ts';

/** The folder of the images inside a pack. Mixed case on purpose: an all-lower-case folder loses to any other
 * copy of an image (Kaggle's duplicate folders, see listing.ts), which must never happen to a pack's images. */
export const PACK_IMAGE_FOLDER = 'HAM10000_images';

/** The default longer side of a pack's images: the largest cache size, so every cache size can be made from it. */
export const DEFAULT_PACK_SIZE = 224;

/** The path of an image inside a pack. */
export function packImagePath(imageId: string): string {
  return `${PACK_IMAGE_FOLDER}/${imageId}.jpg`;
}

/**
 * The size of an image once its longer side is at most `size`, aspect ratio kept (never upscaled), or null when
 * it is already that small and is kept byte for byte.
 */
export function packedSize(
  width: number,
  height: number,
  size: number,
): { width: number; height: number } | null {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`the size must be a whole number ≥ 1; got ${size}`);
  const longer = Math.max(width, height);
  if (longer <= size) return null;
  const scale = size / longer;
  return {
    width: width >= height ? size : Math.max(1, Math.round(width * scale)),
    height: height > width ? size : Math.max(1, Math.round(height * scale)),
  };
}

export interface SampleOptions {
  /** At most this many images of each diagnosis. */
  perClass: number;
  seed: number;
}

export interface SampleChoice {
  /** The chosen image ids, in the metadata's order. */
  imageIds: string[];
  perClass: Record<Dx, number>;
  /** Lesions in the sample (each with all of its images). */
  lesions: number;
  /** Lesions left out because an image of theirs is missing from `available` (they could not be whole). */
  incompleteLesions: string[];
}

/**
 * A lesion-grouped sample of at most `perClass` images per diagnosis, reproducible from the seed: a lesion is all
 * in or all out, so a split of the sample by lesion stays honest. Per class (in DX order, each with its own fork
 * of the seeded stream) the lesions are shuffled and taken whole while they fit; a lesion too large for what is
 * left is skipped and smaller ones after it may still fill the class. Lesions with an image missing from
 * `available` are never taken.
 */
export function chooseSample(
  records: readonly LesionRecord[],
  available: ReadonlySet<string>,
  options: SampleOptions,
): SampleChoice {
  const { perClass, seed } = options;
  if (!Number.isInteger(perClass) || perClass < 1)
    throw new RangeError(`images per class must be a whole number ≥ 1; got ${perClass}`);
  const lesions = new Map<string, { dx: Dx; imageIds: string[]; complete: boolean }>();
  for (const record of records) {
    if (record.lesionId === null) {
      throw new Error(
        `line ${record.line}: ${record.imageId} has no lesion id; a lesion-grouped sample needs HAM10000's lesion_id column`,
      );
    }
    const lesion = lesions.get(record.lesionId) ?? { dx: record.dx, imageIds: [], complete: true };
    if (lesion.dx !== record.dx) {
      throw new Error(
        `line ${record.line}: lesion ${record.lesionId} is labelled both ${lesion.dx} and ${record.dx}`,
      );
    }
    lesion.imageIds.push(record.imageId);
    lesion.complete &&= available.has(record.imageId);
    lesions.set(record.lesionId, lesion);
  }
  const random = createRandom(seed);
  const chosen = new Set<string>();
  const counts = Object.fromEntries(DX.map((dx) => [dx, 0])) as Record<Dx, number>;
  let lesionCount = 0;
  for (const dx of DX) {
    const stream = random.fork();
    const candidates = [...lesions.values()].filter((l) => l.dx === dx && l.complete);
    for (const lesion of stream.shuffle(candidates)) {
      if (counts[dx] + lesion.imageIds.length > perClass) continue;
      for (const id of lesion.imageIds) chosen.add(id);
      counts[dx] += lesion.imageIds.length;
      lesionCount++;
      if (counts[dx] === perClass) break;
    }
  }
  return {
    imageIds: records.filter((r) => chosen.has(r.imageId)).map((r) => r.imageId),
    perClass: counts,
    lesions: lesionCount,
    incompleteLesions: [...lesions].filter(([, l]) => !l.complete).map(([id]) => id),
  };
}
