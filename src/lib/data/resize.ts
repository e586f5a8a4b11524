/**
 * How images become the square training cache, and a pure resize that runs anywhere (Node, workers, tests).
 *
 * The browser cache itself is made by `createImageBitmap(blob, {resizeWidth, resizeHeight, resizeQuality: 'high'})`
 * in the decode workers (native, fast); `resizeRgb` here is the reference the browser tests compare the cache
 * against (after an independent JPEG decode), and the resize a Node pipeline uses.
 */

/** The cache squashes (stretches) each image to a square; it never centre-crops. */
export const RESIZE_MODE = 'squash' as const;
export type ResizeMode = typeof RESIZE_MODE;

/** For the UI and README: what happens to the 600x450 originals, and why. */
export const RESIZE_NOTE =
  'Images are squashed to a square (600x450 becomes e.g. 224x224, aspect ratio not kept), not centre-cropped. ' +
  'This is what the seed study did (Keras flow_from_directory with target_size=(224, 224) resizes without ' +
  'cropping), and a centre crop would cut away the lesion border, which matters for diagnosis.';

/**
 * `area`: each output pixel is the exact area-weighted mean of the source pixels it covers (a box filter that
 * widens with the scale factor) when shrinking, bilinear when enlarging. It never aliases and has no ringing,
 * which makes it a neutral reference.
 * `catmull-rom`: the Catmull–Rom cubic (B = 0, C = 0.5) on the 4x4 source pixels nearest each output pixel's
 * centre, not widened when shrinking. This is what Chromium's createImageBitmap does with resizeQuality 'high'
 * (measured: on Chromium's own full-size decode it reproduces the browser's resized pixels to within 1 level),
 * so a Node pipeline using it gets the same cache as the browser, given the same decoded pixels.
 */
export type ResizeFilter = 'area' | 'catmull-rom';

export interface PixelImage {
  width: number;
  height: number;
  /** Interleaved 8-bit samples, `channels` per pixel, row-major, no padding. */
  data: Uint8Array | Uint8ClampedArray;
  /** 3 (RGB) or 4 (RGBA; alpha is dropped, as the cache is opaque RGB). */
  channels: 3 | 4;
}

export interface RgbImage {
  width: number;
  height: number;
  /** RGB, row-major, width·height·3 bytes. */
  data: Uint8Array;
}

/** Per output coordinate: the first source index it reads and the normalised weights from there on. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  /** Taps per output coordinate in `weights` (the widest filter); unused slots are 0. */
  stride: number;
}

/** The Catmull–Rom cubic (a = −0.5), the resize filter the cache's reference uses. */
export function catmullRom(x: number): number {
  const t = Math.abs(x);
  if (t < 1) return 1.5 * t * t * t - 2.5 * t * t + 1;
  if (t < 2) return -0.5 * t * t * t + 2.5 * t * t - 4 * t + 2;
  return 0;
}

function taps(srcLen: number, dstLen: number, filter: ResizeFilter): Taps {
  const scale = srcLen / dstLen;
  if (filter === 'catmull-rom') {
    const stride = 4;
    const start = new Int32Array(dstLen);
    const count = new Int32Array(dstLen).fill(stride);
    const weights = new Float32Array(dstLen * stride);
    // `start` may be -1 or run past the end: taps outside the image read the edge pixel (see sourceIndex).
    for (let i = 0; i < dstLen; i++) {
      const centre = (i + 0.5) * scale - 0.5;
      const first = Math.floor(centre) - 1;
      start[i] = first;
      let total = 0;
      for (let k = 0; k < stride; k++) {
        const w = catmullRom(centre - (first + k));
        weights[i * stride + k] = w;
        total += w;
      }
      for (let k = 0; k < stride; k++) weights[i * stride + k] = (weights[i * stride + k] as number) / total;
    }
    return { start, count, weights, stride };
  }
  // Shrinking: a box of width `scale` (area coverage). Enlarging: a triangle of radius 1 (bilinear).
  const shrink = scale > 1;
  const radius = shrink ? scale / 2 : 1;
  const stride = Math.ceil(radius * 2) + 2;
  const start = new Int32Array(dstLen);
  const count = new Int32Array(dstLen);
  const weights = new Float32Array(dstLen * stride);
  for (let i = 0; i < dstLen; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - radius));
    const hi = Math.min(srcLen - 1, Math.ceil(centre + radius));
    let total = 0;
    let n = 0;
    for (let s = lo; s <= hi && n < stride; s++) {
      let w: number;
      if (shrink) {
        // Overlap of source pixel [s, s+1) with the box [centre - radius, centre + radius).
        w = Math.max(0, Math.min(s + 1, centre + radius) - Math.max(s, centre - radius));
      } else {
        w = Math.max(0, 1 - Math.abs(s + 0.5 - centre));
      }
      weights[i * stride + n] = w;
      total += w;
      n++;
    }
    start[i] = lo;
    count[i] = n;
    // Edge pixels of an enlargement have taps past the border clipped: renormalise (clamp-to-edge).
    for (let k = 0; k < n; k++) weights[i * stride + k] = (weights[i * stride + k] as number) / total;
  }
  return { start, count, weights, stride };
}

/** Source index of tap k of an output coordinate, clamped to the image (clamp-to-edge). */
function sourceIndex(start: number, k: number, length: number): number {
  const s = start + k;
  return s < 0 ? 0 : s >= length ? length - 1 : s;
}

/**
 * Resizes an RGB or RGBA image to `width`x`height` RGB, squashing when the aspect ratios differ (see
 * RESIZE_NOTE). Separable: rows first into a float buffer, then columns; results are rounded and clamped.
 */
export function resizeRgb(
  image: PixelImage,
  width: number,
  height: number,
  filter: ResizeFilter = 'area',
): RgbImage {
  const { width: sw, height: sh, data, channels } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`target size must be positive integers, got ${width}x${height}`);
  }
  if (data.length !== sw * sh * channels) {
    throw new RangeError(
      `pixel buffer holds ${data.length} bytes, expected ${sw}x${sh}x${channels} = ${sw * sh * channels}`,
    );
  }
  const tx = taps(sw, width, filter);
  const ty = taps(sh, height, filter);

  // Horizontal pass: sh rows of `width` RGB floats.
  const mid = new Float32Array(sh * width * 3);
  for (let y = 0; y < sh; y++) {
    const rowIn = y * sw * channels;
    const rowOut = y * width * 3;
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const s0 = tx.start[x] as number;
      const n = tx.count[x] as number;
      const w0 = x * tx.stride;
      for (let k = 0; k < n; k++) {
        const w = tx.weights[w0 + k] as number;
        const p = rowIn + sourceIndex(s0, k, sw) * channels;
        r += (data[p] as number) * w;
        g += (data[p + 1] as number) * w;
        b += (data[p + 2] as number) * w;
      }
      const o = rowOut + x * 3;
      mid[o] = r;
      mid[o + 1] = g;
      mid[o + 2] = b;
    }
  }

  // Vertical pass.
  const out = new Uint8Array(width * height * 3);
  const rowLen = width * 3;
  const acc = new Float32Array(rowLen);
  for (let y = 0; y < height; y++) {
    const s0 = ty.start[y] as number;
    const n = ty.count[y] as number;
    const w0 = y * ty.stride;
    const o = y * rowLen;
    acc.fill(0);
    for (let k = 0; k < n; k++) {
      const w = ty.weights[w0 + k] as number;
      const m = sourceIndex(s0, k, sh) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = (acc[i] as number) + (mid[m + i] as number) * w;
    }
    for (let i = 0; i < rowLen; i++) {
      const v = Math.round(acc[i] as number);
      out[o + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data: out };
}

export interface PixelDifference {
  /** Mean of |a − b| over every sample (R, G and B of every pixel). */
  meanAbs: number;
  /** Largest |a − b| of any sample. */
  maxAbs: number;
}

/** How far two equally sized 8-bit buffers are apart, e.g. a cached image and its reference decode. */
export function pixelDifference(
  a: Uint8Array | Uint8ClampedArray,
  b: Uint8Array | Uint8ClampedArray,
): PixelDifference {
  if (a.length !== b.length) throw new RangeError(`buffers differ in length: ${a.length} vs ${b.length}`);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    sum += d;
    if (d > max) max = d;
  }
  return { meanAbs: a.length === 0 ? 0 : sum / a.length, maxAbs: max };
}
