/**
 * ResNet50V2 (He et al. 2016, pre-activation) laid out like `keras.applications.ResNet50V2(include_top=False)`.
 * Keras gives the stride-2 identity shortcuts' MaxPooling2D(1) no name, so it calls them max_pooling2d,
 * max_pooling2d_1 and max_pooling2d_2 (in a fresh session); they are named so here, explicitly.
 */
import * as tf from '@tensorflow/tfjs';

const BN_EPSILON = 1.001e-5;

function node(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor {
  return layer.apply(x) as tf.SymbolicTensor;
}

function bn(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  return node(tf.layers.batchNormalization({ axis: -1, epsilon: BN_EPSILON, name }), x);
}

function relu(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  return node(tf.layers.activation({ activation: 'relu', name }), x);
}

const SHORTCUT_POOLS = ['max_pooling2d', 'max_pooling2d_1', 'max_pooling2d_2'];

interface BlockArgs {
  filters: number;
  stride: 1 | 2;
  convShortcut: boolean;
  name: string;
  /** Name of the stride-2 identity shortcut's pooling layer, when there is one. */
  poolName?: string;
}

function residualBlockV2(x: tf.SymbolicTensor, args: BlockArgs): tf.SymbolicTensor {
  const { filters, stride, name } = args;
  let preact = bn(x, `${name}_preact_bn`);
  preact = relu(preact, `${name}_preact_relu`);
  let shortcut: tf.SymbolicTensor;
  if (args.convShortcut) {
    shortcut = node(
      tf.layers.conv2d({ filters: 4 * filters, kernelSize: 1, strides: stride, name: `${name}_0_conv` }),
      preact,
    );
  } else if (stride > 1) {
    shortcut = node(
      tf.layers.maxPooling2d({ poolSize: 1, strides: stride, padding: 'valid', name: args.poolName }),
      x,
    );
  } else {
    shortcut = x;
  }
  let y = node(
    tf.layers.conv2d({ filters, kernelSize: 1, strides: 1, useBias: false, name: `${name}_1_conv` }),
    preact,
  );
  y = bn(y, `${name}_1_bn`);
  y = relu(y, `${name}_1_relu`);
  y = node(
    tf.layers.zeroPadding2d({
      padding: [
        [1, 1],
        [1, 1],
      ],
      name: `${name}_2_pad`,
    }),
    y,
  );
  y = node(
    tf.layers.conv2d({ filters, kernelSize: 3, strides: stride, useBias: false, name: `${name}_2_conv` }),
    y,
  );
  y = bn(y, `${name}_2_bn`);
  y = relu(y, `${name}_2_relu`);
  y = node(tf.layers.conv2d({ filters: 4 * filters, kernelSize: 1, name: `${name}_3_conv` }), y);
  return node(tf.layers.add({ name: `${name}_out` }), [shortcut, y]);
}

/** [stack name, bottleneck filters, blocks, stride of the stack's last block]. */
const STACKS: readonly (readonly [string, number, number, 1 | 2])[] = [
  ['conv2', 64, 3, 2],
  ['conv3', 128, 4, 2],
  ['conv4', 256, 6, 2],
  ['conv5', 512, 3, 1],
];

export function buildResNet50V2(inputSize: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = node(
    tf.layers.zeroPadding2d({
      padding: [
        [3, 3],
        [3, 3],
      ],
      name: 'conv1_pad',
    }),
    input,
  );
  x = node(
    tf.layers.conv2d({ filters: 64, kernelSize: 7, strides: 2, useBias: true, name: 'conv1_conv' }),
    x,
  );
  x = node(
    tf.layers.zeroPadding2d({
      padding: [
        [1, 1],
        [1, 1],
      ],
      name: 'pool1_pad',
    }),
    x,
  );
  x = node(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1_pool' }), x);
  let pools = 0;
  for (const [stack, filters, blocks, lastStride] of STACKS) {
    for (let b = 1; b <= blocks; b++) {
      const stride = b === blocks ? lastStride : 1;
      const poolName = b > 1 && stride > 1 ? SHORTCUT_POOLS[pools++] : undefined;
      x = residualBlockV2(x, {
        filters,
        stride,
        convShortcut: b === 1,
        name: `${stack}_block${b}`,
        poolName,
      });
    }
  }
  x = bn(x, 'post_bn');
  x = relu(x, 'post_relu');
  return tf.model({ inputs: input, outputs: x, name: 'resnet50v2' });
}

export { RESNET50V2_BLOCKS, resNet50V2BlockOf } from './blocks.ts';
