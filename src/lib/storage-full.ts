/**
 * Browser storage full (a `QuotaExceededError` from OPFS or IndexedDB): the message that says how much was needed,
 * how much the browser reports as available for this site (navigator.storage.estimate()), what was kept and what to
 * do. Pure: the caller passes the estimate it read.
 */

export interface StorageEstimateLike {
  quota?: number;
  usage?: number;
}

/** True for the browser's "storage is full" errors (DOMException QuotaExceededError, legacy code 22). */
export function isQuotaExceeded(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return name === 'QuotaExceededError' || code === 22;
}

/**
 * Megabytes for people: one decimal under 10 MB (checkpoints are often 1–3 MB), whole ones above. Needs round up
 * and what is left rounds down, so neither is overstated in the user's favour.
 */
export function formatMegabytes(bytes: number, round: 'up' | 'down' = 'up'): string {
  const mb = bytes / 1_000_000;
  const r = round === 'up' ? Math.ceil : Math.floor;
  if (mb < 10) return `${(r(mb * 10) / 10).toFixed(1)} MB`;
  return `${r(mb).toLocaleString('en-US')} MB`;
}

export interface StorageFullDetails {
  /** What could not be saved, e.g. "the resume checkpoint of epoch 4". */
  what: string;
  /** Bytes the failed write needed. */
  neededBytes: number;
  /** navigator.storage.estimate()'s answer; undefined when the browser gives none. */
  estimate: StorageEstimateLike | undefined;
  /** What was kept, e.g. "The run is kept up to epoch 3 and can be resumed from there." */
  kept: string;
  /** What to do once space is freed, e.g. "then Resume the run". */
  then: string;
}

/** Bytes still free for this site, or null when the browser does not say. */
export function availableBytes(estimate: StorageEstimateLike | undefined): number | null {
  if (estimate?.quota === undefined) return null;
  return Math.max(0, estimate.quota - (estimate.usage ?? 0));
}

export function storageFullMessage(details: StorageFullDetails): string {
  const { what, neededBytes, estimate, kept, then } = details;
  const available = availableBytes(estimate);
  const needed = `it needs ${formatMegabytes(neededBytes)}`;
  const usage = () =>
    `(${formatMegabytes(estimate!.usage ?? 0)} used of ${formatMegabytes(estimate!.quota!)})`;
  // The estimate can say there is room when the disk (or a private window's memory) has none.
  const sizes =
    available === null
      ? `${needed} and the browser does not say how much is left`
      : available < neededBytes
        ? `${needed} and ${formatMegabytes(available, 'down')} is available for this site ${usage()}`
        : `${needed} and the browser refused it, although it reports ${formatMegabytes(available, 'down')} available for ` +
          `this site ${usage()}`;
  return (
    `Browser storage is full: ${what} could not be saved: ${sizes}. ${kept} ` +
    'To free space: delete runs you no longer need (Runs page), forget cached images you do not use (Data page), ' +
    `or free disk space (a private window allows far less: use a normal one); ${then}.`
  );
}

/** A write refused for lack of space, with the message above and the figures it names. */
export class StorageFullError extends Error {
  readonly neededBytes: number;
  readonly availableBytes: number | null;

  constructor(details: StorageFullDetails, options?: ErrorOptions) {
    super(storageFullMessage(details), options);
    this.name = 'StorageFullError';
    this.neededBytes = details.neededBytes;
    this.availableBytes = availableBytes(details.estimate);
  }
}
