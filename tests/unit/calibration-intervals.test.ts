import { describe, expect, it } from 'vitest';
import { resamples, resamplingUnits } from '../../src/lib/metrics/bootstrap.ts';
import { expectedCalibrationError } from '../../src/lib/metrics/calibration.ts';
import { calibrationIntervals } from '../../src/lib/metrics/calibration-intervals.ts';
import { applyTemperature, fitTemperature } from '../../src/lib/metrics/temperature.ts';
import { MetricsInputError } from '../../src/lib/metrics/input.ts';
import { createRandom } from '../../src/lib/random.ts';

/** n predictions over 7 classes, right about 60 % of the time with about 95 % confidence, two images per lesion. */
function predictions(n: number, seed: number) {
  const random = createRandom(seed);
  const yTrue = Array.from({ length: n }, () => random.int(7));
  const yProb = yTrue.map((t) => {
    const top = random.next() < 0.6 ? t : (t + 1 + random.int(6)) % 7;
    const raw = Array.from({ length: 7 }, (_, c) => random.next() + (c === top ? 40 : 0));
    const sum = raw.reduce((a, b) => a + b, 0);
    return raw.map((v) => v / sum);
  });
  const groups = yTrue.map((_, i) => `L${Math.floor(i / 2)}`);
  return { yTrue, yProb, groups };
}

describe('the ECE intervals', () => {
  it('score each resample as expectedCalibrationError does on the resampled images', () => {
    const { yTrue, yProb, groups } = predictions(120, 3);
    const scaledProb = applyTemperature(yProb, 2.5);
    for (const seed of [1, 2, 3]) {
      const [sample] = [...resamples(resamplingUnits(yTrue.length, groups), 1, seed)];
      const pick = <T>(xs: readonly T[]) => sample!.map((i) => xs[i] as T);
      const before = expectedCalibrationError(pick(yTrue), pick(yProb));
      const after = expectedCalibrationError(pick(yTrue), pick(scaledProb));
      const r = calibrationIntervals({ yTrue, yProb, scaledProb, groups, iterations: 1, seed });
      expect(r.ece[0]).toBeCloseTo(before, 12);
      expect(r.ece[1]).toBeCloseTo(before, 12);
      expect(r.scaled_ece![0]).toBeCloseTo(after, 12);
      expect(r.change![0]).toBeCloseTo(after - before, 12);
    }
  });

  it('hold the whole split’s ECE, narrow as the split grows, and see no change when nothing changed', () => {
    const widths: number[] = [];
    for (const n of [100, 1600]) {
      const { yTrue, yProb, groups } = predictions(n, 7);
      const r = calibrationIntervals({ yTrue, yProb, scaledProb: yProb, groups });
      const ece = expectedCalibrationError(yTrue, yProb);
      expect(r.ece[0]).toBeLessThanOrEqual(ece);
      expect(r.ece[1]).toBeGreaterThanOrEqual(ece);
      expect(r.change).toEqual([0, 0]);
      widths.push(r.ece[1] - r.ece[0]);
    }
    // The spread of a mean over n lesions shrinks like 1/√n: 16× the images, about a quarter of the width.
    expect(widths[1]!).toBeLessThan(widths[0]! / 2);
  });

  it('tells a real improvement from noise: a temperature fitted on validation lowers an over-confident model’s ECE', () => {
    const { yTrue, yProb, groups } = predictions(1600, 9);
    const val = predictions(1600, 10);
    const t = fitTemperature(val.yTrue, val.yProb).temperature;
    expect(t).toBeGreaterThan(1);
    const r = calibrationIntervals({ yTrue, yProb, scaledProb: applyTemperature(yProb, t), groups });
    expect(r.change![1]).toBeLessThan(0);
    expect(r.scaled_ece![1]).toBeLessThan(r.ece[0]);
  });

  it('refuses misaligned inputs, naming them', () => {
    const { yTrue, yProb } = predictions(10, 1);
    expect(() => calibrationIntervals({ yTrue, yProb, scaledProb: yProb.slice(1), groups: null })).toThrow(
      /scaled y_prob has 9 rows but y_true has 10 labels/,
    );
    expect(() => calibrationIntervals({ yTrue, yProb, scaledProb: null, groups: ['a'] })).toThrow(
      MetricsInputError,
    );
    expect(calibrationIntervals({ yTrue, yProb, scaledProb: null, groups: null }).change).toBeNull();
  });
});
