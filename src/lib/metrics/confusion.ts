/** Confusion matrices, in the convention of scikit-learn's confusion_matrix. */
import { MetricsInputError } from './input.ts';

/**
 * C[i][j] = number of samples whose true class is i and predicted class is j (rows = true, columns = predicted),
 * in the order of the class list. Labels must be class indices 0..nClasses-1.
 */
export function confusionMatrix(
  yTrue: readonly number[],
  yPred: readonly number[],
  nClasses: number,
): number[][] {
  if (yTrue.length !== yPred.length) {
    throw new MetricsInputError(
      `y_pred has ${yPred.length} labels but y_true has ${yTrue.length}; there must be one per sample`,
      'y_pred',
    );
  }
  const matrix = Array.from({ length: nClasses }, () => new Array<number>(nClasses).fill(0));
  yTrue.forEach((t, i) => {
    const p = yPred[i] as number;
    const row = matrix[t];
    if (!Number.isInteger(t) || row === undefined) {
      throw new MetricsInputError(
        `y_true[${i}] = ${t} is not a class index (0..${nClasses - 1})`,
        'y_true',
        i,
      );
    }
    if (!Number.isInteger(p) || p < 0 || p >= nClasses) {
      throw new MetricsInputError(
        `y_pred[${i}] = ${p} is not a class index (0..${nClasses - 1})`,
        'y_pred',
        i,
      );
    }
    row[p] = (row[p] as number) + 1;
  });
  return matrix;
}

/**
 * Row-normalised matrix (scikit-learn's normalize='true'): N[i][j] = C[i][j] / Σ_k C[i][k], the share of class i's
 * samples predicted as j; its diagonal is the per-class recall. A class with no samples gets a row of zeros
 * (scikit-learn's nan_to_num).
 */
export function normalizeRows(matrix: readonly (readonly number[])[]): number[][] {
  return matrix.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((c) => (total === 0 ? 0 : c / total));
  });
}
