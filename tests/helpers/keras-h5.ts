/**
 * Writes HDF5 files in the layout of Keras's weight files (the legacy "h5" format keras.applications ships), with
 * the HDF5 library itself (h5wasm): root attributes `keras_version`, `backend` and `layer_names` (fixed-length
 * strings, every layer in order), one group per layer with a `weight_names` attribute (an empty array for
 * weightless layers) and one dataset per weight at the path given in `weight_names`.
 *
 * Two naming styles, as in the real files:
 * - 'keras2' (e.g. ResNet50V2, MobileNet): `conv1_conv/kernel:0`, stored at /conv1_conv/conv1_conv/kernel:0;
 * - 'keras1' (the VGG16 file): `block1_conv1_W_1:0` and `block1_conv1_b_1:0`, stored directly in the layer group.
 */
import h5wasm, { type Group } from 'h5wasm/node';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { createRandom } from '../../src/lib/random.ts';

export interface H5Weight {
  /** The name as it appears in `weight_names`, e.g. `conv1/kernel:0`. */
  stored: string;
  shape: number[];
  values: Float32Array;
}

export interface H5Layer {
  name: string;
  weights: H5Weight[];
}

export type KerasNaming = 'keras2' | 'keras1';

const KERAS1_NAMES: Record<string, string> = { kernel: 'W', bias: 'b' };

export function storedWeightName(layer: string, weight: string, naming: KerasNaming): string {
  if (naming === 'keras1') return `${layer}_${KERAS1_NAMES[weight] ?? weight}_1:0`;
  return `${layer}/${weight}:0`;
}

/**
 * The layers of `model` (in order, weightless ones included) with every weight filled with seeded uniform random
 * values in [-1, 1): distinct arrays, so any mix-up between two weights of the same shape shows.
 */
export function randomKerasLayers(model: tf.LayersModel, naming: KerasNaming, seed = 1337): H5Layer[] {
  const random = createRandom(seed);
  return model.layers.map((layer) => ({
    name: layer.name,
    weights: layer.weights.map((w) => {
      const weight = w.originalName.slice(w.originalName.lastIndexOf('/') + 1);
      const shape = [...(w.shape as number[])];
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < values.length; i++) values[i] = random.next() * 2 - 1;
      return { stored: storedWeightName(layer.name, weight, naming), shape, values };
    }),
  }));
}

function fixedStrings(values: string[]): string {
  return `S${Math.max(1, ...values.map((v) => new TextEncoder().encode(v).length))}`;
}

/**
 * Returns the bytes of an .h5 file holding `layers` in Keras's layout. (Written through h5wasm's Node build to a
 * temporary file: about 8x faster than its in-memory file system for the 60-90 MB VGG16/ResNet50V2 files.)
 */
export async function writeKerasH5(
  layers: readonly H5Layer[],
  attrs: { kerasVersion?: string; backend?: string; layerNames?: string[] } = {},
): Promise<Uint8Array> {
  await h5wasm.ready;
  const dir = mkdtempSync(join(tmpdir(), 'keras-h5-'));
  const path = join(dir, 'weights.h5');
  const file = new h5wasm.File(path, 'w');
  try {
    file.create_attribute('keras_version', attrs.kerasVersion ?? '2.2.4-tf', null, 'S16');
    file.create_attribute('backend', attrs.backend ?? 'tensorflow', null, 'S10');
    const layerNames = attrs.layerNames ?? layers.map((l) => l.name);
    file.create_attribute('layer_names', layerNames, [layerNames.length], fixedStrings(layerNames));
    for (const layer of layers) {
      const group = file.create_group(layer.name);
      const names = layer.weights.map((w) => w.stored);
      if (names.length === 0) group.create_attribute('weight_names', new Float64Array(0), [0], '<d');
      else group.create_attribute('weight_names', names, [names.length], fixedStrings(names));
      for (const w of layer.weights) {
        const slash = w.stored.lastIndexOf('/');
        const parent = slash < 0 ? group : ensureGroup(group, w.stored.slice(0, slash));
        parent.create_dataset({
          name: w.stored.slice(slash + 1),
          data: w.values,
          shape: w.shape,
          dtype: '<f',
        });
      }
    }
  } finally {
    file.close();
  }
  try {
    return new Uint8Array(readFileSync(path));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ensureGroup(group: Group, path: string): Group {
  let g = group;
  for (const part of path.split('/')) {
    const next = g.get(part);
    g = next instanceof h5wasm.Group ? next : g.create_group(part);
  }
  return g;
}
