import { readFileSync } from 'node:fs';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { DX, type Dx } from '../../src/lib/data/dx.ts';
import type { LesionRecord } from '../../src/lib/data/types.ts';
import {
  ClassWeightError,
  balancedClassWeights,
  balancedWeights,
  toTfClassWeight,
  trainClassWeights,
} from '../../src/lib/split/classWeights.ts';
import { splitRecords } from '../../src/lib/split/split.ts';

function readHam10000(): LesionRecord[] {
  const text = readFileSync('../shared/data/ham10000/HAM10000_metadata.csv', 'utf8');
  const { data } = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true });
  return data.map((row, i) => ({
    imageId: row.image_id as string,
    lesionId: row.lesion_id as string,
    dx: row.dx as Dx,
    dxType: row.dx_type ?? null,
    age: null,
    sex: null,
    localization: null,
    line: i + 2,
  }));
}

describe('balanced class weights', () => {
  it('computes n_samples / (n_classes × n_c) on hand cases', () => {
    // scikit-learn: compute_class_weight('balanced', classes=[0, 1], y=[0, 0, 0, 1]) = [4/(2·3), 4/(2·1)].
    const two = balancedWeights([3, 1]);
    expect(two[0]).toBeCloseTo(2 / 3, 15);
    expect(two[1]).toBe(2);
    // 280 samples over 7 classes: w_c = 280 / (7 · n_c) = 40 / n_c.
    const w = balancedClassWeights({ akiec: 10, bcc: 20, bkl: 40, df: 5, mel: 80, nv: 100, vasc: 25 });
    expect(w).toEqual({ akiec: 4, bcc: 2, bkl: 1, df: 8, mel: 0.5, nv: 0.4, vasc: 1.6 });
  });

  it('weights the real train split so that every class carries n_train / 7', () => {
    const records = readHam10000();
    const split = splitRecords(records, { seed: 1337 });
    const weights = trainClassWeights(split);
    // Train counts recounted from the assignment, not taken from the split's table.
    const train = records.filter((r) => split.assignment.get(r.imageId) === 'train');
    const nTrain = train.length;
    for (const dx of DX) {
      const n = train.filter((r) => r.dx === dx).length;
      expect(weights[dx]).toBeCloseTo(nTrain / (7 * n), 12);
      expect(n * weights[dx]).toBeCloseTo(nTrain / 7, 9);
    }
    // nv, the majority class, is down-weighted; df, the rarest, up-weighted the most.
    const sorted = [...DX].sort((a, b) => weights[a] - weights[b]);
    expect(sorted[0]).toBe('nv');
    expect(sorted.at(-1)).toBe('df');
    // The weights average to 1 over the training samples.
    expect(train.reduce((s, r) => s + weights[r.dx], 0) / nTrain).toBeCloseTo(1, 12);
  });

  it('converts to the tfjs classWeight object keyed by DX index', () => {
    const w = balancedClassWeights({ akiec: 10, bcc: 20, bkl: 40, df: 5, mel: 80, nv: 100, vasc: 25 });
    expect(toTfClassWeight(w)).toEqual({ 0: 4, 1: 2, 2: 1, 3: 8, 4: 0.5, 5: 0.4, 6: 1.6 });
  });

  it('refuses a class absent from train by default, or gives it weight 0 when asked', () => {
    const counts = { akiec: 0, bcc: 20, bkl: 40, df: 0, mel: 80, nv: 100, vasc: 25 };
    expect(() => balancedClassWeights(counts)).toThrow(ClassWeightError);
    expect(() => balancedClassWeights(counts)).toThrow(/no training images of akiec, df/);
    // 265 samples over the 5 present classes: w_c = 265 / (5 · n_c) = 53 / n_c.
    const w = balancedClassWeights(counts, { absent: 'zero' });
    expect(w.akiec).toBe(0);
    expect(w.df).toBe(0);
    expect(w.bcc).toBeCloseTo(53 / 20, 15);
    expect(w.vasc).toBeCloseTo(53 / 25, 15);
  });

  it('refuses bad counts and an empty train split', () => {
    expect(() => balancedWeights([1, 2.5], ['a', 'b'])).toThrow(/class b: count 2.5/);
    expect(() => balancedWeights([0, 0])).toThrow(/no training samples/);
  });
});
