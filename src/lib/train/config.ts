/**
 * A training run's settings as the UI and the CLI give them, with the defaults of the seed study (Adam 1e-3,
 * batch 16, 30 epochs, split seed 1337 80/10/10 lesion-grouped, balanced class weights) and validation that names
 * the setting at fault. Plain data: it travels to the worker as is.
 */
import { IMAGE_SIZES, type ImageSize } from '../data/types.ts';
import { augmentOptions, type AugmentOptions } from '../model/augment-options.ts';
import {
  BACKBONE_IDS,
  DEFAULT_BACKBONE,
  MIN_INPUT_SIZE,
  MAX_INPUT_SIZE,
  type BackboneId,
} from '../model/backbones/catalog.ts';
import { headConfig, type HeadConfig } from '../model/head-config.ts';
import { FUSIONS, type Fusion } from '../model/fusion.ts';
import { DEFAULT_RATIOS, DEFAULT_SEED, validateRatios, type Ratios } from '../split/split.ts';
import { BACKEND_NAMES } from './backend-names.ts';
import {
  MONITORS,
  type EarlyStoppingOptions,
  type Monitor,
  type MonitorMode,
  type ReduceLROnPlateauOptions,
} from './callbacks.ts';
import type { BackendName } from './logs.ts';
import { TrainConfigError } from './errors.ts';
import type { PhaseTwoOptions } from './loop.ts';
import {
  DEFAULT_WEBGPU_WEIGHT_GRADIENTS,
  isWebGPUWeightGradients,
  WEBGPU_WEIGHT_GRADIENTS,
  type WebGPUWeightGradients,
} from '../webgpu/weight-gradient-choice.ts';

export interface RunConfig {
  backbone: BackboneId;
  /** Resolution of the image cache to train from. */
  imageSize: ImageSize;
  /** The network's square input; cached images are resized to it when it differs. Default: imageSize. */
  inputSize: number;
  head: HeadConfig;
  /** `together`: pairs of image ids kept in one split (possible hidden duplicates); absent: none. */
  split: { seed: number; ratios: Ratios; grouped: boolean; together?: Array<[string, string]> };
  /** 'balanced' class weights from the train split. */
  classWeights: boolean;
  /** null: no augmentation (then the feature cache can be used). */
  augment: AugmentOptions | null;
  epochs: number;
  batchSize: number;
  learningRate: number;
  earlyStopping: EarlyStoppingOptions | null;
  reduceLr: ReduceLROnPlateauOptions | null;
  /** Save the best epoch's weights (by this monitor) in browser storage. */
  checkpoint: { monitor: Monitor; mode: MonitorMode } | null;
  phase2: PhaseTwoOptions | null;
  backend: BackendName | 'auto';
  /**
   * Weight-gradient kernels on WebGPU: ours ('tiled') or tfjs's ('stock', the fallback). Kept with the run's config
   * so a run says which it used. Default 'tiled'.
   */
  webgpuWeightGradients: WebGPUWeightGradients;
  featureCache: boolean;
  /** The run's seed: the head's initial weights, shuffling, augmentation and dropout masks. */
  seed: number;
  /** Also score the test split with test-time augmentation (four flips), reported next to the plain score. */
  tta: boolean;
  /**
   * Fuse age, sex and localization (encoded on the train split) with the image features; null: image only.
   * The head's metadata width follows from the encoding, so it is set by the session.
   */
  metadata: { fusion: Fusion; units: number } | null;
}

export const DEFAULT_RUN_CONFIG: Readonly<RunConfig> = {
  backbone: DEFAULT_BACKBONE,
  imageSize: 224,
  inputSize: 224,
  head: headConfig({ kind: 'gap-dense' }),
  split: { seed: DEFAULT_SEED, ratios: DEFAULT_RATIOS, grouped: true },
  classWeights: true,
  augment: null,
  epochs: 30,
  batchSize: 16,
  learningRate: 1e-3,
  earlyStopping: { monitor: 'val_loss', patience: 5, restoreBestWeights: true },
  reduceLr: { monitor: 'val_loss', factor: 0.5, patience: 3, minLr: 1e-5 },
  checkpoint: { monitor: 'val_loss', mode: 'auto' },
  phase2: null,
  backend: 'auto',
  webgpuWeightGradients: DEFAULT_WEBGPU_WEIGHT_GRADIENTS,
  featureCache: true,
  seed: DEFAULT_SEED,
  tta: false,
  metadata: null,
};

function wholeAtLeast(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min)
    throw new TrainConfigError(`${name} must be a whole number ≥ ${min}; got ${value}`);
}

function positive(name: string, value: number): void {
  if (!(Number.isFinite(value) && value > 0))
    throw new TrainConfigError(`${name} must be a number > 0; got ${value}`);
}

function monitor(name: string, value: string | undefined): void {
  if (value !== undefined && !(MONITORS as readonly string[]).includes(value)) {
    throw new TrainConfigError(`${name} must be one of ${MONITORS.join(', ')}; got ${value}`);
  }
}

/** Fills in defaults and checks every setting; throws TrainConfigError naming the one at fault. */
export function runConfig(partial: Partial<RunConfig> = {}): RunConfig {
  const imageSize = partial.imageSize ?? DEFAULT_RUN_CONFIG.imageSize;
  const config: RunConfig = {
    ...DEFAULT_RUN_CONFIG,
    inputSize: partial.inputSize ?? imageSize,
    ...partial,
    split: { ...DEFAULT_RUN_CONFIG.split, ...partial.split },
  };
  if (!(BACKBONE_IDS as readonly string[]).includes(config.backbone)) {
    throw new TrainConfigError(`backbone must be one of ${BACKBONE_IDS.join(', ')}; got ${config.backbone}`);
  }
  if (!(IMAGE_SIZES as readonly number[]).includes(config.imageSize)) {
    throw new TrainConfigError(`imageSize must be one of ${IMAGE_SIZES.join(', ')}; got ${config.imageSize}`);
  }
  if (
    !Number.isInteger(config.inputSize) ||
    config.inputSize < MIN_INPUT_SIZE ||
    config.inputSize > MAX_INPUT_SIZE
  ) {
    throw new TrainConfigError(
      `inputSize must be a whole number from ${MIN_INPUT_SIZE} to ${MAX_INPUT_SIZE}; got ${config.inputSize}`,
    );
  }
  try {
    config.head = headConfig(config.head);
    config.split.ratios = validateRatios(config.split.ratios);
    if (config.augment) config.augment = augmentOptions(config.augment);
  } catch (error) {
    throw new TrainConfigError(error instanceof Error ? error.message : String(error));
  }
  if (!Number.isSafeInteger(config.split.seed))
    throw new TrainConfigError(`split seed must be an integer; got ${config.split.seed}`);
  if (!Number.isSafeInteger(config.seed))
    throw new TrainConfigError(`seed must be an integer; got ${config.seed}`);
  wholeAtLeast('epochs', config.epochs, 1);
  wholeAtLeast('batchSize', config.batchSize, 1);
  positive('learningRate', config.learningRate);
  monitor('earlyStopping.monitor', config.earlyStopping?.monitor);
  monitor('reduceLr.monitor', config.reduceLr?.monitor);
  monitor('checkpoint.monitor', config.checkpoint?.monitor);
  if (config.earlyStopping?.patience !== undefined)
    wholeAtLeast('earlyStopping.patience', config.earlyStopping.patience, 0);
  if (config.reduceLr) {
    if (config.reduceLr.patience !== undefined)
      wholeAtLeast('reduceLr.patience', config.reduceLr.patience, 0);
    const factor = config.reduceLr.factor ?? 0.5;
    if (!(factor > 0 && factor < 1))
      throw new TrainConfigError(`reduceLr.factor must be in (0, 1); got ${factor}`);
    if (config.reduceLr.minLr !== undefined && !(config.reduceLr.minLr >= 0)) {
      throw new TrainConfigError(`reduceLr.minLr must be ≥ 0; got ${config.reduceLr.minLr}`);
    }
  }
  if (config.phase2) {
    wholeAtLeast('phase2.blocks', config.phase2.blocks, 1);
    wholeAtLeast('phase2.epochs', config.phase2.epochs, 1);
    if (config.phase2.learningRate !== undefined) positive('phase2.learningRate', config.phase2.learningRate);
  }
  if (config.metadata) {
    if (!FUSIONS.includes(config.metadata.fusion)) {
      throw new TrainConfigError(
        `metadata.fusion must be one of ${FUSIONS.join(', ')}; got ${config.metadata.fusion}`,
      );
    }
    wholeAtLeast('metadata.units', config.metadata.units, 1);
  }
  if (config.backend !== 'auto' && !BACKEND_NAMES.includes(config.backend)) {
    throw new TrainConfigError(
      `backend must be auto or one of ${BACKEND_NAMES.join(', ')}; got ${config.backend}`,
    );
  }
  if (!isWebGPUWeightGradients(config.webgpuWeightGradients)) {
    throw new TrainConfigError(
      `webgpuWeightGradients must be one of ${WEBGPU_WEIGHT_GRADIENTS.join(', ')}; got ${config.webgpuWeightGradients}`,
    );
  }
  return config;
}
