/**
 * TensorFlow.js layers models (model.json + binary shards) as a weights source, and as the format the app serves
 * converted Keras weights in. A source is loaded with tf.loadLayersModel (from a URL, or from dropped files through
 * `filesIOHandler`), then its weights are copied into our backbone by layer and weight name.
 */
import * as tf from '@tensorflow/tfjs';
import { assignWeights, readNamedWeights, type LoadReport, type NamedWeight } from './assign.ts';

/** A dropped File, or anything else with a name and bytes (Node tests wrap fs reads in this). */
export interface FileLike {
  readonly name: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** A file to write: the output of a conversion. */
export interface NamedFile {
  name: string;
  bytes: Uint8Array;
}

const basename = (path: string): string => {
  const clean = path.split(/[?#]/)[0] as string;
  return decodeURIComponent(clean.slice(clean.lastIndexOf('/') + 1));
};

/**
 * An IOHandler over a set of files: one `model.json` (any name ending in .json) and the shards its weights manifest
 * lists, matched by file name. Missing shards, extra JSON files and unreadable JSON are errors that name the file.
 */
export function filesIOHandler(files: readonly FileLike[]): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsons = files.filter((f) => basename(f.name).toLowerCase().endsWith('.json'));
      if (jsons.length !== 1) {
        const names = files.map((f) => basename(f.name)).join(', ') || 'none';
        throw new Error(
          jsons.length === 0
            ? `no model.json among the files (${names})`
            : `several .json files (${jsons.map((f) => basename(f.name)).join(', ')}); drop exactly one model.json`,
        );
      }
      const jsonFile = jsons[0] as FileLike;
      let modelJSON: tf.io.ModelJSON;
      try {
        modelJSON = JSON.parse(new TextDecoder().decode(await jsonFile.arrayBuffer())) as tf.io.ModelJSON;
      } catch (error) {
        throw new Error(`${basename(jsonFile.name)} is not valid JSON (${(error as Error).message})`);
      }
      if (modelJSON.modelTopology == null || !Array.isArray(modelJSON.weightsManifest)) {
        throw new Error(
          `${basename(jsonFile.name)} is not a TensorFlow.js layers model (it needs modelTopology and weightsManifest)`,
        );
      }
      const byName = new Map(files.map((f) => [basename(f.name), f]));
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const path of group.paths) {
            const file = byName.get(basename(path));
            if (!file) {
              throw new Error(
                `${basename(jsonFile.name)} lists the shard ${basename(path)}, which is not among the files`,
              );
            }
            buffers.push(await file.arrayBuffer());
          }
        }
        return [specs, buffers];
      });
    },
  };
}

/** Loads a TensorFlow.js layers model (URL or IOHandler) and returns its weights by name; the model is disposed. */
export async function readTfjsLayersWeights(source: string | tf.io.IOHandler): Promise<NamedWeight[]> {
  const label = typeof source === 'string' ? source : 'model.json';
  const loaded = await tf.loadLayersModel(source);
  try {
    return await readNamedWeights(loaded, label);
  } finally {
    loaded.dispose();
  }
}

/** Copies the weights of a TensorFlow.js layers model (URL or IOHandler) into `model` by layer and weight name. */
export async function loadTfjsLayersWeights(
  model: tf.LayersModel,
  source: string | tf.io.IOHandler,
  label = typeof source === 'string' ? source : 'model.json',
): Promise<LoadReport> {
  return assignWeights(model, await readTfjsLayersWeights(source), label);
}

export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

/**
 * Serialises `model` as a TensorFlow.js layers model: `model.json` and `group1-shardKofN.bin` files of at most
 * `shardBytes` (4 MiB, as tensorflowjs_converter writes them), ready to be served or written to disk.
 */
export async function toTfjsLayersFiles(
  model: tf.LayersModel,
  options: { shardBytes?: number; convertedBy?: string } = {},
): Promise<NamedFile[]> {
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  let artifacts: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    }),
  );
  const saved = artifacts as tf.io.ModelArtifacts | null;
  if (!saved?.weightSpecs || !saved.weightData || !saved.modelTopology) {
    throw new Error('model.save produced no topology or weights');
  }
  const weightData = new Uint8Array(tf.io.CompositeArrayBuffer.join(saved.weightData));
  const count = Math.max(1, Math.ceil(weightData.byteLength / shardBytes));
  const shards: NamedFile[] = Array.from({ length: count }, (_, i) => ({
    name: `group1-shard${i + 1}of${count}.bin`,
    bytes: weightData.subarray(i * shardBytes, Math.min((i + 1) * shardBytes, weightData.byteLength)),
  }));
  const modelJSON: tf.io.ModelJSON = {
    format: 'layers-model',
    generatedBy: saved.generatedBy,
    convertedBy: options.convertedBy ?? null,
    modelTopology: saved.modelTopology,
    weightsManifest: [{ paths: shards.map((s) => s.name), weights: saved.weightSpecs }],
  };
  return [{ name: 'model.json', bytes: new TextEncoder().encode(JSON.stringify(modelJSON)) }, ...shards];
}
