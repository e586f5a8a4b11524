/**
 * One whole training run from a RunConfig: split the cached images (lesion-grouped, seeded), compute class weights,
 * pick and start the backend, build the network with its pretrained weights, train (phase 1, optional phase 2,
 * moving to a better backend for fine-tuning and recovering from a lost device), then score the test split.
 * Browser-specific things (the image cache, the WebGPU device, OPFS) come in through `SessionEnv`, so the same
 * code runs in the training worker and in Node.
 */
import { DX } from '../data/dx.ts';
import type { LesionRecord } from '../data/types.ts';
import { classificationReport } from '../metrics/report.ts';
import type { NamedWeight } from '../model/weights/index.ts';
import { trainClassWeights } from '../split/classWeights.ts';
import { splitRecords, type SplitName } from '../split/split.ts';
import { BackendUnavailableError, type BackendManager, type DeviceWatch } from './backend.ts';
import type { CheckpointStore } from './checkpoint.ts';
import type { RunConfig } from './config.ts';
import { TrainControl } from './control.ts';
import type { ImageDataset } from './dataset.ts';
import type { FeatureStore } from './featureCache.ts';
import type { FeatureExtractor } from './feature-pool.ts';
import type { BackendLog, CheckpointLog, Phase, PreparedLog, RunLog, TestLog } from './logs.ts';
import { metadataFusion } from '../model/fusion.ts';
import { encodeRecords, fitMetadataEncoding, metadataDim, recordValues } from '../model/metadata-features.ts';
import {
  predict,
  predictFeatures,
  train,
  TrainConfigError,
  type MetadataRows,
  type Network,
  type SplitFeatures,
  type TrainResult,
} from './loop.ts';
import { createNetwork, disposeNetwork, restoreCheckpoint } from './network.ts';
import type { ResumePoint, ResumeStore } from './resume.ts';
import { predictWithTta } from './tta.ts';

export interface SessionEnv {
  /** The image cache, in cache order. */
  dataset: ImageDataset;
  /** The metadata record of each cached image, in the same order (labels and lesion ids come from here). */
  records: readonly LesionRecord[];
  /** Pretrained base weights, read once; null trains from a random initialisation. */
  pretrained: { weights: readonly NamedWeight[]; label: string } | null;
  backends: BackendManager;
  control?: TrainControl;
  device?: DeviceWatch;
  featureStore?: FeatureStore;
  /** Computes the frozen base's features (e.g. feature workers on the CPU path); default: in this process. */
  featureExtractor?: FeatureExtractor | null;
  checkpointStore?: CheckpointStore;
  /** Names the run's checkpoints and feature-cache entries. */
  runId: string;
  /** Identifies the pretrained weights in feature-cache keys (features depend on them). */
  weightsId: string;
  /**
   * Identifies the image cache in feature-cache keys: features are stored by cache index, and a dataset ingested
   * again at the same size puts other pixels at the same indices.
   */
  datasetId?: string;
  /** Gets a resume point after every epoch (src/lib/train/resume.ts). */
  resumeStore?: ResumeStore;
  /** Continues the run from this point (same config, same runId, same pretrained weights). */
  resumeFrom?: ResumePoint | null;
}

export interface SplitIndices {
  prepared: PreparedLog;
  indices: Record<SplitName, number[]>;
}

/** The split and class weights of `records` (dataset positions per split). */
export function prepareSplit(
  records: readonly LesionRecord[],
  config: Pick<RunConfig, 'split' | 'classWeights'>,
): SplitIndices {
  const split = splitRecords(records, config.split);
  const indices: Record<SplitName, number[]> = { train: [], val: [], test: [] };
  records.forEach((r, i) => indices[split.assignment.get(r.imageId)!].push(i));
  const weights = config.classWeights ? trainClassWeights(split, { absent: 'zero' }) : null;
  return {
    indices,
    prepared: {
      type: 'prepared',
      split: {
        seed: split.seed,
        ratios: [...split.ratios],
        grouped: split.grouped,
        table: Object.fromEntries(DX.map((dx) => [dx, { ...split.table[dx] }])),
        totals: { ...split.totals },
        lesions: { ...split.lesions },
        leakedLesions: split.leakedLesions,
        ...(split.together ? { together: { ...split.together } } : {}),
      },
      classWeights: weights ? DX.map((dx) => weights[dx]) : null,
      classNames: [...DX],
    },
  };
}

export interface SessionOutcome {
  /** `result.network` is the trained network; the caller disposes it (a stopped or failed run disposes its own). */
  result: TrainResult;
  test: TestLog | null;
}

/** Runs `config` and yields every log; returns the result (and the test scores unless stopped). */
export async function* runSession(
  config: RunConfig,
  env: SessionEnv,
): AsyncGenerator<RunLog, SessionOutcome> {
  const { prepared, indices } = prepareSplit(env.records, config);
  for (const name of ['train', 'val'] as const) {
    if (indices[name].length === 0) {
      throw new TrainConfigError(
        `the ${name} split is empty: adjust the ratios (now ${config.split.ratios.join('/')})`,
      );
    }
  }
  // Phase 2 fine-tunes conv layers: a backend that cannot (WASM) is refused now, not after phase 1.
  if (config.phase2) {
    try {
      env.backends.check('fine-tune');
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new BackendUnavailableError(
        `Phase 2 fine-tunes conv layers, and ${why}. Choose Automatic, WebGPU, WebGL or CPU, or turn phase 2 off.`,
      );
    }
  }
  // Metadata fusion: the encoding is fitted on the train split only, then every cached image is encoded with it.
  let metadata: MetadataRows | null = null;
  let head = config.head;
  if (config.metadata) {
    const encoding = fitMetadataEncoding(indices.train.map((i) => recordValues(env.records[i]!)));
    const dim = metadataDim(encoding);
    metadata = { values: encodeRecords(encoding, env.records.map(recordValues)), dim };
    const fusion = metadataFusion({ features: dim, ...config.metadata });
    head = { ...config.head, metadata: fusion };
    yield { ...prepared, metadata: { encoding, fusion } };
  } else {
    yield prepared;
  }
  const spec = {
    backbone: config.backbone,
    inputSize: config.inputSize,
    head,
    seed: config.seed,
  };
  const from = env.resumeFrom ?? null;
  let phase: Phase = from?.phase ?? 1;
  // A run resumed in phase 2 starts on the backend fine-tuning needs.
  const backend = await env.backends.select(phase === 2 ? 'fine-tune' : 'frozen-base');
  let network: Network = createNetwork(spec, env.pretrained);
  const rebuild = (): Network => {
    disposeNetwork(network);
    network = createNetwork(spec, env.pretrained);
    return network;
  };
  /** The backend a device-loss recovery moved to, reported after the loop's 'recovered' log. */
  let recoveredOn: BackendLog | null = null;
  /** The last best checkpoint saved: the weights the run's model keeps (Predict uses them). */
  let kept: CheckpointLog | null =
    (from?.events.findLast((e) => e.type === 'checkpoint') as CheckpointLog | undefined) ?? null;
  const generator = train({
    network,
    // The test split's features come with train's and val's (the base is frozen throughout without phase 2), so
    // the evaluation after the last epoch runs only the head.
    data: {
      dataset: env.dataset,
      train: indices.train,
      val: indices.val,
      ...(config.phase2 ? {} : { test: indices.test }),
      metadata,
    },
    classNames: DX,
    epochs: config.epochs,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    classWeights: prepared.classWeights,
    augment: config.augment,
    seed: config.seed,
    earlyStopping: config.earlyStopping,
    reduceLr: config.reduceLr,
    checkpoint:
      config.checkpoint && env.checkpointStore
        ? {
            ...config.checkpoint,
            store: env.checkpointStore,
            name: `${env.runId}-best`,
            // A random base cannot be built again from its weights file: the checkpoint keeps all of it.
            wholeBase: env.pretrained === null,
          }
        : null,
    featureCache:
      config.featureCache && env.featureStore
        ? {
            store: env.featureStore,
            key: `${config.backbone}|${env.weightsId}|${config.imageSize}|${env.datasetId ?? ''}`,
          }
        : config.featureCache
          ? undefined
          : false,
    featureExtractor: env.featureExtractor ?? null,
    phase2: config.phase2,
    resume: {
      store: env.resumeStore ?? null,
      from,
      wholeBase: env.pretrained === null,
    },
    control: env.control,
    backend,
    device: env.device,
    recover: async () => {
      const lost = env.backends.current;
      if (lost) env.backends.markLost(lost);
      const moved = await env.backends.select(phase === 2 ? 'fine-tune' : 'frozen-base');
      recoveredOn = moved;
      return { network: rebuild(), backend: moved.backend };
    },
    beforePhase2: async () => {
      const before = env.backends.current;
      const log = await env.backends.select('fine-tune');
      if (log.backend === before) return null;
      return { network: rebuild(), backend: log };
    },
  });
  let finished = false;
  try {
    let step = await generator.next();
    while (!step.done) {
      const log = step.value;
      if (log.type === 'phase') phase = log.phase;
      if (log.type === 'checkpoint') kept = log;
      yield log;
      if (log.type === 'recovered' && recoveredOn) {
        yield recoveredOn;
        recoveredOn = null;
      }
      step = await generator.next();
    }
    const result = step.value;
    const test =
      result.reason !== 'stopped' && indices.test.length > 0
        ? await scoreKeptModel(result.network, result.features)
        : null;
    if (test) yield test;
    finished = true;
    return { result, test };
  } finally {
    if (!finished) {
      await generator.return(undefined as never);
      disposeNetwork(network);
    }
  }

  /**
   * Scores the test split with the model the run keeps: the best checkpoint put into a network built as the runs
   * worker builds it (pretrained base + checkpoint), so Results and Predict see the same weights. Without a
   * checkpoint, the network as training left it.
   */
  async function scoreKeptModel(trained: Network, features: SplitFeatures | null): Promise<TestLog> {
    const saved =
      kept && env.checkpointStore
        ? await env.checkpointStore.load(`${env.runId}-best-phase${kept.phase}`)
        : null;
    if (!saved) return scoreTest(trained, features);
    const model = createNetwork(spec, env.pretrained);
    try {
      restoreCheckpoint(model, saved);
      // The rebuilt base has the weights the features came from (pretrained, or the checkpoint's whole base).
      return await scoreTest(model, features);
    } finally {
      disposeNetwork(model);
    }
  }

  /** `network`'s predictions on a split: from its cached base features when the run has them, else the images. */
  function predictSplit(
    network: Network,
    split: 'val' | 'test',
    features: SplitFeatures | null,
  ): ReturnType<typeof predict> {
    const values = features?.[split] ?? null;
    return values && features
      ? predictFeatures(network, env.dataset, indices[split], { ...features, values }, 32, metadata)
      : predict(network, env.dataset, indices[split], 32, metadata);
  }

  async function scoreTest(network: Network, features: SplitFeatures | null): Promise<TestLog> {
    const t0 = performance.now();
    const p = await predictSplit(network, 'test', features);
    const report = classificationReport({ classes: DX, yTrue: p.yTrue, yPred: p.yPred });
    const k = DX.length;
    const rows = (probs: Float32Array, n: number): number[][] =>
      Array.from({ length: n }, (_, i) => Array.from(probs.subarray(i * k, (i + 1) * k)));
    // Temperature scaling is fitted on the validation split's probabilities from the same model.
    const val = await predictSplit(network, 'val', features);
    const tta = config.tta ? await predictWithTta(network, env.dataset, indices.test, 32, metadata) : null;
    return {
      val: { yTrue: val.yTrue, yProb: rows(val.probs, val.yTrue.length) },
      ttaProb: tta ? rows(tta.probs, tta.yTrue.length) : null,
      type: 'test',
      images: indices.test.length,
      accuracy: report.accuracy,
      balancedAccuracy: report.balancedAccuracy,
      macroF1: report.macroAvg.f1,
      recall: Object.fromEntries(report.perClass.map((c) => [c.name, c.support === 0 ? null : c.recall])),
      confusion: report.confusionMatrix,
      yTrue: p.yTrue,
      yPred: p.yPred,
      yProb: p.yTrue.map((_, i) => Array.from(p.probs.subarray(i * k, (i + 1) * k))),
      seconds: (performance.now() - t0) / 1000,
    };
  }
}
