/**
 * The default backbone with its real ImageNet weights from ../shared (real BatchNormalization statistics), as the
 * Node tests that check features on real images need it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { buildBackbone } from '../../src/lib/model/backbones/index.ts';
import { filesIOHandler, loadTfjsLayersWeights, type FileLike } from '../../src/lib/model/weights/index.ts';

export const MOBILENET_V2_035_WEIGHTS = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'shared',
  'weights',
  'tfjs-mobilenet-v2-0.35-224-notop',
);

/** The weights directory's files, read from disk when asked for. */
export function weightFiles(dir = MOBILENET_V2_035_WEIGHTS): FileLike[] {
  return readdirSync(dir).map((name) => ({
    name,
    arrayBuffer: async () => {
      const b = readFileSync(join(dir, name));
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  }));
}

/** MobileNetV2 0.35 at `size`×`size` with the ImageNet weights. */
export async function pretrainedMobileNetV2(size: number): Promise<tf.LayersModel> {
  const base = buildBackbone('mobilenet_v2_0.35', size);
  await loadTfjsLayersWeights(base, filesIOHandler(weightFiles()));
  return base;
}
