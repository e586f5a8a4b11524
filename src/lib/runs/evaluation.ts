/**
 * What a finished run adds to its test report to be read honestly: 95 % bootstrap confidence intervals of balanced
 * accuracy, macro-F1 and macro AUC (resampling lesions, 1,000 times, fixed seed), calibration (Brier, 15-bin ECE and
 * the reliability bins) before and after temperature scaling fitted on the validation split, and, when asked for,
 * the scores with test-time augmentation next to the plain ones. Computed once when the run is stored (the
 * bootstrap takes about a second), kept in the record as plain data, and checked when read back.
 */
import {
  BOOTSTRAP_ITERATIONS,
  BOOTSTRAP_SEED,
  bootstrapIntervals,
  type Interval,
} from '../metrics/bootstrap.ts';
import { calibration, type ReliabilityBin } from '../metrics/calibration.ts';
import { calibrationIntervals, type CalibrationIntervals } from '../metrics/calibration-intervals.ts';
import { classificationReport } from '../metrics/report.ts';
import { applyTemperature, fitTemperature } from '../metrics/temperature.ts';
import type { FieldReader } from './record.ts';

export interface Intervals {
  balanced_accuracy_ci: Interval;
  macro_f1_ci: Interval;
  macro_auc_ci: Interval | null;
}

export interface CalibrationSummary {
  brier: number;
  ece: number;
  bins: ReliabilityBin[];
}

export interface RunEvaluation {
  bootstrap: { iterations: number; seed: number; resampled: 'lesions' | 'images'; units: number };
  ci: Intervals;
  calibration: CalibrationSummary;
  /** 95 % intervals of the ECE, before and after scaling and of the change (absent in runs stored before them). */
  calibration_ci?: CalibrationIntervals;
  /** Temperature scaling fitted on the validation split; null without validation predictions. */
  temperature: { value: number; calibration: CalibrationSummary } | null;
  /** Test-time augmentation (the mean over four flips); null when the run did not ask for it. */
  tta: {
    balanced_accuracy: number;
    macro_f1: number;
    macro_auc: number | null;
    accuracy: number;
    ci: Intervals;
    calibration: CalibrationSummary;
  } | null;
}

export interface EvaluationInput {
  classes: readonly string[];
  yTrue: readonly number[];
  yProb: readonly (readonly number[])[];
  /** The lesion of each test image; null resamples images. */
  lesionIds: readonly string[] | null;
  val: { yTrue: readonly number[]; yProb: readonly (readonly number[])[] } | null;
  ttaProb: readonly (readonly number[])[] | null;
}

function summary(c: ReturnType<typeof calibration>): CalibrationSummary {
  return { brier: c.brier, ece: c.ece, bins: c.bins };
}

function intervals(r: ReturnType<typeof bootstrapIntervals>): Intervals {
  return {
    balanced_accuracy_ci: r.balanced_accuracy_ci,
    macro_f1_ci: r.macro_f1_ci,
    macro_auc_ci: r.macro_auc_ci,
  };
}

export function evaluateRun(input: EvaluationInput): RunEvaluation {
  const { yTrue, yProb, lesionIds } = input;
  const boot = bootstrapIntervals({ yTrue, yProb, groups: lesionIds });
  let temperature: RunEvaluation['temperature'] = null;
  let scaledProb: number[][] | null = null;
  if (input.val && input.val.yTrue.length > 0) {
    const fit = fitTemperature(input.val.yTrue, input.val.yProb);
    scaledProb = applyTemperature(yProb, fit.temperature);
    temperature = { value: fit.temperature, calibration: summary(calibration(yTrue, scaledProb)) };
  }
  let tta: RunEvaluation['tta'] = null;
  if (input.ttaProb) {
    const report = classificationReport({ classes: input.classes, yTrue, yProb: input.ttaProb });
    tta = {
      balanced_accuracy: report.balancedAccuracy,
      macro_f1: report.macroAvg.f1,
      macro_auc: report.macroAuc,
      accuracy: report.accuracy,
      ci: intervals(bootstrapIntervals({ yTrue, yProb: input.ttaProb, groups: lesionIds })),
      calibration: summary(calibration(yTrue, input.ttaProb)),
    };
  }
  return {
    bootstrap: { iterations: boot.iterations, seed: boot.seed, resampled: boot.resampled, units: boot.units },
    ci: intervals(boot),
    calibration: summary(calibration(yTrue, yProb)),
    calibration_ci: calibrationIntervals({ yTrue, yProb, scaledProb, groups: lesionIds }),
    temperature,
    tta,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Checked reading (a record from storage or a zip)

type Obj = Record<string, unknown>;

export function parseRunEvaluation(value: unknown, r: FieldReader, field = 'evaluation'): RunEvaluation {
  const o = r.object(value, field);
  const k = (base: string, key: string): string => `${base}.${key}`;
  const ratio = (v: unknown, f: string): number => r.number(v, f, { min: 0, max: 1 });
  /** [low, high] within [min, 1]. */
  const span = (v: unknown, f: string, min: number): Interval => {
    const a = r.array(v, f);
    if (a.length !== 2) r.fail(f, `must be [low, high]; got ${a.length} values`);
    const lo = r.number(a[0], `${f}[0]`, { min, max: 1 });
    const hi = r.number(a[1], `${f}[1]`, { min, max: 1 });
    if (lo > hi) r.fail(f, `low ${lo} is above high ${hi}`);
    return [lo, hi];
  };
  const interval = (v: unknown, f: string): Interval => span(v, f, 0);
  const ci = (v: unknown, f: string): Intervals => {
    const c = r.object(v, f);
    return {
      balanced_accuracy_ci: interval(c.balanced_accuracy_ci, k(f, 'balanced_accuracy_ci')),
      macro_f1_ci: interval(c.macro_f1_ci, k(f, 'macro_f1_ci')),
      macro_auc_ci: r.nullable(c.macro_auc_ci, (x) => interval(x, k(f, 'macro_auc_ci'))),
    };
  };
  const calib = (v: unknown, f: string): CalibrationSummary => {
    const c = r.object(v, f);
    const bins = r.array(c.bins, k(f, 'bins')).map((b, i) => {
      const bf = `${k(f, 'bins')}[${i}]`;
      const bo = r.object(b, bf) as Obj;
      return {
        lower: ratio(bo.lower, k(bf, 'lower')),
        upper: ratio(bo.upper, k(bf, 'upper')),
        count: r.integer(bo.count, k(bf, 'count')),
        confidence: r.nullable(bo.confidence, (x) => ratio(x, k(bf, 'confidence'))),
        accuracy: r.nullable(bo.accuracy, (x) => ratio(x, k(bf, 'accuracy'))),
      };
    });
    return {
      brier: r.number(c.brier, k(f, 'brier'), { min: 0, max: 2 }),
      ece: ratio(c.ece, k(f, 'ece')),
      bins,
    };
  };
  const calibCi = (v: unknown, f: string): CalibrationIntervals => {
    const c = r.object(v, f);
    return {
      ece: span(c.ece, k(f, 'ece'), 0),
      scaled_ece: r.nullable(c.scaled_ece, (x) => span(x, k(f, 'scaled_ece'), 0)),
      change: r.nullable(c.change, (x) => span(x, k(f, 'change'), -1)),
    };
  };
  const b = r.object(o.bootstrap, k(field, 'bootstrap'));
  const t = o.temperature === null ? null : r.object(o.temperature, k(field, 'temperature'));
  const a = o.tta === null ? null : r.object(o.tta, k(field, 'tta'));
  return {
    bootstrap: {
      iterations: r.integer(b.iterations, k(field, 'bootstrap.iterations'), 1),
      seed: r.integer(b.seed, k(field, 'bootstrap.seed')),
      resampled: r.oneOf(b.resampled, ['lesions', 'images'] as const, k(field, 'bootstrap.resampled')),
      units: r.integer(b.units, k(field, 'bootstrap.units'), 1),
    },
    ci: ci(o.ci, k(field, 'ci')),
    calibration: calib(o.calibration, k(field, 'calibration')),
    ...(o.calibration_ci === undefined
      ? {}
      : { calibration_ci: calibCi(o.calibration_ci, k(field, 'calibration_ci')) }),
    temperature: t && {
      value: r.number(t.value, k(field, 'temperature.value'), { min: 0 }),
      calibration: calib(t.calibration, k(field, 'temperature.calibration')),
    },
    tta: a && {
      balanced_accuracy: ratio(a.balanced_accuracy, k(field, 'tta.balanced_accuracy')),
      macro_f1: ratio(a.macro_f1, k(field, 'tta.macro_f1')),
      macro_auc: r.nullable(a.macro_auc, (x) => ratio(x, k(field, 'tta.macro_auc'))),
      accuracy: ratio(a.accuracy, k(field, 'tta.accuracy')),
      ci: ci(a.ci, k(field, 'tta.ci')),
      calibration: calib(a.calibration, k(field, 'tta.calibration')),
    },
  };
}

export { BOOTSTRAP_ITERATIONS, BOOTSTRAP_SEED };
