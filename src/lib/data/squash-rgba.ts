/**
 * The decode workers' resize: a decoded RGBA image squashed to size×size RGB with the Catmull–Rom filter, giving
 * exactly the bytes of `resizeRgb(image, size, size, 'catmull-rom')` (src/lib/data/resize.ts, the reference the
 * tests hold the cache to) about ten times faster. resizeRgb is written to be read; this one precomputes each
 * output pixel's four clamped source offsets once per source size and unrolls the taps, with the same float32
 * rounding steps, so the two agree to the bit (tests/unit/squash-rgba.test.ts).
 */
import { catmullRom } from './resize.ts';

interface Plan {
  /** Per output coordinate, the 4 source indices its taps read (already clamped to the image). */
  index: Int32Array;
  /** Per output coordinate, its 4 normalised weights (float32, as resizeRgb's). */
  weight: Float32Array;
}

function planOf(srcLen: number, dstLen: number): Plan {
  const scale = srcLen / dstLen;
  const index = new Int32Array(dstLen * 4);
  const weight = new Float32Array(dstLen * 4);
  for (let i = 0; i < dstLen; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const first = Math.floor(centre) - 1;
    let total = 0;
    for (let k = 0; k < 4; k++) {
      const w = catmullRom(centre - (first + k));
      weight[i * 4 + k] = w;
      total += w;
      const s = first + k;
      index[i * 4 + k] = s < 0 ? 0 : s >= srcLen ? srcLen - 1 : s;
    }
    for (let k = 0; k < 4; k++) weight[i * 4 + k] = (weight[i * 4 + k] as number) / total;
  }
  return { index, weight };
}

const plans = new Map<string, Plan>();
// The horizontal pass's output, kept between calls: allocating (and zeroing) it each time costs as much as a pass.
let scratch = new Float32Array(0);

function cachedPlan(srcLen: number, dstLen: number): Plan {
  const key = `${srcLen}>${dstLen}`;
  let plan = plans.get(key);
  if (plan === undefined) {
    plan = planOf(srcLen, dstLen);
    plans.set(key, plan);
  }
  return plan;
}

/** `rgba` (width·height·4 bytes, row-major; alpha ignored) squashed to size×size RGB bytes. */
export function squashRgba(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  size: number,
): Uint8Array {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`size must be a positive integer, got ${size}`);
  if (rgba.length !== width * height * 4) {
    throw new RangeError(
      `pixel buffer holds ${rgba.length} bytes, expected ${width}x${height}x4 = ${width * height * 4}`,
    );
  }
  const px = cachedPlan(width, size);
  const py = cachedPlan(height, size);
  const rowLen = size * 3;

  // Horizontal pass: every source row to `size` RGB floats. Sums in float64, stored as float32 (as resizeRgb).
  if (scratch.length < height * rowLen) scratch = new Float32Array(height * rowLen);
  const mid = scratch;
  const xi = px.index;
  const xw = px.weight;
  for (let y = 0; y < height; y++) {
    const rowIn = y * width * 4;
    let o = y * rowLen;
    for (let x = 0, t = 0; x < size; x++, t += 4, o += 3) {
      const p0 = rowIn + (xi[t] as number) * 4;
      const p1 = rowIn + (xi[t + 1] as number) * 4;
      const p2 = rowIn + (xi[t + 2] as number) * 4;
      const p3 = rowIn + (xi[t + 3] as number) * 4;
      const w0 = xw[t] as number;
      const w1 = xw[t + 1] as number;
      const w2 = xw[t + 2] as number;
      const w3 = xw[t + 3] as number;
      mid[o] =
        (rgba[p0] as number) * w0 +
        (rgba[p1] as number) * w1 +
        (rgba[p2] as number) * w2 +
        (rgba[p3] as number) * w3;
      mid[o + 1] =
        (rgba[p0 + 1] as number) * w0 +
        (rgba[p1 + 1] as number) * w1 +
        (rgba[p2 + 1] as number) * w2 +
        (rgba[p3 + 1] as number) * w3;
      mid[o + 2] =
        (rgba[p0 + 2] as number) * w0 +
        (rgba[p1 + 2] as number) * w1 +
        (rgba[p2 + 2] as number) * w2 +
        (rgba[p3 + 2] as number) * w3;
    }
  }

  // Vertical pass: four rows of `mid` per output row, accumulated in float32 one tap at a time (as resizeRgb).
  const out = new Uint8Array(size * rowLen);
  const fround = Math.fround;
  for (let y = 0, t = 0; y < size; y++, t += 4) {
    const m0 = (py.index[t] as number) * rowLen;
    const m1 = (py.index[t + 1] as number) * rowLen;
    const m2 = (py.index[t + 2] as number) * rowLen;
    const m3 = (py.index[t + 3] as number) * rowLen;
    const w0 = py.weight[t] as number;
    const w1 = py.weight[t + 1] as number;
    const w2 = py.weight[t + 2] as number;
    const w3 = py.weight[t + 3] as number;
    const o = y * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let a = fround((mid[m0 + i] as number) * w0);
      a = fround(a + (mid[m1 + i] as number) * w1);
      a = fround(a + (mid[m2 + i] as number) * w2);
      a = fround(a + (mid[m3 + i] as number) * w3);
      // Math.round for a ≥ -0.5; anything lower is clamped to 0 either way.
      const v = (a + 0.5) | 0;
      out[o + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}
