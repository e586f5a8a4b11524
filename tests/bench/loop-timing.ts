/**
 * Timings of the real training loop (src/lib/train/loop.ts `train`), for `bench train`: what is timed is what the
 * app's train worker and `cli train` run, read from the loop's own logs, not a re-creation of its step.
 *
 * - loopPhaseOneSteps: one epoch of phase 1 with augmentation on (so no feature cache): each step is the wall time
 *   between two consecutive `batch` logs, i.e. waiting for the batch read (prefetched one batch ahead), uint8 →
 *   float, `augmentBatch`, preprocess, the frozen base forward (outside the tape), head forward + backward with the
 *   class weights, Adam, and the read-back of loss and accuracy; plus the loop's own pause checks.
 * - loopHeadEpochs: phase 1 without augmentation, the head trained on cached pooled features of the real
 *   train/val split: an epoch is the loop's `epoch` log's `seconds` (every train batch with class weights, then the
 *   validation pass over the val split and its metrics).
 */
import * as tf from '@tensorflow/tfjs';
import { DX } from '../../src/lib/data/dx.ts';
import type { AugmentOptions } from '../../src/lib/model/augment-options.ts';
import type { FeatureStore } from '../../src/lib/train/featureCache.ts';
import type { EpochLog, TrainLog } from '../../src/lib/train/logs.ts';
import { train, type Network, type TrainData } from '../../src/lib/train/loop.ts';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Drained {
  logs: TrainLog[];
  /** performance.now() when each log arrived. */
  at: number[];
  /** numTensors when each batch log arrived. */
  tensorsAtBatch: number[];
}

async function drain(logs: AsyncGenerator<TrainLog, unknown>): Promise<Drained> {
  const out: Drained = { logs: [], at: [], tensorsAtBatch: [] };
  for await (const log of logs) {
    out.logs.push(log);
    out.at.push(performance.now());
    if (log.type === 'batch') out.tensorsAtBatch.push(tf.memory().numTensors);
  }
  return out;
}

export interface LoopStepTiming {
  /** From the phase log to the first batch log: the first batch read, kernel set-up, first allocations. */
  first_ms: number;
  /** Median of the later steps (between consecutive batch logs); null with a single step. */
  steady_ms: number | null;
  steady_images_per_s: number | null;
  steps: number;
  batch: number;
  /** numTensors at the last batch log minus at the first: 0 when nothing leaks. */
  tensor_drift: number;
  augmentation: AugmentOptions;
  class_weights: boolean;
  train_images: number;
}

/** One epoch of `train.length / batch` steps with augmentation on, timed between the loop's batch logs. */
export async function loopPhaseOneSteps(
  network: Network,
  data: TrainData,
  options: { batchSize: number; augment: AugmentOptions; classWeights: readonly number[] | null },
): Promise<LoopStepTiming> {
  const run = await drain(
    train({
      network,
      data,
      classNames: DX,
      epochs: 1,
      batchSize: options.batchSize,
      classWeights: options.classWeights,
      augment: options.augment,
      seed: 1337,
      featureCache: false,
    }),
  );
  const phaseAt = run.at[run.logs.findIndex((l) => l.type === 'phase')]!;
  const batchAt = run.logs.flatMap((l, i) => (l.type === 'batch' ? [run.at[i]!] : []));
  const steps = batchAt.map((t, i) => t - (i === 0 ? phaseAt : batchAt[i - 1]!));
  const steady = steps.length > 1 ? median(steps.slice(1)) : null;
  return {
    first_ms: steps[0]!,
    steady_ms: steady,
    steady_images_per_s: steady === null ? null : (options.batchSize * 1000) / steady,
    steps: steps.length,
    batch: options.batchSize,
    tensor_drift: run.tensorsAtBatch.at(-1)! - run.tensorsAtBatch[0]!,
    augmentation: options.augment,
    class_weights: options.classWeights !== null,
    train_images: data.train.length,
  };
}

export interface LoopHeadEpochs {
  /** Each epoch's `seconds` from the loop: train batches + validation pass, features already cached. */
  epoch_seconds: number[];
  /** The last epoch's seconds (the first also warms up kernels). */
  steady_epoch_seconds: number;
  train_images: number;
  val_images: number;
  batches: number;
  batch: number;
  class_weights: boolean;
  /** The trainable part: the head after its GlobalAveragePooling2D, on pooled features of this width. */
  trainable_params: number;
  /** Features extracted by this run (seconds per split), or read from the store (cached: true). */
  features: Record<'train' | 'val', { cached: boolean; seconds: number }>;
  /** numTensors at the last batch log minus at the first. */
  tensor_drift: number;
}

/** `epochs` epochs of head training on cached features, as the app trains a frozen base without augmentation. */
export async function loopHeadEpochs(
  network: Network,
  data: TrainData,
  options: {
    batchSize: number;
    classWeights: readonly number[] | null;
    epochs: number;
    featureCache: { store: FeatureStore; key: string };
  },
): Promise<LoopHeadEpochs> {
  const run = await drain(
    train({
      network,
      data,
      classNames: DX,
      epochs: options.epochs,
      batchSize: options.batchSize,
      classWeights: options.classWeights,
      augment: null,
      seed: 1337,
      featureCache: options.featureCache,
    }),
  );
  const epochs = run.logs.filter((l): l is EpochLog => l.type === 'epoch');
  const phase = run.logs.find((l) => l.type === 'phase');
  if (phase?.type !== 'phase' || phase.input !== 'features') {
    throw new Error('the head epochs did not train on cached features');
  }
  const features = { train: { cached: false, seconds: 0 }, val: { cached: false, seconds: 0 } };
  for (const l of run.logs) {
    if (l.type === 'features' && l.split !== 'test')
      features[l.split] = { cached: l.cached, seconds: l.seconds };
  }
  return {
    epoch_seconds: epochs.map((e) => e.seconds),
    steady_epoch_seconds: epochs.at(-1)!.seconds,
    train_images: phase.trainImages,
    val_images: phase.valImages,
    batches: Math.ceil(phase.trainImages / options.batchSize),
    batch: options.batchSize,
    class_weights: options.classWeights !== null,
    trainable_params: phase.trainableParams,
    features,
    tensor_drift: run.tensorsAtBatch.at(-1)! - run.tensorsAtBatch[0]!,
  };
}
