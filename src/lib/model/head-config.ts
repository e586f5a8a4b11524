/**
 * Classification head settings, their labels, validation and the seed study's defaults: plain data, free of
 * TensorFlow.js, so the UI can offer and check heads; `./heads.ts` builds them.
 */
import type { BackboneId } from './backbones/catalog.ts';
import { metadataFusion, type MetadataFusion } from './fusion.ts';

export const HEAD_KINDS = ['gap-dense', 'gap-dense-dropout-dense'] as const;
export type HeadKind = (typeof HEAD_KINDS)[number];

export interface HeadConfig {
  /** 'gap-dense': GAP → Dense(classes, softmax). 'gap-dense-dropout-dense': GAP → Dense(hiddenUnits, relu) → Dropout → Dense(classes, softmax). */
  kind: HeadKind;
  classes: number;
  /** Units of the hidden Dense layer ('gap-dense-dropout-dense' only). */
  hiddenUnits: number;
  /** Dropout rate before the output layer ('gap-dense-dropout-dense' only). */
  dropout: number;
  /** Tabular metadata fused with the image features (a second input, `metadata`); absent or null: image only. */
  metadata?: MetadataFusion | null;
}

export const HEAD_LABELS: Record<HeadKind, string> = {
  'gap-dense': 'Global average pooling → Dense(softmax)',
  'gap-dense-dropout-dense': 'Global average pooling → Dense(relu) → Dropout → Dense(softmax)',
};

/** HAM10000's seven diagnoses. */
export const DEFAULT_CLASSES = 7;

/** The seed notebook's heads: VGG16 GAP → Dense(7); ResNet50V2 GAP → Dense(128, relu) → Dropout(0.2) → Dense(7). */
export function headConfig(partial: Partial<HeadConfig> & { kind: HeadKind }): HeadConfig {
  const config: HeadConfig = { classes: DEFAULT_CLASSES, hiddenUnits: 128, dropout: 0.2, ...partial };
  if (!HEAD_KINDS.includes(config.kind)) throw new Error(`unknown head "${config.kind}"`);
  if (!Number.isInteger(config.classes) || config.classes < 2) {
    throw new RangeError(`a head needs a whole number of classes ≥ 2, got ${config.classes}`);
  }
  if (!Number.isInteger(config.hiddenUnits) || config.hiddenUnits < 1) {
    throw new RangeError(`hidden units must be a whole number ≥ 1, got ${config.hiddenUnits}`);
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    throw new RangeError(`dropout must be in [0, 1), got ${config.dropout}`);
  }
  if (config.metadata) config.metadata = metadataFusion(config.metadata);
  return config;
}

/** The seed's head for VGG16 and ResNet50V2; MobileNets get the lighter 'gap-dense'. */
export function defaultHeadFor(backbone: BackboneId): HeadConfig {
  return headConfig({ kind: backbone === 'resnet50v2' ? 'gap-dense-dropout-dense' : 'gap-dense' });
}
