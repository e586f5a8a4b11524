/**
 * Classification heads on top of a backbone, composition of base + head, and freezing.
 *
 * Heads take pooled features ([channels], after global average pooling) so that the same head model trains on the
 * feature cache (features computed once by `buildFeatureExtractor`) and then sits, unchanged and with its trained
 * weights, on top of the backbone in `composeModel`.
 *
 * BatchNormalization: tfjs runs a BatchNormalization layer in training mode (batch statistics, moving averages
 * updated) whenever `fit` runs, frozen or not. Keras runs a frozen one (`trainable = false`) in inference mode.
 * `useKerasBatchNormSemantics` gives the base Keras's behaviour: a frozen BatchNormalization layer is always
 * called with `training: false`.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackboneSpec } from './backbones/index.ts';
import { buildFusedHead, metadataWidth } from './fused-head.ts';
import { headConfig, type HeadConfig } from './head-config.ts';

export {
  DEFAULT_CLASSES,
  defaultHeadFor,
  HEAD_KINDS,
  HEAD_LABELS,
  headConfig,
  type HeadConfig,
  type HeadKind,
} from './head-config.ts';

export const HEAD_NAME = 'head';
export const POOL_LAYER = 'avg_pool';

function node(layer: tf.layers.Layer, x: tf.SymbolicTensor): tf.SymbolicTensor {
  return layer.apply(x) as tf.SymbolicTensor;
}

export interface HeadBuildOptions {
  /**
   * Seeds the Dense kernels' Glorot-uniform initialisers (biases start at zero), so the same seed gives the same
   * initial head; without it tfjs draws them unseeded, different every time.
   */
  seed?: number;
}

/**
 * The head alone, as a model on features of shape `featureShape` (without batch): [channels] for pooled features
 * (the feature cache), or [h, w, channels] for a backbone's feature map (then it starts with the pooling).
 */
export function buildHead(
  featureShape: readonly number[],
  config: HeadConfig,
  options: HeadBuildOptions = {},
): tf.LayersModel {
  const c = headConfig(config);
  let seeded = 0;
  // One seed per kernel (seed, seed + 1, …), kept in tfjs's positive int range; 0 would mean unseeded.
  const kernelInitializer = (): ReturnType<typeof tf.initializers.glorotUniform> | undefined =>
    options.seed === undefined
      ? undefined
      : tf.initializers.glorotUniform({ seed: ((options.seed >>> 0) + seeded++) % 0x7fffffff || 1 });
  if (featureShape.length !== 1 && featureShape.length !== 3) {
    throw new Error(`head input must be [channels] or [h, w, channels], got [${featureShape.join(', ')}]`);
  }
  if (c.metadata) return buildFusedHead(featureShape, c, POOL_LAYER, HEAD_NAME);
  const input = tf.input({ shape: [...featureShape], name: 'features' });
  let x = input;
  if (featureShape.length === 3) x = node(tf.layers.globalAveragePooling2d({ name: POOL_LAYER }), x);
  if (c.kind === 'gap-dense-dropout-dense') {
    x = node(
      tf.layers.dense({
        units: c.hiddenUnits,
        activation: 'relu',
        name: 'head_dense',
        kernelInitializer: kernelInitializer(),
      }),
      x,
    );
    // The training loop reseeds the mask before every step (src/lib/train/seeding.ts).
    x = node(tf.layers.dropout({ rate: c.dropout, name: 'head_dropout' }), x);
  }
  x = node(
    tf.layers.dense({
      units: c.classes,
      activation: 'softmax',
      name: 'predictions',
      kernelInitializer: kernelInitializer(),
    }),
    x,
  );
  return tf.model({ inputs: input, outputs: x, name: HEAD_NAME });
}

function leafLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((l) => (l instanceof tf.LayersModel ? leafLayers(l) : [l as tf.layers.Layer]));
}

const isBatchNorm = (layer: tf.layers.Layer): boolean => layer.getClassName() === 'BatchNormalization';

/** Frozen: the layer, or the model around it (`base.trainable = false`), makes its weights non-trainable. */
const isFrozen = (layer: tf.layers.Layer): boolean => !layer.trainable || layer.trainableWeights.length === 0;

const patched = new WeakSet<tf.layers.Layer>();

type CallArgs = Parameters<tf.layers.Layer['call']>;

/**
 * Makes every BatchNormalization layer of `model` (nested models included) run in inference mode while it is
 * frozen, as in Keras. Idempotent; returns how many layers were patched by this call. Needed again after
 * tf.loadLayersModel, since the patch lives on the layer instances.
 */
export function useKerasBatchNormSemantics(model: tf.LayersModel): number {
  let count = 0;
  for (const layer of leafLayers(model)) {
    if (!isBatchNorm(layer) || patched.has(layer)) continue;
    const call = layer.call.bind(layer);
    layer.call = (inputs: CallArgs[0], kwargs: CallArgs[1]) =>
      call(inputs, isFrozen(layer) ? { ...kwargs, training: false } : kwargs);
    patched.add(layer);
    count++;
  }
  return count;
}

/** Backbone → global average pooling: what the feature cache stores, one [channels] vector per image. */
export function buildFeatureExtractor(base: tf.LayersModel): tf.LayersModel {
  useKerasBatchNormSemantics(base);
  const input = tf.input({ shape: base.inputs[0]?.shape.slice(1) as number[], name: 'image' });
  const features = node(tf.layers.globalAveragePooling2d({ name: POOL_LAYER }), node(base, input));
  return tf.model({ inputs: input, outputs: features, name: `${base.name}_features` });
}

/**
 * One model: image → base → (pooling) → head. The base and head are nested, not copied: their weights are shared
 * with the models passed in, so a head trained on cached features is already in place. A HeadConfig builds a new
 * head on the base's pooled features. The base's frozen BatchNormalization layers run in inference mode.
 */
export function composeModel(base: tf.LayersModel, head: tf.LayersModel | HeadConfig): tf.LayersModel {
  const baseOut = base.outputs[0]?.shape ?? [];
  const channels = baseOut[baseOut.length - 1];
  if (baseOut.length !== 4 || channels == null) {
    throw new Error(
      `the base must output a [batch, h, w, channels] feature map, got [${baseOut.join(', ')}]`,
    );
  }
  const headModel = head instanceof tf.LayersModel ? head : buildHead([channels], head);
  const headIn = headModel.inputs[0]?.shape ?? [];
  if (headIn[headIn.length - 1] !== channels) {
    throw new Error(`the head takes ${headIn[headIn.length - 1]} channels, the base gives ${channels}`);
  }
  useKerasBatchNormSemantics(base);
  const input = tf.input({ shape: base.inputs[0]?.shape.slice(1) as number[], name: 'image' });
  let x = node(base, input);
  if (headIn.length === 2) x = node(tf.layers.globalAveragePooling2d({ name: POOL_LAYER }), x);
  // A metadata-fused head: the classifier takes [image, metadata].
  const metaWidth = metadataWidth(headModel);
  if (metaWidth !== null) {
    const metadata = tf.input({ shape: [metaWidth], name: 'metadata' });
    const output = headModel.apply([x, metadata]) as tf.SymbolicTensor;
    return tf.model({ inputs: [input, metadata], outputs: output, name: `${base.name}_classifier` });
  }
  const output = node(headModel, x);
  return tf.model({ inputs: input, outputs: output, name: `${base.name}_classifier` });
}

export interface TrainableState {
  /** Blocks whose non-BatchNormalization layers are trainable, bottom to top. */
  blocks: string[];
  /** Trainable layers of the base. */
  layers: string[];
  trainableParams: number;
}

function countTrainable(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

/**
 * Phase-2 fine-tuning: makes the top `blocks` blocks of the base trainable (0 freezes the whole base; more than
 * the backbone has unfreezes all of it), every other layer frozen. BatchNormalization layers always stay frozen
 * and so keep running in inference mode (as Keras's transfer-learning guide advises). Compile the model again
 * afterwards: tfjs collects the trainable weights when compiling.
 */
export function unfreezeTopBlocks(
  base: tf.LayersModel,
  spec: Pick<BackboneSpec, 'blocks' | 'blockOf'>,
  blocks: number,
): TrainableState {
  if (!Number.isInteger(blocks) || blocks < 0) {
    throw new RangeError(`the number of blocks to unfreeze must be a whole number ≥ 0, got ${blocks}`);
  }
  const top = spec.blocks.slice(Math.max(0, spec.blocks.length - blocks));
  const open = new Set(top);
  base.trainable = true;
  const layers: string[] = [];
  for (const layer of leafLayers(base)) {
    const block = spec.blockOf(layer.name);
    const trainable = block != null && open.has(block) && !isBatchNorm(layer);
    layer.trainable = trainable;
    if (trainable && layer.weights.length > 0) layers.push(layer.name);
  }
  useKerasBatchNormSemantics(base);
  return { blocks: blocks === 0 ? [] : top, layers, trainableParams: countTrainable(base) };
}

/** Phase 1: the whole base frozen (BatchNormalization in inference mode). */
export function freezeBase(base: tf.LayersModel): TrainableState {
  return unfreezeTopBlocks(base, { blocks: [], blockOf: () => null }, 0);
}
