/**
 * The tabular metadata a fused head takes next to the image features: age, sex and localization, encoded from what
 * the train split holds, so that nothing about validation or test images leaks into the encoding.
 *
 * - age: missing ages are imputed with the train split's mean, then standardised with the train mean and standard
 *   deviation (population sd; 1 when every train age is equal), as the seed notebook imputes for the EDA.
 * - sex and localization: one-hot over the train split's values, sorted, with "unknown" always one of them. A
 *   missing cell, HAM10000's literal "unknown" and a value the train split never had all map to "unknown".
 *
 * The encoding (vocabularies, mean, sd) is plain JSON: it is saved with the run, so Predict can rebuild the same
 * vector from what the user types, and an exported run carries it.
 */
import type { LesionRecord } from '../data/types.ts';

export const UNKNOWN = 'unknown';
export const METADATA_ENCODING_FORMAT = 'lesion-lab-metadata-encoding';

export interface MetadataEncoding {
  format: typeof METADATA_ENCODING_FORMAT;
  version: 1;
  /** Mean of the train split's known ages (the imputed value). */
  ageMean: number;
  /** Standard deviation of the train split's ages after imputation. */
  ageSd: number;
  /** One-hot vocabularies, sorted, each containing "unknown". */
  sexes: string[];
  localizations: string[];
}

/** What one image, or the user in Predict, says about the lesion; null (or "unknown") when not known. */
export interface MetadataValues {
  age: number | null;
  sex: string | null;
  localization: string | null;
}

/** A bad saved encoding or value; the message names the field. */
export class MetadataEncodingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataEncodingError';
  }
}

function normalise(value: string | null): string {
  const v = value?.trim().toLowerCase() ?? '';
  return v === '' ? UNKNOWN : v;
}

function vocabulary(values: Iterable<string | null>): string[] {
  const set = new Set<string>([UNKNOWN]);
  for (const v of values) set.add(normalise(v));
  return [...set].sort();
}

/** The encoding fitted on `train` (the train split's records). */
export function fitMetadataEncoding(train: readonly MetadataValues[]): MetadataEncoding {
  if (train.length === 0)
    throw new MetadataEncodingError('cannot fit a metadata encoding on an empty train split');
  const ages = train.map((r) => r.age).filter((a): a is number => a !== null && Number.isFinite(a));
  const ageMean = ages.length === 0 ? 0 : ages.reduce((a, b) => a + b, 0) / ages.length;
  // Imputed ages sit at the mean, so they add to n but not to the sum of squares.
  const ss = ages.reduce((s, a) => s + (a - ageMean) ** 2, 0);
  const sd = Math.sqrt(ss / train.length);
  return {
    format: METADATA_ENCODING_FORMAT,
    version: 1,
    ageMean,
    ageSd: sd > 0 ? sd : 1,
    sexes: vocabulary(train.map((r) => r.sex)),
    localizations: vocabulary(train.map((r) => r.localization)),
  };
}

/** Length of one encoded vector: 1 (age) + sexes + localizations. */
export function metadataDim(encoding: MetadataEncoding): number {
  return 1 + encoding.sexes.length + encoding.localizations.length;
}

/** Names of the vector's entries, in order (for reports and the run files). */
export function metadataFeatureNames(encoding: MetadataEncoding): string[] {
  return [
    'age (standardised)',
    ...encoding.sexes.map((s) => `sex=${s}`),
    ...encoding.localizations.map((l) => `localization=${l}`),
  ];
}

/** Writes one record's vector into `out` at `offset`. */
export function encodeInto(
  encoding: MetadataEncoding,
  values: MetadataValues,
  out: Float32Array,
  offset: number,
): void {
  const age = values.age !== null && Number.isFinite(values.age) ? values.age : encoding.ageMean;
  out[offset] = (age - encoding.ageMean) / encoding.ageSd;
  const sex = normalise(values.sex);
  let i = encoding.sexes.indexOf(sex);
  if (i < 0) i = encoding.sexes.indexOf(UNKNOWN);
  out.fill(0, offset + 1, offset + metadataDim(encoding));
  out[offset + 1 + i] = 1;
  const site = normalise(values.localization);
  let j = encoding.localizations.indexOf(site);
  if (j < 0) j = encoding.localizations.indexOf(UNKNOWN);
  out[offset + 1 + encoding.sexes.length + j] = 1;
}

export function encodeMetadata(encoding: MetadataEncoding, values: MetadataValues): Float32Array {
  const out = new Float32Array(metadataDim(encoding));
  encodeInto(encoding, values, out, 0);
  return out;
}

/** One row per record, in order: records.length × metadataDim values. */
export function encodeRecords(encoding: MetadataEncoding, records: readonly MetadataValues[]): Float32Array {
  const dim = metadataDim(encoding);
  const out = new Float32Array(records.length * dim);
  records.forEach((r, i) => encodeInto(encoding, r, out, i * dim));
  return out;
}

/** The metadata of a LesionRecord. */
export const recordValues = (r: LesionRecord): MetadataValues => ({
  age: r.age,
  sex: r.sex,
  localization: r.localization,
});

/** Checks a saved encoding (a run's file, an imported zip) and returns it typed; errors name the field. */
export function parseMetadataEncoding(value: unknown, source = 'the metadata encoding'): MetadataEncoding {
  const o = value as Partial<MetadataEncoding> | null;
  const fail = (what: string): never => {
    throw new MetadataEncodingError(`${source}: ${what}`);
  };
  if (!o || typeof o !== 'object') return fail('is not a JSON object');
  if (o.format !== METADATA_ENCODING_FORMAT) fail(`"format" must be "${METADATA_ENCODING_FORMAT}"`);
  if (o.version !== 1) fail(`"version" ${String(o.version)} is not supported (1 is)`);
  if (typeof o.ageMean !== 'number' || !Number.isFinite(o.ageMean)) fail('"ageMean" must be a finite number');
  if (typeof o.ageSd !== 'number' || !(o.ageSd > 0) || !Number.isFinite(o.ageSd))
    fail('"ageSd" must be a finite number > 0');
  for (const key of ['sexes', 'localizations'] as const) {
    const list = o[key];
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string') || !list.includes(UNKNOWN))
      fail(`"${key}" must be a list of strings that includes "${UNKNOWN}"`);
    if (new Set(list).size !== list!.length) fail(`"${key}" lists a value twice`);
    if (list!.length > 256) fail(`"${key}" has ${list!.length} values (at most 256)`);
  }
  return {
    format: METADATA_ENCODING_FORMAT,
    version: 1,
    ageMean: o.ageMean!,
    ageSd: o.ageSd!,
    sexes: [...o.sexes!],
    localizations: [...o.localizations!],
  };
}
