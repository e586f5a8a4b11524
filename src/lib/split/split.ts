/**
 * Train/validation/test splits of labelled images.
 *
 * The default split is stratified by dx and grouped by lesion: every image of a lesion lands in the same split,
 * because HAM10000 holds up to six photographs of one lesion and a model that saw one of them in training
 * "recognises" the others, which inflates validation and test scores. The image-level split ignores lesions,
 * as the seed notebook did; it is kept so that a class can measure that inflation, and is labelled leaky.
 */
import { DX, type Dx } from '../data/dx.ts';
import type { LesionRecord } from '../data/types.ts';
import { createRandom, type Random } from '../random.ts';

export const SPLIT_NAMES = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

/** Fractions of each class's images for train, val and test; non-negative, summing to 1. */
export type Ratios = readonly [train: number, val: number, test: number];

/** How the UI and exports name the two kinds of split; the leaky one always says so. */
export const SPLIT_KIND_LABELS = {
  grouped: 'Lesion-grouped split (no lesion in two splits)',
  leaky: 'Image-level split (leaky, as in the seed notebook: images of one lesion can be in train and test)',
} as const;

export const DEFAULT_SEED = 1337;
export const DEFAULT_RATIOS: Ratios = [0.8, 0.1, 0.1];
/** How far from 1 the ratios may sum, so that typed decimals like .7,.2,.1 are accepted. */
const RATIO_SUM_TOLERANCE = 1e-6;

export type SplitCounts = Record<SplitName, number>;

export interface SplitOptions {
  /** Any integer; it is taken modulo 2^32 by the random stream. Default 1337, as the seed notebook. */
  seed?: number;
  ratios?: Ratios;
  /** true (default): no lesion in two splits. false: the leaky image-level split of the seed notebook. */
  grouped?: boolean;
  /**
   * What a grouped split does with a record that has no lesion id (ISIC 2018 one-hot label files have none):
   * 'error' (default) refuses, because without lesion ids nobody can tell which images show the same lesion;
   * 'own-lesion' treats each such image as a lesion of its own, which is only sound when the user knows that
   * no lesion was photographed twice. The split then reports how many images were treated so.
   */
  missingLesionId?: 'error' | 'own-lesion';
  /**
   * Pairs of image ids to keep in one split (a grouped split only): possible hidden duplicates, one lesion filed
   * under two lesion ids (src/lib/data/near-duplicates.ts). Their lesions are merged into one group (union-find),
   * so every image of both lesions lands in the same split. Absent or empty: the split is exactly the one without.
   */
  together?: ReadonlyArray<readonly [string, string]>;
}

/** What a split did with `SplitOptions.together`. */
export interface KeptTogether {
  /** Pairs given. */
  pairs: number;
  /** Pairs whose two images are of different lesions and now share a split (the rest were same-lesion already). */
  keptTogether: number;
  /** Pairs naming an image that is not among the records (ignored). */
  unknown: number;
  /** Lesion groups after merging, and how many lesions went into groups of more than one. */
  groups: number;
  mergedLesions: number;
}

export interface Split {
  seed: number;
  ratios: Ratios;
  grouped: boolean;
  /** image id → split, in the order of the records. */
  assignment: Map<string, SplitName>;
  /** Images per class per split, each image counted under its own dx. */
  table: Record<Dx, SplitCounts>;
  totals: SplitCounts;
  /** Distinct lesion ids per split (images without a lesion id are not counted). */
  lesions: SplitCounts;
  /** Lesions with images in more than one split: 0 for a grouped split by construction. */
  leakedLesions: number;
  /** Lesions whose images carry more than one dx (none in HAM10000); stratified under their majority dx. */
  mixedDxLesions: number;
  /** Images that had no lesion id and were treated as their own lesion ('own-lesion'). */
  imagesWithoutLesionId: number;
  /** Present only when `together` pairs were given to a grouped split. */
  together?: KeptTogether;
}

/** A split that cannot be made from these records or options; the message says why and what to do. */
export class SplitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SplitError';
  }
}

/** Checks ratios: three finite, non-negative numbers summing to 1 (± 1e-6). */
export function validateRatios(ratios: readonly number[]): Ratios {
  if (ratios.length !== 3) {
    throw new SplitError(`ratios need three numbers (train, val, test); got ${ratios.length}`);
  }
  ratios.forEach((r, i) => {
    if (!Number.isFinite(r) || r < 0) {
      throw new SplitError(`${SPLIT_NAMES[i]} ratio ${r} must be a non-negative number`);
    }
  });
  const sum = ratios.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > RATIO_SUM_TOLERANCE) {
    throw new SplitError(`ratios ${ratios.join(', ')} sum to ${sum}; they must sum to 1`);
  }
  return [ratios[0] as number, ratios[1] as number, ratios[2] as number];
}

/** Parses "0.8,0.1,0.1" (or ".8,.1,.1"). */
export function parseRatios(text: string): Ratios {
  const parts = text.split(',').map((p) => p.trim());
  const numbers = parts.map((p) => (p === '' ? Number.NaN : Number(p)));
  const bad = numbers.findIndex((n) => Number.isNaN(n));
  if (bad >= 0) throw new SplitError(`ratio "${parts[bad]}" in "${text}" is not a number`);
  return validateRatios(numbers);
}

/**
 * Whole-image targets per split for a class of n images: r·n rounded by the largest-remainder method, so the
 * targets sum to n exactly; equal remainders go to the earlier split (train, then val).
 */
export function splitTargets(n: number, ratios: Ratios): SplitCounts {
  const raw = ratios.map((r) => r * n);
  const counts = raw.map((x) => Math.floor(x + 1e-9));
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = [0, 1, 2].sort((a, b) => {
    const fa = (raw[a] as number) - (counts[a] as number);
    const fb = (raw[b] as number) - (counts[b] as number);
    return fb - fa || a - b;
  });
  for (const i of order) {
    if (left <= 0) break;
    if ((ratios[i] as number) > 0) {
      counts[i] = (counts[i] as number) + 1;
      left--;
    }
  }
  return { train: counts[0] as number, val: counts[1] as number, test: counts[2] as number };
}

function emptyCounts(): SplitCounts {
  return { train: 0, val: 0, test: 0 };
}

function emptyTable(): Record<Dx, SplitCounts> {
  return Object.fromEntries(DX.map((dx) => [dx, emptyCounts()])) as Record<Dx, SplitCounts>;
}

function checkUniqueImageIds(records: readonly LesionRecord[]): void {
  const seen = new Map<string, number>();
  for (const r of records) {
    const line = seen.get(r.imageId);
    if (line !== undefined) {
      throw new SplitError(
        `image ${r.imageId} appears twice (lines ${line} and ${r.line}); each image can be in one split only`,
      );
    }
    seen.set(r.imageId, r.line);
  }
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The images of one lesion (or of one image without a lesion id, under 'own-lesion'). */
export interface LesionGroup {
  /** The lesion id; an image without one gets a key no lesion id can equal. */
  key: string;
  /** The stratum: the lesion's majority dx. */
  dx: Dx;
  imageIds: string[];
}

/**
 * The lesions of the records, each with its stratum dx: the majority dx of its images, ties going to the dx
 * seen first in the records (in HAM10000 every lesion has a single dx; the rule only matters for other files).
 */
export function groupByLesion(
  records: readonly LesionRecord[],
  missingLesionId: 'error' | 'own-lesion' = 'error',
): { groups: LesionGroup[]; mixed: number; withoutId: number } {
  const byKey = new Map<string, { imageIds: string[]; dxCounts: Map<Dx, number> }>();
  let withoutId = 0;
  for (const r of records) {
    let key: string;
    if (r.lesionId === null) {
      if (missingLesionId === 'error') {
        throw new SplitError(
          `line ${r.line} (image ${r.imageId}) has no lesion id: a lesion-grouped split is impossible without lesion ids ` +
            `(ISIC 2018 one-hot label files have none). Use the image-level split (leaky), or treat each image as its ` +
            `own lesion if you know no lesion was photographed twice.`,
        );
      }
      // A prefix no real lesion id has, so an image id can never collide with a lesion id.
      key = `\u0000image:${r.imageId}`;
      withoutId++;
    } else {
      key = r.lesionId;
    }
    let entry = byKey.get(key);
    if (!entry) {
      entry = { imageIds: [], dxCounts: new Map() };
      byKey.set(key, entry);
    }
    entry.imageIds.push(r.imageId);
    entry.dxCounts.set(r.dx, (entry.dxCounts.get(r.dx) ?? 0) + 1);
  }
  let mixed = 0;
  const groups: LesionGroup[] = [];
  for (const [key, { imageIds, dxCounts }] of byKey) {
    if (dxCounts.size > 1) mixed++;
    let best: Dx | undefined;
    let bestCount = 0;
    // Map iteration follows first insertion, so a strict > keeps the first-seen dx on ties.
    for (const [dx, count] of dxCounts) {
      if (count > bestCount) {
        best = dx;
        bestCount = count;
      }
    }
    groups.push({ key, dx: best as Dx, imageIds });
  }
  return { groups, mixed, withoutId };
}

/**
 * Merges lesion groups joined by `pairs` of image ids (union-find over groups). A merged group takes the smallest
 * key of its lesions and the dx with the most images (ties: the dx of the group seen first); groups no pair touches
 * are returned as they were, in their order.
 */
export function mergeGroups(
  groups: readonly LesionGroup[],
  pairs: ReadonlyArray<readonly [string, string]>,
): { groups: LesionGroup[]; report: KeptTogether } {
  const groupOf = new Map<string, number>();
  groups.forEach((g, i) => g.imageIds.forEach((id) => groupOf.set(id, i)));
  const parent = groups.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  let unknown = 0;
  let across = 0;
  for (const [a, b] of pairs) {
    const ga = groupOf.get(a);
    const gb = groupOf.get(b);
    if (ga === undefined || gb === undefined) {
      unknown++;
      continue;
    }
    if (ga !== gb) across++;
    const ra = find(ga);
    const rb = find(gb);
    // The earlier group is the root, so a merged group keeps the first-seen order.
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
  const members = new Map<number, number[]>();
  groups.forEach((_, i) => {
    const root = find(i);
    const list = members.get(root);
    if (list) list.push(i);
    else members.set(root, [i]);
  });
  const merged: LesionGroup[] = [];
  let mergedLesions = 0;
  for (const [root, list] of members) {
    if (list.length === 1) {
      merged.push(groups[root]!);
      continue;
    }
    mergedLesions += list.length;
    const dxCounts = new Map<Dx, number>();
    for (const i of list) {
      const g = groups[i]!;
      dxCounts.set(g.dx, (dxCounts.get(g.dx) ?? 0) + g.imageIds.length);
    }
    let dx = groups[root]!.dx;
    let best = 0;
    for (const [d, count] of dxCounts) {
      if (count > best) {
        dx = d;
        best = count;
      }
    }
    merged.push({
      key: list.map((i) => groups[i]!.key).sort(byString)[0]!,
      dx,
      imageIds: list.flatMap((i) => groups[i]!.imageIds),
    });
  }
  return {
    groups: merged,
    report: { pairs: pairs.length, keptTogether: across, unknown, groups: merged.length, mergedLesions },
  };
}

/**
 * Assigns the groups of one class to splits. Groups are shuffled with the seed, then ordered by size (largest
 * first, stable, so the shuffle breaks ties); each goes to the split that is least full relative to its target
 * among those it fits in (else among all with a target), ties to the earlier split. Large lesions therefore
 * spread over the splits in proportion, and the single-image lesions that come last fill every target exactly
 * whenever the class has enough of them.
 */
function assignGroups(
  groups: LesionGroup[],
  targets: SplitCounts,
  random: Random,
): Map<LesionGroup, SplitName> {
  const ordered = random.shuffle([...groups].sort((a, b) => byString(a.key, b.key)));
  ordered.sort((a, b) => b.imageIds.length - a.imageIds.length);
  const filled = emptyCounts();
  const result = new Map<LesionGroup, SplitName>();
  for (const group of ordered) {
    const size = group.imageIds.length;
    const pick = (mustFit: boolean): SplitName | undefined => {
      let best: SplitName | undefined;
      let bestFill = Infinity;
      for (const name of SPLIT_NAMES) {
        if (targets[name] === 0) continue;
        if (mustFit && filled[name] + size > targets[name]) continue;
        const fill = filled[name] / targets[name];
        if (fill < bestFill) {
          best = name;
          bestFill = fill;
        }
      }
      return best;
    };
    const name = pick(true) ?? pick(false) ?? 'train';
    filled[name] += size;
    result.set(group, name);
  }
  return result;
}

/**
 * Splits records into train/val/test, stratified by dx; grouped by lesion unless `grouped: false`.
 * The result depends only on the records' content (not their order) and the seed.
 */
export function splitRecords(records: readonly LesionRecord[], options: SplitOptions = {}): Split {
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isSafeInteger(seed)) throw new SplitError(`seed ${seed} must be an integer`);
  const ratios = validateRatios(options.ratios ?? DEFAULT_RATIOS);
  const grouped = options.grouped ?? true;
  checkUniqueImageIds(records);

  const random = createRandom(seed);
  const assignment = new Map<string, SplitName>();
  let mixedDxLesions = 0;
  let imagesWithoutLesionId = 0;
  let together: KeptTogether | undefined;

  if (grouped) {
    const lesions = groupByLesion(records, options.missingLesionId ?? 'error');
    const { mixed, withoutId } = lesions;
    let groups = lesions.groups;
    if (options.together && options.together.length > 0) {
      const merged = mergeGroups(groups, options.together);
      groups = merged.groups;
      together = merged.report;
    }
    mixedDxLesions = mixed;
    imagesWithoutLesionId = withoutId;
    const groupSplit = new Map<string, SplitName>();
    for (const dx of DX) {
      // One forked stream per class, in DX order: a class's split never depends on another class's contents.
      const classRandom = random.fork();
      const classGroups = groups.filter((g) => g.dx === dx);
      const images = classGroups.reduce((n, g) => n + g.imageIds.length, 0);
      for (const [group, name] of assignGroups(classGroups, splitTargets(images, ratios), classRandom)) {
        for (const id of group.imageIds) groupSplit.set(id, name);
      }
    }
    for (const r of records) assignment.set(r.imageId, groupSplit.get(r.imageId) as SplitName);
  } else {
    const imageSplit = new Map<string, SplitName>();
    for (const dx of DX) {
      const classRandom = random.fork();
      const ids = records
        .filter((r) => r.dx === dx)
        .map((r) => r.imageId)
        .sort(byString);
      classRandom.shuffle(ids);
      const targets = splitTargets(ids.length, ratios);
      ids.forEach((id, i) => {
        imageSplit.set(id, i < targets.train ? 'train' : i < targets.train + targets.val ? 'val' : 'test');
      });
    }
    for (const r of records) assignment.set(r.imageId, imageSplit.get(r.imageId) as SplitName);
  }

  const table = emptyTable();
  const totals = emptyCounts();
  const lesionSets: Record<SplitName, Set<string>> = { train: new Set(), val: new Set(), test: new Set() };
  for (const r of records) {
    const name = assignment.get(r.imageId) as SplitName;
    table[r.dx][name]++;
    totals[name]++;
    if (r.lesionId !== null) lesionSets[name].add(r.lesionId);
  }
  return {
    seed,
    ratios,
    grouped,
    assignment,
    table,
    totals,
    lesions: { train: lesionSets.train.size, val: lesionSets.val.size, test: lesionSets.test.size },
    leakedLesions: findLeakedLesions(records, assignment).length,
    mixedDxLesions,
    imagesWithoutLesionId,
    ...(together ? { together } : {}),
  };
}

/**
 * Lesion ids whose images sit in more than one split, sorted. Records without a lesion id, or absent from the
 * assignment, are ignored. For the UI to show how much a leaky split leaks.
 */
export function findLeakedLesions(
  records: readonly LesionRecord[],
  assignment: ReadonlyMap<string, SplitName>,
): string[] {
  const seen = new Map<string, SplitName | 'leaked'>();
  for (const r of records) {
    if (r.lesionId === null) continue;
    const name = assignment.get(r.imageId);
    if (name === undefined) continue;
    const before = seen.get(r.lesionId);
    if (before === undefined) seen.set(r.lesionId, name);
    else if (before !== name) seen.set(r.lesionId, 'leaked');
  }
  return [...seen]
    .filter(([, v]) => v === 'leaked')
    .map(([k]) => k)
    .sort(byString);
}

/** The records that went to one split, in record order. */
export function recordsIn(
  records: readonly LesionRecord[],
  assignment: ReadonlyMap<string, SplitName>,
  name: SplitName,
): LesionRecord[] {
  return records.filter((r) => assignment.get(r.imageId) === name);
}

/** The largest |share of a class's images in a split − that split's ratio|, over classes with images. */
export function maxRatioDeviation(split: Pick<Split, 'table' | 'ratios'>): number {
  let worst = 0;
  for (const dx of DX) {
    const row = split.table[dx];
    const n = row.train + row.val + row.test;
    if (n === 0) continue;
    SPLIT_NAMES.forEach((name, i) => {
      worst = Math.max(worst, Math.abs(row[name] / n - (split.ratios[i] as number)));
    });
  }
  return worst;
}
