const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 10015 → "10,015". */
export function formatCount(n: number): string {
  return integer.format(n);
}

/** A figure with a fixed number of decimals; "—" when undefined (e.g. the std of one value). */
export function formatNumber(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return '—';
  return new Intl.NumberFormat('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(x);
}

/** 66.95 → "66.95 %" (a percentage already on the 0–100 scale). */
export function formatPercent(p: number, digits = 2): string {
  return `${formatNumber(p, digits)} %`;
}

/** Whole numbers as counts ("40"), others with two decimals ("51.86"): how the age summary reads best. */
export function formatStat(x: number): string {
  return Number.isInteger(x) ? formatCount(x) : formatNumber(x, 2);
}

/** A 95 % interval as the Results page shows it: "95 % CI 0.612–0.701"; "" when there is none. */
export function formatInterval(x: readonly [number, number] | null | undefined, digits = 3): string {
  return x ? `95 % CI ${formatNumber(x[0], digits)}–${formatNumber(x[1], digits)}` : '';
}
