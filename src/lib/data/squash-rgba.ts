/**
 * The decode workers' resize: a decoded RGBA image squashed to size×size RGB with the Catmull–Rom filter, the
 * filter of the reference `resizeRgb(image, size, size, 'catmull-rom')` (src/lib/data/resize.ts) the tests hold
 * the cache to. resizeRgb is written to be read, in floats; this one is written to be fast, in integers:
 * - each output coordinate's four clamped source offsets and weights are computed once per (source, size) pair;
 *   the weights are fixed-point, WEIGHT_BITS fractional bits, rounded so that every four sum to exactly 1;
 * - the horizontal pass reads each source pixel as one 32-bit load and keeps its result in an Int16Array with
 *   MID_BITS fractional bits (at most 255 · 1.125 · 2^6 = 18,360 — the Catmull–Rom overshoot is 1/8 at most —,
 *   so it fits, and the buffer is half the size of float32's);
 * - the vertical pass sums four Int16 rows times 14-bit weights in int32 (at most 18,360 · 1.25 · 2^14 ≈ 3.8e8),
 *   rounds with a shift and lets a Uint8ClampedArray clamp to 0–255.
 * Fixed point is not resizeRgb to the bit: a sample whose exact value lies within a few hundredths of a level of
 * .5 may round the other way, so a byte can differ by 1 (tests/unit/squash-rgba.test.ts measures how many, on
 * real images). The cache's tolerance against the reference decode is 1 level on average (ingest.test.ts).
 */
import { catmullRom } from './resize.ts';

const WEIGHT_BITS = 14;
const MID_BITS = 6;
/** The horizontal pass's rounding shift: from WEIGHT_BITS fractional bits down to MID_BITS. */
const H_SHIFT = WEIGHT_BITS - MID_BITS;
/** The vertical pass's rounding shift: from MID_BITS + WEIGHT_BITS fractional bits down to whole levels. */
const V_SHIFT = MID_BITS + WEIGHT_BITS;

// Where R, G and B sit in a pixel read as one 32-bit integer (RGBA bytes in memory order).
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const R_SHIFT = LITTLE_ENDIAN ? 0 : 24;
const G_SHIFT = LITTLE_ENDIAN ? 8 : 16;
const B_SHIFT = LITTLE_ENDIAN ? 16 : 8;

interface Plan {
  /** Per output coordinate, the 4 source offsets its taps read (clamped to the image), times `stride`. */
  offset: Int32Array;
  /** Per output coordinate, its 4 weights in fixed point (WEIGHT_BITS fractional bits), summing to 1 exactly. */
  weight: Int32Array;
}

function planOf(srcLen: number, dstLen: number, stride: number): Plan {
  const scale = srcLen / dstLen;
  const one = 1 << WEIGHT_BITS;
  const offset = new Int32Array(dstLen * 4);
  const weight = new Int32Array(dstLen * 4);
  const exact = [0, 0, 0, 0];
  for (let i = 0; i < dstLen; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const first = Math.floor(centre) - 1;
    let total = 0;
    for (let k = 0; k < 4; k++) {
      const w = catmullRom(centre - (first + k));
      exact[k] = w;
      total += w;
      const s = first + k;
      offset[i * 4 + k] = (s < 0 ? 0 : s >= srcLen ? srcLen - 1 : s) * stride;
    }
    // Rounded weights may miss 1 by a unit or two; the largest weight takes the rest, so flat areas stay exact.
    let sum = 0;
    let largest = 0;
    for (let k = 0; k < 4; k++) {
      const w = Math.round(((exact[k] as number) / total) * one);
      weight[i * 4 + k] = w;
      sum += w;
      if (Math.abs(w) > Math.abs(weight[i * 4 + largest] as number)) largest = k;
    }
    weight[i * 4 + largest] = (weight[i * 4 + largest] as number) + one - sum;
  }
  return { offset, weight };
}

const plans = new Map<string, Plan>();
// The horizontal pass's output, kept between calls: allocating (and zeroing) it each time costs as much as a pass.
let scratch = new Int16Array(0);

function cachedPlan(srcLen: number, dstLen: number, stride: number): Plan {
  const key = `${srcLen}>${dstLen}x${stride}`;
  let plan = plans.get(key);
  if (plan === undefined) {
    plan = planOf(srcLen, dstLen, stride);
    plans.set(key, plan);
  }
  return plan;
}

/**
 * `rgba` (width·height·4 bytes, row-major; alpha ignored) squashed to size×size RGB bytes, written into `into`
 * when it is given (it must hold size·size·3 bytes; a decoder reuses its output buffers that way), else into a
 * new buffer.
 */
export function squashRgba(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  size: number,
  into?: Uint8Array,
): Uint8Array {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`size must be a positive integer, got ${size}`);
  if (rgba.length !== width * height * 4) {
    throw new RangeError(
      `pixel buffer holds ${rgba.length} bytes, expected ${width}x${height}x4 = ${width * height * 4}`,
    );
  }
  const rowLen = size * 3;
  if (into !== undefined && into.length !== size * rowLen) {
    throw new RangeError(
      `output buffer holds ${into.length} bytes, expected ${size}x${size}x3 = ${size * rowLen}`,
    );
  }
  // One 32-bit load per pixel needs the pixels 4-byte aligned; a view that is not gets copied first.
  const aligned = rgba.byteOffset % 4 === 0 ? rgba : rgba.slice();
  const pixels = new Int32Array(aligned.buffer, aligned.byteOffset, width * height);
  const px = cachedPlan(width, size, 1);
  const py = cachedPlan(height, size, rowLen);

  // Horizontal pass: every source row to `size` RGB samples with MID_BITS fractional bits.
  if (scratch.length < height * rowLen) scratch = new Int16Array(height * rowLen);
  const mid = scratch;
  const xo = px.offset;
  const xw = px.weight;
  const half = 1 << (H_SHIFT - 1);
  for (let y = 0; y < height; y++) {
    const rowIn = y * width;
    let o = y * rowLen;
    for (let tap = 0; tap < xo.length; tap += 4, o += 3) {
      const a = pixels[rowIn + (xo[tap] as number)] as number;
      const b = pixels[rowIn + (xo[tap + 1] as number)] as number;
      const c = pixels[rowIn + (xo[tap + 2] as number)] as number;
      const d = pixels[rowIn + (xo[tap + 3] as number)] as number;
      const w0 = xw[tap] as number;
      const w1 = xw[tap + 1] as number;
      const w2 = xw[tap + 2] as number;
      const w3 = xw[tap + 3] as number;
      mid[o] =
        (((a >> R_SHIFT) & 255) * w0 +
          ((b >> R_SHIFT) & 255) * w1 +
          ((c >> R_SHIFT) & 255) * w2 +
          ((d >> R_SHIFT) & 255) * w3 +
          half) >>
        H_SHIFT;
      mid[o + 1] =
        (((a >> G_SHIFT) & 255) * w0 +
          ((b >> G_SHIFT) & 255) * w1 +
          ((c >> G_SHIFT) & 255) * w2 +
          ((d >> G_SHIFT) & 255) * w3 +
          half) >>
        H_SHIFT;
      mid[o + 2] =
        (((a >> B_SHIFT) & 255) * w0 +
          ((b >> B_SHIFT) & 255) * w1 +
          ((c >> B_SHIFT) & 255) * w2 +
          ((d >> B_SHIFT) & 255) * w3 +
          half) >>
        H_SHIFT;
    }
  }

  // Vertical pass: four rows of `mid` per output row; the clamped array clamps the rounded sums to 0–255.
  const target = into ?? new Uint8Array(size * rowLen);
  const out = new Uint8ClampedArray(target.buffer, target.byteOffset, target.length);
  const yo = py.offset;
  const yw = py.weight;
  const round = 1 << (V_SHIFT - 1);
  for (let y = 0, t = 0; y < size; y++, t += 4) {
    const m0 = yo[t] as number;
    const m1 = yo[t + 1] as number;
    const m2 = yo[t + 2] as number;
    const m3 = yo[t + 3] as number;
    const w0 = yw[t] as number;
    const w1 = yw[t + 1] as number;
    const w2 = yw[t + 2] as number;
    const w3 = yw[t + 3] as number;
    const o = y * rowLen;
    for (let i = 0; i < rowLen; i++) {
      out[o + i] =
        ((mid[m0 + i] as number) * w0 +
          (mid[m1 + i] as number) * w1 +
          (mid[m2 + i] as number) * w2 +
          (mid[m3 + i] as number) * w3 +
          round) >>
        V_SHIFT;
    }
  }
  return target;
}
