/**
 * The metadata-fused head: two inputs, `features` (pooled image features [channels], or a feature map
 * [h, w, channels] that it pools first) and `metadata` (the encoded vector of ./metadata-features.ts), one softmax
 * output. See ./fusion.ts for the two fusions and the MetaBlock reference.
 *
 * Built from standard Keras layers only (Dense, Concatenate, Multiply, Add, Activation, Dropout), so the model
 * saves, exports and imports as any TensorFlow.js layers model.
 */
import * as tf from '@tensorflow/tfjs';
import type { HeadConfig } from './head-config.ts';

export const FEATURES_INPUT = 'features';
export const METADATA_INPUT = 'metadata';

function node(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor {
  return layer.apply(x) as tf.SymbolicTensor;
}

/** True when the head (or a model around it) takes the metadata as a second input. */
export function takesMetadata(model: tf.LayersModel): boolean {
  return model.inputs.length === 2;
}

/** Length of the metadata vector a two-input model takes (its second input's last dimension). */
export function metadataWidth(model: tf.LayersModel): number | null {
  if (!takesMetadata(model)) return null;
  const shape = model.inputs[1]!.shape;
  return shape[shape.length - 1] ?? null;
}

export function buildFusedHead(
  featureShape: readonly number[],
  config: HeadConfig,
  poolLayerName: string,
  name: string,
): tf.LayersModel {
  const meta = config.metadata;
  if (!meta) throw new Error('buildFusedHead needs a head config with metadata');
  const features = tf.input({ shape: [...featureShape], name: FEATURES_INPUT });
  const metadata = tf.input({ shape: [meta.features], name: METADATA_INPUT });
  let x: tf.SymbolicTensor = features;
  if (featureShape.length === 3) x = node(tf.layers.globalAveragePooling2d({ name: poolLayerName }), x);
  const channels = x.shape[x.shape.length - 1] as number;
  if (meta.fusion === 'metablock') {
    // Pacheco & Krohling's MetaBlock: T = σ(tanh(f(m) ⊙ x) + g(m)).
    const scale = node(tf.layers.dense({ units: channels, name: 'metablock_f' }), metadata);
    const shift = node(tf.layers.dense({ units: channels, name: 'metablock_g' }), metadata);
    const gated = node(tf.layers.multiply({ name: 'metablock_scale' }), [scale, x]);
    const squashed = node(tf.layers.activation({ activation: 'tanh', name: 'metablock_tanh' }), gated);
    const shifted = node(tf.layers.add({ name: 'metablock_shift' }), [squashed, shift]);
    x = node(tf.layers.activation({ activation: 'sigmoid', name: 'metablock_sigmoid' }), shifted);
  }
  const embedded = node(
    tf.layers.dense({ units: meta.units, activation: 'relu', name: 'metadata_dense' }),
    metadata,
  );
  x = node(tf.layers.concatenate({ name: 'fusion_concat' }), [x, embedded]);
  if (config.kind === 'gap-dense-dropout-dense') {
    x = node(tf.layers.dense({ units: config.hiddenUnits, activation: 'relu', name: 'head_dense' }), x);
    x = node(tf.layers.dropout({ rate: config.dropout, name: 'head_dropout' }), x);
  }
  x = node(tf.layers.dense({ units: config.classes, activation: 'softmax', name: 'predictions' }), x);
  return tf.model({ inputs: [features, metadata], outputs: x, name });
}
