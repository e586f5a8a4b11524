import { describe, expect, it } from 'vitest';
import { classificationReport } from '../../src/lib/metrics/report.ts';
import {
  binOf,
  brierScore,
  calibration,
  expectedCalibrationError,
  reliabilityBins,
} from '../../src/lib/metrics/calibration.ts';
import { applyTemperature, fitTemperature } from '../../src/lib/metrics/temperature.ts';
import { operatingPoint, thresholdForSensitivity } from '../../src/lib/metrics/operating-point.ts';
import { bootstrapIntervals, quantile } from '../../src/lib/metrics/bootstrap.ts';
import { argmax } from '../../src/lib/metrics/input.ts';
import { createRandom } from '../../src/lib/random.ts';

describe('Brier score', () => {
  it('is the mean over samples of Σ_k (p_k − y_k)²', () => {
    // [0.7, 0.2, 0.1] true 0: 0.3² + 0.2² + 0.1² = 0.14; [0.2, 0.5, 0.3] true 2: 0.2² + 0.5² + 0.7² = 0.78.
    expect(
      brierScore(
        [0, 2],
        [
          [0.7, 0.2, 0.1],
          [0.2, 0.5, 0.3],
        ],
      ),
    ).toBeCloseTo(0.46, 12);
    expect(brierScore([1], [[0, 1, 0]])).toBe(0);
    expect(brierScore([0], [[0, 1]])).toBe(2);
  });

  it('names a misaligned input', () => {
    expect(() => brierScore([0, 1], [[1, 0]])).toThrow(/y_prob has 1 rows but y_true has 2 labels/);
  });
});

describe('expected calibration error (15 equal-width bins of the top-label confidence)', () => {
  it('puts a confidence in the bin (b/15, (b+1)/15], edges included above', () => {
    expect(binOf(0, 15)).toBe(0);
    expect(binOf(1 / 15, 15)).toBe(0);
    expect(binOf(2 / 15, 15)).toBe(1);
    expect(binOf(0.5, 15)).toBe(7);
    expect(binOf(0.95, 15)).toBe(14);
    expect(binOf(1, 15)).toBe(14);
    for (let b = 1; b <= 15; b++) expect(binOf(b / 15, 15)).toBe(b - 1);
  });

  it('weights each bin’s |accuracy − confidence| by its share of samples', () => {
    // Two samples at 0.95 (one right, one wrong): bin 14, accuracy 0.5, confidence 0.95 → 2/4 · 0.45.
    // Two at 0.5 (the first class wins the tie, both right): bin 7, accuracy 1, confidence 0.5 → 2/4 · 0.5.
    const yTrue = [0, 1, 0, 0];
    const yProb = [
      [0.95, 0.05],
      [0.95, 0.05],
      [0.5, 0.5],
      [0.5, 0.5],
    ];
    expect(expectedCalibrationError(yTrue, yProb)).toBeCloseTo(0.225 + 0.25, 12);
    const bins = reliabilityBins(yTrue, yProb);
    expect(bins).toHaveLength(15);
    expect(bins[14]).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(bins[14]!.confidence).toBeCloseTo(0.95, 12);
    expect(bins[7]).toMatchObject({ count: 2, accuracy: 1, confidence: 0.5 });
    expect(bins.filter((b) => b.count === 0).every((b) => b.accuracy === null)).toBe(true);
    const c = calibration(yTrue, yProb);
    expect(c.ece).toBeCloseTo(0.475, 12);
    // Brier: 2·0.05² + (0.95² + 0.95²) + 2·(0.5² + 0.5²) = 0.005 + 1.805 + 1 → / 4.
    expect(c.brier).toBeCloseTo((0.005 + 1.805 + 1) / 4, 12);
  });

  it('is 0 for a model whose confidence matches its accuracy', () => {
    // Four samples at 0.75, three right.
    const yProb = [0, 1, 2, 3].map(() => [0.75, 0.25]);
    expect(expectedCalibrationError([0, 0, 0, 1], yProb)).toBeCloseTo(0, 12);
  });
});

describe('temperature scaling', () => {
  // Four samples at [0.9, 0.1] (log-odds ln 9), three of them right. With β = 1/T the fitted probability of the
  // top class is σ(β ln 9); the NLL is least where it equals the accuracy 0.75: β ln 9 = ln 3, β = 1/2, T = 2.
  const yTrue = [0, 0, 0, 1];
  const yProb = [0, 1, 2, 3].map(() => [0.9, 0.1]);

  it('fits T by the validation NLL (hand-computed T = 2)', () => {
    const fit = fitTemperature(yTrue, yProb);
    expect(fit.temperature).toBeCloseTo(2, 6);
    // NLL at T = 1: −(3 ln 0.9 + ln 0.1)/4; at T = 2: −(3 ln 0.75 + ln 0.25)/4.
    expect(fit.nllBefore).toBeCloseTo(-(3 * Math.log(0.9) + Math.log(0.1)) / 4, 10);
    expect(fit.nllAfter).toBeCloseTo(-(3 * Math.log(0.75) + Math.log(0.25)) / 4, 10);
  });

  it('divides the log-probabilities by T before the softmax: 0.9/0.1 at T = 2 is 0.75/0.25', () => {
    const [row] = applyTemperature([[0.9, 0.1]], 2);
    expect(row![0]).toBeCloseTo(0.75, 12);
    expect(row![1]).toBeCloseTo(0.25, 12);
    expect(expectedCalibrationError(yTrue, yProb)).toBeCloseTo(0.15, 12);
    expect(expectedCalibrationError(yTrue, applyTemperature(yProb, 2))).toBeCloseTo(0, 12);
  });

  it('never changes the predicted class', () => {
    const random = createRandom(7);
    const rows = Array.from({ length: 200 }, () => {
      const raw = Array.from({ length: 7 }, () => random.next() ** 3);
      const sum = raw.reduce((a, b) => a + b, 0);
      return raw.map((v) => v / sum);
    });
    for (const t of [0.3, 0.9, 1.7, 8]) {
      expect(applyTemperature(rows, t).map(argmax)).toEqual(rows.map(argmax));
    }
  });

  it('refuses a temperature that is not > 0', () => {
    expect(() => applyTemperature([[0.5, 0.5]], 0)).toThrow(/temperature must be a finite number > 0/);
  });
});

describe('operating point, one class against the rest', () => {
  // Class 0 (say mel) against the rest: three positives scoring 0.9, 0.6, 0.3; five negatives 0.7, 0.2, 0.1, 0.05, 0.4.
  const yTrue = [0, 0, 0, 1, 1, 1, 1, 1];
  const yProb = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.05, 0.4].map((p) => [p, 1 - p]);

  it('counts ≥ threshold as positive', () => {
    // At 0.5: TP 2 (0.9, 0.6), FN 1 (0.3), FP 1 (0.7), TN 4.
    expect(operatingPoint(yTrue, yProb, 0, 0.5)).toEqual({
      threshold: 0.5,
      tp: 2,
      fp: 1,
      tn: 4,
      fn: 1,
      sensitivity: 2 / 3,
      specificity: 4 / 5,
      ppv: 2 / 3,
      npv: 4 / 5,
    });
    // At 0: everything is positive, NPV undefined.
    expect(operatingPoint(yTrue, yProb, 0, 0)).toMatchObject({ sensitivity: 1, specificity: 0, npv: null });
  });

  it('finds the highest threshold that reaches a sensitivity', () => {
    // 90 % of 3 positives needs all 3: the lowest positive score, 0.3 (then FP = 0.7 and 0.4).
    expect(thresholdForSensitivity(yTrue, yProb, 0, 0.9)).toBe(0.3);
    expect(operatingPoint(yTrue, yProb, 0, 0.3)).toMatchObject({ sensitivity: 1, fp: 2, specificity: 3 / 5 });
    // 60 % needs ⌈1.8⌉ = 2: the second highest, 0.6.
    expect(thresholdForSensitivity(yTrue, yProb, 0, 0.6)).toBe(0.6);
    expect(
      thresholdForSensitivity(
        [1, 1],
        [
          [0.2, 0.8],
          [0.4, 0.6],
        ],
        0,
        0.9,
      ),
    ).toBeNull();
  });
});

describe('bootstrap confidence intervals (resampling lesions)', () => {
  it('collapses to the point value when there is one lesion', () => {
    const r = bootstrapIntervals({
      yTrue: [0, 1, 1],
      yProb: [
        [0.8, 0.2],
        [0.3, 0.7],
        [0.6, 0.4],
      ],
      groups: ['L1', 'L1', 'L1'],
      iterations: 50,
    });
    // Recall 1 and 1/2 → 0.75; F1: class 0 2·1/(1+2) = 2/3, class 1 2·1/(2+1) = 2/3; AUC: 0.8 vs 0.3/0.6 → 1.
    expect(r.balanced_accuracy_ci).toEqual([0.75, 0.75]);
    expect(r.macro_f1_ci[0]).toBeCloseTo(2 / 3, 12);
    expect(r.macro_f1_ci[1]).toBeCloseTo(2 / 3, 12);
    expect(r.macro_auc_ci).toEqual([1, 1]);
    expect(r).toMatchObject({ resampled: 'lesions', units: 1, iterations: 50, seed: 1337, level: 0.95 });
  });

  it('spans the resamples of two lesions: AA, AB, BB (hand-computed)', () => {
    // Lesion A: two class-0 images predicted 0; lesion B: two class-0 images predicted 1.
    // AA: balanced accuracy 1, macro-F1 (1 + 0)/2 = 0.5; AB: 0.5 and (4/6 + 0)/2; BB: 0 and 0.
    // P(AA) = P(BB) = 1/4, so with 1,000 draws the 2.5th and 97.5th percentiles are the extremes.
    const r = bootstrapIntervals({
      yTrue: [0, 0, 0, 0],
      yProb: [
        [0.9, 0.1],
        [0.8, 0.2],
        [0.3, 0.7],
        [0.2, 0.8],
      ],
      groups: ['A', 'A', 'B', 'B'],
    });
    expect(r.balanced_accuracy_ci).toEqual([0, 1]);
    expect(r.macro_f1_ci).toEqual([0, 0.5]);
    // Only class 0 is ever present: no AUC is defined.
    expect(r.macro_auc_ci).toBeNull();
    expect(r.iterations).toBe(1000);
  });

  it('scores each resample as the classification report does, with the seeded draws', () => {
    const random = createRandom(3);
    const n = 60;
    const groups = Array.from({ length: n }, (_, i) => `L${Math.floor(i / 3)}`);
    const yTrue = Array.from({ length: n }, () => random.int(3));
    const yProb = yTrue.map((t) => {
      const raw = [0, 1, 2].map((c) => random.next() + (c === t ? 0.6 : 0));
      const s = raw.reduce((a, b) => a + b, 0);
      return raw.map((v) => v / s);
    });
    const iterations = 40;
    const r = bootstrapIntervals({ yTrue, yProb, groups, iterations, seed: 11 });
    // The same draws, scored with classificationReport.
    const draws = createRandom(11);
    const units = Array.from({ length: 20 }, (_, u) => [3 * u, 3 * u + 1, 3 * u + 2]);
    const ba: number[] = [];
    const f1: number[] = [];
    const auc: number[] = [];
    for (let it = 0; it < iterations; it++) {
      const sample = units.flatMap(() => units[draws.int(units.length)]!);
      const report = classificationReport({
        classes: ['a', 'b', 'c'],
        yTrue: sample.map((i) => yTrue[i]!),
        yProb: sample.map((i) => yProb[i]!),
      });
      ba.push(report.balancedAccuracy);
      f1.push(report.macroAvg.f1);
      if (report.macroAuc !== null) auc.push(report.macroAuc);
    }
    const ci = (v: number[]) => {
      const s = [...v].sort((a, b) => a - b);
      return [quantile(s, 0.025), quantile(s, 0.975)];
    };
    expect(r.balanced_accuracy_ci[0]).toBeCloseTo(ci(ba)[0]!, 12);
    expect(r.balanced_accuracy_ci[1]).toBeCloseTo(ci(ba)[1]!, 12);
    expect(r.macro_f1_ci[0]).toBeCloseTo(ci(f1)[0]!, 12);
    expect(r.macro_f1_ci[1]).toBeCloseTo(ci(f1)[1]!, 12);
    expect(r.macro_auc_ci![0]).toBeCloseTo(ci(auc)[0]!, 12);
    expect(r.macro_auc_ci![1]).toBeCloseTo(ci(auc)[1]!, 12);
    // Same seed, same interval; images instead of lesions when no groups are given.
    expect(bootstrapIntervals({ yTrue, yProb, groups, iterations, seed: 11 })).toEqual(r);
    expect(bootstrapIntervals({ yTrue, yProb, groups: null, iterations })).toMatchObject({
      resampled: 'images',
      units: n,
    });
  });

  it('interpolates percentiles as numpy does', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([0, 10], 0.025)).toBeCloseTo(0.25, 12);
    expect(quantile([5], 0.975)).toBe(5);
  });
});
