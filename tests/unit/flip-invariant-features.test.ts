/**
 * The duplicate search's embedding is flip-invariant: with `flipInvariant`, extractFeatureBatches averages the pooled
 * features of each image and its three flips, so a mirrored or upside-down copy of a real HAM10000 image scores ~1
 * against its original, while distinct real lesions do not. Real MobileNetV2 0.35 ImageNet weights (../shared).
 */
import { pretrainedMobileNetV2 } from '../helpers/pretrained.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import Papa from 'papaparse';
import { beforeAll, describe, expect, it } from 'vitest';
import { nearDuplicates } from '../../src/lib/data/near-duplicates.ts';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { extractFeatureBatches } from '../../src/lib/train/featureCache.ts';

const root = join(import.meta.dirname, '..', '..');
const shared = join(root, '..', 'shared');
const DATA = join(shared, 'data', 'ham10000');
const SIZE = 96;

function image(imageId: string): Uint8Array {
  const d = jpeg.decode(readFileSync(join(DATA, 'all-200x150', `${imageId}.jpg`)), {
    useTArray: true,
    formatAsRGBA: false,
  });
  return resizeRgb({ width: d.width, height: d.height, data: d.data, channels: 3 }, SIZE, SIZE, 'catmull-rom')
    .data;
}

/** The image flipped left-right (`h`) and/or top-bottom (`v`), pixel for pixel. */
function flipped(img: Uint8Array, h: boolean, v: boolean): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const from = ((v ? SIZE - 1 - y : y) * SIZE + (h ? SIZE - 1 - x : x)) * 3;
      out.set(img.subarray(from, from + 3), (y * SIZE + x) * 3);
    }
  return out;
}

async function features(base: tf.LayersModel, pixels: Uint8Array[], flipInvariant: boolean) {
  const all = new Uint8Array(pixels.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => all.set(p, i * SIZE * SIZE * 3));
  const batches = extractFeatureBatches(
    base,
    async (positions) =>
      all.slice(positions[0]! * SIZE * SIZE * 3, (positions.at(-1)! + 1) * SIZE * SIZE * 3),
    pixels.length,
    {
      preprocess: (x) => preprocessInput(x, 'tf'),
      inputSize: SIZE,
      imageSize: SIZE,
      pool: true,
      flipInvariant,
      batchSize: 12,
    },
  );
  for (;;) {
    const step = await batches.next();
    if (step.done) return step.value.values;
  }
}

let base: tf.LayersModel;

beforeAll(async () => {
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
  base = await pretrainedMobileNetV2(SIZE);
});

describe('flip-invariant duplicate features', () => {
  it('scores flipped copies of a real image ~1 and distinct real lesions below', async () => {
    // 10 real images, one per lesion (the first 10 lesions of the metadata).
    const { data } = Papa.parse<Record<string, string>>(
      readFileSync(join(DATA, 'HAM10000_metadata.csv'), 'utf8'),
      { header: true, skipEmptyLines: true },
    );
    const seen = new Set<string>();
    const rows = data.filter((r) => !seen.has(r.lesion_id!) && seen.size < 10 && seen.add(r.lesion_id!));
    const originals = rows.map((r) => image(r.image_id!));
    const copies = [
      flipped(originals[0]!, true, false),
      flipped(originals[0]!, false, true),
      flipped(originals[0]!, true, true),
    ];
    const pixels = [...originals, ...copies];
    const input = (values: Float32Array) => ({
      features: values,
      dim: 1280,
      imageIds: [...rows.map((r) => r.image_id!), 'copy_h', 'copy_v', 'copy_hv'],
      // Each copy filed as a lesion of its own, as HAM10000's hidden duplicates are.
      lesionIds: [...rows.map((r) => r.lesion_id!), 'HAM_copy_h', 'HAM_copy_v', 'HAM_copy_hv'],
      dx: [...rows.map((r) => r.dx!), 'nv', 'nv', 'nv'],
    });
    const tensorsBefore = tf.memory().numTensors;
    const invariant = await nearDuplicates(input(await features(base, pixels, true)), { top: 20 });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const group = new Set([rows[0]!.image_id!, 'copy_h', 'copy_v', 'copy_hv']);
    const inGroup = (p: { a: string; b: string }) => group.has(p.a) && group.has(p.b);
    // The original and its three flips: 6 pairs, all ~1, first; then the most similar distinct lesions, well below.
    expect(invariant.pairs.slice(0, 6).every(inGroup)).toBe(true);
    for (const p of invariant.pairs.slice(0, 6)) expect(p.similarity).toBeGreaterThanOrEqual(0.999);
    expect(invariant.pairs[6]!.similarity).toBeLessThan(0.9);
    expect(invariant.pairs.slice(6).some(inGroup)).toBe(false);

    // Without the flip average the same backbone scores a mirrored copy clearly below 1.
    const plain = await nearDuplicates(input(await features(base, pixels, false)), { top: 100 });
    const mirrored = plain.pairs.find(
      (p) => group.has(p.a) && group.has(p.b) && [p.a, p.b].includes('copy_h'),
    )!;
    expect(mirrored.similarity).toBeLessThan(0.99);
  }, 120_000);
});
