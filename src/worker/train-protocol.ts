import type { StoredWeightsInfo } from './weights-store.ts';
/**
 * Messages between the UI thread (TrainClient, src/worker/train-client.ts) and the training worker
 * (src/worker/train.worker.ts).
 *
 * Commands go in with a numeric `id`; each is answered by exactly one `reply` with that id (`start`'s reply comes
 * when the run ends). Events (`log`, `state`, `error`) come at any time, in order. Everything is structured-clonable;
 * dropped weight files travel as File handles.
 */
import type { AugmentOptions, AugmentPreview } from '../lib/model/augment.ts';
import type { BackendChoice, BackendProbe, Workload } from '../lib/train/backend.ts';
import type { RunConfig } from '../lib/train/config.ts';
import type { BackendName, RunLog, StopReason, TestLog } from '../lib/train/logs.ts';
import type { ImageSize } from '../lib/data/types.ts';
import type { RunRecord } from '../lib/runs/record.ts';
import type { ResumeOffer } from './resume-store.ts';

export type { ResumeOffer } from './resume-store.ts';
import type { FeatureCacheUsage } from '../lib/train/featureCache.ts';
import type { DuplicatePair, SelfCheck } from '../lib/data/near-duplicates.ts';
import type { BackboneId } from '../lib/model/backbones/catalog.ts';

/** Where the backbone's pretrained weights come from. */
export type WeightsSource =
  /** A TensorFlow.js layers model served same-origin, e.g. `models/mobilenet_v2_0.35/model.json`. */
  | { kind: 'tfjs-url'; url: string }
  /** A dropped TensorFlow.js layers model: model.json and its shards. */
  | { kind: 'tfjs-files'; files: File[] }
  /** A Keras `*_notop.h5` weights file as Keras ships it. */
  | { kind: 'keras-h5'; file: File }
  /** The weights this browser kept after their first successful load for the run's backbone. */
  | { kind: 'stored' }
  /** No pretrained weights: the base keeps its random initialisation (for teaching what pretraining buys). */
  | { kind: 'none' };

// ---------------------------------------------------------------------------------------------------------------
// UI → training worker

export type TrainCommand =
  /** What the browser offers (WebGPU adapter, WebGL, WASM) and the backend each kind of work would get. */
  | { type: 'probe'; id: number }
  /**
   * Trains with `config` on the image cache of `config.imageSize`; replies when the run ends. With `run` (the page's
   * record of it), a resume point is saved after every epoch, so the run can be resumed if the page or worker dies.
   */
  | { type: 'start'; id: number; config: Partial<RunConfig>; weights: WeightsSource; run?: RunRecord }
  /** Runs interrupted (page closed, worker crashed, storage full) that can be resumed, newest first. */
  | { type: 'resumable'; id: number }
  /** Resumes an interrupted run from its last resume point; replies when the run ends, as `start` does. */
  | { type: 'continue'; id: number; runId: string }
  /** Deletes an interrupted run's resume points. */
  | { type: 'discard'; id: number; runId: string }
  /**
   * Tests only: an uncaught error thrown from a timer in the worker, the way a crash reaches the page (the worker's
   * `error` event); the client then ends the worker.
   */
  | { type: 'simulate-crash'; id: number }
  | { type: 'pause'; id: number }
  | { type: 'resume'; id: number }
  /** Ends the run after the current step; the `start` reply then says reason 'stopped'. */
  | { type: 'stop'; id: number }
  /** The pretrained weights kept in this browser, one set per backbone. */
  | { type: 'stored-weights'; id: number }
  /** The complete image caches on this device (one per size), newest first. */
  | { type: 'caches'; id: number }
  /**
   * The base features kept between runs (OPFS): how many files and bytes. 'clear' deletes them all; after each
   * run the worker keeps only the newest FEATURE_FILES_KEPT.
   */
  | { type: 'feature-cache'; id: number; action: 'usage' | 'clear' }
  /**
   * Loses the GPU device on purpose, to see recovery work: on WebGPU the real GPUDevice is destroyed (the
   * browser then reports it lost); on other backends the loss is signalled to the loop.
   */
  | { type: 'simulate-device-loss'; id: number }
  /**
   * Possible hidden duplicates among the cached images of `imageSize`: pooled features of the frozen backbone (from
   * the feature cache, computed once), the `top` most similar pairs of different lesions. Progress comes as
   * `duplicates-progress` events.
   */
  | {
      type: 'near-duplicates';
      id: number;
      imageSize: ImageSize;
      backbone: BackboneId;
      weights: WeightsSource;
      top: number;
    }
  /** The original and `count` augmented variants of cached image `index` (0-based position in the cache). */
  | {
      type: 'augment-preview';
      id: number;
      imageSize: ImageSize;
      index: number;
      count: number;
      seed: number;
      augment: Partial<AugmentOptions>;
    };

export type TrainCommandType = TrainCommand['type'];

export interface ProbeReport {
  probe: BackendProbe;
  /** The backend each kind of work would run on, or why none can. */
  choices: Record<Workload, BackendChoice | { error: string }>;
  /** Per kind of work and backend: why that backend cannot run it here (null: it can). */
  unavailable: Record<Workload, Record<BackendName, string | null>>;
}

/** An image cache on this device, as the Train page needs to know it. */
export interface CacheInfo {
  size: ImageSize;
  count: number;
  createdAt: string;
}

/** The end of a run. */
export interface RunSummary {
  /**
   * The worker's name for the run (its checkpoints and resume points). The resume points outlive the run: the page
   * discards them once it has stored the run, so a tab closed in between can still offer it.
   */
  runId: string;
  reason: StopReason;
  /** Epochs run per phase. */
  epochs: number[];
  backend: BackendName | null;
  /** Where the best checkpoint was saved (OPFS), if it was. */
  checkpoint: string | null;
  /** The epoch a resumed run continued from (phase and epochs of it finished); null for a run from the start. */
  resumedFrom: { phase: 1 | 2; epoch: number } | null;
  test: TestLog | null;
  seconds: number;
}

export interface TrainReplies {
  probe: ProbeReport;
  start: RunSummary;
  /** `after`: the last batch done when the pause arrived (the run pauses before the next one). */
  pause: { state: TrainState; after: { phase: 1 | 2; epoch: number; batch: number; batches: number } | null };
  resume: { state: TrainState };
  stop: { state: TrainState };
  'simulate-device-loss': { simulated: 'device-destroyed' | 'signalled' };
  'augment-preview': AugmentPreview;
  'stored-weights': StoredWeightsInfo[];
  caches: CacheInfo[];
  resumable: ResumeOffer[];
  continue: RunSummary;
  discard: { discarded: boolean };
  'simulate-crash': { thrown: true };
  'feature-cache': FeatureCacheUsage & { kept: number };
  'near-duplicates': DuplicatesReport;
}

/** What the duplicate search found (src/lib/data/near-duplicates.ts). */
export interface DuplicatesReport {
  pairs: DuplicatePair[];
  images: number;
  selfCheck: SelfCheck | null;
  /** The features came from the feature cache (computed by an earlier search or run). */
  cachedFeatures: boolean;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------------
// training worker → UI

export type TrainState = 'idle' | 'preparing' | 'training' | 'paused' | 'stopping' | 'done' | 'failed';

export interface TrainError {
  code:
    | 'config' // a setting is invalid: the message names it
    | 'cache' // no image cache of that size, or it is in use
    | 'weights' // the weights do not load or do not fit the backbone: the message names the weight
    | 'backend' // no backend could start
    | 'storage' // OPFS failed (quota, locked file)
    | 'busy' // a run is already going
    | 'crashed' // the worker died (an uncaught error, out of memory): the client ended it
    | 'internal';
  message: string;
}

/** What the backend holds, from tf.memory(), sent after every batch and epoch for the UI's memory gauge. */
export interface MemoryUse {
  numBytes: number;
  numTensors: number;
  /** WebGPU/WebGL: bytes held on the GPU, where the backend reports it. */
  numBytesInGPU?: number;
}

export type TrainEvent =
  | { type: 'log'; log: RunLog }
  | { type: 'memory'; memory: MemoryUse }
  | { type: 'state'; state: TrainState }
  | {
      type: 'duplicates-progress';
      stage: 'features' | 'search';
      done: number;
      total: number;
      seconds: number;
    }
  | { type: 'error'; error: TrainError };

export type TrainReply =
  | { type: 'reply'; id: number; ok: true; value: TrainReplies[TrainCommandType] }
  | { type: 'reply'; id: number; ok: false; error: TrainError };

export type TrainMessage = TrainEvent | TrainReply;
