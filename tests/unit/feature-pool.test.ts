/**
 * The feature pool's scheduling, in Node: the batches of a split shared out among instances that each hold their own
 * copy of the base (built here from the weights the pool reads out of the base, as a feature worker builds it),
 * the features put back in order and equal to the in-process path's; progress; an instance that fails is named and
 * the rest of the split is computed in-process; stop ends the instances; the plan of instances and threads.
 * Real MobileNetV2 0.35 ImageNet weights and real HAM10000 images (../shared), WASM backend.
 */
import { pretrainedMobileNetV2 } from '../helpers/pretrained.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { buildBackbone } from '../../src/lib/model/backbones/index.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { writeWeights } from '../../src/lib/train/checkpoint.ts';
import {
  extractFeatureBatches,
  featuresOfBatch,
  type ExtractOptions,
} from '../../src/lib/train/featureCache.ts';
import {
  FeaturePool,
  MAX_FEATURE_WORKERS,
  planFeatureWorkers,
  type FeatureInstance,
  type StartFeatureInstance,
} from '../../src/lib/train/feature-pool.ts';

const root = join(import.meta.dirname, '..', '..');
const shared = join(root, '..', 'shared');
const IMAGES = join(shared, 'data', 'ham10000', 'all-200x150');
const SIZE = 96;
const COUNT = 23; // 5 batches of 5 and a last one of 3

let base: tf.LayersModel;
let pixels: Uint8Array;

function read(positions: readonly number[]): Promise<Uint8Array> {
  const bytes = SIZE * SIZE * 3;
  return Promise.resolve(pixels.slice(positions[0]! * bytes, (positions.at(-1)! + 1) * bytes));
}

const options: ExtractOptions = {
  preprocess: (x) => preprocessInput(x, 'tf'),
  inputSize: SIZE,
  imageSize: SIZE,
  pool: true,
  batchSize: 5,
};

async function drain<T, R>(generator: AsyncGenerator<T, R>, seen: T[] = []): Promise<R> {
  for (;;) {
    const step = await generator.next();
    if (step.done) return step.value;
    seen.push(step.value);
  }
}

interface Started {
  instances: FeatureInstance[];
  batches: number[];
  disposed: number;
}

/**
 * Instances in this process, each with its own base built from the weights the pool sends (as feature.worker.ts
 * does); `failOn`: the instance with this index rejects its second batch, as a crashed worker would.
 */
function inProcess(started: Started, failOn: number | null = null): StartFeatureInstance {
  return async ({ weights }, index, count) => {
    const copy = buildBackbone('mobilenet_v2_0.35', SIZE);
    writeWeights(
      copy.weights.map((w) => w.read() as tf.Variable),
      weights,
    );
    let batches = 0;
    const instance: FeatureInstance = {
      name: `instance ${index + 1} of ${count}`,
      async features(batch, n, settings) {
        batches++;
        started.batches.push(index);
        if (index === failOn && batches === 2) throw new Error('simulated crash of this instance');
        // Out of order on purpose: a later instance finishes first.
        await new Promise((resolve) => setTimeout(resolve, (count - index) * 5));
        return featuresOfBatch(copy, batch, n, { ...settings, preprocess: options.preprocess });
      },
      dispose() {
        started.disposed++;
        copy.dispose();
      },
    };
    started.instances.push(instance);
    return instance;
  };
}

beforeAll(async () => {
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
  base = await pretrainedMobileNetV2(SIZE);
  const names = readdirSync(IMAGES)
    .filter((n) => n.endsWith('.jpg'))
    .sort()
    .slice(0, COUNT);
  pixels = new Uint8Array(COUNT * SIZE * SIZE * 3);
  names.forEach((name, i) => {
    const d = jpeg.decode(readFileSync(join(IMAGES, name)), { useTArray: true, formatAsRGBA: false });
    const rgb = resizeRgb(
      { width: d.width, height: d.height, data: d.data, channels: 3 },
      SIZE,
      SIZE,
      'catmull-rom',
    );
    pixels.set(rgb.data, i * SIZE * SIZE * 3);
  });
});

describe('feature pool', () => {
  it('shares the batches among its instances and returns the in-process features, in order', async () => {
    const single = await drain(extractFeatureBatches(base, read, COUNT, options));
    const started: Started = { instances: [], batches: [], disposed: 0 };
    const pool = new FeaturePool({ workers: 2, threads: 1 }, inProcess(started));
    expect(pool.workersFor('wasm')).toEqual({ workers: 2, threads: 1 });
    expect(pool.workersFor('webgpu')).toBeNull();
    const progress: { done: number; total: number }[] = [];
    const tensors = tf.memory().numTensors;
    const pooled = await drain(pool.extract(base, read, COUNT, options), progress);
    expect(pooled.shape).toEqual(single.shape);
    expect(pooled.values.length).toBe(COUNT * 1280);
    let worst = 0;
    for (let i = 0; i < single.values.length; i++)
      worst = Math.max(worst, Math.abs(single.values[i]! - pooled.values[i]!));
    expect(worst).toBe(0);
    // Both instances worked; progress counts every image once, up to the total.
    expect(new Set(started.batches)).toEqual(new Set([0, 1]));
    expect(started.batches.length).toBe(5);
    expect(progress.length).toBe(5);
    expect(progress.every((p, i) => i === 0 || p.done > progress[i - 1]!.done)).toBe(true);
    expect(progress.at(-1)).toEqual({ done: COUNT, total: COUNT });
    // A second split reuses the instances (same base); dispose ends them.
    await drain(pool.extract(base, read, 7, options));
    expect(started.instances.length).toBe(2);
    pool.dispose();
    expect(started.disposed).toBe(2);
    expect(pool.fallback).toBeNull();
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('names an instance that fails, ends them all and computes the rest in-process', async () => {
    const single = await drain(extractFeatureBatches(base, read, COUNT, options));
    const started: Started = { instances: [], batches: [], disposed: 0 };
    const pool = new FeaturePool({ workers: 2, threads: 1 }, inProcess(started, 1));
    const progress: { done: number; total: number }[] = [];
    const pooled = await drain(pool.extract(base, read, COUNT, options), progress);
    expect(pool.fallback).toMatch(
      /^instance 2 of 2 failed on images \d+–\d+ of 23: simulated crash of this instance$/,
    );
    expect(started.disposed).toBe(2);
    expect(Array.from(pooled.values)).toEqual(Array.from(single.values));
    expect(progress.at(-1)).toEqual({ done: COUNT, total: COUNT });
    // The run's later splits stay in this process.
    expect(pool.workersFor('wasm')).toBeNull();
  });

  it('falls back when an instance cannot start, naming why', async () => {
    const pool = new FeaturePool({ workers: 2, threads: 1 }, async () => {
      throw new Error('feature worker 1 of 2 did not start within 60 s');
    });
    const single = await drain(extractFeatureBatches(base, read, 7, options));
    const pooled = await drain(pool.extract(base, read, 7, options));
    expect(pool.fallback).toBe(
      'the feature workers did not start: feature worker 1 of 2 did not start within 60 s',
    );
    expect(Array.from(pooled.values)).toEqual(Array.from(single.values));
  });

  it('ends its instances when extraction is stopped mid-split', async () => {
    const started: Started = { instances: [], batches: [], disposed: 0 };
    const pool = new FeaturePool({ workers: 2, threads: 1 }, inProcess(started));
    const extraction = pool.extract(base, read, COUNT, options);
    const first = await extraction.next();
    expect(first.done).toBe(false);
    await extraction.return(undefined as never);
    expect(started.disposed).toBe(2);
    pool.dispose();
  });

  it('plans one instance per core (at most 4), threads only where the page is isolated, MobileNets only', () => {
    const env = { crossOriginIsolated: true, simd: true, family: 'mobilenet_v2' as const };
    expect(planFeatureWorkers({ ...env, hardwareConcurrency: 1 })).toBeNull();
    expect(planFeatureWorkers({ ...env, hardwareConcurrency: undefined })).toBeNull();
    expect(planFeatureWorkers({ ...env, hardwareConcurrency: 2 })).toEqual({ workers: 2, threads: 1 });
    expect(planFeatureWorkers({ ...env, hardwareConcurrency: 4 })).toEqual({ workers: 4, threads: 1 });
    expect(planFeatureWorkers({ ...env, hardwareConcurrency: 8 })).toEqual({
      workers: MAX_FEATURE_WORKERS,
      threads: 2,
    });
    expect(planFeatureWorkers({ ...env, hardwareConcurrency: 16 })).toEqual({ workers: 4, threads: 4 });
    expect(planFeatureWorkers({ ...env, family: 'mobilenet_v1', hardwareConcurrency: 4 })).toEqual({
      workers: 4,
      threads: 1,
    });
    // The heavy backbones' activations per instance are not measured: they stay in the training worker.
    expect(planFeatureWorkers({ ...env, family: 'vgg16', hardwareConcurrency: 8 })).toBeNull();
    expect(planFeatureWorkers({ ...env, family: 'resnet50v2', hardwareConcurrency: 8 })).toBeNull();
    expect(planFeatureWorkers({ ...env, crossOriginIsolated: false, hardwareConcurrency: 8 })).toEqual({
      workers: 4,
      threads: 1,
    });
  });
});
