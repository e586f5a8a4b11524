/**
 * ROC curves and their area, as scikit-learn's roc_curve (drop_intermediate=True, first threshold +∞) and
 * roc_auc_score. One-vs-rest for several classes: class c is "positive", every other class "negative", and the
 * score is the predicted probability of c.
 */
import { MetricsInputError } from './input.ts';

export interface RocCurve {
  /** False-positive rate FP(t) / N at each threshold, from 0 to 1. */
  fpr: number[];
  /** True-positive rate TP(t) / P at each threshold, from 0 to 1. */
  tpr: number[];
  /**
   * Decreasing; a sample counts as positive when its score ≥ threshold. The first is +∞ (no sample positive),
   * so the curve starts at (0, 0); JSON writes it as null.
   */
  thresholds: number[];
  positives: number;
  negatives: number;
}

/**
 * Cumulative counts at each distinct score, highest first: at the k-th distinct score s_k,
 *   tps_k = #positives with score ≥ s_k,  fps_k = #negatives with score ≥ s_k.
 * Tied scores form one step, so a tie between a positive and a negative is a diagonal segment of the curve.
 */
function cumulativeCounts(
  isPositive: readonly boolean[],
  scores: readonly number[],
): { tps: number[]; fps: number[]; thresholds: number[] } {
  if (isPositive.length !== scores.length) {
    throw new MetricsInputError(`${scores.length} scores for ${isPositive.length} labels`, 'y_prob');
  }
  scores.forEach((s, i) => {
    if (!Number.isFinite(s))
      throw new MetricsInputError(`score ${i} = ${s} is not a finite number`, 'y_prob', i);
  });
  const order = scores.map((_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number));
  const tps: number[] = [];
  const fps: number[] = [];
  const thresholds: number[] = [];
  let tp = 0;
  let fp = 0;
  order.forEach((i, k) => {
    if (isPositive[i]) tp++;
    else fp++;
    const next = order[k + 1];
    if (next === undefined || scores[next] !== scores[i]) {
      tps.push(tp);
      fps.push(fp);
      thresholds.push(scores[i] as number);
    }
  });
  return { tps, fps, thresholds };
}

/**
 * The ROC curve of binary labels and scores; null when it is undefined (no positive or no negative sample:
 * TPR or FPR would divide by zero). Collinear intermediate points are dropped as in scikit-learn: a point is kept
 * when it is the first or last, or when the second difference of fps or tps there is nonzero (a corner).
 */
export function rocCurve(
  isPositive: readonly boolean[],
  scores: readonly number[],
  options: { dropIntermediate?: boolean } = {},
): RocCurve | null {
  let { tps, fps, thresholds } = cumulativeCounts(isPositive, scores);
  const positives = tps.at(-1) ?? 0;
  const negatives = fps.at(-1) ?? 0;
  if (positives === 0 || negatives === 0) return null;
  if ((options.dropIntermediate ?? true) && tps.length > 2) {
    const keep = tps.map((_, k) => {
      if (k === 0 || k === tps.length - 1) return true;
      const d2 = (a: number[]): number => (a[k + 1] as number) - 2 * (a[k] as number) + (a[k - 1] as number);
      return d2(fps) !== 0 || d2(tps) !== 0;
    });
    tps = tps.filter((_, k) => keep[k]);
    fps = fps.filter((_, k) => keep[k]);
    thresholds = thresholds.filter((_, k) => keep[k]);
  }
  return {
    fpr: [0, ...fps.map((f) => f / negatives)],
    tpr: [0, ...tps.map((t) => t / positives)],
    thresholds: [Infinity, ...thresholds],
    positives,
    negatives,
  };
}

/**
 * Area under the ROC curve by the trapezoidal rule over every distinct threshold, from (0, 0):
 *   AUC = Σ_k (FPR_k − FPR_{k−1}) · (TPR_k + TPR_{k−1}) / 2
 *       = Σ_k (fps_k − fps_{k−1}) · (tps_k + tps_{k−1}) / (2 · P · N)
 * computed on integer counts, so the only rounding is the final division. This equals the Mann–Whitney
 * probability that a random positive scores above a random negative, a tie counting ½ (the diagonal segment a
 * tie makes), which is what scikit-learn's roc_auc_score gives. null when undefined (no positives or negatives).
 */
export function rocAuc(isPositive: readonly boolean[], scores: readonly number[]): number | null {
  const { tps, fps } = cumulativeCounts(isPositive, scores);
  const positives = tps.at(-1) ?? 0;
  const negatives = fps.at(-1) ?? 0;
  if (positives === 0 || negatives === 0) return null;
  let twiceArea = 0;
  let prevTp = 0;
  let prevFp = 0;
  tps.forEach((tp, k) => {
    const fp = fps[k] as number;
    twiceArea += (fp - prevFp) * (tp + prevTp);
    prevTp = tp;
    prevFp = fp;
  });
  return twiceArea / (2 * positives * negatives);
}

export interface OneVsRest {
  curve: RocCurve | null;
  auc: number | null;
}

/** One-vs-rest ROC curve and AUC per class, from class-index labels and per-class probability rows. */
export function oneVsRestRoc(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
  nClasses: number,
): OneVsRest[] {
  if (yProb.length !== yTrue.length) {
    throw new MetricsInputError(
      `y_prob has ${yProb.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
      'y_prob',
    );
  }
  return Array.from({ length: nClasses }, (_, c) => {
    const isPositive = yTrue.map((t) => t === c);
    const scores = yProb.map((row, i) => {
      const s = row[c];
      if (s === undefined) {
        throw new MetricsInputError(
          `y_prob[${i}] has ${row.length} values; expected ${nClasses}`,
          'y_prob',
          i,
        );
      }
      return s;
    });
    return { curve: rocCurve(isPositive, scores), auc: rocAuc(isPositive, scores) };
  });
}
