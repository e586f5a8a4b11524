/**
 * TensorFlow.js layers models (model.json + binary shards) as a weights source, and as the format the app serves
 * converted Keras weights in. A source is loaded with tf.loadLayersModel (from a URL, or from dropped files through
 * `filesIOHandler`), then its weights are copied into our backbone by layer and weight name.
 */
import * as tf from '@tensorflow/tfjs';
import { assignWeights, shortWeightName, type LoadReport, type NamedWeight } from './assign.ts';

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
          const shards: Array<{ name: string; bytes: number }> = [];
          for (const path of group.paths) {
            const file = byName.get(basename(path));
            if (!file) {
              throw new Error(
                `${basename(jsonFile.name)} lists the shard ${basename(path)}, which is not among the files`,
              );
            }
            const buffer = await file.arrayBuffer();
            buffers.push(buffer);
            shards.push({ name: basename(path), bytes: buffer.byteLength });
          }
          checkShardBytes(basename(jsonFile.name), group.weights, shards);
        }
        return [specs, buffers];
      });
    },
  };
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1 };
const QUANTIZED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

/** Bytes one manifest entry takes in its shards. */
function entryBytes(spec: tf.io.WeightsManifestEntry): number {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const per = spec.quantization ? QUANTIZED_BYTES[spec.quantization.dtype] : DTYPE_BYTES[spec.dtype];
  if (per === undefined)
    throw new Error(`the weight ${spec.name} has a data type this app cannot read (${spec.dtype})`);
  return size * per;
}

/**
 * The shards of one manifest group must hold exactly the bytes its weights need. Without this check tf reports a
 * short or padded shard as "byte length of Float32Array should be a multiple of 4" or a value count, naming
 * neither the file nor the weight — or, for extra bytes, loads silently from a file that is not this model's.
 */
export function checkShardBytes(
  jsonName: string,
  weights: readonly tf.io.WeightsManifestEntry[],
  shards: ReadonlyArray<{ name: string; bytes: number }>,
): void {
  const needed = weights.reduce((sum, w) => sum + entryBytes(w), 0);
  const held = shards.reduce((sum, s) => sum + s.bytes, 0);
  if (held === needed) return;
  const names = shards.map((s) => s.name).join(' + ') || 'no shard';
  const count = (n: number) => n.toLocaleString('en-US');
  if (held > needed) {
    throw new Error(
      `${names} holds ${count(held)} bytes, ${count(held - needed)} more than the ${count(needed)} that ` +
        `${jsonName} describes: the shard does not belong to this model.json (or was altered). Use the shard ` +
        `files that came with this model.json.`,
    );
  }
  // The first weight that does not fit whole is where the data runs out.
  let offset = 0;
  let first = weights[0]?.name ?? '';
  for (const w of weights) {
    if (offset + entryBytes(w) > held) {
      first = w.name;
      break;
    }
    offset += entryBytes(w);
  }
  throw new Error(
    `${names} holds ${count(held)} bytes, ${count(needed - held)} fewer than the ${count(needed)} that ` +
      `${jsonName} describes: the data runs out at the weight ${first}. The file was cut short (an interrupted ` +
      `download or copy?): get it again.`,
  );
}

/**
 * The named weights of a TensorFlow.js layers model (URL or IOHandler), read straight from its weights manifest.
 * The topology is not rebuilt: weights are matched to our backbone by name later (assignWeights), which names any
 * weight whose shape was changed, is missing or is extra — where tf.loadLayersModel would say only
 * "Shape mismatch: [3,3,3,16] vs. [3,3,16,3]".
 */
export async function readTfjsLayersWeights(source: string | tf.io.IOHandler): Promise<NamedWeight[]> {
  const label = typeof source === 'string' ? source : 'model.json';
  const handler = typeof source === 'string' ? tf.io.http(source) : source;
  if (!handler.load) throw new Error(`${label} cannot be read`);
  const artifacts = await handler.load();
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new Error(`${label} holds no weights`);
  const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  checkShardBytes(label, artifacts.weightSpecs, [{ name: 'the weights data', bytes: data.byteLength }]);
  const tensors = tf.io.decodeWeights(data, artifacts.weightSpecs);
  const out: NamedWeight[] = [];
  try {
    for (const spec of artifacts.weightSpecs) {
      const tensor = tensors[spec.name]!;
      const float = tensor.dtype === 'float32' ? tensor : tf.cast(tensor, 'float32');
      const values = await float.data();
      if (float !== tensor) float.dispose();
      // Keras names a weight `<layer>/<weight>`; a model nested in another adds outer scopes in front.
      const parts = spec.name.split('/');
      out.push({
        layer: parts.length >= 2 ? (parts[parts.length - 2] as string) : spec.name,
        weight: shortWeightName(spec.name),
        shape: [...spec.shape],
        values: values as Float32Array,
        origin: `${label}:${spec.name}`,
      });
    }
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return out;
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
