/**
 * Headless training in Node over the same core as the app: metadata → listing → match → (stratified subset) →
 * decode + resize → lesion-grouped split → backbone + pretrained weights → frozen base → feature cache → head
 * training (src/lib/train/loop.ts) → the best checkpoint → test-split classification report.
 *
 * Phase 2 (fine-tuning the top N blocks) trains from cached activations: with augmentation off and every
 * BatchNormalization frozen (inference mode, as Keras), the frozen bottom of the base maps each image to the same
 * activation in every epoch, so that activation is computed once and the unfrozen top blocks + head train on it. The
 * loss, gradients and updates are those of training through the whole network; only the frozen forward pass is not
 * repeated. In Node, both backends get JavaScript conv gradient kernels (src/lib/train/conv-gradients.ts): tfjs-backend-wasm
 * has none, and tfjs-backend-cpu's are slow.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DX, type Dx } from '../../lib/data/dx.ts';
import { matchImages, type MatchedImage } from '../../lib/data/match.ts';
import { parseMetadata } from '../../lib/data/metadata.ts';
import type { Metadata } from '../../lib/data/types.ts';
import { bootstrapIntervals, type Interval } from '../../lib/metrics/bootstrap.ts';
import { calibrationIntervals } from '../../lib/metrics/calibration-intervals.ts';
import { calibration } from '../../lib/metrics/calibration.ts';
import { classificationReport, reportToJson, type ClassificationReport } from '../../lib/metrics/report.ts';
import { applyTemperature, fitTemperature, type TemperatureFit } from '../../lib/metrics/temperature.ts';
import { predictWithTta } from '../../lib/train/tta.ts';
import { getBackbone, type BackboneSpec } from '../../lib/model/backbones/index.ts';
import { buildHead, headConfig, useKerasBatchNormSemantics, type HeadKind } from '../../lib/model/heads.ts';
import { metadataWidth } from '../../lib/model/fused-head.ts';
import { metadataFusion, type Fusion } from '../../lib/model/fusion.ts';
import {
  encodeRecords,
  fitMetadataEncoding,
  metadataDim,
  metadataFeatureNames,
  recordValues,
  type MetadataEncoding,
} from '../../lib/model/metadata-features.ts';
import { preprocessInput } from '../../lib/model/preprocess.ts';
import { trainClassWeights } from '../../lib/split/classWeights.ts';
import { splitRecords, type Ratios, type Split, type SplitName } from '../../lib/split/split.ts';
import type { Monitor } from '../../lib/train/callbacks.ts';
import { MemoryCheckpointStore, writeWeights } from '../../lib/train/checkpoint.ts';
import {
  featureKey,
  MemoryFeatureStore,
  poolingSplit,
  type FeatureStore,
} from '../../lib/train/featureCache.ts';
import type { ImageDataset } from '../../lib/train/dataset.ts';
import type { EpochLog, TrainLog } from '../../lib/train/logs.ts';
import { predict, train, type MetadataRows, type Network, type TrainOptions } from '../../lib/train/loop.ts';
import { readInputFile } from '../args.ts';
import { lackingKernels, useNodeBackend, type NodeBackend } from './backend.ts';
import {
  decodeImages,
  lazyDataset,
  listImages,
  stratifiedSubset,
  type ImageContainer,
  type SkippedImage,
} from './images.ts';
import { loadWeightsFromPath, type LoadedWeights } from './weights.ts';

export interface FineTuneConfig {
  /** Blocks of the base, counted from the top, to unfreeze (BatchNormalization stays frozen). */
  blocks: number;
  epochs: number;
  learningRate: number;
  /** Where phase 2 trains (both have conv gradient kernels in Node, see src/lib/train/conv-gradients.ts). */
  backend: NodeBackend;
}

export interface HeadlessConfig {
  /** A folder or a zip of images. */
  images: string;
  /** The metadata file; null: the single metadata CSV found among the images. */
  csv: string | null;
  backbone: string;
  /** tfjs layers model (folder or model.json) or Keras .h5; null: random initialisation (timing runs only). */
  weights: string | null;
  size: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  ratios: Ratios;
  leaky: boolean;
  classWeights: boolean;
  head: HeadKind;
  hiddenUnits: number;
  dropout: number;
  /** Use this many matched images (stratified subset), or all when null. */
  limit: number | null;
  backend: NodeBackend;
  /** What the best checkpoint, EarlyStopping and ReduceLROnPlateau watch. */
  monitor: Monitor;
  /** EarlyStopping (restoring the best weights) when set. */
  earlyStoppingPatience: number | null;
  minDelta: number;
  /** ReduceLROnPlateau (factor 0.5, min lr 1e-5) when set. */
  reduceLrPatience: number | null;
  fineTune: FineTuneConfig | null;
  /** Images per forward pass when extracting features or predicting. */
  inferenceBatchSize: number;
  /** Keep per-image test predictions in the result. */
  predictions: boolean;
  /** Also score the test split with test-time augmentation (the mean over four flips), next to the plain score. */
  tta: boolean;
  /**
   * Fuse the tabular metadata (age, sex, localization; encoded on the train split) with the image features:
   * null for an image-only head.
   */
  meta: { fusion: Fusion; units: number } | null;
}

export const DEFAULT_CONFIG: Omit<HeadlessConfig, 'images' | 'csv' | 'backbone' | 'weights'> = {
  size: 224,
  epochs: 30,
  batchSize: 16,
  learningRate: 1e-3,
  seed: 1337,
  ratios: [0.8, 0.1, 0.1],
  leaky: false,
  classWeights: true,
  head: 'gap-dense',
  hiddenUnits: 128,
  dropout: 0.2,
  limit: null,
  backend: 'wasm',
  monitor: 'val_loss',
  earlyStoppingPatience: null,
  minDelta: 0,
  reduceLrPatience: null,
  fineTune: null,
  inferenceBatchSize: 32,
  predictions: true,
  tta: false,
  meta: null,
};

/**
 * The train loop's EarlyStopping (restoring the best weights) and ReduceLROnPlateau (factor 0.5, min lr 1e-5) from
 * the config's patiences; a null patience turns that callback off. The frozen run and cross-validation share it.
 */
export function plateauCallbacks(
  config: Pick<HeadlessConfig, 'monitor' | 'earlyStoppingPatience' | 'minDelta' | 'reduceLrPatience'>,
): Pick<TrainOptions, 'earlyStopping' | 'reduceLr'> {
  return {
    earlyStopping:
      config.earlyStoppingPatience === null
        ? null
        : {
            monitor: config.monitor,
            patience: config.earlyStoppingPatience,
            minDelta: config.minDelta,
            restoreBestWeights: true,
          },
    reduceLr:
      config.reduceLrPatience === null
        ? null
        : { monitor: config.monitor, patience: config.reduceLrPatience, factor: 0.5, minLr: 1e-5 },
  };
}

/** A log line for stderr: the core's TrainLogs plus the data and model steps of this pipeline. */
export type HeadlessLog =
  | TrainLog
  | { type: 'data'; stage: 'listed' | 'matched' | 'split'; [key: string]: unknown }
  | { type: 'decode'; done: number; total: number; seconds: number }
  | { type: 'model'; [key: string]: unknown }
  | { type: 'test'; phase: number; [key: string]: unknown };

export interface PhaseSummary {
  phase: 1 | 2;
  /** 'features': trained on cached base features (phase 1) or cached activations below the unfrozen blocks (2). */
  input: 'features' | 'images';
  backend: NodeBackend;
  learning_rate: number;
  trainable_params: number;
  epochs_run: number;
  stopped_early: boolean;
  /** Epoch (1-based) of the best checkpoint, whose weights the test uses. */
  best_epoch: number | null;
  best_value: number | null;
  history: Omit<EpochLog, 'type'>[];
  /** tf.memory().numTensors right after each epoch log: flat when nothing leaks. */
  tensors_at_epoch: number[];
  feature_seconds: number;
  train_seconds: number;
  test: TestMetrics | null;
}

/** The headline scores of one way of predicting the test split, with 95 % bootstrap CIs over lesions. */
export interface ScoredTest {
  balanced_accuracy: number;
  balanced_accuracy_ci: Interval;
  macro_f1: number;
  macro_f1_ci: Interval;
  macro_auc: number | null;
  macro_auc_ci: Interval | null;
  accuracy: number;
  recall: Record<string, number>;
}

/** Brier and ECE of the test probabilities, the ECE's interval, and temperature scaling when a fit is given. */
export function calibrationMetrics(
  yTrue: number[],
  yProb: number[][],
  lesions: readonly string[] | null,
  fit: TemperatureFit | null,
): Pick<TestMetrics, 'brier' | 'ece' | 'ece_ci' | 'temperature'> {
  const plain = calibration(yTrue, yProb);
  const scaledProb = fit ? applyTemperature(yProb, fit.temperature) : null;
  const ci = calibrationIntervals({ yTrue, yProb, scaledProb, groups: lesions });
  const after = scaledProb ? calibration(yTrue, scaledProb) : null;
  return {
    brier: plain.brier,
    ece: plain.ece,
    ece_ci: ci.ece,
    temperature:
      fit && after
        ? {
            value: fit.temperature,
            val_nll_before: fit.nllBefore,
            val_nll_after: fit.nllAfter,
            ece_before: plain.ece,
            ece_after: after.ece,
            ece_after_ci: ci.scaled_ece!,
            ece_change_ci: ci.change!,
            brier_before: plain.brier,
            brier_after: after.brier,
          }
        : null,
  };
}

export interface TestMetrics extends ScoredTest {
  samples: number;
  report: Record<string, unknown>;
  bootstrap: { iterations: number; seed: number; level: number; resampled: string; units: number };
  /** Multiclass Brier score and 15-bin ECE of the plain probabilities. */
  brier: number;
  ece: number;
  /** 95 % bootstrap interval of the ECE (the same lesion resamples as the scores'). */
  ece_ci: Interval;
  /** Temperature scaling fitted on the validation split (argmax, hence every score above, unchanged). */
  temperature: {
    value: number;
    val_nll_before: number;
    val_nll_after: number;
    ece_before: number;
    ece_after: number;
    ece_after_ci: Interval;
    /** ece_after − ece_before per resample: an interval holding 0 means the change is within the noise. */
    ece_change_ci: Interval;
    brier_before: number;
    brier_after: number;
  } | null;
  /** The same model scored with test-time augmentation (four flips); null when not asked for. */
  tta: (ScoredTest & { brier: number; ece: number }) | null;
  predictions?: {
    classes: string[];
    image_ids: string[];
    y_true: number[];
    y_pred: number[];
    y_prob: number[][];
  };
  seconds: number;
}

export interface HeadlessResult {
  config: Record<string, unknown>;
  data: Record<string, unknown>;
  model: Record<string, unknown>;
  phases: PhaseSummary[];
  /** The final model's test-split metrics (null when the test ratio is 0). */
  test: TestMetrics | null;
  timing: Record<string, number>;
}

export interface HeadlessHooks {
  onLog?: (log: HeadlessLog) => void;
  /** Metadata already parsed (the benchmark reuses it); otherwise read from config.csv or the listing. */
  metadata?: Metadata;
  /**
   * When `config.fineTune` is null: called after phase 1 (and its test metrics) to decide on phase 2, e.g. from
   * measured step times. Return null to stop after phase 1.
   */
  decideFineTune?: (phaseOne: PhaseSummary, totals: Split['totals']) => Promise<FineTuneConfig | null>;
  /**
   * Shared between runs on the same images (the accuracy bench's image-only and metadata runs): the decoded images
   * are kept here after the first run, and phase 1's pooled features in `features`.
   */
  shared?: SharedData;
}

/** What two runs on the same data and backbone can share. */
export interface SharedData {
  decoded?: { key: string; value: Awaited<ReturnType<typeof decodeImages>> };
  features: FeatureStore;
  /**
   * Pooled base features of the images already computed (e.g. by `cli near-duplicates --features`, same backbone,
   * weights and size), by image id: phase 1 then trains and tests on them, and images are decoded only if something
   * needs their pixels (phase 2 does).
   */
  pooled?: PooledFeatures;
}

export interface PooledFeatures {
  imageIds: readonly string[];
  /** imageIds.length × dim values. */
  values: Float32Array;
  dim: number;
}

function pooledRows(pooled: PooledFeatures, imageIds: readonly string[]): Float32Array {
  const row = new Map(pooled.imageIds.map((id, i) => [id, i]));
  const out = new Float32Array(imageIds.length * pooled.dim);
  imageIds.forEach((id, i) => {
    const r = row.get(id);
    if (r === undefined) throw new Error(`the precomputed features have no row for image ${id}`);
    out.set(pooled.values.subarray(r * pooled.dim, (r + 1) * pooled.dim), i * pooled.dim);
  });
  return out;
}

export function sharedData(): SharedData {
  return { features: new MemoryFeatureStore() };
}

const now = (): number => performance.now();

/** Checks options before any slow work, with messages naming the option. */
export function checkConfig(config: HeadlessConfig): BackboneSpec {
  const spec = getBackbone(config.backbone);
  const whole = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min)
      throw new RangeError(`--${name} must be a whole number ≥ ${min}; got ${v}`);
  };
  whole('epochs', config.epochs, 1);
  whole('batch', config.batchSize, 1);
  whole('size', config.size, 96);
  if (config.limit !== null) whole('limit', config.limit, 2);
  if (!(config.learningRate > 0)) throw new RangeError(`--lr must be > 0; got ${config.learningRate}`);
  if (config.fineTune) {
    whole('fine-tune-blocks', config.fineTune.blocks, 1);
    whole('fine-tune-epochs', config.fineTune.epochs, 1);
    if (config.fineTune.blocks > spec.blocks.length) {
      throw new RangeError(
        `${spec.id} has ${spec.blocks.length} blocks; --fine-tune-blocks ${config.fineTune.blocks}`,
      );
    }
    if (!(config.fineTune.learningRate > 0)) {
      throw new RangeError(`--fine-tune-lr must be > 0; got ${config.fineTune.learningRate}`);
    }
    const lacking = lackingKernels(config.fineTune.backend, 'fine-tune');
    if (lacking.length > 0) {
      throw new Error(
        `the ${config.fineTune.backend} backend cannot fine-tune conv layers (no ${lacking.join(', ')} kernel)`,
      );
    }
  }
  return spec;
}

interface Cut {
  /** Image → activation at the cut (the frozen part). */
  bottom: tf.LayersModel;
  /** Activation at the cut → the base's output (the unfrozen blocks), sharing the base's layers. */
  top: tf.LayersModel;
  /** Name of the layer whose output is the cut. */
  at: string;
}

/**
 * Cuts the base below its top `blocks` blocks. The layers of those blocks (and any layer after them outside every
 * block) must take exactly one tensor from below: true for every backbone here, whose blocks meet at a single
 * tensor (ResNet's shortcut starts from the block input, the same tensor).
 */
export function cutBelowTopBlocks(base: tf.LayersModel, spec: BackboneSpec, blocks: number): Cut {
  const topBlocks = new Set(spec.blocks.slice(spec.blocks.length - blocks));
  const layers = base.layers;
  const first = layers.findIndex((l) => {
    const b = spec.blockOf(l.name);
    return b !== null && topBlocks.has(b);
  });
  if (first < 0) throw new Error(`no layer of ${spec.id} belongs to its top ${blocks} blocks`);
  const topLayers = layers.slice(first).filter((l) => {
    const b = spec.blockOf(l.name);
    return b === null || topBlocks.has(b);
  });
  const inTop = new Set(topLayers);
  const outside = new Map<number, tf.SymbolicTensor>();
  for (const layer of topLayers) {
    for (const t of layer.inboundNodes[0]!.inputTensors) {
      if (!inTop.has(t.sourceLayer as tf.layers.Layer)) outside.set(t.id, t);
    }
  }
  if (outside.size !== 1) {
    throw new Error(
      `the top ${blocks} blocks of ${spec.id} take ${outside.size} tensors from below; cannot cut the base there`,
    );
  }
  const cut = [...outside.values()][0]!;
  const bottom = tf.model({ inputs: base.inputs, outputs: cut, name: `${base.name}_below_top${blocks}` });
  const input = tf.input({ shape: cut.shape.slice(1) as number[], name: 'cut_activation' });
  const mapped = new Map<number, tf.SymbolicTensor>([[cut.id, input]]);
  for (const layer of topLayers) {
    const node = layer.inboundNodes[0]!;
    const ins = node.inputTensors.map((t) => mapped.get(t.id)!);
    const out = layer.apply(ins.length === 1 ? ins[0]! : ins) as tf.SymbolicTensor | tf.SymbolicTensor[];
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((t, i) => mapped.set(t.id, outs[i]!));
  }
  const output = mapped.get(base.outputs[0]!.id);
  if (!output) throw new Error(`the top ${blocks} blocks of ${spec.id} do not reach the base's output`);
  const top = tf.model({ inputs: input, outputs: output, name: `${base.name}_top${blocks}` });
  return { bottom, top, at: cut.sourceLayer.name };
}

/**
 * Phase 2's network: base = the frozen bottom, head = the unfrozen top blocks + the phase-1 head. Top layers are
 * trainable except BatchNormalization, which stays frozen and runs in inference mode.
 */
function fineTuneNetwork(network: Network, cut: Cut): Network {
  const input = tf.input({ shape: cut.top.inputs[0]!.shape.slice(1) as number[], name: 'cut_input' });
  const top = cut.top.apply(input) as tf.SymbolicTensor;
  const width = metadataWidth(network.head);
  const metadata = width === null ? null : tf.input({ shape: [width], name: 'metadata' });
  const output = network.head.apply(metadata ? [top, metadata] : top) as tf.SymbolicTensor;
  const head = tf.model({
    inputs: metadata ? [input, metadata] : input,
    outputs: output,
    name: 'top_and_head',
  });
  for (const layer of cut.top.layers) {
    layer.trainable = layer.getClassName() !== 'BatchNormalization' && layer.getClassName() !== 'InputLayer';
  }
  useKerasBatchNormSemantics(head);
  return { base: cut.bottom, head, preprocess: network.preprocess, inputSize: network.inputSize };
}

/**
 * A memory feature store that calls `onBothStored` once the train and val features are in: phase 2 extracts them on
 * the phase-1 backend and switches to the fine-tuning backend there, before the first training step.
 */
class SwitchingFeatureStore implements FeatureStore {
  private readonly entries = new Map<string, Float32Array>();

  constructor(private readonly onBothStored: () => Promise<void>) {}

  async get(key: string): Promise<Float32Array | null> {
    return this.entries.get(key) ?? null;
  }

  async put(key: string, values: Float32Array): Promise<void> {
    this.entries.set(key, values);
    if (this.entries.size === 2) await this.onBothStored();
  }
}

function indicesBySplit(images: readonly MatchedImage[], split: Split): Record<SplitName, number[]> {
  const out: Record<SplitName, number[]> = { train: [], val: [], test: [] };
  images.forEach((m, i) => out[split.assignment.get(m.record.imageId)!].push(i));
  return out;
}

async function readMetadata(
  config: HeadlessConfig,
  listingCsv: () => Promise<{ text: string; name: string }>,
) {
  if (config.csv !== null) {
    return parseMetadata(await readInputFile(config.csv), basename(config.csv));
  }
  const { text, name } = await listingCsv();
  return parseMetadata(text, name);
}

/** Scores, CIs over lesions, of probabilities of the test split. */
export function scoreTest(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
  lesionIds: readonly string[] | null,
): { scored: ScoredTest; report: ClassificationReport; bootstrap: TestMetrics['bootstrap'] } {
  const report = classificationReport({ classes: DX, yTrue, yProb });
  const ci = bootstrapIntervals({ yTrue, yProb, groups: lesionIds });
  return {
    report,
    scored: {
      balanced_accuracy: report.balancedAccuracy,
      balanced_accuracy_ci: ci.balanced_accuracy_ci,
      macro_f1: report.macroAvg.f1,
      macro_f1_ci: ci.macro_f1_ci,
      macro_auc: report.macroAuc,
      macro_auc_ci: ci.macro_auc_ci,
      accuracy: report.accuracy,
      recall: Object.fromEntries(report.perClass.map((c) => [c.name, c.recall])),
    },
    bootstrap: {
      iterations: ci.iterations,
      seed: ci.seed,
      level: ci.level,
      resampled: ci.resampled,
      units: ci.units,
    },
  };
}

const rowsOf = (probs: Float32Array, n: number): number[][] => {
  const k = n === 0 ? 0 : probs.length / n;
  return Array.from({ length: n }, (_, i) => Array.from(probs.subarray(i * k, (i + 1) * k)));
};

async function testMetrics(
  network: Network,
  dataset: Parameters<typeof predict>[1],
  split: { test: number[]; val: number[] },
  ids: { images: string[]; lesions: string[] | null },
  config: HeadlessConfig,
  metadata: MetadataRows | null,
  pooled: PooledFeatures | null = null,
): Promise<TestMetrics> {
  const t0 = now();
  const prediction = pooled
    ? await predictPooled(network, dataset.labels, split.test, ids.images, pooled, metadata)
    : await predict(network, dataset, split.test, config.inferenceBatchSize, metadata);
  const yProb = rowsOf(prediction.probs, prediction.yTrue.length);
  const { scored, report, bootstrap } = scoreTest(prediction.yTrue, yProb, ids.lesions);
  // The whole network on the validation images (the pooled features at hand are the test split's).
  const fit =
    split.val.length > 0
      ? await predict(network, dataset, split.val, config.inferenceBatchSize, metadata).then((val) =>
          fitTemperature(val.yTrue, rowsOf(val.probs, val.yTrue.length)),
        )
      : null;
  const calibrated = calibrationMetrics(prediction.yTrue, yProb, ids.lesions, fit);
  let tta: TestMetrics['tta'] = null;
  if (config.tta) {
    const flipped = await predictWithTta(network, dataset, split.test, config.inferenceBatchSize, metadata);
    const rows = rowsOf(flipped.probs, flipped.yTrue.length);
    const calib = calibration(flipped.yTrue, rows);
    tta = { ...scoreTest(flipped.yTrue, rows, ids.lesions).scored, brier: calib.brier, ece: calib.ece };
  }
  const metrics: TestMetrics = {
    samples: report.samples,
    ...scored,
    report: reportToJson(report),
    bootstrap,
    ...calibrated,
    tta,
    seconds: (now() - t0) / 1000,
  };
  if (config.predictions) {
    metrics.predictions = {
      classes: [...DX],
      image_ids: ids.images,
      y_true: prediction.yTrue,
      y_pred: prediction.yPred,
      y_prob: yProb,
    };
  }
  return metrics;
}

/** The phase-1 network's predictions from precomputed pooled features (the head after its pooling). */
async function predictPooled(
  network: Network,
  labels: ArrayLike<number>,
  indices: readonly number[],
  imageIds: readonly string[],
  pooled: PooledFeatures,
  metadata: MetadataRows | null,
): Promise<Awaited<ReturnType<typeof predict>>> {
  const { pool, rest } = poolingSplit(network.head);
  if (!pool)
    throw new Error('precomputed pooled features need a head that starts with global average pooling');
  const rows = pooledRows(pooled, imageIds);
  const out = tf.tidy(() => {
    const x = tf.tensor2d(rows, [indices.length, pooled.dim]);
    if (!metadata) return rest.predict(x) as tf.Tensor;
    const m = new Float32Array(indices.length * metadata.dim);
    indices.forEach((index, i) =>
      m.set(metadata.values.subarray(index * metadata.dim, (index + 1) * metadata.dim), i * metadata.dim),
    );
    return rest.predict([x, tf.tensor2d(m, [indices.length, metadata.dim])]) as tf.Tensor;
  });
  const probs = (await out.data()) as Float32Array;
  out.dispose();
  const k = probs.length / indices.length;
  const yTrue = indices.map((i) => labels[i]!);
  const yPred = yTrue.map((_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (probs[i * k + j]! > probs[i * k + best]!) best = j;
    return best;
  });
  return { probs, yTrue, yPred };
}

interface PhaseRun {
  summary: Omit<PhaseSummary, 'test'>;
}

async function runPhase(
  phase: 1 | 2,
  options: TrainOptions,
  backend: NodeBackend,
  onLog: (log: HeadlessLog) => void,
): Promise<PhaseRun> {
  const store = options.checkpoint!.store as MemoryCheckpointStore;
  const history: Omit<EpochLog, 'type'>[] = [];
  const tensors: number[] = [];
  let featureSeconds = 0;
  const splitSeconds = { train: 0, val: 0, test: 0 };
  let lastFeatureLog = 0;
  let trainableParams = 0;
  let input: 'features' | 'images' = 'features';
  const t0 = now();
  const generator = train(options);
  let result;
  for (;;) {
    const step = await generator.next();
    if (step.done) {
      result = step.value;
      break;
    }
    const log = step.value;
    if (log.type === 'batch') continue;
    if (log.type === 'features') {
      // `seconds` counts from the start of each split's extraction.
      splitSeconds[log.split] = log.seconds;
      featureSeconds = splitSeconds.train + splitSeconds.val + splitSeconds.test;
      // Extraction reports every batch: keep stderr readable (every 10 s, and each split's end).
      if (log.done !== log.total && now() - lastFeatureLog < 10_000) continue;
      lastFeatureLog = now();
    }
    if (log.type === 'phase') {
      trainableParams = log.trainableParams;
      input = log.input;
    }
    if (log.type === 'epoch') {
      const { type: _type, ...rest } = log;
      history.push({ ...rest, phase });
      tensors.push(tf.memory().numTensors);
    }
    onLog(phase === 2 && 'phase' in log ? { ...log, phase: 2 } : log);
  }
  const best = await store.load(`${options.checkpoint!.name}-phase1`);
  if (best) {
    // The loop's state variables: the head's weights (here the head holds phase 2's unfrozen layers too).
    const variables = options.network.head.weights.map((w) => w.read() as tf.Variable);
    writeWeights(variables, best.weights);
  }
  const one = result.phases[0]!;
  return {
    summary: {
      phase,
      input,
      backend,
      learning_rate: options.learningRate!,
      trainable_params: trainableParams,
      epochs_run: one.epochs,
      stopped_early: one.stoppedEarly,
      best_epoch: best?.epoch ?? null,
      best_value: best?.value ?? null,
      history,
      tensors_at_epoch: tensors,
      feature_seconds: featureSeconds,
      train_seconds: (now() - t0) / 1000 - featureSeconds,
    },
  };
}

/** Runs the whole pipeline; see the module comment. */
export async function trainHeadless(
  config: HeadlessConfig,
  hooks: HeadlessHooks = {},
): Promise<HeadlessResult> {
  const onLog = hooks.onLog ?? (() => undefined);
  const spec = checkConfig(config);
  // A wrong weights path should fail now, not after minutes of decoding.
  if (config.weights !== null) await assertExists(config.weights, 'weights');
  const tStart = now();
  const timing: Record<string, number> = {};

  // Data.
  let t = now();
  const { listing, container } = await listImages(config.images);
  onLog({
    type: 'data',
    stage: 'listed',
    container,
    images: listing.images.length,
    duplicates_skipped: listing.duplicates.length,
  });
  const metadata =
    hooks.metadata ??
    (await readMetadata(config, async () => {
      if (listing.metadata.length !== 1) {
        throw new Error(
          listing.metadata.length === 0
            ? `no --csv given and ${config.images} holds no metadata CSV`
            : `no --csv given and ${config.images} holds ${listing.metadata.length} metadata files ` +
                `(${listing.metadata.map((m) => m.location).join(', ')}); name one with --csv`,
        );
      }
      const source = listing.metadata[0]!;
      return { text: await source.readText(), name: source.location };
    }));
  if (!metadata.hasLesionIds && !config.leaky) {
    throw new Error(
      `${metadata.fileName} has no lesion ids, so a lesion-grouped split is impossible: use --leaky for the ` +
        `image-level split`,
    );
  }
  const { matched, report: match } = matchImages(metadata.records, listing);
  onLog({ type: 'data', stage: 'matched', ...match });
  if (matched.length === 0) {
    throw new Error(`no image of ${config.images} matches a row of ${metadata.fileName} (by image_id)`);
  }
  const chosen = config.limit === null ? matched : stratifiedSubset(matched, config.limit, config.seed);
  const decodeKey = `${config.images}|${config.size}|${chosen.map((m) => m.record.imageId).join(',')}`;
  const reuse = hooks.shared?.decoded?.key === decodeKey ? hooks.shared.decoded.value : null;
  const pooled = config.weights !== null ? (hooks.shared?.pooled ?? null) : null;
  const decoded: { dataset: ImageDataset; images: MatchedImage[]; skipped: SkippedImage[]; seconds: number } =
    pooled
      ? { dataset: lazyDataset(chosen, config.size), images: [...chosen], skipped: [], seconds: 0 }
      : (reuse ??
        (await decodeImages(chosen, {
          size: config.size,
          onProgress: (done, total, seconds) => onLog({ type: 'decode', done, total, seconds }),
          progressEvery: chosen.length > 2000 ? 1000 : 100,
        })));
  if (hooks.shared && !pooled) {
    hooks.shared.decoded = { key: decodeKey, value: decoded as Awaited<ReturnType<typeof decodeImages>> };
  }
  const { dataset, images } = decoded;
  timing.data_seconds = (now() - t) / 1000;

  const split = splitRecords(
    images.map((m) => m.record),
    { seed: config.seed, ratios: config.ratios, grouped: !config.leaky },
  );
  const idx = indicesBySplit(images, split);
  const weightsByDx = config.classWeights ? trainClassWeights(split, { absent: 'zero' }) : null;
  // The metadata encoding is fitted on the train split only (its age mean/sd and vocabularies).
  const encoding: MetadataEncoding | null = config.meta
    ? fitMetadataEncoding(idx.train.map((i) => recordValues(images[i]!.record)))
    : null;
  const metadataRows: MetadataRows | null = encoding
    ? {
        values: encodeRecords(
          encoding,
          images.map((m) => recordValues(m.record)),
        ),
        dim: metadataDim(encoding),
      }
    : null;
  onLog({
    type: 'data',
    stage: 'split',
    totals: split.totals,
    table: split.table,
    class_weights: weightsByDx,
  });

  // Model.
  t = now();
  await useNodeBackend(config.backend);
  const base = spec.build(config.size);
  let weights: LoadedWeights | null = null;
  const disposables: tf.LayersModel[] = [];
  try {
    if (config.weights !== null) weights = await loadWeightsFromPath(base, config.weights);
    const head = buildHead(
      (base.outputs[0]!.shape as number[]).slice(1),
      headConfig({
        kind: config.head,
        hiddenUnits: config.hiddenUnits,
        dropout: config.dropout,
        metadata:
          encoding && config.meta
            ? metadataFusion({ features: metadataDim(encoding), ...config.meta })
            : null,
      }),
      // tfjs's default initialisers draw from an unseeded generator.
      { seed: config.seed },
    );
    disposables.push(head);
    const network: Network = {
      base,
      head,
      inputSize: config.size,
      preprocess: (x) => preprocessInput(x, spec.preprocessing),
      blocks: spec,
    };
    const modelInfo = {
      backbone: spec.id,
      input: [config.size, config.size, 3],
      base_params: base.countParams(),
      head_params: head.countParams(),
      weights: weights
        ? { format: weights.format, path: weights.path, arrays: weights.arrays, params: weights.params }
        : {
            format: 'random-init',
            note: 'no --weights: the base is randomly initialised (timing runs only)',
          },
    };
    onLog({ type: 'model', ...modelInfo });
    timing.model_seconds = (now() - t) / 1000;

    const featureCacheKey = `${spec.id}|${config.weights ?? 'random'}|${config.size}`;
    if (pooled && hooks.shared) {
      const { pool } = poolingSplit(head);
      if (!pool)
        throw new Error('precomputed pooled features need a head that starts with global average pooling');
      for (const name of ['train', 'val'] as const) {
        const ids = idx[name].map((i) => images[i]!.record.imageId);
        await hooks.shared.features.put(
          featureKey(featureCacheKey, true, config.size, idx[name]),
          pooledRows(pooled, ids),
        );
      }
    }
    const common = {
      data: { dataset, train: idx.train, val: idx.val, metadata: metadataRows },
      classNames: DX,
      batchSize: config.batchSize,
      classWeights: weightsByDx ? DX.map((dx: Dx) => weightsByDx[dx]) : null,
      augment: null,
      seed: config.seed,
      ...plateauCallbacks(config),
      inferenceBatchSize: config.inferenceBatchSize,
      ...(hooks.shared && config.weights !== null
        ? { featureCache: { store: hooks.shared.features, key: featureCacheKey } }
        : {}),
    } satisfies Partial<TrainOptions>;

    const phases: PhaseSummary[] = [];
    const testIds = {
      images: idx.test.map((i) => images[i]!.record.imageId),
      // The bootstrap resamples lesions; an image-level (leaky) split has no lesions to keep together.
      lesions: config.leaky
        ? null
        : idx.test.map((i) => images[i]!.record.lesionId ?? images[i]!.record.imageId),
    };
    const runTest = async (net: Network, phase: 1 | 2): Promise<TestMetrics | null> => {
      if (idx.test.length === 0) return null;
      const metrics = await testMetrics(
        net,
        dataset,
        idx,
        testIds,
        config,
        metadataRows,
        phase === 1 ? pooled : null,
      );
      onLog({
        type: 'test',
        phase,
        samples: metrics.samples,
        balanced_accuracy: metrics.balanced_accuracy,
        balanced_accuracy_ci: metrics.balanced_accuracy_ci,
        macro_f1: metrics.macro_f1,
        accuracy: metrics.accuracy,
        ece: metrics.ece,
        temperature: metrics.temperature?.value ?? null,
        tta_balanced_accuracy: metrics.tta?.balanced_accuracy ?? null,
        seconds: metrics.seconds,
      });
      return metrics;
    };

    // Phase 1: frozen base, head on cached pooled features.
    const one = await runPhase(
      1,
      {
        ...common,
        network,
        epochs: config.epochs,
        learningRate: config.learningRate,
        checkpoint: { store: new MemoryCheckpointStore(), name: 'best', monitor: config.monitor },
      },
      config.backend,
      onLog,
    );
    phases.push({ ...one.summary, test: await runTest(network, 1) });

    timing.phase1_seconds = (now() - tStart) / 1000;

    // Phase 2: the top blocks unfrozen, from cached activations below them.
    const ft =
      config.fineTune ?? (hooks.decideFineTune ? await hooks.decideFineTune(phases[0]!, split.totals) : null);
    if (ft) {
      checkConfig({ ...config, fineTune: ft });
      const cut = cutBelowTopBlocks(base, spec, ft.blocks);
      const tuned = fineTuneNetwork(network, cut);
      // tfjs disposes nested models fully with their container: tuned.head takes the head and cut.top with it.
      // cut.bottom only references the base's layers and is left to the base.
      disposables[0] = tuned.head;
      const store = new SwitchingFeatureStore(() => useNodeBackend(ft.backend));
      const two = await runPhase(
        2,
        {
          ...common,
          network: tuned,
          epochs: ft.epochs,
          learningRate: ft.learningRate,
          featureCache: { store, key: `${spec.id}|${config.size}|below-top-${ft.blocks}|${cut.at}` },
          checkpoint: { store: new MemoryCheckpointStore(), name: 'best', monitor: config.monitor },
        },
        ft.backend,
        onLog,
      );
      // Inference (the bottom's forward pass on the test images) is fastest on the phase-1 backend.
      await useNodeBackend(config.backend);
      phases.push({ ...two.summary, test: await runTest(tuned, 2) });
    }

    timing.total_seconds = (now() - tStart) / 1000;
    return {
      config: {
        images: config.images,
        csv: config.csv ?? metadata.fileName,
        backbone: spec.id,
        weights: config.weights,
        size: config.size,
        epochs: config.epochs,
        batch_size: config.batchSize,
        learning_rate: config.learningRate,
        seed: config.seed,
        ratios: config.ratios,
        grouped: !config.leaky,
        class_weights: config.classWeights,
        head: { kind: config.head, hidden_units: config.hiddenUnits, dropout: config.dropout },
        limit: config.limit,
        backend: config.backend,
        monitor: config.monitor,
        early_stopping_patience: config.earlyStoppingPatience,
        min_delta: config.minDelta,
        reduce_lr_patience: config.reduceLrPatience,
        fine_tune: ft,
        augmentation: null,
        tta: config.tta,
        meta: config.meta,
      },
      data: {
        container,
        metadata: metadata.fileName,
        listed_images: listing.images.length,
        duplicates_skipped: listing.duplicates.length,
        match,
        used: images.length,
        skipped: decoded.skipped satisfies SkippedImage[],
        split: {
          seed: split.seed,
          ratios: split.ratios,
          grouped: split.grouped,
          table: split.table,
          totals: split.totals,
          lesions: split.lesions,
          leaked_lesions: split.leakedLesions,
        },
        class_weights: weightsByDx,
        decode_seconds: decoded.seconds,
        metadata_encoding: encoding,
        metadata_features: encoding ? metadataFeatureNames(encoding) : null,
      },
      model: modelInfo,
      phases,
      test: phases[phases.length - 1]!.test,
      timing,
    };
  } finally {
    for (const model of disposables) disposeQuietly(model);
    disposeQuietly(base);
  }
}

async function assertExists(path: string, what: string): Promise<void> {
  try {
    await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      `cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file or folder' : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

function disposeQuietly(model: tf.LayersModel): void {
  try {
    model.dispose();
  } catch {
    // A model sharing layers with one already disposed: its weights are gone already.
  }
}

export type { ImageContainer };
