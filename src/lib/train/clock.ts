/**
 * A run's elapsed time with pauses left out: the one clock behind the Train page's "Elapsed" while a run goes and
 * the duration it shows when the run ends, so the two never disagree. (The loop's own `seconds` leave pauses out
 * too; they time training alone, without loading the weights or scoring the test split.)
 */
export class ActiveClock {
  private startedAt: number | null = null;
  private endedAt: number | null = null;
  private pausedSince: number | null = null;
  private pausedMs = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Starts from zero (a new run). */
  start(): void {
    this.startedAt = this.now();
    this.endedAt = null;
    this.pausedSince = null;
    this.pausedMs = 0;
  }

  /** The run paused: time stops counting until `resume`. Repeated calls count once. */
  pause(): void {
    if (this.startedAt === null || this.endedAt !== null || this.pausedSince !== null) return;
    this.pausedSince = this.now();
  }

  resume(): void {
    if (this.pausedSince === null) return;
    this.pausedMs += this.now() - this.pausedSince;
    this.pausedSince = null;
  }

  /** The run ended: the clock keeps this reading. */
  stop(): void {
    if (this.startedAt === null || this.endedAt !== null) return;
    this.resume();
    this.endedAt = this.now();
  }

  get running(): boolean {
    return this.startedAt !== null && this.endedAt === null;
  }

  get paused(): boolean {
    return this.pausedSince !== null;
  }

  /** Seconds counted so far (or until `stop`), pauses excluded; 0 before `start`. */
  get seconds(): number {
    if (this.startedAt === null) return 0;
    const end = this.endedAt ?? this.pausedSince ?? this.now();
    return Math.max(0, end - this.startedAt - this.pausedMs) / 1000;
  }
}
