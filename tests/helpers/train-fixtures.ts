/**
 * Fixtures of the training-loop tests: 40 real HAM10000 images (../shared, decoded with jpeg-js and resized to
 * 16×16 as the cache resizes) and a tiny conv network with the backbone registry's block structure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { expect } from 'vitest';
import { DX, dxIndex, isDx } from '../../src/lib/data/dx.ts';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import type { TrainLog } from '../../src/lib/train/logs.ts';
import { train, type Network, type TrainOptions, type TrainResult } from '../../src/lib/train/loop.ts';

export const SIZE = 16;
export const DATA = '../shared/data/ham10000';
const PER_CLASS: Partial<Record<(typeof DX)[number], number>> = { bcc: 10, bkl: 10, mel: 10, nv: 10 };

export function loadDataset(): MemoryImageDataset {
  const lines = readFileSync(join(DATA, 'HAM10000_metadata.csv'), 'utf8').trim().split('\n').slice(1);
  const want = { ...PER_CLASS };
  const pixels: Uint8Array[] = [];
  const labels: number[] = [];
  for (const line of lines) {
    const [, imageId, dx] = line.split(',');
    if (!imageId || !dx || !isDx(dx) || !want[dx]) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(DATA, 'all-200x150', `${imageId}.jpg`));
    } catch {
      continue; // the two images missing from all-200x150
    }
    const decoded = jpeg.decode(bytes, { useTArray: true });
    pixels.push(resizeRgb({ ...decoded, channels: 4 }, SIZE, SIZE).data);
    labels.push(dxIndex(dx));
    want[dx] -= 1;
  }
  const all = new Uint8Array(pixels.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => all.set(p, i * SIZE * SIZE * 3));
  return new MemoryImageDataset(SIZE, all, labels);
}

/**
 * Base: two conv blocks with BatchNormalization whose moving statistics are not the identity, so inference and
 * training mode differ. Head: GAP → Dense(7, softmax) ('gap-dense'), or GAP → Dense(8) → Dropout → Dense(7).
 */
export function buildNetwork(options: { dropout?: boolean; seed?: number; headSeed?: number } = {}): Network {
  const seed = options.seed ?? 1;
  const headSeed = options.headSeed ?? seed;
  const glorot = (s: number) => tf.initializers.glorotUniform({ seed: (s > 2 ? headSeed : seed) * 100 + s });
  const bn = (name: string) =>
    tf.layers.batchNormalization({
      name,
      movingMeanInitializer: tf.initializers.constant({ value: 0.2 }),
      movingVarianceInitializer: tf.initializers.constant({ value: 3 }),
    });
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'input' });
  let x = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'block1_conv', kernelInitializer: glorot(1) })
    .apply(input) as tf.SymbolicTensor;
  x = bn('block1_bn').apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'relu', name: 'block1_relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      name: 'block2_conv',
      kernelInitializer: glorot(2),
    })
    .apply(x) as tf.SymbolicTensor;
  x = bn('block2_bn').apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'relu', name: 'block2_relu' }).apply(x) as tf.SymbolicTensor;
  const base = tf.model({ inputs: input, outputs: x, name: 'base' });

  const features = tf.input({ shape: [SIZE / 2, SIZE / 2, 8], name: 'features' });
  let h = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(features) as tf.SymbolicTensor;
  if (options.dropout) {
    h = tf.layers
      .dense({ units: 8, activation: 'relu', name: 'fc', kernelInitializer: glorot(3) })
      .apply(h) as tf.SymbolicTensor;
    h = tf.layers.dropout({ rate: 0.2, name: 'drop' }).apply(h) as tf.SymbolicTensor;
  }
  h = tf.layers
    .dense({ units: DX.length, activation: 'softmax', name: 'predictions', kernelInitializer: glorot(4) })
    .apply(h) as tf.SymbolicTensor;
  const head = tf.model({ inputs: features, outputs: h, name: 'head' });
  return {
    base,
    head,
    inputSize: SIZE,
    preprocess: (images) => tf.tidy(() => tf.sub(tf.div(images, 127.5), 1)),
    blocks: { blocks: ['block1', 'block2'], blockOf: (name) => /^(block\d+)_/.exec(name)?.[1] ?? null },
  };
}

export function disposeNetwork(network: Network): void {
  network.base.dispose();
  network.head.dispose();
}

export async function weightsOf(model: tf.LayersModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const w of model.weights) out.set(w.originalName, Float32Array.from(await w.read().data()));
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export interface Run {
  logs: TrainLog[];
  result: TrainResult;
  /** numTensors right after each batch log and each epoch log. */
  tensorsAtBatch: number[];
  tensorsAtEpoch: number[];
}

export async function run(options: TrainOptions, onLog?: (log: TrainLog) => void): Promise<Run> {
  const logs: TrainLog[] = [];
  const tensorsAtBatch: number[] = [];
  const tensorsAtEpoch: number[] = [];
  const gen = train(options);
  for (;;) {
    const step = await gen.next();
    if (step.done) return { logs, result: step.value, tensorsAtBatch, tensorsAtEpoch };
    logs.push(step.value);
    if (step.value.type === 'batch') tensorsAtBatch.push(tf.memory().numTensors);
    if (step.value.type === 'epoch') tensorsAtEpoch.push(tf.memory().numTensors);
    onLog?.(step.value);
  }
}

export const ofType = <T extends TrainLog['type']>(logs: TrainLog[], type: T) =>
  logs.filter((l): l is Extract<TrainLog, { type: T }> => l.type === type);
