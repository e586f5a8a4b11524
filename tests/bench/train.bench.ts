/**
 * `npm run -s bench -- train [--backbones id,id] [--backends wasm,cpu] [--steps 4]`
 *
 * Training speed in Node, per backbone × backend (WASM and CPU: the backends tfjs has in Node without
 * tfjs-node), at batch 16 on real HAM10000 images (../shared/data/ham10000/all-200x150, squashed to the size):
 *
 *   phase1_step          a phase-1 step as the loop runs it with augmentation on: the frozen base forward outside the
 *                        gradient tape, then the head forward + backward + Adam. first_ms (kernel set-up, first
 *                        allocations), steady_ms (median of the next steps), steady_images_per_s, tensor_drift
 *                        (numTensors after the last step minus after the first).
 *   fine_tune_step       a phase-2 step with the top block unfrozen (BatchNormalization frozen), images through the
 *                        whole network inside the tape. tfjs-backend-wasm has no conv gradient kernels and
 *                        tfjs-backend-cpu's are slow: both run with the Node pipeline's JavaScript ones
 *                        (src/lib/train/conv-gradients.ts; pointwise convs through the backend's BatchMatMul).
 *   fine_tune_cached_step  the same update from cached activations below the unfrozen block (what `train
 *                        --fine-tune-blocks` runs).
 *   feature_extraction   the feature cache's pass (base forward, pooled, read back): images/s.
 *   head_epoch           one epoch of head training from the feature cache at the real train split's size
 *                        (8,011 images, 501 batches of 16).
 *
 * MobileNetV2 0.35 and MobileNet v1 0.25 load the real ImageNet weights from ../shared; VGG16 and ResNet50V2 are
 * randomly initialised (no weights file here; speed does not depend on the values). To fit the run in ~15 minutes
 * on 2 shared cores, VGG16 runs at 128 px on WASM; on the CPU backend VGG16 and ResNet50V2 run at 96 px and each
 * measurement is first probed with a batch of 2: when the projected batch-16 step exceeds --max-step-seconds (60)
 * it is skipped and the projection reported. Every size used is recorded.
 */
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { matchImages } from '../../src/lib/data/match.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { getBackbone, type BackboneId } from '../../src/lib/model/backbones/index.ts';
import { buildHead, defaultHeadFor, freezeBase } from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { extractFeatures } from '../../src/lib/train/featureCache.ts';
import { subsetDataset, type MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import { lackingKernels, useNodeBackend, type NodeBackend } from '../../src/cli/node/backend.ts';
import { decodeImages, listImages, stratifiedSubset } from '../../src/cli/node/images.ts';
import {
  timeCachedFineTuneSteps,
  timeFineTuneSteps,
  timeHeadEpoch,
  timePhaseOneSteps,
  type StepModel,
} from '../../src/cli/node/steps.ts';
import { loadWeightsFromPath } from '../../src/cli/node/weights.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SHARED = join(ROOT, '..', 'shared');
const HAM = join(SHARED, 'data', 'ham10000');
const BATCH = 16;
const TRAIN_SPLIT_IMAGES = 8011;

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

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const log = (line: object): void => void process.stderr.write(`${JSON.stringify(line)}\n`);

/** Real images at each size, decoded once. */
const images = new Map<number, MemoryImageDataset>();
async function realImages(size: number, count: number): Promise<MemoryImageDataset> {
  const cached = images.get(size);
  if (cached && cached.count >= count) return cached;
  const { listing } = await listImages(join(HAM, 'all-200x150'));
  const metadata = parseMetadata(
    await readFile(join(HAM, 'HAM10000_metadata.csv'), 'utf8'),
    'HAM10000_metadata.csv',
  );
  const { matched } = matchImages(metadata.records, listing);
  const { dataset } = await decodeImages(stratifiedSubset(matched, count, 1337), { size });
  images.set(size, dataset);
  return dataset;
}

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

async function benchOne(
  id: BackboneId,
  backend: NodeBackend,
  steps: number,
  maxStepSeconds: number,
): Promise<Record<string, unknown>> {
  await useNodeBackend(backend);
  const spec = getBackbone(id);
  const size = SIZES[backend][id] ?? 224;
  const heavy = spec.family === 'vgg16' || spec.family === 'resnet50v2';
  const dataset = await realImages(size, 64);
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
  freezeBase(base);
  try {
    const probe = heavy && backend === 'cpu' ? await probeStepSeconds(model, dataset) : null;
    if (probe !== null) entry.probe_forward_seconds_per_16 = probe;
    const tooSlow = probe !== null && probe > maxStepSeconds;
    const skip = (what: string) => ({
      skipped: `projected ≥ ${Math.round(probe ?? 0)} s per ${what} step of ${BATCH} (a batch-2 forward × 8), over ${maxStepSeconds} s`,
    });
    // Heavy backbones: fewer steps (first + 2 steady).
    const n = heavy ? Math.min(steps, 3) : steps;
    const { x, y } = await batchOf(dataset, BATCH);
    try {
      entry.phase1_step = tooSlow ? skip('phase-1') : await timePhaseOneSteps(model, x, y, n);
      log({ backbone: id, backend, phase1_step: entry.phase1_step });
      const lacking = lackingKernels(backend, 'fine-tune');
      if (lacking.length > 0) {
        const why = `the ${backend} backend has no ${lacking.join(', ')} kernel`;
        entry.fine_tune_step = { skipped: why };
        entry.fine_tune_cached_step = { skipped: why };
      } else {
        // Heavy backbones: first step + 1 (their JavaScript 3×3 conv gradients take seconds).
        const ftSteps = heavy ? 2 : Math.min(n, 3);
        entry.fine_tune_step = tooSlow
          ? skip('fine-tuning')
          : await timeFineTuneSteps(model, spec, 1, x, y, ftSteps);
        entry.fine_tune_cached_step = await timeCachedFineTuneSteps(model, spec, 1, BATCH, ftSteps);
      }
      log({ backbone: id, backend, fine_tune_step: entry.fine_tune_step });
    } finally {
      tf.dispose([x, y]);
    }
    if (tooSlow) {
      entry.feature_extraction = { skipped: `projected ${Math.round((probe * 32) / BATCH)} s for 32 images` };
    } else {
      const count = heavy ? 32 : 64;
      const subset = subsetDataset(
        dataset,
        Array.from({ length: count }, (_, i) => i),
      );
      const t2 = performance.now();
      const tensors = tf.memory().numTensors;
      await extractFeatures(base, subset, {
        preprocess: model.preprocess,
        inputSize: size,
        pool: true,
        batchSize: 32,
      });
      const seconds = (performance.now() - t2) / 1000;
      entry.feature_extraction = {
        images: count,
        batch: 32,
        seconds,
        images_per_s: count / seconds,
        tensor_drift: tf.memory().numTensors - tensors,
      };
    }
    log({ backbone: id, backend, feature_extraction: entry.feature_extraction });
    entry.head_epoch = await timeHeadEpoch(head, TRAIN_SPLIT_IMAGES, BATCH);
    log({ backbone: id, backend, head_epoch: entry.head_epoch });
  } finally {
    head.dispose();
    base.dispose();
  }
  // Tensors still allocated after the base and head were disposed (0 when this run released everything).
  entry.tensors_left = tf.memory().numTensors - before;
  return entry;
}

export async function bench(args: string[]): Promise<unknown> {
  tf.enableProdMode();
  const backbones = (option(args, 'backbones') ?? 'mobilenet_v2_0.35,mobilenet_v1_0.25,vgg16,resnet50v2')
    .split(',')
    .map((b) => getBackbone(b).id);
  const backends = (option(args, 'backends') ?? 'wasm,cpu').split(',') as NodeBackend[];
  const steps = Number(option(args, 'steps') ?? 5);
  const maxStepSeconds = Number(option(args, 'max-step-seconds') ?? 60);
  const t0 = performance.now();
  const loadAtStart = loadavg();
  const results: Record<string, unknown>[] = [];
  for (const backend of backends) {
    for (const id of backbones) {
      const entry = await benchOne(id, backend, steps, maxStepSeconds);
      results.push(entry);
    }
  }
  return {
    node: process.version,
    cpus: cpus().length,
    load_average: { start: loadAtStart, end: loadavg() },
    note:
      'wasm: tfjs-backend-wasm SIMD, 1 thread in Node; cpu: tfjs-backend-cpu (plain JS). Conv gradients on both: ' +
      'the Node pipeline’s JavaScript kernels. Machine shared with other jobs: see load_average.',
    results,
    seconds: (performance.now() - t0) / 1000,
  };
}
