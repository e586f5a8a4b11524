/**
 * squashRgba (the decode workers' resize) must give exactly resizeRgb's 'catmull-rom' bytes, the reference the
 * browser tests hold the cache to: on real HAM10000 JPEGs (decoded with jpeg-js, as RGBA), shrinking and
 * enlarging, and on odd sizes where the taps run past the edges.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { squashRgba } from '../../src/lib/data/squash-rgba.ts';
import { createRandom } from '../../src/lib/random.ts';

const HAM = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'ham10000');

function rgbaOf(path: string) {
  const decoded = jpeg.decode(readFileSync(path), { useTArray: true, formatAsRGBA: true });
  return { width: decoded.width, height: decoded.height, data: new Uint8Array(decoded.data) };
}

function expectSameAsReference(image: { width: number; height: number; data: Uint8Array }, size: number) {
  const ours = squashRgba(image.data, image.width, image.height, size);
  const reference = resizeRgb({ ...image, channels: 4 }, size, size, 'catmull-rom').data;
  expect(ours.length).toBe(size * size * 3);
  let differing = 0;
  for (let i = 0; i < ours.length; i++) if (ours[i] !== reference[i]) differing++;
  expect(differing).toBe(0);
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

  it.each(originals)('600x450 original %s → 224 and 96: resizeRgb catmull-rom to the bit', (file) => {
    const image = rgbaOf(join(HAM, 'originals-600x450', file));
    expect([image.width, image.height]).toEqual([600, 450]);
    expectSameAsReference(image, 224);
    expectSameAsReference(image, 96);
  });

  it.each(small)('200x150 image %s enlarged → 224: resizeRgb catmull-rom to the bit', (file) => {
    const image = rgbaOf(join(HAM, 'all-200x150', file));
    expect([image.width, image.height]).toEqual([200, 150]);
    expectSameAsReference(image, 224);
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
      expectSameAsReference({ width: w, height: h, data }, size);
    }
  });

  it('names the sizes when the buffer does not fit them', () => {
    expect(() => squashRgba(new Uint8Array(10), 2, 2, 4)).toThrow(/10 bytes, expected 2x2x4 = 16/);
    expect(() => squashRgba(new Uint8Array(16), 2, 2, 0)).toThrow(/positive integer/);
  });
});
