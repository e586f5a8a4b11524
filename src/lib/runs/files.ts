/**
 * The text files of a run, as written into its export zip and read back: history.csv, config.json, metrics.json,
 * classification_report.csv, confusion_matrix.csv and predictions.json. CSVs go through the metrics module's
 * `toCsv` (RFC 4180 quoting; a text cell starting with =, +, -, @ is prefixed with ' so that a spreadsheet does not
 * run it as a formula).
 *
 * Numbers are written with JavaScript's shortest round-trip form (String(x)), so reading a file back gives the
 * same doubles. A non-finite figure (a diverged loss) is an empty CSV cell and reads back as NaN.
 */
import Papa from 'papaparse';
import {
  classificationReportRows,
  confusionMatrixRows,
  reportToJson,
  toCsv,
  classificationReport,
  type ClassificationReport,
  type ClassMetrics,
} from '../metrics/report.ts';
import type { EpochLog } from '../train/logs.ts';
import {
  EPOCH_FIELDS,
  FieldReader,
  RunFileError,
  parseEpochLog,
  parseMetricsJson,
  predictionsToJson,
  parseTestPredictions,
  type MetricsJson,
  type RunConfig,
  type RunRecord,
  type TestPredictions,
} from './record.ts';

/** history.csv: one row per epoch, columns EPOCH_FIELDS (phase, epoch, epochs, loss, accuracy, val_*, lr, seconds). */
export function historyCsv(history: readonly EpochLog[]): string {
  return toCsv([[...EPOCH_FIELDS], ...history.map((e) => EPOCH_FIELDS.map((key) => e[key]))]);
}

/** Rows of a CSV text; a parse error names the file and line. */
export function parseCsv(text: string, file: string): string[][] {
  const parsed = Papa.parse<string[]>(text.replace(/^\uFEFF/, ''), { skipEmptyLines: 'greedy' });
  const error = parsed.errors[0];
  if (error) {
    const line = error.row === undefined ? '' : ` at line ${error.row + 1}`;
    throw new RunFileError(`${file}: not readable as CSV${line} (${error.message})`, file);
  }
  return parsed.data;
}

/** Reads history.csv back; every cell is checked and a bad one is named by line and column. */
export function parseHistoryCsv(text: string, file = 'history.csv'): EpochLog[] {
  const rows = parseCsv(text, file);
  const header = rows[0];
  if (!header) throw new RunFileError(`${file}: empty; expected the header ${EPOCH_FIELDS.join(',')}`, file);
  const missing = EPOCH_FIELDS.filter((f) => !header.includes(f));
  if (missing.length > 0) {
    throw new RunFileError(`${file}: the header lacks the column(s) ${missing.join(', ')}`, file, missing[0]);
  }
  const reader = new FieldReader(file);
  return rows.slice(1).map((row, i) => {
    const line = i + 2;
    const entry: Record<string, unknown> = { type: 'epoch' };
    for (const key of EPOCH_FIELDS) {
      const cell = (row[header.indexOf(key)] ?? '').trim();
      const value = cell === '' ? NaN : Number(cell);
      if (cell !== '' && Number.isNaN(value)) {
        throw new RunFileError(`${file}: line ${line}, column ${key}: "${cell}" is not a number`, file, key);
      }
      entry[key] = value;
    }
    return parseEpochLog(entry, reader, `line ${line}`, (key) => `line ${line}, column ${key}:`);
  });
}

export function configJson(config: RunConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** The report as the run keeps it (and metrics.json holds it): `reportToJson`'s shape, checked. */
export function metricsFromReport(report: ClassificationReport): MetricsJson {
  return parseMetricsJson(reportToJson(report), 'the report');
}

export function metricsJsonText(metrics: MetricsJson): string {
  return `${JSON.stringify(metrics, null, 2)}\n`;
}

/**
 * The ClassificationReport behind a metrics JSON, for the tables (`classificationReportRows`, the Results page).
 * `predicted` per class is the confusion matrix's column sum; ROC curves are not part of the JSON (null): recompute
 * the report from the predictions to draw them.
 */
export function reportFromMetrics(metrics: MetricsJson): ClassificationReport {
  const { classes, confusion_matrix: matrix } = metrics;
  const perClass: ClassMetrics[] = classes.map((name, c) => {
    const m = metrics.per_class[name];
    if (!m)
      throw new RunFileError(`metrics: per_class.${name} is missing`, 'metrics.json', `per_class.${name}`);
    const predicted = matrix.reduce((sum, row) => sum + (row[c] ?? 0), 0);
    return {
      name,
      precision: m.precision,
      recall: m.recall,
      f1: m.f1,
      support: m.support,
      predicted,
      auc: m.auc,
    };
  });
  const avg = (a: MetricsJson['macro_avg']) => ({ ...a, support: metrics.samples });
  return {
    classes: [...classes],
    samples: metrics.samples,
    perClass,
    accuracy: metrics.accuracy,
    balancedAccuracy: metrics.balanced_accuracy,
    macroAvg: avg(metrics.macro_avg),
    weightedAvg: avg(metrics.weighted_avg),
    macroAuc: metrics.macro_auc,
    confusionMatrix: matrix.map((row) => [...row]),
    zeroDivision: {
      precision: [...metrics.zero_division.precision],
      recall: [...metrics.zero_division.recall],
      f1: [...metrics.zero_division.f1],
    },
    aucUndefined: [...metrics.auc_undefined],
    roc: null,
  };
}

export function classificationReportCsv(metrics: MetricsJson): string {
  return toCsv(classificationReportRows(reportFromMetrics(metrics)));
}

export function confusionMatrixCsv(metrics: MetricsJson): string {
  return toCsv(confusionMatrixRows(metrics.classes, metrics.confusion_matrix));
}

/** predictions.json: `npm run cli -- metrics predictions.json` recomputes metrics.json from it. */
export function predictionsJsonText(predictions: TestPredictions, classes: readonly string[]): string {
  return `${JSON.stringify(predictionsToJson(predictions, classes))}\n`;
}

/**
 * The run with its test split's results: the predictions (checked: one probability row per image, ids unique)
 * and the report computed from them by the metrics module.
 */
export function withTestResults(run: RunRecord, predictions: TestPredictions): RunRecord {
  const { classes } = run.config.model;
  const checked = parseTestPredictions(
    { classes, image_ids: predictions.imageIds, y_true: predictions.yTrue, y_prob: predictions.yProb },
    classes,
    'test predictions',
  );
  const report = classificationReport({ classes, yTrue: checked.yTrue, yProb: checked.yProb });
  return { ...run, metrics: metricsFromReport(report), predictions: checked };
}
