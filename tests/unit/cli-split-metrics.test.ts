import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';

const CSV = '../shared/data/ham10000/HAM10000_metadata.csv';
const ISIC = '../shared/data/ham10000/variants/ISIC2018_Task3_Validation_GroundTruth.csv';
const dir = mkdtempSync(join(tmpdir(), 'cli-split-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `npm run -s cli -- <args>` without npm: the same tsx entry point. */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('node_modules/.bin/tsx', ['src/cli/main.ts', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface SplitOutput {
  seed: number;
  ratios: number[];
  grouped: boolean;
  assignment: Record<string, 'train' | 'val' | 'test'>;
  table: Record<string, { train: number; val: number; test: number }>;
  leaked_lesions: number;
  class_weights: Record<string, number>;
}

/** [lesion_id, image_id, dx] of each row, read from the CSV here (it has no quoted fields). */
const rows = readFileSync(CSV, 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((line) => line.split(',') as [string, string, string]);
const lesionOf = new Map(rows.map(([lesion, image]) => [image, lesion]));

function leakedLesions(assignment: SplitOutput['assignment']): number {
  const splits = new Map<string, Set<string>>();
  for (const [image, name] of Object.entries(assignment)) {
    const lesion = lesionOf.get(image) as string;
    splits.set(lesion, (splits.get(lesion) ?? new Set()).add(name));
  }
  return [...splits.values()].filter((s) => s.size > 1).length;
}

describe('cli split', () => {
  it('prints the lesion-grouped split of the real CSV as JSON', () => {
    const { status, stdout } = cli('split', CSV);
    expect(status).toBe(0);
    const out = JSON.parse(stdout) as SplitOutput;
    expect(out).toMatchObject({ seed: 1337, ratios: [0.8, 0.1, 0.1], grouped: true, leaked_lesions: 0 });
    expect(Object.keys(out.assignment)).toHaveLength(10_015);
    expect(leakedLesions(out.assignment)).toBe(0);
    expect(Object.keys(out.table)).toEqual([...DX]);
    const train = rows.filter(([, image]) => out.assignment[image] === 'train');
    for (const dx of DX) {
      const n = train.filter((row) => row[2] === dx).length;
      expect(out.table[dx]?.train).toBe(n);
      // 'balanced': n_train / (7 · n_c)
      expect(out.class_weights[dx]).toBeCloseTo(train.length / (7 * n), 12);
    }
  });

  it('takes --seed, --ratios and --leaky', () => {
    const { status, stdout, stderr } = cli('split', CSV, '--seed', '7', '--ratios', '.7,.15,.15', '--leaky');
    expect(status).toBe(0);
    const out = JSON.parse(stdout) as SplitOutput;
    expect(out).toMatchObject({ seed: 7, ratios: [0.7, 0.15, 0.15], grouped: false });
    expect(out.leaked_lesions).toBe(leakedLesions(out.assignment));
    expect(out.leaked_lesions).toBeGreaterThan(500);
    expect(stderr).toMatch(/leaky.*lesions have images in more than one split/);
    expect(out.table.nv).toEqual({ train: 4693, val: 1006, test: 1006 }); // 6705 · (.7, .15, .15), rounded
  });

  it('refuses a grouped split of a file without lesion ids, and bad options, with a reason', () => {
    const isic = cli('split', ISIC);
    expect(isic.status).toBe(1);
    expect(isic.stdout).toBe('');
    expect(isic.stderr).toMatch(/has no lesion ids .*--leaky.*--images-as-lesions/);
    const own = cli('split', ISIC, '--images-as-lesions');
    expect(own.status).toBe(0);
    expect(Object.keys((JSON.parse(own.stdout) as SplitOutput).assignment)).toHaveLength(193);
    expect(cli('split', CSV, '--ratios', '.8,.1').stderr).toMatch(/ratios need three numbers/);
    expect(cli('split', CSV, '--seed', 'x').stderr).toMatch(/--seed x: expected an integer/);
    expect(cli('split', 'missing.csv').stderr).toMatch(/cannot read missing.csv: no such file/);
  });
});

describe('cli metrics', () => {
  it('prints the report of a predictions file as JSON', () => {
    // The hand case of metrics.test.ts: AUCs 15/16, 13/16, 15/16 and undefined for d.
    const path = join(dir, 'predictions.json');
    writeFileSync(
      path,
      JSON.stringify({
        classes: ['a', 'b', 'c', 'd'],
        y_true: [0, 0, 1, 1, 2, 2],
        y_prob: [
          [0.6, 0.2, 0.2, 0],
          [0.4, 0.4, 0.1, 0.1],
          [0.4, 0.5, 0.1, 0],
          [0.2, 0.3, 0.5, 0],
          [0.2, 0.3, 0.5, 0],
          [0.1, 0.2, 0.6, 0.1],
        ],
      }),
    );
    const { status, stdout, stderr } = cli('metrics', path);
    expect(status).toBe(0);
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out.per_class).toEqual({
      a: { precision: 1, recall: 1, f1: 1, support: 2, auc: 15 / 16 },
      b: { precision: 1, recall: 0.5, f1: 2 / 3, support: 2, auc: 13 / 16 },
      c: { precision: 2 / 3, recall: 1, f1: 0.8, support: 2, auc: 15 / 16 },
      d: { precision: 0, recall: 0, f1: 0, support: 0, auc: null },
    });
    expect(out.accuracy).toBeCloseTo(5 / 6, 15);
    expect(out.balanced_accuracy).toBeCloseTo(5 / 6, 15);
    expect(out.macro_auc).toBeCloseTo(43 / 48, 15);
    expect(out.confusion_matrix).toEqual([
      [2, 0, 0, 0],
      [0, 1, 1, 0],
      [0, 0, 2, 0],
      [0, 0, 0, 0],
    ]);
    expect(out.zero_division).toEqual({ precision: ['d'], recall: ['d'], f1: ['d'] });
    expect(out.auc_undefined).toEqual(['d']);
    expect(Object.keys(out.macro_avg as object)).toEqual(['precision', 'recall', 'f1']);
    expect(Object.keys(out.weighted_avg as object)).toEqual(['precision', 'recall', 'f1']);
    expect(stderr).toContain('              precision    recall  f1-score   support');
    // Brier: (0.24 + 0.54 + 0.42 + 0.78 + 0.38 + 0.22) / 6. ECE: top-label confidences 0.6 ✓, 0.4 ✓ (tie, first
    // class), 0.5 ✓, 0.5 ✗, 0.5 ✓, 0.6 ✓ → bins (8/15, 9/15]: 2/6·|1 − 0.6|, (5/15, 6/15]: 1/6·|1 − 0.4|,
    // (7/15, 8/15]: 3/6·|2/3 − 0.5|.
    expect(out.brier).toBeCloseTo(2.58 / 6, 12);
    expect(out.ece).toBeCloseTo((0.8 + 0.6 + 0.5) / 6, 12);
    const eceCi = out.ece_ci as [number, number];
    expect(eceCi[0]).toBeLessThanOrEqual(out.ece as number);
    expect(eceCi[1]).toBeGreaterThanOrEqual(out.ece as number);
    expect((out.reliability as { count: number }[]).map((b) => b.count)).toEqual([
      0, 0, 0, 0, 0, 1, 0, 3, 2, 0, 0, 0, 0, 0, 0,
    ]);
    const ci = out.balanced_accuracy_ci as [number, number];
    expect(ci[0]).toBeLessThanOrEqual(5 / 6);
    expect(ci[1]).toBeGreaterThanOrEqual(5 / 6);
    expect(out.bootstrap).toEqual({
      iterations: 1000,
      seed: 1337,
      level: 0.95,
      resampled: 'images',
      units: 6,
    });
  });

  it('resamples lesions when lesion_ids are given', () => {
    const path = join(dir, 'lesions.json');
    // One lesion: every resample is the whole set, so the interval is the point value.
    writeFileSync(
      path,
      JSON.stringify({
        classes: ['a', 'b'],
        y_true: [0, 1, 1],
        y_prob: [
          [0.8, 0.2],
          [0.3, 0.7],
          [0.6, 0.4],
        ],
        lesion_ids: ['L1', 'L1', 'L1'],
      }),
    );
    const { status, stdout } = cli('metrics', path);
    expect(status).toBe(0);
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out.balanced_accuracy_ci).toEqual([0.75, 0.75]);
    expect(out.macro_auc_ci).toEqual([1, 1]);
    expect(out.bootstrap).toMatchObject({ resampled: 'lesions', units: 1 });
    writeFileSync(
      path,
      JSON.stringify({ classes: ['a', 'b'], y_true: [0], y_prob: [[1, 0]], lesion_ids: [] }),
    );
    expect(cli('metrics', path).stderr).toMatch(/lesion_ids must be an array of 1 lesion ids/);
  });

  it('names the field and index at fault in bad input', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ classes: ['a', 'b'], y_true: [0, 1], y_prob: [[0.5, 0.5], [0.5]] }));
    const bad = cli('metrics', path);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/y_prob\[1\] must hold 2 probabilities/);
    writeFileSync(path, '{"classes": [');
    expect(cli('metrics', path).stderr).toMatch(/bad.json is not valid JSON/);
  });
});
