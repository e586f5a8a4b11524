import { DX, type Dx } from '../lib/data/dx.ts';
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

export function buildEdaView(metadata: Metadata): EdaView {
  const summary = summarizeMetadata(metadata);
  const agesByClass = Object.fromEntries(DX.map((dx) => [dx, [] as number[]])) as Record<Dx, number[]>;
  const sexByClass = Object.fromEntries(DX.map((dx) => [dx, {}])) as Record<Dx, Record<string, number>>;
  const ages: number[] = [];
  for (const r of metadata.records) {
    if (r.age !== null) {
      ages.push(r.age);
      agesByClass[r.dx].push(r.age);
    }
    const sex = r.sex ?? 'missing';
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
