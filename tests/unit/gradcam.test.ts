/**
 * Grad-CAM on a hand-built conv network whose classes depend on known image regions (so the expected map is known
 * exactly), on the same network saved and loaded back, and on the real MobileNetV2 0.35 (ImageNet weights from
 * ../shared) with a GAP → Dense head, on a real HAM10000 image.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PixelImage } from '../../src/lib/data/resize.ts';
import { BACKBONES, buildBackbone } from '../../src/lib/model/backbones/index.ts';
import {
  colormap,
  gradCam,
  gradCamImage,
  gradCamTensors,
  heatmapRgba,
  overlayHeatmap,
} from '../../src/lib/model/gradcam.ts';
import { buildHead, composeModel, headConfig } from '../../src/lib/model/heads.ts';
import { filesIOHandler, loadTfjsLayersWeights, type FileLike } from '../../src/lib/model/weights/index.ts';
import { prepareImage } from '../../src/lib/predict.ts';
import { modelArtifacts } from '../../src/lib/runs/model.ts';

const root = join(import.meta.dirname, '..', '..');
const shared = join(root, '..', 'shared');

beforeAll(async () => {
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
});

const SIZE = 16;
/** Red square (class 0's evidence), top-left; green square (class 1's), bottom-right. Rows/cols [from, to). */
const RED = { r0: 2, r1: 6, c0: 2, c1: 6 };
const GREEN = { r0: 9, r1: 15, c0: 10, c1: 14 };

const inside = (box: typeof RED, r: number, c: number): boolean =>
  r >= box.r0 && r < box.r1 && c >= box.c0 && c < box.c1;

function twoSquares(): tf.Tensor4D {
  const data = new Float32Array(SIZE * SIZE * 3);
  for (let r = 0; r < SIZE; r++) {
    for (let c = 0; c < SIZE; c++) {
      if (inside(RED, r, c)) data[(r * SIZE + c) * 3] = 1;
      if (inside(GREEN, r, c)) data[(r * SIZE + c) * 3 + 1] = 1;
    }
  }
  return tf.tensor4d(data, [1, SIZE, SIZE, 3]);
}

/**
 * base: 1x1 conv `feat_conv` (channel 0 = red, channel 1 = green, ReLU) → 2x2 max pool (the base's output, as
 * VGG16's block5_pool follows block5_conv3); head: GAP → Dense(softmax) with class 0 = red − green, class 1 =
 * green − red. For class 0, α_red > 0 and α_green < 0, so the map is α_red on the red square and 0 elsewhere:
 * normalised, exactly the red square's mask.
 */
function handBuiltModel(): tf.LayersModel {
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'pixels' });
  const conv = tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'relu', name: 'feat_conv' });
  let x = conv.apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'block_pool' }).apply(x) as tf.SymbolicTensor;
  const base = tf.model({ inputs: input, outputs: x, name: 'hand_base' });
  conv.setWeights([tf.tensor4d([1, 0, 0, 1, 0, 0], [1, 1, 3, 2]), tf.zeros([2])]);
  const head = buildHead([2], headConfig({ kind: 'gap-dense', classes: 2 }));
  head.getLayer('predictions').setWeights([tf.tensor2d([4, -4, -4, 4], [2, 2]), tf.zeros([2])]);
  return composeModel(base, head);
}

function mask(box: typeof RED): number[] {
  return Array.from({ length: SIZE * SIZE }, (_, p) => (inside(box, Math.floor(p / SIZE), p % SIZE) ? 1 : 0));
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

describe('Grad-CAM on a hand-built network with known evidence regions', () => {
  let model: tf.LayersModel;
  let image: tf.Tensor4D;

  beforeAll(() => {
    model = handBuiltModel();
    image = twoSquares();
  });

  afterAll(() => {
    image.dispose();
    model.dispose();
  });

  it('maps class 0 exactly onto the red square and class 1 onto the green one', async () => {
    const red = await gradCam(model, image, { layerName: 'feat_conv', classIndex: 0 });
    const green = await gradCam(model, image, { layerName: 'feat_conv', classIndex: 1 });
    expect(red.score).toBe('logit');
    expect(red.featureSize).toEqual([SIZE, SIZE]);
    expect([red.width, red.height]).toEqual([SIZE, SIZE]);
    Array.from(red.heatmap).forEach((v, p) => expect(v).toBeCloseTo(mask(RED)[p]!, 6));
    Array.from(green.heatmap).forEach((v, p) => expect(v).toBeCloseTo(mask(GREEN)[p]!, 6));
  });

  it('explains the predicted class by default (the larger green square wins) and reports probabilities', async () => {
    const result = await gradCam(model, image, { layerName: 'feat_conv' });
    // GAP of the 8x8 pooled map: green covers 8 of its 64 cells, red 4 → logits ∓4·(8 − 4)/64.
    const logit = (4 * (8 - 4)) / 64;
    const p1 = 1 / (1 + Math.exp(-2 * logit));
    expect(result.classIndex).toBe(1);
    expect(result.probabilities[1]).toBeCloseTo(p1, 6);
    expect(result.probabilities[0]! + result.probabilities[1]!).toBeCloseTo(1, 6);
    const peak = argmax(result.heatmap);
    expect(inside(GREEN, Math.floor(peak / SIZE), peak % SIZE)).toBe(true);
  });

  it('upsamples to a requested size with values in [0, 1] and the peak still in the region', async () => {
    const result = await gradCam(model, image, { layerName: 'feat_conv', classIndex: 0, size: [64, 48] });
    expect([result.height, result.width]).toEqual([64, 48]);
    expect(result.heatmap.length).toBe(64 * 48);
    expect(Math.min(...result.heatmap)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...result.heatmap)).toBeLessThanOrEqual(1);
    const peak = argmax(result.heatmap);
    const [r, c] = [Math.floor(peak / 48), peak % 48];
    // Back to the 16x16 grid.
    expect(inside(RED, Math.floor((r * SIZE) / 64), Math.floor((c * SIZE) / 48))).toBe(true);
    // Mean heat inside the red square (scaled) is high, inside the green one nil.
    const heatIn = (box: typeof RED): number => {
      let sum = 0;
      let n = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 48; x++) {
          const gy = ((y + 0.5) * SIZE) / 64;
          const gx = ((x + 0.5) * SIZE) / 48;
          if (gy > box.r0 + 0.5 && gy < box.r1 - 0.5 && gx > box.c0 + 0.5 && gx < box.c1 - 0.5) {
            sum += result.heatmap[y * 48 + x]!;
            n++;
          }
        }
      }
      return sum / n;
    };
    expect(heatIn(RED)).toBeGreaterThan(0.95);
    expect(heatIn(GREEN)).toBeLessThan(0.01);
  });

  it('gives an all-zero map when nothing speaks for the class (no NaN from 0/0)', async () => {
    const blank = tf.zeros([1, SIZE, SIZE, 3]) as tf.Tensor4D;
    const result = await gradCam(model, blank, { layerName: 'feat_conv', classIndex: 0 });
    blank.dispose();
    expect(Array.from(result.heatmap).every((v) => v === 0)).toBe(true);
  });

  it('works the same on the model saved and loaded back with tf.loadLayersModel', async () => {
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(await modelArtifacts(model)));
    const a = await gradCam(model, image, { layerName: 'feat_conv', classIndex: 0 });
    const b = await gradCam(loaded, image, { layerName: 'feat_conv', classIndex: 0 });
    expect(Array.from(b.heatmap)).toEqual(Array.from(a.heatmap));
    loaded.dispose();
  });

  it('keeps the tensor count flat and disposes everything it creates', async () => {
    await gradCam(model, image, { layerName: 'feat_conv' });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await gradCam(model, image, { layerName: 'feat_conv', classIndex: i % 2 });
    expect(tf.memory().numTensors).toBe(before);
    const t = gradCamTensors(model, image, { layerName: 'feat_conv' });
    expect(tf.memory().numTensors).toBe(before + 3);
    tf.dispose([t.heatmap, t.classIndex, t.probabilities]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an unknown layer, a class out of range and a batch, naming what is wrong', () => {
    expect(() => gradCamTensors(model, image, { layerName: 'nope' })).toThrow(/no layer named "nope"/);
    expect(() => gradCamTensors(model, image, { layerName: 'feat_conv', classIndex: 2 })).toThrow(
      /class index 2/,
    );
    const two = tf.concat([image, image]) as tf.Tensor4D;
    expect(() => gradCamTensors(model, two, { layerName: 'feat_conv' })).toThrow(/one image at a time/);
    two.dispose();
  });
});

describe('heatmap colouring', () => {
  it('maps cold values to blue and hot ones to red in both colormaps', () => {
    for (const map of ['turbo', 'jet'] as const) {
      const [r0, , b0] = colormap(0.15, map);
      const [r1, , b1] = colormap(0.9, map);
      expect(b0).toBeGreaterThan(r0);
      expect(r1).toBeGreaterThan(b1);
    }
    expect(colormap(0.5, 'jet')).toEqual([128, 255, 128]);
  });

  it('leaves cold pixels untouched and tints hot ones, as opaque RGBA', () => {
    const image: PixelImage = {
      width: 2,
      height: 1,
      channels: 3,
      data: new Uint8Array([10, 20, 30, 40, 50, 60]),
    };
    const out = overlayHeatmap([0, 1], image, { opacity: 0.5, colormap: 'jet' });
    expect(Array.from(out.slice(0, 4))).toEqual([10, 20, 30, 255]);
    const [r, g, b] = colormap(1, 'jet');
    expect(Array.from(out.slice(4))).toEqual([
      Math.round(0.5 * 40 + 0.5 * r),
      Math.round(0.5 * 50 + 0.5 * g),
      Math.round(0.5 * 60 + 0.5 * b),
      255,
    ]);
    expect(() => overlayHeatmap([0], image)).toThrow(/needs 2/);
    const layer = heatmapRgba([0, 1], { opacity: 1 });
    expect([layer[3], layer[7]]).toEqual([0, 255]);
  });
});

function fileLike(path: string): FileLike {
  return {
    name: path.slice(path.lastIndexOf('/') + 1),
    arrayBuffer: async () => {
      const b = readFileSync(path);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  };
}

describe('Grad-CAM on the real MobileNetV2 0.35 (ImageNet) with a GAP → Dense head', () => {
  const spec = BACKBONES['mobilenet_v2_0.35'];
  let model: tf.LayersModel;
  let base: tf.LayersModel;
  let head: tf.LayersModel;
  let image: PixelImage;

  beforeAll(async () => {
    base = buildBackbone(spec.id, 224);
    const dir = join(shared, 'weights', 'tfjs-mobilenet-v2-0.35-224-notop');
    await loadTfjsLayersWeights(base, filesIOHandler(readdirSync(dir).map((n) => fileLike(join(dir, n)))));
    head = buildHead([1280], headConfig({ kind: 'gap-dense', classes: 7 }));
    model = composeModel(base, head);
    const originals = join(shared, 'data', 'ham10000', 'originals-600x450');
    const file = readdirSync(originals).filter((n) => n.endsWith('.jpg'))[0]!;
    const decoded = jpeg.decode(readFileSync(join(originals, file)), {
      useTArray: true,
      formatAsRGBA: false,
    });
    image = { width: decoded.width, height: decoded.height, channels: 3, data: decoded.data };
  });

  afterAll(() => model.dispose());

  it('gives a finite 224x224 map in [0, 1] from out_relu (7x7), with a flat tensor count', async () => {
    expect(spec.gradCamLayer).toBe('out_relu');
    const prepared = prepareImage(image, 224, spec.preprocessing);
    const before = tf.memory().numTensors;
    const started = performance.now();
    const result = await gradCam(model, prepared, { layerName: spec.gradCamLayer });
    const seconds = (performance.now() - started) / 1000;
    expect(tf.memory().numTensors).toBe(before);
    prepared.dispose();
    expect([result.width, result.height]).toEqual([224, 224]);
    expect(result.heatmap.length).toBe(224 * 224);
    expect(result.featureSize).toEqual([7, 7]);
    expect(result.score).toBe('logit');
    expect(Array.from(result.heatmap).every(Number.isFinite)).toBe(true);
    const min = Math.min(...result.heatmap);
    const max = Math.max(...result.heatmap);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThanOrEqual(1);
    // The predicted class always has some positive evidence: the map reaches 1 (up to upsampling).
    expect(max).toBeGreaterThan(0.9);
    console.info(
      `Grad-CAM MobileNetV2 0.35 @224 (wasm): ${seconds.toFixed(2)} s, class ${result.classIndex}, ` +
        `map min ${min.toFixed(3)} max ${max.toFixed(3)}`,
    );
  });

  /**
   * What a wrong map fails. For a GAP → Dense head, the gradient of class c's logit with respect to the feature
   * map is W[k, c] / (h·w) at every position, so Grad-CAM's channel weights are the Dense kernel's column and the
   * map is exactly CAM (Zhou et al. 2016; Selvaraju et al. 2017, §3.1): ReLU(Σ_k W[k, c] · A_ij^k) / max. That
   * closed form is computed here in plain JavaScript from the base's own predict() and the Dense kernel, with no
   * gradient, no GraphRun and no upsampling (the map is asked for at the feature map's 7x7). A map for the wrong
   * class, from gradients of the probability instead of the logit, with the sign or the ReLU lost, transposed, or
   * from another layer differs from it; the maps of different classes differ from each other.
   */
  it('equals the closed-form CAM of every class on out_relu, and explains the class the logits pick', async () => {
    const prepared = prepareImage(image, 224, spec.preprocessing);
    const features = base.predict(prepared) as tf.Tensor4D;
    const A = (await features.data()) as Float32Array;
    features.dispose();
    const [kernel, bias] = head.getLayer('predictions').getWeights();
    const W = (await kernel!.data()) as Float32Array;
    const b = (await bias!.data()) as Float32Array;
    const [h, w, k] = [7, 7, 1280];
    expect(A.length).toBe(h * w * k);
    const classes = 7;
    const reference = (c: number): number[] => {
      const cam = Array.from({ length: h * w }, (_, p) => {
        let sum = 0;
        for (let ch = 0; ch < k; ch++) sum += A[p * k + ch]! * W[ch * classes + c]!;
        return Math.max(0, sum);
      });
      const peak = Math.max(...cam);
      return cam.map((v) => (peak > 0 ? v / peak : 0));
    };
    const logits = Array.from({ length: classes }, (_, c) => {
      let sum = b[c]!;
      for (let p = 0; p < h * w; p++)
        for (let ch = 0; ch < k; ch++) sum += (A[p * k + ch]! * W[ch * classes + c]!) / (h * w);
      return sum;
    });
    const maps: Float32Array[] = [];
    try {
      const predicted = await gradCam(model, prepared, { layerName: spec.gradCamLayer, size: [7, 7] });
      expect(predicted.classIndex).toBe(argmax(logits));
      for (let c = 0; c < classes; c++) {
        const map = await gradCam(model, prepared, {
          layerName: spec.gradCamLayer,
          classIndex: c,
          size: [7, 7],
        });
        const ref = reference(c);
        const diff = Math.max(...ref.map((v, i) => Math.abs(v - map.heatmap[i]!)));
        expect(diff, `class ${c}`).toBeLessThan(1e-4);
        maps.push(map.heatmap);
      }
      expect(Array.from(predicted.heatmap)).toEqual(Array.from(maps[predicted.classIndex]!));
    } finally {
      prepared.dispose();
    }
    // Not one map for every class: the class index reaches the gradient.
    const other = (predictedClass: number) => (predictedClass + 1) % classes;
    const c0 = argmax(logits);
    const spread = Math.max(...Array.from(maps[c0]!, (v, i) => Math.abs(v - maps[other(c0)]![i]!)));
    expect(spread).toBeGreaterThan(0.1);
    // A real image gives a map that is not flat and not symmetric under transposition (so a row/column mix-up shows).
    const ref = reference(c0);
    const transposed = ref.map((_, p) => ref[(p % w) * w + Math.floor(p / w)]!);
    expect(Math.max(...ref.map((v, i) => Math.abs(v - transposed[i]!)))).toBeGreaterThan(0.05);
  });

  it('gives the map at the original 600x450 size for an overlay', async () => {
    const before = tf.memory().numTensors;
    const result = await gradCamImage(
      { model, preprocessing: spec.preprocessing, classes: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] },
      image,
      { layerName: spec.gradCamLayer },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect([result.width, result.height]).toEqual([600, 450]);
    expect(Array.from(result.heatmap).every((v) => Number.isFinite(v) && v >= 0 && v <= 1)).toBe(true);
    const rgba = overlayHeatmap(result.heatmap, image);
    expect(rgba.length).toBe(600 * 450 * 4);
  });
});
