import type { EpochLog } from '../../lib/train/logs.ts';
import type { RunEvent } from '../../lib/runs/record.ts';

/** Epochs counted through both phases from 1 (phase 2 continues after phase 1's last epoch). */
export function stepOf(history: readonly EpochLog[]): (phase: 1 | 2, epoch: number) => number {
  const lastPhase1 = history.reduce((m, e) => (e.phase === 1 ? Math.max(m, e.epoch) : m), 0);
  return (phase, epoch) => (phase === 1 ? epoch : lastPhase1 + epoch);
}

export interface CurveMark {
  step: number;
  kind: 'lr drop' | 'best epoch' | 'early stop';
  text: string;
}

/** Where the lr dropped, the best epoch (checkpointed, else restored) and the early stop, on the epoch axis. */
export function curveMarks(history: readonly EpochLog[], events: readonly RunEvent[]): CurveMark[] {
  const step = stepOf(history);
  const marks: CurveMark[] = [];
  for (const e of events) {
    if (e.type === 'lr-reduced')
      marks.push({
        step: step(e.phase, e.epoch),
        kind: 'lr drop',
        text: `lr ${e.from.toExponential(1)} → ${e.to.toExponential(1)}`,
      });
    if (e.type === 'early-stop')
      marks.push({ step: step(e.phase, e.epoch), kind: 'early stop', text: `early stop (${e.monitor})` });
  }
  const restored = events.findLast((e) => e.type === 'restored-best');
  const saved = events.findLast((e) => e.type === 'checkpoint');
  // The checkpoint first: the run's model and test results are made from it.
  const best = saved ?? restored;
  if (best && best.epoch > 0)
    marks.push({ step: step(best.phase, best.epoch), kind: 'best epoch', text: 'best epoch' });
  return marks;
}

export const MARK_COLORS: Record<CurveMark['kind'], string> = {
  'lr drop': '#7a5195',
  'best epoch': '#2e7d4f',
  'early stop': '#c8413b',
};

/** Whole-number ticks from 1 to `max`, at most about 12 of them (Plot's own ticks fall between epochs). */
export function epochTicks(max: number): number[] {
  const step = Math.max(1, Math.ceil(max / 12));
  const ticks: number[] = [];
  for (let t = 1; t <= Math.max(1, max); t += step) ticks.push(t);
  return ticks;
}
