/**
 * MobileNetV2 (Sandler et al. 2018) laid out layer for layer like `keras.applications.MobileNetV2(include_top=False)`:
 * same layer names, classes, padding and BatchNormalization settings, so Keras's `*_no_top.h5` files and their
 * TensorFlow.js conversions load by name.
 */
import * as tf from '@tensorflow/tfjs';

export const MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0] as const;
export type MobileNetV2Alpha = (typeof MOBILENET_V2_ALPHAS)[number];

function node(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor {
  return layer.apply(x) as tf.SymbolicTensor;
}

/** Keras's `_make_divisible`: round to a multiple of `divisor`, never dropping more than 10 %. */
export function makeDivisible(v: number, divisor = 8): number {
  let rounded = Math.max(divisor, Math.floor(Math.floor(v + divisor / 2) / divisor) * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

/** Keras's `imagenet_utils.correct_pad` for a 3x3 kernel: asymmetric on even sizes, so stride 2 matches TF 'SAME'. */
function correctPad(size: number): [[number, number], [number, number]] {
  const adjust = 1 - (size % 2);
  return [
    [1 - adjust, 1],
    [1 - adjust, 1],
  ];
}

function channels(x: tf.SymbolicTensor): number {
  return x.shape[x.shape.length - 1] as number;
}

function batchNorm(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  return node(tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.999, name }), x);
}

function invertedResBlock(
  inputs: tf.SymbolicTensor,
  expansion: number,
  stride: 1 | 2,
  alpha: number,
  filters: number,
  blockId: number,
): tf.SymbolicTensor {
  const inChannels = channels(inputs);
  const pointwiseFilters = makeDivisible(Math.trunc(filters * alpha), 8);
  let x = inputs;
  let prefix = `block_${blockId}_`;
  if (blockId) {
    x = node(
      tf.layers.conv2d({
        filters: expansion * inChannels,
        kernelSize: 1,
        padding: 'same',
        useBias: false,
        name: `${prefix}expand`,
      }),
      x,
    );
    x = batchNorm(x, `${prefix}expand_BN`);
    x = node(tf.layers.reLU({ maxValue: 6, name: `${prefix}expand_relu` }), x);
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) {
    x = node(tf.layers.zeroPadding2d({ padding: correctPad(x.shape[1] as number), name: `${prefix}pad` }), x);
  }
  x = node(
    tf.layers.depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      useBias: false,
      padding: stride === 1 ? 'same' : 'valid',
      name: `${prefix}depthwise`,
    }),
    x,
  );
  x = batchNorm(x, `${prefix}depthwise_BN`);
  x = node(tf.layers.reLU({ maxValue: 6, name: `${prefix}depthwise_relu` }), x);
  x = node(
    tf.layers.conv2d({
      filters: pointwiseFilters,
      kernelSize: 1,
      padding: 'same',
      useBias: false,
      name: `${prefix}project`,
    }),
    x,
  );
  x = batchNorm(x, `${prefix}project_BN`);
  if (inChannels === pointwiseFilters && stride === 1) {
    return node(tf.layers.add({ name: `${prefix}add` }), [inputs, x]);
  }
  return x;
}

/** [filters, stride, expansion] for block_id 0..16, as in Keras. */
const BLOCKS: readonly (readonly [number, 1 | 2, number])[] = [
  [16, 1, 1],
  [24, 2, 6],
  [24, 1, 6],
  [32, 2, 6],
  [32, 1, 6],
  [32, 1, 6],
  [64, 2, 6],
  [64, 1, 6],
  [64, 1, 6],
  [64, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [160, 2, 6],
  [160, 1, 6],
  [160, 1, 6],
  [320, 1, 6],
];

export function buildMobileNetV2(alpha: MobileNetV2Alpha, inputSize: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = node(
    tf.layers.conv2d({
      filters: makeDivisible(32 * alpha, 8),
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      useBias: false,
      name: 'Conv1',
    }),
    input,
  );
  x = batchNorm(x, 'bn_Conv1');
  x = node(tf.layers.reLU({ maxValue: 6, name: 'Conv1_relu' }), x);
  BLOCKS.forEach(([filters, stride, expansion], blockId) => {
    x = invertedResBlock(x, expansion, stride, alpha, filters, blockId);
  });
  // Keras widens the last conv only for alpha > 1; all alphas offered here keep 1280 features.
  const lastFilters = alpha > 1 ? makeDivisible(1280 * alpha, 8) : 1280;
  x = node(tf.layers.conv2d({ filters: lastFilters, kernelSize: 1, useBias: false, name: 'Conv_1' }), x);
  x = batchNorm(x, 'Conv_1_bn');
  x = node(tf.layers.reLU({ maxValue: 6, name: 'out_relu' }), x);
  const rows = inputSize;
  return tf.model({ inputs: input, outputs: x, name: `mobilenetv2_${alpha.toFixed(2)}_${rows}` });
}

export { MOBILENET_V2_BLOCKS, mobileNetV2BlockOf } from './blocks.ts';
