/**
 * The callbacks against Keras 3's rules (keras/src/callbacks/{monitor_callback,early_stopping,reduce_lr_on_plateau,
 * model_checkpoint}.py), on scripted metric sequences. Each expectation is traced by hand from that code.
 */
import { describe, expect, it } from 'vitest';
import {
  BestCheckpoint,
  EarlyStopping,
  MonitorRule,
  ReduceLROnPlateau,
  resolveMode,
  type EarlyStoppingOptions,
  type Monitor,
} from '../../src/lib/train/callbacks.ts';

/** Feeds `values` of `monitor` epoch by epoch; returns the 0-based epoch at which it stopped (or null) and the trace. */
function runEarlyStopping(options: EarlyStoppingOptions, values: number[]) {
  const cb = new EarlyStopping(options);
  cb.onTrainBegin();
  const monitor = options.monitor ?? 'val_loss';
  const trace = [];
  for (let epoch = 0; epoch < values.length; epoch++) {
    const d = cb.onEpochEnd(epoch, { [monitor]: values[epoch] });
    trace.push({ ...d, wait: cb.wait });
    if (d.stop) return { stoppedAt: epoch, trace, cb };
  }
  return { stoppedAt: null, trace, cb };
}

describe('monitor direction and improvement', () => {
  it("infers 'min' for losses and 'max' for the score metrics in auto mode", () => {
    expect(resolveMode('val_loss')).toBe('min');
    expect(resolveMode('loss')).toBe('min');
    for (const m of ['val_accuracy', 'val_balanced_accuracy', 'val_macro_f1', 'accuracy'] as Monitor[]) {
      expect(resolveMode(m)).toBe('max');
    }
    expect(resolveMode('val_accuracy', 'min')).toBe('min');
  });

  it('applies min_delta with its sign: min needs current < best − |Δ|, max needs current > best + |Δ|', () => {
    const min = new MonitorRule('val_loss', 'auto', -0.1); // the sign of min_delta is ignored, as Keras's abs()
    expect(min.isImprovement(0.9, 1.0)).toBe(false); // 0.9 + 0.1 < 1.0 is false (equal)
    expect(min.isImprovement(0.89, 1.0)).toBe(true);
    const max = new MonitorRule('val_accuracy', 'auto', 0.1);
    expect(max.isImprovement(0.61, 0.5)).toBe(true);
    expect(max.isImprovement(0.6, 0.5)).toBe(false);
    expect(max.isImprovement(0.1, null)).toBe(true); // the first value always improves
    expect(min.isImprovement(Number.NaN, 1)).toBe(false);
    expect(min.isImprovement(Number.NaN, null)).toBe(true);
  });
});

describe('EarlyStopping', () => {
  it("Keras's docstring example: patience 3 on a constant loss runs 4 epochs", () => {
    const { stoppedAt } = runEarlyStopping({ monitor: 'loss', patience: 3 }, [1, 1, 1, 1, 1, 1, 1]);
    expect(stoppedAt).toBe(3);
  });

  it('counts epochs without improvement and resets the wait on an improvement', () => {
    // e0 best 1.0; e1 0.9 improves; e2 wait 1; e3 0.85 improves (wait 0); e4 wait 1; e5 wait 2 ≥ 2 → stop.
    const { stoppedAt, trace, cb } = runEarlyStopping(
      { patience: 2 },
      [1.0, 0.9, 0.95, 0.85, 0.9, 0.86, 0.5],
    );
    expect(stoppedAt).toBe(5);
    expect(trace.map((t) => t.wait)).toEqual([0, 0, 1, 0, 1, 2]);
    expect(trace.map((t) => t.improved)).toEqual([true, true, false, true, false, false]);
    expect(cb.best).toBe(0.85);
    expect(cb.bestEpoch).toBe(3);
    expect(cb.stoppedEpoch).toBe(5);
  });

  it('treats a change smaller than min_delta as no improvement', () => {
    const values = [1.0, 0.9995, 0.999, 0.998];
    expect(runEarlyStopping({ patience: 1, minDelta: 0.001 }, values).stoppedAt).toBe(1);
    expect(runEarlyStopping({ patience: 1, minDelta: 0 }, values).stoppedAt).toBe(null);
  });

  it('maximises accuracy-like monitors; an equal value is no improvement', () => {
    const { stoppedAt } = runEarlyStopping(
      { monitor: 'val_balanced_accuracy', patience: 2 },
      [0.5, 0.6, 0.6, 0.59],
    );
    expect(stoppedAt).toBe(3);
  });

  it('with a baseline, improvements below it keep the wait growing, but never stop training by themselves', () => {
    // e0: improves (first) but not over 0.7: wait 1; e1: wait 2, improves → return; e2: wait 3, improves → return;
    // e3: 0.64 no improvement, wait 4 ≥ 2 → stop.
    const { stoppedAt, trace } = runEarlyStopping(
      { monitor: 'val_accuracy', patience: 2, baseline: 0.7 },
      [0.5, 0.6, 0.65, 0.64],
    );
    expect(trace.map((t) => t.wait)).toEqual([1, 2, 3, 4]);
    expect(stoppedAt).toBe(3);
    // Beating the baseline resets the wait.
    const beat = runEarlyStopping({ monitor: 'val_accuracy', patience: 2, baseline: 0.7 }, [0.5, 0.8, 0.79]);
    expect(beat.trace.map((t) => t.wait)).toEqual([1, 0, 1]);
  });

  it('never stops at epoch 0, even with patience 0', () => {
    expect(runEarlyStopping({ patience: 0 }, [Number.NaN]).stoppedAt).toBe(null);
    expect(runEarlyStopping({ patience: 0 }, [1, 2]).stoppedAt).toBe(1);
  });

  it('asks for a weights snapshot on the first monitored epoch and on each improvement (restoreBestWeights)', () => {
    const { trace, cb } = runEarlyStopping({ patience: 5, restoreBestWeights: true }, [1.0, 0.8, 0.9, 0.7]);
    expect(trace.map((t) => t.snapshot)).toEqual([true, true, false, true]);
    expect(cb.shouldRestore()).toBe(true);
    expect(cb.bestEpoch).toBe(3);
    const without = runEarlyStopping({ patience: 5 }, [1, 0.5]);
    expect(without.trace.every((t) => !t.snapshot)).toBe(true);
    expect(without.cb.shouldRestore()).toBe(false);
  });

  it('keeps a NaN first value as the best, as Keras does (nothing compares below NaN afterwards)', () => {
    const { trace, cb } = runEarlyStopping({ patience: 3 }, [Number.NaN, 0.5, 0.4]);
    expect(trace.map((t) => t.improved)).toEqual([true, false, false]);
    expect(cb.best).toBeNaN();
  });

  it('ignores epochs before start_from_epoch and a missing monitor', () => {
    const cb = new EarlyStopping({ patience: 0, startFromEpoch: 2 });
    cb.onTrainBegin();
    expect(cb.onEpochEnd(0, { val_loss: 1 }).stop).toBe(false);
    expect(cb.onEpochEnd(1, { val_loss: 2 }).stop).toBe(false);
    expect(cb.best).toBe(null);
    expect(cb.onEpochEnd(2, { loss: 3 }).stop).toBe(false); // no val_loss in the logs
    expect(cb.onEpochEnd(3, { val_loss: 3 }).improved).toBe(true);
    expect(cb.onEpochEnd(4, { val_loss: 3 }).stop).toBe(true);
  });

  it('is reset by onTrainBegin', () => {
    const { cb } = runEarlyStopping({ patience: 1 }, [1, 2]);
    cb.onTrainBegin();
    expect([cb.wait, cb.best, cb.stoppedEpoch, cb.bestEpoch]).toEqual([0, null, 0, 0]);
  });
});

/** Feeds `values`; returns the lr after each epoch. */
function runReduce(options: ConstructorParameters<typeof ReduceLROnPlateau>[0], values: number[], lr = 1e-3) {
  const cb = new ReduceLROnPlateau(options);
  cb.onTrainBegin();
  const lrs: number[] = [];
  values.forEach((v, epoch) => {
    const next = cb.onEpochEnd(epoch, { [options?.monitor ?? 'val_loss']: v }, lr);
    if (next !== null) lr = next;
    lrs.push(lr);
  });
  return { lrs, cb };
}

describe('ReduceLROnPlateau', () => {
  it('halves the lr after `patience` epochs without improvement and resets the wait', () => {
    const { lrs } = runReduce({ patience: 2, factor: 0.5 }, [1, 1, 1, 1, 1, 1]);
    const f = Math.fround;
    // e0 best; e1 wait 1; e2 wait 2 → reduce; e3 wait 1; e4 wait 2 → reduce; e5 wait 1.
    expect(lrs).toEqual([
      1e-3,
      1e-3,
      f(f(1e-3) * 0.5),
      f(f(1e-3) * 0.5),
      f(f(f(1e-3) * 0.5) * 0.5),
      f(f(f(1e-3) * 0.5) * 0.5),
    ]);
  });

  it('uses min_delta 1e-4 by default: 1.0 → 0.99995 is no improvement, 1.0 → 0.9998 is', () => {
    expect(runReduce({ patience: 1 }, [1.0, 0.99995]).lrs[1]).toBeCloseTo(5e-4, 10);
    expect(runReduce({ patience: 1 }, [1.0, 0.9998]).lrs[1]).toBe(1e-3);
  });

  it('waits out the cooldown after a reduction (Keras decrements it before checking)', () => {
    // cooldown 2, patience 2: reduce at e2 (counter 2); e3 counter 1, in cooldown; e4 counter 0, wait 1; e5 wait 2 →
    // reduce. Cooldown 1 behaves like 0 in Keras 3: the counter drops to 0 at the next epoch before the check.
    const two = runReduce({ patience: 2, cooldown: 2 }, [1, 1, 1, 1, 1, 1, 1]).lrs;
    const reductionsAt = (lrs: number[]) => lrs.flatMap((lr, i) => (i > 0 && lr < lrs[i - 1]! ? [i] : []));
    expect(reductionsAt(two)).toEqual([2, 5]);
    expect(reductionsAt(runReduce({ patience: 2, cooldown: 1 }, [1, 1, 1, 1, 1, 1, 1]).lrs)).toEqual([
      2, 4, 6,
    ]);
    expect(reductionsAt(runReduce({ patience: 2, cooldown: 0 }, [1, 1, 1, 1, 1, 1, 1]).lrs)).toEqual([
      2, 4, 6,
    ]);
  });

  it('never goes below min_lr and stops reducing once there', () => {
    const { lrs } = runReduce({ patience: 1, minLr: 1e-5 }, [1, 1, 1, 1], 3e-5);
    expect(lrs[1]).toBe(Math.fround(1.5e-5));
    expect(lrs[2]).toBe(Math.fround(1e-5));
    expect(lrs[3]).toBe(Math.fround(1e-5));
  });

  it('maximises val_macro_f1 and resets the wait on improvement', () => {
    const { lrs, cb } = runReduce({ monitor: 'val_macro_f1', patience: 2 }, [0.3, 0.2, 0.35, 0.2, 0.2]);
    expect(lrs.slice(0, 4)).toEqual([1e-3, 1e-3, 1e-3, 1e-3]);
    expect(lrs[4]).toBeLessThan(1e-3);
    expect(cb.best).toBe(0.35);
  });

  it('refuses a factor ≥ 1 as Keras does', () => {
    expect(() => new ReduceLROnPlateau({ factor: 1 })).toThrow(/factor/);
  });
});

describe('BestCheckpoint (ModelCheckpoint save_best_only)', () => {
  it('saves on strict improvements only', () => {
    const cb = new BestCheckpoint({ monitor: 'val_loss' });
    cb.onTrainBegin();
    expect([1, 0.8, 0.8, 0.9, 0.7].map((v, e) => cb.onEpochEnd(e, { val_loss: v }))).toEqual([
      true,
      true,
      false,
      false,
      true,
    ]);
    expect(cb.bestEpoch).toBe(4);
  });

  it('honours initial_value_threshold and maximises accuracy', () => {
    const cb = new BestCheckpoint({ monitor: 'val_accuracy', initialValueThreshold: 0.6 });
    cb.onTrainBegin();
    expect([0.5, 0.6, 0.61, 0.7].map((v, e) => cb.onEpochEnd(e, { val_accuracy: v }))).toEqual([
      false,
      false,
      true,
      true,
    ]);
  });

  it('saves every epoch when the monitored value is missing (as Keras, which warns)', () => {
    const cb = new BestCheckpoint({ monitor: 'val_macro_f1' });
    expect(cb.onEpochEnd(0, { val_loss: 1 })).toBe(true);
  });
});
