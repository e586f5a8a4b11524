/**
 * Training-time augmentation as Keras's ImageDataGenerator does it: one random affine transform per image
 * (rotation, shear, zoom, optional shift, flips), applied on the tf backend with `tf.image.transform` and
 * Keras's default 'nearest' fill. Only training batches are augmented; validation and test images never are.
 *
 * Units follow Keras: `rotationDeg` and `shearDeg` are degrees (Keras's `shear_range` is in degrees too, so the
 * seed notebook's `shear_range=0.1` shears by at most 0.1° — almost nothing; here it is called `shearDeg` so that
 * is visible). `zoom` is Keras's `zoom_range` as a fraction: each axis gets its own factor in [1 - zoom, 1 + zoom],
 * and a factor above 1 samples a larger area (zooms out). Shifts are fractions of the width/height.
 *
 * The matrix is Keras's `rotation @ shift @ shear @ zoom` in (row, col) coordinates, mapping output pixels to input
 * pixels and centred on the image; flips are applied after it, as Keras does. One deliberate difference: the centre
 * is the true pixel centre ((n - 1) / 2), where Keras uses n / 2 + 0.5, half a pixel off, which makes an exact 90°
 * rotation move the image by one pixel. Interpolation is bilinear by default (Keras's `interpolation_order=1`).
 *
 * Randomness comes from the seeded stream of src/lib/random.ts, so a seed reproduces every transform.
 */
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../random.ts';
import { DEFAULT_AUGMENT, type AugmentOptions } from './augment-options.ts';

export {
  augmentOptions,
  DEFAULT_AUGMENT,
  type AugmentOptions,
  type FillMode,
  type Interpolation,
} from './augment-options.ts';

/** The parameters of one image's transform. */
export interface AffineParams {
  rotationDeg: number;
  shearDeg: number;
  /** Scale of the row (vertical) axis; > 1 zooms out. */
  zoomRows: number;
  /** Scale of the column (horizontal) axis. */
  zoomCols: number;
  /** Shift in pixels along rows (down) and columns (right) of the sampling grid. */
  shiftRows: number;
  shiftCols: number;
  flipHorizontal: boolean;
  flipVertical: boolean;
}

export const IDENTITY: Readonly<AffineParams> = {
  rotationDeg: 0,
  shearDeg: 0,
  zoomRows: 1,
  zoomCols: 1,
  shiftRows: 0,
  shiftCols: 0,
  flipHorizontal: false,
  flipVertical: false,
};

/**
 * Draws one image's parameters. Every value is drawn whether or not its range is 0, so the stream stays aligned
 * when a setting changes.
 */
export function sampleAffine(
  random: Random,
  options: AugmentOptions,
  height: number,
  width: number,
): AffineParams {
  const rotationDeg = random.uniform(-options.rotationDeg, options.rotationDeg);
  const shiftRows = random.uniform(-options.heightShift, options.heightShift) * height;
  const shiftCols = random.uniform(-options.widthShift, options.widthShift) * width;
  const shearDeg = random.uniform(-options.shearDeg, options.shearDeg);
  const zoomRows = random.uniform(1 - options.zoom, 1 + options.zoom);
  const zoomCols = random.uniform(1 - options.zoom, 1 + options.zoom);
  const flipH = random.next() < 0.5;
  const flipV = random.next() < 0.5;
  return {
    rotationDeg,
    shearDeg,
    zoomRows,
    zoomCols,
    shiftRows,
    shiftCols,
    flipHorizontal: options.horizontalFlip && flipH,
    flipVertical: options.verticalFlip && flipV,
  };
}

type Mat3 = [number, number, number, number, number, number, number, number, number];

function mul(a: Mat3, b: Mat3): Mat3 {
  const r = new Array<number>(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += a[i * 3 + k]! * b[k * 3 + j]!;
      r[i * 3 + j] = s;
    }
  }
  return r;
}

const radians = (deg: number): number => (deg * Math.PI) / 180;

/**
 * The 8 coefficients `tf.image.transform` takes for these parameters: they map an output pixel (x = column,
 * y = row) to the input pixel it samples.
 */
export function transformCoefficients(params: AffineParams, height: number, width: number): number[] {
  const t = radians(params.rotationDeg);
  const s = radians(params.shearDeg);
  // Keras's matrices, in (row, col, 1) coordinates, output → input.
  const rotation: Mat3 = [Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1];
  const shift: Mat3 = [1, 0, params.shiftRows, 0, 1, params.shiftCols, 0, 0, 1];
  const shear: Mat3 = [1, -Math.sin(s), 0, 0, Math.cos(s), 0, 0, 0, 1];
  const zoom: Mat3 = [params.zoomRows, 0, 0, 0, params.zoomCols, 0, 0, 0, 1];
  const cr = (height - 1) / 2;
  const cc = (width - 1) / 2;
  const toCentre: Mat3 = [1, 0, -cr, 0, 1, -cc, 0, 0, 1];
  const fromCentre: Mat3 = [1, 0, cr, 0, 1, cc, 0, 0, 1];
  // Keras flips the transformed image, so the flip acts on output coordinates first.
  const flip: Mat3 = [
    params.flipVertical ? -1 : 1,
    0,
    params.flipVertical ? height - 1 : 0,
    0,
    params.flipHorizontal ? -1 : 1,
    params.flipHorizontal ? width - 1 : 0,
    0,
    0,
    1,
  ];
  const m = mul(mul(mul(mul(mul(mul(fromCentre, rotation), shift), shear), zoom), toCentre), flip);
  const [m00, m01, m02, m10, m11, m12] = m;
  // tf.image.transform: in_x = a0·x + a1·y + a2, in_y = b0·x + b1·y + b2 with x = column, y = row.
  return [m11, m10, m12, m01, m00, m02, 0, 0];
}

/**
 * Applies one transform per image of `images` ([n, h, w, c], float) on the current backend. The caller owns the
 * result. tfjs 4.22's CPU Transform kernel only fills the first image of a batch, so on 'cpu' the images go through
 * one by one.
 */
export function applyAffine(
  images: tf.Tensor4D,
  params: readonly AffineParams[],
  options: Pick<AugmentOptions, 'fillMode' | 'interpolation'> = DEFAULT_AUGMENT,
): tf.Tensor4D {
  const [n, h, w] = images.shape;
  if (params.length !== n) throw new RangeError(`applyAffine: ${params.length} transforms for ${n} images`);
  const coefficients = new Float32Array(n * 8);
  params.forEach((p, i) => coefficients.set(transformCoefficients(p, h, w), i * 8));
  return tf.tidy(() => {
    const transforms = tf.tensor2d(coefficients, [n, 8]);
    if (tf.getBackend() !== 'cpu' || n === 1) {
      return tf.image.transform(images, transforms, options.interpolation, options.fillMode);
    }
    const parts: tf.Tensor4D[] = [];
    for (let i = 0; i < n; i++) {
      const one = tf.slice(images, [i, 0, 0, 0], [1, -1, -1, -1]);
      const t = tf.slice(transforms, [i, 0], [1, 8]);
      parts.push(tf.image.transform(one, t, options.interpolation, options.fillMode));
    }
    return tf.concat(parts, 0);
  });
}

/** Augments a batch ([n, h, w, c], float, any value range) with a fresh random transform per image. */
export function augmentBatch(images: tf.Tensor4D, random: Random, options: AugmentOptions): tf.Tensor4D {
  const [n, h, w] = images.shape;
  const params = Array.from({ length: n }, () => sampleAffine(random, options, h, w));
  return applyAffine(images, params, options);
}

export interface AugmentPreview {
  /** Edge of each square tile, in pixels. */
  size: number;
  /** RGBA tiles (ImageData-ready); tile 0 is the untouched image, then `count` augmented copies. */
  tiles: Uint8ClampedArray[];
  params: AffineParams[];
}

/**
 * A preview of what augmentation does to one image: the original and `count` random variants, read back as RGBA
 * pixels for the UI. `rgb` is the image's uint8 RGB pixels, `size`×`size`.
 */
export async function augmentPreview(
  rgb: Uint8Array,
  size: number,
  count: number,
  random: Random,
  options: AugmentOptions,
): Promise<AugmentPreview> {
  if (rgb.length !== size * size * 3) {
    throw new RangeError(
      `augmentPreview: expected ${size}×${size}×3 = ${size * size * 3} bytes; got ${rgb.length}`,
    );
  }
  const params: AffineParams[] = [{ ...IDENTITY }];
  for (let i = 0; i < count; i++) params.push(sampleAffine(random, options, size, size));
  const out = tf.tidy(() => {
    const one = tf.tensor4d(Float32Array.from(rgb), [1, size, size, 3]);
    const batch = tf.tile(one, [params.length, 1, 1, 1]);
    return tf.clipByValue(tf.round(applyAffine(batch, params, options)), 0, 255);
  });
  let values: Float32Array;
  try {
    values = (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
  const pixels = size * size;
  const tiles = params.map((_, t) => {
    const tile = new Uint8ClampedArray(pixels * 4);
    for (let p = 0; p < pixels; p++) {
      const src = (t * pixels + p) * 3;
      tile[p * 4] = values[src]!;
      tile[p * 4 + 1] = values[src + 1]!;
      tile[p * 4 + 2] = values[src + 2]!;
      tile[p * 4 + 3] = 255;
    }
    return tile;
  });
  return { size, tiles, params };
}

/** Lays tiles out in a grid of `columns`, as one RGBA image of (columns·size) × (rows·size). */
export function composeGrid(
  tiles: readonly Uint8ClampedArray[],
  size: number,
  columns: number,
): { width: number; height: number; rgba: Uint8ClampedArray } {
  const rows = Math.ceil(tiles.length / columns);
  const width = columns * size;
  const height = rows * size;
  const rgba = new Uint8ClampedArray(width * height * 4);
  tiles.forEach((tile, i) => {
    const x0 = (i % columns) * size;
    const y0 = Math.floor(i / columns) * size;
    for (let y = 0; y < size; y++) {
      rgba.set(tile.subarray(y * size * 4, (y + 1) * size * 4), ((y0 + y) * width + x0) * 4);
    }
  });
  return { width, height, rgba };
}
