/**
 * Pause, resume and stop for a running training generator. The generator checks it before every batch: a pause
 * takes effect after the current step, a stop ends the run cleanly (the generator returns its result; `return()`
 * on the generator works too). Plain JS state, so the worker can drive it from messages.
 *
 * The messages only arrive when the worker's event loop gets a turn. Batches that resolve as microtasks (cached
 * features, WASM read-backs, synchronous OPFS reads) never give it one, so the loop hands the event loop a
 * macrotask now and then (`EventLoopTurns`) before it looks at these flags.
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

/** How long the loop may run on microtasks alone before it lets queued messages (pause, stop) in. */
export const EVENT_LOOP_TURN_MS = 50;

/**
 * Resolves on a fresh macrotask, after the tasks already queued (e.g. an incoming message). A MessageChannel, not
 * setTimeout(0), because nested timeouts are clamped to 4 ms in browsers.
 */
export function nextMacrotask(): Promise<void> {
  if (typeof MessageChannel !== 'function') return new Promise((resolve) => setTimeout(resolve, 0));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** Gives the event loop a turn at most every `intervalMs`, and counts the turns (for benches and logs). */
export class EventLoopTurns {
  private last: number;
  turns = 0;

  constructor(
    readonly intervalMs = EVENT_LOOP_TURN_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.last = clock();
  }

  /** Waits for a macrotask when `intervalMs` has passed since the last one; otherwise returns at once. */
  async maybeYield(): Promise<void> {
    if (this.clock() - this.last < this.intervalMs) return;
    await nextMacrotask();
    this.turns += 1;
    this.last = this.clock();
  }
}
