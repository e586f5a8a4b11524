/**
 * Progress arithmetic for the ingest stages: counts in, rate (items/s) and ETA (s) out, plus a throttle so a
 * worker posts at most 10 progress messages a second however fast items complete. Pure: every method takes
 * the current time (ms, e.g. performance.now()), so tests drive it with a fake clock.
 */

/** `downloading` counts bytes (a dataset opened from a URL); the other stages count entries or images. */
export const INGEST_STAGES = ['downloading', 'listing', 'reading', 'decoding', 'caching'] as const;
export type IngestStage = (typeof INGEST_STAGES)[number];

/** What a progress bar needs for one stage. */
export interface StageProgress {
  stage: IngestStage;
  done: number;
  /** null while the total is not known yet (e.g. before a zip's central directory is read). */
  total: number | null;
  /** Items per second: over the last few seconds while running, overall once finished. 0 before any item. */
  rate: number;
  /** Seconds left at the current rate; null when unknown (no total, or no item done yet); 0 once finished. */
  etaSeconds: number | null;
  elapsedSeconds: number;
  finished: boolean;
}

/** ≤ 10 posts a second: fast enough for a smooth bar, rare enough not to flood the UI thread. */
export const PROGRESS_INTERVAL_MS = 100;

/** Recent rates react to a slowdown (e.g. the disk cache running cold) without jittering item to item. */
export const RATE_WINDOW_MS = 5_000;

interface Sample {
  t: number;
  done: number;
}

/** Tracks one stage. `update` may be called on every item; it keeps O(samples in the window) memory. */
export class StageMeter {
  private done = 0;
  /** What was done before this run's own work began (a download resumed from a partial file). */
  private base = 0;
  private finishedAt: number | null = null;
  private rebasedAt: number;
  private readonly samples: Sample[] = [];

  constructor(
    readonly stage: IngestStage,
    private total: number | null,
    private readonly startedAt: number,
    private readonly windowMs = RATE_WINDOW_MS,
  ) {
    this.samples.push({ t: startedAt, done: 0 });
    this.rebasedAt = startedAt;
  }

  update(done: number, now: number, total?: number | null): void {
    if (total !== undefined) this.total = total;
    this.done = done;
    // Samples are kept ≥ 50 ms apart (plenty for a 5 s window; bounds memory at ~100), except the newest,
    // which moves forward with every update so the rate always ends at the latest count.
    const n = this.samples.length;
    const last = this.samples[n - 1] as Sample;
    const previous = this.samples[n - 2];
    if (previous !== undefined && last.t - previous.t < 50) {
      last.t = now;
      last.done = done;
    } else {
      this.samples.push({ t: now, done });
    }
    while (this.samples.length > 2 && now - (this.samples[1] as Sample).t > this.windowMs)
      this.samples.shift();
  }

  /**
   * Starts measuring the rate afresh from `done` at `now`, for a count that jumped rather than grew (a download
   * resumed from what an earlier visit wrote, or restarted from 0): the jump is not work done at some rate.
   */
  rebase(done: number, now: number, total?: number | null): void {
    if (total !== undefined) this.total = total;
    this.done = done;
    this.samples.length = 0;
    this.samples.push({ t: now, done });
    this.base = done;
    this.rebasedAt = now;
  }

  /** Marks the stage complete at `now` (its total becomes `done` if it was unknown). */
  finish(now: number): void {
    if (this.finishedAt !== null) return;
    this.finishedAt = now;
    if (this.total === null) this.total = this.done;
  }

  get isFinished(): boolean {
    return this.finishedAt !== null;
  }

  snapshot(now: number): StageProgress {
    const end = this.finishedAt ?? now;
    const elapsedSeconds = Math.max(0, (end - this.startedAt) / 1000);
    const measuredSeconds = Math.max(0, (end - this.rebasedAt) / 1000);
    const average = measuredSeconds > 0 ? (this.done - this.base) / measuredSeconds : 0;
    let rate: number;
    if (this.finishedAt !== null || this.samples.length < 2) {
      rate = average;
    } else {
      const first = this.samples[0] as Sample;
      const span = (now - first.t) / 1000;
      // Too short a window gives wild rates right after the start: fall back to the overall average.
      rate = span >= 0.5 ? (this.done - first.done) / span : average;
    }
    let etaSeconds: number | null = null;
    if (this.finishedAt !== null) etaSeconds = 0;
    else if (this.total !== null && rate > 0) etaSeconds = Math.max(0, this.total - this.done) / rate;
    return {
      stage: this.stage,
      done: this.done,
      total: this.total,
      rate,
      etaSeconds,
      elapsedSeconds,
      finished: this.finishedAt !== null,
    };
  }
}

/** Lets a call through at most once per `intervalMs`; `force` (a stage just ended) always passes. */
export class Throttle {
  private last = Number.NEGATIVE_INFINITY;

  constructor(private readonly intervalMs = PROGRESS_INTERVAL_MS) {}

  take(now: number, force = false): boolean {
    if (!force && now - this.last < this.intervalMs) return false;
    this.last = now;
    return true;
  }
}

/** "45 s", "3 min 05 s", "1 h 02 min": for ETA labels. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
