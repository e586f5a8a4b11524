import { DX, type Dx } from '../data/dx.ts';
import { HAM10000_COLUMNS, type Ham10000Column } from '../data/metadata.ts';
import type { LesionRecord, Metadata } from '../data/types.ts';
import { describe } from './stats.ts';
import type { EdaSummary } from './types.ts';

const FIELD: Record<Ham10000Column, keyof LesionRecord> = {
  lesion_id: 'lesionId',
  image_id: 'imageId',
  dx: 'dx',
  dx_type: 'dxType',
  age: 'age',
  sex: 'sex',
  localization: 'localization',
};

/**
 * The HAM10000 columns a file actually has, for `summarize`'s missing-value table: a one-hot file's absent
 * lesion ids or ages are not "missing values", they were never there.
 */
export function edaColumns(metadata: Metadata): Ham10000Column[] {
  if (metadata.format === 'isic2018-onehot') return ['image_id', 'dx'];
  const header = new Set(metadata.columns.map((c) => c.toLowerCase()));
  return HAM10000_COLUMNS.filter((c) => header.has(c));
}

/**
 * The EDA figures of issue #2, as the CLI prints them. Age figures are before imputation. Nothing is rounded here:
 * machine-readable output keeps full precision, and the UI rounds when it shows a figure.
 * `columns` are those reported in `missing` (every one, 0 included); by default all of HAM10000's.
 * Without lesion ids (one-hot files) `lesions` is 0 and `images_per_lesion` is empty.
 */
export function summarize(
  records: readonly LesionRecord[],
  columns: readonly Ham10000Column[] = HAM10000_COLUMNS,
): EdaSummary {
  const rows = records.length;
  const missing: Record<string, number> = {};
  for (const column of columns) {
    const field = FIELD[column];
    missing[column] = records.filter((r) => r[field] === null).length;
  }

  const dxCounts = new Map<Dx, number>(DX.map((dx) => [dx, 0]));
  for (const r of records) dxCounts.set(r.dx, (dxCounts.get(r.dx) as number) + 1);
  // Largest class first, as the seed's value_counts() lists them; ties keep the class-index order.
  const classOrder = [...DX].sort((a, b) => (dxCounts.get(b) as number) - (dxCounts.get(a) as number));
  const classes = Object.fromEntries(
    classOrder.map((dx) => {
      const count = dxCounts.get(dx) as number;
      return [dx, { count, percent: rows === 0 ? 0 : (100 * count) / rows }];
    }),
  ) as EdaSummary['classes'];

  const ages = describe(records.flatMap((r) => (r.age === null ? [] : [r.age])));

  const imagesOfLesion = new Map<string, number>();
  for (const r of records) {
    if (r.lesionId !== null) imagesOfLesion.set(r.lesionId, (imagesOfLesion.get(r.lesionId) ?? 0) + 1);
  }
  const lesionsWithK = new Map<number, number>();
  for (const k of imagesOfLesion.values()) lesionsWithK.set(k, (lesionsWithK.get(k) ?? 0) + 1);
  const images_per_lesion = Object.fromEntries(
    [...lesionsWithK].sort((a, b) => a[0] - b[0]).map(([k, n]) => [String(k), n]),
  );

  return {
    rows,
    lesions: imagesOfLesion.size,
    missing,
    classes,
    age: {
      count: ages.count,
      mean: ages.mean,
      std: ages.std,
      min: ages.min,
      q1: ages.q1,
      median: ages.median,
      q3: ages.q3,
      max: ages.max,
    },
    sex: valueCounts(records, 'sex'),
    dx_type: valueCounts(records, 'dxType'),
    localization: valueCounts(records, 'localization'),
    images_per_lesion,
  };
}

/** Counts of each non-empty value, most frequent first (pandas' value_counts), ties alphabetical. */
function valueCounts(
  records: readonly LesionRecord[],
  field: 'sex' | 'dxType' | 'localization',
): Record<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) {
    const value = r[field];
    if (value !== null) counts.set(value, (counts.get(value) ?? 0) + 1);
  }
  return Object.fromEntries(
    [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
  );
}

/**
 * Fills empty ages with the mean of the known ones, as the seed notebook does (`fillna(mean)`), so age charts
 * and any age feature cover every image. Returns new records; `imputed` is how many ages were filled.
 * With no known age at all there is nothing to impute from: records come back unchanged and `mean` is NaN.
 */
export function imputeAges(records: readonly LesionRecord[]): {
  records: LesionRecord[];
  mean: number;
  imputed: number;
} {
  const { mean } = describe(records.flatMap((r) => (r.age === null ? [] : [r.age])));
  if (Number.isNaN(mean)) return { records: [...records], mean, imputed: 0 };
  let imputed = 0;
  const filled = records.map((r) => {
    if (r.age !== null) return r;
    imputed++;
    return { ...r, age: mean };
  });
  return { records: filled, mean, imputed };
}

/** `summarize` over the columns the file has. */
export function summarizeMetadata(metadata: Metadata): EdaSummary {
  return summarize(metadata.records, edaColumns(metadata));
}
