import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  INGEST_STAGES,
  PROGRESS_INTERVAL_MS,
  StageMeter,
  Throttle,
} from '../../src/lib/data/progress.ts';

describe('StageMeter', () => {
  it('gives counts, rate and ETA at a steady pace', () => {
    const meter = new StageMeter('decoding', 1000, 0);
    for (let t = 100; t <= 4000; t += 100) meter.update(t / 20, t); // 50 items/s
    const s = meter.snapshot(4000);
    expect(s).toMatchObject({
      stage: 'decoding',
      done: 200,
      total: 1000,
      finished: false,
      elapsedSeconds: 4,
    });
    expect(s.rate).toBeCloseTo(50, 6);
    expect(s.etaSeconds).toBeCloseTo(16, 6);
  });

  it('follows a slowdown within the rate window instead of the overall average', () => {
    const meter = new StageMeter('reading', 10_000, 0);
    let done = 0;
    for (let t = 100; t <= 20_000; t += 100) {
      done += t <= 10_000 ? 10 : 1; // 100/s, then 10/s
      meter.update(done, t);
    }
    const s = meter.snapshot(20_000);
    expect(s.rate).toBeCloseTo(10, 0);
    expect(s.etaSeconds).toBeCloseTo((10_000 - done) / 10, -1);
  });

  it('has no ETA without a total or before the first item, and 0 once finished', () => {
    const meter = new StageMeter('listing', null, 1000);
    expect(meter.snapshot(1000)).toMatchObject({ done: 0, rate: 0, etaSeconds: null });
    meter.update(300, 2000);
    expect(meter.snapshot(2000).etaSeconds).toBeNull();
    meter.update(600, 3000, 900);
    expect(meter.snapshot(3000).etaSeconds).toBeCloseTo(1, 6);
    meter.update(900, 4000);
    meter.finish(4000);
    expect(meter.snapshot(9000)).toMatchObject({
      done: 900,
      total: 900,
      finished: true,
      etaSeconds: 0,
      elapsedSeconds: 3,
    });
    expect(meter.snapshot(9000).rate).toBeCloseTo(300, 6);
  });

  it('takes the count as the total when a stage of unknown size finishes', () => {
    const meter = new StageMeter('listing', null, 0);
    meter.update(42, 500);
    meter.finish(500);
    expect(meter.snapshot(500)).toMatchObject({ done: 42, total: 42, finished: true });
  });

  it('keeps bounded memory however many updates come', () => {
    const meter = new StageMeter('caching', 1_000_000, 0);
    for (let i = 1; i <= 1_000_000; i++) meter.update(i, i / 10); // 10,000/s for 100 s
    expect(meter.snapshot(100_000).rate).toBeCloseTo(10_000, -1);
    expect((meter as unknown as { samples: unknown[] }).samples.length).toBeLessThanOrEqual(102);
  });

  it('knows the four ingest stages', () => {
    expect(INGEST_STAGES).toEqual(['downloading', 'listing', 'reading', 'decoding', 'caching']);
  });
});

describe('Throttle', () => {
  it('lets at most 10 posts a second through, plus forced ones', () => {
    expect(PROGRESS_INTERVAL_MS).toBe(100);
    const throttle = new Throttle();
    let passed = 0;
    for (let t = 0; t < 2000; t += 3) if (throttle.take(t)) passed++;
    expect(passed).toBeLessThanOrEqual(20);
    expect(passed).toBeGreaterThanOrEqual(19);
    expect(throttle.take(2001, true)).toBe(true);
    expect(throttle.take(2002)).toBe(false);
  });
});

describe('formatDuration', () => {
  it('writes seconds, minutes and hours', () => {
    expect(formatDuration(4.4)).toBe('4 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(formatDuration(Number.NaN)).toBe('–');
  });
});

describe('StageMeter.rebase', () => {
  it('measures the rate from a resumed count, not from 0', () => {
    const meter = new StageMeter('downloading', 10_000_000, 0);
    // A download resumed at 6 MB, then 1 MB/s for 2 s.
    meter.rebase(6_000_000, 100, 10_000_000);
    for (let t = 200; t <= 2100; t += 100) meter.update(6_000_000 + (t - 100) * 1000, t);
    const s = meter.snapshot(2100);
    expect(s.done).toBe(8_000_000);
    expect(s.rate).toBeCloseTo(1_000_000, -3);
    expect(s.etaSeconds).toBeCloseTo(2, 1);
    meter.finish(2100);
    expect(meter.snapshot(2100).rate).toBeCloseTo(1_000_000, -3);
  });
});
