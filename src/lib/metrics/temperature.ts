/**
 * Temperature scaling (Guo et al., ICML 2017): one scalar T > 0 divides the logits before the softmax, fitted by
 * minimising the negative log-likelihood on the validation split. The predicted class never changes (dividing all
 * logits of a row by the same T > 0 keeps their order), so the confusion matrix and every argmax metric stay as
 * they are; only the confidences move.
 *
 * The app keeps softmax probabilities, not logits. log p_k = z_k − logsumexp(z): the logits up to a constant per
 * row, which the softmax cancels, so softmax(log p / T) = softmax(z / T). Probabilities are floored at 1e-12 first
 * (a float32 softmax can underflow to 0).
 *
 * With β = 1/T, NLL(β) = (1/n) Σ_i [logsumexp_k(β·l_ik) − β·l_i,y_i] is convex in β (log-sum-exp of affine
 * functions, minus a linear term), so a golden-section search on β finds the minimum.
 */
import { MetricsInputError } from './input.ts';

const FLOOR = 1e-12;
/** The search range of β = 1/T: T from 0.02 to 50. */
const BETA_MIN = 0.02;
const BETA_MAX = 50;

export interface TemperatureFit {
  temperature: number;
  /** Mean negative log-likelihood on the fitting split at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
}

function logRows(yProb: readonly (readonly number[])[]): number[][] {
  return yProb.map((row) => row.map((p) => Math.log(Math.max(p, FLOOR))));
}

function nll(logits: readonly number[][], yTrue: readonly number[], beta: number): number {
  let total = 0;
  logits.forEach((row, i) => {
    let max = -Infinity;
    for (const l of row) max = Math.max(max, beta * l);
    let sum = 0;
    for (const l of row) sum += Math.exp(beta * l - max);
    total += max + Math.log(sum) - beta * (row[yTrue[i] as number] as number);
  });
  return total / logits.length;
}

/** softmax(log p / T) of each row. */
export function applyTemperature(yProb: readonly (readonly number[])[], temperature: number): number[][] {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`the temperature must be a finite number > 0; got ${temperature}`);
  }
  const beta = 1 / temperature;
  return logRows(yProb).map((row) => {
    let max = -Infinity;
    for (const l of row) max = Math.max(max, beta * l);
    const e = row.map((l) => Math.exp(beta * l - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  });
}

/** The T that minimises the mean NLL of `yProb` (e.g. the validation split's) given `yTrue`. */
export function fitTemperature(
  yTrue: readonly number[],
  yProb: readonly (readonly number[])[],
): TemperatureFit {
  if (yTrue.length === 0) throw new MetricsInputError('no samples to fit a temperature on', 'y_true');
  if (yProb.length !== yTrue.length) {
    throw new MetricsInputError(
      `y_prob has ${yProb.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
      'y_prob',
    );
  }
  const logits = logRows(yProb);
  const f = (beta: number): number => nll(logits, yTrue, beta);
  // Golden-section search on β; the bracket shrinks by 0.618 per step, 80 steps reach double precision.
  const g = (Math.sqrt(5) - 1) / 2;
  let a = BETA_MIN;
  let b = BETA_MAX;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  for (let step = 0; step < 100 && b - a > 1e-12 * (1 + Math.abs(a)); step++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  const beta = (a + b) / 2;
  return { temperature: 1 / beta, nllBefore: f(1), nllAfter: f(beta) };
}
