/**
 * Runs side by side: the seed study's "Results & Conclusion" table (per-class F1, accuracy, balanced accuracy and
 * macro-F1 per model), produced from the stored reports, and the curves of several runs on one epoch axis.
 */
import type { Interval } from '../metrics/bootstrap.ts';
import type { CsvCell } from '../metrics/report.ts';
import type { EpochLog } from '../train/logs.ts';
import type { RunRecord } from './record.ts';

export interface ComparisonRow {
  id: string;
  name: string;
  backbone: string;
  inputSize: number;
  /** Epochs trained, both phases. */
  epochs: number;
  /** F1 per class of `RunComparison.classes`; null where the run has no such class or no report yet. */
  f1: (number | null)[];
  accuracy: number | null;
  balancedAccuracy: number | null;
  macroF1: number | null;
  macroAuc: number | null;
  /** 95 % bootstrap CIs over lesions (src/lib/runs/evaluation.ts); null for runs stored without them. */
  balancedAccuracyCi: Interval | null;
  macroF1Ci: Interval | null;
  macroAucCi: Interval | null;
}

export interface RunComparison {
  /** Every class of the compared runs: the first run's order, then classes only later runs have. */
  classes: string[];
  rows: ComparisonRow[];
}

export function compareRuns(runs: readonly RunRecord[]): RunComparison {
  const classes: string[] = [];
  for (const run of runs) for (const c of run.config.model.classes) if (!classes.includes(c)) classes.push(c);
  const rows = runs.map((run): ComparisonRow => {
    const m = run.metrics;
    return {
      id: run.id,
      name: run.name,
      backbone: run.config.model.backbone,
      inputSize: run.config.model.inputSize,
      epochs: run.history.length,
      f1: classes.map((c) => m?.per_class[c]?.f1 ?? null),
      accuracy: m?.accuracy ?? null,
      balancedAccuracy: m?.balanced_accuracy ?? null,
      macroF1: m?.macro_avg.f1 ?? null,
      macroAuc: m?.macro_auc ?? null,
      balancedAccuracyCi: run.evaluation?.ci.balanced_accuracy_ci ?? null,
      macroF1Ci: run.evaluation?.ci.macro_f1_ci ?? null,
      macroAucCi: run.evaluation?.ci.macro_auc_ci ?? null,
    };
  });
  return { classes, rows };
}

/** The comparison as CSV rows (for `toCsv`): one row per run. */
export function comparisonRows(comparison: RunComparison): CsvCell[][] {
  return [
    [
      'run',
      'backbone',
      'input size',
      'epochs',
      ...comparison.classes.map((c) => `f1 ${c}`),
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
    ],
    ...comparison.rows.map((r) => [
      r.name,
      r.backbone,
      r.inputSize,
      r.epochs,
      ...r.f1,
      r.accuracy,
      r.balancedAccuracy,
      r.macroF1,
      r.macroAuc,
      r.balancedAccuracyCi?.[0] ?? null,
      r.balancedAccuracyCi?.[1] ?? null,
      r.macroF1Ci?.[0] ?? null,
      r.macroF1Ci?.[1] ?? null,
      r.macroAucCi?.[0] ?? null,
      r.macroAucCi?.[1] ?? null,
    ]),
  ];
}

export type CurveMetric = Exclude<keyof EpochLog, 'type' | 'phase' | 'epoch' | 'epochs' | 'seconds'>;

export interface CurvePoint {
  /** Position on the shared axis: epochs counted through both phases, from 1. */
  step: number;
  phase: 1 | 2;
  /** The epoch within its phase. */
  epoch: number;
  value: number;
}

export interface RunCurve {
  id: string;
  name: string;
  metric: CurveMetric;
  points: CurvePoint[];
  /** Step of the first phase-2 epoch (where fine-tuning started); null without phase 2. */
  phase2Start: number | null;
}

/**
 * One curve per run for `metric` (e.g. val_loss), phase 2 continuing after phase 1's last epoch. Non-finite values
 * (a diverged loss) are left out of the points.
 */
export function runCurves(runs: readonly RunRecord[], metric: CurveMetric): RunCurve[] {
  return runs.map((run) => {
    const lastPhase1 = run.history.reduce((max, e) => (e.phase === 1 ? Math.max(max, e.epoch) : max), 0);
    const points = run.history
      .map((e) => ({
        step: e.phase === 1 ? e.epoch : lastPhase1 + e.epoch,
        phase: e.phase,
        epoch: e.epoch,
        value: e[metric],
      }))
      .filter((p) => Number.isFinite(p.value))
      .sort((a, b) => a.step - b.step);
    const firstPhase2 = run.history.some((e) => e.phase === 2) ? lastPhase1 + 1 : null;
    return { id: run.id, name: run.name, metric, points, phase2Start: firstPhase2 };
  });
}
