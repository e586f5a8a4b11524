/**
 * Reads the pretrained weights a run names (served URL, dropped files, Keras .h5, or the copy this browser kept)
 * into named arrays. Shared by the training worker and the predict worker, which rebuilds a finished run's network.
 */
import { WeightsMismatchError, type NamedWeight } from '../lib/model/weights/assign.ts';
import { readKerasH5 } from '../lib/model/weights/keras-h5.ts';
import { ServedWeightsMissingError, servedModelFiles } from '../lib/model/weights/served.ts';
import { filesIOHandler, readTfjsLayersWeights } from '../lib/model/weights/tfjsLayers.ts';
import { hashString } from '../lib/train/featureCache.ts';
import type { WeightsSource } from './train-protocol.ts';
import { readStoredWeights } from './weights-store.ts';

/** The weights could not be read at all (as opposed to a mismatch with the model, which names each weight). */
export class WeightsError extends Error {}

export async function readPretrained(
  source: WeightsSource,
  backbone: string,
): Promise<{ weights: NamedWeight[]; label: string; id: string } | null> {
  try {
    switch (source.kind) {
      case 'none':
        return null;
      case 'stored': {
        const stored = await readStoredWeights(backbone);
        return { ...stored, id: `stored:${backbone}` };
      }
      case 'tfjs-url':
        return {
          weights: await readTfjsLayersWeights(filesIOHandler(await servedModelFiles(source.url))),
          label: source.url,
          id: `url:${source.url}`,
        };
      case 'tfjs-files': {
        const label = source.files.map((f) => f.name).join(', ');
        const id = `files:${hashString(source.files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('|'))}`;
        return { weights: await readTfjsLayersWeights(filesIOHandler(source.files)), label, id };
      }
      case 'keras-h5': {
        const file = await readKerasH5(await source.file.arrayBuffer(), source.file.name);
        const id = `h5:${hashString(`${source.file.name}:${source.file.size}:${source.file.lastModified}`)}`;
        return { weights: file.layers.flatMap((l) => l.weights), label: source.file.name, id };
      }
    }
  } catch (error) {
    if (error instanceof WeightsMismatchError) throw error;
    if (error instanceof ServedWeightsMissingError) {
      throw new WeightsError(
        `The weights for ${backbone} are not served with this app: ${error.message}. Choose "TensorFlow.js ` +
          `files from disk" or "Keras .h5 file from disk" and pick the files; or, if you deploy this app, run ` +
          `\`npm run weights -- fetch ${backbone}\` before \`npm run build\`.`,
      );
    }
    throw new WeightsError(
      `The weights could not be read: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
