import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { lesionFolds } from '../../src/lib/split/folds.ts';
import { spread } from '../../src/cli/node/crossval.ts';
import { flipPixels } from '../../src/lib/train/tta.ts';

const CSV = '../shared/data/ham10000/HAM10000_metadata.csv';
const { records } = parseMetadata(readFileSync(CSV, 'utf8'), 'HAM10000_metadata.csv');

describe('lesion-grouped stratified folds', () => {
  const folds = lesionFolds(records, 5, 1337);

  it('puts every image in one fold and every lesion in one fold', () => {
    expect(folds.assignment.size).toBe(records.length);
    const foldOfLesion = new Map<string, number>();
    for (const r of records) {
      const f = folds.assignment.get(r.imageId)!;
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(5);
      const before = foldOfLesion.get(r.lesionId!);
      if (before !== undefined) expect(f).toBe(before);
      foldOfLesion.set(r.lesionId!, f);
    }
    expect(folds.totals.reduce((a, b) => a + b, 0)).toBe(records.length);
  });

  it('spreads each diagnosis evenly: every fold within 2 % of a fifth of the class (± its largest lesion)', () => {
    for (const dx of DX) {
      const counts = folds.table[dx];
      const n = counts.reduce((a, b) => a + b, 0);
      const perLesion = new Map<string | null, number>();
      for (const r of records)
        if (r.dx === dx) perLesion.set(r.lesionId, (perLesion.get(r.lesionId) ?? 0) + 1);
      const largest = Math.max(...perLesion.values());
      for (const c of counts) expect(Math.abs(c - n / 5)).toBeLessThanOrEqual(Math.max(largest, 0.02 * n));
    }
    // Whole folds: 10,015 / 5 = 2,003 each, give or take a few.
    for (const t of folds.totals) expect(Math.abs(t - records.length / 5)).toBeLessThan(20);
  });

  it('depends on the seed only', () => {
    const again = lesionFolds([...records].reverse(), 5, 1337);
    expect(again.assignment).toEqual(folds.assignment);
    expect(lesionFolds(records, 5, 7).assignment).not.toEqual(folds.assignment);
    expect(() => lesionFolds(records, 1, 1)).toThrow(/folds must be a whole number ≥ 2/);
  });
});

describe('mean ± sd across folds', () => {
  it('uses the sample standard deviation (n − 1)', () => {
    // Mean 0.65; deviations ±0.01, ±0.03, 0 → Σ² = 0.002, / 4 = 0.0005.
    const s = spread([0.64, 0.66, 0.62, 0.68, 0.65]);
    expect(s.mean).toBeCloseTo(0.65, 12);
    expect(s.sd).toBeCloseTo(Math.sqrt(0.0005), 12);
  });
});

describe('test-time augmentation flips', () => {
  it('mirrors pixels left-right, top-bottom and both', () => {
    // A 2×2 image, pixels a b / c d (RGB triples 1, 2, 3, 4).
    const px = Uint8Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    const first = (p: Uint8Array) => [p[0], p[3], p[6], p[9]];
    expect(first(flipPixels(px, 2, 'none'))).toEqual([1, 2, 3, 4]);
    expect(first(flipPixels(px, 2, 'horizontal'))).toEqual([2, 1, 4, 3]);
    expect(first(flipPixels(px, 2, 'vertical'))).toEqual([3, 4, 1, 2]);
    expect(first(flipPixels(px, 2, 'both'))).toEqual([4, 3, 2, 1]);
    // Two images in one batch flip each on its own.
    const two = Uint8Array.from([...px, ...px.map((v) => v + 10)]);
    expect(Array.from(flipPixels(two, 2, 'both').subarray(12)).filter((_, i) => i % 3 === 0)).toEqual([
      14, 13, 12, 11,
    ]);
  });
});
