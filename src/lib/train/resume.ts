/**
 * Resumable checkpoints: everything the loop needs to go on after the page was closed or the worker died, saved at
 * the end of every epoch, so at most the epoch in progress is lost. A resume point holds the trained weights (the
 * whole base too when it has no pretrained weights to be rebuilt from), Adam's moments, iteration count and learning
 * rate, the callbacks' counters and best-so-far (EarlyStopping, ReduceLROnPlateau, the best checkpoint), the copy of
 * the best weights that EarlyStopping restores, and the history and events so far.
 *
 * On disk a point is a JSON manifest and one float32 file (see encodeResumePoint); the store writes both, then flips a
 * marker that names the complete pair, so a crash while writing leaves the previous point in force.
 */
import type { BestCheckpointState, EarlyStoppingState, ReduceLROnPlateauState } from './callbacks.ts';
import type { WeightValue } from './checkpoint.ts';
import type { EpochLog, Phase, TrainLog } from './logs.ts';
import type { AdamState } from './optimizer.ts';

/** The events a run record keeps (lr drops, early stop, best checkpoint, restored best). */
export type ResumeEvent = Extract<
  TrainLog,
  { type: 'lr-reduced' | 'early-stop' | 'checkpoint' | 'restored-best' }
>;

export interface ResumePhaseSummary {
  phase: Phase;
  epochs: number;
  stoppedEarly: boolean;
  bestEpoch: number | null;
}

export interface ResumePoint {
  /** The phase in progress when the point was saved. */
  phase: Phase;
  /** Epochs of `phase` finished (1-based count). */
  epoch: number;
  /** EarlyStopping ended `phase` at this epoch. */
  stoppedEarly: boolean;
  /** The phases finished before `phase` (phase 1 when `phase` is 2). */
  before: ResumePhaseSummary[];
  /** The checkpointed variables in the loop's order (see the loop's resumeVariables). */
  weights: WeightValue[];
  optimizer: AdamState;
  callbacks: {
    earlyStopping: EarlyStoppingState | null;
    reduceLr: ReduceLROnPlateauState | null;
    best: BestCheckpointState | null;
  };
  /** EarlyStopping's copy of the best epoch's weights (restoreBestWeights), in the pipeline state's order. */
  bestWeights: WeightValue[] | null;
  /** Every finished epoch so far, phase 1 then phase 2. */
  history: EpochLog[];
  events: ResumeEvent[];
  /** Training seconds so far, pauses excluded. */
  seconds: number;
}

export interface ResumeStore {
  /** Saves the point, replacing the previous one only once it is completely written. */
  save(point: ResumePoint): Promise<void>;
}

export class MemoryResumeStore implements ResumeStore {
  readonly points: ResumePoint[] = [];
  last: ResumePoint | null = null;

  async save(point: ResumePoint): Promise<void> {
    this.points.push(point);
    this.last = point;
  }
}

/** Numbers JSON cannot hold (a diverged loss is NaN or Infinity) survive as tagged strings. */
const NON_FINITE = '$number:';

function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? `${NON_FINITE}${value}` : value;
}

function reviver(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith(NON_FINITE)
    ? Number(value.slice(NON_FINITE.length))
    : value;
}

export function stringifyExact(value: unknown): string {
  return JSON.stringify(value, replacer);
}

export function parseExact(text: string): unknown {
  return JSON.parse(text, reviver);
}

interface ArrayRef {
  offset: number;
  length: number;
}
interface WeightRef extends ArrayRef {
  name: string;
  shape: number[];
}

export interface ResumeManifest {
  format: 'lesion-lab-resume';
  version: 1;
  phase: Phase;
  epoch: number;
  stoppedEarly: boolean;
  before: ResumePhaseSummary[];
  weights: WeightRef[];
  bestWeights: WeightRef[] | null;
  optimizer: {
    learningRate: number;
    iterations: number;
    slots: Array<{ m: ArrayRef; v: ArrayRef } | null>;
  };
  callbacks: ResumePoint['callbacks'];
  history: EpochLog[];
  events: ResumeEvent[];
  seconds: number;
  /** float32 values in the data file; its byte length must be 4× this. */
  floats: number;
}

export class ResumeFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResumeFormatError';
  }
}

/** The manifest (JSON-safe, see stringifyExact) and the float32 data of a point. */
export function encodeResumePoint(point: ResumePoint): { manifest: ResumeManifest; data: Float32Array } {
  const arrays: Float32Array[] = [];
  let offset = 0;
  const ref = (values: Float32Array): ArrayRef => {
    arrays.push(values);
    const r = { offset, length: values.length };
    offset += values.length;
    return r;
  };
  const weightRefs = (list: readonly WeightValue[]): WeightRef[] =>
    list.map((w) => ({ name: w.name, shape: [...w.shape], ...ref(w.values) }));
  const weights = weightRefs(point.weights);
  const bestWeights = point.bestWeights ? weightRefs(point.bestWeights) : null;
  const slots = point.optimizer.slots.map((s) => (s ? { m: ref(s.m), v: ref(s.v) } : null));
  const data = new Float32Array(offset);
  let at = 0;
  for (const a of arrays) {
    data.set(a, at);
    at += a.length;
  }
  const manifest: ResumeManifest = {
    format: 'lesion-lab-resume',
    version: 1,
    phase: point.phase,
    epoch: point.epoch,
    stoppedEarly: point.stoppedEarly,
    before: point.before.map((b) => ({ ...b })),
    weights,
    bestWeights,
    optimizer: {
      learningRate: point.optimizer.learningRate,
      iterations: point.optimizer.iterations,
      slots,
    },
    callbacks: structuredClone(point.callbacks),
    history: point.history.map((h) => ({ ...h })),
    events: point.events.map((e) => ({ ...e })),
    seconds: point.seconds,
    floats: data.length,
  };
  return { manifest, data };
}

export function decodeResumePoint(manifest: ResumeManifest, data: Float32Array): ResumePoint {
  if (manifest.format !== 'lesion-lab-resume' || manifest.version !== 1) {
    throw new ResumeFormatError('not a Lesion Lab resume point (format/version mismatch)');
  }
  if (data.length !== manifest.floats) {
    throw new ResumeFormatError(
      `the resume data holds ${data.length} values; its manifest says ${manifest.floats} (an interrupted write?)`,
    );
  }
  const slice = (r: ArrayRef, what: string): Float32Array => {
    if (r.offset < 0 || r.offset + r.length > data.length)
      throw new ResumeFormatError(`the resume data ends before ${what}`);
    return data.slice(r.offset, r.offset + r.length);
  };
  const weights = (list: WeightRef[]): WeightValue[] =>
    list.map((w) => ({ name: w.name, shape: [...w.shape], values: slice(w, `weight ${w.name}`) }));
  return {
    phase: manifest.phase,
    epoch: manifest.epoch,
    stoppedEarly: manifest.stoppedEarly,
    before: manifest.before,
    weights: weights(manifest.weights),
    bestWeights: manifest.bestWeights ? weights(manifest.bestWeights) : null,
    optimizer: {
      learningRate: manifest.optimizer.learningRate,
      iterations: manifest.optimizer.iterations,
      slots: manifest.optimizer.slots.map((s, i) =>
        s ? { m: slice(s.m, `Adam slot ${i}`), v: slice(s.v, `Adam slot ${i}`) } : null,
      ),
    },
    callbacks: manifest.callbacks,
    history: manifest.history,
    events: manifest.events,
    seconds: manifest.seconds,
  };
}

/** Bytes a point takes on disk (data + manifest), for storage messages. */
export function resumePointBytes(encoded: { manifest: ResumeManifest; data: Float32Array }): number {
  return encoded.data.byteLength + stringifyExact(encoded.manifest).length;
}

/**
 * A fingerprint of pretrained weights (names, shapes and every value's bits, FNV-1a): a run resumes only on the very
 * weights it started from (a copy kept in the browser may have been replaced since).
 */
export function fingerprintWeights(
  weights: readonly { layer: string; weight: string; shape: number[]; values: Float32Array }[],
): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h ^= x;
    h = Math.imul(h, 0x01000193);
  };
  for (const w of weights) {
    for (const c of `${w.layer}/${w.weight}:${w.shape.join('x')}`) mix(c.charCodeAt(0));
    const bits = new Uint32Array(w.values.buffer, w.values.byteOffset, w.values.length);
    for (let i = 0; i < bits.length; i++) mix(bits[i]!);
  }
  return `${(h >>> 0).toString(16).padStart(8, '0')}-${weights.length}`;
}
