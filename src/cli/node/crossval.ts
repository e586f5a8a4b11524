/**
 * Lesion-grouped k-fold cross-validation of the frozen pipeline: one test split of ~1,000 images carries about ±3
 * points of sampling error in balanced accuracy, so the same recipe is scored on every image once. The frozen base's
 * pooled features of the whole dataset are computed once; then, for each fold, the other folds are split
 * lesion-grouped into train and validation (8:1, the default split's proportions), a head seeded from the run's
 * seed trains on cached features with the headless pipeline's loop and callbacks (src/lib/train/loop.ts), its best
 * checkpoint is restored, and the fold is scored. Prints the mean ± sd (n − 1) of each score across folds.
 *
 * From the same features it also scores the default split (lesion-grouped, seed, 80/10/10) as the accuracy bench
 * does: test scores with 95 % bootstrap CIs over lesions, Brier and ECE before and after temperature scaling fitted on
 * the validation split, and test-time augmentation (the test images' features again for the three flips).
 * `featureFile` keeps the whole dataset's features on disk, so a second run skips the extraction.
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { DX, type Dx } from '../../lib/data/dx.ts';
import { matchImages } from '../../lib/data/match.ts';
import { parseMetadata } from '../../lib/data/metadata.ts';
import { calibration } from '../../lib/metrics/calibration.ts';
import { fitTemperature } from '../../lib/metrics/temperature.ts';
import { flippedDataset, TTA_FLIPS } from '../../lib/train/tta.ts';
import { classificationReport } from '../../lib/metrics/report.ts';
import { buildHead, headConfig } from '../../lib/model/heads.ts';
import { preprocessInput } from '../../lib/model/preprocess.ts';
import { trainClassWeights } from '../../lib/split/classWeights.ts';
import { lesionFolds } from '../../lib/split/folds.ts';
import { splitRecords } from '../../lib/split/split.ts';
import { MemoryCheckpointStore, writeWeights } from '../../lib/train/checkpoint.ts';
import {
  extractFeatureBatches,
  featureKey,
  MemoryFeatureStore,
  poolingSplit,
} from '../../lib/train/featureCache.ts';
import type { ImageDataset } from '../../lib/train/dataset.ts';
import { train, type Network } from '../../lib/train/loop.ts';
import { readInputFile } from '../args.ts';
import { useNodeBackend } from './backend.ts';
import {
  calibrationMetrics,
  checkConfig,
  plateauCallbacks,
  scoreTest,
  type HeadlessConfig,
  type HeadlessLog,
  type TestMetrics,
} from './headless.ts';
import { decodeImages, listImages, stratifiedSubset } from './images.ts';
import { loadWeightsFromPath } from './weights.ts';

export interface FoldResult {
  fold: number;
  train: number;
  val: number;
  test: number;
  epochs_run: number;
  best_epoch: number | null;
  balanced_accuracy: number;
  macro_f1: number;
  macro_auc: number | null;
  accuracy: number;
  ece: number;
  seconds: number;
}

export interface Spread {
  mean: number;
  /** Sample standard deviation (n − 1). */
  sd: number;
  values: number[];
}

export interface CrossValidation {
  folds: number;
  seed: number;
  images: number;
  lesions: number;
  /** Images per dx per fold. */
  table: Record<Dx, number[]>;
  per_fold: FoldResult[];
  balanced_accuracy: Spread;
  macro_f1: Spread;
  macro_auc: Spread | null;
  ece: Spread;
  /** The default split scored from the same features; null when not asked for. */
  default_split: DefaultSplitResult | null;
  timing: { data_seconds: number; feature_seconds: number; folds_seconds: number; total_seconds: number };
}

export interface DefaultSplitResult {
  split: { train: number; val: number; test: number };
  epochs_run: number;
  best_epoch: number | null;
  test: Omit<TestMetrics, 'report' | 'predictions' | 'seconds'>;
}

export interface CrossValidationOptions {
  /** Also score the default split (ratios 80/10/10, the run's seed). Default true. */
  defaultSplit?: boolean;
  /** Score the default split's test images with test-time augmentation too. Default true. */
  tta?: boolean;
  /** A file for the whole dataset's pooled features: read when it matches, else written. */
  featureFile?: string | null;
}

export function spread(values: readonly number[]): Spread {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n < 2 ? 0 : Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  return { mean, sd, values: [...values] };
}

const now = (): number => performance.now();

export async function crossValidate(
  config: HeadlessConfig,
  k: number,
  onLog: (log: HeadlessLog | { type: 'fold' | 'default-split'; [key: string]: unknown }) => void = () =>
    undefined,
  options: CrossValidationOptions = {},
): Promise<CrossValidation> {
  const spec = checkConfig(config);
  if (config.csv === null) throw new Error('cross-validation needs --csv (the metadata file)');
  if (config.weights === null)
    throw new Error('cross-validation scores the pretrained frozen pipeline: give --weights');
  const tStart = now();
  const { listing } = await listImages(config.images);
  const metadata = parseMetadata(await readInputFile(config.csv), config.csv);
  const { matched } = matchImages(metadata.records, listing);
  const chosen = config.limit === null ? matched : stratifiedSubset(matched, config.limit, config.seed);
  const decoded = await decodeImages(chosen, {
    size: config.size,
    onProgress: (done, total, seconds) => onLog({ type: 'decode', done, total, seconds }),
    progressEvery: 1000,
  });
  const { dataset, images } = decoded;
  const records = images.map((m) => m.record);
  const dataSeconds = (now() - tStart) / 1000;

  await useNodeBackend(config.backend);
  const base = spec.build(config.size);
  try {
    await loadWeightsFromPath(base, config.weights);
    base.trainable = false;
    const preprocess = (x: tf.Tensor4D) => preprocessInput(x, spec.preprocessing);
    // The pooled features of every image, once.
    const tFeatures = now();
    const extract = async (source: ImageDataset, indices: readonly number[], label: string) => {
      let lastLog = 0;
      const extraction = extractFeatureBatches(
        base,
        (p) => source.readBatch(p.map((i) => indices[i]!)),
        indices.length,
        {
          preprocess,
          inputSize: config.size,
          imageSize: source.size,
          pool: true,
          batchSize: config.inferenceBatchSize,
        },
      );
      let step = await extraction.next();
      while (!step.done) {
        if (now() - lastLog > 10_000 || step.value.done === step.value.total) {
          lastLog = now();
          onLog({
            type: 'features',
            split: label,
            ...step.value,
            seconds: (now() - tFeatures) / 1000,
          } as never);
        }
        step = await extraction.next();
      }
      return step.value.values;
    };
    const all = Array.from({ length: dataset.count }, (_, i) => i);
    const channels = (base.outputs[0]!.shape as number[]).at(-1)!;
    const cacheTag = `${spec.id}|${config.size}|${config.weights}|${records.map((r) => r.imageId).join(',')}`;
    let values: Float32Array | null = null;
    if (options.featureFile) {
      try {
        const [bytes, tag] = await Promise.all([
          readFile(options.featureFile),
          readFile(`${options.featureFile}.key`, 'utf8'),
        ]);
        if (tag === cacheTag && bytes.byteLength === dataset.count * channels * 4) {
          values = new Float32Array(
            bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
          );
          onLog({ type: 'features', split: 'all', cached: true, file: options.featureFile } as never);
        }
      } catch {
        // No file yet: extract.
      }
    }
    if (!values) {
      values = await extract(dataset, all, 'all');
      if (options.featureFile) {
        await writeFile(options.featureFile, values);
        await writeFile(`${options.featureFile}.key`, cacheTag);
      }
    }
    const features = { values, count: dataset.count };
    const dim = channels;
    const featureSeconds = (now() - tFeatures) / 1000;
    const gatherFrom = (source: Float32Array, indices: readonly number[]): Float32Array => {
      const out = new Float32Array(indices.length * dim);
      indices.forEach((i, r) => out.set(source.subarray(i * dim, (i + 1) * dim), r * dim));
      return out;
    };
    const gather = (indices: readonly number[]): Float32Array => gatherFrom(features.values, indices);

    /** Trains a seeded head on train/val features; returns it with its best checkpoint restored. */
    const trainHead = async (
      trainIdx: number[],
      valIdx: number[],
      weightsByDx: Record<Dx, number> | null,
    ) => {
      const head = buildHead(
        (base.outputs[0]!.shape as number[]).slice(1),
        headConfig({ kind: config.head, hiddenUnits: config.hiddenUnits, dropout: config.dropout }),
        { seed: config.seed },
      );
      try {
        const network: Network = { base, head, inputSize: config.size, preprocess, blocks: spec };
        const store = new MemoryFeatureStore();
        await store.put(featureKey('cv', true, config.size, trainIdx), gather(trainIdx));
        await store.put(featureKey('cv', true, config.size, valIdx), gather(valIdx));
        const checkpoints = new MemoryCheckpointStore();
        const generator = train({
          network,
          data: { dataset, train: trainIdx, val: valIdx },
          classNames: DX,
          epochs: config.epochs,
          batchSize: config.batchSize,
          learningRate: config.learningRate,
          classWeights: weightsByDx ? DX.map((dx) => weightsByDx[dx]) : null,
          augment: null,
          seed: config.seed,
          featureCache: { store, key: 'cv' },
          checkpoint: { store: checkpoints, name: 'best', monitor: config.monitor },
          ...plateauCallbacks(config),
          inferenceBatchSize: config.inferenceBatchSize,
        });
        let epochs = 0;
        for (;;) {
          const s = await generator.next();
          if (s.done) break;
          if (s.value.type === 'epoch') epochs = s.value.epoch;
          if (s.value.type === 'features' && !s.value.cached) {
            throw new Error('the loop recomputed features it was given (feature cache key mismatch)');
          }
        }
        const best = await checkpoints.load('best-phase1');
        if (best)
          writeWeights(
            head.weights.map((w) => w.read() as tf.Variable),
            best.weights,
          );
        return { head, epochs, bestEpoch: best?.epoch ?? null };
      } catch (error) {
        head.dispose();
        throw error;
      }
    };

    /** The head (after its pooling) on pooled feature rows: one probability row per image. */
    const probabilities = async (head: tf.LayersModel, rows: Float32Array): Promise<number[][]> => {
      const n = rows.length / dim;
      const { rest: onPooled } = poolingSplit(head);
      const out = tf.tidy(() => onPooled.apply(tf.tensor2d(rows, [n, dim])) as tf.Tensor);
      let probs: Float32Array;
      try {
        probs = (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
      const kc = DX.length;
      return Array.from({ length: n }, (_, r) => Array.from(probs.subarray(r * kc, (r + 1) * kc)));
    };

    let defaultSplit: DefaultSplitResult | null = null;
    /** The default split's trained head, kept for test-time augmentation after the folds (the slowest part). */
    let defaultHead: { head: tf.LayersModel; test: number[] } | null = null;
    if (options.defaultSplit ?? true) {
      const split = splitRecords(records, { seed: config.seed, ratios: config.ratios, grouped: true });
      const idx = { train: [] as number[], val: [] as number[], test: [] as number[] };
      records.forEach((r, i) => idx[split.assignment.get(r.imageId)!].push(i));
      const weightsByDx = config.classWeights ? trainClassWeights(split, { absent: 'zero' }) : null;
      const { head, epochs, bestEpoch } = await trainHead(idx.train, idx.val, weightsByDx);
      try {
        const yTrue = idx.test.map((i) => dataset.labels[i]!);
        const lesions = idx.test.map((i) => records[i]!.lesionId ?? records[i]!.imageId);
        const yProb = await probabilities(head, gather(idx.test));
        const { scored, bootstrap } = scoreTest(yTrue, yProb, lesions);
        const valProb = await probabilities(head, gather(idx.val));
        const fit = fitTemperature(
          idx.val.map((i) => dataset.labels[i]!),
          valProb,
        );
        const test: DefaultSplitResult['test'] = {
          samples: yTrue.length,
          ...scored,
          bootstrap,
          ...calibrationMetrics(yTrue, yProb, lesions, fit),
          tta: null,
        };
        defaultSplit = {
          split: { train: idx.train.length, val: idx.val.length, test: idx.test.length },
          epochs_run: epochs,
          best_epoch: bestEpoch,
          test,
        };
        onLog({ type: 'default-split', ...defaultSplit });
      } catch (error) {
        head.dispose();
        throw error;
      }
      defaultHead = { head, test: idx.test };
    }

    const folds = lesionFolds(records, k, config.seed);
    const perFold: FoldResult[] = [];
    const tFolds = now();
    for (let f = 0; f < k; f++) {
      const t0 = now();
      const test: number[] = [];
      const rest: number[] = [];
      records.forEach((r, i) => (folds.assignment.get(r.imageId) === f ? test : rest).push(i));
      const inner = splitRecords(
        rest.map((i) => records[i]!),
        { seed: config.seed, ratios: [8 / 9, 1 / 9, 0], grouped: true },
      );
      const trainIdx = rest.filter((i) => inner.assignment.get(records[i]!.imageId) === 'train');
      const valIdx = rest.filter((i) => inner.assignment.get(records[i]!.imageId) === 'val');
      const weightsByDx = config.classWeights ? trainClassWeights(inner, { absent: 'zero' }) : null;
      const { head, epochs, bestEpoch } = await trainHead(trainIdx, valIdx, weightsByDx);
      try {
        const yTrue = test.map((i) => dataset.labels[i]!);
        const yProb = await probabilities(head, gather(test));
        const report = classificationReport({ classes: DX, yTrue, yProb });
        const result: FoldResult = {
          fold: f,
          train: trainIdx.length,
          val: valIdx.length,
          test: test.length,
          epochs_run: epochs,
          best_epoch: bestEpoch,
          balanced_accuracy: report.balancedAccuracy,
          macro_f1: report.macroAvg.f1,
          macro_auc: report.macroAuc,
          accuracy: report.accuracy,
          ece: calibration(yTrue, yProb).ece,
          seconds: (now() - t0) / 1000,
        };
        perFold.push(result);
        onLog({ type: 'fold', ...result });
      } finally {
        head.dispose();
      }
    }
    if (defaultHead && defaultSplit) {
      const { head, test: testIdx } = defaultHead;
      try {
        if (options.tta ?? true) {
          const yTrue = testIdx.map((i) => dataset.labels[i]!);
          const lesions = testIdx.map((i) => records[i]!.lesionId ?? records[i]!.imageId);
          // The test images' features for each flip; the plain ones are already in hand.
          const sum = (await probabilities(head, gather(testIdx))).map((row) => [...row]);
          for (const flip of TTA_FLIPS) {
            if (flip === 'none') continue;
            const rows = await extract(flippedDataset(dataset, flip), testIdx, `test-${flip}`);
            (await probabilities(head, rows)).forEach((row, r) => row.forEach((p, c) => (sum[r]![c]! += p)));
          }
          const mean = sum.map((row) => row.map((p) => p / TTA_FLIPS.length));
          const calib = calibration(yTrue, mean);
          defaultSplit.test.tta = {
            ...scoreTest(yTrue, mean, lesions).scored,
            brier: calib.brier,
            ece: calib.ece,
          };
          onLog({ type: 'default-split', tta: defaultSplit.test.tta });
        }
      } finally {
        head.dispose();
      }
    }
    const aucs = perFold.flatMap((r) => (r.macro_auc === null ? [] : [r.macro_auc]));
    return {
      folds: k,
      seed: config.seed,
      images: records.length,
      lesions: new Set(records.map((r) => r.lesionId)).size,
      table: folds.table,
      per_fold: perFold,
      balanced_accuracy: spread(perFold.map((r) => r.balanced_accuracy)),
      macro_f1: spread(perFold.map((r) => r.macro_f1)),
      macro_auc: aucs.length === perFold.length ? spread(aucs) : null,
      ece: spread(perFold.map((r) => r.ece)),
      default_split: defaultSplit,
      timing: {
        data_seconds: dataSeconds,
        feature_seconds: featureSeconds,
        folds_seconds: (now() - tFolds) / 1000,
        total_seconds: (now() - tStart) / 1000,
      },
    };
  } finally {
    base.dispose();
  }
}
