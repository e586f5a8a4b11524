/**
 * Keras's training callbacks, as pure state machines over the epoch logs (no tf, no weights): the loop feeds each
 * epoch's metrics in and acts on the decision that comes out (stop, snapshot weights, set the learning rate, save a
 * checkpoint). The rules are those of Keras 3's `keras/src/callbacks/` (`monitor_callback.py`,
 * `early_stopping.py`, `reduce_lr_on_plateau.py`, `model_checkpoint.py`):
 *
 * - improvement: `op(current - minDelta, reference)` with op `<` and minDelta negated in 'min' mode, op `>` in 'max'
 *   mode, i.e. min: current < best - |minDelta|; max: current > best + |minDelta|. The first value always improves
 *   (best starts as null), a NaN never does.
 * - 'auto' mode: a monitor whose name without the `val_` prefix is `loss` is minimised; the others here (accuracy,
 *   balanced accuracy, macro F1) are maximised, as Keras infers from the metric's direction.
 * - EarlyStopping restores the best weights at the end of training whenever `restoreBestWeights` is on (Keras 3;
 *   Keras 2 restored them only when it stopped early).
 */

export const MONITORS = [
  'val_loss',
  'val_accuracy',
  'val_balanced_accuracy',
  'val_macro_f1',
  'loss',
  'accuracy',
] as const;
export type Monitor = (typeof MONITORS)[number];
export type MonitorMode = 'auto' | 'min' | 'max';

/** The epoch metrics the callbacks read; a monitor missing from it is skipped for that epoch, as in Keras. */
export type EpochMetrics = Partial<Record<Monitor, number>>;

export function resolveMode(monitor: Monitor, mode: MonitorMode = 'auto'): 'min' | 'max' {
  if (mode !== 'auto') return mode;
  return monitor.replace(/^val_/, '') === 'loss' ? 'min' : 'max';
}

/** Keras's MonitorCallback: the comparison every monitoring callback shares. */
export class MonitorRule {
  readonly mode: 'min' | 'max';
  /** Signed as in Keras: negative in 'min' mode. */
  private readonly delta: number;

  constructor(
    readonly monitor: Monitor,
    mode: MonitorMode = 'auto',
    minDelta = 0,
  ) {
    this.mode = resolveMode(monitor, mode);
    this.delta = this.mode === 'min' ? -Math.abs(minDelta) : Math.abs(minDelta);
  }

  isImprovement(current: number, reference: number | null): boolean {
    if (reference === null) return true;
    const shifted = current - this.delta;
    return this.mode === 'min' ? shifted < reference : shifted > reference;
  }

  read(metrics: EpochMetrics): number | null {
    const value = metrics[this.monitor];
    return value === undefined ? null : value;
  }
}

export interface EarlyStoppingOptions {
  monitor?: Monitor;
  mode?: MonitorMode;
  /** An absolute change smaller than this is no improvement. Default 0. */
  minDelta?: number;
  /** Epochs without improvement before stopping. Default 0 (Keras's default). */
  patience?: number;
  /** If set, the wait counter only restarts when the value also beats this baseline. */
  baseline?: number | null;
  /** Keep a copy of the best epoch's weights and put them back when training ends. Default false. */
  restoreBestWeights?: boolean;
  /** Epochs (0-based count) to skip before monitoring starts. Default 0. */
  startFromEpoch?: number;
}

export interface EarlyStoppingDecision {
  /** Stop after this epoch. */
  stop: boolean;
  /** This epoch's value is the new best. */
  improved: boolean;
  /** The loop must copy the current weights as the best ones (restoreBestWeights only). */
  snapshot: boolean;
}

export class EarlyStopping {
  readonly rule: MonitorRule;
  readonly patience: number;
  readonly baseline: number | null;
  readonly restoreBestWeights: boolean;
  readonly startFromEpoch: number;
  wait = 0;
  /** 0-based epoch at which training was stopped; 0 when it was not (as Keras). */
  stoppedEpoch = 0;
  best: number | null = null;
  bestEpoch = 0;
  /** Whether a best-weights copy has been requested (Keras's `best_weights is not None`). */
  private haveBestWeights = false;

  constructor(options: EarlyStoppingOptions = {}) {
    this.rule = new MonitorRule(options.monitor ?? 'val_loss', options.mode, options.minDelta ?? 0);
    this.patience = options.patience ?? 0;
    this.baseline = options.baseline ?? null;
    this.restoreBestWeights = options.restoreBestWeights ?? false;
    this.startFromEpoch = options.startFromEpoch ?? 0;
  }

  onTrainBegin(): void {
    this.wait = 0;
    this.stoppedEpoch = 0;
    this.best = null;
    this.bestEpoch = 0;
    this.haveBestWeights = false;
  }

  /** `epoch` is 0-based, as Keras passes it. */
  onEpochEnd(epoch: number, metrics: EpochMetrics): EarlyStoppingDecision {
    const decision: EarlyStoppingDecision = { stop: false, improved: false, snapshot: false };
    const current = this.rule.read(metrics);
    if (current === null || epoch < this.startFromEpoch) return decision;
    if (this.restoreBestWeights && !this.haveBestWeights) {
      // Keras: if best weights were never set, the current weights are the best.
      this.haveBestWeights = true;
      this.bestEpoch = epoch;
      decision.snapshot = true;
    }
    this.wait += 1;
    if (this.rule.isImprovement(current, this.best)) {
      this.best = current;
      this.bestEpoch = epoch;
      decision.improved = true;
      if (this.restoreBestWeights) decision.snapshot = true;
      // Only restart the wait when both the baseline and the previous best are beaten.
      if (this.baseline === null || this.rule.isImprovement(current, this.baseline)) this.wait = 0;
      return decision;
    }
    if (this.wait >= this.patience && epoch > 0) {
      this.stoppedEpoch = epoch;
      decision.stop = true;
    }
    return decision;
  }

  /** Whether the loop should put the best weights back at the end of training. */
  shouldRestore(): boolean {
    return this.restoreBestWeights && this.haveBestWeights;
  }

  /** The counters and best-so-far, for a resumable checkpoint. */
  state(): EarlyStoppingState {
    const { wait, stoppedEpoch, best, bestEpoch, haveBestWeights } = this;
    return { wait, stoppedEpoch, best, bestEpoch, haveBestWeights };
  }

  /** Continues from a saved state() (after onTrainBegin) as if no epoch had been lost. */
  restore(state: EarlyStoppingState): void {
    ({
      wait: this.wait,
      stoppedEpoch: this.stoppedEpoch,
      best: this.best,
      bestEpoch: this.bestEpoch,
      haveBestWeights: this.haveBestWeights,
    } = state);
  }
}

export interface EarlyStoppingState {
  wait: number;
  stoppedEpoch: number;
  best: number | null;
  bestEpoch: number;
  haveBestWeights: boolean;
}

export interface ReduceLROnPlateauOptions {
  monitor?: Monitor;
  mode?: MonitorMode;
  /** New lr = lr × factor; must be < 1. Default 0.5 (Keras's default is 0.1; the issue asks for 0.5). */
  factor?: number;
  /** Epochs without improvement before reducing. Default 10 (Keras). */
  patience?: number;
  /** Default 1e-4 (Keras). */
  minDelta?: number;
  /** Epochs to wait after a reduction before counting again. Default 0. */
  cooldown?: number;
  /** Lower bound of the lr. Default 1e-5. */
  minLr?: number;
}

export class ReduceLROnPlateau {
  readonly rule: MonitorRule;
  readonly factor: number;
  readonly patience: number;
  readonly cooldown: number;
  readonly minLr: number;
  wait = 0;
  cooldownCounter = 0;
  best: number | null = null;

  constructor(options: ReduceLROnPlateauOptions = {}) {
    const factor = options.factor ?? 0.5;
    if (!(factor < 1) || !(factor > 0)) {
      throw new RangeError(`ReduceLROnPlateau needs 0 < factor < 1; got factor=${factor}`);
    }
    this.rule = new MonitorRule(options.monitor ?? 'val_loss', options.mode, options.minDelta ?? 1e-4);
    this.factor = factor;
    this.patience = options.patience ?? 10;
    this.cooldown = options.cooldown ?? 0;
    this.minLr = options.minLr ?? 1e-5;
  }

  onTrainBegin(): void {
    this.best = null;
    this.cooldownCounter = 0;
    this.wait = 0;
  }

  inCooldown(): boolean {
    return this.cooldownCounter > 0;
  }

  /**
   * Returns the new learning rate, or null when it stays. The lr lives in a float32 variable in Keras, so it is
   * compared and stored as float32 here too (that is what stops the reductions once min_lr is reached).
   */
  onEpochEnd(_epoch: number, metrics: EpochMetrics, lr: number): number | null {
    const current = this.rule.read(metrics);
    if (current === null) return null;
    if (this.inCooldown()) {
      this.cooldownCounter -= 1;
      this.wait = 0;
    }
    if (this.rule.isImprovement(current, this.best)) {
      this.best = current;
      this.wait = 0;
      return null;
    }
    if (this.inCooldown()) return null;
    this.wait += 1;
    if (this.wait < this.patience) return null;
    const oldLr = Math.fround(lr);
    if (!(oldLr > Math.fround(this.minLr))) return null;
    const newLr = Math.fround(Math.max(oldLr * this.factor, this.minLr));
    this.cooldownCounter = this.cooldown;
    this.wait = 0;
    return newLr;
  }

  /** The counters and best-so-far, for a resumable checkpoint (the lr itself lives in the optimizer's state). */
  state(): ReduceLROnPlateauState {
    return { wait: this.wait, cooldownCounter: this.cooldownCounter, best: this.best };
  }

  restore(state: ReduceLROnPlateauState): void {
    ({ wait: this.wait, cooldownCounter: this.cooldownCounter, best: this.best } = state);
  }
}

export interface ReduceLROnPlateauState {
  wait: number;
  cooldownCounter: number;
  best: number | null;
}

export interface BestCheckpointOptions {
  monitor?: Monitor;
  mode?: MonitorMode;
  /** Keras's `initial_value_threshold`: a value must beat this to be saved. */
  initialValueThreshold?: number | null;
}

/** ModelCheckpoint(save_best_only=True): says when the epoch is the best so far, and so worth saving. */
export class BestCheckpoint {
  readonly rule: MonitorRule;
  best: number | null;
  bestEpoch: number | null = null;
  private readonly initial: number | null;

  constructor(options: BestCheckpointOptions = {}) {
    this.rule = new MonitorRule(options.monitor ?? 'val_loss', options.mode, 0);
    this.initial = options.initialValueThreshold ?? null;
    this.best = this.initial;
  }

  onTrainBegin(): void {
    this.best = this.initial;
    this.bestEpoch = null;
  }

  /**
   * True when this epoch should be saved as the best checkpoint. Without the monitored value Keras saves every
   * epoch (with a warning); so does this.
   */
  onEpochEnd(epoch: number, metrics: EpochMetrics): boolean {
    const current = this.rule.read(metrics);
    if (current === null) return true;
    if (!this.rule.isImprovement(current, this.best)) return false;
    this.best = current;
    this.bestEpoch = epoch;
    return true;
  }

  state(): BestCheckpointState {
    return { best: this.best, bestEpoch: this.bestEpoch };
  }

  restore(state: BestCheckpointState): void {
    ({ best: this.best, bestEpoch: this.bestEpoch } = state);
  }
}

export interface BestCheckpointState {
  best: number | null;
  bestEpoch: number | null;
}
