/**
 * Descriptive statistics and chart data for the EDA page and the CLI. Conventions follow pandas/numpy/scipy so
 * the figures match the seed notebook: sample std (ddof 1), linear-interpolated quantiles, Scott's KDE bandwidth.
 * Non-finite values (NaN, ±Infinity) are left out everywhere, as pandas skips NaN.
 */
import type { AgeStats } from './types.ts';

export interface HistogramBin {
  /** Inclusive lower edge. */
  x0: number;
  /** Exclusive upper edge, except for the last bin of a `bins` histogram, which includes its upper edge. */
  x1: number;
  count: number;
  /** count / (n * width): on the same scale as `kde`, so the two can share an axis. */
  density: number;
}

export interface BoxStats {
  count: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  iqr: number;
  /** Most extreme data points within 1.5 IQR of the quartiles (Tukey), as matplotlib and seaborn draw them. */
  lowerWhisker: number;
  upperWhisker: number;
  /** Data points beyond the whiskers, ascending. */
  outliers: number[];
}

export interface DensityPoint {
  x: number;
  density: number;
}

function finite(values: readonly number[]): number[] {
  return values.filter((v) => Number.isFinite(v));
}

function ascending(values: readonly number[]): number[] {
  return finite(values).sort((a, b) => a - b);
}

export function mean(values: readonly number[]): number {
  const xs = finite(values);
  if (xs.length === 0) return NaN;
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Sample standard deviation (ddof 1, pandas' default); NaN for fewer than two values. */
export function sampleStd(values: readonly number[]): number {
  const xs = finite(values);
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  // Two passes: the one-pass sum of squares loses digits when the mean is large relative to the spread.
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * The p-quantile of ascending `sorted` values with linear interpolation between closest ranks (pandas' and
 * numpy's default): position (n - 1) * p. NaN when empty.
 */
export function quantile(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile: p must be between 0 and 1, got ${p}`);
  const n = sorted.length;
  if (n === 0) return NaN;
  const position = (n - 1) * p;
  const lo = Math.floor(position);
  const below = sorted[lo] as number;
  const above = sorted[Math.min(lo + 1, n - 1)] as number;
  return below + (position - lo) * (above - below);
}

/** pandas' `Series.describe()` figures, unrounded; NaN where undefined (no values, or std of one value). */
export function describe(values: readonly number[]): AgeStats {
  const sorted = ascending(values);
  const n = sorted.length;
  return {
    count: n,
    mean: mean(sorted),
    std: sampleStd(sorted),
    min: n > 0 ? (sorted[0] as number) : NaN,
    q1: quantile(sorted, 0.25),
    median: quantile(sorted, 0.5),
    q3: quantile(sorted, 0.75),
    max: n > 0 ? (sorted[n - 1] as number) : NaN,
  };
}

/**
 * Counts values into bins. With `binWidth`, edges sit on multiples of the width (ages 0–4, 5–9, …), bins are
 * half-open and the last one is extended to hold the maximum. With `bins`, the range [min, max] is cut into that
 * many equal bins and the last includes max (numpy.histogram); a single distinct value gets the range v ± 0.5.
 */
export function histogram(
  values: readonly number[],
  options: { binWidth: number } | { bins: number },
): HistogramBin[] {
  const xs = finite(values);
  if (xs.length === 0) return [];
  // reduce rather than Math.min(...xs): spreading a large array can overflow the call stack.
  let lo = xs.reduce((a, b) => Math.min(a, b));
  let hi = xs.reduce((a, b) => Math.max(a, b));
  let width: number;
  let count: number;
  if ('binWidth' in options) {
    width = options.binWidth;
    if (!(width > 0 && Number.isFinite(width)))
      throw new RangeError(`histogram: binWidth must be > 0, got ${width}`);
    lo = Math.floor(lo / width) * width;
    count = Math.floor((hi - lo) / width) + 1;
  } else {
    count = options.bins;
    if (!(Number.isInteger(count) && count > 0))
      throw new RangeError(`histogram: bins must be a positive integer`);
    if (lo === hi) {
      lo -= 0.5;
      hi += 0.5;
    }
    width = (hi - lo) / count;
  }
  const counts = new Array<number>(count).fill(0);
  for (const x of xs) {
    const i = Math.min(Math.floor((x - lo) / width), count - 1);
    counts[i] = (counts[i] as number) + 1;
  }
  return counts.map((c, i) => ({
    x0: lo + i * width,
    x1: 'bins' in options && i === count - 1 ? hi : lo + (i + 1) * width,
    count: c,
    density: c / (xs.length * width),
  }));
}

/** Scott's rule as scipy's gaussian_kde applies it in one dimension: sample std × n^(-1/5). */
export function scottBandwidth(values: readonly number[]): number {
  const xs = finite(values);
  return sampleStd(xs) * xs.length ** -0.2;
}

/**
 * Gaussian kernel density estimate of `values` at each of `xs`; integrates to 1 over the real line.
 * The bandwidth is the kernel's standard deviation, Scott's rule by default (seaborn's `kdeplot`).
 */
export function kde(values: readonly number[], xs: readonly number[], bandwidth?: number): DensityPoint[] {
  const data = finite(values);
  const h = bandwidth ?? scottBandwidth(data);
  if (data.length === 0) return xs.map((x) => ({ x, density: 0 }));
  if (!(h > 0 && Number.isFinite(h))) {
    throw new RangeError(`kde: the bandwidth must be > 0 (got ${h}; are all values equal?)`);
  }
  const norm = 1 / (data.length * h * Math.sqrt(2 * Math.PI));
  return xs.map((x) => {
    let sum = 0;
    for (const v of data) {
      const z = (x - v) / h;
      sum += Math.exp(-0.5 * z * z);
    }
    return { x, density: sum * norm };
  });
}

/** `n` evenly spaced points from `start` to `stop` inclusive (numpy.linspace), e.g. the x grid for `kde`. */
export function linspace(start: number, stop: number, n: number): number[] {
  if (n === 1) return [start];
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? stop : start + ((stop - start) * i) / (n - 1)));
}

/** Box-plot figures with Tukey's whiskers; quartiles interpolate linearly like `quantile`. */
export function boxStats(values: readonly number[]): BoxStats {
  const sorted = ascending(values);
  const n = sorted.length;
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  const iqr = q3 - q1;
  const lowFence = q1 - 1.5 * iqr;
  const highFence = q3 + 1.5 * iqr;
  const inside = sorted.filter((x) => x >= lowFence && x <= highFence);
  return {
    count: n,
    min: n > 0 ? (sorted[0] as number) : NaN,
    q1,
    median: quantile(sorted, 0.5),
    q3,
    max: n > 0 ? (sorted[n - 1] as number) : NaN,
    iqr,
    lowerWhisker: inside.length > 0 ? (inside[0] as number) : NaN,
    upperWhisker: inside.length > 0 ? (inside[inside.length - 1] as number) : NaN,
    outliers: sorted.filter((x) => x < lowFence || x > highFence),
  };
}
