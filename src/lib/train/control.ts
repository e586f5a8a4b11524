/**
 * Pause, resume and stop for a running training generator. The generator checks it before every batch: a pause
 * takes effect after the current step, a stop ends the run cleanly (the generator returns its result; `return()`
 * on the generator works too). Plain JS state, so the worker can drive it from messages.
 */
export class TrainControl {
  private pausedFlag = false;
  private stopFlag = false;
  private waiters: Array<() => void> = [];

  get paused(): boolean {
    return this.pausedFlag;
  }

  get stopRequested(): boolean {
    return this.stopFlag;
  }

  pause(): void {
    if (!this.stopFlag) this.pausedFlag = true;
  }

  resume(): void {
    this.pausedFlag = false;
    this.release();
  }

  stop(): void {
    this.stopFlag = true;
    this.pausedFlag = false;
    this.release();
  }

  /** Resolves when no longer paused (at once when not paused). */
  waitWhilePaused(): Promise<void> {
    if (!this.pausedFlag) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
