import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe as group, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import {
  boxStats,
  describe,
  histogram,
  kde,
  linspace,
  mean,
  quantile,
  sampleStd,
  scottBandwidth,
} from '../../src/lib/eda/stats.ts';
import { edaColumns, imputeAges, summarize, summarizeMetadata } from '../../src/lib/eda/summary.ts';

const HAM = resolve(import.meta.dirname, '../../../shared/data/ham10000');
const load = (path: string) => parseMetadata(readFileSync(join(HAM, path), 'utf8'), path);
const canonical = load('HAM10000_metadata.csv');
const knownAges = canonical.records.flatMap((r) => (r.age === null ? [] : [r.age]));

group('summarize on the real HAM10000 metadata', () => {
  const summary = summarizeMetadata(canonical);

  it('gives exactly the figures of issue #2', () => {
    expect(summary.rows).toBe(10015);
    expect(summary.lesions).toBe(7470);
    expect(summary.missing).toEqual({
      lesion_id: 0,
      image_id: 0,
      dx: 0,
      dx_type: 0,
      age: 57,
      sex: 0,
      localization: 0,
    });
    expect(summary.classes.nv).toEqual({ count: 6705, percent: (100 * 6705) / 10015 });
    expect(summary.classes.df).toEqual({ count: 115, percent: (100 * 115) / 10015 });
    expect(Object.entries(summary.classes).map(([dx, c]) => [dx, c.count])).toEqual([
      ['nv', 6705],
      ['mel', 1113],
      ['bkl', 1099],
      ['bcc', 514],
      ['akiec', 327],
      ['vasc', 142],
      ['df', 115],
    ]);
    // Unrounded: Python's statistics.mean/stdev give 51.863828077927295 and 16.96861369249536.
    expect(summary.age.mean).toBeCloseTo(51.863828077927295, 12);
    expect(summary.age.std).toBeCloseTo(16.96861369249536, 12);
    expect(summary.age).toEqual({
      count: 9958,
      mean: summary.age.mean,
      std: summary.age.std,
      min: 0,
      q1: 40,
      median: 50,
      q3: 65,
      max: 85,
    });
  });

  it('counts sex, dx_type, localization and images per lesion', () => {
    expect(summary.sex).toEqual({ male: 5406, female: 4552, unknown: 57 });
    expect(summary.dx_type).toEqual({ histo: 5340, follow_up: 3704, consensus: 902, confocal: 69 });
    expect(Object.keys(summary.localization)).toHaveLength(15);
    expect(summary.localization.back).toBe(2192);
    expect(summary.localization.unknown).toBe(234);
    expect(summary.localization.acral).toBe(7);
    const counts = Object.values(summary.localization);
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    expect(counts.reduce((s, n) => s + n, 0)).toBe(10015);

    expect(summary.images_per_lesion).toEqual({ '1': 5514, '2': 1423, '3': 490, '4': 34, '5': 5, '6': 4 });
    const entries = Object.entries(summary.images_per_lesion);
    expect(entries.reduce((s, [k, n]) => s + Number(k) * n, 0)).toBe(10015);
    expect(entries.reduce((s, [, n]) => s + n, 0)).toBe(7470);
  });

  it('agrees with a plain recount of the file', () => {
    const rows = readFileSync(join(HAM, 'HAM10000_metadata.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
    for (const dx of DX) {
      expect(summary.classes[dx].count).toBe(rows.filter((r) => r[2] === dx).length);
    }
    expect(summary.lesions).toBe(new Set(rows.map((r) => r[0])).size);
    expect(summary.missing.age).toBe(rows.filter((r) => r[4] === '').length);
  });

  it('is the same for the CRLF/integer-age and the Dataverse `dataset` variants, unrounded ages included', () => {
    for (const path of [
      'variants/HAM10000_metadata_crlf_intages.csv',
      'variants/HAM10000_metadata_with_dataset_column.csv',
    ]) {
      const variant = load(path);
      expect(summarizeMetadata(variant)).toEqual(summary);
      // HAM10000's ages are whole numbers written as "80.0": integer re-saves must not move the mean at all.
      const ages = variant.records.flatMap((r) => (r.age === null ? [] : [r.age]));
      expect(describe(ages)).toEqual(describe(knownAges));
    }
  });

  it('reports only the columns asked for, and every one of them', () => {
    expect(summarize(canonical.records, ['age']).missing).toEqual({ age: 57 });
    expect(summarize(canonical.records).missing).toEqual(summary.missing);
    expect(edaColumns(canonical)).toEqual(Object.keys(summary.missing));
  });
});

group('summarize on ISIC 2018 one-hot files', () => {
  it('counts classes, and reports no lesions and no ages rather than inventing them', () => {
    const name = 'variants/ISIC2018_Task3_Validation_GroundTruth.csv';
    const metadata = load(name);
    const summary = summarizeMetadata(metadata);
    expect(summary.rows).toBe(193);
    expect(summary.lesions).toBe(0);
    expect(summary.images_per_lesion).toEqual({});
    expect(summary.missing).toEqual({ image_id: 0, dx: 0 });
    expect(summary.age.count).toBe(0);
    expect(summary.age.mean).toBeNaN();
    expect(summary.sex).toEqual({});
    const lines = readFileSync(join(HAM, name), 'utf8').trim().split('\n').slice(1);
    const nv = lines.filter((l) => l.split(',')[2] === '1.0').length;
    expect(summary.classes.nv).toEqual({ count: nv, percent: (100 * nv) / 193 });
    expect(Object.values(summary.classes).reduce((s, c) => s + c.count, 0)).toBe(193);
  });
});

group('imputeAges', () => {
  it('fills the 57 empty ages with the unrounded mean, as the seed does, without touching the input', () => {
    const { records, mean: imputedWith, imputed } = imputeAges(canonical.records);
    expect(imputed).toBe(57);
    expect(imputedWith).toBe(mean(knownAges));
    expect(records).toHaveLength(10015);
    expect(records.every((r) => r.age !== null)).toBe(true);
    records.forEach((r, i) => {
      const original = canonical.records[i];
      expect(r.age).toBe(original?.age ?? imputedWith);
      expect(r.imageId).toBe(original?.imageId);
    });
    expect(canonical.records.filter((r) => r.age === null)).toHaveLength(57);
    // Mean imputation keeps the mean and shrinks the spread.
    const filled = records.map((r) => r.age as number);
    expect(mean(filled)).toBeCloseTo(imputedWith, 10);
    expect(sampleStd(filled)).toBeLessThan(sampleStd(knownAges));
  });

  it('leaves records alone when no age is known', () => {
    const oneHot = load('variants/ISIC2018_Task3_Validation_GroundTruth.csv').records;
    const result = imputeAges(oneHot);
    expect(result.imputed).toBe(0);
    expect(result.mean).toBeNaN();
    expect(result.records.every((r) => r.age === null)).toBe(true);
  });
});

group('stats on hand-computed values', () => {
  it('quantile interpolates linearly between ranks, like pandas', () => {
    const xs = [1, 2, 3, 4];
    expect(quantile(xs, 0)).toBe(1);
    expect(quantile(xs, 0.25)).toBe(1.75); // position 0.75
    expect(quantile(xs, 0.5)).toBe(2.5);
    expect(quantile(xs, 0.75)).toBe(3.25);
    expect(quantile(xs, 1)).toBe(4);
    expect(quantile([7], 0.3)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
    expect(() => quantile(xs, 1.5)).toThrow(RangeError);
  });

  it('mean and sample std (ddof 1), skipping non-finite values', () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9];
    expect(mean(xs)).toBe(5);
    // Squared deviations sum to 32; population std would be 2.
    expect(sampleStd(xs)).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(sampleStd([...xs, NaN])).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(sampleStd([3])).toBeNaN();
    expect(mean([])).toBeNaN();
  });

  it('describe matches pandas describe()', () => {
    expect(describe([3, 1, 2, 4, NaN])).toEqual({
      count: 4,
      mean: 2.5,
      std: Math.sqrt(5 / 3),
      min: 1,
      q1: 1.75,
      median: 2.5,
      q3: 3.25,
      max: 4,
    });
  });

  it('histogram with a bin width aligns edges to multiples of it and holds the maximum', () => {
    const bins = histogram([0, 4, 5, 9, 10, 85], { binWidth: 5 });
    expect(bins).toHaveLength(18);
    expect(bins[0]).toEqual({ x0: 0, x1: 5, count: 2, density: 2 / 30 });
    expect(bins[1]).toEqual({ x0: 5, x1: 10, count: 2, density: 2 / 30 });
    expect(bins[2]?.count).toBe(1);
    expect(bins[17]).toEqual({ x0: 85, x1: 90, count: 1, density: 1 / 30 });
    expect(bins.slice(3, 17).every((b) => b.count === 0)).toBe(true);
    expect(histogram([12, 13], { binWidth: 5 })).toEqual([{ x0: 10, x1: 15, count: 2, density: 2 / 10 }]);
    expect(histogram([], { binWidth: 5 })).toEqual([]);
  });

  it('histogram with a bin count follows numpy.histogram', () => {
    // numpy.histogram([1, 2, 2, 3, 4], 3) → counts [1, 2, 2], edges [1, 2, 3, 4]
    expect(histogram([1, 2, 2, 3, 4], { bins: 3 }).map((b) => [b.x0, b.x1, b.count])).toEqual([
      [1, 2, 1],
      [2, 3, 2],
      [3, 4, 2],
    ]);
    // numpy.histogram([5, 5], 2) → counts [0, 2], edges [4.5, 5, 5.5]
    expect(histogram([5, 5], { bins: 2 }).map((b) => [b.x0, b.x1, b.count])).toEqual([
      [4.5, 5, 0],
      [5, 5.5, 2],
    ]);
    expect(() => histogram([1], { bins: 0 })).toThrow(RangeError);
  });

  it('histogram densities of the real ages integrate to 1', () => {
    const bins = histogram(knownAges, { binWidth: 5 });
    expect(bins.reduce((s, b) => s + b.count, 0)).toBe(9958);
    expect(bins.reduce((s, b) => s + b.density * (b.x1 - b.x0), 0)).toBeCloseTo(1, 12);
    expect(bins.find((b) => b.x0 === 45)?.count).toBe(knownAges.filter((a) => a >= 45 && a < 50).length);
  });

  it('kde sums Gaussian kernels', () => {
    const [atZero] = kde([0], [0], 1);
    expect(atZero?.density).toBeCloseTo(1 / Math.sqrt(2 * Math.PI), 12);
    // Halfway between two points one bandwidth away from each: exp(-1/2) / sqrt(2π).
    expect(kde([0, 2], [1], 1)[0]?.density).toBeCloseTo(Math.exp(-0.5) / Math.sqrt(2 * Math.PI), 12);
    // Scott: std([1..5]) = sqrt(2.5), times 5^(-1/5).
    expect(scottBandwidth([1, 2, 3, 4, 5])).toBeCloseTo(Math.sqrt(2.5) * 5 ** -0.2, 12);
    expect(() => kde([3, 3], [3])).toThrow(RangeError);
  });

  it('kde of the real ages matches scipy.stats.gaussian_kde and integrates to 1', () => {
    // Reference: scipy 1.17 gaussian_kde(ages) — factor × std = 2.69160879, density at 0, 50, 85 below.
    expect(scottBandwidth(knownAges)).toBeCloseTo(2.69160879, 7);
    const densities = kde(knownAges, [0, 50, 85]).map((p) => p.density);
    expect(densities[0]).toBeCloseTo(0.00080908, 7);
    expect(densities[1]).toBeCloseTo(0.02381273, 7);
    expect(densities[2]).toBeCloseTo(0.00539666, 7);
    const xs = linspace(-20, 105, 501);
    const ys = kde(knownAges, xs).map((p) => p.density);
    const step = (xs[1] as number) - (xs[0] as number);
    const area = ys.reduce((s, y, i) => s + (i === 0 || i === ys.length - 1 ? y / 2 : y), 0) * step;
    expect(area).toBeCloseTo(1, 4);
  });

  it('boxStats uses Tukey whiskers', () => {
    const box = boxStats([9, 1, 2, 3, 100, 4, 5, 6, 7, 8]);
    // Positions 2.25, 4.5, 6.75 in the sorted values; IQR 4.5; fences -3.5 and 14.5.
    expect(box).toEqual({
      count: 10,
      min: 1,
      q1: 3.25,
      median: 5.5,
      q3: 7.75,
      max: 100,
      iqr: 4.5,
      lowerWhisker: 1,
      upperWhisker: 9,
      outliers: [100],
    });
    const ages = boxStats(knownAges);
    expect([ages.q1, ages.median, ages.q3]).toEqual([40, 50, 65]);
    // IQR 25, fences 2.5 and 102.5: only the ages recorded as 0 fall outside.
    expect(ages.lowerWhisker).toBe(5);
    expect(ages.upperWhisker).toBe(85);
    expect(ages.outliers).toEqual(knownAges.filter((a) => a === 0));
    expect(ages.outliers.length).toBeGreaterThan(0);
  });

  it('linspace spans the range evenly', () => {
    expect(linspace(0, 1, 5)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });
});
