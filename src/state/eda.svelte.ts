import { DX, type Dx } from '../lib/data/dx.ts';
import { shortText } from '../lib/short-text.ts';
import type { Metadata } from '../lib/data/types.ts';
import { imputeAges, summarizeMetadata } from '../lib/eda/summary.ts';
import { describe } from '../lib/eda/stats.ts';
import type { AgeStats } from '../lib/eda/types.ts';
import type { EdaSummary } from '../lib/eda/types.ts';

/**
 * Everything the Explore page draws, derived once per metadata file (the dataset state keeps it). Plain data, no
 * runes: the chart tests build it from the real CSV without starting any worker.
 */
export interface EdaView {
  fileName: string;
  hasLesionIds: boolean;
  hasAges: boolean;
  summary: EdaSummary;
  /** Recorded ages (empty cells left out), overall and per diagnosis. */
  ages: number[];
  agesByClass: Record<Dx, number[]>;
  /** Images per diagnosis and sex ("unknown" as the file writes it; empty cells as "missing"). */
  sexByClass: Record<Dx, Record<string, number>>;
  /** The mean the seed fills empty ages with, and how many it fills. */
  imputation: { mean: number; imputed: number; after: AgeStats };
}

/** Counts keyed by category, with each category cut to a length a chart can label (counts of cut keys add up). */
function shortKeys(counts: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(counts)) {
    const short = shortText(key);
    out[short] = (out[short] ?? 0) + n;
  }
  return out;
}

export function buildEdaView(metadata: Metadata): EdaView {
  const full = summarizeMetadata(metadata);
  // A CSV cell may be megabytes long: the page labels categories with their start and their length.
  const summary: EdaSummary = {
    ...full,
    sex: shortKeys(full.sex),
    dx_type: shortKeys(full.dx_type),
    localization: shortKeys(full.localization),
  };
  const agesByClass = Object.fromEntries(DX.map((dx) => [dx, [] as number[]])) as Record<Dx, number[]>;
  const sexByClass = Object.fromEntries(DX.map((dx) => [dx, {}])) as Record<Dx, Record<string, number>>;
  const ages: number[] = [];
  for (const r of metadata.records) {
    if (r.age !== null) {
      ages.push(r.age);
      agesByClass[r.dx].push(r.age);
    }
    const sex = r.sex === null ? 'missing' : shortText(r.sex);
    sexByClass[r.dx][sex] = (sexByClass[r.dx][sex] ?? 0) + 1;
  }
  const filled = imputeAges(metadata.records);
  const after = describe(filled.records.flatMap((r) => (r.age === null ? [] : [r.age])));
  return {
    fileName: metadata.fileName,
    hasLesionIds: metadata.hasLesionIds,
    hasAges: 'age' in summary.missing,
    summary,
    ages,
    agesByClass,
    sexByClass,
    imputation: { mean: filled.mean, imputed: filled.imputed, after },
  };
}
