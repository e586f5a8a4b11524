/**
 * LabClient — the UI's handle on everything after training that needs TensorFlow.js or browser storage: the runs
 * kept in IndexedDB (list, save, delete, export/import zips), turning a finished run's best checkpoint into the
 * run's model, thumbnails of test images from the image cache, and Predict (top-3, TTA, Grad-CAM). It all runs in
 * src/worker/predict.worker.ts, which loads tfjs only for what needs it (run-models.ts), so `list` answers on a
 * fresh page without waiting for it; the UI never touches tf.
 *
 *   const lab = new LabClient();
 *   const { runs, models } = await lab.list();        // models: ids of runs that have a stored model
 *   const done = await lab.finishRun({ run, training, weights, checkpoint, test });   // saves model + results
 *   const blob = await lab.exportRun(id, { 'val-curves': svgText });
 *   const imported = await lab.importRun(file);
 *   const tiles = await lab.thumbnails(96, ['ISIC_0024306']);
 *   const p = await lab.predict(runId, file, { tta: true });
 *   lab.dispose();
 */
import type { ImageSize } from '../lib/data/types.ts';
import type { ClassProbability } from '../lib/predict.ts';
import type { MetadataValues } from '../lib/model/metadata-features.ts';
import type { RunRecord } from '../lib/runs/record.ts';
import type { RunConfig as TrainRunConfig } from '../lib/train/config.ts';
import type { TestLog } from '../lib/train/logs.ts';
import type { WeightsSource } from './train-protocol.ts';

export interface FinishRunRequest {
  run: RunRecord;
  /** The settings the run was started with (as sent to TrainClient.start). */
  training: Partial<TrainRunConfig>;
  weights: WeightsSource;
  /** Where the best checkpoint was saved (RunSummary.checkpoint), or null. */
  checkpoint: string | null;
  test: TestLog | null;
}

export interface FinishRunResult {
  run: RunRecord;
  /** Whether a model was saved with the run (needs a checkpoint). */
  model: boolean;
  /** Plain-language problems that did not stop the run from being kept (e.g. no checkpoint, so no model). */
  warnings: string[];
}

export interface Thumbnail {
  imageId: string;
  image: ImageData | null;
}

export interface PredictResult {
  classes: string[];
  probabilities: number[];
  top: ClassProbability[];
  tta: boolean;
  /** The image as predicted (scaled to at most 512 px on its long edge) and the Grad-CAM overlay on it. */
  image: ImageData;
  overlay: ImageData | null;
  /** The class Grad-CAM explains (the top class); null when Grad-CAM failed (see gradCamError). */
  explained: number | null;
  gradCamError: string | null;
}

export type LabCommand =
  | { type: 'list' }
  | { type: 'save'; run: RunRecord }
  | { type: 'finish'; request: FinishRunRequest }
  | { type: 'delete'; runId: string }
  | { type: 'delete-all' }
  | { type: 'export'; runId: string; charts: Record<string, string> }
  | { type: 'import'; file: File }
  | { type: 'thumbnails'; imageSize: ImageSize; imageIds: string[] }
  | { type: 'predict'; runId: string; file: File; tta: boolean; metadata: MetadataValues | null };

export interface LabReplies {
  list: { runs: RunRecord[]; models: string[]; invalid: string[] };
  save: null;
  finish: FinishRunResult;
  delete: boolean;
  'delete-all': number;
  export: { blob: Blob; fileName: string };
  import: { run: RunRecord; model: boolean };
  thumbnails: Thumbnail[];
  predict: PredictResult;
}

/** `id` numbers the request (so no command has a field of that name). */
export type LabRequest = LabCommand & { id: number };
export type LabResponse =
  { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string };

/** A lab command failed; the message is meant for the user as is. */
export class LabFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabFailure';
  }
}

export class LabClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private disposed = false;

  constructor() {
    this.worker = new Worker(new URL('./predict.worker.ts', import.meta.url), {
      type: 'module',
      name: 'lesion-lab-lab',
    });
    this.worker.onmessage = (event: MessageEvent<LabResponse>) => {
      const reply = event.data;
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(new LabFailure(reply.message));
    };
    this.worker.onerror = (event) => {
      const error = new LabFailure(`The runs worker failed: ${event.message}`);
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    };
  }

  private send<K extends LabCommand['type']>(
    command: Extract<LabCommand, { type: K }>,
  ): Promise<LabReplies[K]> {
    if (this.disposed) return Promise.reject(new LabFailure('The runs worker was closed.'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...command, id });
    });
  }

  list() {
    return this.send({ type: 'list' });
  }
  save(run: RunRecord) {
    return this.send({ type: 'save', run });
  }
  finishRun(request: FinishRunRequest) {
    return this.send({ type: 'finish', request });
  }
  deleteRun(id: string) {
    return this.send({ type: 'delete', runId: id });
  }
  deleteAll() {
    return this.send({ type: 'delete-all' });
  }
  exportRun(id: string, charts: Record<string, string> = {}) {
    return this.send({ type: 'export', runId: id, charts });
  }
  importRun(file: File) {
    return this.send({ type: 'import', file });
  }
  thumbnails(imageSize: ImageSize, imageIds: string[]) {
    return this.send({ type: 'thumbnails', imageSize, imageIds });
  }
  /** `metadata`: age, sex and site for a run whose model takes them (null or missing fields: unknown). */
  predict(runId: string, file: File, options: { tta: boolean; metadata?: MetadataValues | null }) {
    return this.send({ type: 'predict', runId, file, tta: options.tta, metadata: options.metadata ?? null });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new LabFailure('The runs worker was closed.'));
    this.pending.clear();
  }
}
