/**
 * One class against the rest at a decision threshold: an image is called positive when its probability of the
 * class is ≥ the threshold. What a clinician reads off a screening test:
 *   sensitivity = TP / P,  specificity = TN / N,  PPV = TP / (TP + FP),  NPV = TN / (TN + FN)
 * (null where the denominator is 0).
 */
import { MetricsInputError } from './input.ts';

export interface OperatingPoint {
  threshold: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  sensitivity: number | null;
  specificity: number | null;
  ppv: number | null;
  npv: number | null;
}

const ratio = (num: number, den: number): number | null => (den === 0 ? null : num / den);

function scoresOf(yProb: readonly (readonly number[])[], classIndex: number): number[] {
  return yProb.map((row, i) => {
    const s = row[classIndex];
    if (s === undefined) {
      throw new MetricsInputError(`y_prob[${i}] has no probability for class ${classIndex}`, 'y_prob', i);
    }
    return s;
  });
}

export function operatingPoint(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
  classIndex: number,
  threshold: number,
): OperatingPoint {
  if (yProb.length !== yTrue.length) {
    throw new MetricsInputError(
      `y_prob has ${yProb.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
      'y_prob',
    );
  }
  const scores = scoresOf(yProb, classIndex);
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  scores.forEach((s, i) => {
    const positive = yTrue[i] === classIndex;
    if (s >= threshold) {
      if (positive) tp++;
      else fp++;
    } else if (positive) fn++;
    else tn++;
  });
  return {
    threshold,
    tp,
    fp,
    tn,
    fn,
    sensitivity: ratio(tp, tp + fn),
    specificity: ratio(tn, tn + fp),
    ppv: ratio(tp, tp + fp),
    npv: ratio(tn, tn + fn),
  };
}

/**
 * The highest threshold whose sensitivity reaches `target` (0..1): the k-th highest score among the positives,
 * k = ⌈target · P⌉ (ties at that score only add positives). Null when the class has no positive sample.
 * The highest such threshold is the one with the best specificity.
 */
export function thresholdForSensitivity(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
  classIndex: number,
  target: number,
): number | null {
  if (!(target >= 0 && target <= 1))
    throw new RangeError(`the target sensitivity must be in [0, 1]; got ${target}`);
  const scores = scoresOf(yProb, classIndex);
  const positives = scores.filter((_, i) => yTrue[i] === classIndex).sort((a, b) => b - a);
  if (positives.length === 0) return null;
  // 1e-9 absorbs rounding in target · P (0.07 · 100 = 7.000000000000001).
  const k = Math.max(1, Math.ceil(target * positives.length - 1e-9));
  return positives[k - 1] as number;
}
