/**
 * Lesion-grouped, dx-stratified k-fold assignment for cross-validation: every image of a lesion lands in the same
 * fold, and each diagnosis is spread over the folds in proportion. Built like the train/val/test split
 * (src/lib/split/split.ts): per dx, one forked stream of the seed shuffles the lesions, the largest go first, and
 * each lesion goes to the fold least full relative to its target (targets: the class's images / k, largest
 * remainders first), ties to the lower fold.
 */
import { DX, type Dx } from '../data/dx.ts';
import type { LesionRecord } from '../data/types.ts';
import { createRandom } from '../random.ts';
import { groupByLesion, SplitError, type LesionGroup } from './split.ts';

export interface Folds {
  k: number;
  seed: number;
  /** image_id → fold (0..k-1). */
  assignment: Map<string, number>;
  /** Images per dx per fold. */
  table: Record<Dx, number[]>;
  /** Images per fold. */
  totals: number[];
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function targetsOf(n: number, k: number): number[] {
  const base = Math.floor(n / k);
  // n − k·base folds take one more; the earlier folds, as splitTargets gives ties to earlier splits.
  return Array.from({ length: k }, (_, f) => base + (f < n - base * k ? 1 : 0));
}

export function lesionFolds(records: readonly LesionRecord[], k: number, seed: number): Folds {
  if (!Number.isInteger(k) || k < 2) throw new SplitError(`folds must be a whole number ≥ 2; got ${k}`);
  const { groups } = groupByLesion(records);
  const random = createRandom(seed);
  const foldOf = new Map<LesionGroup, number>();
  for (const dx of DX) {
    const classRandom = random.fork();
    const classGroups = groups.filter((g) => g.dx === dx).sort((a, b) => byString(a.key, b.key));
    const ordered = classRandom.shuffle(classGroups);
    ordered.sort((a, b) => b.imageIds.length - a.imageIds.length);
    const images = ordered.reduce((n, g) => n + g.imageIds.length, 0);
    const targets = targetsOf(images, k);
    const filled = new Array<number>(k).fill(0);
    for (const group of ordered) {
      const size = group.imageIds.length;
      const pick = (mustFit: boolean): number | undefined => {
        let best: number | undefined;
        let bestFill = Infinity;
        for (let f = 0; f < k; f++) {
          if (targets[f] === 0) continue;
          if (mustFit && filled[f]! + size > targets[f]!) continue;
          const fill = filled[f]! / targets[f]!;
          if (fill < bestFill) {
            best = f;
            bestFill = fill;
          }
        }
        return best;
      };
      const f = pick(true) ?? pick(false) ?? 0;
      filled[f]! += size;
      foldOf.set(group, f);
    }
  }
  const assignment = new Map<string, number>();
  for (const [group, f] of foldOf) for (const id of group.imageIds) assignment.set(id, f);
  const table = Object.fromEntries(DX.map((dx) => [dx, new Array<number>(k).fill(0)])) as Record<
    Dx,
    number[]
  >;
  const totals = new Array<number>(k).fill(0);
  for (const r of records) {
    const f = assignment.get(r.imageId) as number;
    table[r.dx][f]!++;
    totals[f]!++;
  }
  return { k, seed, assignment, table, totals };
}
