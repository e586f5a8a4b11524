/**
 * Timed fine-tuning steps built from the loop's `trainStep` (src/lib/train/loop.ts: Adam, Keras cross-entropy) on
 * one given batch, for the `train` and `accuracy` benchmarks: a step through the whole network (top blocks
 * unfrozen) and a step from cached activations below them (what `--fine-tune-blocks` runs). No batch reads, no
 * augmentation, no class weights: the benches time phase 1 and head epochs through the loop itself
 * (tests/bench/loop-timing.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackboneSpec } from '../../lib/model/backbones/index.ts';
import { freezeBase, useKerasBatchNormSemantics } from '../../lib/model/heads.ts';
import { trainStep } from '../../lib/train/loop.ts';
import { Adam } from '../../lib/train/optimizer.ts';
import { cyclicOneHot, runStep, timeSteps, type StepModel, type StepTiming } from '../step-timing.ts';
import { cutBelowTopBlocks } from './headless.ts';

export {
  syntheticBatch,
  timeFineTuneSteps,
  timeSteps,
  type StepModel,
  type StepTiming,
} from '../step-timing.ts';

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
  const y = cyclicOneHot(batch, classes);
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
