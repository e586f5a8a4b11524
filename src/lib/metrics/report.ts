/**
 * The classification report of a test split, as scikit-learn computes it with an explicit class list
 * (classification_report(y_true, y_pred, labels=range(n), target_names=classes), zero_division left at its
 * default: an undefined ratio counts as 0 and is flagged), plus balanced accuracy, one-vs-rest ROC AUC and the
 * confusion matrix. Pure functions on class indices; the class list fixes the order of every table.
 *
 * For class c, with C the confusion matrix (rows true, columns predicted):
 *   tp_c = C[c][c],  support_c = Σ_j C[c][j] (true c),  predicted_c = Σ_i C[i][c] (predicted c)
 *   precision_c = tp_c / predicted_c            (0 and flagged when predicted_c = 0)
 *   recall_c    = tp_c / support_c              (0 and flagged when support_c = 0)
 *   f1_c        = 2·tp_c / (support_c + predicted_c)
 *               = harmonic mean of precision and recall when both are defined
 *                                               (0 and flagged when support_c + predicted_c = 0)
 */
import { checkClasses, checkLabels, checkProbabilities, MetricsInputError, argmax } from './input.ts';
import { confusionMatrix } from './confusion.ts';
import { oneVsRestRoc, type RocCurve } from './roc.ts';

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** Samples whose true class is this one. */
  support: number;
  /** Samples predicted as this class. */
  predicted: number;
  /** One-vs-rest ROC AUC; null when undefined (no sample of this class, or only this class) or no probabilities. */
  auc: number | null;
}

export interface AverageMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  classes: string[];
  samples: number;
  perClass: ClassMetrics[];
  /** Σ_c tp_c / samples. */
  accuracy: number;
  /** Mean recall over the classes present in y_true (scikit-learn's balanced_accuracy_score; the ISIC 2018 metric). */
  balancedAccuracy: number;
  /** Unweighted mean over every listed class, zero-division zeros included (as scikit-learn). */
  macroAvg: AverageMetrics;
  /** Mean over classes weighted by support. */
  weightedAvg: AverageMetrics;
  /** Mean AUC over the classes whose AUC is defined; null when none is (or no probabilities). */
  macroAuc: number | null;
  /** Rows = true class, columns = predicted class, in class-list order. */
  confusionMatrix: number[][];
  /** Classes whose figure was a division by zero, reported as 0. */
  zeroDivision: { precision: string[]; recall: string[]; f1: string[] };
  /** Classes whose AUC is undefined (only when probabilities were given). */
  aucUndefined: string[];
  /** One-vs-rest ROC curve per class (null where undefined); null when no probabilities were given. */
  roc: (RocCurve | null)[] | null;
}

export interface ReportInput {
  classes: readonly string[];
  yTrue: readonly number[];
  /** Predicted class per sample; defaults to the argmax of yProb (first maximum on ties). */
  yPred?: readonly number[];
  yProb?: readonly (readonly number[])[] | null;
}

const ratio = (num: number, den: number): number => (den === 0 ? 0 : num / den);
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export function classificationReport(input: ReportInput): ClassificationReport {
  const classes = checkClasses([...input.classes]);
  const n = classes.length;
  const yTrue = checkLabels([...input.yTrue], n, 'y_true');
  if (yTrue.length === 0) throw new MetricsInputError('y_true is empty: there is nothing to score', 'y_true');
  const yProb = input.yProb
    ? checkProbabilities(
        input.yProb.map((r) => [...r]),
        n,
      )
    : null;
  if (yProb && yProb.length !== yTrue.length) {
    throw new MetricsInputError(
      `y_prob has ${yProb.length} rows but y_true has ${yTrue.length} labels; there must be one row per sample`,
      'y_prob',
    );
  }
  let yPred: number[];
  if (input.yPred) yPred = checkLabels([...input.yPred], n, 'y_pred');
  else if (yProb) yPred = yProb.map(argmax);
  else throw new MetricsInputError('either y_pred or y_prob is needed', 'y_pred');

  const matrix = confusionMatrix(yTrue, yPred, n);
  const samples = yTrue.length;
  const ovr = yProb ? oneVsRestRoc(yTrue, yProb, n) : null;
  const zeroDivision = { precision: [] as string[], recall: [] as string[], f1: [] as string[] };

  const perClass: ClassMetrics[] = classes.map((name, c) => {
    const tp = matrix[c]?.[c] ?? 0;
    const support = (matrix[c] as number[]).reduce((a, b) => a + b, 0);
    const predicted = matrix.reduce((sum, row) => sum + (row[c] as number), 0);
    if (predicted === 0) zeroDivision.precision.push(name);
    if (support === 0) zeroDivision.recall.push(name);
    if (support + predicted === 0) zeroDivision.f1.push(name);
    return {
      name,
      precision: ratio(tp, predicted),
      recall: ratio(tp, support),
      f1: ratio(2 * tp, support + predicted),
      support,
      predicted,
      auc: ovr?.[c]?.auc ?? null,
    };
  });

  // accuracy = Σ_c C[c][c] / samples
  const correct = matrix.reduce((sum, row, c) => sum + (row[c] as number), 0);
  // balanced accuracy = (1 / |K|) Σ_{c ∈ K} recall_c, K = classes with support > 0 (a class only predicted is
  // left out, as scikit-learn does after warning "y_pred contains classes not in y_true")
  const present = perClass.filter((m) => m.support > 0);
  // macro_m = (1 / n_classes) Σ_c m_c;  weighted_m = Σ_c support_c · m_c / Σ_c support_c
  const average = (weight: (m: ClassMetrics) => number): AverageMetrics => {
    const total = perClass.reduce((s, m) => s + weight(m), 0);
    const avg = (key: 'precision' | 'recall' | 'f1'): number =>
      ratio(
        perClass.reduce((s, m) => s + weight(m) * m[key], 0),
        total,
      );
    return { precision: avg('precision'), recall: avg('recall'), f1: avg('f1'), support: samples };
  };
  // macro AUC = mean of the defined one-vs-rest AUCs
  const definedAucs = perClass.flatMap((m) => (m.auc === null ? [] : [m.auc]));
  return {
    classes,
    samples,
    perClass,
    accuracy: correct / samples,
    balancedAccuracy: mean(present.map((m) => m.recall)),
    macroAvg: average(() => 1),
    weightedAvg: average((m) => m.support),
    macroAuc: ovr && definedAucs.length > 0 ? mean(definedAucs) : null,
    confusionMatrix: matrix,
    zeroDivision,
    aucUndefined: ovr ? perClass.filter((m) => m.auc === null).map((m) => m.name) : [],
    roc: ovr ? ovr.map((o) => o.curve) : null,
  };
}

/**
 * Python's format(x, '.{digits}f'): correctly rounded, exact ties to even (0.125 → "0.12"), where JavaScript's
 * toFixed sends ties up. A tie is a value whose exact decimal expansion ends in 5 one place past `digits`; every
 * double in the range of these metrics shows its exact expansion, or differs from a tie, within 100 places.
 */
export function formatFixed(x: number, digits: number): string {
  const rounded = x.toFixed(digits);
  if (!Number.isFinite(x) || x < 0 || x >= 1e21) return rounded;
  const exact = x.toFixed(100);
  const point = exact.indexOf('.');
  const tail = exact.slice(point + 1 + digits);
  if (!/^50*$/.test(tail)) return rounded;
  const truncated = digits === 0 ? exact.slice(0, point) : exact.slice(0, point + 1 + digits);
  const lastDigit = Number(truncated.at(-1));
  return lastDigit % 2 === 0 ? truncated : rounded;
}

/** Python's str.rjust by code points (what '{:>{width}s}' does). */
function rjust(text: string, width: number): string {
  const length = [...text].length;
  return length >= width ? text : ' '.repeat(width - length) + text;
}

/**
 * The report as scikit-learn's classification_report prints it (same widths, rounding and blank lines):
 *   width = max(longest class name, len("weighted avg"), digits)
 *   header:  " " * width + " " + " {:>9}" per header, then a blank line
 *   rows:    "{:>width} " + " {:>9.2f}" × 3 + " {:>9}"
 *   a blank line, then accuracy (f1-score column only), macro avg, weighted avg.
 */
export function classificationReportText(report: ClassificationReport, digits = 2): string {
  const width = Math.max(...report.classes.map((c) => [...c].length), 'weighted avg'.length, digits);
  const cell = (value: number): string => ` ${rjust(formatFixed(value, digits), 9)}`;
  const row = (name: string, p: number, r: number, f: number, support: number): string =>
    `${rjust(name, width)} ${cell(p)}${cell(r)}${cell(f)} ${rjust(String(support), 9)}\n`;
  let text = `${rjust('', width)} ${['precision', 'recall', 'f1-score', 'support'].map((h) => ` ${rjust(h, 9)}`).join('')}`;
  text += '\n\n';
  for (const m of report.perClass) text += row(m.name, m.precision, m.recall, m.f1, m.support);
  text += '\n';
  text += `${rjust('accuracy', width)} ${' '.repeat(10)}${' '.repeat(10)}${cell(report.accuracy)} ${rjust(String(report.samples), 9)}\n`;
  const { macroAvg: ma, weightedAvg: wa } = report;
  text += row('macro avg', ma.precision, ma.recall, ma.f1, ma.support);
  text += row('weighted avg', wa.precision, wa.recall, wa.f1, wa.support);
  return text;
}

export type CsvCell = string | number | null;

function flagsOf(report: ClassificationReport, name: string): string {
  const flags: string[] = [];
  for (const key of ['precision', 'recall', 'f1'] as const) {
    if (report.zeroDivision[key].includes(name)) flags.push(`${key} zero division`);
  }
  if (report.aucUndefined.includes(name)) flags.push('auc undefined');
  return flags.join('; ');
}

/**
 * Rows of classification_report.csv: a header, one row per class, then accuracy and balanced accuracy (their value
 * in the f1-score column, where scikit-learn's printout puts accuracy), macro avg (with macro AUC) and weighted avg.
 * Figures at full precision; empty cells are null; `flags` names the zero divisions and undefined AUCs.
 */
export function classificationReportRows(report: ClassificationReport): CsvCell[][] {
  const rows: CsvCell[][] = [['class', 'precision', 'recall', 'f1-score', 'support', 'auc', 'flags']];
  for (const m of report.perClass) {
    rows.push([m.name, m.precision, m.recall, m.f1, m.support, m.auc, flagsOf(report, m.name)]);
  }
  rows.push(['accuracy', null, null, report.accuracy, report.samples, null, null]);
  rows.push(['balanced accuracy', null, null, report.balancedAccuracy, report.samples, null, null]);
  const { macroAvg: ma, weightedAvg: wa } = report;
  rows.push(['macro avg', ma.precision, ma.recall, ma.f1, ma.support, report.macroAuc, null]);
  rows.push(['weighted avg', wa.precision, wa.recall, wa.f1, wa.support, null, null]);
  return rows;
}

/** Rows of confusion_matrix.csv: header `true \ predicted, <classes>`, then one row per true class. */
export function confusionMatrixRows(
  classes: readonly string[],
  matrix: readonly (readonly number[])[],
): CsvCell[][] {
  return [['true \\ predicted', ...classes], ...matrix.map((row, i) => [classes[i] ?? String(i), ...row])];
}

/**
 * CSV text (RFC 4180 quoting, \n line ends). A text cell starting with =, +, -, @, tab or carriage return is
 * prefixed with ' so that a spreadsheet shows it instead of running it as a formula; numbers are written as is.
 */
export function toCsv(rows: readonly (readonly CsvCell[])[]): string {
  const cell = (value: CsvCell): string => {
    if (value === null) return '';
    if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
    const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
    return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
  };
  return rows.map((row) => row.map(cell).join(',')).join('\n') + '\n';
}

/** The report in the JSON shape of `npm run cli -- metrics` (snake_case keys, per_class keyed by class name). */
export function reportToJson(report: ClassificationReport): Record<string, unknown> {
  const triple = (a: AverageMetrics): Record<string, number> => ({
    precision: a.precision,
    recall: a.recall,
    f1: a.f1,
  });
  return {
    classes: report.classes,
    samples: report.samples,
    per_class: Object.fromEntries(
      report.perClass.map((m) => [
        m.name,
        { precision: m.precision, recall: m.recall, f1: m.f1, support: m.support, auc: m.auc },
      ]),
    ),
    accuracy: report.accuracy,
    balanced_accuracy: report.balancedAccuracy,
    macro_avg: triple(report.macroAvg),
    weighted_avg: triple(report.weightedAvg),
    macro_auc: report.macroAuc,
    confusion_matrix: report.confusionMatrix,
    zero_division: report.zeroDivision,
    auc_undefined: report.aucUndefined,
  };
}
