import { describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { BACKBONES } from '../../src/lib/model/backbones/index.ts';
import { defaultHeadFor } from '../../src/lib/model/heads.ts';
import { createRandom } from '../../src/lib/random.ts';
import { compareRuns } from '../../src/lib/runs/compare.ts';
import { evaluateRun } from '../../src/lib/runs/evaluation.ts';
import { createRun, parseRunRecord, RunFileError } from '../../src/lib/runs/record.ts';
import { withTestResults } from '../../src/lib/runs/files.ts';
import { exportRunZip, importRunZip } from '../../src/lib/runs/export.ts';
import { bootstrapIntervals } from '../../src/lib/metrics/bootstrap.ts';
import { calibration } from '../../src/lib/metrics/calibration.ts';
import { calibrationIntervals } from '../../src/lib/metrics/calibration-intervals.ts';
import { applyTemperature, fitTemperature } from '../../src/lib/metrics/temperature.ts';

const spec = BACKBONES['mobilenet_v2_0.35'];
const random = createRandom(21);
const n = 60;
const yTrue = Array.from({ length: n }, (_, i) => i % DX.length);
const probs = () =>
  yTrue.map((t) => {
    const raw = DX.map((_, c) => random.next() + (c === t ? 0.8 : 0));
    const s = raw.reduce((a, b) => a + b, 0);
    return raw.map((v) => v / s);
  });
const yProb = probs();
const val = { yTrue, yProb: probs() };
const tta = probs();
const lesionIds = yTrue.map((_, i) => `L${Math.floor(i / 2)}`);

const baseConfig = () => ({
  model: {
    backbone: spec.id,
    inputSize: 96,
    preprocessing: spec.preprocessing,
    head: { ...defaultHeadFor(spec.id), classes: DX.length },
    classes: [...DX],
    gradCamLayer: spec.gradCamLayer,
  },
  training: { seed: 1337 },
});

describe('a run’s evaluation', () => {
  const evaluation = evaluateRun({ classes: DX, yTrue, yProb, lesionIds, val, ttaProb: tta });

  it('holds the lesion-bootstrap CIs, calibration before/after the validation temperature, and TTA scores', () => {
    const ci = bootstrapIntervals({ yTrue, yProb, groups: lesionIds });
    expect(evaluation.ci.balanced_accuracy_ci).toEqual(ci.balanced_accuracy_ci);
    expect(evaluation.bootstrap).toEqual({ iterations: 1000, seed: 1337, resampled: 'lesions', units: 30 });
    expect(evaluation.calibration.ece).toBe(calibration(yTrue, yProb).ece);
    const t = fitTemperature(val.yTrue, val.yProb).temperature;
    expect(evaluation.temperature!.value).toBe(t);
    expect(evaluation.temperature!.calibration.ece).toBe(calibration(yTrue, applyTemperature(yProb, t)).ece);
    const eci = calibrationIntervals({
      yTrue,
      yProb,
      scaledProb: applyTemperature(yProb, t),
      groups: lesionIds,
    });
    expect(evaluation.calibration_ci).toEqual(eci);
    expect(evaluation.tta!.ci.balanced_accuracy_ci).toEqual(
      bootstrapIntervals({ yTrue, yProb: tta, groups: lesionIds }).balanced_accuracy_ci,
    );
  });

  it('is kept in the record, read back checked, and shown in the comparison', () => {
    const run = createRun({ name: 'r', config: baseConfig() });
    const done = {
      ...withTestResults(run, { imageIds: yTrue.map((_, i) => `ISIC_${i}`), yTrue, yProb }),
      evaluation,
    };
    const back = parseRunRecord(JSON.parse(JSON.stringify(done)), 'stored run');
    expect(back.evaluation).toEqual(evaluation);
    expect(compareRuns([back]).rows[0]!.balancedAccuracyCi).toEqual(evaluation.ci.balanced_accuracy_ci);
    // An older record without the field reads as null.
    const { evaluation: _, ...older } = JSON.parse(JSON.stringify(done)) as Record<string, unknown>;
    expect(parseRunRecord(older, 'older run').evaluation).toBeNull();
    // A record stored before the ECE intervals existed reads without them.
    const { calibration_ci: __, ...beforeCi } = JSON.parse(JSON.stringify(evaluation)) as Record<
      string,
      unknown
    >;
    const earlier = parseRunRecord(
      JSON.parse(JSON.stringify({ ...done, evaluation: beforeCi })),
      'earlier run',
    );
    expect(earlier.evaluation).not.toHaveProperty('calibration_ci');
    expect(earlier.evaluation!.calibration).toEqual(evaluation.calibration);
    // A damaged one is refused, naming the field.
    const bad = JSON.parse(JSON.stringify(done));
    bad.evaluation.ci.balanced_accuracy_ci = [0.9, 0.1];
    expect(() => parseRunRecord(bad, 'stored run')).toThrow(RunFileError);
    expect(() => parseRunRecord(bad, 'stored run')).toThrow(
      /stored run: evaluation\.ci\.balanced_accuracy_ci low 0\.9 is above high 0\.1/,
    );
    const swapped = JSON.parse(JSON.stringify(done));
    swapped.evaluation.calibration_ci.change = [0.2, -0.2];
    expect(() => parseRunRecord(swapped, 'stored run')).toThrow(
      /stored run: evaluation\.calibration_ci\.change low 0\.2 is above high -0\.2/,
    );
  });

  it('travels in the run zip as evaluation.json', async () => {
    const run = createRun({ name: 'zip', config: baseConfig() });
    const done = {
      ...withTestResults(run, { imageIds: yTrue.map((_, i) => `ISIC_${i}`), yTrue, yProb }),
      evaluation,
    };
    const imported = await importRunZip(await exportRunZip(done, null), 'run.zip');
    expect(imported.run.evaluation).toEqual(evaluation);
  });
});
