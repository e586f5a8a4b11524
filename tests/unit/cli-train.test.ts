/**
 * `npm run cli -- train` as a user runs it: a Kaggle-shaped zip (HAM10000_images_part_{1,2}/ + their lower-case
 * duplicates + HAM10000_metadata.csv + hmnist CSVs) of 140 real images from ../shared (20 per class), built in a temp
 * dir; the real MobileNetV2 0.35 weights; 96 px inputs; a short phase 1 and one epoch of phase 2. Checks the JSON on
 * stdout, the JSON lines on stderr, and that the test metrics agree with the predictions they come from.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DX, dxIndex, type Dx } from '../../src/lib/data/dx.ts';
import { expectedCalibrationError } from '../../src/lib/metrics/calibration.ts';
import { calibrationIntervals } from '../../src/lib/metrics/calibration-intervals.ts';
import { applyTemperature } from '../../src/lib/metrics/temperature.ts';
import {
  buildKaggleZip,
  KAGGLE_ZIP_NAME,
  makeTempDir,
  METADATA_CSV,
  PROJECT_ROOT,
  removeTempDir,
  SHARED_DIR,
  SMALL_IMAGES_DIR,
  type SourceImage,
} from '../helpers/zips.ts';

const run = promisify(execFile);
const WEIGHTS = join(SHARED_DIR, 'weights', 'tfjs-mobilenet-v2-0.35-224-notop');
const PER_CLASS = 20;
const EPOCHS = 4;

interface Row {
  imageId: string;
  lesionId: string;
  dx: Dx;
}

function metadataRows(): Row[] {
  return readFileSync(METADATA_CSV, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [lesionId, imageId, dx] = line.split(',') as [string, string, Dx];
      return { imageId, lesionId, dx };
    });
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'),
      ['src/cli/main.ts', ...args],
      {
        cwd: PROJECT_ROOT,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('cli train on a Kaggle-shaped zip of real images', () => {
  let dir: string;
  let zip: string;
  const rows = metadataRows();
  const byId = new Map(rows.map((r) => [r.imageId, r]));
  let chosen: SourceImage[];
  let out: {
    config: Record<string, unknown>;
    data: Record<string, unknown> & {
      used: number;
      listed_images: number;
      duplicates_skipped: number;
      match: { matched: number; rowsWithoutImage: number };
      split: {
        totals: { train: number; val: number; test: number };
        leaked_lesions: number;
        grouped: boolean;
      };
    };
    model: Record<string, unknown>;
    phases: {
      phase: number;
      backend: string;
      epochs_run: number;
      best_epoch: number | null;
      history: { epoch: number; val_balanced_accuracy: number }[];
      tensors_at_epoch: number[];
      test: { balanced_accuracy: number } | null;
    }[];
    test: {
      samples: number;
      balanced_accuracy: number;
      macro_f1: number;
      accuracy: number;
      recall: Record<string, number>;
      report: {
        per_class: Record<string, { support: number; recall: number; f1: number }>;
        confusion_matrix: number[][];
      };
      predictions: {
        classes: string[];
        image_ids: string[];
        y_true: number[];
        y_pred: number[];
        y_prob: number[][];
      };
      ece: number;
      ece_ci: [number, number];
      temperature: {
        value: number;
        ece_after: number;
        ece_after_ci: [number, number];
        ece_change_ci: [number, number];
      } | null;
    };
  };
  let logs: Record<string, unknown>[];
  let code: number;
  let stderr: string;

  beforeAll(async () => {
    dir = await makeTempDir('lesion-lab-cli-train-');
    const available = new Set(readdirSync(SMALL_IMAGES_DIR).map((name) => name.replace(/\.jpg$/, '')));
    chosen = DX.flatMap((dx) =>
      rows
        .filter((r) => r.dx === dx && available.has(r.imageId))
        .slice(0, PER_CLASS)
        .map((r) => ({ imageId: r.imageId, path: join(SMALL_IMAGES_DIR, `${r.imageId}.jpg`) })),
    );
    zip = join(dir, KAGGLE_ZIP_NAME);
    await buildKaggleZip(zip, { images: chosen, csvPath: METADATA_CSV });
    const result = await cli([
      'train',
      '--images',
      zip,
      // No --csv: the zip's HAM10000_metadata.csv is used, as in Kaggle's archive.
      '--backbone',
      'mobilenet_v2_0.35',
      '--weights',
      WEIGHTS,
      '--size',
      '96',
      '--epochs',
      String(EPOCHS),
      '--fine-tune-blocks',
      '1',
      '--fine-tune-epochs',
      '1',
      // Phase 2 on the other backend: features extracted on WASM, training switched to CPU.
      '--fine-tune-backend',
      'cpu',
    ]);
    code = result.code;
    stderr = result.stderr;
    if (code === 0) out = JSON.parse(result.stdout) as typeof out;
    logs = result.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }, 600_000);

  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('exits 0 and prints one JSON object with config, data, model, phases, test and timing', () => {
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(Object.keys(out).sort()).toEqual(['config', 'data', 'model', 'phases', 'test', 'timing']);
    expect(out.config).toMatchObject({
      backbone: 'mobilenet_v2_0.35',
      size: 96,
      epochs: EPOCHS,
      batch_size: 16,
      learning_rate: 1e-3,
      seed: 1337,
      ratios: [0.8, 0.1, 0.1],
      grouped: true,
      class_weights: true,
      fine_tune: { blocks: 1, epochs: 1, learningRate: 1e-5, backend: 'cpu' },
    });
    expect(out.model).toMatchObject({ input: [96, 96, 3], base_params: 410_208 });
    expect(out.model.weights).toMatchObject({ format: 'tfjs-layers', arrays: 260 });
  });

  it('reads the images once each from the zip, skipping Kaggle duplicate folders, with the CSV inside it', () => {
    expect(out.data.listed_images).toBe(chosen.length);
    expect(out.data.duplicates_skipped).toBe(chosen.length);
    expect(out.data.match.matched).toBe(chosen.length);
    expect(out.data.used).toBe(chosen.length);
    expect(out.data.match.rowsWithoutImage).toBe(rows.length - chosen.length);
    const { totals } = out.data.split;
    expect(totals.train + totals.val + totals.test).toBe(chosen.length);
    expect(out.data.split.grouped).toBe(true);
    expect(out.data.split.leaked_lesions).toBe(0);
  });

  it('logs JSON lines on stderr: data, model, features, one line per epoch of each phase, test', () => {
    const types = logs.map((l) => l.type);
    for (const t of ['data', 'model', 'features', 'phase', 'epoch', 'done', 'test'])
      expect(types).toContain(t);
    expect(logs.filter((l) => l.type === 'epoch' && l.phase === 1)).toHaveLength(EPOCHS);
    expect(logs.filter((l) => l.type === 'epoch' && l.phase === 2)).toHaveLength(1);
    expect(types).not.toContain('batch');
  });

  it('reports both phases, phase 2 on the CPU backend, with flat tensor counts', () => {
    expect(out.phases.map((p) => [p.phase, p.backend, p.epochs_run])).toEqual([
      [1, 'wasm', EPOCHS],
      [2, 'cpu', 1],
    ]);
    for (const phase of out.phases) {
      expect(phase.history.map((h) => h.epoch)).toEqual(
        Array.from({ length: phase.epochs_run }, (_, i) => i + 1),
      );
      expect(new Set(phase.tensors_at_epoch).size).toBe(1);
      expect(phase.best_epoch).toBeGreaterThanOrEqual(1);
      expect(phase.test).not.toBeNull();
    }
    expect(out.test).toEqual(out.phases[1]!.test);
  });

  it('scores exactly the test split, predictions aligned to labels by image id, metrics coherent', () => {
    const { test } = out;
    const { predictions: p } = test;
    expect(test.samples).toBe(out.data.split.totals.test);
    expect(p.classes).toEqual([...DX]);
    expect(p.image_ids).toHaveLength(test.samples);
    expect(new Set(p.image_ids).size).toBe(test.samples);
    // y_true is the metadata's dx of each image id.
    p.image_ids.forEach((id, i) => expect(p.y_true[i], id).toBe(dxIndex(byId.get(id)!.dx)));
    const support = Object.values(test.report.per_class).reduce((n, c) => n + c.support, 0);
    expect(support).toBe(test.samples);
    expect(test.report.confusion_matrix.flat().reduce((a, b) => a + b, 0)).toBe(test.samples);
    // Predictions are the argmax of probability rows that sum to 1.
    p.y_prob.forEach((row, i) => {
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(row.indexOf(Math.max(...row))).toBe(p.y_pred[i]);
    });
    const correct = p.y_true.filter((y, i) => y === p.y_pred[i]).length;
    expect(test.accuracy).toBeCloseTo(correct / test.samples, 12);
    const present = DX.filter((dx) => test.report.per_class[dx]!.support > 0);
    const recalls = present.map((dx) => {
      const c = dxIndex(dx);
      const hits = p.y_true.filter((y, i) => y === c && p.y_pred[i] === c).length;
      return hits / p.y_true.filter((y) => y === c).length;
    });
    present.forEach((dx, i) => expect(test.recall[dx]).toBeCloseTo(recalls[i]!, 12));
    expect(test.balanced_accuracy).toBeCloseTo(recalls.reduce((a, b) => a + b, 0) / recalls.length, 12);
    const f1 = DX.reduce((s, dx) => s + test.report.per_class[dx]!.f1, 0) / DX.length;
    expect(test.macro_f1).toBeCloseTo(f1, 12);
    // The ECE and its intervals, before and after the validation temperature, from the printed predictions.
    const lesions = p.image_ids.map((id) => byId.get(id)!.lesionId);
    expect(test.ece).toBeCloseTo(expectedCalibrationError(p.y_true, p.y_prob), 12);
    const t = test.temperature!;
    const scaled = applyTemperature(p.y_prob, t.value);
    expect(t.ece_after).toBeCloseTo(expectedCalibrationError(p.y_true, scaled), 12);
    const ci = calibrationIntervals({
      yTrue: p.y_true,
      yProb: p.y_prob,
      scaledProb: scaled,
      groups: lesions,
    });
    expect(test.ece_ci).toEqual(ci.ece);
    expect(t.ece_after_ci).toEqual(ci.scaled_ece);
    expect(t.ece_change_ci).toEqual(ci.change);
    // No test image was seen in training: the split is by lesion, and the test ids are the split's test images.
    const testLesions = new Set(p.image_ids.map((id) => byId.get(id)!.lesionId));
    const trainOrVal = chosen.map((c) => c.imageId).filter((id) => !p.image_ids.includes(id));
    for (const id of trainOrVal) expect(testLesions.has(byId.get(id)!.lesionId), id).toBe(false);
  });
});

describe('cli train: bad input', () => {
  it('refuses unknown options and missing weights with usage and exit code 2', async () => {
    const unknown = await cli(['train', '--images', SMALL_IMAGES_DIR, '--weights', WEIGHTS, '--epoch', '3']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown option --epoch');
    expect(unknown.stderr).toContain('usage: train --images');
    const noWeights = await cli(['train', '--images', SMALL_IMAGES_DIR]);
    expect(noWeights.code).toBe(2);
    expect(noWeights.stderr).toContain('--weights <path> is required');
  });

  it('names a weights path that does not exist, exit code 1, nothing on stdout', async () => {
    const missing = join(SHARED_DIR, 'weights', 'no-such-model');
    const result = await cli([
      'train',
      '--images',
      SMALL_IMAGES_DIR,
      '--csv',
      METADATA_CSV,
      '--weights',
      missing,
      '--limit',
      '20',
      '--size',
      '96',
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`cannot read weights ${missing}: no such file or folder`);
  });
});
