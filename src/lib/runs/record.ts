/**
 * A training run as the app keeps it: its settings, the per-epoch history, the callbacks' events, the test split's
 * report and predictions, and a status. Everything is plain data (structured-clone and JSON safe), so the same
 * record lives in IndexedDB, travels between worker and page, and is written into an export zip.
 *
 * Every reader of a record that came from outside (a zip, storage written by another version) goes through the
 * `parse*` functions here: they check each field and say which file and field is at fault.
 */
import type { EpochLog, TrainLog } from '../train/logs.ts';
import { MONITORS, type Monitor } from '../train/callbacks.ts';
import {
  BACKBONE_IDS,
  getBackboneInfo,
  MAX_INPUT_SIZE,
  MIN_INPUT_SIZE,
  type BackboneId,
} from '../model/backbones/catalog.ts';
import { HEAD_KINDS, type HeadConfig } from '../model/head-config.ts';
import { FUSIONS } from '../model/fusion.ts';
import {
  MetadataEncodingError,
  metadataDim,
  parseMetadataEncoding,
  type MetadataEncoding,
} from '../model/metadata-features.ts';
import type { PreprocessMode } from '../model/preprocess.ts';
import { MetricsInputError, parsePredictions } from '../metrics/input.ts';
import { parseRunEvaluation, type RunEvaluation } from './evaluation.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** `running` until training ends; then how it ended (the loop's StopReason), or `failed`. */
export const RUN_STATUSES = ['running', 'completed', 'early-stop', 'stopped', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** What Predict, Grad-CAM and an import need to use the run's model. */
export interface RunModelConfig {
  backbone: BackboneId;
  /** Square input edge in pixels. */
  inputSize: number;
  /** Keras preprocess_input mode of the backbone; the model expects its input preprocessed this way. */
  preprocessing: PreprocessMode;
  head: HeadConfig;
  /** Class names in label order (the model's output order), e.g. DX. */
  classes: string[];
  /** Layer whose activations and gradients Grad-CAM uses (the backbone's last conv block). */
  gradCamLayer: string;
  /**
   * How the run's metadata input is encoded (vocabularies, age mean and sd of its train split), when its head takes
   * metadata (head.metadata); absent or null for an image-only model.
   */
  metadata?: MetadataEncoding | null;
}

export interface RunConfig {
  model: RunModelConfig;
  /**
   * The rest of the train form as the training page sends it (weights source, split, class weights, augmentation,
   * epochs, batch size, lr, callbacks, phase 2, seed): kept and exported verbatim.
   */
  training: JsonObject;
}

/** Training events drawn as markers on the curves (lr drops, best epoch, early stop) or shown as the run's end. */
export type RunEvent = Extract<
  TrainLog,
  { type: 'lr-reduced' | 'early-stop' | 'checkpoint' | 'restored-best' | 'done' }
>;

/** The test split's predictions, aligned by image id (the seed's bug was misaligned predictions and labels). */
export interface TestPredictions {
  imageIds: string[];
  /** Class index of each image. */
  yTrue: number[];
  /** One probability per class, per image. */
  yProb: number[][];
}

/** The classification report as `reportToJson` writes it (the `metrics` CLI's output). */
export interface MetricsJson {
  classes: string[];
  samples: number;
  per_class: Record<
    string,
    { precision: number; recall: number; f1: number; support: number; auc: number | null }
  >;
  accuracy: number;
  balanced_accuracy: number;
  macro_avg: { precision: number; recall: number; f1: number };
  weighted_avg: { precision: number; recall: number; f1: number };
  macro_auc: number | null;
  confusion_matrix: number[][];
  zero_division: { precision: string[]; recall: string[]; f1: string[] };
  auc_undefined: string[];
}

export interface RunRecord {
  /** Letters, digits, `-` and `_` (it is part of the model's storage key, `indexeddb://run-<id>`). */
  id: string;
  name: string;
  /** ISO 8601, UTC. */
  created: string;
  status: RunStatus;
  /** Why a failed run failed; null otherwise. */
  error: string | null;
  config: RunConfig;
  /** One entry per finished epoch, phase 1 then phase 2. */
  history: EpochLog[];
  events: RunEvent[];
  /** The test split's report; null until it was evaluated. */
  metrics: MetricsJson | null;
  predictions: TestPredictions | null;
  /** CIs, calibration and TTA of the test split (src/lib/runs/evaluation.ts); absent in older runs. */
  evaluation?: RunEvaluation | null;
}

export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const EVENT_TYPES = ['lr-reduced', 'early-stop', 'checkpoint', 'restored-best', 'done'] as const;
const STOP_REASONS = ['completed', 'early-stop', 'stopped'] as const;

/** A sortable, storage-key-safe id: UTC date and time, then 6 random hex digits (`20240501-093012-3fa9c1`). */
export function createRunId(now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '-');
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return `${stamp}-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The model part of a run's config, with preprocessing and the Grad-CAM layer from the backbone registry. */
export function modelConfigFor(
  backbone: BackboneId,
  inputSize: number,
  head: HeadConfig,
  classes: readonly string[],
): RunModelConfig {
  const spec = getBackboneInfo(backbone);
  return {
    backbone: spec.id,
    inputSize,
    preprocessing: spec.preprocessing,
    head: { ...head },
    classes: [...classes],
    gradCamLayer: spec.gradCamLayer,
  };
}

/** A new run, `running`, with an empty history. */
export function createRun(init: { name: string; config: RunConfig; id?: string; created?: Date }): RunRecord {
  const created = init.created ?? new Date();
  const run: RunRecord = {
    id: init.id ?? createRunId(created),
    name: init.name,
    created: created.toISOString(),
    status: 'running',
    error: null,
    config: structuredClone(init.config),
    history: [],
    events: [],
    metrics: null,
    predictions: null,
  };
  return parseRunRecord(run, 'new run');
}

/**
 * The record after one training log: an epoch joins the history, a callback event joins the events, `done` sets
 * the status. A redone epoch (after a device loss) replaces the earlier entry of that phase and epoch. Returns a new
 * record; other logs (batches, progress) leave it unchanged and return it as is.
 */
export function applyLog(run: RunRecord, log: TrainLog): RunRecord {
  switch (log.type) {
    case 'epoch': {
      const history = run.history.filter((e) => !(e.phase === log.phase && e.epoch === log.epoch));
      return { ...run, history: [...history, { ...log }] };
    }
    case 'lr-reduced':
    case 'early-stop':
    case 'checkpoint':
    case 'restored-best':
      return { ...run, events: [...run.events, { ...log }] };
    case 'done':
      return { ...run, status: log.reason, events: [...run.events, { ...log }] };
    default:
      return run;
  }
}

/** The run after an error ended training: `failed`, with the message; history and events are kept. */
export function failRun(run: RunRecord, error: unknown): RunRecord {
  const message = error instanceof Error ? error.message : String(error);
  return { ...run, status: 'failed', error: message };
}

/**
 * The epoch whose weights the run's model holds, as [phase, epoch]: the last best checkpoint (the model and the
 * test results are made from it), else the last `restored-best` event, else the last epoch of the history; null
 * before the first epoch.
 */
export function bestEpoch(
  run: Pick<RunRecord, 'history' | 'events'>,
): { phase: 1 | 2; epoch: number } | null {
  const saved = run.events.findLast((e) => e.type === 'checkpoint');
  if (saved) return { phase: saved.phase, epoch: saved.epoch };
  const restored = run.events.findLast((e) => e.type === 'restored-best');
  if (restored) return { phase: restored.phase, epoch: restored.epoch };
  const last = run.history.at(-1);
  return last ? { phase: last.phase, epoch: last.epoch } : null;
}

// ---------------------------------------------------------------------------------------------------------------
// Checked reading

/** A run file (or stored record) that does not hold what it should; names the file and the field at fault. */
export class RunFileError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly field: string | null = null,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RunFileError';
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value);
  if (text === undefined) return typeof value;
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

type Obj = Record<string, unknown>;

/** Field checks that throw RunFileError naming `file` and the field's path (`history[3].val_loss`). */
export class FieldReader {
  constructor(readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new RunFileError(`${this.file}: ${field} ${problem}`, this.file, field);
  }

  object(value: unknown, field: string): Obj {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(field, `must be an object; got ${describe(value)}`);
    }
    return value as Obj;
  }

  array(value: unknown, field: string): unknown[] {
    if (!Array.isArray(value)) this.fail(field, `must be a list; got ${describe(value)}`);
    return value;
  }

  string(value: unknown, field: string, nonEmpty = false): string {
    if (typeof value !== 'string') this.fail(field, `must be text; got ${describe(value)}`);
    if (nonEmpty && value.trim() === '') this.fail(field, 'must not be empty');
    return value;
  }

  /** A number; NaN is allowed only with `nan` (a diverged loss is a real outcome, kept as it was). */
  number(value: unknown, field: string, options: { nan?: boolean; min?: number; max?: number } = {}): number {
    if (typeof value !== 'number' || (Number.isNaN(value) && !options.nan)) {
      this.fail(field, `must be a number; got ${describe(value)}`);
    }
    if (!Number.isNaN(value) && !Number.isFinite(value) && !options.nan) {
      this.fail(field, `must be a finite number; got ${describe(value)}`);
    }
    if (options.min !== undefined && value < options.min)
      this.fail(field, `must be ≥ ${options.min}; got ${value}`);
    if (options.max !== undefined && value > options.max)
      this.fail(field, `must be ≤ ${options.max}; got ${value}`);
    return value;
  }

  integer(value: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      this.fail(field, `must be a whole number ${range}; got ${describe(value)}`);
    }
    return value;
  }

  nullable<T>(value: unknown, read: (v: unknown) => T): T | null {
    return value === null ? null : read(value);
  }

  oneOf<T extends string>(value: unknown, options: readonly T[], field: string): T {
    if (typeof value !== 'string' || !(options as readonly string[]).includes(value)) {
      this.fail(field, `must be one of ${options.join(', ')}; got ${describe(value)}`);
    }
    return value as T;
  }

  boolean(value: unknown, field: string): boolean {
    if (typeof value !== 'boolean') this.fail(field, `must be true or false; got ${describe(value)}`);
    return value;
  }

  json(value: unknown, field: string): JsonValue {
    if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
    if (typeof value === 'number') return this.number(value, field);
    if (Array.isArray(value)) return value.map((v, i) => this.json(v, `${field}[${i}]`));
    const o = this.object(value, field);
    // An optional setting left undefined is absent, as JSON.stringify treats it.
    return Object.fromEntries(
      Object.entries(o)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, this.json(v, `${field}.${k}`)]),
    );
  }
}

const at = (base: string, key: string): string => (base === '' ? key : `${base}.${key}`);

export function parseRunConfig(value: unknown, file = 'config.json', base = ''): RunConfig {
  const r = new FieldReader(file);
  const o = r.object(value, base || 'the config');
  const m = r.object(o.model, at(base, 'model'));
  const f = (key: string): string => at(at(base, 'model'), key);
  const h = r.object(m.head, f('head'));
  const g = (key: string): string => at(f('head'), key);
  const classes = r.array(m.classes, f('classes')).map((c, i) => r.string(c, `${f('classes')}[${i}]`, true));
  if (classes.length < 2) r.fail(f('classes'), `must list at least 2 classes; got ${classes.length}`);
  const seen = new Set<string>();
  classes.forEach((c, i) => {
    if (seen.has(c)) r.fail(`${f('classes')}[${i}]`, `repeats the class "${c}"`);
    seen.add(c);
  });
  const head: HeadConfig = {
    kind: r.oneOf(h.kind, HEAD_KINDS, g('kind')),
    classes: r.integer(h.classes, g('classes'), 2),
    hiddenUnits: r.integer(h.hiddenUnits, g('hiddenUnits'), 1),
    dropout: r.number(h.dropout, g('dropout'), { min: 0, max: 0.999999 }),
  };
  if (head.classes !== classes.length) {
    r.fail(g('classes'), `is ${head.classes}, but ${f('classes')} lists ${classes.length} classes`);
  }
  let encoding: MetadataEncoding | null = null;
  if (m.metadata !== undefined && m.metadata !== null) {
    try {
      encoding = parseMetadataEncoding(m.metadata, `${file}: ${f('metadata')}`);
    } catch (error) {
      if (error instanceof MetadataEncodingError) throw new RunFileError(error.message, file, f('metadata'));
      throw error;
    }
  }
  if (h.metadata !== undefined && h.metadata !== null) {
    const hm = r.object(h.metadata, g('metadata'));
    head.metadata = {
      features: r.integer(hm.features, g('metadata.features'), 1),
      fusion: r.oneOf(hm.fusion, FUSIONS, g('metadata.fusion')),
      units: r.integer(hm.units, g('metadata.units'), 1, 65536),
    };
    if (!encoding) {
      return r.fail(
        f('metadata'),
        'is missing: the head takes metadata, and the run does not say how to encode it',
      );
    }
    const width = metadataDim(encoding);
    if (width !== head.metadata.features) {
      r.fail(
        g('metadata.features'),
        `is ${head.metadata.features}, but ${f('metadata')} encodes ${width} values`,
      );
    }
  } else if (encoding) {
    r.fail(g('metadata'), 'is missing: the run has a metadata encoding, and its head takes no metadata');
  }
  const training = r.json(r.object(o.training, at(base, 'training')), at(base, 'training')) as JsonObject;
  return {
    model: {
      backbone: r.oneOf(m.backbone, BACKBONE_IDS, f('backbone')),
      inputSize: r.integer(m.inputSize, f('inputSize'), MIN_INPUT_SIZE, MAX_INPUT_SIZE),
      preprocessing: r.oneOf(m.preprocessing, ['tf', 'caffe'] as const, f('preprocessing')),
      head,
      classes,
      gradCamLayer: r.string(m.gradCamLayer, f('gradCamLayer'), true),
      ...(encoding ? { metadata: encoding } : {}),
    },
    training,
  };
}

const phaseOf = (r: FieldReader, v: unknown, field: string): 1 | 2 => r.integer(v, field, 1, 2) as 1 | 2;

/** Numeric fields of an epoch log, in history.csv's column order. */
export const EPOCH_FIELDS = [
  'phase',
  'epoch',
  'epochs',
  'loss',
  'accuracy',
  'val_loss',
  'val_accuracy',
  'val_balanced_accuracy',
  'val_macro_f1',
  'lr',
  'seconds',
] as const satisfies readonly (keyof EpochLog)[];

export function parseEpochLog(
  value: unknown,
  r: FieldReader,
  field: string,
  name: (key: string) => string = (key) => `${field}.${key}`,
): EpochLog {
  const o = r.object(value, field);
  const num = (key: keyof EpochLog): number => r.number(o[key], name(key), { nan: true });
  const log: EpochLog = {
    type: 'epoch',
    phase: phaseOf(r, o.phase, name('phase')),
    epoch: r.integer(o.epoch, name('epoch'), 1),
    epochs: r.integer(o.epochs, name('epochs'), 1),
    loss: num('loss'),
    accuracy: num('accuracy'),
    val_loss: num('val_loss'),
    val_accuracy: num('val_accuracy'),
    val_balanced_accuracy: num('val_balanced_accuracy'),
    val_macro_f1: num('val_macro_f1'),
    lr: num('lr'),
    seconds: num('seconds'),
  };
  if (o.type !== undefined && o.type !== 'epoch')
    r.fail(name('type'), `must be "epoch"; got ${describe(o.type)}`);
  return log;
}

export function parseRunEvent(value: unknown, r: FieldReader, field: string): RunEvent {
  const o = r.object(value, field);
  const type = r.oneOf(o.type, EVENT_TYPES, `${field}.type`);
  const k = (key: string): string => `${field}.${key}`;
  const phase = phaseOf(r, o.phase, k('phase'));
  const monitor = (): Monitor => r.oneOf(o.monitor, MONITORS, k('monitor'));
  const numOrNull = (key: string): number | null =>
    r.nullable(o[key], (v) => r.number(v, k(key), { nan: true }));
  switch (type) {
    case 'lr-reduced':
      return {
        type,
        phase,
        epoch: r.integer(o.epoch, k('epoch'), 1),
        from: r.number(o.from, k('from')),
        to: r.number(o.to, k('to')),
        monitor: monitor(),
      };
    case 'early-stop':
      return {
        type,
        phase,
        epoch: r.integer(o.epoch, k('epoch'), 1),
        monitor: monitor(),
        best: numOrNull('best'),
        bestEpoch: r.integer(o.bestEpoch, k('bestEpoch'), 0),
      };
    case 'checkpoint':
      return {
        type,
        phase,
        epoch: r.integer(o.epoch, k('epoch'), 1),
        monitor: monitor(),
        value: numOrNull('value'),
        location: r.nullable(o.location, (v) => r.string(v, k('location'))),
      };
    case 'restored-best':
      return { type, phase, epoch: r.integer(o.epoch, k('epoch'), 0) };
    case 'done':
      return {
        type,
        reason: r.oneOf(o.reason, STOP_REASONS, k('reason')),
        phase,
        epochs: r.integer(o.epochs, k('epochs'), 0),
        seconds: r.number(o.seconds, k('seconds'), { min: 0 }),
      };
  }
}

function stringList(r: FieldReader, value: unknown, field: string): string[] {
  return r.array(value, field).map((v, i) => r.string(v, `${field}[${i}]`));
}

/** The report JSON, with every figure checked against the class list (names, sizes, ranges). */
export function parseMetricsJson(value: unknown, file = 'metrics.json', base = ''): MetricsJson {
  const r = new FieldReader(file);
  const o = r.object(value, base || 'the report');
  const k = (key: string): string => at(base, key);
  const classes = stringList(r, o.classes, k('classes'));
  if (classes.length < 2) r.fail(k('classes'), `must list at least 2 classes; got ${classes.length}`);
  const n = classes.length;
  const ratio = (v: unknown, field: string): number => r.number(v, field, { min: 0, max: 1 });
  const triple = (v: unknown, field: string): { precision: number; recall: number; f1: number } => {
    const t = r.object(v, field);
    return {
      precision: ratio(t.precision, `${field}.precision`),
      recall: ratio(t.recall, `${field}.recall`),
      f1: ratio(t.f1, `${field}.f1`),
    };
  };
  const perClassIn = r.object(o.per_class, k('per_class'));
  const per_class: MetricsJson['per_class'] = {};
  for (const name of classes) {
    const field = `${k('per_class')}.${name}`;
    if (!(name in perClassIn)) r.fail(field, 'is missing (every class of `classes` needs its row)');
    const c = r.object(perClassIn[name], field);
    per_class[name] = {
      ...triple(c, field),
      support: r.integer(c.support, `${field}.support`),
      auc: r.nullable(c.auc, (v) => ratio(v, `${field}.auc`)),
    };
  }
  for (const name of Object.keys(perClassIn)) {
    if (!classes.includes(name)) r.fail(`${k('per_class')}.${name}`, 'is not one of `classes`');
  }
  const matrix = r.array(o.confusion_matrix, k('confusion_matrix')).map((row, i) => {
    const cells = r.array(row, `${k('confusion_matrix')}[${i}]`);
    if (cells.length !== n)
      r.fail(`${k('confusion_matrix')}[${i}]`, `must hold ${n} counts; got ${cells.length}`);
    return cells.map((v, j) => r.integer(v, `${k('confusion_matrix')}[${i}][${j}]`));
  });
  if (matrix.length !== n)
    r.fail(k('confusion_matrix'), `must have ${n} rows (one per class); got ${matrix.length}`);
  const samples = r.integer(o.samples, k('samples'), 1);
  const total = matrix.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  if (total !== samples) r.fail(k('confusion_matrix'), `counts ${total} samples, but samples is ${samples}`);
  const zd = r.object(o.zero_division, k('zero_division'));
  const names = (v: unknown, field: string): string[] =>
    stringList(r, v, field).map((name, i) => {
      if (!classes.includes(name)) r.fail(`${field}[${i}]`, `"${name}" is not one of \`classes\``);
      return name;
    });
  return {
    classes,
    samples,
    per_class,
    accuracy: ratio(o.accuracy, k('accuracy')),
    balanced_accuracy: ratio(o.balanced_accuracy, k('balanced_accuracy')),
    macro_avg: triple(o.macro_avg, k('macro_avg')),
    weighted_avg: triple(o.weighted_avg, k('weighted_avg')),
    macro_auc: r.nullable(o.macro_auc, (v) => ratio(v, k('macro_auc'))),
    confusion_matrix: matrix,
    zero_division: {
      precision: names(zd.precision, `${k('zero_division')}.precision`),
      recall: names(zd.recall, `${k('zero_division')}.recall`),
      f1: names(zd.f1, `${k('zero_division')}.f1`),
    },
    auc_undefined: names(o.auc_undefined, k('auc_undefined')),
  };
}

/** predictions.json: `{classes, image_ids, y_true, y_prob}` (the `metrics` CLI's input, plus the image ids). */
export function parseTestPredictions(
  value: unknown,
  classes: readonly string[],
  file = 'predictions.json',
): TestPredictions {
  const r = new FieldReader(file);
  const o = r.object(value, 'the predictions');
  let parsed;
  try {
    parsed = parsePredictions(o);
  } catch (error) {
    if (error instanceof MetricsInputError) {
      throw new RunFileError(`${file}: ${error.message}`, file, error.field, { cause: error });
    }
    throw error;
  }
  const yProb = parsed.yProb ?? r.fail('y_prob', 'is missing');
  if (parsed.classes.join('\n') !== classes.join('\n')) {
    r.fail('classes', `must be the run's classes (${classes.join(', ')}); got ${parsed.classes.join(', ')}`);
  }
  const imageIds = stringList(r, o.image_ids, 'image_ids');
  if (imageIds.length !== parsed.yTrue.length) {
    r.fail(
      'image_ids',
      `has ${imageIds.length} ids but y_true has ${parsed.yTrue.length} labels; one per image`,
    );
  }
  const seen = new Map<string, number>();
  imageIds.forEach((id, i) => {
    if (id === '') r.fail(`image_ids[${i}]`, 'must not be empty');
    const before = seen.get(id);
    if (before !== undefined) r.fail(`image_ids[${i}]`, `"${id}" repeats image_ids[${before}]`);
    seen.set(id, i);
  });
  return { imageIds, yTrue: parsed.yTrue, yProb };
}

/** The predictions in predictions.json's shape. */
export function predictionsToJson(
  predictions: TestPredictions,
  classes: readonly string[],
): { classes: string[]; image_ids: string[]; y_true: number[]; y_prob: number[][] } {
  return {
    classes: [...classes],
    image_ids: predictions.imageIds,
    y_true: predictions.yTrue,
    y_prob: predictions.yProb,
  };
}

/** Checks a whole record (e.g. read back from storage); `source` names where it came from in messages. */
export function parseRunRecord(value: unknown, source = 'run'): RunRecord {
  const r = new FieldReader(source);
  const o = r.object(value, 'the run');
  const id = r.string(o.id, 'id');
  if (!RUN_ID_PATTERN.test(id)) {
    r.fail(
      'id',
      `must be 1 to 64 letters, digits, "-" or "_" (starting with a letter or digit); got ${describe(id)}`,
    );
  }
  const created = r.string(o.created, 'created');
  if (Number.isNaN(Date.parse(created)) || !/^\d{4}-\d\d-\d\dT/.test(created)) {
    r.fail('created', `must be an ISO 8601 date and time; got ${describe(created)}`);
  }
  const config = parseRunConfig(o.config, source, 'config');
  const history = r.array(o.history, 'history').map((e, i) => parseEpochLog(e, r, `history[${i}]`));
  const events = r.array(o.events, 'events').map((e, i) => parseRunEvent(e, r, `events[${i}]`));
  const metrics = o.metrics === null ? null : parseMetricsJson(o.metrics, source, 'metrics');
  if (metrics && metrics.classes.join('\n') !== config.model.classes.join('\n')) {
    r.fail('metrics.classes', `must be the run's classes (${config.model.classes.join(', ')})`);
  }
  let predictions: TestPredictions | null = null;
  if (o.predictions !== null) {
    const p = r.object(o.predictions, 'predictions');
    predictions = parseTestPredictions(
      { classes: config.model.classes, image_ids: p.imageIds, y_true: p.yTrue, y_prob: p.yProb },
      config.model.classes,
      `${source} predictions`,
    );
  }
  return {
    id,
    name: r.string(o.name, 'name', true),
    created,
    status: r.oneOf(o.status, RUN_STATUSES, 'status'),
    error: r.nullable(o.error, (v) => r.string(v, 'error')),
    config,
    history,
    events,
    metrics,
    predictions,
    evaluation:
      o.evaluation === undefined || o.evaluation === null ? null : parseRunEvaluation(o.evaluation, r),
  };
}

/** Oldest first (by `created`, then id), in place: the order every run list is in. */
export function sortRuns(runs: RunRecord[]): RunRecord[] {
  return runs.sort((a, b) =>
    a.created === b.created ? (a.id < b.id ? -1 : 1) : a.created < b.created ? -1 : 1,
  );
}
