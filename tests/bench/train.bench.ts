/**
 * `npm run -s bench -- train [--backbones id,id] [--backends wasm,cpu,webgpu,webgl] [--steps 5]
 *   [--head-epoch real|all|none] [--head-limit N] [--browser-batch 4] [--browser-steps 3]`
 *
 * Training speed in Node, per backbone × backend (WASM and CPU: the backends tfjs has in Node without
 * tfjs-node), at batch 16 on real HAM10000 images (../shared/data/ham10000/all-200x150, squashed to the size) of
 * the real split (the metadata matched to those images, lesion-grouped, seed 1337, 80/10/10: 8,011 / 1,002 / 1,000)
 * with its balanced class weights:
 *
 *   phase1_step          the real loop (src/lib/train/loop.ts `train`, tests/bench/loop-timing.ts) running one
 *                        phase-1 epoch with augmentation on (the app's defaults: rotation 20°, shear 0.1°, zoom 0.1,
 *                        horizontal flips), so every batch goes through the base: a step is the wall time between
 *                        two batch logs — the batch read, augmentBatch, preprocess, the frozen base forward outside
 *                        the tape, the head forward + backward with class weights, Adam, the loss read-back.
 *                        first_ms (from the phase log: kernel set-up, first allocations), steady_ms (median of the
 *                        next steps), steady_images_per_s, tensor_drift (numTensors at the last batch log minus at
 *                        the first).
 *   fine_tune_step       a phase-2 step with the top block unfrozen (BatchNormalization frozen), images through the
 *                        whole network inside the tape (src/cli/node/steps.ts, the loop's trainStep on one batch of
 *                        real images, no augmentation, no class weights). tfjs-backend-wasm has no conv gradient
 *                        kernels and tfjs-backend-cpu's are slow: both run with the Node pipeline's JavaScript ones
 *                        (src/lib/train/conv-gradients.ts; pointwise convs through the backend's BatchMatMul).
 *   fine_tune_cached_step  the same update from activations below the unfrozen block (what `train
 *                        --fine-tune-blocks` runs), on seeded random activations of the cut's shape.
 *   feature_extraction   extractFeatures (base forward, pooled, read back) over 64 real images (32 for VGG16 and
 *                        ResNet50V2): images/s.
 *   head_epoch           the real loop training the head on cached features of the whole real split: 8,011 train
 *                        images (501 batches of 16) with class weights, then the validation pass over 1,002 images;
 *                        epoch_seconds per epoch (2 epochs) from the loop's epoch logs. The features are the real
 *                        backbone's on the real images, extracted by the loop on the first backend that runs it
 *                        (WASM by default; feature_seconds) and reused by the next backend from the same in-memory
 *                        feature store. --head-epoch real (default): only backbones with ImageNet weights here;
 *                        all: VGG16 and ResNet50V2 too (their extraction takes tens of minutes); none: skip.
 *                        --head-limit N: the first N train images of the split and N/8 val images (quick runs).
 *
 * webgpu and webgl (tests/bench/train-browser.ts): the same phase1_step and fine_tune_step for the default backbone,
 * MobileNetV2 0.35 with the served ImageNet weights (public/models), in a page of headless Chromium (WebGPU with
 * the app's weight-gradient kernels); the other backbones are recorded as skipped. Chromium's adapters here are
 * SwiftShader, so these run at --browser-batch (4) for --browser-steps (3) phase-1 steps on --browser-steps × batch
 * train images + one batch of val images, and 2 phase-2 steps; each entry says its batch.
 *
 * MobileNetV2 0.35 and MobileNet v1 0.25 load the real ImageNet weights from ../shared; VGG16 and ResNet50V2 are
 * randomly initialised (no weights file here; speed does not depend on the values). The head epochs first decode
 * the 9,013 train + val images and extract their features (a few minutes per backbone on a quiet 2-core machine;
 * half an hour each under heavy load): use --head-limit or --head-epoch none for a quick run. To bound the rest,
 * VGG16 runs at 128 px on WASM; on the CPU backend VGG16 and ResNet50V2 run at 96 px and each
 * measurement is first probed with a batch of 2: when the projected batch-16 step exceeds --max-step-seconds (60)
 * it is skipped and the projection reported. Every size used is recorded.
 */
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DX } from '../../src/lib/data/dx.ts';
import { matchImages, type MatchedImage } from '../../src/lib/data/match.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { augmentOptions } from '../../src/lib/model/augment-options.ts';
import { getBackbone, type BackboneId } from '../../src/lib/model/backbones/index.ts';
import { buildHead, defaultHeadFor, freezeBase } from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { trainClassWeights } from '../../src/lib/split/classWeights.ts';
import { splitRecords, type Split } from '../../src/lib/split/split.ts';
import { extractFeatures, MemoryFeatureStore } from '../../src/lib/train/featureCache.ts';
import { subsetDataset, type MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import type { Network } from '../../src/lib/train/loop.ts';
import { lackingKernels, useNodeBackend, type NodeBackend } from '../../src/cli/node/backend.ts';
import { decodeImages, listImages, stratifiedSubset } from '../../src/cli/node/images.ts';
import { timeCachedFineTuneSteps, timeFineTuneSteps, type StepModel } from '../../src/cli/node/steps.ts';
import { loadWeightsFromPath } from '../../src/cli/node/weights.ts';
import { loopHeadEpochs, loopPhaseOneSteps } from './loop-timing.ts';
import {
  BROWSER_BACKBONE,
  BROWSER_BACKENDS,
  benchBrowserBackends,
  type BrowserBackend,
} from './train-browser.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SHARED = join(ROOT, '..', 'shared');
const HAM = join(SHARED, 'data', 'ham10000');
const BATCH = 16;
const SEED = 1337;
/** Validation images of the phase-1 step run: the loop ends its epoch with a validation pass. */
const STEP_VAL_IMAGES = 16;
const HEAD_EPOCHS = 2;

const WEIGHTS: Partial<Record<BackboneId, string>> = {
  'mobilenet_v2_0.35': join(SHARED, 'weights', 'tfjs-mobilenet-v2-0.35-224-notop'),
  'mobilenet_v1_0.25': join(
    SHARED,
    'weights',
    'keras-mobilenet-v1-0.25-224-notop',
    'mobilenet_2_5_224_tf_no_top.h5',
  ),
};

const SIZES: Record<NodeBackend, Partial<Record<BackboneId, number>>> = {
  wasm: { vgg16: 128 },
  cpu: { vgg16: 96, resnet50v2: 96 },
};

type HeadEpochMode = 'real' | 'all' | 'none';

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const log = (line: object): void => void process.stderr.write(`${JSON.stringify(line)}\n`);

/** The real split of the images in ../shared, with its class weights (DX order). */
interface RealSplit {
  train: MatchedImage[];
  val: MatchedImage[];
  split: Split;
  classWeights: number[];
}

let realSplitCache: RealSplit | null = null;
async function realSplit(): Promise<RealSplit> {
  if (realSplitCache) return realSplitCache;
  const { listing } = await listImages(join(HAM, 'all-200x150'));
  const metadata = parseMetadata(
    await readFile(join(HAM, 'HAM10000_metadata.csv'), 'utf8'),
    'HAM10000_metadata.csv',
  );
  const { matched } = matchImages(metadata.records, listing);
  const split = splitRecords(
    matched.map((m) => m.record),
    { seed: SEED },
  );
  const weights = trainClassWeights(split, { absent: 'zero' });
  realSplitCache = {
    train: matched.filter((m) => split.assignment.get(m.record.imageId) === 'train'),
    val: matched.filter((m) => split.assignment.get(m.record.imageId) === 'val'),
    split,
    classWeights: DX.map((dx) => weights[dx]),
  };
  return realSplitCache;
}

/** Decoded images with the positions of their train and val parts. */
interface Decoded {
  dataset: MemoryImageDataset;
  train: number[];
  val: number[];
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

async function decodeParts(train: MatchedImage[], val: MatchedImage[], size: number): Promise<Decoded> {
  const { dataset, skipped } = await decodeImages([...train, ...val], {
    size,
    progressEvery: 1000,
    onProgress: (done, total, seconds) => log({ decode: { size, done, total, seconds } }),
  });
  if (skipped.length > 0) throw new Error(`could not decode ${JSON.stringify(skipped.slice(0, 3))}`);
  return { dataset, train: range(0, train.length), val: range(train.length, val.length) };
}

/** A stratified handful of the split's train images and STEP_VAL_IMAGES val images, per size. */
const stepImages = new Map<number, Decoded>();
async function stepData(size: number, trainCount: number): Promise<Decoded> {
  const cached = stepImages.get(size);
  if (cached && cached.train.length >= trainCount) return cached;
  const real = await realSplit();
  const decoded = await decodeParts(
    stratifiedSubset(real.train, trainCount, SEED),
    stratifiedSubset(real.val, STEP_VAL_IMAGES, SEED),
    size,
  );
  stepImages.set(size, decoded);
  return decoded;
}

/** The whole split's train and val images (or the first --head-limit of them), per size. */
const splitImages = new Map<number, Decoded>();
async function splitData(size: number, limit: number | null): Promise<Decoded> {
  const cached = splitImages.get(size);
  if (cached) return cached;
  const real = await realSplit();
  const train = limit === null ? real.train : real.train.slice(0, limit);
  const val = limit === null ? real.val : real.val.slice(0, Math.ceil(limit / 8));
  const decoded = await decodeParts(train, val, size);
  splitImages.set(size, decoded);
  return decoded;
}

/** Pooled features of each backbone at each size, extracted once (by the first backend) and reused. */
const featureStores = new Map<string, MemoryFeatureStore>();

async function batchOf(dataset: MemoryImageDataset, n: number): Promise<{ x: tf.Tensor4D; y: tf.Tensor2D }> {
  const indices = Array.from({ length: n }, (_, i) => i % dataset.count);
  const pixels = await dataset.readBatch(indices);
  return tf.tidy(() => ({
    x: tf.tensor4d(Float32Array.from(pixels), [n, dataset.size, dataset.size, 3]),
    y: tf
      .oneHot(
        tf.tensor1d(
          indices.map((i) => dataset.labels[i]!),
          'int32',
        ),
        7,
      )
      .toFloat() as tf.Tensor2D,
  }));
}

/** Seconds of a batch-2 forward pass × 8: a lower bound for a batch-16 step, to skip what cannot fit. */
async function probeStepSeconds(model: StepModel, dataset: MemoryImageDataset): Promise<number> {
  const { x, y } = await batchOf(dataset, 2);
  try {
    const t0 = performance.now();
    const out = tf.tidy(() => model.base.apply(model.preprocess(x), { training: false }) as tf.Tensor);
    await out.data();
    out.dispose();
    return ((performance.now() - t0) / 1000) * (BATCH / 2);
  } finally {
    tf.dispose([x, y]);
  }
}

interface BenchOptions {
  steps: number;
  maxStepSeconds: number;
  headEpoch: HeadEpochMode;
  headLimit: number | null;
}

async function benchOne(
  id: BackboneId,
  backend: NodeBackend,
  options: BenchOptions,
): Promise<Record<string, unknown>> {
  const { maxStepSeconds } = options;
  await useNodeBackend(backend);
  const spec = getBackbone(id);
  const size = SIZES[backend][id] ?? 224;
  const heavy = spec.family === 'vgg16' || spec.family === 'resnet50v2';
  // Heavy backbones: fewer steps (first + 2 steady).
  const n = heavy ? Math.min(options.steps, 3) : options.steps;
  const real = await realSplit();
  const steps = await stepData(size, Math.max(n * BATCH, 64));
  const dataset = steps.dataset;
  const before = tf.memory().numTensors;
  const t0 = performance.now();
  const base = spec.build(size);
  const buildMs = performance.now() - t0;
  const entry: Record<string, unknown> = {
    backbone: id,
    backend,
    size,
    batch: BATCH,
    params: base.countParams(),
  };
  const weightsPath = WEIGHTS[id];
  const t1 = performance.now();
  if (weightsPath) {
    const loaded = await loadWeightsFromPath(base, weightsPath);
    entry.weights = { format: loaded.format, path: loaded.path, arrays: loaded.arrays };
  } else {
    entry.weights = {
      format: 'random-init',
      note: 'no ImageNet weights file for this backbone here; timing only',
    };
  }
  entry.build_ms = buildMs;
  entry.weights_ms = performance.now() - t1;
  const head = buildHead((base.outputs[0]!.shape as number[]).slice(1), defaultHeadFor(spec.id));
  entry.head = defaultHeadFor(spec.id).kind;
  const model: StepModel = { base, head, preprocess: (x) => preprocessInput(x, spec.preprocessing) };
  const network: Network = { base, head, preprocess: model.preprocess, inputSize: size, blocks: spec };
  freezeBase(base);
  try {
    const probe = heavy && backend === 'cpu' ? await probeStepSeconds(model, dataset) : null;
    if (probe !== null) entry.probe_forward_seconds_per_16 = probe;
    const tooSlow = probe !== null && probe > maxStepSeconds;
    const skip = (what: string) => ({
      skipped: `projected ≥ ${Math.round(probe ?? 0)} s per ${what} step of ${BATCH} (a batch-2 forward × 8), over ${maxStepSeconds} s`,
    });
    entry.phase1_step = tooSlow
      ? skip('phase-1')
      : await loopPhaseOneSteps(
          network,
          { dataset, train: steps.train.slice(0, n * BATCH), val: steps.val },
          { batchSize: BATCH, augment: augmentOptions(), classWeights: real.classWeights },
        );
    log({ backbone: id, backend, phase1_step: entry.phase1_step });
    freezeBase(base);
    const lacking = lackingKernels(backend, 'fine-tune');
    if (lacking.length > 0) {
      const why = `the ${backend} backend has no ${lacking.join(', ')} kernel`;
      entry.fine_tune_step = { skipped: why };
      entry.fine_tune_cached_step = { skipped: why };
    } else {
      // Heavy backbones: first step + 1 (their JavaScript 3×3 conv gradients take seconds).
      const ftSteps = heavy ? 2 : Math.min(n, 3);
      const { x, y } = await batchOf(dataset, BATCH);
      try {
        entry.fine_tune_step = tooSlow
          ? skip('fine-tuning')
          : await timeFineTuneSteps(model, spec, 1, x, y, ftSteps);
        entry.fine_tune_cached_step = await timeCachedFineTuneSteps(model, spec, 1, BATCH, ftSteps);
      } finally {
        tf.dispose([x, y]);
      }
    }
    log({ backbone: id, backend, fine_tune_step: entry.fine_tune_step });
    let imagesPerSecond: number | null = null;
    if (tooSlow) {
      entry.feature_extraction = { skipped: `projected ${Math.round((probe * 32) / BATCH)} s for 32 images` };
    } else {
      const count = heavy ? 32 : 64;
      const subset = subsetDataset(dataset, steps.train.slice(0, count));
      const t2 = performance.now();
      const tensors = tf.memory().numTensors;
      await extractFeatures(base, subset, {
        preprocess: model.preprocess,
        inputSize: size,
        pool: true,
        batchSize: 32,
      });
      const seconds = (performance.now() - t2) / 1000;
      imagesPerSecond = count / seconds;
      entry.feature_extraction = {
        images: count,
        batch: 32,
        seconds,
        images_per_s: imagesPerSecond,
        tensor_drift: tf.memory().numTensors - tensors,
      };
    }
    log({ backbone: id, backend, feature_extraction: entry.feature_extraction });
    entry.head_epoch = await headEpoch(id, backend, size, network, options, real, imagesPerSecond);
    log({ backbone: id, backend, head_epoch: entry.head_epoch });
  } finally {
    head.dispose();
    base.dispose();
  }
  // Tensors still allocated after the base and head were disposed (0 when this run released everything).
  entry.tensors_left = tf.memory().numTensors - before;
  return entry;
}

async function headEpoch(
  id: BackboneId,
  backend: NodeBackend,
  size: number,
  network: Network,
  options: BenchOptions,
  real: RealSplit,
  imagesPerSecond: number | null,
): Promise<unknown> {
  const storeKey = `${id}|${size}|${WEIGHTS[id] ?? 'random-init'}|${options.headLimit ?? 'all'}`;
  const store = featureStores.get(storeKey);
  const images = real.train.length + real.val.length;
  const projected = imagesPerSecond === null ? null : images / imagesPerSecond;
  if (options.headEpoch === 'none') return { skipped: '--head-epoch none' };
  if (options.headEpoch === 'real' && !WEIGHTS[id]) {
    return {
      skipped:
        `no ImageNet weights for ${id} here; features of the ${images} train + val images would take ` +
        `~${projected === null ? '?' : Math.round(projected)} s to extract (--head-epoch all to run it)`,
    };
  }
  if (!store && backend === 'cpu') {
    return {
      skipped:
        'the features are extracted once on WASM and reused: run the wasm backend first in the same invocation ' +
        `(on the CPU backend they would take ~${projected === null ? '?' : Math.round(projected)} s)`,
    };
  }
  const data = await splitData(size, options.headLimit);
  const featureStore = store ?? new MemoryFeatureStore();
  featureStores.set(storeKey, featureStore);
  const result = await loopHeadEpochs(
    network,
    { dataset: data.dataset, train: data.train, val: data.val },
    {
      batchSize: BATCH,
      classWeights: real.classWeights,
      epochs: HEAD_EPOCHS,
      featureCache: { store: featureStore, key: storeKey },
    },
  );
  return {
    ...result,
    features_from: store
      ? 'the in-memory store (extracted by an earlier backend)'
      : `extracted here on ${backend}`,
  };
}

export async function bench(args: string[]): Promise<unknown> {
  tf.enableProdMode();
  const backbones = (option(args, 'backbones') ?? 'mobilenet_v2_0.35,mobilenet_v1_0.25,vgg16,resnet50v2')
    .split(',')
    .map((b) => getBackbone(b).id);
  const backends = (option(args, 'backends') ?? 'wasm,cpu,webgpu,webgl').split(',');
  const browserBackends = backends.filter((b): b is BrowserBackend =>
    (BROWSER_BACKENDS as readonly string[]).includes(b),
  );
  const nodeBackends = backends.filter(
    (b) => !browserBackends.includes(b as BrowserBackend),
  ) as NodeBackend[];
  const browserBatch = Number(option(args, 'browser-batch') ?? 4);
  const browserSteps = Number(option(args, 'browser-steps') ?? 3);
  if (!Number.isInteger(browserBatch) || browserBatch < 1)
    throw new Error('--browser-batch needs a whole number ≥ 1');
  if (!Number.isInteger(browserSteps) || browserSteps < 2)
    throw new Error('--browser-steps needs a whole number ≥ 2');
  const headEpoch = (option(args, 'head-epoch') ?? 'real') as HeadEpochMode;
  if (!['real', 'all', 'none'].includes(headEpoch)) throw new Error('--head-epoch must be real, all or none');
  const headLimitText = option(args, 'head-limit');
  const options: BenchOptions = {
    steps: Number(option(args, 'steps') ?? 5),
    maxStepSeconds: Number(option(args, 'max-step-seconds') ?? 60),
    headEpoch,
    headLimit: headLimitText === undefined ? null : Number(headLimitText),
  };
  const t0 = performance.now();
  const loadAtStart = loadavg();
  const real = await realSplit();
  const results: Record<string, unknown>[] = [];
  for (const backend of nodeBackends) {
    for (const id of backbones) {
      const entry = await benchOne(id, backend, options);
      results.push(entry);
    }
  }
  if (browserBackends.length > 0) {
    for (const backend of browserBackends) {
      for (const id of backbones.filter((b) => b !== BROWSER_BACKBONE)) {
        results.push({ backbone: id, backend, skipped: `the Chromium runs cover ${BROWSER_BACKBONE} only` });
      }
    }
    if (backbones.includes(BROWSER_BACKBONE)) {
      const steps = await stepData(224, Math.max(browserSteps * browserBatch, 64));
      results.push(
        ...(await benchBrowserBackends(browserBackends, steps, {
          size: 224,
          batch: browserBatch,
          steps: browserSteps,
          fineTuneSteps: 2,
          classWeights: real.classWeights,
        })),
      );
    }
  }
  return {
    node: process.version,
    cpus: cpus().length,
    load_average: { start: loadAtStart, end: loadavg() },
    split: { seed: SEED, totals: real.split.totals, class_weights: real.classWeights },
    head_limit: options.headLimit,
    note:
      'wasm: tfjs-backend-wasm SIMD, 1 thread in Node; cpu: tfjs-backend-cpu (plain JS). Conv gradients on both: ' +
      'the Node pipeline’s JavaScript kernels. phase1_step and head_epoch are timed from the loop’s own logs ' +
      '(src/lib/train/loop.ts). webgpu, webgl: headless Chromium on SwiftShader (software, the same CPU), ' +
      'MobileNetV2 0.35 only, at each entry’s batch. Machine shared with other jobs: see load_average.',
    results,
    seconds: (performance.now() - t0) / 1000,
  };
}
