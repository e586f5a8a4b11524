export { compareRuns, comparisonRows } from '../../lib/runs/compare.ts';
export { toCsv as toCsvSafe } from '../../lib/metrics/report.ts';
