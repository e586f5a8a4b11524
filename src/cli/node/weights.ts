/**
 * Pretrained weights from the file system: a TensorFlow.js layers model (a folder holding model.json and its
 * shards, or the model.json itself) or a Keras `.h5` weights file, assigned into our backbone by layer and weight
 * name with the core's loaders (a missing, extra or mis-shaped weight is an error that names it).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import {
  filesIOHandler,
  loadKerasH5Weights,
  loadTfjsLayersWeights,
  type FileLike,
  type LoadReport,
} from '../../lib/model/weights/index.ts';

export type WeightsFormat = 'tfjs-layers' | 'keras-h5';

export interface LoadedWeights extends LoadReport {
  format: WeightsFormat;
  path: string;
}

function fileLike(path: string): FileLike {
  return {
    name: basename(path),
    arrayBuffer: async () => {
      const b = await readFile(path);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  };
}

/** A TensorFlow.js layers model's files: the one .json of `dir` and the shards (.bin) beside it. */
async function tfjsFiles(dir: string, json?: string): Promise<FileLike[]> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.'));
  const jsons = json ? [json] : names.filter((n) => n.toLowerCase().endsWith('.json'));
  if (jsons.length !== 1) {
    throw new Error(
      jsons.length === 0
        ? `${dir} holds no model.json (expected a TensorFlow.js layers model, or give a Keras .h5 file)`
        : `${dir} holds several .json files (${jsons.join(', ')}); name the model.json itself`,
    );
  }
  const shards = names.filter((n) => n.toLowerCase().endsWith('.bin'));
  return [...jsons, ...shards].map((n) => fileLike(join(dir, n)));
}

/** Loads the weights at `path` into `model`; returns what was loaded. */
export async function loadWeightsFromPath(model: tf.LayersModel, path: string): Promise<LoadedWeights> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      `cannot read weights ${path}: ${code === 'ENOENT' ? 'no such file or folder' : String(error)}`,
      {
        cause: error,
      },
    );
  }
  if (info.isDirectory()) {
    const report = await loadTfjsLayersWeights(model, filesIOHandler(await tfjsFiles(path)), path);
    return { ...report, format: 'tfjs-layers', path };
  }
  if (path.toLowerCase().endsWith('.json')) {
    const report = await loadTfjsLayersWeights(
      model,
      filesIOHandler(await tfjsFiles(dirname(path), basename(path))),
      path,
    );
    return { ...report, format: 'tfjs-layers', path };
  }
  const report = await loadKerasH5Weights(model, await readFile(path), basename(path));
  return { ...report, source: path, format: 'keras-h5', path };
}
