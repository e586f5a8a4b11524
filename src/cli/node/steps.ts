/**
 * Timed fine-tuning steps built from the loop's `trainStep` (src/lib/train/loop.ts: Adam, Keras cross-entropy) on
 * one given batch, for the `train` and `accuracy` benchmarks: a step through the whole network (top blocks
 * unfrozen) and a step from cached activations below them (what `--fine-tune-blocks` runs). No batch reads, no
 * augmentation, no class weights: the benches time phase 1 and head epochs through the loop itself
 * (tests/bench/loop-timing.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackboneSpec } from '../../lib/model/backbones/index.ts';
import { freezeBase, unfreezeTopBlocks, useKerasBatchNormSemantics } from '../../lib/model/heads.ts';
import { trainStep } from '../../lib/train/loop.ts';
import { Adam } from '../../lib/train/optimizer.ts';
import { cutBelowTopBlocks } from './headless.ts';

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

/** A batch of labels 0..6 repeated, one-hot, and random uint8-valued images. */
export function syntheticBatch(
  batch: number,
  size: number,
  classes: number,
  seed = 1,
): { x: tf.Tensor4D; y: tf.Tensor2D } {
  return tf.tidy(() => ({
    x: tf.floor(tf.randomUniform([batch, size, size, 3], 0, 256, 'float32', seed)) as tf.Tensor4D,
    y: tf
      .oneHot(
        tf.tensor1d(
          Array.from({ length: batch }, (_, i) => i % classes),
          'int32',
        ),
        classes,
      )
      .toFloat() as tf.Tensor2D,
  }));
}

async function runStep(out: tf.Tensor): Promise<void> {
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

/**
 * Phase 2 from cached activations (`--fine-tune-blocks`): the top `blocks` blocks + head on an activation of the
 * cut's shape. Returns the timing and the cut's per-image activation size.
 */
export async function timeCachedFineTuneSteps(
  model: StepModel,
  spec: BackboneSpec,
  blocks: number,
  batch: number,
  steps: number,
): Promise<StepTiming & { cut_at: string; activation: number[]; trainable_params: number }> {
  const cut = cutBelowTopBlocks(model.base, spec, blocks);
  const shape = cut.top.inputs[0]!.shape.slice(1) as number[];
  const input = tf.input({ shape });
  const net = tf.model({
    inputs: input,
    outputs: model.head.apply(cut.top.apply(input)) as tf.SymbolicTensor,
  });
  for (const layer of cut.top.layers) layer.trainable = layer.getClassName() !== 'BatchNormalization';
  useKerasBatchNormSemantics(net);
  const variables = net.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = new Adam({ learningRate: 1e-5 });
  optimizer.init(variables);
  const x = tf.randomNormal([batch, ...shape], 0, 1, 'float32', 2);
  const classes = (model.head.outputs[0]!.shape as number[]).at(-1)!;
  const { y } = tf.tidy(() => ({
    y: tf
      .oneHot(
        tf.tensor1d(
          Array.from({ length: batch }, (_, i) => i % classes),
          'int32',
        ),
        classes,
      )
      .toFloat() as tf.Tensor2D,
  }));
  try {
    const timing = await timeSteps(
      () =>
        runStep(
          trainStep((z) => net.apply(z, { training: true }) as tf.Tensor, x, y, null, variables, optimizer),
        ),
      steps,
      batch,
    );
    return {
      ...timing,
      cut_at: cut.at,
      activation: shape,
      trainable_params: variables.reduce((n, v) => n + v.size, 0),
    };
  } finally {
    optimizer.dispose();
    x.dispose();
    y.dispose();
    freezeBase(model.base);
    // Not net/cut.top: tfjs would dispose the nested head with them. Their layers are the base's and the head's.
  }
}
