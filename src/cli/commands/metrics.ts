import { bootstrapIntervals } from '../../lib/metrics/bootstrap.ts';
import { calibrationIntervals } from '../../lib/metrics/calibration-intervals.ts';
import { calibration } from '../../lib/metrics/calibration.ts';
import { MetricsInputError, parsePredictions } from '../../lib/metrics/input.ts';
import { classificationReport, classificationReportText, reportToJson } from '../../lib/metrics/report.ts';
import { parseArgs, readInputFile } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';

const USAGE =
  'metrics <predictions.json>  ({"classes": [names], "y_true": [index], "y_prob": [[p per class]], ' +
  '"lesion_ids"?: [id per sample]})';

/** The optional lesion id of each sample: the bootstrap resamples lesions when they are given. */
function lesionIds(input: unknown, samples: number): string[] | null {
  const ids = (input as Record<string, unknown>).lesion_ids;
  if (ids === undefined) return null;
  if (!Array.isArray(ids) || ids.length !== samples) {
    throw new MetricsInputError(
      `lesion_ids must be an array of ${samples} lesion ids (one per sample); got ${Array.isArray(ids) ? ids.length : typeof ids}`,
      'lesion_ids',
    );
  }
  ids.forEach((id: unknown, i) => {
    if (typeof id !== 'string' || id === '') {
      throw new MetricsInputError(`lesion_ids[${i}] must be a non-empty string`, 'lesion_ids', i);
    }
  });
  return ids as string[];
}

export const command: CliCommand = {
  summary:
    'Classification report, balanced accuracy, ROC AUC, confusion matrix, Brier score, ECE and bootstrap ' +
    'confidence intervals of predictions, as JSON',
  usage: USAGE,
  async run(args) {
    const [path, ...rest] = parseArgs(args, {}).positional;
    if (path === undefined || rest.length > 0) throw new UsageError('expected one predictions file');
    const text = await readInputFile(path);
    let input: unknown;
    try {
      input = JSON.parse(text);
    } catch (error) {
      throw new Error(`${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    const predictions = parsePredictions(input);
    const report = classificationReport(predictions);
    // The sklearn-style printout goes to stderr so that stdout stays one JSON object.
    process.stderr.write(classificationReportText(report));
    const flagged = [
      ...report.zeroDivision.precision.map((c) => `precision of ${c} (never predicted)`),
      ...report.zeroDivision.recall.map((c) => `recall of ${c} (no true samples)`),
      ...report.aucUndefined.map((c) => `AUC of ${c}`),
    ];
    if (flagged.length > 0)
      process.stderr.write(`metrics: undefined, reported as 0 or null: ${flagged.join(', ')}\n`);
    const json = reportToJson(report);
    const { yTrue, yProb } = predictions;
    if (!yProb) {
      process.stderr.write('metrics: no y_prob, so no Brier score, ECE or confidence intervals\n');
      return { ...json, brier: null, ece: null };
    }
    const calib = calibration(yTrue, yProb);
    const groups = lesionIds(input, yTrue.length);
    if (!groups) process.stderr.write('metrics: no lesion_ids, so the bootstrap resamples images\n');
    const ci = bootstrapIntervals({ yTrue, yProb, groups });
    return {
      ...json,
      brier: calib.brier,
      ece: calib.ece,
      ece_ci: calibrationIntervals({ yTrue, yProb, scaledProb: null, groups }).ece,
      reliability: calib.bins,
      balanced_accuracy_ci: ci.balanced_accuracy_ci,
      macro_f1_ci: ci.macro_f1_ci,
      macro_auc_ci: ci.macro_auc_ci,
      bootstrap: {
        iterations: ci.iterations,
        seed: ci.seed,
        level: ci.level,
        resampled: ci.resampled,
        units: ci.units,
      },
    };
  },
};
