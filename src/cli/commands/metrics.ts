import { parsePredictions } from '../../lib/metrics/input.ts';
import { classificationReport, classificationReportText, reportToJson } from '../../lib/metrics/report.ts';
import { parseArgs, readInputFile } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';

const USAGE =
  'metrics <predictions.json>  ({"classes": [names], "y_true": [index], "y_prob": [[p per class]]})';

export const command: CliCommand = {
  summary:
    'Classification report, balanced accuracy, one-vs-rest ROC AUC and confusion matrix of predictions, as JSON',
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
    return reportToJson(report);
  },
};
