/**
 * The backbone catalog: every ImageNet backbone the app can fine-tune, as plain data (ids, labels, parameter
 * counts, official weights, preprocessing, Keras layer and block names). Free of TensorFlow.js so the UI can show
 * and validate backbones without bundling tf; `./index.ts` adds the builders on top.
 */
import type { PreprocessMode } from '../preprocess.ts';
import {
  MOBILENET_V1_BLOCKS,
  MOBILENET_V2_BLOCKS,
  mobileNetV1BlockOf,
  mobileNetV2BlockOf,
  RESNET50V2_BLOCKS,
  resNet50V2BlockOf,
  VGG16_BLOCKS,
  vgg16BlockOf,
} from './blocks.ts';

export const BACKBONE_IDS = [
  'mobilenet_v2_0.35',
  'mobilenet_v2_0.5',
  'mobilenet_v2_0.75',
  'mobilenet_v2_1.0',
  'mobilenet_v1_0.25',
  'mobilenet_v1_0.5',
  'mobilenet_v1_0.75',
  'mobilenet_v1_1.0',
  'vgg16',
  'resnet50v2',
] as const;
export type BackboneId = (typeof BACKBONE_IDS)[number];

export const DEFAULT_BACKBONE: BackboneId = 'mobilenet_v2_0.35';
export const DEFAULT_INPUT_SIZE = 224;
export const MIN_INPUT_SIZE = 96;
/** Beyond this, activations of the bigger backbones no longer fit a browser tab's GPU memory budget. */
export const MAX_INPUT_SIZE = 1024;

/** Where the official ImageNet weights come from: the file `keras.applications` downloads for include_top=False. */
export interface OfficialWeights {
  url: string;
  fileName: string;
  /**
   * Exact size of that file in bytes, as Keras's downloader reports it; null where no record of the exact size
   * was available when this table was written (then the UI shows `approxBytes`, marked as approximate).
   */
  bytes: number | null;
  /** `bytes` when known, else an estimate (4 bytes per parameter plus HDF5 overhead). */
  approxBytes: number;
  format: 'keras-h5';
  /** The input size the weights were trained at; they load into any input size (all layers are convolutional). */
  trainedAt: 224;
  license: 'Apache-2.0';
}

export interface BackboneInfo {
  id: BackboneId;
  /** Human-readable, e.g. "MobileNetV2 α=0.35". */
  label: string;
  family: 'mobilenet_v2' | 'mobilenet_v1' | 'vgg16' | 'resnet50v2';
  /** Width multiplier for the MobileNets; null for VGG16 and ResNet50V2. */
  alpha: number | null;
  /** Keras's parameter count for include_top=False (the same at every input size). */
  params: number;
  /** Channels of the feature map the backbone outputs. */
  featureChannels: number;
  preprocessing: PreprocessMode;
  /** The model's output layer. */
  outputLayer: string;
  /** The last convolutional block's output, whose activations and gradients Grad-CAM uses. */
  gradCamLayer: string;
  /** Block names, bottom (input) to top (output), for "unfreeze the top N blocks". */
  blocks: readonly string[];
  /** The block a layer belongs to; null for layers outside every block (the input). */
  blockOf(layerName: string): string | null;
  weights: OfficialWeights;
}

const KERAS_APPS = 'https://storage.googleapis.com/tensorflow/keras-applications';

/**
 * Size estimates for the files whose exact size is not recorded, from a straight line through the family's two
 * known files (MobileNetV2: 4.0 bytes per parameter + 379 kB; the Keras 2.0.4 MobileNet v1 files: 5.0 + 1.01 MB).
 */
const ESTIMATE: Record<'mobilenet_v2' | 'mobilenet_v1', (params: number) => number> = {
  mobilenet_v2: (p) => Math.round(3.9977 * p + 378_800),
  mobilenet_v1: (p) => Math.round(5.022 * p + 1_010_600),
};

function officialWeights(
  url: string,
  bytes: number | null,
  params: number,
  estimate: (params: number) => number = (p) => 4 * p,
): OfficialWeights {
  const fileName = url.slice(url.lastIndexOf('/') + 1);
  const approxBytes = bytes ?? estimate(params);
  return { url, fileName, bytes, approxBytes, format: 'keras-h5', trainedAt: 224, license: 'Apache-2.0' };
}

export function checkInputSize(inputSize: number): number {
  if (!Number.isInteger(inputSize) || inputSize < MIN_INPUT_SIZE || inputSize > MAX_INPUT_SIZE) {
    throw new RangeError(
      `input size must be a whole number of pixels from ${MIN_INPUT_SIZE} to ${MAX_INPUT_SIZE}, got ${inputSize}`,
    );
  }
  return inputSize;
}

/** Byte sizes below are from Keras's own download log lines ("Downloading data from … N/N"). */
const MOBILENET_V2: readonly [BackboneId, 0.35 | 0.5 | 0.75 | 1.0, number, number | null][] = [
  ['mobilenet_v2_0.35', 0.35, 410_208, 2_019_640],
  ['mobilenet_v2_0.5', 0.5, 706_224, null],
  ['mobilenet_v2_0.75', 0.75, 1_382_064, null],
  ['mobilenet_v2_1.0', 1.0, 2_257_984, 9_406_464],
];

const MOBILENET_V1: readonly [BackboneId, 0.25 | 0.5 | 0.75 | 1.0, string, number, number | null][] = [
  ['mobilenet_v1_0.25', 0.25, '2_5', 218_544, 2_108_140],
  ['mobilenet_v1_0.5', 0.5, '5_0', 829_536, null],
  ['mobilenet_v1_0.75', 0.75, '7_5', 1_832_976, null],
  ['mobilenet_v1_1.0', 1.0, '1_0', 3_228_864, 17_225_924],
];

const INFOS: BackboneInfo[] = [
  ...MOBILENET_V2.map(([id, alpha, params, bytes]): BackboneInfo => ({
    id,
    label: `MobileNetV2 α=${alpha}`,
    family: 'mobilenet_v2',
    alpha,
    params,
    featureChannels: 1280,
    preprocessing: 'tf',
    outputLayer: 'out_relu',
    gradCamLayer: 'out_relu',
    blocks: MOBILENET_V2_BLOCKS,
    blockOf: mobileNetV2BlockOf,
    weights: officialWeights(
      `${KERAS_APPS}/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${alpha === 1 ? '1.0' : String(alpha)}_224_no_top.h5`,
      bytes,
      params,
      ESTIMATE.mobilenet_v2,
    ),
  })),
  ...MOBILENET_V1.map(([id, alpha, alphaText, params, bytes]): BackboneInfo => ({
    id,
    label: `MobileNet v1 α=${alpha}`,
    family: 'mobilenet_v1',
    alpha,
    params,
    featureChannels: Math.trunc(1024 * alpha),
    preprocessing: 'tf',
    outputLayer: 'conv_pw_13_relu',
    gradCamLayer: 'conv_pw_13_relu',
    blocks: MOBILENET_V1_BLOCKS,
    blockOf: mobileNetV1BlockOf,
    weights: officialWeights(
      `${KERAS_APPS}/mobilenet/mobilenet_${alphaText}_224_tf_no_top.h5`,
      bytes,
      params,
      ESTIMATE.mobilenet_v1,
    ),
  })),
  {
    id: 'vgg16',
    label: 'VGG16',
    family: 'vgg16',
    alpha: null,
    params: 14_714_688,
    featureChannels: 512,
    preprocessing: 'caffe',
    outputLayer: 'block5_pool',
    gradCamLayer: 'block5_conv3',
    blocks: VGG16_BLOCKS,
    blockOf: vgg16BlockOf,
    weights: officialWeights(
      `${KERAS_APPS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`,
      58_889_256,
      14_714_688,
    ),
  },
  {
    id: 'resnet50v2',
    label: 'ResNet50V2',
    family: 'resnet50v2',
    alpha: null,
    params: 23_564_800,
    featureChannels: 2048,
    preprocessing: 'tf',
    outputLayer: 'post_relu',
    gradCamLayer: 'post_relu',
    blocks: RESNET50V2_BLOCKS,
    blockOf: resNet50V2BlockOf,
    weights: officialWeights(
      `${KERAS_APPS}/resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5`,
      94_668_760,
      23_564_800,
    ),
  },
];

export const BACKBONE_CATALOG: Readonly<Record<BackboneId, BackboneInfo>> = Object.fromEntries(
  INFOS.map((s) => [s.id, s]),
) as Record<BackboneId, BackboneInfo>;

export function isBackboneId(id: string): id is BackboneId {
  return (BACKBONE_IDS as readonly string[]).includes(id);
}

/**
 * Resolves a backbone id as a user may type it: `mobilenet_v2_1` and `mobilenet_v2_0.50` mean
 * `mobilenet_v2_1.0` and `mobilenet_v2_0.5`; `MobileNetV2` alone is not accepted (the width must be chosen).
 */
export function parseBackboneId(text: string): BackboneId {
  const raw = text.trim().toLowerCase();
  let id = raw;
  const m = /^(mobilenet_v[12])_(\d+(?:\.\d+)?)$/.exec(raw);
  if (m) {
    const alpha = Number(m[2]);
    id = `${m[1]}_${Number.isInteger(alpha) ? alpha.toFixed(1) : String(alpha)}`;
  }
  if (isBackboneId(id)) return id;
  throw new Error(`unknown backbone "${text}"; choose one of ${BACKBONE_IDS.join(', ')}`);
}

export function getBackboneInfo(id: BackboneId | string): BackboneInfo {
  return BACKBONE_CATALOG[isBackboneId(id) ? id : parseBackboneId(id)];
}
