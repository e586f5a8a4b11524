/// <reference lib="webworker" />
/**
 * The part of the runs worker (predict.worker.ts) that needs TensorFlow.js: a finished run's best checkpoint made
 * into the run's model, export and import zips (a model is checked by building it), and Predict with Grad-CAM. The
 * worker imports this module on the first request that needs it, so listing the runs never waits for tfjs and its
 * backend to load and start.
 */
import * as tf from '@tensorflow/tfjs';
import { isSoftwareRenderer } from '../lib/train/backend-names.ts';
import { installWasmBackend } from './wasm-threads.ts';
import { gradCamImage, overlayHeatmap } from '../lib/model/gradcam.ts';
import { composeModel } from '../lib/model/heads.ts';
import { readPretrained } from './pretrained.ts';
import type { MetadataValues } from '../lib/model/metadata-features.ts';
import { modelInputSize, predictImage, type Classifier } from '../lib/predict.ts';
import { decodeSquare } from './decode-square.ts';
import {
  checkRunModel,
  exportFileName,
  exportRunZip,
  importRunZip,
  loadRunModel,
  modelArtifacts,
  withTestResults,
  type RunRecord,
} from '../lib/runs/index.ts';
import { OpfsCheckpointStore } from '../lib/train/checkpoint.ts';
import { runConfig } from '../lib/train/config.ts';
import { createNetwork, disposeNetwork, restoreCheckpoint } from '../lib/train/network.ts';
import { prepareSplit } from '../lib/train/session.ts';
import { evaluateRun } from '../lib/runs/evaluation.ts';
import type { PixelImage } from '../lib/data/resize.ts';
import { openImageCache } from './cache/opfs-cache.ts';
import type { IndexedDbRunStore } from './runs-store.ts';
import type { FinishRunRequest, FinishRunResult, LabReplies, PredictResult } from './predict-client.ts';

installWasmBackend();

let backendReady: Promise<void> | null = null;

/** WebGL's renderer is real hardware (not SwiftShader or llvmpipe, which WASM outruns by far). */
function hardwareWebGL(): boolean {
  try {
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    if (!gl) return false;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return !isSoftwareRenderer(renderer);
  } catch {
    return false;
  }
}

/**
 * WebGL on a hardware renderer (Grad-CAM of a big backbone is slow on the CPU), else WASM (multi-threaded where
 * the page is cross-origin isolated), else software WebGL, else the CPU.
 */
function ready(): Promise<void> {
  backendReady ??= (async () => {
    const order = hardwareWebGL() ? ['webgl', 'wasm', 'cpu'] : ['wasm', 'webgl', 'cpu'];
    for (const backend of order) {
      try {
        if (await tf.setBackend(backend)) {
          await tf.ready();
          return;
        }
      } catch {
        // next one
      }
    }
    throw new Error('no TensorFlow.js backend could start in the predict worker');
  })();
  return backendReady;
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function checkpointDirectory(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('lesion-lab-train');
  return dir.getDirectoryHandle('checkpoints');
}

/** Makes the run's model from its best checkpoint and adds the test results (aligned by image id). */
export async function finishRun(
  store: IndexedDbRunStore,
  request: FinishRunRequest,
): Promise<FinishRunResult> {
  const warnings: string[] = [];
  let run: RunRecord = request.run;
  const config = runConfig(request.training);
  let saved = false;
  if (request.checkpoint) {
    await ready();
    const name = request.checkpoint.slice(request.checkpoint.lastIndexOf(':') + 1);
    try {
      const checkpoint = await new OpfsCheckpointStore(await checkpointDirectory(), 'opfs').load(name);
      if (!checkpoint) throw new Error(`the checkpoint ${name} is not in browser storage`);
      const network = createNetwork(
        // The head as the run recorded it: with metadata fusion, its width comes from the run's encoding.
        { backbone: config.backbone, inputSize: config.inputSize, head: run.config.model.head },
        await readPretrained(request.weights, config.backbone),
      );
      try {
        restoreCheckpoint(network, checkpoint);
        const model = composeModel(network.base, network.head);
        await store.putModel(run.id, await modelArtifacts(model));
        saved = true;
      } finally {
        disposeNetwork(network);
      }
    } catch (error) {
      warnings.push(`The model could not be kept, so Predict cannot use this run: ${message(error)}`);
    }
  } else {
    warnings.push('No checkpoint was saved (the run ended before its first epoch), so there is no model.');
  }
  if (request.test) {
    try {
      const cache = await openImageCache(config.imageSize);
      try {
        const { index } = cache;
        const records = index.entries.map((e) => {
          const record = index.metadata.records[e.row];
          if (!record) throw new Error(`the cache index has no metadata row ${e.row}`);
          return record;
        });
        const { indices } = prepareSplit(records, config);
        const imageIds = indices.test.map((i) => index.entries[i]!.imageId);
        if (imageIds.length !== request.test.yTrue.length) {
          throw new Error(
            `the test split has ${imageIds.length} images, the test scores ${request.test.yTrue.length}`,
          );
        }
        run = withTestResults(run, { imageIds, yTrue: request.test.yTrue, yProb: request.test.yProb });
        try {
          run = {
            ...run,
            evaluation: evaluateRun({
              classes: run.config.model.classes,
              yTrue: request.test.yTrue,
              yProb: request.test.yProb,
              // The bootstrap resamples lesions; an image-level (leaky) split resamples images.
              lesionIds: config.split.grouped
                ? indices.test.map((i) => records[i]!.lesionId ?? records[i]!.imageId)
                : null,
              val: request.test.val ?? null,
              ttaProb: request.test.ttaProb ?? null,
            }),
          };
        } catch (error) {
          warnings.push(`The confidence intervals and calibration could not be computed: ${message(error)}`);
        }
      } finally {
        cache.close();
      }
    } catch (error) {
      warnings.push(`The test results could not be matched to their images: ${message(error)}`);
    }
  }
  await store.put(run);
  return { run, model: saved, warnings };
}

let loaded: { id: string; classifier: Classifier; layer: string } | null = null;

async function classifierFor(
  store: IndexedDbRunStore,
  runId: string,
): Promise<{ classifier: Classifier; layer: string }> {
  if (loaded?.id === runId) return loaded;
  const run = await store.get(runId);
  if (!run) throw new Error('That run is no longer stored (deleted in another tab?).');
  const artifacts = await store.getModel(runId);
  if (!artifacts) throw new Error(`Run "${run.name}" has no stored model to predict with.`);
  await ready();
  const model = await loadRunModel(artifacts, run.config.model);
  loaded?.classifier.model.dispose();
  loaded = {
    id: runId,
    classifier: {
      model,
      preprocessing: run.config.model.preprocessing,
      classes: run.config.model.classes,
      metadata: run.config.model.metadata ?? null,
    },
    layer: run.config.model.gradCamLayer,
  };
  return loaded;
}

const MAX_EDGE = 512;

async function decode(file: File): Promise<ImageData> {
  if (file.size === 0) throw new Error(`"${file.name}" is empty (0 bytes): choose the image file again.`);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`"${file.name}" is not an image this browser can read (use a JPEG or PNG file).`);
  }
  try {
    const scale = Math.min(1, MAX_EDGE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d');
    if (!context) throw new Error('this browser cannot draw images in a worker');
    context.imageSmoothingQuality = 'high';
    context.drawImage(bitmap, 0, 0, width, height);
    return context.getImageData(0, 0, width, height);
  } finally {
    bitmap.close();
  }
}

export async function predict(
  store: IndexedDbRunStore,
  runId: string,
  file: File,
  tta: boolean,
  metadata: MetadataValues | null,
): Promise<PredictResult> {
  const { classifier, layer } = await classifierFor(store, runId);
  const image = await decode(file);
  const pixels: PixelImage = { width: image.width, height: image.height, data: image.data, channels: 4 };
  // The model sees the file decoded and squashed exactly as the training cache was made (decodeSquare), not the
  // preview above: a second resize of the 512 px preview gave other pixels, and other probabilities, than the
  // test scores on Results for the same image.
  const size = modelInputSize(classifier.model);
  const input: PixelImage = { width: size, height: size, data: await decodeSquare(file, size), channels: 3 };
  const prediction = await predictImage(classifier, input, { tta, topK: 3, metadata });
  let overlay: ImageData | null = null;
  let explained: number | null = null;
  let gradCamError: string | null = null;
  try {
    const top = prediction.top[0]?.index ?? 0;
    const cam = await gradCamImage(classifier, pixels, {
      layerName: layer,
      classIndex: top,
      metadataValues: metadata,
    });
    const rgba = new Uint8ClampedArray(overlayHeatmap(cam.heatmap, pixels, { opacity: 0.55 }));
    overlay = new ImageData(rgba, image.width, image.height);
    explained = cam.classIndex;
  } catch (error) {
    gradCamError = message(error);
  }
  return {
    classes: [...classifier.classes],
    probabilities: prediction.probabilities,
    top: prediction.top,
    tta: prediction.tta,
    image,
    overlay,
    explained,
    gradCamError,
  };
}

export async function importRun(store: IndexedDbRunStore, file: File): Promise<LabReplies['import']> {
  const imported = await importRunZip(file, file.name);
  if (imported.modelArtifacts) {
    // Built once here, so a topology tfjs cannot build or a config that does not fit the model is refused at
    // import instead of failing later at Predict.
    await ready();
    await checkRunModel(imported.modelArtifacts, imported.run.config.model);
  }
  await store.put(imported.run);
  if (imported.modelArtifacts) await store.putModel(imported.run.id, imported.modelArtifacts);
  forgetModel(imported.run.id);
  return { run: imported.run, model: imported.modelArtifacts !== null };
}

export async function exportRun(
  store: IndexedDbRunStore,
  runId: string,
  charts: Record<string, string>,
): Promise<LabReplies['export']> {
  const run = await store.get(runId);
  if (!run) throw new Error('That run is no longer stored.');
  const model = await store.getModel(runId);
  const blob = await exportRunZip(run, model, charts);
  return { blob, fileName: exportFileName(run) };
}

/** Lets go of the model Predict keeps loaded, if it is run `runId`'s (null: whichever run's). */
export function forgetModel(runId: string | null): void {
  if (loaded && (runId === null || loaded.id === runId)) {
    loaded.classifier.model.dispose();
    loaded = null;
  }
}
