/**
 * Reproducible runs: the same config and seed give the same run, batch by batch, on the CPU and WASM backends —
 * the head's initial weights, a random base's kernels, the shuffle, the augmentation and the dropout masks all come
 * from the run's seed. Real HAM10000 images (../shared) through MobileNet v1 0.25 at 96 px.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dxIndex, isDx } from '../../src/lib/data/dx.ts';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import type { LesionRecord } from '../../src/lib/data/types.ts';
import { augmentOptions } from '../../src/lib/model/augment-options.ts';
import { buildHead, headConfig } from '../../src/lib/model/heads.ts';
import { getBackbone } from '../../src/lib/model/backbones/index.ts';
import { BackendManager } from '../../src/lib/train/backend.ts';
import { runConfig, type RunConfig } from '../../src/lib/train/config.ts';
import { MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import type { RunLog } from '../../src/lib/train/logs.ts';
import { disposeNetwork } from '../../src/lib/train/network.ts';
import { runSession } from '../../src/lib/train/session.ts';
import { dropoutLayers, reseedDropout, seedInitialWeights } from '../../src/lib/train/seeding.ts';
import { createRandom } from '../../src/lib/random.ts';

const DATA = '../shared/data/ham10000';
const SIZE = 96;

let cache: MemoryImageDataset;
let records: LesionRecord[];

beforeAll(async () => {
  const require = createRequire(import.meta.url);
  setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  await tf.setBackend('cpu');
  const lines = readFileSync(join(DATA, 'HAM10000_metadata.csv'), 'utf8').trim().split('\n').slice(1);
  const want: Partial<Record<string, number>> = { bcc: 8, bkl: 8, mel: 8, nv: 8 };
  records = [];
  const pixels: Uint8Array[] = [];
  for (const [n, line] of lines.entries()) {
    const [lesionId, imageId, dx] = line.split(',');
    if (!lesionId || !imageId || !dx || !isDx(dx) || !want[dx]) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(DATA, 'all-200x150', `${imageId}.jpg`));
    } catch {
      continue; // the two images missing from all-200x150
    }
    const decoded = jpeg.decode(bytes, { useTArray: true });
    pixels.push(resizeRgb({ ...decoded, channels: 4 }, SIZE, SIZE).data);
    records.push({
      imageId,
      lesionId,
      dx,
      dxType: null,
      age: null,
      sex: null,
      localization: null,
      line: n + 2,
    });
    want[dx]! -= 1;
  }
  const all = new Uint8Array(pixels.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => all.set(p, i * SIZE * SIZE * 3));
  cache = new MemoryImageDataset(
    SIZE,
    all,
    records.map((r) => dxIndex(r.dx)),
  );
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

async function values(model: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.weights.map(async (w) => Float32Array.from(await w.read().data())));
}

describe('seeded initialisers', () => {
  it("draw the head's Dense kernels from the seed (biases zero)", async () => {
    const config = headConfig({ kind: 'gap-dense-dropout-dense', hiddenUnits: 16 });
    const a = buildHead([32], config, { seed: 5 });
    const b = buildHead([32], config, { seed: 5 });
    const c = buildHead([32], config, { seed: 6 });
    try {
      const [va, vb, vc] = await Promise.all([values(a), values(b), values(c)]);
      expect(va).toEqual(vb);
      expect(va[0]).not.toEqual(vc[0]);
      // Two kernels from two different seeds: not the same draw.
      expect(va[0]!.slice(0, 16)).not.toEqual(va[2]!.slice(0, 16));
      expect(Array.from(va[1]!).every((v) => v === 0)).toBe(true);
      // Glorot-uniform: |w| ≤ √(6 / (fan_in + fan_out)).
      const limit = Math.sqrt(6 / (32 + 16));
      expect(Math.max(...Array.from(va[0]!).map(Math.abs))).toBeLessThanOrEqual(limit);
    } finally {
      for (const m of [a, b, c]) m.dispose();
    }
  });

  it("draw a random base's conv kernels again from the seed", async () => {
    const spec = getBackbone('mobilenet_v1_0.25');
    const a = spec.build(SIZE);
    const b = spec.build(SIZE);
    try {
      expect(await values(a)).not.toEqual(await values(b));
      const drawn = seedInitialWeights(a, 9);
      expect(seedInitialWeights(b, 9)).toBe(drawn);
      // 14 convolutions and 13 depthwise convolutions in MobileNet v1 without its top.
      expect(drawn).toBe(27);
      expect(await values(a)).toEqual(await values(b));
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('give each training step its own dropout mask, the same ones again from the same stream', () => {
    const head = buildHead(
      [64],
      headConfig({ kind: 'gap-dense-dropout-dense', hiddenUnits: 64, dropout: 0.5 }),
    );
    const layers = dropoutLayers(head);
    expect(layers.map((l) => l.name)).toEqual(['head_dropout']);
    const draw = (seed: number): number[][] => {
      const random = createRandom(seed);
      return [0, 1].map(() => {
        reseedDropout(layers, random);
        return tf.tidy(() => {
          const out = layers[0]!.apply(tf.ones([1, 64]), { training: true }) as tf.Tensor;
          return Array.from(out.dataSync());
        });
      });
    };
    const [first, second] = draw(1);
    expect(first).not.toEqual(second);
    expect(draw(1)).toEqual([first, second]);
    expect(first!.filter((v) => v === 0).length).toBeGreaterThan(10);
    head.dispose();
  });
});

async function batchLosses(config: RunConfig, backend: 'cpu' | 'wasm'): Promise<number[]> {
  const session = runSession(config, {
    dataset: cache,
    records,
    pretrained: null,
    backends: new BackendManager({ webgpu: null, webgl: null, wasm: true }, { override: backend }),
    runId: 'repro',
    weightsId: 'random',
  });
  const losses: number[] = [];
  let step = await session.next();
  while (!step.done) {
    const log: RunLog = step.value;
    if (log.type === 'batch') losses.push(log.loss);
    if (log.type === 'epoch') losses.push(log.val_loss);
    step = await session.next();
  }
  disposeNetwork(step.value.result.network);
  return losses;
}

describe('two runs of the same config', () => {
  // A random base, augmentation, the dropout head and a fresh shuffle every epoch: everything seeded.
  const config = runConfig({
    backbone: 'mobilenet_v1_0.25',
    imageSize: 96,
    head: headConfig({ kind: 'gap-dense-dropout-dense', hiddenUnits: 32, dropout: 0.3 }),
    augment: augmentOptions(),
    epochs: 2,
    batchSize: 8,
    featureCache: false,
    earlyStopping: null,
    reduceLr: null,
    checkpoint: null,
    split: { seed: 1337, ratios: [0.6, 0.2, 0.2], grouped: true },
    seed: 42,
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`give identical losses on ${backend}, and another seed other losses`, async () => {
      const one = await batchLosses(config, backend);
      const two = await batchLosses(config, backend);
      expect(one.length).toBeGreaterThan(4);
      expect(two).toEqual(one);
      const other = await batchLosses({ ...config, seed: 43 }, backend);
      expect(other).not.toEqual(one);
    }, 120_000);
  }
});
