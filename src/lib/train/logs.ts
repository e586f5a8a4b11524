/**
 * What training reports, one typed object at a time (the async generator's values, and what the worker posts to
 * the UI). Epochs and batches are 1-based, as Keras prints them; `phase` is 1 (frozen base) or 2 (fine-tuning).
 * Every value is plain data (structured-clone safe).
 */
import type { KeptTogether } from '../split/split.ts';
import type { MetadataFusion } from '../model/fusion.ts';
import type { MetadataEncoding } from '../model/metadata-features.ts';
import type { Monitor } from './callbacks.ts';
import { formatDuration } from '../data/progress.ts';

export type Phase = 1 | 2;
export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** What the browser says about its WebGPU adapter. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software/fallback adapter (SwiftShader), not a GPU. */
  isFallback: boolean;
}

export interface BackendLog {
  type: 'backend';
  backend: BackendName;
  /** The WebGPU adapter when the backend is webgpu; null for the others (they do not run on it). */
  adapter: AdapterDescription | null;
  /**
   * What the backend runs on, in words: the WebGPU adapter, the WebGL renderer string, WASM's threads and SIMD,
   * or the CPU.
   */
  device: string;
  /** Why this backend: plain language for the UI. */
  reason: string;
}

export interface PhaseLog {
  type: 'phase';
  phase: Phase;
  epochs: number;
  learningRate: number;
  /** 'features': the head trains on cached base features; 'images': batches go through the whole network. */
  input: 'features' | 'images';
  trainableParams: number;
  trainImages: number;
  valImages: number;
  batchSize: number;
}

/**
 * Feature-cache progress: extraction of one split's base features, or a hit in the store. 'test' comes after train
 * and val when the run's evaluation can read the test split's features (frozen base, no phase 2).
 */
export interface FeaturesLog {
  type: 'features';
  split: 'train' | 'val' | 'test';
  done: number;
  total: number;
  /** True when the features came from the store without running the base. */
  cached: boolean;
  seconds: number;
}

/**
 * Who computes the base's features: `workers` feature workers (separate WASM instances sharing the batches), with
 * `threads` threads each; `workers` 0 after they failed, when the training worker computes the rest itself and
 * `fallback` says what failed.
 */
export interface FeatureWorkersLog {
  type: 'feature-workers';
  workers: number;
  threads: number;
  fallback: string | null;
}

export interface BatchLog {
  type: 'batch';
  phase: Phase;
  epoch: number;
  batch: number;
  batches: number;
  /** Batch loss as the optimizer saw it (class-weighted when class weights are on). */
  loss: number;
  size: number;
}

export interface EpochLog {
  type: 'epoch';
  phase: Phase;
  epoch: number;
  epochs: number;
  /** Mean training loss over the epoch's samples (class-weighted when class weights are on, as Keras). */
  loss: number;
  /** Training accuracy (unweighted, as Keras's compiled 'accuracy' metric). */
  accuracy: number;
  val_loss: number;
  val_accuracy: number;
  val_balanced_accuracy: number;
  val_macro_f1: number;
  /** Learning rate used during this epoch. */
  lr: number;
  /** Wall time of the epoch, pauses excluded. */
  seconds: number;
}

export interface LrReducedLog {
  type: 'lr-reduced';
  phase: Phase;
  epoch: number;
  from: number;
  to: number;
  monitor: Monitor;
}

export interface EarlyStopLog {
  type: 'early-stop';
  phase: Phase;
  epoch: number;
  monitor: Monitor;
  best: number | null;
  bestEpoch: number;
}

export interface CheckpointLog {
  type: 'checkpoint';
  phase: Phase;
  epoch: number;
  monitor: Monitor;
  value: number | null;
  /** Where the hook saved it (e.g. an OPFS path), when it says. */
  location: string | null;
}

export interface RestoredBestLog {
  type: 'restored-best';
  phase: Phase;
  /** The epoch whose weights the model now holds. */
  epoch: number;
}

export interface PausedLog {
  type: 'paused';
}

export interface ResumedLog {
  type: 'resumed';
  pausedSeconds: number;
}

export interface DeviceLostLog {
  type: 'device-lost';
  phase: Phase;
  epoch: number;
  message: string;
}

export interface RecoveredLog {
  type: 'recovered';
  phase: Phase;
  backend: BackendName;
  /** Training goes on from the end of this epoch (0: from the phase's start). */
  fromEpoch: number;
}

export type StopReason = 'completed' | 'early-stop' | 'stopped';

export interface DoneLog {
  type: 'done';
  reason: StopReason;
  phase: Phase;
  epochs: number;
  /** Wall time of training, pauses excluded. */
  seconds: number;
}

export type TrainLog =
  | BackendLog
  | PhaseLog
  | FeaturesLog
  | FeatureWorkersLog
  | BatchLog
  | EpochLog
  | LrReducedLog
  | EarlyStopLog
  | CheckpointLog
  | RestoredBestLog
  | PausedLog
  | ResumedLog
  | DeviceLostLog
  | RecoveredLog
  | DoneLog;

export type TrainLogType = TrainLog['type'];

/** The backend line's words for who computes the features, e.g. "features on 2 workers, 1 thread each". */
export function featureWorkersText(log: FeatureWorkersLog): string {
  if (log.workers === 0)
    return `features in the training worker (${log.fallback ?? 'the feature workers stopped'})`;
  return `features on ${log.workers} workers, ${log.threads} thread${log.threads === 1 ? '' : 's'} each`;
}

/** The data a run trains on: the split table and the class weights, sent before training starts. */
export interface PreparedLog {
  type: 'prepared';
  split: {
    seed: number;
    ratios: [number, number, number];
    grouped: boolean;
    /** Images per class (in class order) per split. */
    table: Record<string, { train: number; val: number; test: number }>;
    totals: { train: number; val: number; test: number };
    lesions: { train: number; val: number; test: number };
    leakedLesions: number;
    /** Present when pairs were kept together (possible hidden duplicates): what the split did with them. */
    together?: KeptTogether;
  };
  /** Per class, in class order; null when class weights are off. */
  classWeights: number[] | null;
  classNames: string[];
  /**
   * With metadata fusion on: the encoding fitted on the train split (saved with the run, so Predict encodes the
   * same way) and the head's fusion settings. Absent for an image-only run.
   */
  metadata?: { encoding: MetadataEncoding; fusion: MetadataFusion };
}

/** The test split scored with the trained network (after training ends, unless it was stopped). */
export interface TestLog {
  type: 'test';
  images: number;
  accuracy: number;
  balancedAccuracy: number;
  macroF1: number;
  /** Recall per class, by class name (null for a class without test images). */
  recall: Record<string, number | null>;
  /** Rows true class, columns predicted, in class order. */
  confusion: number[][];
  yTrue: number[];
  yPred: number[];
  /** Probabilities per image, in class order. */
  yProb: number[][];
  /** The validation split's labels and probabilities from the same model (temperature scaling is fitted on them). */
  val?: { yTrue: number[]; yProb: number[][] };
  /** Test probabilities with test-time augmentation (mean over four flips), when the run asked for it. */
  ttaProb?: number[][] | null;
  seconds: number;
}

/** Everything a whole run reports: the loop's logs plus the data preparation and the test scores. */
export type RunLog = TrainLog | PreparedLog | TestLog;

/**
 * The Train page's words for a features log: split, count, and while computing the base's rate and time left
 * ("Computing train features: 512 / 8011, 61.3 images/s, about 2 min left").
 */
export function featuresProgress(log: FeaturesLog): string {
  const head = `${log.cached ? 'Reading cached' : 'Computing'} ${log.split} features: ${log.done} / ${log.total}`;
  if (log.cached || log.seconds <= 0 || log.done <= 0) return head;
  const rate = log.done / log.seconds;
  const left = log.done < log.total ? `, about ${formatDuration((log.total - log.done) / rate)} left` : '';
  return `${head}, ${rate.toFixed(1)} images/s${left}`;
}
