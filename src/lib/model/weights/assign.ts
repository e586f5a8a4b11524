/**
 * Assigning pretrained weights to a backbone by layer name and weight name. Whatever the source (a TensorFlow.js
 * layers model, a Keras `.h5`), it is first read into a flat list of named arrays; the assignment is all-or-nothing:
 * every weight of the model must be supplied exactly once with its shape, and nothing else may be supplied.
 */
import * as tf from '@tensorflow/tfjs';

/** One pretrained array, addressed like Keras addresses it: layer name + weight name (`kernel`, `gamma`, …). */
export interface NamedWeight {
  layer: string;
  weight: string;
  shape: number[];
  values: Float32Array;
  /** Where it came from inside its source (an HDF5 path, a manifest name), for error messages. */
  origin: string;
}

export type WeightProblem =
  | { kind: 'missing'; layer: string; weight: string; expected: number[] }
  | { kind: 'extra'; layer: string; weight: string; shape: number[]; origin: string }
  | { kind: 'duplicate'; layer: string; weight: string; origin: string }
  | { kind: 'shape'; layer: string; weight: string; expected: number[]; actual: number[]; origin: string };

function describe(p: WeightProblem): string {
  const id = `${p.layer}/${p.weight}`;
  switch (p.kind) {
    case 'missing':
      return `missing ${id} (shape [${p.expected.join(', ')}])`;
    case 'extra':
      return `extra ${id} (shape [${p.shape.join(', ')}], at ${p.origin}): the model has no such weight`;
    case 'duplicate':
      return `duplicate ${id} (at ${p.origin})`;
    case 'shape':
      return `${id} has shape [${p.actual.join(', ')}] (at ${p.origin}), the model expects [${p.expected.join(', ')}]`;
  }
}

/** The weights file does not fit the model; `problems` lists every mismatch, the message the first few. */
export class WeightsMismatchError extends Error {
  constructor(
    readonly source: string,
    readonly problems: WeightProblem[],
  ) {
    const shown = problems.slice(0, 8).map(describe);
    const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
    super(`${source} does not fit the model: ${shown.join('; ')}${more}`);
    this.name = 'WeightsMismatchError';
  }
}

export interface LoadReport {
  source: string;
  layers: number;
  arrays: number;
  params: number;
}

/** All non-container layers, descending into nested models (a composed base + head). */
export function leafLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((layer) =>
    layer instanceof tf.LayersModel ? leafLayers(layer) : [layer as tf.layers.Layer],
  );
}

/** `conv1/kernel` (tfjs originalName) or `conv1/kernel:0` (Keras) → `kernel`. */
export function shortWeightName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1).replace(/:\d+$/, '');
}

interface Slot {
  layer: string;
  weight: string;
  shape: number[];
  variable: tf.LayerVariable;
}

function slots(model: tf.LayersModel): Map<string, Slot> {
  const out = new Map<string, Slot>();
  for (const layer of leafLayers(model)) {
    for (const variable of layer.weights) {
      const weight = shortWeightName(variable.originalName);
      const key = `${layer.name}/${weight}`;
      if (out.has(key)) throw new Error(`the model has two weights named ${key}; cannot assign by name`);
      out.set(key, { layer: layer.name, weight, shape: variable.shape as number[], variable });
    }
  }
  return out;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** Checks `weights` against the model without changing it; returns every problem found. */
export function checkWeights(model: tf.LayersModel, weights: readonly NamedWeight[]): WeightProblem[] {
  const expected = slots(model);
  const problems: WeightProblem[] = [];
  const seen = new Set<string>();
  for (const w of weights) {
    const key = `${w.layer}/${w.weight}`;
    const slot = expected.get(key);
    if (seen.has(key)) {
      problems.push({ kind: 'duplicate', layer: w.layer, weight: w.weight, origin: w.origin });
      continue;
    }
    seen.add(key);
    if (!slot) {
      problems.push({ kind: 'extra', layer: w.layer, weight: w.weight, shape: w.shape, origin: w.origin });
    } else if (!sameShape(slot.shape, w.shape) || w.values.length !== sizeOf(w.shape)) {
      problems.push({
        kind: 'shape',
        layer: w.layer,
        weight: w.weight,
        expected: slot.shape,
        actual: w.shape,
        origin: w.origin,
      });
    }
  }
  for (const [key, slot] of expected) {
    if (!seen.has(key)) {
      problems.push({ kind: 'missing', layer: slot.layer, weight: slot.weight, expected: slot.shape });
    }
  }
  return problems;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Writes `weights` into the model's variables by layer and weight name. Throws WeightsMismatchError (and changes
 * nothing) if any weight is missing, extra, duplicated or mis-shaped.
 */
export function assignWeights(
  model: tf.LayersModel,
  weights: readonly NamedWeight[],
  source: string,
): LoadReport {
  const problems = checkWeights(model, weights);
  if (problems.length > 0) throw new WeightsMismatchError(source, problems);
  const expected = slots(model);
  const layers = new Set<string>();
  let params = 0;
  for (const w of weights) {
    const slot = expected.get(`${w.layer}/${w.weight}`) as Slot;
    const value = tf.tensor(w.values, w.shape, 'float32');
    slot.variable.write(value);
    value.dispose();
    layers.add(w.layer);
    params += w.values.length;
  }
  return { source, layers: layers.size, arrays: weights.length, params };
}

/** Reads every weight of a model back out, by name (for copying between models, and for tests). */
export async function readNamedWeights(model: tf.LayersModel, origin = model.name): Promise<NamedWeight[]> {
  const out: NamedWeight[] = [];
  for (const layer of leafLayers(model)) {
    for (const variable of layer.weights) {
      const values = await variable.read().data();
      if (!(values instanceof Float32Array)) {
        throw new Error(`${origin}: ${variable.originalName} is ${variable.dtype}, expected float32`);
      }
      out.push({
        layer: layer.name,
        weight: shortWeightName(variable.originalName),
        shape: [...(variable.shape as number[])],
        values,
        origin: `${origin}:${variable.originalName}`,
      });
    }
  }
  return out;
}
