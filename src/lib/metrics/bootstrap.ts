/**
 * 95 % bootstrap confidence intervals of the test split's balanced accuracy, macro-F1 and macro AUC, resampling
 * lesions, not images: images of one lesion are not independent (HAM10000 has 10,015 images of 7,470 lesions), so
 * resampling images would understate the spread. Each of `iterations` resamples draws as many lesions as the split
 * has, with replacement, and takes every image of each drawn lesion (a lesion drawn twice counts twice). The
 * interval is the percentile one: the 2.5th and 97.5th percentiles of the resampled metric (linear interpolation
 * between order statistics, numpy's default). Draws come from the seeded stream of src/lib/random.ts, so the same
 * predictions and seed give the same interval everywhere.
 *
 * Each resample's metrics are the report's (src/lib/metrics/report.ts): balanced accuracy = mean recall over the
 * classes present; macro-F1 over every class (a class absent and never predicted scores 0); macro AUC = mean of the
 * defined one-vs-rest AUCs.
 */
import { createRandom } from '../random.ts';
import { argmax, MetricsInputError } from './input.ts';
import { rocAuc } from './roc.ts';

export const BOOTSTRAP_ITERATIONS = 1000;
export const BOOTSTRAP_SEED = 1337;

export type Interval = [number, number];

export interface BootstrapInput {
  yTrue: readonly number[];
  /** One probability row per sample (the predicted class is its argmax). */
  yProb: readonly (readonly number[])[];
  /** The lesion of each sample; null resamples samples one by one. */
  groups: readonly string[] | null;
  iterations?: number;
  seed?: number;
  /** Two-sided level, 0.95 by default. */
  level?: number;
}

export interface BootstrapResult {
  balanced_accuracy_ci: Interval;
  macro_f1_ci: Interval;
  /** null when no resample had a defined macro AUC. */
  macro_auc_ci: Interval | null;
  iterations: number;
  seed: number;
  level: number;
  /** What was resampled and how many of them there were. */
  resampled: 'lesions' | 'images';
  units: number;
}

/** Quantile q of sorted values, linear between order statistics (numpy's default, "type 7"). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] as number) + (pos - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

/** The two-sided percentile interval of resampled values at `level` (sorts `values` in place). */
export function percentileInterval(values: number[], level: number): Interval {
  const alpha = (1 - level) / 2;
  const sorted = values.sort((a, b) => a - b);
  return [quantile(sorted, alpha), quantile(sorted, 1 - alpha)];
}

/** What is resampled: the images of each lesion (in order of first appearance), or each image on its own. */
export function resamplingUnits(samples: number, groups: readonly string[] | null): number[][] {
  if (!groups) return Array.from({ length: samples }, (_, i) => [i]);
  const byGroup = new Map<string, number[]>();
  groups.forEach((g, i) => {
    let members = byGroup.get(g);
    if (!members) byGroup.set(g, (members = []));
    members.push(i);
  });
  return [...byGroup.values()];
}

/** `iterations` resamples: as many units as there are, drawn with replacement, each as its samples' indices. */
export function* resamples(
  units: readonly (readonly number[])[],
  iterations: number,
  seed: number,
): Generator<number[]> {
  const random = createRandom(seed);
  for (let r = 0; r < iterations; r++) {
    const sample: number[] = [];
    for (let u = 0; u < units.length; u++) sample.push(...(units[random.int(units.length)] as number[]));
    yield sample;
  }
}

interface Scores {
  balancedAccuracy: number;
  macroF1: number;
  macroAuc: number | null;
}

function scoreSample(
  sample: readonly number[],
  yTrue: readonly number[],
  yPred: readonly number[],
  yProb: readonly (readonly number[])[],
  k: number,
): Scores {
  const tp = new Array<number>(k).fill(0);
  const support = new Array<number>(k).fill(0);
  const predicted = new Array<number>(k).fill(0);
  for (const i of sample) {
    const t = yTrue[i] as number;
    const p = yPred[i] as number;
    support[t]!++;
    predicted[p]!++;
    if (t === p) tp[t]!++;
  }
  let recallSum = 0;
  let present = 0;
  let f1Sum = 0;
  for (let c = 0; c < k; c++) {
    if (support[c]! > 0) {
      recallSum += tp[c]! / support[c]!;
      present++;
    }
    const den = support[c]! + predicted[c]!;
    f1Sum += den === 0 ? 0 : (2 * tp[c]!) / den;
  }
  let aucSum = 0;
  let aucCount = 0;
  for (let c = 0; c < k; c++) {
    if (support[c] === 0 || support[c] === sample.length) continue;
    const auc = rocAuc(
      sample.map((i) => yTrue[i] === c),
      sample.map((i) => (yProb[i] as readonly number[])[c] as number),
    );
    if (auc !== null) {
      aucSum += auc;
      aucCount++;
    }
  }
  return {
    balancedAccuracy: recallSum / present,
    macroF1: f1Sum / k,
    macroAuc: aucCount === 0 ? null : aucSum / aucCount,
  };
}

export function bootstrapIntervals(input: BootstrapInput): BootstrapResult {
  const { yTrue, yProb, groups } = input;
  const iterations = input.iterations ?? BOOTSTRAP_ITERATIONS;
  const seed = input.seed ?? BOOTSTRAP_SEED;
  const level = input.level ?? 0.95;
  if (yTrue.length === 0)
    throw new MetricsInputError('y_true is empty: there is nothing to resample', 'y_true');
  if (yProb.length !== yTrue.length) {
    throw new MetricsInputError(
      `y_prob has ${yProb.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
      'y_prob',
    );
  }
  if (groups && groups.length !== yTrue.length) {
    throw new MetricsInputError(
      `${groups.length} lesion ids for ${yTrue.length} samples; there must be one per sample`,
      'lesion_ids',
    );
  }
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`iterations must be a whole number ≥ 1; got ${iterations}`);
  }
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1); got ${level}`);
  const k = (yProb[0] as readonly number[]).length;
  const yPred = yProb.map(argmax);
  const units = resamplingUnits(yTrue.length, groups);
  const ba: number[] = [];
  const f1: number[] = [];
  const auc: number[] = [];
  for (const sample of resamples(units, iterations, seed)) {
    const s = scoreSample(sample, yTrue, yPred, yProb, k);
    ba.push(s.balancedAccuracy);
    f1.push(s.macroF1);
    if (s.macroAuc !== null) auc.push(s.macroAuc);
  }
  return {
    balanced_accuracy_ci: percentileInterval(ba, level),
    macro_f1_ci: percentileInterval(f1, level),
    macro_auc_ci: auc.length === 0 ? null : percentileInterval(auc, level),
    iterations,
    seed,
    level,
    resampled: groups ? 'lesions' : 'images',
    units: units.length,
  };
}
