/// <reference lib="webworker" />
/**
 * The runs worker (LabClient, predict-client.ts): runs kept in IndexedDB, a finished run's best checkpoint made
 * into the run's model, export/import zips, test-image thumbnails from the image cache, and Predict with Grad-CAM.
 * All logic lives in src/lib (runs, predict, gradcam, train/network); this file wires storage and messages.
 *
 * What needs TensorFlow.js lives in run-models.ts, imported on the first request that needs it: the list of runs,
 * saving and deleting a record and the thumbnails answer at once on a fresh page instead of after the megabytes of
 * tfjs and its backend have loaded and started.
 */
import type { ImageSize } from '../lib/data/types.ts';
import { openImageCache } from './cache/opfs-cache.ts';
import { IndexedDbRunStore } from './runs-store.ts';
import type { LabReplies, LabRequest, LabResponse, Thumbnail } from './predict-client.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const invalid: string[] = [];
const store = new IndexedDbRunStore({
  onInvalid: (id, error) =>
    invalid.push(`Stored run ${id} could not be read and is left out: ${error.message}`),
});

let runModels: Promise<typeof import('./run-models.ts')> | null = null;
/** run-models.ts (and with it tfjs), loaded once, on first use. */
const models = () => (runModels ??= import('./run-models.ts'));

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function rgbToImageData(rgb: Uint8Array, size: number, offset: number): ImageData {
  const out = new ImageData(size, size);
  for (let p = 0; p < size * size; p++) {
    out.data[p * 4] = rgb[offset + p * 3]!;
    out.data[p * 4 + 1] = rgb[offset + p * 3 + 1]!;
    out.data[p * 4 + 2] = rgb[offset + p * 3 + 2]!;
    out.data[p * 4 + 3] = 255;
  }
  return out;
}

async function thumbnails(imageSize: ImageSize, ids: string[]) {
  const cache = await openImageCache(imageSize);
  try {
    const position = new Map(cache.index.entries.map((e, i) => [e.imageId, i]));
    const found = ids.filter((id) => position.has(id));
    const rgb = await cache.readImages(found.map((id) => position.get(id)!));
    const bytes = cache.size * cache.size * 3;
    return ids.map((imageId): Thumbnail => {
      const k = found.indexOf(imageId);
      return { imageId, image: k < 0 ? null : rgbToImageData(rgb, cache.size, k * bytes) };
    });
  } finally {
    cache.close();
  }
}

/** Predict's loaded model is let go with its run; nothing to do while run-models.ts was never needed. */
async function forgetModel(runId: string | null): Promise<void> {
  if (runModels) (await runModels).forgetModel(runId);
}

async function handle(request: LabRequest): Promise<unknown> {
  switch (request.type) {
    case 'list': {
      invalid.length = 0;
      const runs = await store.list();
      const stored = new Set(await store.modelIds());
      const models = runs.filter((run) => stored.has(run.id)).map((run) => run.id);
      return { runs, models, invalid: [...invalid] } satisfies LabReplies['list'];
    }
    case 'save':
      await store.put(request.run);
      return null;
    case 'finish':
      return (await models()).finishRun(store, request.request);
    case 'delete':
      await forgetModel(request.runId);
      return store.delete(request.runId);
    case 'delete-all':
      await forgetModel(null);
      return store.deleteAll();
    case 'export':
      return (await models()).exportRun(store, request.runId, request.charts);
    case 'import':
      return (await models()).importRun(store, request.file).catch((error: unknown) => {
        // Every message names the zip, then the file inside it (config.json: …) that is at fault.
        const text = message(error);
        throw new Error(text.startsWith(request.file.name) ? text : `${request.file.name}: ${text}`, {
          cause: error,
        });
      });
    case 'thumbnails':
      return thumbnails(request.imageSize, request.imageIds);
    case 'predict':
      return (await models()).predict(store, request.runId, request.file, request.tta, request.metadata);
  }
}

scope.onmessage = (event: MessageEvent<LabRequest>) => {
  const request = event.data;
  void handle(request).then(
    (value) => scope.postMessage({ id: request.id, ok: true, value } satisfies LabResponse),
    (error: unknown) =>
      scope.postMessage({ id: request.id, ok: false, message: message(error) } satisfies LabResponse),
  );
};
