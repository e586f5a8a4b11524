/**
 * How a head fuses the tabular metadata with the pooled image features: plain data (no TensorFlow.js), so the UI,
 * the CLI and saved runs can name and check it; `./fused-head.ts` builds it.
 *
 * - 'concat': the metadata vector goes through Dense(units, relu), and that is concatenated with the pooled image
 *   features before the head's Dense layers (the "features concatenation" baseline of Pacheco & Krohling 2021).
 * - 'metablock': the image features are first gated by the metadata with the Metadata Processing Block of
 *   Pacheco & Krohling, "An attention-based mechanism to combine images and metadata in deep learning models
 *   applied to skin cancer classification", IEEE JBHI 25(9):3554–3563, 2021 (doi:10.1109/JBHI.2021.3062002):
 *   T = σ(tanh(f(m) ⊙ x) + g(m)), f and g linear maps of the metadata to the feature width; then concatenated with
 *   the metadata embedding as above. Here the block acts on the pooled vector (the paper gates the last feature
 *   maps) because the frozen pipeline caches pooled features, and f and g have no BatchNormalization.
 */
export const FUSIONS = ['concat', 'metablock'] as const;
export type Fusion = (typeof FUSIONS)[number];

export const FUSION_LABELS: Record<Fusion, string> = {
  concat: 'Concatenation: image features ‖ Dense(metadata) → Dense',
  metablock: 'MetaBlock gating (Pacheco & Krohling 2021), then concatenation',
};

export interface MetadataFusion {
  /** Length of the encoded metadata vector (metadataDim of the run's encoding). */
  features: number;
  fusion: Fusion;
  /** Units of the metadata embedding Dense(relu). */
  units: number;
}

export const DEFAULT_METADATA_UNITS = 32;

/** Checks a fusion setting; throws a RangeError naming the field. */
export function metadataFusion(partial: Partial<MetadataFusion> & { features: number }): MetadataFusion {
  const fusion: MetadataFusion = { fusion: 'concat', units: DEFAULT_METADATA_UNITS, ...partial };
  if (!FUSIONS.includes(fusion.fusion)) {
    throw new RangeError(`metadata fusion must be one of ${FUSIONS.join(', ')}; got ${fusion.fusion}`);
  }
  if (!Number.isInteger(fusion.features) || fusion.features < 1) {
    throw new RangeError(`metadata features must be a whole number ≥ 1; got ${fusion.features}`);
  }
  if (!Number.isInteger(fusion.units) || fusion.units < 1) {
    throw new RangeError(`metadata units must be a whole number ≥ 1; got ${fusion.units}`);
  }
  return fusion;
}
