/**
 * Feature workers in Chromium: real HAM10000 JPEGs go through the ingest worker into the OPFS cache (96 px), then
 * the frozen MobileNetV2 0.35 (the ImageNet weights served with the app) computes their pooled features twice from
 * that cache — in this page with `extractFeatureBatches` (the training worker's in-process path) and through the
 * FeaturePool on two real feature workers (src/worker/feature.worker.ts, each its own WASM instance) — and the
 * two must be the same. Also: a feature worker that cannot build the base is named, and the pool falls back.
 */
import * as tf from '@tensorflow/tfjs';
import { pickFiles } from '../helpers/pick-files.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackbone } from '../../src/lib/model/backbones/index.ts';
import { useKerasBatchNormSemantics } from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { loadTfjsLayersWeights } from '../../src/lib/model/weights/index.ts';
import { extractFeatureBatches, type ExtractOptions } from '../../src/lib/train/featureCache.ts';
import { FeaturePool } from '../../src/lib/train/feature-pool.ts';
import { IngestClient } from '../../src/worker/ingest-client.ts';
import { openImageCache, type ImageCache } from '../../src/worker/cache/opfs-cache.ts';
import { FeatureWorkerClient, startFeatureWorker } from '../../src/worker/feature-client.ts';
import { installWasmBackend } from '../../src/worker/wasm-threads.ts';

const SHARED = '../shared';
const SIZE = 96;
const IMAGES = 45;

let cache: ImageCache;
let base: tf.LayersModel;

async function drain<T, R>(generator: AsyncGenerator<T, R>, seen: T[] = []): Promise<R> {
  for (;;) {
    const step = await generator.next();
    if (step.done) return step.value;
    seen.push(step.value);
  }
}

const options: ExtractOptions = {
  preprocess: (x) => preprocessInput(x, getBackbone('mobilenet_v2_0.35').preprocessing),
  inputSize: SIZE,
  imageSize: SIZE,
  pool: true,
  batchSize: 8,
};

beforeAll(async () => {
  const [csv] = await pickFiles([`${SHARED}/data/ham10000/HAM10000_metadata.csv`]);
  const ids = (await csv!.text())
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',')[1]!)
    .filter((_, i) => i % 200 === 0)
    .slice(0, IMAGES);
  const images = await pickFiles(ids.map((id) => `${SHARED}/data/ham10000/all-200x150/${id}.jpg`));
  const ingest = new IngestClient({ decoders: 2 });
  try {
    await ingest.addFiles([csv!, ...images]);
    expect((await ingest.startCaching(SIZE)).count).toBe(IMAGES);
  } finally {
    ingest.dispose();
  }
  cache = await openImageCache(SIZE);
  installWasmBackend();
  expect(await tf.setBackend('wasm')).toBe(true);
  base = getBackbone('mobilenet_v2_0.35').build(SIZE);
  await loadTfjsLayersWeights(base, new URL('/models/mobilenet_v2_0.35/model.json', location.href).href);
  base.trainable = false;
  useKerasBatchNormSemantics(base);
});

afterAll(() => {
  cache?.close();
  base?.dispose();
});

describe('feature workers', () => {
  it('compute the same features of real cached images as the in-process path, in order', async () => {
    const read = (positions: readonly number[]) => cache.readImages(positions);
    const tensors = tf.memory().numTensors;
    const t0 = performance.now();
    const single = await drain(extractFeatureBatches(base, read, cache.count, options));
    const singleSeconds = (performance.now() - t0) / 1000;
    const pool = new FeaturePool({ workers: 2, threads: 1 }, startFeatureWorker('mobilenet_v2_0.35', SIZE));
    try {
      const progress: { done: number; total: number }[] = [];
      const t1 = performance.now();
      const pooled = await drain(pool.extract(base, read, cache.count, options), progress);
      const poolSeconds = (performance.now() - t1) / 1000;
      expect(pool.fallback).toBeNull();
      expect(pooled.shape).toEqual([1280]);
      expect(pooled.values.length).toBe(single.values.length);
      let worst = 0;
      for (let i = 0; i < single.values.length; i++)
        worst = Math.max(worst, Math.abs(single.values[i]! - pooled.values[i]!));
      console.info(
        `[feature-pool] ${IMAGES} images: in-process ${singleSeconds.toFixed(2)} s, 2 feature workers ` +
          `${poolSeconds.toFixed(2)} s (starting them included); max |difference| ${worst}`,
      );
      expect(worst).toBeLessThanOrEqual(1e-6);
      expect(progress.at(-1)).toEqual({ done: IMAGES, total: IMAGES });
      expect(progress.length).toBe(Math.ceil(IMAGES / 8));
      // A second split on the same instances.
      const again = await drain(pool.extract(base, read, 10, options));
      expect(Array.from(again.values)).toEqual(Array.from(pooled.values.subarray(0, 10 * 1280)));
    } finally {
      pool.dispose();
    }
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('name a feature worker that cannot build the base, and the pool computes the split in this page', async () => {
    await expect(
      FeatureWorkerClient.start('feature worker 1 of 1', {
        backbone: 'mobilenet_v2_0.35',
        inputSize: SIZE,
        threads: 1,
        weights: [],
      }),
    ).rejects.toThrow(
      /^feature worker 1 of 1 could not build the base: the base's weights differ from the mobilenet_v2_0.35 built here \(0 sent, 260 here; Conv1\/kernel was not sent\)$/,
    );
    const pool = new FeaturePool({ workers: 2, threads: 1 }, ({ threads }, index, count) =>
      FeatureWorkerClient.start(`feature worker ${index + 1} of ${count}`, {
        backbone: 'mobilenet_v1_0.25',
        inputSize: SIZE,
        threads,
        weights: [],
      }),
    );
    const read = (positions: readonly number[]) => cache.readImages(positions);
    const pooled = await drain(pool.extract(base, read, 10, options));
    expect(pool.fallback).toMatch(
      /^the feature workers did not start: feature worker \d of 2 could not build the base/,
    );
    const single = await drain(extractFeatureBatches(base, read, 10, options));
    expect(Array.from(pooled.values)).toEqual(Array.from(single.values));
  });
});
