/**
 * Timed phase-2 steps built from the loop's `trainStep` (src/lib/train/loop.ts: Adam, Keras cross-entropy) on one
 * given batch, for the `train` and `accuracy` benchmarks. Plain tf and src/lib only, so the train bench's Chromium
 * page (tests/bench/train-harness.ts) times the same step as Node (the Node-only half: src/cli/node/steps.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackboneSpec } from '../lib/model/backbones/index.ts';
import { freezeBase, unfreezeTopBlocks } from '../lib/model/heads.ts';
import { trainStep } from '../lib/train/loop.ts';
import { Adam } from '../lib/train/optimizer.ts';

export interface StepTiming {
  /** The first step: kernel set-up, weight uploads, first allocations. */
  first_ms: number;
  /** Median of the steps after the first; null when only the first was run. */
  steady_ms: number | null;
  steady_images_per_s: number | null;
  steps: number;
  batch: number;
  /** numTensors after the last step minus after the first: 0 when nothing leaks. */
  tensor_drift: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs `step` `steps` times (≥ 1), awaiting each step's read-back, and times them. */
export async function timeSteps(
  step: () => Promise<void>,
  steps: number,
  batch: number,
): Promise<StepTiming> {
  const times: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
    counts.push(tf.memory().numTensors);
  }
  const steady = times.length > 1 ? median(times.slice(1)) : null;
  return {
    first_ms: times[0]!,
    steady_ms: steady,
    steady_images_per_s: steady === null ? null : (batch * 1000) / steady,
    steps,
    batch,
    tensor_drift: counts[counts.length - 1]! - counts[0]!,
  };
}

/** One-hot labels 0, 1, …, classes − 1, 0, 1, … for a batch (float32). */
export function cyclicOneHot(batch: number, classes: number): tf.Tensor2D {
  return tf.tidy(
    () =>
      tf
        .oneHot(
          tf.tensor1d(
            Array.from({ length: batch }, (_, i) => i % classes),
            'int32',
          ),
          classes,
        )
        .toFloat() as tf.Tensor2D,
  );
}

/** A batch of labels 0..6 repeated, one-hot, and random uint8-valued images. */
export function syntheticBatch(
  batch: number,
  size: number,
  classes: number,
  seed = 1,
): { x: tf.Tensor4D; y: tf.Tensor2D } {
  return tf.tidy(() => ({
    x: tf.floor(tf.randomUniform([batch, size, size, 3], 0, 256, 'float32', seed)) as tf.Tensor4D,
    y: cyclicOneHot(batch, classes),
  }));
}

export async function runStep(out: tf.Tensor): Promise<void> {
  try {
    await out.data();
  } finally {
    out.dispose();
  }
}

export interface StepModel {
  base: tf.LayersModel;
  /** Starts with GlobalAveragePooling2D over the base's output. */
  head: tf.LayersModel;
  preprocess(x: tf.Tensor4D): tf.Tensor4D;
}

/** Phase 2 as the loop runs it: images through the whole network inside the tape, top `blocks` unfrozen. */
export async function timeFineTuneSteps(
  model: StepModel,
  spec: BackboneSpec,
  blocks: number,
  x: tf.Tensor4D,
  y: tf.Tensor2D,
  steps: number,
): Promise<StepTiming & { trainable_params: number }> {
  const state = unfreezeTopBlocks(model.base, spec, blocks);
  const variables = [...model.base.trainableWeights, ...model.head.trainableWeights].map(
    (w) => w.read() as tf.Variable,
  );
  const optimizer = new Adam({ learningRate: 1e-5 });
  optimizer.init(variables);
  try {
    const timing = await timeSteps(
      () =>
        runStep(
          tf.tidy(() => {
            const pre = model.preprocess(x);
            return trainStep(
              (input) =>
                model.head.apply(model.base.apply(input, { training: false }), {
                  training: true,
                }) as tf.Tensor,
              pre,
              y,
              null,
              variables,
              optimizer,
            );
          }),
        ),
      steps,
      x.shape[0],
    );
    return { ...timing, trainable_params: state.trainableParams + model.head.countParams() };
  } finally {
    optimizer.dispose();
    freezeBase(model.base);
  }
}
