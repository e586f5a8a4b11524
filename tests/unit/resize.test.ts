import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import {
  pixelDifference,
  resizeRgb,
  RESIZE_MODE,
  RESIZE_NOTE,
  type ResizeFilter,
} from '../../src/lib/data/resize.ts';
import { createRandom } from '../../src/lib/random.ts';

const ORIGINALS = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'shared',
  'data',
  'ham10000',
  'originals-600x450',
);
const FILTERS: ResizeFilter[] = ['area', 'catmull-rom'];

function randomImage(width: number, height: number, channels: 3 | 4, seed = 1) {
  const random = createRandom(seed);
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = random.int(256);
  return { width, height, data, channels };
}

function mean(data: Uint8Array): number {
  let sum = 0;
  for (const v of data) sum += v;
  return sum / data.length;
}

describe('resizeRgb', () => {
  it.each(FILTERS)('%s: the same size gives the same pixels', (filter) => {
    const image = randomImage(37, 23, 3);
    expect(resizeRgb(image, 37, 23, filter).data).toEqual(image.data);
  });

  it.each(FILTERS)('%s: a flat image stays flat, shrinking, enlarging and squashing', (filter) => {
    const data = new Uint8Array(60 * 45 * 3);
    for (let i = 0; i < data.length; i += 3) data.set([200, 37, 91], i);
    for (const [w, h] of [
      [22, 22],
      [97, 131],
      [1, 1],
    ] as const) {
      const out = resizeRgb({ width: 60, height: 45, data, channels: 3 }, w, h, filter).data;
      for (let i = 0; i < out.length; i += 3) expect([out[i], out[i + 1], out[i + 2]]).toEqual([200, 37, 91]);
    }
  });

  it('area: halving averages each 2x2 block', () => {
    const image = randomImage(8, 6, 3, 7);
    const out = resizeRgb(image, 4, 3, 'area').data;
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 4; x++) {
        for (let c = 0; c < 3; c++) {
          const at = (xx: number, yy: number) => image.data[(yy * 8 + xx) * 3 + c] as number;
          const expected =
            (at(2 * x, 2 * y) + at(2 * x + 1, 2 * y) + at(2 * x, 2 * y + 1) + at(2 * x + 1, 2 * y + 1)) / 4;
          expect(Math.abs((out[(y * 4 + x) * 3 + c] as number) - expected)).toBeLessThanOrEqual(0.5);
        }
      }
    }
  });

  it.each(FILTERS)(
    '%s: squashes 600x450 to a square, keeping the left and right borders (no crop)',
    (filter) => {
      // Red in the leftmost 60 columns, blue elsewhere: a centre crop to 450x450 would lose all of the red.
      const data = new Uint8Array(600 * 450 * 3);
      for (let y = 0; y < 450; y++) {
        for (let x = 0; x < 600; x++) data.set(x < 60 ? [255, 0, 0] : [0, 0, 255], (y * 600 + x) * 3);
      }
      const out = resizeRgb({ width: 600, height: 450, data, channels: 3 }, 224, 224, filter).data;
      // 60 source columns become 22.4 output columns.
      for (const y of [0, 111, 223]) {
        expect([...out.subarray((y * 224 + 5) * 3, (y * 224 + 5) * 3 + 3)]).toEqual([255, 0, 0]);
        expect([...out.subarray((y * 224 + 30) * 3, (y * 224 + 30) * 3 + 3)]).toEqual([0, 0, 255]);
      }
      expect(RESIZE_MODE).toBe('squash');
      expect(RESIZE_NOTE).toMatch(/squash/i);
      expect(RESIZE_NOTE).toMatch(/crop/i);
    },
  );

  it('drops alpha from RGBA input', () => {
    const rgba = randomImage(10, 10, 4, 3);
    const rgb = new Uint8Array(10 * 10 * 3);
    for (let p = 0; p < 100; p++) rgb.set(rgba.data.subarray(p * 4, p * 4 + 3), p * 3);
    for (const filter of FILTERS) {
      expect(resizeRgb(rgba, 7, 5, filter).data).toEqual(
        resizeRgb({ ...rgba, data: rgb, channels: 3 }, 7, 5, filter).data,
      );
    }
  });

  it('resizes a real 600x450 HAM10000 original: area keeps the mean colour, the filters agree closely', () => {
    const decoded = jpeg.decode(readFileSync(join(ORIGINALS, 'ISIC_0024306.jpg')), {
      useTArray: true,
      formatAsRGBA: false,
    });
    const source = { width: decoded.width, height: decoded.height, data: decoded.data, channels: 3 as const };
    expect([source.width, source.height]).toEqual([600, 450]);
    const area = resizeRgb(source, 224, 224, 'area');
    const cubic = resizeRgb(source, 224, 224, 'catmull-rom');
    expect(area.data).toHaveLength(224 * 224 * 3);
    expect(Math.abs(mean(area.data) - mean(decoded.data))).toBeLessThan(0.5);
    const diff = pixelDifference(area.data, cubic.data);
    expect(diff.meanAbs).toBeGreaterThan(0);
    expect(diff.meanAbs).toBeLessThan(3);
  });

  it('rejects bad sizes and buffers', () => {
    const image = randomImage(4, 4, 3);
    expect(() => resizeRgb(image, 0, 4)).toThrow(RangeError);
    expect(() => resizeRgb(image, 2.5, 4)).toThrow(RangeError);
    expect(() => resizeRgb({ ...image, width: 5 }, 2, 2)).toThrow(/expected 5x4x3/);
  });
});

describe('pixelDifference', () => {
  it('gives the mean and max absolute difference', () => {
    expect(pixelDifference(new Uint8Array([0, 10, 255]), new Uint8Array([2, 10, 250]))).toEqual({
      meanAbs: 7 / 3,
      maxAbs: 5,
    });
    expect(() => pixelDifference(new Uint8Array(2), new Uint8Array(3))).toThrow(RangeError);
  });
});
