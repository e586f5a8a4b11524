/**
 * How much the test split's ECE can be trusted: 95 % bootstrap intervals of the ECE before and after temperature
 * scaling, and of the change scaling made, from the same resamples of lesions as the scores' intervals
 * (src/lib/metrics/bootstrap.ts). On a test split of ~100 images the 15-bin ECE moves by several hundredths from
 * one resample to the next, so a scaling that "made ECE worse" there may be noise; the change's interval is paired
 * (both ECEs of a resample come from the same images), which is what tells a real change from that noise.
 */
import {
  BOOTSTRAP_ITERATIONS,
  BOOTSTRAP_SEED,
  percentileInterval,
  resamples,
  resamplingUnits,
  type Interval,
} from './bootstrap.ts';
import { binOf, ECE_BINS } from './calibration.ts';
import { argmax, MetricsInputError } from './input.ts';

export interface CalibrationIntervalsInput {
  yTrue: readonly number[];
  yProb: readonly (readonly number[])[];
  /** The same images' probabilities after temperature scaling; null when there is none. */
  scaledProb: readonly (readonly number[])[] | null;
  /** The lesion of each sample; null resamples samples one by one. */
  groups: readonly string[] | null;
  iterations?: number;
  seed?: number;
  level?: number;
}

export interface CalibrationIntervals {
  ece: Interval;
  /** null without scaled probabilities. */
  scaled_ece: Interval | null;
  /** ECE after scaling minus ECE before, per resample; null without scaled probabilities. */
  change: Interval | null;
}

/** Each sample's bin and whether its top label is right, and its confidence: what the ECE of any resample needs. */
interface TopLabels {
  bin: Int32Array;
  confidence: Float64Array;
  correct: Uint8Array;
}

function topLabels(yTrue: readonly number[], yProb: readonly (readonly number[])[]): TopLabels {
  const n = yTrue.length;
  const out: TopLabels = {
    bin: new Int32Array(n),
    confidence: new Float64Array(n),
    correct: new Uint8Array(n),
  };
  yProb.forEach((row, i) => {
    const top = argmax(row);
    const conf = row[top] as number;
    out.bin[i] = binOf(conf, ECE_BINS);
    out.confidence[i] = conf;
    out.correct[i] = top === yTrue[i] ? 1 : 0;
  });
  return out;
}

/** Σ_b |B_b|/n · |acc(B_b) − conf(B_b)| = Σ_b |correct_b − Σ conf_b| / n over the sample's bins. */
function eceOfSample(sample: readonly number[], t: TopLabels, gap: Float64Array): number {
  gap.fill(0);
  for (const i of sample) gap[t.bin[i] as number]! += (t.correct[i] as number) - (t.confidence[i] as number);
  let total = 0;
  for (const g of gap) total += Math.abs(g);
  return total / sample.length;
}

export function calibrationIntervals(input: CalibrationIntervalsInput): CalibrationIntervals {
  const { yTrue, yProb, scaledProb, groups } = input;
  const iterations = input.iterations ?? BOOTSTRAP_ITERATIONS;
  const seed = input.seed ?? BOOTSTRAP_SEED;
  const level = input.level ?? 0.95;
  if (yTrue.length === 0)
    throw new MetricsInputError('y_true is empty: there is nothing to resample', 'y_true');
  for (const [name, rows] of [
    ['y_prob', yProb],
    ['scaled y_prob', scaledProb],
  ] as const) {
    if (rows && rows.length !== yTrue.length) {
      throw new MetricsInputError(
        `${name} has ${rows.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
        'y_prob',
      );
    }
  }
  if (groups && groups.length !== yTrue.length) {
    throw new MetricsInputError(
      `${groups.length} lesion ids for ${yTrue.length} samples; there must be one per sample`,
      'lesion_ids',
    );
  }
  const before = topLabels(yTrue, yProb);
  const after = scaledProb ? topLabels(yTrue, scaledProb) : null;
  const gap = new Float64Array(ECE_BINS);
  const ece: number[] = [];
  const scaled: number[] = [];
  const change: number[] = [];
  for (const sample of resamples(resamplingUnits(yTrue.length, groups), iterations, seed)) {
    const e = eceOfSample(sample, before, gap);
    ece.push(e);
    if (after) {
      const s = eceOfSample(sample, after, gap);
      scaled.push(s);
      change.push(s - e);
    }
  }
  return {
    ece: percentileInterval(ece, level),
    scaled_ece: after ? percentileInterval(scaled, level) : null,
    change: after ? percentileInterval(change, level) : null,
  };
}
