/**
 * The backbone registry: every ImageNet backbone the app can fine-tune, defined in code with Keras applications'
 * layer names (include_top=False), so that Keras `.h5` files and TensorFlow.js conversions load by name.
 * The tf-free part (ids, labels, weights, blocks) lives in `./catalog.ts`; this module adds the builders.
 */
import type * as tf from '@tensorflow/tfjs';
import {
  BACKBONE_CATALOG,
  BACKBONE_IDS,
  checkInputSize,
  DEFAULT_INPUT_SIZE,
  isBackboneId,
  parseBackboneId,
  type BackboneId,
  type BackboneInfo,
} from './catalog.ts';
import { buildMobileNetV1, type MobileNetV1Alpha } from './mobilenetV1.ts';
import { buildMobileNetV2, type MobileNetV2Alpha } from './mobilenetV2.ts';
import { buildResNet50V2 } from './resnet50v2.ts';
import { buildVgg16 } from './vgg16.ts';

export {
  BACKBONE_IDS,
  checkInputSize,
  DEFAULT_BACKBONE,
  DEFAULT_INPUT_SIZE,
  getBackboneInfo,
  isBackboneId,
  MAX_INPUT_SIZE,
  MIN_INPUT_SIZE,
  parseBackboneId,
  BACKBONE_CATALOG,
  type BackboneId,
  type BackboneInfo,
  type OfficialWeights,
} from './catalog.ts';

export interface BackboneSpec extends BackboneInfo {
  /** Builds a fresh, randomly initialised backbone for a square `inputSize` (default 224). */
  build(inputSize?: number): tf.LayersModel;
}

const BUILDERS: Record<BackboneInfo['family'], (info: BackboneInfo, size: number) => tf.LayersModel> = {
  mobilenet_v2: (info, size) => buildMobileNetV2(info.alpha as MobileNetV2Alpha, size),
  mobilenet_v1: (info, size) => buildMobileNetV1(info.alpha as MobileNetV1Alpha, size),
  vgg16: (_info, size) => buildVgg16(size),
  resnet50v2: (_info, size) => buildResNet50V2(size),
};

export const BACKBONES: Readonly<Record<BackboneId, BackboneSpec>> = Object.fromEntries(
  BACKBONE_IDS.map((id): [BackboneId, BackboneSpec] => {
    const info = BACKBONE_CATALOG[id];
    const build = (inputSize = DEFAULT_INPUT_SIZE): tf.LayersModel =>
      BUILDERS[info.family](info, checkInputSize(inputSize));
    return [id, { ...info, build }];
  }),
) as Record<BackboneId, BackboneSpec>;

export function getBackbone(id: BackboneId | string): BackboneSpec {
  return BACKBONES[isBackboneId(id) ? id : parseBackboneId(id)];
}

/** Builds the backbone `id` for a square input (default 224). */
export function buildBackbone(id: BackboneId | string, inputSize = DEFAULT_INPUT_SIZE): tf.LayersModel {
  return getBackbone(id).build(inputSize);
}

export interface LayerSummary {
  name: string;
  class: string;
  /** Output shape without the batch dimension. */
  output: number[];
  params: number;
}

export interface ModelSummary {
  backbone: BackboneId;
  input: [number, number, number];
  params: number;
  layers: LayerSummary[];
}

function withoutBatch(shape: tf.Shape | tf.Shape[]): number[] {
  const single = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  return single.slice(1).map((d) => d ?? -1);
}

/** Layer names, classes, output shapes and parameter counts, in the order of `model.summary()`. */
export function summarizeBackbone(id: BackboneId, model: tf.LayersModel): ModelSummary {
  const input = model.inputs[0]?.shape.slice(1) as [number, number, number];
  const layers = model.layers.map((layer): LayerSummary => ({
    name: layer.name,
    class: layer.getClassName(),
    output: withoutBatch(layer.outputShape),
    params: layer.countParams(),
  }));
  return { backbone: id, input, params: model.countParams(), layers };
}
