/**
 * Checked inputs of the metrics: class lists, label vectors and probability rows. Errors name the field and the
 * index at fault with the field names of the predictions file (`classes`, `y_true`, `y_pred`, `y_prob`).
 */

export class MetricsInputError extends Error {
  constructor(
    message: string,
    readonly field: string,
    readonly index?: number,
  ) {
    super(message);
    this.name = 'MetricsInputError';
  }
}

/** How far a probability row may sum from 1 (rounded JSON, float32 softmax). */
export const PROBABILITY_SUM_TOLERANCE = 1e-3;

export interface Predictions {
  classes: string[];
  yTrue: number[];
  yPred: number[];
  /** One row per sample, one probability per class; absent when only hard predictions are known. */
  yProb: number[][] | null;
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

export function checkClasses(classes: unknown, field = 'classes'): string[] {
  if (!Array.isArray(classes)) {
    throw new MetricsInputError(`${field} must be an array of class names; got ${describe(classes)}`, field);
  }
  if (classes.length < 2) {
    throw new MetricsInputError(`${field} must list at least 2 classes; got ${classes.length}`, field);
  }
  const seen = new Map<string, number>();
  classes.forEach((name: unknown, i) => {
    if (typeof name !== 'string' || name === '') {
      throw new MetricsInputError(
        `${field}[${i}] must be a non-empty string; got ${describe(name)}`,
        field,
        i,
      );
    }
    const before = seen.get(name);
    if (before !== undefined) {
      throw new MetricsInputError(`${field}[${i}] "${name}" repeats ${field}[${before}]`, field, i);
    }
    seen.set(name, i);
  });
  return classes as string[];
}

/** A vector of class indices 0..nClasses-1. */
export function checkLabels(labels: unknown, nClasses: number, field: string): number[] {
  if (!Array.isArray(labels)) {
    throw new MetricsInputError(`${field} must be an array of class indices; got ${describe(labels)}`, field);
  }
  labels.forEach((v: unknown, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= nClasses) {
      throw new MetricsInputError(
        `${field}[${i}] = ${describe(v)} is not a class index (an integer 0..${nClasses - 1})`,
        field,
        i,
      );
    }
  });
  return labels as number[];
}

/** Rows of nClasses finite probabilities in [0, 1] that sum to 1 (± 1e-3). */
export function checkProbabilities(rows: unknown, nClasses: number, field = 'y_prob'): number[][] {
  if (!Array.isArray(rows)) {
    throw new MetricsInputError(
      `${field} must be an array of probability rows; got ${describe(rows)}`,
      field,
    );
  }
  rows.forEach((row: unknown, i) => {
    if (!Array.isArray(row) || row.length !== nClasses) {
      const got = Array.isArray(row) ? `${row.length} values` : describe(row);
      throw new MetricsInputError(
        `${field}[${i}] must hold ${nClasses} probabilities (one per class); got ${got}`,
        field,
        i,
      );
    }
    let sum = 0;
    row.forEach((p: unknown, j) => {
      if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 1) {
        throw new MetricsInputError(
          `${field}[${i}][${j}] = ${describe(p)} is not a probability in [0, 1]`,
          field,
          i,
        );
      }
      sum += p;
    });
    if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) {
      throw new MetricsInputError(
        `${field}[${i}] sums to ${sum}; probabilities over the classes must sum to 1 (softmax outputs)`,
        field,
        i,
      );
    }
  });
  return rows as number[][];
}

/** Index of the largest value; the first one on ties (as numpy's argmax). */
export function argmax(row: readonly number[]): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if ((row[j] as number) > (row[best] as number)) best = j;
  return best;
}

/**
 * Reads a predictions object `{classes, y_true, y_prob, y_pred?}` (the `metrics` CLI input, or a run's saved
 * predictions). Without `y_pred`, y_pred = argmax of each `y_prob` row; `y_prob` may be left out when `y_pred` is
 * given (AUCs are then unknown).
 */
export function parsePredictions(input: unknown): Predictions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new MetricsInputError(
      `expected an object {"classes", "y_true", "y_prob"}; got ${describe(input)}`,
      '',
    );
  }
  const o = input as Record<string, unknown>;
  const classes = checkClasses(o.classes);
  const yTrue = checkLabels(o.y_true, classes.length, 'y_true');
  if (yTrue.length === 0) throw new MetricsInputError('y_true is empty: there is nothing to score', 'y_true');
  let yProb: number[][] | null = null;
  if (o.y_prob !== undefined || o.y_pred === undefined) {
    yProb = checkProbabilities(o.y_prob, classes.length);
    if (yProb.length !== yTrue.length) {
      throw new MetricsInputError(
        `y_prob has ${yProb.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
        'y_prob',
      );
    }
  }
  let yPred: number[];
  if (o.y_pred !== undefined) {
    yPred = checkLabels(o.y_pred, classes.length, 'y_pred');
    if (yPred.length !== yTrue.length) {
      throw new MetricsInputError(
        `y_pred has ${yPred.length} labels but y_true has ${yTrue.length}; there must be one per sample`,
        'y_pred',
      );
    }
  } else {
    yPred = (yProb as number[][]).map(argmax);
  }
  return { classes, yTrue, yPred, yProb };
}
