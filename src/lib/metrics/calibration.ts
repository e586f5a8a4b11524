/**
 * How far predicted probabilities are from observed frequencies: the multiclass Brier score and the expected
 * calibration error (ECE) of the top-label confidence, with the reliability diagram's bins (Guo et al., "On
 * Calibration of Modern Neural Networks", ICML 2017: 15 equal-width bins).
 *
 *   Brier = (1/n) Σ_i Σ_k (p_ik − y_ik)²                 (y one-hot; 0 for a perfect model, at most 2)
 *   conf_i = max_k p_ik,  correct_i = [argmax_k p_ik = y_i]
 *   bin b (of B) holds the samples with b/B < conf_i ≤ (b+1)/B  (conf 0 goes to the first bin)
 *   ECE = Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|
 */
import { argmax, MetricsInputError } from './input.ts';

export const ECE_BINS = 15;

export interface ReliabilityBin {
  /** (lower, upper]: the confidence range of the bin. */
  lower: number;
  upper: number;
  count: number;
  /** Mean top-label confidence of its samples; null when the bin is empty. */
  confidence: number | null;
  /** Fraction of its samples whose top label is right; null when the bin is empty. */
  accuracy: number | null;
}

export interface Calibration {
  brier: number;
  ece: number;
  bins: ReliabilityBin[];
}

function checkAligned(yTrue: readonly number[], yProb: readonly (readonly number[])[]): void {
  if (yTrue.length === 0) throw new MetricsInputError('y_true is empty: there is nothing to score', 'y_true');
  if (yProb.length !== yTrue.length) {
    throw new MetricsInputError(
      `y_prob has ${yProb.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
      'y_prob',
    );
  }
}

/** Mean over samples of Σ_k (p_k − y_k)². */
export function brierScore(yTrue: readonly number[], yProb: readonly (readonly number[])[]): number {
  checkAligned(yTrue, yProb);
  let total = 0;
  yProb.forEach((row, i) => {
    row.forEach((p, k) => {
      const d = p - (k === yTrue[i] ? 1 : 0);
      total += d * d;
    });
  });
  return total / yTrue.length;
}

/** The bin of a confidence: b with b/B < c ≤ (b+1)/B, the bounds computed as the bins report them. */
export function binOf(confidence: number, bins: number): number {
  let b = Math.min(bins - 1, Math.max(0, Math.ceil(confidence * bins) - 1));
  // c·B may round across an edge; the edges themselves decide.
  if (b > 0 && confidence <= b / bins) b--;
  else if (b < bins - 1 && confidence > (b + 1) / bins) b++;
  return b;
}

/** The reliability diagram's bins of the top-label confidence. */
export function reliabilityBins(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
  bins = ECE_BINS,
): ReliabilityBin[] {
  checkAligned(yTrue, yProb);
  if (!Number.isInteger(bins) || bins < 1)
    throw new RangeError(`bins must be a whole number ≥ 1; got ${bins}`);
  const count = new Array<number>(bins).fill(0);
  const confSum = new Array<number>(bins).fill(0);
  const correct = new Array<number>(bins).fill(0);
  yProb.forEach((row, i) => {
    const top = argmax(row);
    const conf = row[top] as number;
    const b = binOf(conf, bins);
    count[b]!++;
    confSum[b]! += conf;
    if (top === yTrue[i]) correct[b]!++;
  });
  return count.map((n, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: n,
    confidence: n === 0 ? null : confSum[b]! / n,
    accuracy: n === 0 ? null : correct[b]! / n,
  }));
}

/** Σ_b |B_b|/n · |acc(B_b) − conf(B_b)| over the bins of `reliabilityBins`. */
export function eceOfBins(bins: readonly ReliabilityBin[]): number {
  const n = bins.reduce((s, b) => s + b.count, 0);
  if (n === 0) return 0;
  return bins.reduce(
    (s, b) => (b.count === 0 ? s : s + (b.count / n) * Math.abs(b.accuracy! - b.confidence!)),
    0,
  );
}

export function expectedCalibrationError(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
  bins = ECE_BINS,
): number {
  return eceOfBins(reliabilityBins(yTrue, yProb, bins));
}

export function calibration(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
  bins = ECE_BINS,
): Calibration {
  const reliability = reliabilityBins(yTrue, yProb, bins);
  return { brier: brierScore(yTrue, yProb), ece: eceOfBins(reliability), bins: reliability };
}
