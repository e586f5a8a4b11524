/**
 * The Train page's state: the settings form (as text, so a half-typed value can be shown and refused with a
 * reason), the live run (logs from TrainClient), and keeping the run as a RunRecord (LabClient) as it goes: saved
 * after every epoch, and when it ends with its best model and test results.
 */
import { duplicates } from './duplicates.svelte.ts';
import { DEFAULT_METADATA_UNITS, type Fusion } from '../lib/model/fusion.ts';
import { DX } from '../lib/data/dx.ts';
import { IMAGE_SIZES, type ImageSize } from '../lib/data/types.ts';
import {
  BACKBONE_CATALOG as BACKBONES,
  BACKBONE_IDS,
  type BackboneId,
} from '../lib/model/backbones/catalog.ts';
import { defaultHeadFor, HEAD_KINDS, type HeadKind } from '../lib/model/head-config.ts';
import {
  applyLog,
  createRun,
  failRun,
  modelConfigFor,
  type JsonObject,
  type RunRecord,
} from '../lib/runs/record.ts';
import { MONITORS, type Monitor } from '../lib/train/callbacks.ts';
import { runConfig } from '../lib/train/config.ts';
import {
  DEFAULT_RUN_CONFIG,
  TrainClient,
  TrainFailure,
  type BackendLog,
  type FeatureWorkersLog,
  type BatchLog,
  type EpochLog,
  type PreparedLog,
  type RunConfig,
  type RunLog,
  type RunSummary,
  type TestLog,
  type ResumeOffer,
  type TrainState,
  type WeightsSource,
} from '../worker/train-client.ts';
import type { MemoryUse } from '../worker/train-protocol.ts';
import type { StoredWeightsInfo } from '../worker/weights-store.ts';
import { lab } from './runs.svelte.ts';
import { isModelServed, servedModelPath } from '../lib/model/weights/served.ts';
import { servedUrl } from './served-url.ts';
import { ActiveClock } from '../lib/train/clock.ts';
import { featuresProgress, featureWorkersText } from '../lib/train/logs.ts';
import { distinctName, runName, runTimestamp } from '../lib/runs/naming.ts';
import {
  missingCache,
  unsuitableBackend,
  UNKNOWN_ENVIRONMENT,
  type TrainEnvironment,
} from './train-readiness.ts';
import {
  formStorage,
  readStoredForm,
  restoreForm,
  storedWebGPUWeightGradients,
  writeStoredForm,
} from './train-form-store.ts';

export type { TrainEnvironment } from './train-readiness.ts';

export type WeightsKind = 'official' | 'stored' | 'tfjs-files' | 'keras-h5' | 'none';

/** Every setting of the form, as the inputs hold it. */
export interface TrainForm {
  backbone: BackboneId;
  weightsKind: WeightsKind;
  imageSize: ImageSize;
  grouped: boolean;
  splitSeed: string;
  classWeights: boolean;
  /** Score the test split with test-time augmentation (four flips) too. */
  tta: boolean;
  augment: boolean;
  rotationDeg: string;
  shearDeg: string;
  zoom: string;
  horizontalFlip: boolean;
  verticalFlip: boolean;
  headKind: HeadKind;
  hiddenUnits: string;
  dropout: string;
  epochs: string;
  batchSize: string;
  learningRate: string;
  earlyStopping: boolean;
  esMonitor: Monitor;
  esPatience: string;
  esMinDelta: string;
  esRestoreBest: boolean;
  reduceLr: boolean;
  rlMonitor: Monitor;
  rlFactor: string;
  rlPatience: string;
  rlMinLr: string;
  phase2: boolean;
  p2Blocks: string;
  p2Epochs: string;
  p2LearningRate: string;
  backend: RunConfig['backend'];
  /** Fuse age, sex and site with the image features (src/lib/model/fusion.ts). */
  metadata: boolean;
  fusion: Fusion;
}

export type FormField = keyof TrainForm | 'weightsFiles';

const D = DEFAULT_RUN_CONFIG;

export function defaultForm(): TrainForm {
  return {
    backbone: D.backbone,
    weightsKind: 'official',
    imageSize: D.imageSize,
    grouped: D.split.grouped,
    splitSeed: String(D.split.seed),
    classWeights: D.classWeights,
    tta: D.tta,
    augment: false,
    rotationDeg: '20',
    shearDeg: '0.1',
    zoom: '0.1',
    horizontalFlip: true,
    verticalFlip: false,
    headKind: defaultHeadFor(D.backbone).kind,
    hiddenUnits: '128',
    dropout: '0.2',
    epochs: String(D.epochs),
    batchSize: String(D.batchSize),
    learningRate: String(D.learningRate),
    earlyStopping: D.earlyStopping !== null,
    esMonitor: D.earlyStopping?.monitor ?? 'val_loss',
    esPatience: String(D.earlyStopping?.patience ?? 5),
    esMinDelta: '0',
    esRestoreBest: D.earlyStopping?.restoreBestWeights ?? true,
    reduceLr: D.reduceLr !== null,
    rlMonitor: D.reduceLr?.monitor ?? 'val_loss',
    rlFactor: String(D.reduceLr?.factor ?? 0.5),
    rlPatience: String(D.reduceLr?.patience ?? 3),
    rlMinLr: String(D.reduceLr?.minLr ?? 1e-5),
    phase2: false,
    p2Blocks: '2',
    p2Epochs: '5',
    p2LearningRate: '1e-5',
    backend: 'auto',
    metadata: false,
    fusion: 'concat',
  };
}

export interface Validated {
  config: Partial<RunConfig> | null;
  errors: Partial<Record<FormField, string>>;
}

function num(
  errors: Validated['errors'],
  field: FormField,
  text: string,
  rule: { integer?: boolean; min?: number; max?: number; above?: number; below?: number },
): number {
  const trimmed = text.trim();
  const value = trimmed === '' ? NaN : Number(trimmed);
  const kind = rule.integer ? 'a whole number' : 'a number';
  if (!Number.isFinite(value) || (rule.integer && !Number.isInteger(value))) {
    errors[field] = trimmed === '' ? `Enter ${kind}.` : `"${trimmed}" is not ${kind}.`;
  } else if (rule.min !== undefined && value < rule.min) errors[field] = `Must be at least ${rule.min}.`;
  else if (rule.max !== undefined && value > rule.max) errors[field] = `Must be at most ${rule.max}.`;
  else if (rule.above !== undefined && !(value > rule.above))
    errors[field] = `Must be greater than ${rule.above}.`;
  else if (rule.below !== undefined && !(value < rule.below))
    errors[field] = `Must be less than ${rule.below}.`;
  return value;
}

/** What this app and browser can offer as pretrained weights for the chosen backbone (null: not known yet). */
export interface WeightsAvailability {
  served: boolean | null;
  stored: boolean;
}

/**
 * The weights source a new form starts on, best first: the copy this browser kept (no download), the files served
 * with the app, else the user's own files. Never a source known to be missing.
 */
export function defaultWeightsKind(available: WeightsAvailability): WeightsKind {
  if (available.stored) return 'stored';
  if (available.served !== false) return 'official';
  return 'tfjs-files';
}

/**
 * Fields whose errors are not typos but something missing on this device (the image cache, the weights, a backend
 * that can do the work): the Train page lists them next to Start before the user presses it.
 */
export const READINESS_FIELDS: readonly FormField[] = ['imageSize', 'weightsKind', 'weightsFiles', 'backend'];

/**
 * The run settings the form describes, or a reason per field at fault. `environment` (what this device has: image
 * caches, backends able to fine-tune) refuses a run that could not work here; unknown parts refuse nothing.
 */
export function validateForm(
  form: TrainForm,
  weightsFiles: readonly File[],
  available: WeightsAvailability = { served: null, stored: true },
  environment: TrainEnvironment = UNKNOWN_ENVIRONMENT,
): Validated {
  const errors: Validated['errors'] = {};
  if (form.weightsKind === 'official' && available.served === false)
    errors.weightsKind = `This app serves no weights for ${form.backbone}: pick weight files from disk.`;
  if (form.weightsKind === 'stored' && !available.stored)
    errors.weightsKind = `No weights for ${form.backbone} are stored in this browser yet.`;
  if (!(BACKBONE_IDS as readonly string[]).includes(form.backbone)) errors.backbone = 'Pick a backbone.';
  if (!(IMAGE_SIZES as readonly number[]).includes(form.imageSize)) errors.imageSize = 'Pick an image size.';
  if (form.weightsKind === 'tfjs-files') {
    if (!weightsFiles.some((f) => f.name.endsWith('.json')))
      errors.weightsFiles = 'Choose the model.json and its .bin shard files together.';
    else if (!weightsFiles.some((f) => f.name.endsWith('.bin')))
      errors.weightsFiles = 'Also choose the .bin weight shards that model.json lists.';
  }
  if (form.weightsKind === 'keras-h5' && !weightsFiles.some((f) => /\.h5$/i.test(f.name)))
    errors.weightsFiles = 'Choose a Keras *_notop.h5 weights file.';
  const seed = num(errors, 'splitSeed', form.splitSeed, { integer: true, min: 0 });
  const epochs = num(errors, 'epochs', form.epochs, { integer: true, min: 1, max: 1000 });
  const batchSize = num(errors, 'batchSize', form.batchSize, { integer: true, min: 1, max: 1024 });
  const learningRate = num(errors, 'learningRate', form.learningRate, { above: 0, max: 1 });
  const hiddenUnits = num(errors, 'hiddenUnits', form.hiddenUnits, { integer: true, min: 1, max: 8192 });
  const dropout = num(errors, 'dropout', form.dropout, { min: 0, below: 1 });
  const rotationDeg = num(errors, 'rotationDeg', form.rotationDeg, { min: 0, max: 180 });
  const shearDeg = num(errors, 'shearDeg', form.shearDeg, { min: 0, max: 89 });
  const zoom = num(errors, 'zoom', form.zoom, { min: 0, below: 1 });
  const esPatience = num(errors, 'esPatience', form.esPatience, { integer: true, min: 0 });
  const esMinDelta = num(errors, 'esMinDelta', form.esMinDelta, { min: 0 });
  const rlFactor = num(errors, 'rlFactor', form.rlFactor, { above: 0, below: 1 });
  const rlPatience = num(errors, 'rlPatience', form.rlPatience, { integer: true, min: 0 });
  const rlMinLr = num(errors, 'rlMinLr', form.rlMinLr, { min: 0 });
  const p2Blocks = num(errors, 'p2Blocks', form.p2Blocks, { integer: true, min: 1 });
  const p2Epochs = num(errors, 'p2Epochs', form.p2Epochs, { integer: true, min: 1, max: 1000 });
  const p2LearningRate = num(errors, 'p2LearningRate', form.p2LearningRate, { above: 0, max: 1 });
  // Only the settings in use are refused.
  if (!form.augment) for (const k of ['rotationDeg', 'shearDeg', 'zoom'] as const) delete errors[k];
  if (form.headKind === 'gap-dense') for (const k of ['hiddenUnits', 'dropout'] as const) delete errors[k];
  if (!form.earlyStopping) for (const k of ['esPatience', 'esMinDelta'] as const) delete errors[k];
  if (!form.reduceLr) for (const k of ['rlFactor', 'rlPatience', 'rlMinLr'] as const) delete errors[k];
  if (!form.phase2) for (const k of ['p2Blocks', 'p2Epochs', 'p2LearningRate'] as const) delete errors[k];
  if (form.phase2 && !errors.p2Blocks) {
    const blocks = BACKBONES[form.backbone].blocks.length;
    if (p2Blocks > blocks) errors.p2Blocks = `${BACKBONES[form.backbone].label} has ${blocks} blocks.`;
  }
  if (form.reduceLr && !errors.rlMinLr && !errors.learningRate && rlMinLr >= learningRate)
    errors.rlMinLr = 'Must be below the learning rate.';
  const noCache = errors.imageSize ? null : missingCache(form.imageSize, environment.cacheSizes);
  if (noCache) errors.imageSize = noCache;
  const badBackend = unsuitableBackend(form.backend, form.phase2, environment.backends);
  if (badBackend) errors.backend = badBackend;
  if (Object.keys(errors).length > 0) return { config: null, errors };
  const config: Partial<RunConfig> = {
    backbone: form.backbone,
    imageSize: form.imageSize,
    inputSize: form.imageSize,
    head: {
      kind: form.headKind,
      classes: DX.length,
      hiddenUnits: form.headKind === 'gap-dense' ? 128 : hiddenUnits,
      dropout: form.headKind === 'gap-dense' ? 0.2 : dropout,
    },
    split: { seed, ratios: D.split.ratios, grouped: form.grouped },
    // One seed for the whole run: the split, the head's initial weights, shuffles, augmentation, dropout masks.
    seed,
    tta: form.tta,
    classWeights: form.classWeights,
    augment: form.augment
      ? {
          ...(D.augment ?? {}),
          rotationDeg,
          shearDeg,
          zoom,
          widthShift: 0,
          heightShift: 0,
          horizontalFlip: form.horizontalFlip,
          verticalFlip: form.verticalFlip,
          fillMode: 'nearest',
          interpolation: 'bilinear',
        }
      : null,
    epochs,
    batchSize,
    learningRate,
    earlyStopping: form.earlyStopping
      ? {
          monitor: form.esMonitor,
          patience: esPatience,
          minDelta: esMinDelta,
          restoreBestWeights: form.esRestoreBest,
        }
      : null,
    reduceLr: form.reduceLr
      ? { monitor: form.rlMonitor, factor: rlFactor, patience: rlPatience, minLr: rlMinLr }
      : null,
    phase2: form.phase2 ? { blocks: p2Blocks, epochs: p2Epochs, learningRate: p2LearningRate } : null,
    backend: form.backend,
    metadata: form.metadata ? { fusion: form.fusion, units: DEFAULT_METADATA_UNITS } : null,
  };
  try {
    runConfig(config);
  } catch (error) {
    return { config: null, errors: { backend: error instanceof Error ? error.message : String(error) } };
  }
  return { config, errors: {} };
}

export function weightsSource(form: TrainForm, files: readonly File[]): WeightsSource {
  switch (form.weightsKind) {
    case 'official':
      return { kind: 'tfjs-url', url: servedUrl(servedModelPath(form.backbone)) };
    case 'tfjs-files':
      return { kind: 'tfjs-files', files: [...files] };
    case 'keras-h5':
      return { kind: 'keras-h5', file: files.find((f) => /\.h5$/i.test(f.name))! };
    case 'stored':
      return { kind: 'stored' };
    case 'none':
      return { kind: 'none' };
  }
}

/** The weights source in a few words, for run names. */
export const WEIGHTS_WORDS: Record<WeightsKind, string> = {
  official: 'served weights',
  stored: 'stored weights',
  'tfjs-files': 'weights from files',
  'keras-h5': 'weights from .h5',
  none: 'random init',
};

export interface BatchPoint {
  step: number;
  phase: 1 | 2;
  epoch: number;
  loss: number;
  smoothed: number;
}

/** Exponential moving average weight of the newest batch (TensorBoard-style smoothing). */
export const SMOOTHING = 0.9;

/** The live batch chart and status are redrawn at most this often (ms). */
export const DRAW_INTERVAL_MS = 250;

export { BACKBONES, BACKBONE_IDS, HEAD_KINDS, MONITORS, IMAGE_SIZES };

function createTraining() {
  let client: TrainClient | null = null;
  const storage = formStorage();
  // The last settings come back after a reload; a weights source that is gone settles to the best one left.
  const restored = restoreForm(readStoredForm(storage), defaultForm());
  const form = $state<TrainForm>(restored.form);
  if (restored.weightsKind) form.weightsKind = restored.weightsKind;
  /** The user picked a weights source (or it came back from the last visit): later finds no longer move it. */
  let weightsChosen = $state(restored.weightsKind !== null);
  $effect.root(() => {
    // A source the form settled on by itself is not kept: next visit settles again on what is best then.
    $effect(() => writeStoredForm(storage, $state.snapshot(form), weightsChosen));
  });
  let weightsFiles = $state.raw<File[]>([]);
  let submitted = $state(false);
  let state = $state<TrainState>('idle');
  let error = $state<string | null>(null);
  let warnings = $state.raw<string[]>([]);
  let prepared = $state.raw<PreparedLog | null>(null);
  let backend = $state.raw<BackendLog | null>(null);
  let featureWorkers = $state.raw<FeatureWorkersLog | null>(null);
  let memory = $state.raw<MemoryUse | null>(null);
  let storedWeights = $state.raw<StoredWeightsInfo[]>([]);
  /** Per backbone: does this deployment serve its weights (null while the check runs)? */
  const served = $state<Record<string, boolean | null>>({});
  let cacheSizes = $state.raw<ImageSize[] | null>(null);
  let backendSupport = $state.raw<TrainEnvironment['backends']>(null);
  let peakMemoryBytes = $state(0);
  let batches = $state.raw<BatchPoint[]>([]);
  let epochs = $state.raw<EpochLog[]>([]);
  let logs = $state.raw<RunLog[]>([]);
  let test = $state.raw<TestLog | null>(null);
  let summary = $state.raw<RunSummary | null>(null);
  let run = $state.raw<RunRecord | null>(null);
  let lastBatch = $state.raw<BatchLog | null>(null);
  let progressText = $state<string | null>(null);
  /** The one clock for "Elapsed" during a run and its duration at the end; pauses excluded from both. */
  const clock = new ActiveClock();
  let elapsed = $state(0);
  /** Pause was pressed and the loop has not stopped yet (it does at the next batch). */
  let pausing = $state(false);
  let finishing = $state(false);
  /** The settings of the run on show (a resumed run's come from its checkpoint, not the form). */
  let activeConfig = $state.raw<Partial<RunConfig> | null>(null);
  let interrupted = $state.raw<ResumeOffer[]>([]);
  /** Epochs a resumed run had finished before this page took it up (not part of this page's pace). */
  let epochsBefore = 0;

  const availability = $derived<WeightsAvailability>({
    served: served[form.backbone] ?? null,
    stored: storedWeights.some((w) => w.backbone === form.backbone),
  });
  const environment = $derived<TrainEnvironment>({ cacheSizes, backends: backendSupport });
  const validated = $derived(validateForm(form, weightsFiles, availability, environment));
  const blockers = $derived(
    READINESS_FIELDS.flatMap((field) => {
      const text = validated.errors[field];
      return text ? [{ field, text }] : [];
    }),
  );

  /** The base features kept in this browser between runs (files, bytes, how many are kept); null until read. */
  let featureCache = $state<{ files: number; bytes: number; kept: number } | null>(null);

  async function refreshFeatureCache(trainer: TrainClient, action: 'usage' | 'clear' = 'usage') {
    try {
      featureCache = await trainer.featureCache(action);
    } catch (e) {
      if (action === 'clear')
        addWarning(`The feature cache could not be cleared: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Which image caches this device has (the worker reads OPFS); `known` is one the Data page just reported. */
  async function refreshCaches(trainer: TrainClient, known: ImageSize | null) {
    try {
      const sizes = (await trainer.caches()).map((c) => c.size);
      cacheSizes = known !== null && !sizes.includes(known) ? [...sizes, known] : sizes;
    } catch {
      cacheSizes = known === null ? null : [known];
    }
  }

  /** Which backends can do each kind of work here (the worker's probe checks their kernels). */
  async function probeBackends(trainer: TrainClient) {
    if (backendSupport) return;
    try {
      backendSupport = (await trainer.probe()).unavailable;
    } catch {
      backendSupport = null;
    }
  }

  async function refreshStoredWeights(trainer: TrainClient) {
    try {
      storedWeights = await trainer.storedWeights();
    } catch {
      storedWeights = [];
    }
  }

  async function checkServed(backbone: BackboneId): Promise<void> {
    if (typeof served[backbone] === 'boolean') return;
    served[backbone] = null;
    try {
      served[backbone] = await isModelServed(servedUrl(servedModelPath(backbone)));
    } catch {
      served[backbone] = false;
    }
  }

  /** Moves the form to the best source that exists, unless the user chose one that still does. */
  function settleWeightsKind() {
    const kind = form.weightsKind;
    const unavailable =
      (kind === 'official' && availability.served === false) || (kind === 'stored' && !availability.stored);
    if (!weightsChosen || unavailable) form.weightsKind = defaultWeightsKind(availability);
  }

  /** Finds which weights are stored and served for the form's backbone, then settles the default source. */
  async function loadWeightSources(trainer: TrainClient) {
    await Promise.all([refreshStoredWeights(trainer), checkServed(form.backbone)]);
    settleWeightsKind();
  }

  function ensureClient(): TrainClient {
    if (client && !client.crashed) return client;
    client = new TrainClient();
    client.subscribe((event) => {
      if (event.type === 'state') state = event.state;
      else if (event.type === 'error') error = event.error.message;
      else if (event.type === 'memory') {
        memory = event.memory;
        peakMemoryBytes = Math.max(peakMemoryBytes, event.memory.numBytes);
      } else if (event.type === 'log') onLog(event.log);
    });
    return client;
  }

  /**
   * Batches not shown yet. Head epochs post hundreds of batches a second; redrawing the page for each one left it
   * seconds behind the worker (a Pause then met a run epochs ahead of what the page showed), so batches are shown
   * at most every DRAW_INTERVAL_MS, and at once before any other log.
   */
  let pendingPoints: BatchPoint[] = [];
  let pendingBatch: BatchLog | null = null;
  let flushTimer: ReturnType<typeof setTimeout> | null = null;

  function flushBatches() {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    if (pendingPoints.length) batches = [...batches, ...pendingPoints];
    pendingPoints = [];
    if (pendingBatch) lastBatch = pendingBatch;
    pendingBatch = null;
  }

  function onLog(log: RunLog) {
    if (log.type !== 'batch') flushBatches();
    logs = [...logs.slice(-199), log];
    switch (log.type) {
      case 'prepared':
        prepared = log;
        // With metadata fusion the run keeps the encoding fitted on its train split: Predict encodes with it.
        if (run && log.metadata) {
          const model = run.config.model;
          run = {
            ...run,
            config: {
              ...run.config,
              model: {
                ...model,
                metadata: log.metadata.encoding,
                head: { ...model.head, metadata: log.metadata.fusion },
              },
            },
          };
        }
        break;
      case 'backend':
      case 'recovered':
        if (log.type === 'backend') backend = log;
        else if (backend)
          backend = { ...backend, backend: log.backend, reason: `recovered on ${log.backend}` };
        break;
      case 'features':
        progressText = featuresProgress(log);
        break;
      case 'feature-workers':
        featureWorkers = log;
        break;
      case 'batch': {
        if (progressText !== null) progressText = null;
        const prev = pendingPoints.at(-1) ?? batches.at(-1);
        const smoothed = prev ? SMOOTHING * prev.smoothed + (1 - SMOOTHING) * log.loss : log.loss;
        pendingPoints.push({
          step: batches.length + pendingPoints.length + 1,
          phase: log.phase,
          epoch: log.epoch,
          loss: log.loss,
          smoothed: Number.isFinite(smoothed) ? smoothed : log.loss,
        });
        pendingBatch = log;
        flushTimer ??= setTimeout(flushBatches, DRAW_INTERVAL_MS);
        break;
      }
      case 'epoch':
        epochs = [...epochs, log];
        break;
      case 'paused':
        clock.pause();
        pausing = false;
        elapsed = clock.seconds;
        break;
      case 'resumed':
        clock.resume();
        break;
      case 'test':
        test = log;
        break;
    }
    if (run && log.type !== 'prepared' && log.type !== 'test') {
      const next = applyLog(run, log);
      if (next !== run) {
        run = next;
        if (log.type === 'epoch') void lab.save(next).catch((e: unknown) => addWarning(String(e)));
      }
    }
  }

  function addWarning(text: string) {
    warnings = [...warnings, text];
  }

  let timer: ReturnType<typeof setInterval> | null = null;

  /** Starts a run with the form's settings; `name` names it in the Runs table (lessons name their experiments). */
  async function start(options: { name?: string } = {}) {
    submitted = true;
    if (!validated.config) return;
    if (isRunning()) return;
    // Possible duplicates the user keeps together go to one split (src/lib/split/split.ts, `together`).
    const together = duplicates.keptPairs();
    const base = validated.config;
    const split = together.length > 0 && base.split ? { ...base.split, together } : base.split;
    // The WebGPU weight-gradient switch is a browser setting, kept with the run's config.
    const config = { ...base, split, webgpuWeightGradients: storedWebGPUWeightGradients(storage) };
    const trainer = ensureClient();
    const endClock = beginLive(config, []);
    const weights = weightsSource(form, weightsFiles);
    const spec = BACKBONES[form.backbone];
    const training: JsonObject = JSON.parse(
      JSON.stringify({
        ...config,
        weights:
          weights.kind === 'tfjs-url'
            ? { kind: weights.kind, url: weights.url }
            : weights.kind === 'tfjs-files'
              ? { kind: weights.kind, files: weights.files.map((f) => f.name) }
              : weights.kind === 'keras-h5'
                ? { kind: weights.kind, file: weights.file.name }
                : { kind: 'none' },
      }),
    ) as JsonObject;
    const created = new Date();
    let record: RunRecord;
    try {
      record = createRun({
        // A lesson names its experiment; the time tells repeated runs of it apart.
        name: options.name
          ? distinctName(
              `${options.name} · ${runTimestamp(created)}`,
              lab.runs.map((r) => r.name),
            )
          : runName(
              {
                model: spec.label,
                inputSize: config.inputSize ?? form.imageSize,
                epochs: config.epochs ?? D.epochs,
                phase2Epochs: config.phase2?.epochs ?? null,
                weights: WEIGHTS_WORDS[form.weightsKind],
                classWeights: config.classWeights ?? D.classWeights,
                augment: config.augment != null,
                grouped: config.split?.grouped ?? true,
                created,
              },
              lab.runs.map((r) => r.name),
            ),
        created,
        config: {
          model: modelConfigFor(form.backbone, config.inputSize ?? form.imageSize, config.head!, DX),
          training,
        },
      });
    } catch (e) {
      error = `The run could not be set up: ${e instanceof Error ? e.message : String(e)}`;
      endClock();
      progressText = null;
      return;
    }
    // The record is stored once an epoch has finished (onLog): a run that never trained is no run to keep.
    await follow(trainer, record, config, weights, endClock, () => trainer.start(config, weights, record));
  }

  function isRunning(): boolean {
    return state === 'training' || state === 'preparing' || state === 'paused' || state === 'stopping';
  }

  /** Clears the live view for a new run (or a resumed one, whose finished epochs are shown at once). */
  function beginLive(config: Partial<RunConfig>, history: EpochLog[]): () => void {
    error = null;
    warnings = [];
    prepared = null;
    backend = null;
    featureWorkers = null;
    flushBatches();
    batches = [];
    epochs = history;
    logs = [];
    test = null;
    summary = null;
    lastBatch = null;
    activeConfig = config;
    epochsBefore = history.length;
    progressText = 'Preparing the split and the model…';
    pausing = false;
    clock.start();
    elapsed = 0;
    timer = setInterval(() => {
      elapsed = clock.seconds;
    }, 1000);
    return () => {
      flushBatches();
      clock.stop();
      elapsed = clock.seconds;
      pausing = false;
      if (timer) clearInterval(timer);
      timer = null;
    };
  }

  /**
   * Follows a run the worker trains (`launch`) to its end, then keeps its model and results. A failure keeps the
   * record as failed, with the reason; a crashed worker is replaced, and the run's last checkpoint is offered again.
   */
  async function follow(
    trainer: TrainClient,
    record: RunRecord,
    config: Partial<RunConfig>,
    weights: WeightsSource,
    endClock: () => void,
    launch: () => Promise<RunSummary>,
  ) {
    run = record;
    let result: RunSummary | null = null;
    try {
      result = await launch();
      summary = result;
      void refreshStoredWeights(trainer);
      void refreshFeatureCache(trainer);
    } catch (e) {
      error = e instanceof TrainFailure ? e.error.message : String(e);
      if (trainer.crashed) client = null;
      if (run && run.history.length > 0) {
        run = failRun(run, error);
        void lab.save(run).catch(() => undefined);
      } else {
        run = null;
      }
      // Whatever its checkpoint kept can be resumed (a crash, a full storage): offered again at once.
      void checkInterrupted();
    } finally {
      endClock();
      progressText = null;
    }
    if (result && run && run.history.length === 0) {
      addWarning('The run was stopped before its first epoch ended, so nothing was kept.');
      run = null;
    }
    if (result && run) {
      finishing = true;
      try {
        const done = await lab.finishRun({
          run,
          training: config,
          weights,
          checkpoint: result.checkpoint,
          test: result.test,
        });
        run = done.run;
        warnings = [...warnings, ...done.warnings];
        lab.select(done.run.id);
        // Stored: its resume point has done its job. A failure here is harmless, the next visit drops it.
        void trainer.discard(result.runId).catch(() => undefined);
      } catch (e) {
        addWarning(`The run's results could not be kept: ${String(e instanceof Error ? e.message : e)}`);
      } finally {
        finishing = false;
      }
    }
  }

  /** A stored run that training finished and the page kept (not one still running or failed, which can resume). */
  function isFinished(stored: RunRecord | undefined): boolean {
    return stored !== undefined && stored.status !== 'running' && stored.status !== 'failed';
  }

  /** Runs interrupted earlier (the page closed, the worker crashed, storage full) that can be resumed. */
  async function checkInterrupted(): Promise<void> {
    try {
      const trainer = ensureClient();
      const offers = (await trainer.resumable()).filter(
        (o) => o.record.id !== run?.id || !(isRunning() || finishing),
      );
      // A run ends before the page stores it, and its resume point is only deleted after that: one whose run is
      // stored as finished was closed in between, and has nothing more to offer.
      if (offers.length > 0 && !lab.loaded) await lab.refresh();
      const stored = offers.filter((o) => isFinished(lab.runs.find((r) => r.id === o.record.id)));
      for (const o of stored) void trainer.discard(o.runId).catch(() => undefined);
      interrupted = offers.filter((o) => !stored.includes(o));
    } catch {
      interrupted = [];
    }
  }

  /** Resumes an interrupted run from its last checkpoint; its finished epochs are shown at once. */
  async function resumeRun(runId: string) {
    const offer = interrupted.find((o) => o.runId === runId);
    if (!offer || isRunning()) return;
    interrupted = interrupted.filter((o) => o.runId !== runId);
    const trainer = ensureClient();
    if (!lab.loaded) await lab.refresh();
    // The stored record keeps a name given on the Runs page; the checkpoint says which epochs it holds.
    const base = lab.runs.find((r) => r.id === offer.record.id) ?? offer.record;
    const record: RunRecord = {
      ...base,
      status: 'running',
      error: null,
      history: offer.history,
      events: offer.events,
      metrics: null,
      predictions: null,
    };
    const endClock = beginLive(offer.config, offer.history);
    void lab.save(record).catch((e: unknown) => addWarning(String(e)));
    await follow(trainer, record, offer.config, offer.weights, endClock, () => trainer.continueRun(runId));
  }

  /** Lets an interrupted run go: its checkpoint is deleted, and a stored record says why it stopped. */
  async function discardRun(runId: string) {
    const offer = interrupted.find((o) => o.runId === runId);
    if (!offer) return;
    try {
      await ensureClient().discard(runId);
    } catch (e) {
      error = e instanceof TrainFailure ? e.error.message : String(e);
      return;
    }
    interrupted = interrupted.filter((o) => o.runId !== runId);
    if (!lab.loaded) await lab.refresh();
    const stored = lab.runs.find((r) => r.id === offer.record.id);
    if (stored && stored.status === 'running') {
      const where = `after epoch ${offer.epoch}${offer.phase === 2 ? ' of phase 2' : ''}`;
      await lab
        .save(failRun(stored, `Interrupted ${where}; not resumed (discarded).`))
        .catch((e: unknown) => addWarning(String(e)));
    }
  }

  const act = (what: (c: TrainClient) => Promise<unknown>) => async () => {
    if (!client) return;
    try {
      await what(client);
    } catch (e) {
      error = e instanceof TrainFailure ? e.error.message : String(e);
    }
  };
  const pause = act((c) => {
    // Said at once: the loop stops at the next batch, and its 'paused' log ends this.
    pausing = true;
    return c.pause();
  });
  const resume = act((c) => {
    pausing = false;
    return c.resume();
  });

  return {
    form,
    get weightsFiles() {
      return weightsFiles;
    },
    setWeightsFiles(files: File[]) {
      weightsFiles = files;
    },
    get errors() {
      return submitted ? validated.errors : {};
    },
    /** Errors shown as the user types, once a field was touched; all of them after a Start attempt. */
    get allErrors() {
      return validated.errors;
    },
    get valid() {
      return validated.config !== null;
    },
    /** What is missing on this device for the form's run (cache, weights, a capable backend), shown by Start. */
    get blockers() {
      return blockers;
    },
    /** The base features kept in this browser between runs; null until read. */
    get featureCache() {
      return featureCache;
    },
    refreshFeatureCache() {
      return refreshFeatureCache(ensureClient());
    },
    clearFeatureCache() {
      return refreshFeatureCache(ensureClient(), 'clear');
    },
    /** Sizes of the image caches on this device (null until checked). */
    get cacheSizes() {
      return cacheSizes;
    },
    /** Checks the image caches on this device again; `known` is the size the Data page reports, if any. */
    refreshCaches(known: ImageSize | null = null) {
      return refreshCaches(ensureClient(), known);
    },
    get config() {
      return validated.config;
    },
    get state() {
      return state;
    },
    get running() {
      return state === 'preparing' || state === 'training' || state === 'paused' || state === 'stopping';
    },
    get finishing() {
      return finishing;
    },
    get error() {
      return error;
    },
    get warnings() {
      return warnings;
    },
    get prepared() {
      return prepared;
    },
    /** The training worker's client (the duplicate search runs there too). */
    trainer(): TrainClient {
      return ensureClient();
    },
    /** The weights source the form describes (the duplicate search uses the same features). */
    weightsSource(): WeightsSource {
      return weightsSource(form, weightsFiles);
    },
    get backend() {
      return backend;
    },
    /** Who computes the base's features (feature workers on the CPU path), once the run says. */
    get featureWorkers(): string | null {
      return featureWorkers ? featureWorkersText(featureWorkers) : null;
    },
    /** The worker's latest tf.memory() figures, and the most bytes seen in this session, for the gauge. */
    /** Pretrained weights this browser kept after their first load, one set per backbone. */
    get storedWeights() {
      return storedWeights;
    },
    /** Which sources have weights for the form's backbone: served with the app, stored in this browser. */
    get weightsAvailability() {
      return availability;
    },
    /**
     * Checks the stored and served weights and picks the best source, and which backends can fine-tune here (the
     * Train page calls it when it opens).
     */
    loadWeightSources() {
      const trainer = ensureClient();
      void probeBackends(trainer);
      return loadWeightSources(trainer);
    },
    /** The backbone changed: its sources are checked again, and the source moves if it has none there. */
    backboneChanged() {
      return loadWeightSources(ensureClient());
    },
    /** The user picked a source themselves. */
    chooseWeightsKind() {
      weightsChosen = true;
    },
    get memory() {
      return memory;
    },
    get peakMemoryBytes() {
      return peakMemoryBytes;
    },
    get batches() {
      return batches;
    },
    get epochs() {
      return epochs;
    },
    get logs() {
      return logs;
    },
    get test() {
      return test;
    },
    get summary() {
      return summary;
    },
    get run() {
      return run;
    },
    get lastBatch() {
      return lastBatch;
    },
    get progressText() {
      return progressText;
    },
    /** Seconds of the current (or last) run so far, pauses excluded; at the end, its duration. */
    get elapsed() {
      return elapsed;
    },
    /** Pause was pressed; the run pauses at the next batch. */
    get pausing() {
      return pausing;
    },
    /**
     * Seconds left: the batches still to run (every planned epoch of both phases, at the current batches per
     * epoch) at the mean pace so far, pauses excluded. An early stop ends sooner.
     */
    get eta(): number | null {
      const b = lastBatch;
      const cfg = activeConfig ?? validated.config;
      const done = batches.length;
      if (!b || !cfg || elapsed <= 0 || done === 0) return null;
      const planned = ((cfg.epochs ?? 0) + (cfg.phase2?.epochs ?? 0) - epochsBefore) * b.batches;
      return (elapsed / done) * Math.max(0, planned - done);
    },
    dismissError() {
      error = null;
    },
    /** Interrupted runs that can be resumed from their last checkpoint, newest first. */
    get interrupted() {
      return interrupted;
    },
    checkInterrupted,
    resumeRun,
    discardRun,
    start,
    pause,
    resume,
    stop: act((c) => c.stop()),
    reset() {
      Object.assign(form, defaultForm());
      weightsFiles = [];
      submitted = false;
      weightsChosen = false;
      settleWeightsKind();
    },
    /** Augmented variants of one cached image, as ImageData tiles. */
    async augmentPreview(index: number, seed: number): Promise<ImageData[]> {
      const trainer = ensureClient();
      const f = form;
      const preview = await trainer.augmentPreview({
        imageSize: f.imageSize,
        index,
        count: 7,
        seed,
        augment: {
          rotationDeg: Number(f.rotationDeg),
          shearDeg: Number(f.shearDeg),
          zoom: Number(f.zoom),
          horizontalFlip: f.horizontalFlip,
          verticalFlip: f.verticalFlip,
        },
      });
      return preview.tiles.map((t) => new ImageData(new Uint8ClampedArray(t), preview.size, preview.size));
    },
  };
}

export const training = createTraining();
