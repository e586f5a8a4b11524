/** VGG16 (Simonyan & Zisserman 2015) laid out like `keras.applications.VGG16(include_top=False)`. */
import * as tf from '@tensorflow/tfjs';

/** Filters of each conv in block1 … block5. */
const BLOCKS: readonly (readonly number[])[] = [
  [64, 64],
  [128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [512, 512, 512],
];

export function buildVgg16(inputSize: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x: tf.SymbolicTensor = input;
  BLOCKS.forEach((convs, b) => {
    convs.forEach((filters, c) => {
      const layer = tf.layers.conv2d({
        filters,
        kernelSize: 3,
        activation: 'relu',
        padding: 'same',
        name: `block${b + 1}_conv${c + 1}`,
      });
      x = layer.apply(x) as tf.SymbolicTensor;
    });
    const pool = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` });
    x = pool.apply(x) as tf.SymbolicTensor;
  });
  return tf.model({ inputs: input, outputs: x, name: 'vgg16' });
}

export { VGG16_BLOCKS, vgg16BlockOf } from './blocks.ts';
