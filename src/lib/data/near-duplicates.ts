/**
 * Hidden duplicates: images of one lesion filed under two lesion ids, which a lesion-grouped split would put in
 * different splits (Abhishek, Jain & Hamarneh, "Investigating the quality of DermaMNIST and Fitzpatrick17k
 * dermatological image datasets", Sci. Data 12:196, 2025, found such pairs in HAM10000 from image-embedding cosine
 * similarity followed by manual review).
 *
 * Here the embedding is the backbone's pooled features (what the feature cache holds). Rows are L2-normalised once;
 * cosine similarities are then dot products, computed a block of rows at a time (`blockRows` × n floats, never the
 * whole n × n matrix: 10,015² similarities would be 400 MB) and scanned as they come back:
 *
 * - the `top` most similar pairs of images with different lesion ids (a min-heap), most similar first;
 * - a self-check on the known duplicates, the pairs with the SAME lesion id: how their similarities compare with
 *   those of different-lesion pairs (histograms, ROC AUC, and the share of same-lesion pairs among the most similar
 *   pairs overall), and for each image with a same-lesion sibling whether that sibling is among its k nearest
 *   neighbours (recall@k). If the features find known duplicates first, the top different-lesion pairs are the
 *   candidates worth a look.
 */
import * as tf from '@tensorflow/tfjs';

export interface DuplicateSearchInput {
  /** count × dim pooled features, image-major. */
  features: Float32Array;
  dim: number;
  imageIds: readonly string[];
  /** null: no lesion id (then the image is its own lesion). */
  lesionIds: readonly (string | null)[];
  dx: readonly string[];
}

export interface DuplicatePair {
  a: string;
  b: string;
  similarity: number;
  lesion_a: string | null;
  lesion_b: string | null;
  dx_a: string;
  dx_b: string;
}

export interface DuplicateSearchOptions {
  /** How many different-lesion pairs to keep, most similar first. Default 100. */
  top?: number;
  /** Rows per block (block × count similarities in memory at once). Default 256. */
  blockRows?: number;
  /** Also keep every different-lesion pair at or above this similarity (beyond `top`), up to `maxPairs`. */
  threshold?: number | null;
  maxPairs?: number;
  /** Compute the same-lesion self-check. Default true. */
  selfCheck?: boolean;
  /**
   * Subtract the mean feature vector before normalising. Pooled ReLU features share a large positive component,
   * which makes every pair look alike; centring leaves what distinguishes the images. Default true.
   */
  center?: boolean;
}

export interface SelfCheck {
  /** Pairs of images sharing a lesion id (the known duplicates). */
  same_lesion_pairs: number;
  different_lesion_pairs: number;
  /** Probability that a random same-lesion pair is more similar than a random different-lesion pair. */
  auc: number;
  /** Of the `same_lesion_pairs` most similar pairs overall, the share that are same-lesion pairs. */
  r_precision: number;
  /** Quantiles of the similarity of same-lesion and of different-lesion pairs (from 0.001-wide histograms). */
  same_lesion_quantiles: Record<string, number>;
  different_lesion_quantiles: Record<string, number>;
  /** Images that have at least one same-lesion sibling. */
  images_with_sibling: number;
  /** Share of those whose most similar sibling is among their k nearest neighbours (all other images). */
  recall_at: Record<string, number>;
  /** Different-lesion pairs at or above the median / the 5th percentile of the same-lesion similarities. */
  different_pairs_above_same_median: number;
  different_pairs_above_same_p05: number;
}

export interface DuplicateSearchResult {
  pairs: DuplicatePair[];
  images: number;
  /** Pairs at or above `threshold` (when given), most similar first; capped at maxPairs. */
  above_threshold: DuplicatePair[] | null;
  self_check: SelfCheck | null;
}

export interface DuplicateSearchProgress {
  done: number;
  total: number;
}

const BINS = 2000;
const RECALL_K = [1, 5, 10] as const;
const QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99] as const;

const bin = (s: number): number => Math.min(BINS - 1, Math.max(0, Math.floor(((s + 1) / 2) * BINS)));
const binValue = (b: number): number => ((b + 0.5) / BINS) * 2 - 1;

/** A bounded min-heap of pairs by similarity: keeps the `capacity` largest. */
class TopPairs {
  private readonly sims: number[] = [];
  private readonly ij: number[] = [];
  constructor(private readonly capacity: number) {}

  get min(): number {
    return this.sims.length < this.capacity ? -Infinity : this.sims[0]!;
  }

  push(sim: number, i: number, j: number): void {
    if (this.capacity === 0) return;
    if (this.sims.length < this.capacity) {
      this.sims.push(sim);
      this.ij.push(i, j);
      this.up(this.sims.length - 1);
    } else if (sim > this.sims[0]!) {
      this.sims[0] = sim;
      this.ij[0] = i;
      this.ij[1] = j;
      this.down(0);
    }
  }

  sorted(): Array<{ sim: number; i: number; j: number }> {
    return this.sims
      .map((sim, k) => ({ sim, i: this.ij[2 * k]!, j: this.ij[2 * k + 1]! }))
      .sort((x, y) => y.sim - x.sim || x.i - y.i || x.j - y.j);
  }

  private swap(a: number, b: number): void {
    [this.sims[a], this.sims[b]] = [this.sims[b]!, this.sims[a]!];
    [this.ij[2 * a], this.ij[2 * b]] = [this.ij[2 * b]!, this.ij[2 * a]!];
    [this.ij[2 * a + 1], this.ij[2 * b + 1]] = [this.ij[2 * b + 1]!, this.ij[2 * a + 1]!];
  }

  private up(k: number): void {
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (this.sims[parent]! <= this.sims[k]!) return;
      this.swap(parent, k);
      k = parent;
    }
  }

  private down(k: number): void {
    const n = this.sims.length;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let m = k;
      if (l < n && this.sims[l]! < this.sims[m]!) m = l;
      if (r < n && this.sims[r]! < this.sims[m]!) m = r;
      if (m === k) return;
      this.swap(m, k);
      k = m;
    }
  }
}

function quantiles(hist: Float64Array, total: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (total === 0) return out;
  let q = 0;
  let seen = 0;
  for (let b = 0; b < BINS && q < QUANTILES.length; b++) {
    seen += hist[b]!;
    while (q < QUANTILES.length && seen >= QUANTILES[q]! * total) {
      out[
        `p${Math.round(QUANTILES[q]! * 100)
          .toString()
          .padStart(2, '0')}`
      ] = binValue(b);
      q++;
    }
  }
  return out;
}

/** Lesion keys: the lesion id, or the image id for an image without one. */
function lesionKeys(input: DuplicateSearchInput): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(input.imageIds, (image, i) => {
    const key = input.lesionIds[i] ?? `\u0000image:${image}`;
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size;
      ids.set(key, id);
    }
    return id;
  });
}

/**
 * Searches `input` for the most similar different-lesion pairs (see the module comment). Yields progress after each
 * block of rows; the result is the generator's return value.
 */
export async function* findNearDuplicates(
  input: DuplicateSearchInput,
  options: DuplicateSearchOptions = {},
): AsyncGenerator<DuplicateSearchProgress, DuplicateSearchResult> {
  const n = input.imageIds.length;
  const { dim } = input;
  if (input.features.length !== n * dim) {
    throw new RangeError(`${input.features.length} feature values for ${n} images of ${dim} features each`);
  }
  if (input.lesionIds.length !== n || input.dx.length !== n) {
    throw new RangeError(
      `${n} images but ${input.lesionIds.length} lesion ids and ${input.dx.length} labels`,
    );
  }
  const top = options.top ?? 100;
  const blockRows = Math.max(1, options.blockRows ?? 256);
  const threshold = options.threshold ?? null;
  const maxPairs = options.maxPairs ?? 10_000;
  const selfCheck = options.selfCheck ?? true;
  const lesion = lesionKeys(input);

  const heap = new TopPairs(top);
  const above: Array<{ sim: number; i: number; j: number }> = [];
  const sameHist = new Float64Array(BINS);
  const diffHist = new Float64Array(BINS);
  let sameCount = 0;
  let diffCount = 0;
  let withSibling = 0;
  const recallHits = RECALL_K.map(() => 0);

  const center = options.center ?? true;
  const normalised = tf.tidy(() => {
    let x: tf.Tensor2D = tf.tensor2d(input.features, [n, dim]);
    if (center) x = tf.sub(x, tf.mean(x, 0, true));
    const norm = tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12);
    return tf.div(x, norm) as tf.Tensor2D;
  });
  try {
    for (let start = 0; start < n; start += blockRows) {
      const rows = Math.min(blockRows, n - start);
      const block = tf.tidy(() =>
        tf.matMul(tf.slice(normalised, [start, 0], [rows, dim]), normalised, false, true),
      );
      let sims: Float32Array;
      try {
        sims = (await block.data()) as Float32Array;
      } finally {
        block.dispose();
      }
      for (let r = 0; r < rows; r++) {
        const i = start + r;
        const row = sims.subarray(r * n, (r + 1) * n);
        const li = lesion[i]!;
        // Upper triangle: each unordered pair once.
        for (let j = i + 1; j < n; j++) {
          const s = row[j]!;
          if (lesion[j] === li) {
            sameCount++;
            if (selfCheck) sameHist[bin(s)]! += 1;
          } else {
            diffCount++;
            if (selfCheck) diffHist[bin(s)]! += 1;
            if (s > heap.min) heap.push(s, i, j);
            if (threshold !== null && s >= threshold && above.length < maxPairs) above.push({ sim: s, i, j });
          }
        }
        if (selfCheck) {
          // Recall@k: the best sibling's rank among all other images.
          let best = -Infinity;
          for (let j = 0; j < n; j++) if (j !== i && lesion[j] === li && row[j]! > best) best = row[j]!;
          if (best > -Infinity) {
            withSibling++;
            let better = 0;
            for (let j = 0; j < n && better < RECALL_K[RECALL_K.length - 1]!; j++) {
              if (j !== i && lesion[j] !== li && row[j]! > best) better++;
            }
            RECALL_K.forEach((k, q) => {
              if (better < k) recallHits[q]! += 1;
            });
          }
        }
      }
      yield { done: start + rows, total: n };
    }
  } finally {
    normalised.dispose();
  }

  const toPair = ({ sim, i, j }: { sim: number; i: number; j: number }): DuplicatePair => ({
    a: input.imageIds[i]!,
    b: input.imageIds[j]!,
    similarity: sim,
    lesion_a: input.lesionIds[i] ?? null,
    lesion_b: input.lesionIds[j] ?? null,
    dx_a: input.dx[i]!,
    dx_b: input.dx[j]!,
  });
  above.sort((x, y) => y.sim - x.sim || x.i - y.i || x.j - y.j);
  return {
    pairs: heap.sorted().map(toPair),
    images: n,
    above_threshold: threshold === null ? null : above.map(toPair),
    self_check: selfCheck ? summarise() : null,
  };

  function summarise(): SelfCheck {
    // AUC from the histograms (ties within a bin count half).
    let diffBelow = 0;
    let auc = 0;
    for (let b = 0; b < BINS; b++) {
      auc += sameHist[b]! * (diffBelow + diffHist[b]! / 2);
      diffBelow += diffHist[b]!;
    }
    auc = sameCount > 0 && diffCount > 0 ? auc / (sameCount * diffCount) : Number.NaN;
    // R-precision: walk down from the most similar bin until sameCount pairs are taken.
    let taken = 0;
    let sameTaken = 0;
    for (let b = BINS - 1; b >= 0 && taken < sameCount; b--) {
      const inBin = sameHist[b]! + diffHist[b]!;
      const take = Math.min(inBin, sameCount - taken);
      sameTaken += inBin > 0 ? (sameHist[b]! * take) / inBin : 0;
      taken += take;
    }
    const sameQ = quantiles(sameHist, sameCount);
    const countAbove = (level: number | undefined): number => {
      if (level === undefined) return 0;
      let c = 0;
      for (let b = bin(level); b < BINS; b++) c += diffHist[b]!;
      return c;
    };
    return {
      same_lesion_pairs: sameCount,
      different_lesion_pairs: diffCount,
      auc,
      r_precision: sameCount > 0 ? sameTaken / sameCount : Number.NaN,
      same_lesion_quantiles: sameQ,
      different_lesion_quantiles: quantiles(diffHist, diffCount),
      images_with_sibling: withSibling,
      recall_at: Object.fromEntries(
        RECALL_K.map((k, q) => [String(k), withSibling > 0 ? recallHits[q]! / withSibling : Number.NaN]),
      ),
      different_pairs_above_same_median: countAbove(sameQ.p50),
      different_pairs_above_same_p05: countAbove(sameQ.p05),
    };
  }
}

/** findNearDuplicates without progress. */
export async function nearDuplicates(
  input: DuplicateSearchInput,
  options: DuplicateSearchOptions = {},
): Promise<DuplicateSearchResult> {
  const search = findNearDuplicates(input, options);
  for (;;) {
    const step = await search.next();
    if (step.done) return step.value;
  }
}
