/**
 * The Results page's honest-error-bar parts on a hand-made prediction set (8 test images, classes bcc, mel, nv):
 * the operating-point view for mel (the default class) driven by keyboard, the threshold that reaches a chosen
 * sensitivity, the confidence intervals next to the scores, and the calibration panel with its reliability diagram.
 *
 *   true  P(mel)    true  P(mel)
 *   bcc   0.20      mel   0.60
 *   bcc   0.30      mel   0.80
 *   bcc   0.70      mel   0.40
 *   nv    0.50      nv    0.35
 *
 * At threshold 0.5: TP 2 (0.6, 0.8), FN 1 (0.4), FP 2 (0.7, 0.5), TN 3 → sensitivity 66.7 %, specificity 60.0 %,
 * PPV 50.0 %, NPV 75.0 %. One keyboard step up (0.501) clears the nv at 0.5: specificity 80.0 %, PPV 66.7 %.
 * 90 % sensitivity needs all 3 mel: the lowest mel score, 0.4 → sensitivity 100 %, FP 2 (0.7, 0.5), spec 60.0 %.
 */
import { render } from '../helpers/render.ts';
import { describe, expect, it } from 'vitest';
import { userEvent } from 'vitest/browser';
import { flushSync } from 'svelte';
import ResultsView from '../../src/components/results/ResultsView.svelte';
import { evaluateRun } from '../../src/lib/runs/evaluation.ts';

const classes = ['bcc', 'mel', 'nv'];
const yTrue = [0, 0, 0, 1, 1, 1, 2, 2];
const yProb = [
  [0.7, 0.2, 0.1],
  [0.6, 0.3, 0.1],
  [0.2, 0.7, 0.1],
  [0.3, 0.6, 0.1],
  [0.1, 0.8, 0.1],
  [0.5, 0.4, 0.1],
  [0.2, 0.5, 0.3],
  [0.45, 0.35, 0.2],
];
const lesionIds = ['L1', 'L1', 'L2', 'L3', 'L4', 'L4', 'L5', 'L6'];
const valProb = yProb.map((row) => row.map((p) => p));
const text = (root: HTMLElement, id: string) =>
  (root.querySelector(`[data-testid="${id}"]`)?.textContent ?? '').replace(/\s+/g, ' ').trim();

describe('operating point and calibration on the Results page', () => {
  const evaluation = evaluateRun({
    classes,
    yTrue,
    yProb,
    lesionIds,
    val: { yTrue, yProb: valProb },
    ttaProb: null,
  });

  it('starts on mel, moves with the keyboard and finds the threshold for a sensitivity', async () => {
    const root = render(ResultsView, { classes, yTrue, yProb, evaluation });
    const select = root.querySelector<HTMLSelectElement>('[data-testid="op-class"]')!;
    expect(select.selectedOptions[0]?.textContent).toBe('mel');
    expect(text(root, 'op-sensitivity')).toBe('66.7 %');
    expect(text(root, 'op-specificity')).toBe('60.0 %');
    expect(text(root, 'op-ppv')).toBe('50.0 %');
    expect(text(root, 'op-npv')).toBe('75.0 %');
    const slider = root.querySelector<HTMLInputElement>('[data-testid="op-threshold"]')!;
    slider.focus();
    await userEvent.keyboard('{ArrowRight}');
    flushSync();
    expect(slider.value).toBe('0.501');
    expect(text(root, 'op-specificity')).toBe('80.0 %');
    expect(text(root, 'op-ppv')).toBe('66.7 %');
    expect(text(root, 'op-reaching')).toMatch(
      /^Threshold 0\.4000 reaches 100\.0 % sensitivity at 60\.0 % specificity/,
    );
    await userEvent.click(root.querySelector<HTMLButtonElement>('[data-testid="op-use"]')!);
    flushSync();
    expect(text(root, 'op-sensitivity')).toBe('100.0 %');
    expect(text(root, 'op-specificity')).toBe('60.0 %');
  });

  it('shows the bootstrap intervals and the calibration panel with its reliability diagram', () => {
    const root = render(ResultsView, { classes, yTrue, yProb, evaluation });
    const [lo, hi] = evaluation.ci.balanced_accuracy_ci;
    expect(lo).toBeLessThanOrEqual(hi);
    expect(text(root, 'balanced-accuracy-ci')).toBe(`95 % CI ${lo.toFixed(3)}–${hi.toFixed(3)}`);
    expect(text(root, 'ci-note')).toMatch(/1,000 bootstrap resamples of the test split's 6 lesions/);
    expect(text(root, 'brier')).toBe(evaluation.calibration.brier.toFixed(4));
    expect(text(root, 'ece')).toBe(evaluation.calibration.ece.toFixed(4));
    expect(text(root, 'temperature')).toBe(evaluation.temperature!.value.toFixed(3));
    expect(root.querySelector('[data-testid="reliability-chart"] svg')).not.toBeNull();
    // The ECEs carry their bootstrap intervals, and the change scaling made is read against its own.
    const eci = evaluation.calibration_ci!;
    expect(text(root, 'ece-ci')).toBe(`95 % CI ${eci.ece[0].toFixed(4)}–${eci.ece[1].toFixed(4)}`);
    expect(text(root, 'ece-after-ci')).toBe(
      `95 % CI ${eci.scaled_ece![0].toFixed(4)}–${eci.scaled_ece![1].toFixed(4)}`,
    );
    const [changeLo, changeHi] = eci.change!;
    expect(changeLo).toBeLessThanOrEqual(0);
    expect(changeHi).toBeGreaterThanOrEqual(0);
    expect(text(root, 'ece-change')).toMatch(
      /^Scaling changed the ECE by [+−±]\d\.\d{4} \(95 % CI [+−±]\d\.\d{4} to [+−±]\d\.\d{4}, the same bootstrap resamples of the 8 test images as the scores above\)\. The interval holds 0: on this test split the change is within the noise/,
    );
    // A run stored before the ECE intervals shows the ECEs without them.
    const { calibration_ci: _, ...earlier } = evaluation;
    const before = render(ResultsView, { classes, yTrue, yProb, evaluation: earlier });
    expect(text(before, 'ece')).toBe(evaluation.calibration.ece.toFixed(4));
    expect(before.querySelector('[data-testid="ece-ci"]')).toBeNull();
    expect(before.querySelector('[data-testid="ece-change"]')).toBeNull();
    // A run stored before evaluations existed says so instead.
    const older = render(ResultsView, { classes, yTrue, yProb });
    expect(older.querySelector('[data-testid="calibration"]')).toBeNull();
    expect(older.textContent).toMatch(/stored without confidence intervals and calibration/);
  });
});
