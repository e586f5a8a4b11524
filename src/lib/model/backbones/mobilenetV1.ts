/**
 * MobileNet v1 (Howard et al. 2017) laid out like `keras.applications.MobileNet(include_top=False)`, depth
 * multiplier 1: conv1 + 13 depthwise-separable blocks, ReLU6, BatchNormalization with Keras's defaults.
 */
import * as tf from '@tensorflow/tfjs';

export const MOBILENET_V1_ALPHAS = [0.25, 0.5, 0.75, 1.0] as const;
export type MobileNetV1Alpha = (typeof MOBILENET_V1_ALPHAS)[number];

function node(layer: tf.layers.Layer, x: tf.SymbolicTensor): tf.SymbolicTensor {
  return layer.apply(x) as tf.SymbolicTensor;
}

function depthwiseSeparableBlock(
  inputs: tf.SymbolicTensor,
  pointwiseFilters: number,
  alpha: number,
  stride: 1 | 2,
  blockId: number,
): tf.SymbolicTensor {
  const filters = Math.trunc(pointwiseFilters * alpha);
  let x = inputs;
  if (stride === 2) {
    // Keras pads bottom/right by one whatever the input parity (unlike MobileNetV2's correct_pad).
    x = node(
      tf.layers.zeroPadding2d({
        padding: [
          [0, 1],
          [0, 1],
        ],
        name: `conv_pad_${blockId}`,
      }),
      x,
    );
  }
  x = node(
    tf.layers.depthwiseConv2d({
      kernelSize: 3,
      padding: stride === 1 ? 'same' : 'valid',
      depthMultiplier: 1,
      strides: stride,
      useBias: false,
      name: `conv_dw_${blockId}`,
    }),
    x,
  );
  x = node(tf.layers.batchNormalization({ axis: -1, name: `conv_dw_${blockId}_bn` }), x);
  x = node(tf.layers.reLU({ maxValue: 6, name: `conv_dw_${blockId}_relu` }), x);
  x = node(
    tf.layers.conv2d({
      filters,
      kernelSize: 1,
      padding: 'same',
      useBias: false,
      strides: 1,
      name: `conv_pw_${blockId}`,
    }),
    x,
  );
  x = node(tf.layers.batchNormalization({ axis: -1, name: `conv_pw_${blockId}_bn` }), x);
  return node(tf.layers.reLU({ maxValue: 6, name: `conv_pw_${blockId}_relu` }), x);
}

/** [pointwise filters, stride] for block_id 1..13, as in Keras. */
const BLOCKS: readonly (readonly [number, 1 | 2])[] = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

export function buildMobileNetV1(alpha: MobileNetV1Alpha, inputSize: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = node(
    tf.layers.conv2d({
      filters: Math.trunc(32 * alpha),
      kernelSize: 3,
      padding: 'same',
      useBias: false,
      strides: 2,
      name: 'conv1',
    }),
    input,
  );
  x = node(tf.layers.batchNormalization({ axis: -1, name: 'conv1_bn' }), x);
  x = node(tf.layers.reLU({ maxValue: 6, name: 'conv1_relu' }), x);
  BLOCKS.forEach(([filters, stride], i) => {
    x = depthwiseSeparableBlock(x, filters, alpha, stride, i + 1);
  });
  return tf.model({ inputs: input, outputs: x, name: `mobilenet_${alpha.toFixed(2)}_${inputSize}` });
}

export { MOBILENET_V1_BLOCKS, mobileNetV1BlockOf } from './blocks.ts';
