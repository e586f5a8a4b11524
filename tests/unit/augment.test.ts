/**
 * Augmentation on real HAM10000 pixels (decoded from ../shared with jpeg-js and resized like the cache), on the
 * CPU backend and, for the batched kernel, on WASM.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import {
  IDENTITY,
  applyAffine,
  augmentBatch,
  augmentOptions,
  augmentPreview,
  composeGrid,
  sampleAffine,
  transformCoefficients,
  type AffineParams,
} from '../../src/lib/model/augment.ts';
import { createRandom } from '../../src/lib/random.ts';

const IMAGES = '../shared/data/ham10000/all-200x150';
const SIZE = 24;

function loadRgb(imageId: string, size = SIZE): Uint8Array {
  const decoded = jpeg.decode(readFileSync(join(IMAGES, `${imageId}.jpg`)), { useTArray: true });
  return resizeRgb(
    { width: decoded.width, height: decoded.height, data: decoded.data, channels: 4 },
    size,
    size,
  ).data;
}

const ids = ['ISIC_0024306', 'ISIC_0024307', 'ISIC_0024308'];
let pixels: Uint8Array[];

function batch(): tf.Tensor4D {
  const all = new Float32Array(ids.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => all.set(p, i * SIZE * SIZE * 3));
  return tf.tensor4d(all, [ids.length, SIZE, SIZE, 3]);
}

async function values(t: tf.Tensor): Promise<Float32Array> {
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  pixels = ids.map((id) => loadRgb(id));
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('affine augmentation', () => {
  it('leaves the images untouched with identity parameters (both interpolations)', async () => {
    const x = batch();
    for (const interpolation of ['nearest', 'bilinear'] as const) {
      const out = applyAffine(
        x,
        ids.map(() => ({ ...IDENTITY })),
        { fillMode: 'nearest', interpolation },
      );
      expect(maxDiff(await values(out), (await x.data()) as Float32Array)).toBe(0);
    }
    x.dispose();
  });

  it('a horizontal flip equals tf.reverse along the width; a vertical flip along the height', async () => {
    const x = batch();
    const flipH = applyAffine(
      x,
      ids.map(() => ({ ...IDENTITY, flipHorizontal: true })),
    );
    expect(maxDiff(await values(flipH), await values(tf.reverse(x, 2)))).toBe(0);
    const flipV = applyAffine(
      x,
      ids.map(() => ({ ...IDENTITY, flipVertical: true })),
    );
    expect(maxDiff(await values(flipV), await values(tf.reverse(x, 1)))).toBe(0);
    x.dispose();
  });

  it("rotates by +90° as Keras's matrix does (clockwise on screen): transpose of the row-reversed image", async () => {
    const x = batch();
    const expected = await values(tf.transpose(tf.reverse(x, 1), [0, 2, 1, 3]));
    const params: AffineParams[] = ids.map(() => ({ ...IDENTITY, rotationDeg: 90 }));
    expect(
      maxDiff(
        await values(applyAffine(x, params, { fillMode: 'nearest', interpolation: 'nearest' })),
        expected,
      ),
    ).toBe(0);
    // Bilinear sampling lands on pixel centres up to cos(90°) ≈ 6e-17: equal within float rounding.
    expect(
      maxDiff(
        await values(applyAffine(x, params, { fillMode: 'nearest', interpolation: 'bilinear' })),
        expected,
      ),
    ).toBeLessThan(1e-3);
    // −90° is the other way round.
    const minus = ids.map(() => ({ ...IDENTITY, rotationDeg: -90 }));
    const expectedMinus = await values(tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 1));
    expect(
      maxDiff(
        await values(applyAffine(x, minus, { fillMode: 'nearest', interpolation: 'nearest' })),
        expectedMinus,
      ),
    ).toBe(0);
    x.dispose();
  });

  it('zooms about the centre: factor 0.5 on both axes samples the central half, scaled up 2×', () => {
    const [a0, a1, a2, b0, b1, b2] = transformCoefficients(
      { ...IDENTITY, zoomRows: 0.5, zoomCols: 0.5 },
      24,
      24,
    );
    // Output pixel (x, y) reads input (0.5x + 5.75, 0.5y + 5.75): the centre 11.5 stays put.
    expect([a0, a1, a2, b0, b1, b2]).toEqual([0.5, 0, 5.75, 0, 0.5, 5.75]);
    expect(0.5 * 11.5 + 5.75).toBe(11.5);
  });

  it('fills from the nearest edge pixel (Keras fill_mode="nearest"): no black corners after a rotation', async () => {
    const x = batch();
    const out = await values(
      applyAffine(
        x,
        ids.map(() => ({ ...IDENTITY, rotationDeg: 45 })),
      ),
    );
    const corner = await values(
      applyAffine(
        x,
        ids.map(() => ({ ...IDENTITY, rotationDeg: 45 })),
        { fillMode: 'constant', interpolation: 'bilinear' },
      ),
    );
    expect(out[0]).toBeGreaterThan(0); // top-left corner, red channel, of a real skin image
    expect(corner[0]).toBe(0);
    x.dispose();
  });

  it('is reproducible from a seed and differs between seeds', async () => {
    const options = augmentOptions({ verticalFlip: true, widthShift: 0.05, heightShift: 0.05 });
    const x = batch();
    const a = await values(augmentBatch(x, createRandom(42), options));
    const b = await values(augmentBatch(x, createRandom(42), options));
    const c = await values(augmentBatch(x, createRandom(43), options));
    expect(maxDiff(a, b)).toBe(0);
    expect(maxDiff(a, c)).toBeGreaterThan(1);
    x.dispose();
  });

  it('draws parameters inside the configured ranges, flips about half the time', () => {
    const random = createRandom(7);
    const options = augmentOptions({ rotationDeg: 20, shearDeg: 0.1, zoom: 0.1 });
    const drawn = Array.from({ length: 2000 }, () => sampleAffine(random, options, 224, 224));
    expect(Math.max(...drawn.map((p) => Math.abs(p.rotationDeg)))).toBeLessThanOrEqual(20);
    expect(Math.max(...drawn.map((p) => Math.abs(p.rotationDeg)))).toBeGreaterThan(19.9);
    expect(Math.max(...drawn.map((p) => Math.abs(p.shearDeg)))).toBeLessThanOrEqual(0.1);
    expect(Math.min(...drawn.map((p) => p.zoomRows))).toBeGreaterThanOrEqual(0.9);
    expect(Math.max(...drawn.map((p) => p.zoomCols))).toBeLessThanOrEqual(1.1);
    const flips = drawn.filter((p) => p.flipHorizontal).length;
    expect(flips).toBeGreaterThan(900);
    expect(flips).toBeLessThan(1100);
    expect(drawn.some((p) => p.flipVertical)).toBe(false);
    expect(() => augmentOptions({ zoom: 1.5 })).toThrow(/zoom/);
    expect(() => augmentOptions({ rotationDeg: -1 })).toThrow(/rotationDeg/);
  });

  it('keeps the tensor count flat across augmented batches', async () => {
    const x = batch();
    const random = createRandom(1);
    const options = augmentOptions();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const out = augmentBatch(x, random, options);
      await out.data();
      out.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    x.dispose();
  });

  it('gives the same batch on CPU (one image at a time, around a tfjs kernel bug) and on WASM (batched kernel)', async () => {
    const options = augmentOptions({ verticalFlip: true });
    const params = Array.from({ length: ids.length }, () =>
      sampleAffine(createRandom(5), options, SIZE, SIZE),
    );
    const x = batch();
    const cpu = await values(applyAffine(x, params, options));
    x.dispose();
    const require = createRequire(import.meta.url);
    setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
    expect(await tf.setBackend('wasm')).toBe(true);
    try {
      expect(tf.getBackend()).toBe('wasm');
      const y = batch();
      const wasm = await values(applyAffine(y, params, options));
      y.dispose();
      expect(maxDiff(cpu, wasm)).toBeLessThan(1e-3);
      // Every image was transformed, not only the first (what the batched CPU kernel does).
      expect(cpu.subarray(2 * SIZE * SIZE * 3).some((v) => v !== 0)).toBe(true);
    } finally {
      await tf.setBackend('cpu');
    }
  });

  it('makes a preview: the original first, then augmented tiles, read back as RGBA', async () => {
    const before = tf.memory().numTensors;
    const preview = await augmentPreview(pixels[0]!, SIZE, 5, createRandom(3), augmentOptions());
    expect(tf.memory().numTensors).toBe(before);
    expect(preview.tiles).toHaveLength(6);
    const original = preview.tiles[0]!;
    for (let p = 0; p < SIZE * SIZE; p++) {
      expect([original[p * 4], original[p * 4 + 1], original[p * 4 + 2], original[p * 4 + 3]]).toEqual([
        pixels[0]![p * 3],
        pixels[0]![p * 3 + 1],
        pixels[0]![p * 3 + 2],
        255,
      ]);
    }
    expect(preview.tiles.slice(1).some((t) => t.some((v, i) => v !== original[i]))).toBe(true);
    const grid = composeGrid(preview.tiles, SIZE, 3);
    expect([grid.width, grid.height]).toEqual([3 * SIZE, 2 * SIZE]);
    // Tile 4 (row 1, column 1) starts at (24, 24).
    const at = (24 * grid.width + 24) * 4;
    expect(Array.from(grid.rgba.subarray(at, at + 4))).toEqual(Array.from(preview.tiles[4]!.subarray(0, 4)));
    await expect(augmentPreview(pixels[0]!, SIZE + 1, 1, createRandom(1), augmentOptions())).rejects.toThrow(
      /bytes/,
    );
  });
});
