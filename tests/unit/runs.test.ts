/**
 * Run records: built from the training loop's logs, checked field by field, written to and read from their files,
 * compared, and kept in the in-memory store (the contract the IndexedDB store follows in the browser).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { classificationReport, classificationReportRows } from '../../src/lib/metrics/report.ts';
import { BACKBONES } from '../../src/lib/model/backbones/index.ts';
import { defaultHeadFor } from '../../src/lib/model/heads.ts';
import { createRandom } from '../../src/lib/random.ts';
import type { EpochLog, TrainLog } from '../../src/lib/train/logs.ts';
import {
  applyLog,
  bestEpoch,
  classificationReportCsv,
  compareRuns,
  comparisonRows,
  confusionMatrixCsv,
  createRun,
  createRunId,
  failRun,
  historyCsv,
  MemoryRunStore,
  metricsFromReport,
  modelArtifacts,
  parseHistoryCsv,
  parseRunConfig,
  parseRunRecord,
  reportFromMetrics,
  RunFileError,
  runCurves,
  modelConfigFor,
  withTestResults,
  type RunConfig,
  type RunRecord,
} from '../../src/lib/runs/index.ts';
import { toCsv } from '../../src/lib/metrics/report.ts';

function config(classes: readonly string[] = DX): RunConfig {
  const spec = BACKBONES['mobilenet_v2_0.35'];
  return {
    model: {
      backbone: spec.id,
      inputSize: 96,
      preprocessing: spec.preprocessing,
      head: { ...defaultHeadFor(spec.id), classes: classes.length },
      classes: [...classes],
      gradCamLayer: spec.gradCamLayer,
    },
    training: { epochs: 3, batchSize: 16, learningRate: 0.001, classWeights: 'balanced', augment: null },
  };
}

function epoch(phase: 1 | 2, n: number, valLoss: number, lr = 0.001): EpochLog {
  return {
    type: 'epoch',
    phase,
    epoch: n,
    epochs: 3,
    loss: 1.5 / n,
    accuracy: 0.4 + n / 10,
    val_loss: valLoss,
    val_accuracy: 0.5 + n / 20,
    val_balanced_accuracy: 0.3 + n / 30,
    val_macro_f1: 0.2 + n / 40,
    lr,
    seconds: 12.5 + n,
  };
}

/** The logs of a run: phase 1 with an lr drop and early stop, phase 2 fine-tuning. */
function logs(): TrainLog[] {
  return [
    { type: 'batch', phase: 1, epoch: 1, batch: 1, batches: 4, loss: 2, size: 16 },
    epoch(1, 1, 1.2),
    { type: 'checkpoint', phase: 1, epoch: 1, monitor: 'val_loss', value: 1.2, location: 'opfs:run-phase1' },
    epoch(1, 2, 1.3),
    { type: 'lr-reduced', phase: 1, epoch: 2, from: 0.001, to: 0.0002, monitor: 'val_loss' },
    epoch(1, 3, 1.4, 0.0002),
    { type: 'early-stop', phase: 1, epoch: 3, monitor: 'val_loss', best: 1.2, bestEpoch: 1 },
    { type: 'restored-best', phase: 1, epoch: 1 },
    epoch(2, 1, 1.1, 1e-5),
    epoch(2, 2, 1.0, 1e-5),
    { type: 'done', reason: 'completed', phase: 2, epochs: 2, seconds: 80.25 },
  ];
}

function report(classes: readonly string[] = DX, seed = 1) {
  const random = createRandom(seed);
  const yTrue = Array.from({ length: 40 }, (_, i) => i % classes.length);
  const yProb = yTrue.map(() => {
    const raw = classes.map(() => random.next() + 0.01);
    const sum = raw.reduce((a, b) => a + b, 0);
    return raw.map((v) => v / sum);
  });
  return classificationReport({ classes, yTrue, yProb });
}

function finishedRun(name = 'mobilenet 96px', seed = 1): RunRecord {
  let run = createRun({ name, config: config(), created: new Date(Date.UTC(2024, 4, 1, 9, 30, seed)) });
  for (const log of logs()) run = applyLog(run, log);
  return { ...run, metrics: metricsFromReport(report(DX, seed)) };
}

describe('run records from training logs', () => {
  it('creates a running run with a sortable, storage-safe id', () => {
    const run = createRun({
      name: 'first',
      config: config(),
      created: new Date(Date.UTC(2024, 4, 1, 9, 30, 12)),
    });
    expect(run.id).toMatch(/^20240501-093012-[0-9a-f]{6}$/);
    expect(run.created).toBe('2024-05-01T09:30:12.000Z');
    expect(run.status).toBe('running');
    expect(run.history).toEqual([]);
    expect(createRunId()).not.toBe(createRunId());
  });

  it('collects epochs and events, ends with the done reason, and finds the restored best epoch', () => {
    const run = finishedRun();
    expect(run.history.map((e) => [e.phase, e.epoch])).toEqual([
      [1, 1],
      [1, 2],
      [1, 3],
      [2, 1],
      [2, 2],
    ]);
    expect(run.events.map((e) => e.type)).toEqual([
      'checkpoint',
      'lr-reduced',
      'early-stop',
      'restored-best',
      'done',
    ]);
    expect(run.status).toBe('completed');
    expect(bestEpoch(run)).toEqual({ phase: 1, epoch: 1 });
  });

  it('replaces a redone epoch (after a device loss) instead of adding it twice, and returns new objects', () => {
    let run = createRun({ name: 'redo', config: config() });
    const before = run;
    run = applyLog(run, epoch(1, 1, 1.2));
    run = applyLog(run, epoch(1, 1, 1.1));
    expect(run.history).toHaveLength(1);
    expect(run.history[0]!.val_loss).toBe(1.1);
    expect(before.history).toHaveLength(0);
    expect(applyLog(run, { type: 'paused' })).toBe(run);
  });

  it('marks a failed run with the error message and keeps its history', () => {
    const run = failRun(
      applyLog(createRun({ name: 'f', config: config() }), epoch(1, 1, 1)),
      new Error('out of memory'),
    );
    expect(run.status).toBe('failed');
    expect(run.error).toBe('out of memory');
    expect(run.history).toHaveLength(1);
  });
});

describe('checked reading names the file and field at fault', () => {
  const bad = (patch: (c: Record<string, unknown>) => void): unknown => {
    const c = structuredClone(config()) as unknown as Record<string, unknown>;
    patch(c);
    return c;
  };

  it.each([
    [
      (c: Record<string, unknown>) => ((c.model as Record<string, unknown>).backbone = 'alexnet'),
      /config\.json: model\.backbone must be one of mobilenet_v2_0\.35/,
    ],
    [
      (c: Record<string, unknown>) => ((c.model as Record<string, unknown>).inputSize = '224'),
      /config\.json: model\.inputSize must be a whole number from 96 to 1024; got "224"/,
    ],
    [
      (c: Record<string, unknown>) => ((c.model as Record<string, unknown>).classes = ['nv', 'nv']),
      /model\.classes\[1\] repeats the class "nv"/,
    ],
    [
      (c: Record<string, unknown>) =>
        (((c.model as Record<string, unknown>).head as Record<string, unknown>).classes = 3),
      /model\.head\.classes is 3, but model\.classes lists 7 classes/,
    ],
    [
      (c: Record<string, unknown>) => delete c.training,
      /config\.json: training must be an object; got nothing/,
    ],
  ])('rejects a bad config (%#)', (patch, message) => {
    expect(() => parseRunConfig(bad(patch))).toThrow(message);
  });

  it('rejects a record with an unsafe id or a bad history entry', () => {
    const run = finishedRun();
    expect(() => parseRunRecord({ ...run, id: '../x' }, 'stored run')).toThrow(
      /stored run: id must be 1 to 64 letters/,
    );
    const history = [...run.history, { ...run.history[0], phase: 3 }];
    expect(() => parseRunRecord({ ...run, history })).toThrow(
      /run: history\[5\]\.phase must be a whole number from 1 to 2/,
    );
    const error = (() => {
      try {
        parseRunRecord({ ...run, status: 'done' }, 'stored run');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(RunFileError);
    expect((error as RunFileError).field).toBe('status');
  });

  it('drops settings left undefined (as JSON does) and refuses non-finite ones', () => {
    const c = config();
    const parsed = parseRunConfig({ ...c, training: { ...c.training, phase2: undefined } });
    expect(parsed.training).toEqual(c.training);
    expect(() => parseRunConfig({ ...c, training: { patience: Infinity } })).toThrow(
      /config\.json: training\.patience must be a finite number; got Infinity/,
    );
  });

  it('accepts a record as it is and returns an equal copy', () => {
    const run = finishedRun();
    expect(parseRunRecord(structuredClone(run))).toEqual(run);
  });
});

describe('history.csv', () => {
  it('round-trips every figure exactly, NaN (a diverged loss) as an empty cell', () => {
    const history = [epoch(1, 1, 0.1 + 0.2), epoch(1, 2, NaN), epoch(2, 1, 1 / 3, 1e-5)];
    const text = historyCsv(history);
    expect(text.split('\n')[0]).toBe(
      'phase,epoch,epochs,loss,accuracy,val_loss,val_accuracy,val_balanced_accuracy,val_macro_f1,lr,seconds',
    );
    expect(text.split('\n')[2]).toContain(',,');
    expect(parseHistoryCsv(text)).toEqual(history);
    // CRLF (a spreadsheet re-save) and a BOM read the same.
    expect(parseHistoryCsv('\uFEFF' + text.replaceAll('\n', '\r\n'))).toEqual(history);
  });

  it('names the line and column of a bad cell, and a missing column', () => {
    const text = historyCsv([epoch(1, 1, 1), epoch(1, 2, 1)]);
    const lines = text.split('\n');
    const cells = lines[2]!.split(',');
    cells[4] = 'abc';
    lines[2] = cells.join(',');
    expect(() => parseHistoryCsv(lines.join('\n'))).toThrow(
      'history.csv: line 3, column accuracy: "abc" is not a number',
    );
    expect(() => parseHistoryCsv(text.replace('val_loss', 'vl'))).toThrow(
      /history\.csv: the header lacks the column\(s\) val_loss/,
    );
    expect(() => parseHistoryCsv(text.replace(/\n1,2,/, '\n1,0,'))).toThrow(
      /history\.csv: line 3, column epoch: must be a whole number ≥ 1; got 0/,
    );
  });
});

describe('report files', () => {
  it('rebuilds the full report from metrics.json: same classification_report.csv rows as the original', () => {
    const original = report();
    const metrics = metricsFromReport(original);
    const rebuilt = reportFromMetrics(metrics);
    expect(classificationReportRows(rebuilt)).toEqual(classificationReportRows(original));
    expect(rebuilt.perClass.map((m) => m.predicted)).toEqual(original.perClass.map((m) => m.predicted));
  });

  it('escapes cells starting with =, +, - and @ in both CSVs (formula injection), but not numbers', () => {
    const classes = ['=HYPERLINK("x")', '+1', '-cmd', '@SUM(A1)', 'nv'];
    const metrics = metricsFromReport(report(classes));
    const reportCsv = classificationReportCsv(metrics);
    const matrixCsv = confusionMatrixCsv(metrics);
    for (const text of [reportCsv, matrixCsv]) {
      expect(text).toContain(`"'=HYPERLINK(""x"")"`);
      expect(text).toContain("'+1");
      expect(text).toContain("'-cmd");
      expect(text).toContain("'@SUM(A1)");
      for (const line of text.trim().split('\n')) expect(line).not.toMatch(/(^|,)[=+\-@]/);
    }
    expect(toCsv([[-0.5, '-0.5']])).toBe("-0.5,'-0.5\n");
  });
});

describe('test results', () => {
  it('fills the model config from the backbone registry', () => {
    const head = defaultHeadFor('vgg16');
    expect(modelConfigFor('vgg16', 224, head, DX)).toEqual({
      backbone: 'vgg16',
      inputSize: 224,
      preprocessing: 'caffe',
      head,
      classes: [...DX],
      gradCamLayer: 'block5_conv3',
    });
  });

  it('computes the report from the predictions by image id, and checks them', () => {
    const run = createRun({ name: 't', config: config() });
    const random = createRandom(3);
    const yTrue = Array.from({ length: 20 }, (_, i) => i % 7);
    const yProb = yTrue.map(() => {
      const raw = DX.map(() => random.next());
      const sum = raw.reduce((a, b) => a + b, 0);
      return raw.map((v) => v / sum);
    });
    const imageIds = yTrue.map((_, i) => `ISIC_${i}`);
    const done = withTestResults(run, { imageIds, yTrue, yProb });
    expect(done.metrics).toEqual(metricsFromReport(classificationReport({ classes: DX, yTrue, yProb })));
    expect(done.predictions!.imageIds).toEqual(imageIds);
    expect(() => withTestResults(run, { imageIds: imageIds.slice(1), yTrue, yProb })).toThrow(
      /test predictions: image_ids has 19 ids but y_true has 20 labels/,
    );
  });
});

describe('comparing runs', () => {
  it('builds the per-class F1 / accuracy / balanced accuracy / macro-F1 table', () => {
    const a = finishedRun('a', 1);
    const b = { ...finishedRun('b', 2), metrics: null };
    const table = compareRuns([a, b]);
    expect(table.classes).toEqual([...DX]);
    expect(table.rows[0]!.f1).toEqual(DX.map((c) => a.metrics!.per_class[c]!.f1));
    expect(table.rows[0]!.balancedAccuracy).toBe(a.metrics!.balanced_accuracy);
    expect(table.rows[0]!.macroF1).toBe(a.metrics!.macro_avg.f1);
    expect(table.rows[1]!.f1.every((v) => v === null)).toBe(true);
    const rows = comparisonRows(table);
    expect(rows[0]).toEqual([
      'run',
      'backbone',
      'input size',
      'epochs',
      ...DX.map((c) => `f1 ${c}`),
      'accuracy',
      'balanced accuracy',
      'macro f1',
      'macro auc',
      'balanced accuracy ci low',
      'balanced accuracy ci high',
      'macro f1 ci low',
      'macro f1 ci high',
      'macro auc ci low',
      'macro auc ci high',
    ]);
    expect(rows[1]!.slice(0, 4)).toEqual(['a', 'mobilenet_v2_0.35', 96, 5]);
    // A run stored before runs kept their evaluation has no intervals.
    expect(rows[1]!.slice(-6)).toEqual([null, null, null, null, null, null]);
  });

  it('puts phase 2 after phase 1 on one epoch axis and leaves out non-finite values', () => {
    const run = finishedRun();
    run.history[1] = { ...run.history[1]!, val_loss: NaN };
    const [curve] = runCurves([run], 'val_loss');
    expect(curve!.points.map((p) => [p.step, p.phase, p.epoch, p.value])).toEqual([
      [1, 1, 1, 1.2],
      [3, 1, 3, 1.4],
      [4, 2, 1, 1.1],
      [5, 2, 2, 1.0],
    ]);
    expect(curve!.phase2Start).toBe(4);
  });
});

describe('MemoryRunStore', () => {
  it('puts, lists (oldest first), gets, replaces, deletes one and all; hands out copies', async () => {
    const store = new MemoryRunStore();
    const late = finishedRun('late', 30);
    const early = finishedRun('early', 10);
    await store.put(late);
    await store.put(early);
    expect((await store.list()).map((r) => r.name)).toEqual(['early', 'late']);
    const got = (await store.get(early.id))!;
    expect(got).toEqual(early);
    got.name = 'changed';
    expect((await store.get(early.id))!.name).toBe('early');
    await store.put({ ...early, name: 'renamed' });
    expect((await store.list()).map((r) => r.name)).toEqual(['renamed', 'late']);
    expect(await store.delete(early.id)).toBe(true);
    expect(await store.delete(early.id)).toBe(false);
    expect(await store.get(early.id)).toBeNull();
    expect(await store.deleteAll()).toBe(1);
    expect(await store.list()).toEqual([]);
  });

  it('refuses to store an invalid record, naming the field', async () => {
    const store = new MemoryRunStore();
    await expect(store.put({ ...finishedRun(), name: '  ' })).rejects.toThrow(/name must not be empty/);
  });

  it('keeps a model per run as artifacts that load back with identical weights', async () => {
    const store = new MemoryRunStore();
    const run = finishedRun();
    await store.put(run);
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [3], units: 2, activation: 'softmax' })],
    });
    await store.putModel(run.id, await modelArtifacts(model));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory((await store.getModel(run.id))!));
    const a = await Promise.all(model.getWeights().map((w) => w.data()));
    const b = await Promise.all(loaded.getWeights().map((w) => w.data()));
    expect(b).toEqual(a);
    await store.delete(run.id);
    expect(await store.getModel(run.id)).toBeNull();
    model.dispose();
    loaded.dispose();
  });
});
