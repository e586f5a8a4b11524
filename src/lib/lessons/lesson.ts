/**
 * Guided lessons: plain JSON that walks a participant through the real workflow, one step at a time, with one-click
 * experiments (train-form presets) and a comparison of their runs at the end. Built-in lessons and a teacher's own
 * file use the same format and the same checks, so a broken file is refused with the place at fault named
 * ("leakage.json: steps[2].target: …"), never half-shown.
 */
import { IMAGE_SIZES, type ImageSize } from '../data/types.ts';
import { BACKBONE_IDS, type BackboneId } from '../model/backbones/catalog.ts';
import { HEAD_KINDS, type HeadKind } from '../model/head-config.ts';
import { BACKEND_NAMES } from '../train/backend-names.ts';
import type { BackendName } from '../train/logs.ts';

export const LESSON_FORMAT = 'lesion-lab-lesson';
export const LESSON_VERSION = 1;

/** The app's pages a step can send the participant to. */
export const LESSON_PAGES = ['data', 'explore', 'train', 'results', 'runs', 'predict'] as const;
export type LessonPage = (typeof LESSON_PAGES)[number];

/**
 * The parts of the app a step can point at; the UI marks the element carrying `data-lesson-target="<name>"`.
 * A closed list so a typo in a lesson file is an error, not a step that silently highlights nothing.
 */
export const LESSON_TARGETS = [
  'sample-button',
  'drop-zone',
  'cache-step',
  'class-table',
  'images-per-lesion',
  'split-choice',
  'class-weights',
  'weights-source',
  'phase2',
  'start',
  'confusion-matrix',
  'report',
  'balanced-accuracy',
  'roc',
  'runs-compare',
] as const;
export type LessonTarget = (typeof LESSON_TARGETS)[number];

/** Train-form settings an experiment may set; everything else keeps the form's value. */
export interface ExperimentSettings {
  backbone?: BackboneId;
  imageSize?: ImageSize;
  /** 'pretrained': the best available ImageNet source (stored, served, …); 'none': random initialisation. */
  weights?: 'pretrained' | 'none';
  grouped?: boolean;
  splitSeed?: number;
  classWeights?: boolean;
  augment?: boolean;
  headKind?: HeadKind;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  earlyStopping?: boolean;
  reduceLr?: boolean;
  /** Fine-tune the top `blocks` after the frozen phase; null turns phase 2 off. */
  phase2?: { blocks: number; epochs: number; learningRate: number } | null;
  backend?: BackendName | 'auto';
}

export interface Experiment {
  id: string;
  /** What the run is called in the Runs table. */
  label: string;
  settings: ExperimentSettings;
}

export interface LessonStep {
  title: string;
  /** Plain-language explanation; paragraphs separated by a blank line. */
  text: string;
  /** Where the action happens; the step opens that page. */
  page?: LessonPage;
  target?: LessonTarget;
  /** The experiment this step runs ("Run this experiment"). */
  experiment?: string;
  /** Experiments whose runs this step compares in the Runs table. */
  compare?: string[];
  /** A question answered by what the participant sees, and the answer to reveal. */
  question?: { prompt: string; answer: string };
}

export interface Lesson {
  format: typeof LESSON_FORMAT;
  version: typeof LESSON_VERSION;
  id: string;
  title: string;
  summary: string;
  /** Settings every experiment of the lesson starts from (before its own). */
  base: ExperimentSettings;
  experiments: Experiment[];
  steps: LessonStep[];
}

/** A lesson file is not usable; `path` is where in the JSON (e.g. `steps[2].target`). */
export class LessonError extends Error {
  constructor(
    readonly fileName: string,
    readonly path: string,
    readonly reason: string,
    message = `${fileName}: ${path ? `${path}: ` : ''}${reason}`,
  ) {
    super(message);
    this.name = 'LessonError';
  }
}

type Json = unknown;

class Reader {
  constructor(readonly fileName: string) {}

  fail(path: string, reason: string): never {
    throw new LessonError(this.fileName, path, reason);
  }

  object(value: Json, path: string): Record<string, Json> {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      this.fail(path, `must be an object, not ${describe(value)}`);
    return value as Record<string, Json>;
  }

  array(value: Json, path: string): Json[] {
    if (!Array.isArray(value)) this.fail(path, `must be a list, not ${describe(value)}`);
    return value;
  }

  text(value: Json, path: string, max = 4000): string {
    if (typeof value !== 'string' || value.trim() === '') this.fail(path, 'must be non-empty text');
    if (value.length > max) this.fail(path, `is ${value.length} characters long; at most ${max}`);
    return value;
  }

  id(value: Json, path: string): string {
    const id = this.text(value, path, 64);
    if (!/^[a-z0-9][a-z0-9-]*$/.test(id))
      this.fail(path, `"${id}" must be lower-case letters, digits and dashes`);
    return id;
  }

  oneOf<T extends string | number>(value: Json, path: string, options: readonly T[]): T {
    if (!options.includes(value as T))
      this.fail(path, `${describe(value)} is not one of ${options.join(', ')}`);
    return value as T;
  }

  boolean(value: Json, path: string): boolean {
    if (typeof value !== 'boolean') this.fail(path, `must be true or false, not ${describe(value)}`);
    return value;
  }

  number(value: Json, path: string, rule: { integer?: boolean; min: number; max: number }): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || (rule.integer && !Number.isInteger(value)))
      this.fail(path, `must be ${rule.integer ? 'a whole number' : 'a number'}, not ${describe(value)}`);
    if (value < rule.min || value > rule.max) this.fail(path, `must be between ${rule.min} and ${rule.max}`);
    return value;
  }

  /** Refuses keys the format does not know: a misspelt setting must not be ignored silently. */
  only(object: Record<string, Json>, path: string, keys: readonly string[]): void {
    for (const key of Object.keys(object)) {
      if (!keys.includes(key)) this.fail(join(path, key), `is not a known field (known: ${keys.join(', ')})`);
    }
  }
}

function describe(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

const SETTING_KEYS = [
  'backbone',
  'imageSize',
  'weights',
  'grouped',
  'splitSeed',
  'classWeights',
  'augment',
  'headKind',
  'epochs',
  'batchSize',
  'learningRate',
  'earlyStopping',
  'reduceLr',
  'phase2',
  'backend',
] as const;

function readSettings(r: Reader, value: Json, path: string): ExperimentSettings {
  const o = r.object(value, path);
  r.only(o, path, SETTING_KEYS);
  const at = (key: string) => join(path, key);
  const s: ExperimentSettings = {};
  if (o.backbone !== undefined) s.backbone = r.oneOf(o.backbone, at('backbone'), BACKBONE_IDS);
  if (o.imageSize !== undefined) s.imageSize = r.oneOf(o.imageSize, at('imageSize'), IMAGE_SIZES);
  if (o.weights !== undefined) s.weights = r.oneOf(o.weights, at('weights'), ['pretrained', 'none'] as const);
  if (o.grouped !== undefined) s.grouped = r.boolean(o.grouped, at('grouped'));
  if (o.splitSeed !== undefined)
    s.splitSeed = r.number(o.splitSeed, at('splitSeed'), { integer: true, min: 0, max: 2 ** 31 - 1 });
  if (o.classWeights !== undefined) s.classWeights = r.boolean(o.classWeights, at('classWeights'));
  if (o.augment !== undefined) s.augment = r.boolean(o.augment, at('augment'));
  if (o.headKind !== undefined) s.headKind = r.oneOf(o.headKind, at('headKind'), HEAD_KINDS);
  if (o.epochs !== undefined)
    s.epochs = r.number(o.epochs, at('epochs'), { integer: true, min: 1, max: 1000 });
  if (o.batchSize !== undefined)
    s.batchSize = r.number(o.batchSize, at('batchSize'), { integer: true, min: 1, max: 1024 });
  if (o.learningRate !== undefined)
    s.learningRate = r.number(o.learningRate, at('learningRate'), { min: 1e-8, max: 1 });
  if (o.earlyStopping !== undefined) s.earlyStopping = r.boolean(o.earlyStopping, at('earlyStopping'));
  if (o.reduceLr !== undefined) s.reduceLr = r.boolean(o.reduceLr, at('reduceLr'));
  if (o.phase2 !== undefined) {
    if (o.phase2 === null) s.phase2 = null;
    else {
      const p = r.object(o.phase2, at('phase2'));
      r.only(p, at('phase2'), ['blocks', 'epochs', 'learningRate']);
      s.phase2 = {
        blocks: r.number(p.blocks, join(at('phase2'), 'blocks'), { integer: true, min: 1, max: 20 }),
        epochs: r.number(p.epochs, join(at('phase2'), 'epochs'), { integer: true, min: 1, max: 1000 }),
        learningRate: r.number(p.learningRate, join(at('phase2'), 'learningRate'), { min: 1e-8, max: 1 }),
      };
    }
  }
  if (o.backend !== undefined)
    s.backend = r.oneOf(o.backend, at('backend'), [...BACKEND_NAMES, 'auto'] as const);
  return s;
}

const STEP_KEYS = ['title', 'text', 'page', 'target', 'experiment', 'compare', 'question'] as const;

/** Checks a parsed lesson and returns it typed; throws LessonError naming the first place at fault. */
export function readLesson(value: Json, fileName: string): Lesson {
  const r = new Reader(fileName);
  const o = r.object(value, '');
  r.only(o, '', ['format', 'version', 'id', 'title', 'summary', 'base', 'experiments', 'steps']);
  if (o.format !== LESSON_FORMAT)
    r.fail('format', `must be "${LESSON_FORMAT}" (this is not a Lesion Lab lesson file)`);
  if (o.version !== LESSON_VERSION)
    r.fail('version', `${describe(o.version)} is not supported; this app reads version ${LESSON_VERSION}`);
  const experiments = r.array(o.experiments ?? [], 'experiments').map((e, i): Experiment => {
    const path = `experiments[${i}]`;
    const x = r.object(e, path);
    r.only(x, path, ['id', 'label', 'settings']);
    return {
      id: r.id(x.id, `${path}.id`),
      label: r.text(x.label, `${path}.label`, 120),
      settings: readSettings(r, x.settings ?? {}, `${path}.settings`),
    };
  });
  const ids = new Set<string>();
  experiments.forEach((x, i) => {
    if (ids.has(x.id)) r.fail(`experiments[${i}].id`, `"${x.id}" is used twice`);
    ids.add(x.id);
  });
  const known = (id: string, path: string) => {
    if (!ids.has(id)) r.fail(path, `names no experiment of this lesson (${[...ids].join(', ') || 'none'})`);
    return id;
  };
  const stepsJson = r.array(o.steps, 'steps');
  if (stepsJson.length === 0) r.fail('steps', 'must hold at least one step');
  if (stepsJson.length > 50) r.fail('steps', `has ${stepsJson.length} steps; at most 50`);
  const steps = stepsJson.map((s, i): LessonStep => {
    const path = `steps[${i}]`;
    const x = r.object(s, path);
    r.only(x, path, STEP_KEYS);
    const step: LessonStep = {
      title: r.text(x.title, `${path}.title`, 120),
      text: r.text(x.text, `${path}.text`),
    };
    if (x.page !== undefined) step.page = r.oneOf(x.page, `${path}.page`, LESSON_PAGES);
    if (x.target !== undefined) step.target = r.oneOf(x.target, `${path}.target`, LESSON_TARGETS);
    if (x.experiment !== undefined)
      step.experiment = known(r.id(x.experiment, `${path}.experiment`), `${path}.experiment`);
    if (x.compare !== undefined) {
      const list = r.array(x.compare, `${path}.compare`);
      if (list.length < 2) r.fail(`${path}.compare`, 'must name at least two experiments');
      step.compare = list.map((id, k) => known(r.id(id, `${path}.compare[${k}]`), `${path}.compare[${k}]`));
    }
    if (x.question !== undefined) {
      const q = r.object(x.question, `${path}.question`);
      r.only(q, `${path}.question`, ['prompt', 'answer']);
      step.question = {
        prompt: r.text(q.prompt, `${path}.question.prompt`, 600),
        answer: r.text(q.answer, `${path}.question.answer`),
      };
    }
    return step;
  });
  return {
    format: LESSON_FORMAT,
    version: LESSON_VERSION,
    id: r.id(o.id, 'id'),
    title: r.text(o.title, 'title', 120),
    summary: r.text(o.summary, 'summary', 1000),
    base: readSettings(r, o.base ?? {}, 'base'),
    experiments,
    steps,
  };
}

/** Largest lesson file read; a lesson is a few kB of text. */
export const MAX_LESSON_BYTES = 256 * 1024;

/**
 * Whether text that failed to parse as JSON is a binary file's bytes (a zip, an image) rather than broken JSON:
 * invalid UTF-8 (decoded as U+FFFD) or control characters that no text file holds. Its parser message would quote
 * those bytes, which tell the user nothing.
 */
export function looksBinary(text: string): boolean {
  const end = Math.min(text.length, 4096);
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0xfffd || c === 0x7f || (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d))
      return true;
  }
  return false;
}

/** A binary file (a zip, an image) given as a lesson: said plainly, without quoting its bytes. */
function notALesson(fileName: string): LessonError {
  const reason =
    'is not a lesson file: it holds binary data, not text. A lesson is a .json text file (the format is in the ' +
    'README, “Writing a lesson”); the built-in lessons on the Learn page are examples';
  return new LessonError(fileName, '', reason, `${fileName} ${reason}`);
}

/** Parses a lesson file's text (a dropped file or a fetched URL). */
export function parseLesson(text: string, fileName: string): Lesson {
  if (text.length > MAX_LESSON_BYTES) {
    if (looksBinary(text)) throw notALesson(fileName);
    throw new LessonError(fileName, '', `is ${text.length} characters; a lesson file is at most 256 kB`);
  }
  let json: Json;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    if (looksBinary(text)) throw notALesson(fileName);
    throw new LessonError(fileName, '', `is not valid JSON (${(error as Error).message})`);
  }
  return readLesson(json, fileName);
}

/** The settings an experiment trains with: the lesson's base, then its own. */
export function experimentSettings(lesson: Lesson, experimentId: string): ExperimentSettings {
  const experiment = lesson.experiments.find((x) => x.id === experimentId);
  if (!experiment) throw new Error(`${lesson.id} has no experiment ${experimentId}`);
  return { ...lesson.base, ...experiment.settings };
}
