/**
 * Reading Keras HDF5 weight files (`*_notop.h5` as keras.applications ships them, or a whole model saved with
 * `model.save('x.h5')`) with h5wasm, the HDF5 C library compiled to WebAssembly; it runs in Node, in the page
 * and in workers. Layout (Keras 2 "legacy h5"): the root attribute `layer_names` lists the layers in order; each
 * layer is a group whose attribute `weight_names` lists its arrays as paths inside the group
 * (`conv1/kernel:0`, or Keras 1's `block1_conv1_W_1:0` in the VGG16 file).
 */
import h5wasm, { type Dataset, type Group, type OutputData } from 'h5wasm';
import type * as tf from '@tensorflow/tfjs';
import { assignWeights, type LoadReport, type NamedWeight } from './assign.ts';

export interface KerasH5File {
  /** As recorded in the file's root attributes, when present. */
  kerasVersion: string | null;
  backend: string | null;
  /** Every layer of `layer_names`, in order, with its weights (none for pooling, activation, … layers). */
  layers: { name: string; weights: NamedWeight[] }[];
}

let fileCounter = 0;

function strings(value: OutputData | null | undefined): string[] {
  if (value == null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.map((v) => String(v));
  // Keras writes an empty float array as the weight_names of a weightless layer.
  if (ArrayBuffer.isView(value) && value.byteLength === 0) return [];
  if (value instanceof Uint8Array) return [new TextDecoder().decode(value).replace(/\0+$/, '')];
  throw new Error(`expected a list of names, got ${Object.prototype.toString.call(value)}`);
}

const KERAS1_ALIASES: Record<string, string> = { W: 'kernel', b: 'bias' };

/**
 * The weight name Keras's layers use (`kernel`, `bias`, `gamma`, `moving_mean`, `depthwise_kernel`, …) for a
 * name stored in a layer group: `conv1/kernel:0` → `kernel`; Keras 1's `block1_conv1_W_1:0` → `kernel`.
 */
export function kerasWeightName(layer: string, stored: string): string {
  let name = stored.slice(stored.lastIndexOf('/') + 1).replace(/:\d+$/, '');
  if (name.startsWith(`${layer}_`)) {
    name = name.slice(layer.length + 1).replace(/_\d+$/, '');
    name = KERAS1_ALIASES[name] ?? name;
  }
  return name;
}

function toFloat32(value: OutputData | null, where: string): Float32Array {
  if (value instanceof Float32Array) return value;
  if (value instanceof Float64Array) return Float32Array.from(value);
  throw new Error(`${where} is not a floating-point array`);
}

/** h5wasm's module is a singleton; loading it (a few MB of WebAssembly) happens once, on first use. */
async function filesystem(): Promise<{
  writeFile(path: string, data: Uint8Array): void;
  unlink(path: string): void;
}> {
  const module = await h5wasm.ready;
  return module.FS as unknown as {
    writeFile(path: string, data: Uint8Array): void;
    unlink(path: string): void;
  };
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** HDF5's superblock sits at byte 0, or at 512, 1024, 2048, … after a user block. */
function looksLikeHdf5(bytes: Uint8Array): boolean {
  for (
    let offset = 0;
    offset + HDF5_SIGNATURE.length <= bytes.length;
    offset = offset === 0 ? 512 : offset * 2
  ) {
    if (HDF5_SIGNATURE.every((b, i) => bytes[offset + i] === b)) return true;
  }
  return false;
}

/** Reads every array of a Keras weights file. `label` (the file name) is used in error messages. */
export async function readKerasH5(
  data: ArrayBuffer | Uint8Array,
  label = 'weights.h5',
): Promise<KerasH5File> {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (!looksLikeHdf5(bytes)) throw new Error(`${label} is not an HDF5 file (no HDF5 signature)`);
  const fs = await filesystem();
  const path = `/lesion-lab-weights-${++fileCounter}.h5`;
  fs.writeFile(path, bytes);
  let file: InstanceType<typeof h5wasm.File> | null = null;
  try {
    try {
      const opened = new h5wasm.File(path, 'r');
      if (opened.file_id < 0n) throw new Error('HDF5 could not open it');
      file = opened;
    } catch (error) {
      throw new Error(
        `${label} is not a readable HDF5 file (${error instanceof Error ? error.message : error})`,
      );
    }
    let root: Group = file;
    if (!('layer_names' in file.attrs)) {
      const nested = file.get('model_weights');
      if (nested instanceof h5wasm.Group && 'layer_names' in nested.attrs) root = nested;
      else {
        throw new Error(
          `${label} is not a Keras HDF5 weights file: its root has no "layer_names" attribute ` +
            '(Keras 3 ".weights.h5" files use another layout; save with Keras 2 or tf.keras, or as a .h5 model)',
        );
      }
    }
    const attrs = root.attrs;
    const attr = (name: string): string | null =>
      name in attrs ? (strings(attrs[name]?.value)[0] ?? null) : null;
    const layerNames = strings(attrs['layer_names']?.value);
    const layers: KerasH5File['layers'] = [];
    for (const layerName of layerNames) {
      const group = root.get(layerName);
      if (!(group instanceof h5wasm.Group)) {
        throw new Error(
          `${label}: layer_names lists "${layerName}" but the file has no group "${layerName}"`,
        );
      }
      if (!('weight_names' in group.attrs)) {
        throw new Error(`${label}: layer group "${layerName}" has no "weight_names" attribute`);
      }
      const weights: NamedWeight[] = [];
      for (const stored of strings(group.attrs['weight_names']?.value)) {
        const origin = `${root.path === '/' ? '' : root.path}/${layerName}/${stored}`;
        const dataset = group.get(stored);
        if (!(dataset instanceof h5wasm.Dataset)) {
          throw new Error(
            `${label}: layer "${layerName}" lists weight "${stored}" but ${origin} is not a dataset`,
          );
        }
        const ds = dataset as Dataset;
        weights.push({
          layer: layerName,
          weight: kerasWeightName(layerName, stored),
          shape: [...(ds.shape ?? [])],
          values: toFloat32(ds.value, `${label}: ${origin}`),
          origin,
        });
      }
      layers.push({ name: layerName, weights });
    }
    return { kerasVersion: attr('keras_version'), backend: attr('backend'), layers };
  } finally {
    file?.close();
    fs.unlink(path);
  }
}

/**
 * Loads a Keras `.h5` into `model` by layer and weight name. Layers of the file without weights (input, pooling,
 * activations) are ignored; any weight missing, extra or mis-shaped is a WeightsMismatchError naming it.
 */
export async function loadKerasH5Weights(
  model: tf.LayersModel,
  data: ArrayBuffer | Uint8Array,
  label = 'weights.h5',
): Promise<LoadReport & { kerasVersion: string | null }> {
  const file = await readKerasH5(data, label);
  const report = assignWeights(
    model,
    file.layers.flatMap((l) => l.weights),
    label,
  );
  return { ...report, kerasVersion: file.kerasVersion };
}
