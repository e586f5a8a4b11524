/**
 * Each backbone's blocks, bottom (input) to top (output), and the block every Keras layer name belongs to: what
 * "unfreeze the top N blocks" needs. Plain data and string functions, free of TensorFlow.js, so the UI can list
 * blocks without pulling the model builders into the main bundle.
 */

/** Bottom to top: conv1, then block_1 … block_13 (each conv_dw_N + conv_pw_N). */
export const MOBILENET_V1_BLOCKS: readonly string[] = [
  'conv1',
  ...Array.from({ length: 13 }, (_, i) => `block_${i + 1}`),
];

export function mobileNetV1BlockOf(layerName: string): string | null {
  if (/^conv1(_bn|_relu)?$/.test(layerName)) return 'conv1';
  const m = /^conv_(?:pad|dw|pw)_(\d+)(?:_|$)/.exec(layerName);
  return m ? `block_${m[1]}` : null;
}

/** Bottom to top: the stem, expanded_conv (block 0), block_1 … block_16, then the 1x1 conv to 1280 ("top"). */
export const MOBILENET_V2_BLOCKS: readonly string[] = [
  'stem',
  'expanded_conv',
  ...Array.from({ length: 16 }, (_, i) => `block_${i + 1}`),
  'top',
];

export function mobileNetV2BlockOf(layerName: string): string | null {
  if (layerName === 'Conv1' || layerName === 'bn_Conv1' || layerName === 'Conv1_relu') return 'stem';
  if (layerName.startsWith('expanded_conv_')) return 'expanded_conv';
  const m = /^(block_\d+)_/.exec(layerName);
  if (m) return m[1] as string;
  if (layerName === 'Conv_1' || layerName === 'Conv_1_bn' || layerName === 'out_relu') return 'top';
  return null;
}

/** ResNet50V2's stacks and their number of residual blocks, as in Keras (the builder adds filters and strides). */
export const RESNET50V2_STACK_DEPTHS: readonly (readonly [string, number])[] = [
  ['conv2', 3],
  ['conv3', 4],
  ['conv4', 6],
  ['conv5', 3],
];

/** Bottom to top: the conv1/pool1 stem, then conv2_block1 … conv5_block3 (the last one with post_bn/post_relu). */
export const RESNET50V2_BLOCKS: readonly string[] = [
  'conv1',
  ...RESNET50V2_STACK_DEPTHS.flatMap(([stack, blocks]) =>
    Array.from({ length: blocks }, (_, i) => `${stack}_block${i + 1}`),
  ),
];

const POOL_BLOCKS: Record<string, string> = {
  max_pooling2d: 'conv2_block3',
  max_pooling2d_1: 'conv3_block4',
  max_pooling2d_2: 'conv4_block6',
};

export function resNet50V2BlockOf(layerName: string): string | null {
  if (/^(conv1|pool1)_/.test(layerName)) return 'conv1';
  const m = /^(conv[2-5]_block\d+)_/.exec(layerName);
  if (m) return m[1] as string;
  if (layerName === 'post_bn' || layerName === 'post_relu') return 'conv5_block3';
  return POOL_BLOCKS[layerName] ?? null;
}

export const VGG16_BLOCKS: readonly string[] = ['block1', 'block2', 'block3', 'block4', 'block5'];

export function vgg16BlockOf(layerName: string): string | null {
  const m = /^(block[1-5])_/.exec(layerName);
  return m ? (m[1] as string) : null;
}
