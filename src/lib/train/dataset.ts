/**
 * Where training reads its images from. The browser's implementation sits on the OPFS image cache of the ingest
 * step; Node tests and the CLI use the in-memory one. Pixels are uint8 RGB, square, row-major (HWC), as decoded.
 */

export interface ImageDataset {
  /** Number of images. */
  readonly count: number;
  /** Square edge in pixels. */
  readonly size: number;
  /** Class index of each image (DX order), `count` of them. */
  readonly labels: ArrayLike<number>;
  /** The images at `indices` (in that order), concatenated: indices.length × size × size × 3 bytes. */
  readBatch(indices: readonly number[]): Promise<Uint8Array>;
}

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

/** All pixels in one buffer: count × size × size × 3. */
export class MemoryImageDataset implements ImageDataset {
  readonly count: number;

  constructor(
    readonly size: number,
    readonly pixels: Uint8Array,
    readonly labels: ArrayLike<number>,
  ) {
    const bytes = size * size * 3;
    if (pixels.length !== labels.length * bytes) {
      throw new DatasetError(
        `MemoryImageDataset: ${labels.length} labels need ${labels.length * bytes} bytes of ${size}×${size} RGB ` +
          `pixels; got ${pixels.length}`,
      );
    }
    this.count = labels.length;
  }

  async readBatch(indices: readonly number[]): Promise<Uint8Array> {
    const bytes = this.size * this.size * 3;
    const out = new Uint8Array(indices.length * bytes);
    indices.forEach((index, i) => {
      if (!Number.isInteger(index) || index < 0 || index >= this.count) {
        throw new DatasetError(`image index ${index} is outside the dataset (0..${this.count - 1})`);
      }
      out.set(this.pixels.subarray(index * bytes, (index + 1) * bytes), i * bytes);
    });
    return out;
  }
}

/** The images of `dataset` at `indices`, renumbered 0..indices.length-1 (a split's view of the whole cache). */
export function subsetDataset(dataset: ImageDataset, indices: readonly number[]): ImageDataset {
  const labels = Int32Array.from(indices, (i) => {
    const label = dataset.labels[i];
    if (label === undefined)
      throw new DatasetError(`image index ${i} is outside the dataset (0..${dataset.count - 1})`);
    return label;
  });
  return {
    count: indices.length,
    size: dataset.size,
    labels,
    readBatch: (positions) =>
      dataset.readBatch(
        positions.map((p) => {
          const index = indices[p];
          if (index === undefined)
            throw new DatasetError(`position ${p} is outside the subset (0..${indices.length - 1})`);
          return index;
        }),
      ),
  };
}

/** Per-class counts of a label vector. */
export function classCounts(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new DatasetError(`label ${label} at position ${i} is not a class index (0..${numClasses - 1})`);
    }
    counts[label]! += 1;
  }
  return counts;
}
