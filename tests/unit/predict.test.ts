/**
 * Predicting one image with a small real tfjs classifier (3x3 conv base, so flips change its output) composed as
 * the app composes base + head.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { resizeRgb, type PixelImage } from '../../src/lib/data/resize.ts';
import { composeModel, headConfig } from '../../src/lib/model/heads.ts';
import { createRandom } from '../../src/lib/random.ts';
import {
  flipBatch,
  modelInputSize,
  predictImage,
  prepareImage,
  topClasses,
  type Classifier,
} from '../../src/lib/predict.ts';

const root = join(import.meta.dirname, '..', '..');
const SIZE = 24;

beforeAll(async () => {
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
});

function tinyClassifier(): Classifier {
  // Seeded weights, so the network is fixed; 3x3 kernels without symmetry and a 'valid' conv + flatten head part
  // make its output depend on orientation.
  const random = createRandom(7);
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'pixels' });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv' });
  const pool = tf.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    strides: 2,
    activation: 'relu',
    name: 'conv_top',
  });
  const base = tf.model({
    inputs: input,
    outputs: pool.apply(conv.apply(input)) as tf.SymbolicTensor,
    name: 'tiny_base',
  });
  const model = composeModel(base, headConfig({ kind: 'gap-dense', classes: DX.length }));
  for (const layer of [conv, pool, model.getLayer('head')]) {
    layer.setWeights(
      layer.getWeights().map((w) =>
        tf.tensor(
          Float32Array.from({ length: w.size }, () => random.uniform(-1, 1)),
          w.shape,
        ),
      ),
    );
  }
  return { model, preprocessing: 'tf', classes: DX };
}

function randomImage(width: number, height: number, channels: 3 | 4, seed: number): PixelImage {
  const random = createRandom(seed);
  const data = Uint8Array.from({ length: width * height * channels }, () => random.int(256));
  return { width, height, channels, data };
}

/** The image mirrored: left-right and/or top-bottom. */
function flipped(image: PixelImage, horizontal: boolean, vertical: boolean): PixelImage {
  const { width, height, channels, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sy = vertical ? height - 1 - y : y;
      const sx = horizontal ? width - 1 - x : x;
      for (let k = 0; k < channels; k++)
        out[(y * width + x) * channels + k] = data[(sy * width + sx) * channels + k]!;
    }
  }
  return { width, height, channels, data: out };
}

/** Left half mirrored onto the right half (and, with `both`, top half onto the bottom). */
function symmetric(image: PixelImage, both: boolean): PixelImage {
  const { width, height, channels, data } = image;
  const out = Uint8Array.from(data);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sx = Math.min(x, width - 1 - x);
      const sy = both ? Math.min(y, height - 1 - y) : y;
      for (let k = 0; k < channels; k++)
        out[(y * width + x) * channels + k] = data[(sy * width + sx) * channels + k]!;
    }
  }
  return { width, height, channels, data: out };
}

const maxDiff = (a: readonly number[], b: readonly number[]): number =>
  Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

describe('predictImage', () => {
  let classifier: Classifier;

  beforeAll(() => {
    classifier = tinyClassifier();
  });

  afterAll(() => classifier.model.dispose());

  it('gives probabilities that sum to 1 and the top 3 classes, most probable first', async () => {
    const result = await predictImage(classifier, randomImage(61, 45, 4, 1));
    expect(result.probabilities).toHaveLength(DX.length);
    expect(result.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(result.top).toHaveLength(3);
    const sorted = [...result.probabilities].sort((a, b) => b - a);
    expect(result.top.map((t) => t.probability)).toEqual(sorted.slice(0, 3));
    for (const t of result.top) {
      expect(t.name).toBe(DX[t.index]);
      expect(t.probability).toBe(result.probabilities[t.index]);
    }
    expect(result.tta).toBe(false);
  });

  it('squashes any size to the model input: a 600x450 photo predicts as its 24x24 squashed copy', async () => {
    const originals = join(root, '..', 'shared', 'data', 'ham10000', 'originals-600x450');
    const file = readdirSync(originals).find((n) => n.endsWith('.jpg'))!;
    const decoded = jpeg.decode(readFileSync(join(originals, file)), {
      useTArray: true,
      formatAsRGBA: false,
    });
    const photo: PixelImage = {
      width: decoded.width,
      height: decoded.height,
      channels: 3,
      data: decoded.data,
    };
    const squashed: PixelImage = { ...resizeRgb(photo, SIZE, SIZE, 'catmull-rom'), channels: 3 };
    const a = await predictImage(classifier, photo);
    const b = await predictImage(classifier, squashed);
    expect(a.probabilities).toEqual(b.probabilities);
  });

  it('takes an HWC tensor too (left to the caller to dispose)', async () => {
    const image = randomImage(SIZE, SIZE, 3, 2);
    const tensor = tf.tensor3d(Uint8Array.from(image.data), [SIZE, SIZE, 3], 'int32');
    const fromTensor = await predictImage(classifier, tensor);
    const fromPixels = await predictImage(classifier, image);
    expect(tensor.isDisposed).toBe(false);
    tensor.dispose();
    expect(maxDiff(fromTensor.probabilities, fromPixels.probabilities)).toBeLessThan(1e-6);
  });

  it('TTA averages the four flips, changes a plain image and equals plain predict on a symmetric one', async () => {
    const image = randomImage(SIZE, SIZE, 3, 3);
    const plain = await predictImage(classifier, image);
    const tta = await predictImage(classifier, image, { tta: true });
    expect(tta.tta).toBe(true);
    expect(tta.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // The network is not flip-invariant, so TTA moves the probabilities …
    expect(maxDiff(plain.probabilities, tta.probabilities)).toBeGreaterThan(1e-3);
    // … to the mean of the four flipped images' predictions, each predicted on its own.
    const flips = await Promise.all(
      [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ].map(([h, v]) => predictImage(classifier, flipped(image, h!, v!))),
    );
    const mean = plain.probabilities.map((_, c) => flips.reduce((s, f) => s + f.probabilities[c]!, 0) / 4);
    expect(maxDiff(tta.probabilities, mean)).toBeLessThan(1e-6);

    // Symmetric left-right and top-bottom: every flip is the image itself.
    const both = symmetric(image, true);
    const bothPlain = await predictImage(classifier, both);
    const bothTta = await predictImage(classifier, both, { tta: true });
    expect(maxDiff(bothPlain.probabilities, bothTta.probabilities)).toBeLessThan(1e-6);
    // Symmetric left-right only: TTA is the mean of the image and its vertical flip.
    const mirror = symmetric(image, false);
    const [m, mv, mTta] = await Promise.all([
      predictImage(classifier, mirror),
      predictImage(classifier, flipped(mirror, false, true)),
      predictImage(classifier, mirror, { tta: true }),
    ]);
    const expected = m.probabilities.map((p, c) => (p + mv.probabilities[c]!) / 2);
    expect(maxDiff(mTta.probabilities, expected)).toBeLessThan(1e-6);
    expect(maxDiff(m.probabilities, mv.probabilities)).toBeGreaterThan(1e-3);
  });

  it('keeps the tensor count flat, with and without TTA, for pixels and tensors', async () => {
    const image = randomImage(50, 37, 4, 4);
    await predictImage(classifier, image, { tta: true });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await predictImage(classifier, image);
      await predictImage(classifier, image, { tta: true, topK: 5 });
    }
    const tensor = tf.zeros([30, 40, 3]) as tf.Tensor3D;
    await predictImage(classifier, tensor, { tta: true });
    tensor.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a model whose classes do not match and a non-image model, saying why', async () => {
    await expect(
      predictImage({ ...classifier, classes: ['a', 'b'] }, randomImage(8, 8, 3, 5)),
    ).rejects.toThrow(/2 classes are named/);
    const dense = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2 })] });
    expect(() => modelInputSize(dense)).toThrow(/square RGB images/);
    dense.dispose();
  });
});

describe('helpers', () => {
  it('topClasses sorts by probability, ties in class order, and honours k', () => {
    const top = topClasses([0.1, 0.3, 0.3, 0.05, 0.25], ['a', 'b', 'c', 'd', 'e'], 4);
    expect(top.map((t) => t.name)).toEqual(['b', 'c', 'e', 'a']);
  });

  it('flipBatch stacks the image, its left-right, top-bottom and double flip', async () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const flips = flipBatch(x);
    expect(Array.from(await flips.data())).toEqual([1, 2, 3, 4, 2, 1, 4, 3, 3, 4, 1, 2, 4, 3, 2, 1]);
    tf.dispose([x, flips]);
  });

  it('prepareImage drops alpha and preprocesses to [-1, 1] for the tf mode', async () => {
    const image: PixelImage = { width: 1, height: 1, channels: 4, data: new Uint8Array([0, 255, 51, 7]) };
    const x = prepareImage(image, 1, 'tf');
    expect(x.shape).toEqual([1, 1, 1, 3]);
    expect(Array.from(await x.data())).toEqual([-1, 1, 51 / 127.5 - 1].map(Math.fround));
    x.dispose();
  });
});
