/**
 * The training loop on WebGPU in headless Chromium (SwiftShader, a software GPU: tiny model, 16×16 inputs), against
 * tfjs's CPU backend: same initial weights and batches give the same per-step losses; the tensor count stays flat;
 * destroying the real GPUDevice mid-epoch makes training resume from the last epoch on another backend.
 * Images: 32 real HAM10000 images from ../shared, handed to the page through a file input, decoded with jpeg-js and
 * resized as the cache resizes.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlainUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import type {} from '../helpers/ingest-commands.ts';
import { DX, dxIndex, isDx } from '../../src/lib/data/dx.ts';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { applyAffine, augmentOptions, sampleAffine } from '../../src/lib/model/augment.ts';
import { createRandom } from '../../src/lib/random.ts';
import { chooseBackend, DeviceWatch, registerWebGPU, type WebGPUSetup } from '../../src/lib/train/backend.ts';
import { MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import type { TrainLog } from '../../src/lib/train/logs.ts';
import { train, type Network, type TrainOptions } from '../../src/lib/train/loop.ts';
import { useWebGPUWeightGradients } from '../../src/lib/webgpu/weight-gradients.ts';

const SIZE = 16;
const SHARED = '../shared/data/ham10000';

async function filesFromDisk(paths: string[]): Promise<File[]> {
  const input = document.createElement('input');
  input.type = 'file';
  input.multiple = true;
  input.id = `files-${Math.random().toString(36).slice(2)}`;
  document.body.append(input);
  try {
    await commands.setInputFilesFromDisk(`#${input.id}`, paths);
    return Array.from(input.files ?? []);
  } finally {
    input.remove();
  }
}

async function loadDataset(): Promise<MemoryImageDataset> {
  const [csv] = await filesFromDisk([`${SHARED}/HAM10000_metadata.csv`]);
  const want: Partial<Record<string, number>> = { bcc: 8, bkl: 8, mel: 8, nv: 8 };
  const picked: Array<{ imageId: string; label: number }> = [];
  for (const line of (await csv!.text()).trim().split('\n').slice(1)) {
    const [, imageId, dx] = line.split(',');
    if (!imageId || !dx || !isDx(dx) || !want[dx]) continue;
    picked.push({ imageId, label: dxIndex(dx) });
    want[dx] -= 1;
  }
  const files = await filesFromDisk(picked.map((p) => `${SHARED}/all-200x150/${p.imageId}.jpg`));
  const pixels = new Uint8Array(files.length * SIZE * SIZE * 3);
  for (const [i, file] of files.entries()) {
    const decoded = jpeg.decode(new Uint8Array(await file.arrayBuffer()), { useTArray: true });
    pixels.set(resizeRgb({ ...decoded, channels: 4 }, SIZE, SIZE).data, i * SIZE * SIZE * 3);
  }
  return new MemoryImageDataset(
    SIZE,
    pixels,
    picked.map((p) => p.label),
  );
}

/** A tiny conv base with BatchNormalization (non-trivial moving statistics) and a GAP → Dense head, seeded. */
function buildNetwork(headSeed = 1): Network {
  const glorot = (s: number) => tf.initializers.glorotUniform({ seed: s });
  const bn = (name: string) =>
    tf.layers.batchNormalization({
      name,
      movingMeanInitializer: tf.initializers.constant({ value: 0.2 }),
      movingVarianceInitializer: tf.initializers.constant({ value: 3 }),
    });
  const input = tf.input({ shape: [SIZE, SIZE, 3] });
  let x = tf.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      name: 'block1_conv',
      kernelInitializer: glorot(101),
    })
    .apply(input) as tf.SymbolicTensor;
  x = bn('block1_bn').apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      name: 'block2_conv',
      kernelInitializer: glorot(102),
    })
    .apply(x) as tf.SymbolicTensor;
  x = bn('block2_bn').apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  const base = tf.model({ inputs: input, outputs: x });
  const features = tf.input({ shape: [SIZE / 2, SIZE / 2, 8] });
  let h = tf.layers.globalAveragePooling2d({}).apply(features) as tf.SymbolicTensor;
  h = tf.layers
    .dense({
      units: DX.length,
      activation: 'softmax',
      name: 'predictions',
      kernelInitializer: glorot(100 * headSeed + 4),
    })
    .apply(h) as tf.SymbolicTensor;
  const head = tf.model({ inputs: features, outputs: h });
  return {
    base,
    head,
    inputSize: SIZE,
    preprocess: (images) => tf.tidy(() => tf.sub(tf.div(images, 127.5), 1)),
    blocks: { blocks: ['block1', 'block2'], blockOf: (name) => /^(block\d+)_/.exec(name)?.[1] ?? null },
  };
}

function disposeNetwork(network: Network): void {
  for (const m of [network.base, network.head]) {
    try {
      m.dispose();
    } catch {
      // a lost device
    }
  }
}

interface Run {
  logs: TrainLog[];
  tensorsAtBatch: number[];
  /** Wall ms between consecutive batch logs of an epoch (one step each, after the first). */
  stepMs: number[];
  network: Network;
}

async function run(options: TrainOptions, onLog?: (log: TrainLog) => void): Promise<Run> {
  const logs: TrainLog[] = [];
  const tensorsAtBatch: number[] = [];
  const stepMs: number[] = [];
  let last = 0;
  const gen = train(options);
  for (;;) {
    const step = await gen.next();
    if (step.done) return { logs, tensorsAtBatch, stepMs, network: step.value.network };
    const log = step.value;
    logs.push(log);
    if (log.type === 'batch') {
      tensorsAtBatch.push(tf.memory().numTensors);
      const t = performance.now();
      if (log.batch > 1) stepMs.push(t - last);
      last = t;
    }
    onLog?.(log);
  }
}

const batchLosses = (logs: TrainLog[]) => logs.flatMap((l) => (l.type === 'batch' ? [l.loss] : []));
const epochLogs = (logs: TrainLog[]) =>
  logs.filter((l): l is Extract<TrainLog, { type: 'epoch' }> => l.type === 'epoch');
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

let dataset: MemoryImageDataset;
let trainIdx: number[];
let valIdx: number[];
let gpu: WebGPUSetup;
const watch = new DeviceWatch();
let cpuReference: Run;

const options = (network: Network): TrainOptions => ({
  network,
  data: { dataset, train: trainIdx, val: valIdx },
  epochs: 3,
  batchSize: 8,
  learningRate: 1e-2,
  featureCache: false, // every batch through the base and head: conv, BN, GAP, dense on the backend under test
  seed: 5,
});

beforeAll(async () => {
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmPlainUrl,
    'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
  });
  dataset = await loadDataset();
  trainIdx = [];
  valIdx = [];
  for (let i = 0; i < dataset.count; i++) (i % 4 === 3 ? valIdx : trainIdx).push(i);
  await tf.setBackend('cpu');
  cpuReference = await run(options(buildNetwork()));
  const adapter = await navigator.gpu.requestAdapter();
  expect(adapter).not.toBeNull();
  gpu = await registerWebGPU(adapter!, watch);
  // As the train worker runs it: our weight-gradient kernels on WebGPU.
  useWebGPUWeightGradients('tiled');
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('WebGPU in this browser', () => {
  it('is SwiftShader, a fallback adapter: frozen-base work would go to WASM, fine-tuning to WebGL', () => {
    console.info('[train-webgpu] adapter', JSON.stringify(gpu.adapter));
    expect(gpu.adapter.isFallback).toBe(true);
    const probe = { webgpu: gpu.adapter, webgl: { renderer: 'SwiftShader', software: true }, wasm: true };
    expect(chooseBackend(probe, 'frozen-base').backend).toBe('wasm');
    expect(chooseBackend(probe, 'fine-tune').backend).toBe('webgl');
  });
});

describe('training on WebGPU', () => {
  it('decreases the loss, matches the CPU backend step by step (≤ 1e-5), keeps the tensor count flat', async () => {
    expect(await tf.setBackend('webgpu')).toBe(true);
    expect(tf.getBackend()).toBe('webgpu');
    const network = buildNetwork();
    const gpuRun = await run(options(network));
    const cpuLosses = batchLosses(cpuReference.logs);
    const gpuLosses = batchLosses(gpuRun.logs);
    expect(gpuLosses).toHaveLength(3 * 3);
    const diff = maxAbsDiff(cpuLosses, gpuLosses);
    const valDiff = maxAbsDiff(
      epochLogs(cpuReference.logs).map((e) => e.val_loss),
      epochLogs(gpuRun.logs).map((e) => e.val_loss),
    );
    console.info(
      '[train-webgpu]',
      JSON.stringify({
        maxStepLossDiff: diff,
        maxValLossDiff: valDiff,
        stepMsCpu: median(cpuReference.stepMs),
        stepMsWebgpu: median(gpuRun.stepMs),
        firstEpochSecondsWebgpu: epochLogs(gpuRun.logs)[0]!.seconds,
        losses: gpuLosses,
      }),
    );
    expect(diff).toBeLessThanOrEqual(1e-5);
    expect(valDiff).toBeLessThanOrEqual(1e-5);
    const epochs = epochLogs(gpuRun.logs);
    expect(epochs[2]!.loss).toBeLessThan(epochs[0]!.loss);
    expect(new Set(gpuRun.tensorsAtBatch).size).toBe(1);
    expect(new Set(cpuReference.tensorsAtBatch).size).toBe(1);
    disposeNetwork(network);
  });

  it('augments on WebGPU as on the CPU (tf.image.transform, nearest fill)', async () => {
    const options = augmentOptions({ verticalFlip: true });
    const params = Array.from({ length: 4 }, () => sampleAffine(createRandom(9), options, SIZE, SIZE));
    const pixels = Float32Array.from(await dataset.readBatch([0, 1, 2, 3]));
    const on = async (backend: string) => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(pixels, [4, SIZE, SIZE, 3]);
      const out = applyAffine(x, params, options);
      const values = (await out.data()) as Float32Array;
      tf.dispose([x, out]);
      return values;
    };
    const gpuValues = await on('webgpu');
    const cpuValues = await on('cpu');
    expect(maxAbsDiff(cpuValues, gpuValues)).toBeLessThan(1e-2);
  });

  it('recovers from a real device loss (GPUDevice.destroy()) mid-epoch: resumes from the last epoch on WASM', async () => {
    expect(await tf.setBackend('webgpu')).toBe(true);
    const first = buildNetwork();
    const recoveredOn: string[] = [];
    const lostRun = await run(
      {
        ...options(first),
        device: watch,
        recover: async (loss) => {
          recoveredOn.push(loss.reason);
          disposeNetwork(first);
          expect(await tf.setBackend('wasm')).toBe(true);
          // Rebuilt like the worker does: same pretrained base, any head init (the checkpoint replaces it).
          return { network: buildNetwork(7), backend: 'wasm' };
        },
      },
      (log) => {
        if (log.type === 'batch' && log.epoch === 2 && log.batch === 1 && recoveredOn.length === 0) {
          gpu.device.destroy();
        }
      },
    );
    expect(tf.getBackend()).toBe('wasm');
    expect(recoveredOn).toEqual(['destroyed']);
    const events = lostRun.logs.filter((l) => l.type === 'device-lost' || l.type === 'recovered');
    expect(events.map((e) => e.type)).toEqual(['device-lost', 'recovered']);
    expect(events[1]).toMatchObject({ backend: 'wasm', fromEpoch: 1 });
    const epochs = epochLogs(lostRun.logs);
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    // Same trajectory as the uninterrupted CPU run: epoch 2 was redone from epoch 1's weights and Adam moments.
    expect(
      maxAbsDiff(
        epochs.map((e) => e.loss),
        epochLogs(cpuReference.logs).map((e) => e.loss),
      ),
    ).toBeLessThan(1e-4);
    // As many tensors after the switch as before the loss: nothing of the lost device's run is left behind.
    expect(new Set(lostRun.tensorsAtBatch).size).toBe(1);
    disposeNetwork(lostRun.network);
  });
});
