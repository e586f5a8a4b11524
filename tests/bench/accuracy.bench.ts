/**
 * `npm run -s bench -- accuracy [--size 224] [--limit N] [--phase2 auto|off|force] [--budget-seconds 1800] [--no-tta]`
 * `npm run -s bench -- accuracy --folds 5 [--limit N] [--no-tta] [--feature-file <path>]`
 * `npm run -s bench -- accuracy --meta [--fusion concat|metablock|both]`: image only vs image + metadata
 * (tests/bench/accuracy-meta.ts)
 *
 * The whole real dataset (../shared/data/ham10000/all-200x150: 10,013 images, squashed to the model size),
 * MobileNetV2 α=0.35 with the real ImageNet weights (../shared/weights/tfjs-mobilenet-v2-0.35-224-notop), frozen,
 * lesion-grouped split seed 1337 (80/10/10), balanced class weights, Keras's seed head GAP → Dense(7, softmax),
 * Adam 1e-3, batch 16, trained from the feature cache on the WASM backend with EarlyStopping(val_balanced_accuracy,
 * patience 10, restore best) and ReduceLROnPlateau(patience 5, factor 0.5) — the same pipeline as
 * `npm run cli -- train` (src/cli/node/headless.ts). Prints one JSON object:
 *
 *   backbone, images, seconds      images used, wall time of the frozen run (data + features + head + test)
 *   test                           balanced_accuracy, macro_f1, macro_auc, each with a 95 % bootstrap CI over
 *                                  lesions (1,000 resamples, seed 1337: balanced_accuracy_ci, macro_f1_ci,
 *                                  macro_auc_ci), accuracy, recall per dx, on the best checkpoint; brier and ece;
 *                                  temperature (fitted on the validation split: ECE before and after); tta (the
 *                                  same scores with test-time augmentation, the mean over four flips)
 *   epochs_run, best_epoch, timing, split, …
 *   phase2                         fine-tuning: first the measured step times that decide whether it fits in
 *                                  --budget-seconds (30 min) here; then, when at least 2 epochs fit (or --phase2
 *                                  force), the same run continued (same process, same head) with the top 2 blocks
 *                                  unfrozen (BatchNormalization frozen), lr 1e-5, from cached activations below them,
 *                                  on WASM with the Node pipeline's JavaScript conv gradient kernels, as many epochs
 *                                  as fit (≤ 10), best checkpoint by val balanced accuracy; and its test metrics.
 *
 * With `--folds K`: lesion-grouped, dx-stratified K-fold cross-validation of the same frozen pipeline on the whole
 * dataset (src/cli/node/crossval.ts; features computed once, each fold's head trained on the other folds, 8:1
 * train/val), printing per-fold scores and the mean ± sd of balanced accuracy, macro-F1, macro AUC and ECE.
 */
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { getBackbone } from '../../src/lib/model/backbones/index.ts';
import { buildHead, headConfig } from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { useNodeBackend } from '../../src/cli/node/backend.ts';
import {
  DEFAULT_CONFIG,
  trainHeadless,
  type FineTuneConfig,
  type HeadlessConfig,
  type HeadlessLog,
  type HeadlessResult,
  type PhaseSummary,
  type TestMetrics,
} from '../../src/cli/node/headless.ts';
import { crossValidate } from '../../src/cli/node/crossval.ts';
import { metadataComparison } from './accuracy-meta.ts';
import { syntheticBatch, timeCachedFineTuneSteps, timeFineTuneSteps } from '../../src/cli/node/steps.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const HAM = join(ROOT, '..', 'shared', 'data', 'ham10000');
const WEIGHTS = join(ROOT, '..', 'shared', 'weights', 'tfjs-mobilenet-v2-0.35-224-notop');
const BACKBONE = 'mobilenet_v2_0.35';
/** Phase 2 unfreezes the top 2 blocks (block_16 and 'top': Conv_1 to 1,280 channels); BatchNormalization stays frozen. */
const FINE_TUNE_BLOCKS = 2;
/** Phase 2 trains on WASM with the Node pipeline's JavaScript conv gradient kernels (src/lib/train/conv-gradients.ts). */
const FINE_TUNE_BACKEND = 'wasm';

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function summary(test: TestMetrics | null) {
  if (!test) return null;
  return {
    samples: test.samples,
    balanced_accuracy: test.balanced_accuracy,
    balanced_accuracy_ci: test.balanced_accuracy_ci,
    macro_f1: test.macro_f1,
    macro_f1_ci: test.macro_f1_ci,
    macro_auc: test.macro_auc,
    macro_auc_ci: test.macro_auc_ci,
    accuracy: test.accuracy,
    recall: test.recall,
    bootstrap: test.bootstrap,
    brier: test.brier,
    ece: test.ece,
    temperature: test.temperature,
    tta: test.tta,
  };
}

const log = (line: HeadlessLog): void => {
  if (line.type === 'checkpoint' || line.type === 'batch') return;
  process.stderr.write(`${JSON.stringify(line)}\n`);
};

/** Step times at the real shapes, on the fine-tuning backend. */
async function measurePhase2(size: number, trainImages: number, wholeNetworkSteps: number) {
  await useNodeBackend(FINE_TUNE_BACKEND);
  const spec = getBackbone(BACKBONE);
  const base = spec.build(size);
  const head = buildHead((base.outputs[0]!.shape as number[]).slice(1), headConfig({ kind: 'gap-dense' }));
  const model = { base, head, preprocess: (x: tf.Tensor4D) => preprocessInput(x, spec.preprocessing) };
  try {
    const batch = DEFAULT_CONFIG.batchSize;
    const cached = await timeCachedFineTuneSteps(model, spec, FINE_TUNE_BLOCKS, batch, 5);
    let whole = null;
    if (wholeNetworkSteps > 0) {
      const { x, y } = syntheticBatch(batch, size, 7);
      try {
        whole = await timeFineTuneSteps(model, spec, FINE_TUNE_BLOCKS, x, y, wholeNetworkSteps);
      } finally {
        x.dispose();
        y.dispose();
      }
    }
    const steps = Math.ceil(trainImages / batch);
    const stepMs = cached.steady_ms ?? cached.first_ms;
    return {
      backend: FINE_TUNE_BACKEND,
      batch,
      blocks: FINE_TUNE_BLOCKS,
      steps_per_epoch: steps,
      cached_activation_step: cached,
      projected_epoch_seconds: (steps * stepMs) / 1000,
      whole_network_step: whole,
      whole_network_projected_epoch_seconds:
        whole === null ? null : (steps * (whole.steady_ms ?? whole.first_ms)) / 1000,
    };
  } finally {
    head.dispose();
    base.dispose();
    await useNodeBackend(DEFAULT_CONFIG.backend);
  }
}

export async function bench(args: string[]): Promise<unknown> {
  tf.enableProdMode();
  const size = Number(option(args, 'size') ?? 224);
  const limitText = option(args, 'limit');
  const phase2Mode = option(args, 'phase2') ?? 'auto';
  const budget = Number(option(args, 'budget-seconds') ?? 1800);
  const foldsText = option(args, 'folds');
  const config: HeadlessConfig = {
    ...DEFAULT_CONFIG,
    images: join(HAM, 'all-200x150'),
    csv: join(HAM, 'HAM10000_metadata.csv'),
    backbone: BACKBONE,
    weights: WEIGHTS,
    size,
    epochs: 100,
    monitor: 'val_balanced_accuracy',
    earlyStoppingPatience: 10,
    reduceLrPatience: 5,
    limit: limitText === undefined ? null : Number(limitText),
    predictions: false,
    tta: !args.includes('--no-tta'),
  };
  if (foldsText !== undefined) {
    const t = performance.now();
    const cv = await crossValidate(
      config,
      Number(foldsText),
      (line) => {
        process.stderr.write(`${JSON.stringify(line)}\n`);
      },
      { tta: config.tta, featureFile: option(args, 'feature-file') ?? null },
    );
    return {
      backbone: BACKBONE,
      size,
      backend: config.backend,
      monitor: config.monitor,
      cross_validation: cv,
      wall_seconds: (performance.now() - t) / 1000,
    };
  }
  // Image only vs image + metadata on the same split: tests/bench/accuracy-meta.ts.
  if (args.includes('--meta')) return metadataComparison(args, config, summary, log);
  const t0 = performance.now();
  let phase2: Record<string, unknown> = { run: false, reason: '--phase2 off' };
  const decideFineTune = async (
    one: PhaseSummary,
    totals: { train: number },
  ): Promise<FineTuneConfig | null> => {
    if (phase2Mode === 'off') return null;
    // Phase 2 repeats the bottom's forward pass over train + val (about the phase-1 extraction time), then trains.
    const measured = await measurePhase2(size, totals.train, phase2Mode === 'force' ? 0 : 3);
    const extraction = one.feature_seconds;
    const epochsThatFit = Math.floor((budget - extraction) / measured.projected_epoch_seconds);
    const fits = epochsThatFit >= 2;
    phase2 = {
      budget_seconds: budget,
      measured,
      projected_extraction_seconds: extraction,
      epochs_that_fit: Math.max(0, epochsThatFit),
      fits,
    };
    if (!fits && phase2Mode !== 'force') {
      const step = measured.cached_activation_step;
      const whole = measured.whole_network_step;
      phase2.run = false;
      phase2.reason =
        `a fine-tuning epoch over ${totals.train} images takes ~${Math.round(measured.projected_epoch_seconds)} s ` +
        `here (${Math.round(step.steady_ms ?? step.first_ms)} ms per step of ${measured.batch} from cached ` +
        `activations on ${measured.backend}; ` +
        `${whole ? Math.round(whole.steady_ms ?? whole.first_ms) : '?'} ms per step through the whole network), ` +
        `so fewer than 2 epochs fit in ${budget} s after ~${Math.round(extraction)} s of extraction`;
      return null;
    }
    const epochs = Math.max(1, Math.min(10, epochsThatFit));
    phase2.run = true;
    phase2.epochs = epochs;
    return { blocks: FINE_TUNE_BLOCKS, epochs, learningRate: 1e-5, backend: FINE_TUNE_BACKEND };
  };
  const run: HeadlessResult = await trainHeadless(config, { onLog: log, decideFineTune });
  const one = run.phases[0]!;
  const split = run.data.split as { totals: { train: number; val: number; test: number } };
  const result: Record<string, unknown> = {
    backbone: BACKBONE,
    images: run.data.used,
    // The frozen run: data, features, head training, test (phase 2 is timed on its own below).
    seconds: run.timing.phase1_seconds,
    test: summary(one.test),
    size,
    backend: config.backend,
    weights: run.model.weights,
    split: split.totals,
    class_weights: run.data.class_weights,
    monitor: config.monitor,
    epochs_run: one.epochs_run,
    best_epoch: one.best_epoch,
    best_val_balanced_accuracy: one.best_value,
    stopped_early: one.stopped_early,
    timing: {
      data_seconds: run.timing.data_seconds,
      feature_seconds: one.feature_seconds,
      head_training_seconds: one.train_seconds,
      mean_head_epoch_seconds: one.history.reduce((s, h) => s + h.seconds, 0) / one.history.length,
      test_seconds: one.test?.seconds ?? null,
    },
    tensors_at_epoch: { first: one.tensors_at_epoch[0], last: one.tensors_at_epoch.at(-1) },
    wall_seconds: (performance.now() - t0) / 1000,
  };
  const two = run.phases[1];
  if (two) {
    phase2 = {
      ...phase2,
      blocks: FINE_TUNE_BLOCKS,
      seconds: two.feature_seconds + two.train_seconds + (two.test?.seconds ?? 0),
      extraction_seconds: two.feature_seconds,
      training_seconds: two.train_seconds,
      trainable_params: two.trainable_params,
      test: summary(two.test),
      epochs_run: two.epochs_run,
      best_epoch: two.best_epoch,
      history: two.history,
    };
  }
  return { ...result, phase2 };
}
