/**
 * A run's model as data: TensorFlow.js ModelArtifacts (topology + weight specs + weight bytes), the form that
 * `model.save` hands out, `tf.io.fromMemory` loads, IndexedDB stores and the export zip writes as model.json +
 * weights.bin. Loading checks the model against the run's config, so a model that does not fit the run is refused
 * with a reason instead of predicting nonsense.
 */
import * as tf from '@tensorflow/tfjs';
import { metadataDim } from '../model/metadata-features.ts';
import { RunFileError, type RunModelConfig } from './record.ts';

/** The model's artifacts, without touching any storage (`model.save` through a pass-through handler). */
export async function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  const artifacts = saved as tf.io.ModelArtifacts | null;
  if (!artifacts?.modelTopology || !artifacts.weightSpecs || !artifacts.weightData) {
    throw new Error('model.save produced no topology or weights');
  }
  return artifacts;
}

/** The weight bytes as one ArrayBuffer (a copy when they came in several buffers). */
export function weightBytes(artifacts: tf.io.ModelArtifacts): ArrayBuffer {
  if (!artifacts.weightData) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(artifacts.weightData);
}

/** A deep copy that shares no buffer with the original (what a store hands out). */
export function cloneArtifacts(artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const { weightData, ...rest } = artifacts;
  const copy = structuredClone(rest) as tf.io.ModelArtifacts;
  if (weightData) copy.weightData = weightBytes(artifacts).slice(0);
  return copy;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
  complex64: 8,
};

/**
 * Bytes the weight specs need, as tfjs's decodeWeights reads them (a quantized weight takes its quantized dtype's
 * size). Throws naming the weight for a dtype that cannot be sized (string weights).
 */
export function weightSpecBytes(specs: readonly tf.io.WeightsManifestEntry[], file = 'model.json'): number {
  let total = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    const bytes = BYTES_PER_ELEMENT[dtype];
    if (bytes === undefined) {
      throw new RunFileError(
        `${file}: weight ${spec.name} has dtype ${dtype}, which is not supported`,
        file,
        spec.name,
      );
    }
    total += size * bytes;
  }
  return total;
}

function dims(shape: readonly (number | null)[] | undefined): string {
  return `[${(shape ?? []).map((d) => d ?? 'batch').join(', ')}]`;
}

interface LayerUse {
  layer: string;
  className: string;
}

/** Every layer of a layers-model topology (nested models included), with its class name. */
function layersOf(topology: unknown, out: LayerUse[] = []): LayerUse[] {
  if (typeof topology !== 'object' || topology === null) return out;
  const node = topology as { class_name?: unknown; config?: { name?: unknown; layers?: unknown } };
  // A model.json's modelTopology is either the model itself or { model_config: … } (Keras's saving format).
  const model = (node as { model_config?: unknown }).model_config ?? node;
  const layers = (model as { config?: { layers?: unknown } }).config?.layers;
  if (!Array.isArray(layers)) return out;
  for (const layer of layers as unknown[]) {
    if (typeof layer !== 'object' || layer === null) continue;
    const l = layer as { class_name?: unknown; name?: unknown; config?: { name?: unknown } };
    const name =
      typeof l.config?.name === 'string' ? l.config.name : typeof l.name === 'string' ? l.name : '?';
    out.push({
      layer: name,
      className: typeof l.class_name === 'string' ? l.class_name : String(l.class_name),
    });
    layersOf(layer, out);
  }
  return out;
}

/** The layer classes this TensorFlow.js build can make (what loadLayersModel looks names up in). */
function knownLayerClasses(): Set<string> {
  return new Set(Object.keys(tf.serialization.SerializationMap.getMap().classNameMap));
}

/** tfjs's own text, cut to its first sentence: the rest is advice about custom layers that does not apply. */
function firstSentence(text: string): string {
  const cut = text.split(/(?<=\.)\s/)[0] ?? text;
  return cut.length > 200 ? `${cut.slice(0, 200)}…` : cut;
}

/**
 * Loads a run's model from its artifacts and checks it against the config: one image input of
 * [inputSize, inputSize, 3] and one output with a probability per class. `file` names the source in messages.
 */
export async function loadRunModel(
  artifacts: tf.io.ModelArtifacts,
  config: Pick<RunModelConfig, 'inputSize' | 'classes' | 'metadata'>,
  file = 'model.json',
): Promise<tf.LayersModel> {
  const known = knownLayerClasses();
  const unknown = layersOf(artifacts.modelTopology).filter((l) => !known.has(l.className));
  if (unknown.length > 0) {
    const listed = unknown
      .slice(0, 3)
      .map((l) => `layer "${l.layer}" is a ${JSON.stringify(l.className)}`)
      .join(', ');
    const more = unknown.length > 3 ? ` and ${unknown.length - 3} more` : '';
    throw new RunFileError(
      `${file}: ${listed}${more}, a layer class TensorFlow.js does not have, so the model cannot be built; ` +
        'the file was edited or comes from another tool (export the run again from Lesion Lab)',
      file,
      unknown[0]!.layer,
    );
  }
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (error) {
    throw new RunFileError(
      `${file}: the model cannot be built from it (${firstSentence((error as Error).message)}); ` +
        'the file was edited or comes from another tool (export the run again from Lesion Lab)',
      file,
      null,
      { cause: error },
    );
  }
  const input = model.inputs[0]?.shape;
  const output = model.outputs[0]?.shape;
  const problems: string[] = [];
  const inputs = config.metadata ? 2 : 1;
  if (model.inputs.length !== inputs || dims(input) !== dims([null, config.inputSize, config.inputSize, 3])) {
    problems.push(
      `its input is ${model.inputs.map((i) => dims(i.shape)).join(' and ')}, the run's images are ` +
        `[batch, ${config.inputSize}, ${config.inputSize}, 3]` +
        (config.metadata ? ' with metadata' : '') +
        ' (config.json: model.inputSize)',
    );
  }
  if (config.metadata && model.inputs.length === 2) {
    const width = metadataDim(config.metadata);
    if (dims(model.inputs[1]!.shape) !== dims([null, width])) {
      problems.push(
        `its metadata input is ${dims(model.inputs[1]!.shape)}, the run encodes [batch, ${width}] metadata values`,
      );
    }
  }
  if (model.outputs.length !== 1 || dims(output) !== dims([null, config.classes.length])) {
    problems.push(`its output is ${dims(output)}, the run has ${config.classes.length} classes`);
  }
  if (problems.length > 0) {
    model.dispose();
    throw new RunFileError(`${file}: the model does not fit the run: ${problems.join('; ')}`, file);
  }
  return model;
}

/**
 * What an import runs before it keeps a run: the model is built once, checked against the config and disposed,
 * so a broken topology or a config that does not fit is refused at import, not at Predict.
 */
export async function checkRunModel(
  artifacts: tf.io.ModelArtifacts,
  config: Pick<RunModelConfig, 'inputSize' | 'classes'>,
  file = 'model/model.json',
): Promise<void> {
  const model = await loadRunModel(artifacts, config, file);
  model.dispose();
}
