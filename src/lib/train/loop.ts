/**
 * The training loop: an async generator of typed logs (src/lib/train/logs.ts) with Keras `model.fit` semantics,
 * written as its own train step so that the loop controls what `fit` in tfjs does not:
 *
 * - The base is always called with `training: false` (BatchNormalization in inference mode, as a frozen Keras base
 *   behaves; tfjs's `fit` would use batch statistics), the head with `training: true` (its Dropout active).
 * - Loss: categorical cross-entropy as Keras computes it from probabilities (renormalise, clip to [1e-7, 1 − 1e-7],
 *   −Σ y·log p). Class weights follow Keras's `class_weight`: each sample's loss is multiplied by the weight of its
 *   class, and the batch loss is the SUM_OVER_BATCH_SIZE reduction, Σ wᵢ·lᵢ / batch size (not divided by Σ wᵢ). The
 *   epoch `loss` is the batch losses' mean weighted by batch size (Keras's loss tracker); `accuracy` is unweighted
 *   (a compiled metric gets no sample weights in Keras). Validation never uses class weights.
 * - Adam (Keras's rule, src/lib/train/optimizer.ts), lr 1e-3, batch 16, data reshuffled every epoch from the seed.
 * - Phase 1: the base frozen. With augmentation off, the base's features are computed once per split (feature
 *   cache) and the head trains on them. Phase 2 (optional): the top N blocks of the base are unfrozen — their
 *   BatchNormalization layers stay frozen — and training goes on at a lower lr with a fresh optimizer (Keras users
 *   recompile for fine-tuning).
 * - Callbacks after each epoch, in Keras's order: best checkpoint, EarlyStopping, ReduceLROnPlateau.
 * - Pause/resume/stop through TrainControl; `return()` on the generator stops too. Nothing is read back
 *   synchronously: losses and predictions come back with `await tensor.data()`.
 * - On a lost WebGPU device the loop goes back to the last epoch's end state (weights and optimizer moments, kept in
 *   memory), lets the caller rebuild the network on another backend (`recover`), and redoes the epoch.
 *
 * Every tensor a step or an epoch creates is disposed before the next log is yielded, so `tf.memory().numTensors`
 * is the same at every batch and epoch log of a phase.
 */
import * as tf from '@tensorflow/tfjs';
import { DX } from '../data/dx.ts';
import { classificationReport } from '../metrics/report.ts';
import { augmentBatch, type AugmentOptions } from '../model/augment.ts';
import type { BackboneSpec } from '../model/backbones/index.ts';
import { freezeBase, unfreezeTopBlocks } from '../model/heads.ts';
import { createRandom, type Random } from '../random.ts';
import { dropoutLayers, reseedDropout } from './seeding.ts';
import {
  BestCheckpoint,
  EarlyStopping,
  ReduceLROnPlateau,
  type BestCheckpointOptions,
  type EarlyStoppingOptions,
  type EpochMetrics,
  type ReduceLROnPlateauOptions,
} from './callbacks.ts';
import { readWeights, writeWeights, type CheckpointStore, type WeightValue } from './checkpoint.ts';
import { EventLoopTurns, EVENT_LOOP_TURN_MS, TrainControl } from './control.ts';
import { TrainConfigError } from './errors.ts';
import type { ImageDataset } from './dataset.ts';
import {
  extractFeatureBatches,
  featureKey,
  hashIndices,
  MemoryFeatureStore,
  poolingSplit,
  type FeatureStore,
} from './featureCache.ts';
import type { FeatureExtractor } from './feature-pool.ts';
import type { BackendLog, BackendName, EpochLog, Phase, StopReason, TrainLog } from './logs.ts';
import { Adam, type AdamState } from './optimizer.ts';
import type { ResumeEvent, ResumePhaseSummary, ResumePoint, ResumeStore } from './resume.ts';
import type { DeviceLoss, DeviceWatch } from './backend.ts';

/** The model being trained, in two parts so each can be called in its own mode. */
export interface Network {
  /** The backbone (include_top=False); always called with training: false. */
  base: tf.LayersModel;
  /** The classifier on the base's output, ending in a softmax. */
  head: tf.LayersModel;
  /** uint8-valued float RGB images → the base's input (Keras preprocess_input). */
  preprocess(images: tf.Tensor4D): tf.Tensor4D;
  /** The base's square input edge; cached images of another size are resized (bilinear). */
  inputSize: number;
  /** Block structure of the base, for phase 2 (the backbone registry's spec). */
  blocks?: Pick<BackboneSpec, 'blocks' | 'blockOf'>;
}

export interface TrainData {
  dataset: ImageDataset;
  /** Indices into `dataset`. */
  train: readonly number[];
  val: readonly number[];
  /**
   * The test split, when the caller scores it after training: with the feature cache its features are computed
   * (or read from the store) with train's and val's, before the head's first epoch, and come back in
   * `TrainResult.features`, so the evaluation only runs the head. Not used when phase 2 will change the base.
   */
  test?: readonly number[];
  /**
   * Encoded metadata of every image of `dataset` (row i for dataset index i), for a head that takes a `metadata`
   * input (src/lib/model/fused-head.ts); required then, ignored otherwise.
   */
  metadata?: MetadataRows | null;
}

/** count × dim metadata values, one row per dataset image (src/lib/model/metadata-features.ts encodes them). */
export interface MetadataRows {
  values: Float32Array;
  dim: number;
}

/** The rows of `rows` at dataset `indices`, as a [n, dim] tensor. */
function metadataTensor(rows: MetadataRows, indices: readonly number[]): tf.Tensor2D {
  const out = new Float32Array(indices.length * rows.dim);
  indices.forEach((index, i) =>
    out.set(rows.values.subarray(index * rows.dim, (index + 1) * rows.dim), i * rows.dim),
  );
  return tf.tensor2d(out, [indices.length, rows.dim]);
}

export interface PhaseTwoOptions {
  /** How many blocks, counted from the top of the base, to unfreeze. */
  blocks: number;
  epochs: number;
  /** Default 1e-5. */
  learningRate?: number;
}

export interface CheckpointOptions extends BestCheckpointOptions {
  store: CheckpointStore;
  /** File/record name; the phase is appended (`<name>-phase1`). */
  name: string;
  /**
   * Save every weight of the base too, not only the trained ones: for a base without pretrained weights, whose
   * random initialisation cannot be rebuilt when the model is made from the checkpoint.
   */
  wholeBase?: boolean;
}

export interface TrainOptions {
  network: Network;
  data: TrainData;
  /** Names of the classes in label order; default DX. Only used for the metric tables. */
  classNames?: readonly string[];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Per-class loss weights in label order (e.g. 'balanced'); null/undefined: none. */
  classWeights?: readonly number[] | null;
  /** Augment training batches; null/undefined: off (and the feature cache can be used). */
  augment?: AugmentOptions | null;
  /** Seeds shuffling and augmentation. Default 1337. */
  seed?: number;
  earlyStopping?: EarlyStoppingOptions | null;
  reduceLr?: ReduceLROnPlateauOptions | null;
  checkpoint?: CheckpointOptions | null;
  /**
   * Feature cache for phase 1 without augmentation: `false` turns it off (batches then go through the base every
   * epoch); default: in memory for this run. `key` must identify backbone, weights, input size and preprocessing.
   */
  featureCache?: { store: FeatureStore; key: string } | false;
  phase2?: PhaseTwoOptions | null;
  control?: TrainControl;
  /** Reported first, when given (the worker's backend choice). */
  backend?: BackendLog;
  /** Set when the backend's device is lost (the worker arms it on the GPUDevice). */
  device?: DeviceWatch;
  /**
   * Rebuilds the network on another backend after a device loss: switch the backend, build the base and head,
   * load the pretrained base weights, dispose the old network if possible, and return the new one. Without it a
   * device loss ends training with the error.
   */
  recover?: (loss: DeviceLoss) => Promise<{ network: Network; backend: BackendName }>;
  /**
   * Computes the frozen base's features for the feature cache (e.g. a pool of feature workers on the CPU path,
   * src/lib/train/feature-pool.ts); default: in this process, with `extractFeatureBatches`.
   */
  featureExtractor?: FeatureExtractor | null;
  /** Images per forward pass when extracting features or predicting. Default 32. */
  inferenceBatchSize?: number;
  /**
   * At most this often (ms) the loop waits for a macrotask before a batch, so pause/stop messages reach a worker
   * whose batches resolve as microtasks. Default EVENT_LOOP_TURN_MS; Infinity never yields (benches compare).
   */
  eventLoopTurnMs?: number;
  /**
   * Called between the phases; may move training to another backend for fine-tuning (e.g. WASM for the frozen base,
   * WebGL for conv gradients on a SwiftShader machine) by returning a network rebuilt there (pretrained base
   * weights loaded). The head's trained weights are carried over by the loop.
   */
  beforePhase2?: () => Promise<{ network: Network; backend: BackendLog } | null>;
  /**
   * Resumable checkpoints: `store` gets a resume point at the end of every epoch (a failed save ends training with
   * its error, the previous point kept); `from` continues a run from such a point instead of from epoch 0. With
   * `wholeBase`, points hold every weight of the base (a random base cannot be rebuilt from a weights file).
   */
  resume?: { store?: ResumeStore | null; from?: ResumePoint | null; wholeBase?: boolean };
}

export interface PhaseResult {
  phase: Phase;
  epochs: number;
  history: EpochLog[];
  stoppedEarly: boolean;
  bestEpoch: number | null;
}

export interface TrainResult {
  reason: StopReason;
  phases: PhaseResult[];
  /** The network now trained (a new object after a device-loss recovery). */
  network: Network;
  /** Wall time of training, pauses excluded (as the epochs' `seconds`). */
  seconds: number;
  /** Seconds spent paused. */
  pausedSeconds: number;
  /** Macrotasks the loop waited for so that messages could arrive. */
  eventLoopTurns: number;
  /**
   * The cached base features of val and test (test: when `data.test` was given) when they still describe the
   * returned network's base (phase 1 only, no rebuild after a device loss): scoring needs only the head then.
   */
  features: SplitFeatures | null;
}

/** One run's base features of its val and test splits, as `predictFeatures` takes them. */
export interface SplitFeatures {
  val: Float32Array;
  test: Float32Array | null;
  /** One image's features: [dim] when pooled, else the base's output map. */
  shape: number[];
  /** The head's leading GlobalAveragePooling2D is already applied. */
  pool: boolean;
}

export class DeviceLostError extends Error {
  constructor(readonly loss: DeviceLoss) {
    super(`the GPU device was lost (${loss.reason}): ${loss.message}`);
    this.name = 'DeviceLostError';
  }
}

export { TrainConfigError } from './errors.ts';

const EPSILON = 1e-7;

/**
 * Keras's categorical_crossentropy on probabilities, reduced SUM_OVER_BATCH_SIZE: Σ wᵢ·lᵢ / n (wᵢ = 1 without
 * sample weights).
 */
export function categoricalCrossentropy(
  yTrue: tf.Tensor2D,
  yPred: tf.Tensor2D,
  sampleWeight: tf.Tensor1D | null = null,
): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.clipByValue(tf.div(yPred, tf.sum(yPred, -1, true)), EPSILON, 1 - EPSILON);
    let perSample = tf.neg(tf.sum(tf.mul(yTrue, tf.log(p)), -1));
    if (sampleWeight) perSample = tf.mul(perSample, sampleWeight);
    return tf.div(tf.sum(perSample), yTrue.shape[0]) as tf.Scalar;
  });
}

/**
 * One optimisation step: loss and gradients of `variables` through `forward`, then Adam. Returns [loss, number of
 * correct predictions] as one tensor (one read-back); the caller disposes it.
 */
export function trainStep(
  forward: (x: tf.Tensor) => tf.Tensor,
  x: tf.Tensor,
  yTrue: tf.Tensor2D,
  sampleWeight: tf.Tensor1D | null,
  variables: tf.Variable[],
  optimizer: Adam,
): tf.Tensor1D {
  return tf.tidy(() => {
    let correct: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const probs = forward(x) as tf.Tensor2D;
      correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(yTrue, -1)), 'float32')));
      return categoricalCrossentropy(yTrue, probs, sampleWeight);
    }, variables);
    optimizer.applyGradients(variables, grads);
    const kept = correct as unknown as tf.Tensor;
    const out = tf.stack([value, kept]) as tf.Tensor1D;
    kept.dispose();
    return out;
  });
}

function variablesOf(weights: readonly tf.LayerVariable[]): tf.Variable[] {
  return weights.map((w) => w.read() as tf.Variable);
}

/** A per-(phase, epoch) stream, so a redone epoch (after a device loss) shuffles and augments the same way. */
function epochRandom(seed: number, phase: Phase, epoch: number): Random {
  return createRandom((seed ^ Math.imul(phase, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
}

function now(): number {
  return performance.now();
}

type Split = 'train' | 'val';

/** How batches reach the trainable part: cached features or images through the base. */
interface Pipeline {
  input: 'features' | 'images';
  labels: Record<Split, Int32Array>;
  read(split: Split, positions: readonly number[]): Promise<Uint8Array | Float32Array>;
  /** Outside the gradient tape; the caller disposes the result. */
  toInput(raw: Uint8Array | Float32Array, n: number, training: boolean, random: Random | null): tf.Tensor;
  /** The batch's metadata tensor for a head that takes one, else null; the caller disposes it. */
  metadata(split: Split, positions: readonly number[]): tf.Tensor | null;
  /** Inside the tape: input (and metadata, for a fused head) → class probabilities. */
  forward(x: tf.Tensor, training: boolean, metadata: tf.Tensor | null): tf.Tensor;
  /** What the optimizer updates. */
  variables: tf.Variable[];
  /** What checkpoints hold: the head's weights, plus the base's trainable ones in phase 2. */
  state: { variables: tf.Variable[]; names: string[] };
}

function stateOf(network: Network, phase: Phase): Pipeline['state'] {
  const weights = [...network.head.weights, ...(phase === 2 ? network.base.trainableWeights : [])];
  return { variables: variablesOf(weights), names: weights.map((w) => w.originalName) };
}

function imagePipeline(
  network: Network,
  data: TrainData,
  phase: Phase,
  augment: AugmentOptions | null,
): Pipeline {
  const { dataset } = data;
  const size = dataset.size;
  const indices: Record<Split, readonly number[]> = { train: data.train, val: data.val };
  const labels = {
    train: Int32Array.from(data.train, (i) => dataset.labels[i]!),
    val: Int32Array.from(data.val, (i) => dataset.labels[i]!),
  };
  const variables = variablesOf(
    phase === 2
      ? [...network.base.trainableWeights, ...network.head.trainableWeights]
      : network.head.trainableWeights,
  );
  return {
    input: 'images',
    labels,
    read: (split, positions) => dataset.readBatch(positions.map((p) => indices[split][p]!)),
    toInput: (raw, n, training, random) =>
      tf.tidy(() => {
        let x: tf.Tensor4D = tf.tensor4d(Float32Array.from(raw), [n, size, size, 3]);
        if (size !== network.inputSize)
          x = tf.image.resizeBilinear(x, [network.inputSize, network.inputSize]);
        if (training && augment && random) x = augmentBatch(x, random, augment);
        const pre = network.preprocess(x);
        // Phase 1: the frozen base runs outside the tape (nothing to differentiate there).
        return phase === 1 ? (network.base.apply(pre, { training: false }) as tf.Tensor) : pre;
      }),
    metadata: (split, positions) => splitMetadata(data, network.head, indices[split], positions),
    forward: (x, training, metadata) => {
      const features = phase === 1 ? x : (network.base.apply(x, { training: false }) as tf.Tensor);
      return network.head.apply(metadata ? [features, metadata] : features, { training }) as tf.Tensor;
    },
    variables,
    state: stateOf(network, phase),
  };
}

/** The metadata rows of a batch (`positions` within a split whose dataset indices are `indices`), if the head takes them. */
function splitMetadata(
  data: TrainData,
  head: tf.LayersModel,
  indices: readonly number[],
  positions: readonly number[],
): tf.Tensor | null {
  if (head.inputs.length < 2) return null;
  if (!data.metadata) throw new TrainConfigError('this head takes metadata, and the data has none');
  return metadataTensor(
    data.metadata,
    positions.map((p) => indices[p]!),
  );
}

interface CachedFeatures {
  train: Float32Array;
  val: Float32Array;
  test: Float32Array | null;
  shape: number[];
  pool: boolean;
}

function featurePipeline(network: Network, data: TrainData, features: CachedFeatures): Pipeline {
  const { rest } = features.pool ? poolingSplit(network.head) : { rest: network.head };
  const dim = features.shape.reduce((a, b) => a * b, 1);
  const labels = {
    train: Int32Array.from(data.train, (i) => data.dataset.labels[i]!),
    val: Int32Array.from(data.val, (i) => data.dataset.labels[i]!),
  };
  return {
    input: 'features',
    labels,
    read: async (split, positions) => {
      const source = features[split];
      const out = new Float32Array(positions.length * dim);
      positions.forEach((p, i) => out.set(source.subarray(p * dim, (p + 1) * dim), i * dim));
      return out;
    },
    toInput: (raw, n) => tf.tensor(raw as Float32Array, [n, ...features.shape], 'float32'),
    metadata: (split, positions) =>
      splitMetadata(data, network.head, split === 'train' ? data.train : data.val, positions),
    forward: (x, training, metadata) => rest.apply(metadata ? [x, metadata] : x, { training }) as tf.Tensor,
    variables: variablesOf(rest.trainableWeights),
    state: stateOf(network, 1),
  };
}

/** Probabilities for every sample of a split, in order, read back asynchronously. */
async function predictSplit(
  pipeline: Pipeline,
  split: Split,
  batchSize: number,
  numClasses: number,
): Promise<Float32Array> {
  const n = pipeline.labels[split].length;
  const probs = new Float32Array(n * numClasses);
  for (let start = 0; start < n; start += batchSize) {
    const positions = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const raw = await pipeline.read(split, positions);
    const out = tf.tidy(() => {
      const x = pipeline.toInput(raw, positions.length, false, null);
      return pipeline.forward(x, false, pipeline.metadata(split, positions));
    });
    try {
      probs.set((await out.data()) as Float32Array, start * numClasses);
    } finally {
      out.dispose();
    }
  }
  return probs;
}

export interface SplitMetrics {
  loss: number;
  accuracy: number;
  balancedAccuracy: number;
  macroF1: number;
  yPred: number[];
}

/** Unweighted Keras cross-entropy (float64 over the float32 probabilities) and the report's metrics. */
export function scorePredictions(
  probs: Float32Array,
  labels: ArrayLike<number>,
  classNames: readonly string[],
): SplitMetrics {
  const k = classNames.length;
  const n = labels.length;
  let loss = 0;
  const yTrue: number[] = [];
  const yPred: number[] = [];
  for (let i = 0; i < n; i++) {
    let sum = 0;
    let best = 0;
    for (let j = 0; j < k; j++) {
      const p = probs[i * k + j]!;
      sum += p;
      if (p > probs[i * k + best]!) best = j;
    }
    const y = labels[i]!;
    const p = Math.min(Math.max(probs[i * k + y]! / sum, EPSILON), 1 - EPSILON);
    loss -= Math.log(p);
    yTrue.push(y);
    yPred.push(best);
  }
  const report = classificationReport({ classes: classNames, yTrue, yPred });
  return {
    loss: loss / n,
    accuracy: report.accuracy,
    balancedAccuracy: report.balancedAccuracy,
    macroF1: report.macroAvg.f1,
    yPred,
  };
}

export interface Prediction {
  /** n × classes probabilities. */
  probs: Float32Array;
  yTrue: number[];
  yPred: number[];
}

/** The network's predictions on `indices` of `dataset` (e.g. the test split), in inference mode. */
export async function predict(
  network: Network,
  dataset: ImageDataset,
  indices: readonly number[],
  batchSize = 32,
  metadata: MetadataRows | null = null,
): Promise<Prediction> {
  const pipeline = imagePipeline(network, { dataset, train: [], val: indices, metadata }, 1, null);
  return predictWith(pipeline, headClasses(network), batchSize);
}

/**
 * As `predict`, from the base features of `indices` (in that order, e.g. `TrainResult.features.test`) instead of
 * the images: only the head runs. The features must come from this network's base (same weights).
 */
export async function predictFeatures(
  network: Network,
  dataset: ImageDataset,
  indices: readonly number[],
  features: Pick<SplitFeatures, 'shape' | 'pool'> & { values: Float32Array },
  batchSize = 32,
  metadata: MetadataRows | null = null,
): Promise<Prediction> {
  const dim = features.shape.reduce((a, b) => a * b, 1);
  if (features.values.length !== indices.length * dim) {
    throw new RangeError(
      `${features.values.length} feature values for ${indices.length} images of ${dim} features each`,
    );
  }
  const pipeline = featurePipeline(
    network,
    { dataset, train: [], val: indices, metadata },
    {
      train: new Float32Array(0),
      val: features.values,
      test: null,
      shape: features.shape,
      pool: features.pool,
    },
  );
  return predictWith(pipeline, headClasses(network), batchSize);
}

async function predictWith(pipeline: Pipeline, numClasses: number, batchSize: number): Promise<Prediction> {
  const probs = await predictSplit(pipeline, 'val', batchSize, numClasses);
  const yTrue = Array.from(pipeline.labels.val);
  const yPred = yTrue.map((_, i) => {
    let best = 0;
    for (let j = 1; j < numClasses; j++)
      if (probs[i * numClasses + j]! > probs[i * numClasses + best]!) best = j;
    return best;
  });
  return { probs, yTrue, yPred };
}

function headClasses(network: Network): number {
  const shape = network.head.outputs[0]?.shape;
  const k = shape?.[shape.length - 1];
  if (typeof k !== 'number') throw new TrainConfigError('the head has no fixed number of output classes');
  return k;
}

function countParams(variables: readonly tf.Variable[]): number {
  return variables.reduce((n, v) => n + v.size, 0);
}

function checkOptions(options: TrainOptions, numClasses: number): void {
  const { data } = options;
  if (data.train.length === 0) throw new TrainConfigError('the train split is empty: nothing to train on');
  if (data.val.length === 0)
    throw new TrainConfigError('the validation split is empty: nothing to validate on');
  for (const [name, list] of [
    ['train', data.train],
    ['val', data.val],
  ] as const) {
    for (const i of list) {
      const label = data.dataset.labels[i];
      if (label === undefined)
        throw new TrainConfigError(
          `${name} index ${i} is outside the dataset (0..${data.dataset.count - 1})`,
        );
      if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
        throw new TrainConfigError(`image ${i} has label ${label}; the head has ${numClasses} classes`);
      }
    }
  }
  const metaIn = options.network.head.inputs[1]?.shape;
  if (metaIn) {
    const dim = metaIn[metaIn.length - 1];
    const rows = data.metadata;
    if (!rows) throw new TrainConfigError('the head takes metadata (a second input), and the data has none');
    if (rows.dim !== dim || rows.values.length !== data.dataset.count * rows.dim) {
      throw new TrainConfigError(
        `the head takes ${dim} metadata values per image; the data has ${rows.values.length} values in rows of ` +
          `${rows.dim} for ${data.dataset.count} images`,
      );
    }
  }
  const weights = options.classWeights;
  if (weights && (weights.length !== numClasses || weights.some((w) => !Number.isFinite(w) || w < 0))) {
    throw new TrainConfigError(
      `class weights must be ${numClasses} finite numbers ≥ 0; got [${weights.join(', ')}]`,
    );
  }
  for (const [name, value] of [
    ['epochs', options.epochs],
    ['batchSize', options.batchSize],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new TrainConfigError(`${name} must be a whole number ≥ 1; got ${value}`);
    }
  }
  const lr = options.learningRate;
  if (lr !== undefined && !(lr > 0)) throw new TrainConfigError(`the learning rate must be > 0; got ${lr}`);
  const two = options.phase2;
  if (two) {
    const blocks = options.network.blocks?.blocks.length ?? 0;
    if (blocks === 0)
      throw new TrainConfigError('phase 2 needs the backbone block structure; this network has none');
    if (!Number.isInteger(two.blocks) || two.blocks < 1 || two.blocks > blocks) {
      throw new TrainConfigError(
        `phase 2 can unfreeze 1 to ${blocks} blocks of this backbone; got ${two.blocks}`,
      );
    }
    if (!Number.isInteger(two.epochs) || two.epochs < 1) {
      throw new TrainConfigError(`phase 2 epochs must be a whole number ≥ 1; got ${two.epochs}`);
    }
    if (two.learningRate !== undefined && !(two.learningRate > 0)) {
      throw new TrainConfigError(`the phase 2 learning rate must be > 0; got ${two.learningRate}`);
    }
  }
}

interface Context {
  options: TrainOptions;
  network: Network;
  backend: BackendName | null;
  control: TrainControl;
  classNames: readonly string[];
  numClasses: number;
  seed: number;
  batchSize: number;
  inferenceBatchSize: number;
  featureCache: { store: FeatureStore; key: string } | null;
  stopped: boolean;
  turns: EventLoopTurns;
  pausedSeconds: number;
  /** When train() started, and the training seconds a resumed run had before. */
  t0: number;
  secondsBefore: number;
  /** Every finished epoch and callback event so far (resume points carry them). */
  history: EpochLog[];
  events: ResumeEvent[];
  /** The phases finished so far. */
  before: ResumePhaseSummary[];
  /** Phase 1's cached features and the base they came from (a rebuilt network has another base object). */
  features: { cached: CachedFeatures; base: tf.LayersModel } | null;
}

async function isDeviceLoss(ctx: Context, error: unknown): Promise<DeviceLoss | null> {
  if (error instanceof DeviceLostError) return error.loss;
  const watch = ctx.options.device;
  if (!watch) return null;
  // The lost promise may settle just after the failing read-back rejects.
  if (!watch.lost) await new Promise((resolve) => setTimeout(resolve, 50));
  return watch.lost;
}

function assertDevice(ctx: Context): void {
  const lost = ctx.options.device?.lost;
  if (lost) throw new DeviceLostError(lost);
}

/**
 * Pause handling between batches; yields the paused/resumed logs and returns the seconds spent paused. First the
 * event loop gets a turn (throttled), or a pause or stop message would wait for the end of the epoch.
 */
async function* pausePoint(ctx: Context): AsyncGenerator<TrainLog, number> {
  await ctx.turns.maybeYield();
  if (!ctx.control.paused) return 0;
  const t0 = now();
  yield { type: 'paused' };
  await ctx.control.waitWhilePaused();
  const pausedSeconds = (now() - t0) / 1000;
  ctx.pausedSeconds += pausedSeconds;
  yield { type: 'resumed', pausedSeconds };
  return pausedSeconds;
}

async function* obtainFeatures(ctx: Context): AsyncGenerator<TrainLog, CachedFeatures | null> {
  const { network, options } = ctx;
  const cache = ctx.featureCache as { store: FeatureStore; key: string };
  const { pool } = poolingSplit(network.head);
  const outShape = (network.base.outputs[0]!.shape as number[]).slice(1);
  const shape = pool ? [outShape[outShape.length - 1]!] : outShape;
  const result: Partial<Record<Split | 'test', Float32Array>> = {};
  const test = options.data.test ?? [];
  const splits = test.length > 0 ? (['train', 'val', 'test'] as const) : (['train', 'val'] as const);
  let announced = false;
  let fellBack = false;
  for (const split of splits) {
    const indices = split === 'test' ? test : options.data[split];
    const key = featureKey(cache.key, pool, network.inputSize, indices);
    const t0 = now();
    const hit = await cache.store.get(key);
    const dim = shape.reduce((a, b) => a * b, 1);
    if (hit && hit.length === indices.length * dim) {
      result[split] = hit;
      yield {
        type: 'features',
        split,
        done: indices.length,
        total: indices.length,
        cached: true,
        seconds: (now() - t0) / 1000,
      };
      continue;
    }
    const pipeline = imagePipeline(
      network,
      { dataset: options.data.dataset, train: [], val: indices },
      1,
      null,
    );
    const extractor = options.featureExtractor ?? null;
    const workers = extractor?.workersFor(ctx.backend) ?? null;
    if (workers && !announced) {
      yield { type: 'feature-workers', ...workers, fallback: null };
      announced = true;
    }
    const extract = workers && extractor ? extractor.extract.bind(extractor) : extractFeatureBatches;
    const extraction = extract(network.base, (p) => pipeline.read('val', p), indices.length, {
      preprocess: (x) => network.preprocess(x),
      inputSize: network.inputSize,
      imageSize: options.data.dataset.size,
      pool,
      batchSize: ctx.inferenceBatchSize,
    });
    let step = await extraction.next();
    while (!step.done) {
      assertDevice(ctx);
      if (workers && extractor?.fallback && !fellBack) {
        yield { type: 'feature-workers', workers: 0, threads: workers.threads, fallback: extractor.fallback };
        fellBack = true;
      }
      yield {
        type: 'features',
        split,
        done: step.value.done,
        total: step.value.total,
        cached: false,
        seconds: (now() - t0) / 1000,
      };
      yield* pausePoint(ctx);
      if (ctx.control.stopRequested) {
        await extraction.return(undefined as never);
        ctx.stopped = true;
        return null;
      }
      step = await extraction.next();
    }
    if (workers && extractor?.fallback && !fellBack) {
      yield { type: 'feature-workers', workers: 0, threads: workers.threads, fallback: extractor.fallback };
      fellBack = true;
    }
    result[split] = step.value.values;
    await cache.store.put(key, step.value.values);
  }
  return { train: result.train!, val: result.val!, test: result.test ?? null, shape, pool };
}

interface LastState {
  epoch: number;
  weights: WeightValue[];
  optimizer: AdamState;
}

async function* runPhase(
  ctx: Context,
  phase: Phase,
  from: ResumePoint | null,
): AsyncGenerator<TrainLog, PhaseResult> {
  const { options } = ctx;
  const epochs = phase === 1 ? (options.epochs ?? 30) : (options.phase2 as PhaseTwoOptions).epochs;
  const learningRate = phase === 1 ? (options.learningRate ?? 1e-3) : (options.phase2?.learningRate ?? 1e-5);
  const augment = options.augment ?? null;
  const useFeatures = phase === 1 && augment === null && ctx.featureCache !== null;
  const result: PhaseResult = { phase, epochs: 0, history: [], stoppedEarly: false, bestEpoch: null };

  const prepare = (): void => {
    const { base, blocks } = ctx.network;
    if (phase === 1) freezeBase(base);
    // BatchNormalization layers stay frozen (and in inference mode) in the unfrozen blocks.
    else
      unfreezeTopBlocks(
        base,
        blocks as Pick<BackboneSpec, 'blocks' | 'blockOf'>,
        (options.phase2 as PhaseTwoOptions).blocks,
      );
  };
  prepare();
  const wholeBase = options.resume?.wholeBase ?? false;
  // A resumed random base gets its weights back before any feature is computed from it.
  if (from && wholeBase) restoreBaseWeights(ctx.network, from.weights);

  let features: CachedFeatures | null = null;
  for (;;) {
    try {
      if (useFeatures) {
        features = yield* obtainFeatures(ctx);
        if (ctx.stopped) return result;
        if (features) ctx.features = { cached: features, base: ctx.network.base };
      }
      break;
    } catch (error) {
      const loss = await isDeviceLoss(ctx, error);
      if (!loss || !options.recover) throw error;
      yield { type: 'device-lost', phase, epoch: 0, message: loss.message };
      const recovered = await options.recover(loss);
      ctx.network = recovered.network;
      ctx.backend = recovered.backend;
      options.device?.reset();
      prepare();
      yield { type: 'recovered', phase, backend: recovered.backend, fromEpoch: 0 };
    }
  }

  const makePipeline = (): Pipeline =>
    features
      ? featurePipeline(ctx.network, options.data, features)
      : imagePipeline(ctx.network, options.data, phase, augment);
  let pipeline = makePipeline();
  let optimizer = new Adam({ learningRate });
  const classWeights = options.classWeights ? Float32Array.from(options.classWeights) : null;
  const early = options.earlyStopping ? new EarlyStopping(options.earlyStopping) : null;
  const reduce = options.reduceLr ? new ReduceLROnPlateau(options.reduceLr) : null;
  const best = options.checkpoint ? new BestCheckpoint(options.checkpoint) : null;
  early?.onTrainBegin();
  reduce?.onTrainBegin();
  best?.onTrainBegin();
  let bestWeights: WeightValue[] | null = null;

  const n = pipeline.labels.train.length;
  const batches = Math.ceil(n / ctx.batchSize);
  yield {
    type: 'phase',
    phase,
    epochs,
    learningRate,
    input: pipeline.input,
    trainableParams: countParams(pipeline.variables),
    trainImages: n,
    valImages: pipeline.labels.val.length,
    batchSize: ctx.batchSize,
  };

  const snapshot = async (epoch: number): Promise<LastState> => ({
    epoch,
    weights: await readWeights(pipeline.state.variables, pipeline.state.names),
    optimizer: await optimizer.getState(pipeline.variables),
  });
  let epoch = 0;
  if (from) {
    // Back to the end of the checkpoint's epoch: weights, Adam (moments, iterations, lr), callbacks' counters.
    const target = resumeVariables(ctx, pipeline, wholeBase);
    writeWeights(target.variables, from.weights);
    optimizer.setState(pipeline.variables, from.optimizer);
    const saved = from.callbacks;
    if (early && saved.earlyStopping) early.restore(saved.earlyStopping);
    if (reduce && saved.reduceLr) reduce.restore(saved.reduceLr);
    if (best && saved.best) best.restore(saved.best);
    bestWeights = from.bestWeights;
    epoch = from.epoch;
    result.epochs = from.epoch;
    result.history = from.history.filter((h) => h.phase === phase);
    result.stoppedEarly = from.stoppedEarly;
    result.bestEpoch = best?.bestEpoch != null ? best.bestEpoch + 1 : null;
  }
  // Moments exist from the start, so the tensor count is the same after the first step as after the last.
  optimizer.init(pipeline.variables);
  let last: LastState | null = options.recover ? await snapshot(epoch) : null;

  try {
    if (result.stoppedEarly) epoch = epochs;
    while (epoch < epochs && !ctx.stopped) {
      try {
        const random = epochRandom(ctx.seed, phase, epoch);
        const order = random.fork().shuffle(Array.from({ length: n }, (_, i) => i));
        const augmentRandom = random.fork();
        const dropoutRandom = random.fork();
        const dropouts = dropoutLayers(ctx.network.head);
        const t0 = now();
        let paused = 0;
        let lossSum = 0;
        let correctSum = 0;
        const lr = optimizer.learningRate;
        const batchAt = (b: number): number[] => order.slice(b * ctx.batchSize, (b + 1) * ctx.batchSize);
        let next: Promise<Uint8Array | Float32Array> | null = pipeline.read('train', batchAt(0));
        for (let b = 0; b < batches; b++) {
          paused += yield* pausePoint(ctx);
          if (ctx.control.stopRequested) {
            ctx.stopped = true;
            break;
          }
          assertDevice(ctx);
          const positions = batchAt(b);
          const raw = await (next as Promise<Uint8Array | Float32Array>);
          next = b + 1 < batches ? pipeline.read('train', batchAt(b + 1)) : null;
          // A read that fails after a stop is nobody's business.
          next?.catch(() => undefined);
          const labels = Int32Array.from(positions, (p) => pipeline.labels.train[p]!);
          reseedDropout(dropouts, dropoutRandom);
          const out = tf.tidy(() => {
            const x = pipeline.toInput(raw, positions.length, true, augmentRandom);
            const y = tf.cast(
              tf.oneHot(tf.tensor1d(labels, 'int32'), ctx.numClasses),
              'float32',
            ) as tf.Tensor2D;
            const w = classWeights ? tf.tensor1d(Float32Array.from(labels, (l) => classWeights[l]!)) : null;
            const metadata = pipeline.metadata('train', positions);
            return trainStep(
              (input) => pipeline.forward(input, true, metadata),
              x,
              y,
              w,
              pipeline.variables,
              optimizer,
            );
          });
          let values: Float32Array;
          try {
            values = (await out.data()) as Float32Array;
          } finally {
            out.dispose();
          }
          assertDevice(ctx);
          const batchLoss = values[0]!;
          lossSum += batchLoss * positions.length;
          correctSum += values[1]!;
          yield {
            type: 'batch',
            phase,
            epoch: epoch + 1,
            batch: b + 1,
            batches,
            loss: batchLoss,
            size: positions.length,
          };
        }
        if (ctx.stopped) break;

        const probs = await predictSplit(pipeline, 'val', ctx.inferenceBatchSize, ctx.numClasses);
        assertDevice(ctx);
        const val = scorePredictions(probs, pipeline.labels.val, ctx.classNames);
        const log: EpochLog = {
          type: 'epoch',
          phase,
          epoch: epoch + 1,
          epochs,
          loss: lossSum / n,
          accuracy: correctSum / n,
          val_loss: val.loss,
          val_accuracy: val.accuracy,
          val_balanced_accuracy: val.balancedAccuracy,
          val_macro_f1: val.macroF1,
          lr,
          seconds: (now() - t0) / 1000 - paused,
        };
        const metrics: EpochMetrics = log;
        const events: TrainLog[] = [];
        if (best && best.onEpochEnd(epoch, metrics)) {
          const value = best.rule.read(metrics);
          const location = await options.checkpoint!.store.save(`${options.checkpoint!.name}-phase${phase}`, {
            phase,
            epoch: epoch + 1,
            monitor: best.rule.monitor,
            value,
            weights: await checkpointWeights(ctx, pipeline, options.checkpoint!.wholeBase ?? false),
          });
          result.bestEpoch = epoch + 1;
          events.push({
            type: 'checkpoint',
            phase,
            epoch: epoch + 1,
            monitor: best.rule.monitor,
            value,
            location,
          });
        }
        let stop = false;
        if (early) {
          const decision = early.onEpochEnd(epoch, metrics);
          if (decision.snapshot)
            bestWeights = await readWeights(pipeline.state.variables, pipeline.state.names);
          if (decision.stop) {
            stop = true;
            events.push({
              type: 'early-stop',
              phase,
              epoch: epoch + 1,
              monitor: early.rule.monitor,
              best: early.best,
              bestEpoch: early.bestEpoch + 1,
            });
          }
        }
        if (reduce) {
          const newLr = reduce.onEpochEnd(epoch, metrics, optimizer.learningRate);
          if (newLr !== null) {
            events.push({
              type: 'lr-reduced',
              phase,
              epoch: epoch + 1,
              from: optimizer.learningRate,
              to: newLr,
              monitor: reduce.rule.monitor,
            });
            optimizer.learningRate = newLr;
          }
        }
        epoch += 1;
        result.epochs = epoch;
        result.history.push(log);
        ctx.history.push(log);
        for (const event of events) ctx.events.push(event as ResumeEvent);
        if (options.recover) last = await snapshot(epoch);
        const store = options.resume?.store;
        if (store) {
          const target = wholeBase ? resumeVariables(ctx, pipeline, true) : null;
          await store.save({
            phase,
            epoch,
            stoppedEarly: stop,
            before: [...ctx.before],
            weights:
              target !== null
                ? await readWeights(target.variables, target.names)
                : (last?.weights ?? (await readWeights(pipeline.state.variables, pipeline.state.names))),
            optimizer: last?.optimizer ?? (await optimizer.getState(pipeline.variables)),
            callbacks: {
              earlyStopping: early?.state() ?? null,
              reduceLr: reduce?.state() ?? null,
              best: best?.state() ?? null,
            },
            bestWeights,
            history: [...ctx.history],
            events: [...ctx.events],
            seconds: trainingSeconds(ctx),
          });
        }
        yield log;
        for (const event of events) yield event;
        if (stop) {
          result.stoppedEarly = true;
          break;
        }
      } catch (error) {
        const loss = await isDeviceLoss(ctx, error);
        if (!loss || !options.recover || !last) throw error;
        yield { type: 'device-lost', phase, epoch: epoch + 1, message: loss.message };
        optimizer.dispose();
        const recovered = await options.recover(loss);
        ctx.network = recovered.network;
        ctx.backend = recovered.backend;
        options.device?.reset();
        prepare();
        pipeline = makePipeline();
        optimizer = new Adam({ learningRate });
        writeWeights(pipeline.state.variables, last.weights);
        optimizer.setState(pipeline.variables, last.optimizer);
        optimizer.init(pipeline.variables);
        epoch = last.epoch;
        yield { type: 'recovered', phase, backend: recovered.backend, fromEpoch: last.epoch };
      }
    }
    if (early?.shouldRestore() && bestWeights && !ctx.stopped) {
      writeWeights(pipeline.state.variables, bestWeights);
      const restored: ResumeEvent = { type: 'restored-best', phase, epoch: early.bestEpoch + 1 };
      ctx.events.push(restored);
      yield restored;
    }
  } finally {
    optimizer.dispose();
  }
  return result;
}

/** What a best checkpoint holds: the trained weights, and with `wholeBase` every other weight of the base. */
async function checkpointWeights(
  ctx: Context,
  pipeline: Pipeline,
  wholeBase: boolean,
): Promise<WeightValue[]> {
  const { variables, names } = resumeVariables(ctx, pipeline, wholeBase);
  return readWeights(variables, names);
}

/**
 * The variables a checkpoint or resume point holds, in a fixed order: with `wholeBase` the base's other weights
 * first, then the pipeline's state (the head, plus the unfrozen base weights in phase 2).
 */
function resumeVariables(
  ctx: Context,
  pipeline: Pipeline,
  wholeBase: boolean,
): { variables: tf.Variable[]; names: string[] } {
  if (!wholeBase) return pipeline.state;
  const names = new Set(pipeline.state.names);
  const rest = ctx.network.base.weights.filter((w) => !names.has(w.originalName));
  return {
    variables: [...variablesOf(rest), ...pipeline.state.variables],
    names: [...rest.map((w) => w.originalName), ...pipeline.state.names],
  };
}

/** Assigns the saved values of the base's weights (by name); the others are left to the caller. */
function restoreBaseWeights(network: Network, saved: readonly WeightValue[]): void {
  const byName = new Map(saved.map((w) => [w.name, w]));
  const weights = network.base.weights.filter((w) => byName.has(w.originalName));
  writeWeights(
    variablesOf(weights),
    weights.map((w) => byName.get(w.originalName)!),
  );
}

/** Training seconds so far, pauses excluded, counting what a resumed run had before. */
function trainingSeconds(ctx: Context): number {
  return ctx.secondsBefore + (now() - ctx.t0) / 1000 - ctx.pausedSeconds;
}

function phaseSummary(result: PhaseResult): ResumePhaseSummary {
  const { phase, epochs, stoppedEarly, bestEpoch } = result;
  return { phase, epochs, stoppedEarly, bestEpoch };
}

/** Rebuilds the network where `beforePhase2` says, with the head's weights copied over. */
async function carryHead(
  ctx: Context,
  hook: NonNullable<TrainOptions['beforePhase2']>,
): Promise<BackendLog | null> {
  const head = stateOf(ctx.network, 1);
  const weights = await readWeights(head.variables, head.names);
  const moved = await hook();
  if (!moved) return null;
  ctx.network = moved.network;
  ctx.backend = moved.backend.backend;
  writeWeights(stateOf(ctx.network, 1).variables, weights);
  return moved.backend;
}

/**
 * Trains `options.network` and yields its logs. Returns the result when training ends (all epochs, early stop, or
 * `control.stop()`); `generator.return()` stops it as well, leaving the network as it is after the last step.
 */
export async function* train(options: TrainOptions): AsyncGenerator<TrainLog, TrainResult, undefined> {
  const t0 = now();
  const from = options.resume?.from ?? null;
  const numClasses = headClasses(options.network);
  checkOptions(options, numClasses);
  const classNames =
    options.classNames ??
    (numClasses === DX.length ? DX : Array.from({ length: numClasses }, (_, i) => `class ${i}`));
  if (classNames.length !== numClasses) {
    throw new TrainConfigError(`${classNames.length} class names for a head with ${numClasses} outputs`);
  }
  const ctx: Context = {
    options,
    network: options.network,
    backend: options.backend?.backend ?? null,
    control: options.control ?? new TrainControl(),
    classNames,
    numClasses,
    seed: options.seed ?? 1337,
    batchSize: options.batchSize ?? 16,
    inferenceBatchSize: options.inferenceBatchSize ?? 32,
    featureCache:
      options.featureCache === false
        ? null
        : (options.featureCache ?? {
            store: new MemoryFeatureStore(),
            key: `run-${hashIndices(options.data.train)}`,
          }),
    stopped: false,
    turns: new EventLoopTurns(options.eventLoopTurnMs ?? EVENT_LOOP_TURN_MS),
    pausedSeconds: 0,
    t0,
    secondsBefore: from?.seconds ?? 0,
    history: from ? [...from.history] : [],
    events: from ? [...from.events] : [],
    before: from ? [...from.before] : [],
    features: null,
  };
  if (options.backend) yield options.backend;
  const phases: PhaseResult[] = [];
  let reason: StopReason = 'completed';
  // A point saved in phase 2 has phase 1 behind it: its summary stands in for running it again.
  const donePhaseOne = from?.phase === 2 ? from.before.find((b) => b.phase === 1) : undefined;
  const one: PhaseResult = donePhaseOne
    ? { ...donePhaseOne, history: from!.history.filter((h) => h.phase === 1) }
    : yield* runPhase(ctx, 1, from);
  phases.push(one);
  if (one.stoppedEarly) reason = 'early-stop';
  if (!ctx.stopped && options.phase2) {
    ctx.before = [phaseSummary(one)];
    const moved = !donePhaseOne && options.beforePhase2 ? await carryHead(ctx, options.beforePhase2) : null;
    if (moved) yield moved;
    const two = yield* runPhase(ctx, 2, donePhaseOne ? from : null);
    phases.push(two);
    reason = two.stoppedEarly ? 'early-stop' : 'completed';
  }
  if (ctx.stopped) reason = 'stopped';
  // Pauses are left out, as in each epoch's seconds and the UI's elapsed time.
  const seconds = trainingSeconds(ctx);
  const lastPhase = phases[phases.length - 1]!;
  // Phase 2 changes the base, and a network rebuilt after a device loss is another base: the features then stay
  // behind and scoring goes through the images.
  const kept = ctx.features;
  const features: SplitFeatures | null =
    kept && phases.length === 1 && kept.base === ctx.network.base
      ? { val: kept.cached.val, test: kept.cached.test, shape: kept.cached.shape, pool: kept.cached.pool }
      : null;
  yield { type: 'done', reason, phase: lastPhase.phase, epochs: lastPhase.epochs, seconds };
  return {
    reason,
    phases,
    network: ctx.network,
    seconds,
    pausedSeconds: ctx.pausedSeconds,
    eventLoopTurns: ctx.turns.turns,
    features,
  };
}
