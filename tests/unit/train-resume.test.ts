/**
 * Resumable checkpoints: a run interrupted after any epoch and resumed from its last resume point (in a freshly built
 * network with another initialisation, as after a reload) ends exactly as the uninterrupted run — same epoch losses,
 * learning rates, callback events and final weights — on the real-image fixtures of the loop tests (CPU backend).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/lib/train/checkpoint.ts';
import type { MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import type { Network, TrainOptions } from '../../src/lib/train/loop.ts';
import {
  decodeResumePoint,
  encodeResumePoint,
  MemoryResumeStore,
  parseExact,
  ResumeFormatError,
  stringifyExact,
  type ResumeManifest,
  type ResumePoint,
} from '../../src/lib/train/resume.ts';
import {
  buildNetwork,
  disposeNetwork,
  loadDataset,
  maxAbsDiff,
  ofType,
  run,
  weightsOf,
} from '../helpers/train-fixtures.ts';

let dataset: MemoryImageDataset;
let trainIdx: number[];
let valIdx: number[];

beforeAll(async () => {
  await tf.setBackend('cpu');
  dataset = loadDataset();
  trainIdx = [];
  valIdx = [];
  for (let i = 0; i < dataset.count; i++) (i % 5 === 4 ? valIdx : trainIdx).push(i);
});

/** Settings whose callbacks all act within a few epochs: lr halved after each plateau, early stop restoring best. */
function options(network: Network, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    network,
    data: { dataset, train: trainIdx, val: valIdx },
    epochs: 5,
    batchSize: 8,
    learningRate: 1e-2,
    seed: 7,
    earlyStopping: { monitor: 'val_loss', patience: 3, minDelta: 0.05, restoreBestWeights: true },
    reduceLr: { monitor: 'val_loss', patience: 1, minDelta: 0.05, factor: 0.5, minLr: 1e-4 },
    checkpoint: { store: new MemoryCheckpointStore(), name: 'best', monitor: 'val_loss' },
    ...extra,
  };
}

/** A point as it comes back from disk: through the manifest's JSON and a copy of the float data. */
function throughDisk(point: ResumePoint): ResumePoint {
  const { manifest, data } = encodeResumePoint(point);
  const text = stringifyExact(manifest);
  return decodeResumePoint(parseExact(text) as ResumeManifest, new Float32Array(data));
}

const epochRows = (logs: Awaited<ReturnType<typeof run>>['logs']) =>
  ofType(logs, 'epoch').map((e) => [e.phase, e.epoch, e.loss, e.val_loss, e.accuracy, e.lr]);
const eventRows = (logs: Awaited<ReturnType<typeof run>>['logs']) =>
  logs
    .filter((l) => ['lr-reduced', 'early-stop', 'checkpoint', 'restored-best'].includes(l.type))
    .map((l) => JSON.stringify(l));

describe('resume points', () => {
  it('keep NaN and Infinity (a diverged loss) through JSON, and refuse data of the wrong length', () => {
    const value = { loss: Number.NaN, best: Number.POSITIVE_INFINITY, low: -Infinity, plain: 0.5 };
    const back = parseExact(stringifyExact(value)) as typeof value;
    expect(back.loss).toBeNaN();
    expect(back.best).toBe(Infinity);
    expect(back.low).toBe(-Infinity);
    expect(back.plain).toBe(0.5);
    const point: ResumePoint = {
      phase: 1,
      epoch: 1,
      stoppedEarly: false,
      before: [],
      weights: [{ name: 'w', shape: [2], values: Float32Array.of(1, 2) }],
      optimizer: {
        learningRate: 1e-3,
        iterations: 3,
        slots: [{ m: Float32Array.of(3, 4), v: Float32Array.of(5, 6) }],
      },
      callbacks: { earlyStopping: null, reduceLr: null, best: null },
      bestWeights: null,
      history: [],
      events: [],
      seconds: 1.5,
    };
    const { manifest, data } = encodeResumePoint(point);
    expect(data).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6));
    expect(() => decodeResumePoint(manifest, data.subarray(0, 5))).toThrow(ResumeFormatError);
    expect(() => decodeResumePoint(manifest, data.subarray(0, 5))).toThrow(
      /holds 5 values; its manifest says 6/,
    );
    expect(throughDisk(point)).toEqual(point);
  });

  it("a run resumed from any epoch's point, the early-stopped last one too, ends exactly as the uninterrupted run (phase 1, callbacks acting)", async () => {
    const store = new MemoryResumeStore();
    const reference = await run(options(buildNetwork(), { resume: { store } }));
    const refHead = await weightsOf(reference.result.network.head);
    disposeNetwork(reference.result.network);
    // The callbacks did act, so their state matters: lr drops, then an early stop with the best weights restored.
    expect(ofType(reference.logs, 'lr-reduced').length).toBeGreaterThan(0);
    expect(reference.result.reason).toBe('early-stop');
    expect(ofType(reference.logs, 'restored-best')).toHaveLength(1);
    const epochs = ofType(reference.logs, 'epoch').length;
    expect(store.points.map((p) => p.epoch)).toEqual(Array.from({ length: epochs }, (_, i) => i + 1));

    for (const saved of store.points) {
      const from = throughDisk(saved);
      const resumed = await run(options(buildNetwork({ headSeed: 77 }), { resume: { from } }));
      // The epochs after the point, and every event after it, are those of the uninterrupted run.
      expect(epochRows(resumed.logs)).toEqual(epochRows(reference.logs).slice(from.epoch));
      expect(eventRows(resumed.logs)).toEqual(eventRows(reference.logs).slice(from.events.length));
      expect(resumed.result.reason).toBe(reference.result.reason);
      expect(resumed.result.phases[0]!.history.map((h) => h.epoch)).toEqual(
        reference.result.phases[0]!.history.map((h) => h.epoch),
      );
      expect(resumed.result.phases[0]!.bestEpoch).toBe(reference.result.phases[0]!.bestEpoch);
      const head = await weightsOf(resumed.result.network.head);
      for (const [name, values] of refHead) expect(maxAbsDiff(values, head.get(name)!), name).toBe(0);
      disposeNetwork(resumed.result.network);
    }
  });

  it('resumes from the end of phase 1 and from within phase 2 (unfrozen block, its own optimizer)', async () => {
    const phase2 = { blocks: 1, epochs: 2, learningRate: 1e-3 };
    const store = new MemoryResumeStore();
    const reference = await run(options(buildNetwork(), { epochs: 2, phase2, resume: { store } }));
    const refBase = await weightsOf(reference.result.network.base);
    const refHead = await weightsOf(reference.result.network.head);
    disposeNetwork(reference.result.network);
    expect(store.points.map((p) => [p.phase, p.epoch])).toEqual([
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ]);
    for (const index of [1, 2]) {
      const from = throughDisk(store.points[index]!);
      const resumed = await run(
        options(buildNetwork({ headSeed: 31 }), { epochs: 2, phase2, resume: { from } }),
      );
      expect(epochRows(resumed.logs)).toEqual(epochRows(reference.logs).slice(index + 1));
      expect(resumed.result.phases.map((p) => p.epochs)).toEqual([2, 2]);
      const base = await weightsOf(resumed.result.network.base);
      const head = await weightsOf(resumed.result.network.head);
      for (const [name, values] of refBase) expect(maxAbsDiff(values, base.get(name)!), name).toBe(0);
      for (const [name, values] of refHead) expect(maxAbsDiff(values, head.get(name)!), name).toBe(0);
      disposeNetwork(resumed.result.network);
    }
  });

  it('with a random base, the points hold the whole base, so another random network resumes it exactly', async () => {
    const store = new MemoryResumeStore();
    const reference = await run(options(buildNetwork(), { epochs: 3, resume: { store, wholeBase: true } }));
    const refHead = await weightsOf(reference.result.network.head);
    const baseNames = reference.result.network.base.weights.map((w) => w.originalName);
    disposeNetwork(reference.result.network);
    const from = throughDisk(store.points[0]!);
    for (const name of baseNames) expect(from.weights.map((w) => w.name)).toContain(name);
    const other = buildNetwork({ seed: 5, headSeed: 6 });
    const resumed = await run(options(other, { epochs: 3, resume: { from, wholeBase: true } }));
    expect(epochRows(resumed.logs)).toEqual(epochRows(reference.logs).slice(1));
    const head = await weightsOf(resumed.result.network.head);
    for (const [name, values] of refHead) expect(maxAbsDiff(values, head.get(name)!), name).toBe(0);
    disposeNetwork(resumed.result.network);
  });
});
