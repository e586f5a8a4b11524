import type { Dx } from '../data/dx.ts';

export interface AgeStats {
  count: number;
  mean: number;
  std: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
}

/**
 * The EDA summary, shaped exactly as `npm run -s cli -- eda <csv>` prints it (issue #2's output format).
 * Age figures are before imputation; `ageImputedWith` is the mean used to fill empty ages (the seed's choice).
 */
export interface EdaSummary {
  rows: number;
  lesions: number;
  missing: Record<string, number>;
  classes: Record<Dx, { count: number; percent: number }>;
  age: AgeStats;
  sex: Record<string, number>;
  dx_type: Record<string, number>;
  localization: Record<string, number>;
  /** k images per lesion → number of lesions with k images. */
  images_per_lesion: Record<string, number>;
}
