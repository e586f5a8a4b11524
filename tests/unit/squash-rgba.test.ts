/**
 * squashRgba (the decode workers' resize, in fixed point) against resizeRgb's 'catmull-rom' (the float reference
 * the browser tests hold the cache to): on real HAM10000 JPEGs (decoded with jpeg-js, as RGBA), shrinking and
 * enlarging, and on odd sizes where the taps run past the edges. Fixed-point rounding may move a sample whose exact
 * value is within a few hundredths of .5 by one level, never more; the tests bound how often, as measured below.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { squashRgba } from '../../src/lib/data/squash-rgba.ts';
import { createRandom } from '../../src/lib/random.ts';

const HAM = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'ham10000');

/**
 * Fixed point against the float reference, over every sample of the images compared: at most 1 level apart, and
 * on at most 1 % of samples (measured on the 600x450 originals and 200x150 images below: 0.25–0.40 %).
 */
const BOUND = { maxAbs: 1, meanAbs: 0.01 };

function rgbaOf(path: string) {
  const decoded = jpeg.decode(readFileSync(path), { useTArray: true, formatAsRGBA: true });
  return { width: decoded.width, height: decoded.height, data: new Uint8Array(decoded.data) };
}

type Image = { width: number; height: number; data: Uint8Array };

function differenceFromReference(image: Image, size: number) {
  const ours = squashRgba(image.data, image.width, image.height, size);
  const reference = resizeRgb({ ...image, channels: 4 }, size, size, 'catmull-rom').data;
  expect(ours.length).toBe(size * size * 3);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs((ours[i] as number) - (reference[i] as number));
    sum += d;
    if (d > max) max = d;
  }
  return { meanAbs: sum / ours.length, maxAbs: max };
}

function expectWithinBound(image: Image, size: number, label: string) {
  const { meanAbs, maxAbs } = differenceFromReference(image, size);
  console.info(
    `squashRgba vs resizeRgb, ${label} → ${size}: mean abs ${meanAbs.toFixed(5)}, max abs ${maxAbs}`,
  );
  expect(maxAbs).toBeLessThanOrEqual(BOUND.maxAbs);
  expect(meanAbs).toBeLessThanOrEqual(BOUND.meanAbs);
}

describe('squashRgba', () => {
  const originals = readdirSync(join(HAM, 'originals-600x450'))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, 4);
  const small = readdirSync(join(HAM, 'all-200x150'))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, 2);

  it.each(originals)('600x450 original %s → 224 and 96: within 1 level of resizeRgb catmull-rom', (file) => {
    const image = rgbaOf(join(HAM, 'originals-600x450', file));
    expect([image.width, image.height]).toEqual([600, 450]);
    expectWithinBound(image, 224, file);
    expectWithinBound(image, 96, file);
  });

  it.each(small)('200x150 image %s enlarged → 224: within 1 level of resizeRgb catmull-rom', (file) => {
    const image = rgbaOf(join(HAM, 'all-200x150', file));
    expect([image.width, image.height]).toEqual([200, 150]);
    expectWithinBound(image, 224, file);
  });

  it('odd and tiny sizes, both ways, and a second call with a smaller image (reused scratch)', () => {
    const random = createRandom(7);
    for (const [w, h, size] of [
      [7, 3, 5],
      [1, 1, 4],
      [3, 9, 2],
      [601, 451, 224],
      [5, 5, 1],
    ] as const) {
      const data = new Uint8Array(w * h * 4);
      for (let i = 0; i < data.length; i++) data[i] = random.int(256);
      // Random noise has far more samples near .5 after filtering than a photo; only the 1-level bound holds.
      expect(differenceFromReference({ width: w, height: h, data }, size).maxAbs).toBeLessThanOrEqual(1);
    }
  });

  it('keeps flat colours and the extremes exact (every four weights sum to exactly 1)', () => {
    for (const value of [0, 1, 128, 254, 255]) {
      const data = new Uint8Array(37 * 23 * 4).fill(value);
      const out = squashRgba(data, 37, 23, 16);
      expect(out.every((v) => v === value)).toBe(true);
    }
  });

  it('gives the same bytes from an unaligned view and into a given buffer', () => {
    const image = rgbaOf(join(HAM, 'originals-600x450', originals[0] as string));
    const expected = squashRgba(image.data, image.width, image.height, 96);
    const shifted = new Uint8Array(image.data.length + 1);
    shifted.set(image.data, 1);
    expect(squashRgba(shifted.subarray(1), image.width, image.height, 96)).toEqual(expected);
    const into = new Uint8Array(96 * 96 * 3);
    expect(squashRgba(image.data, image.width, image.height, 96, into)).toBe(into);
    expect(into).toEqual(expected);
  });

  it('names the sizes when a buffer does not fit them', () => {
    expect(() => squashRgba(new Uint8Array(10), 2, 2, 4)).toThrow(/10 bytes, expected 2x2x4 = 16/);
    expect(() => squashRgba(new Uint8Array(16), 2, 2, 0)).toThrow(/positive integer/);
    expect(() => squashRgba(new Uint8Array(16), 2, 2, 2, new Uint8Array(5))).toThrow(
      /output buffer holds 5 bytes, expected 2x2x3 = 12/,
    );
  });
});
