/// <reference lib="webworker" />
/**
 * The training worker: runs src/lib/train's session off the UI thread. Protocol: src/worker/train-protocol.ts;
 * the UI talks to it through TrainClient (train-client.ts). This file only wires browser things to the core:
 * the WebGPU adapter and device (and its loss), WebGL/WASM probes, WASM file URLs, the OPFS image cache, OPFS for
 * feature caches and checkpoints, and dropped weight files. All training logic lives in src/lib/train.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { describeWasmBackend, installWasmBackend } from './wasm-threads.ts';
import { FeaturePool, planFeatureWorkers } from '../lib/train/feature-pool.ts';
import { startFeatureWorker } from './feature-client.ts';
import { ClassWeightError } from '../lib/split/classWeights.ts';
import { SplitError } from '../lib/split/split.ts';
import { augmentOptions, augmentPreview } from '../lib/model/augment.ts';
import { WeightsMismatchError } from '../lib/model/weights/assign.ts';
import { getBackboneInfo } from '../lib/model/backbones/catalog.ts';
import { createRandom } from '../lib/random.ts';
import {
  BackendManager,
  BackendUnavailableError,
  BACKEND_NAMES,
  chooseBackend,
  describeAdapter,
  describeDevice,
  DeviceWatch,
  isSoftwareRenderer,
  registerWebGPU,
  unavailableBecause,
  type BackendName,
  type BackendProbe,
  type WebGPUSetup,
  type Workload,
} from '../lib/train/backend.ts';
import { OpfsCheckpointStore } from '../lib/train/checkpoint.ts';
import { runConfig } from '../lib/train/config.ts';
import { TrainControl } from '../lib/train/control.ts';
import type { ImageDataset } from '../lib/train/dataset.ts';
import {
  extractFeatureBatches,
  FEATURE_FILES_KEPT,
  featureKey,
  OpfsFeatureStore,
} from '../lib/train/featureCache.ts';
import { findNearDuplicates } from '../lib/data/near-duplicates.ts';
import { headConfig } from '../lib/model/head-config.ts';
import { TrainConfigError } from '../lib/train/loop.ts';
import { createNetwork, disposeNetwork } from '../lib/train/network.ts';
import { runSession } from '../lib/train/session.ts';
import { fingerprintWeights, type ResumePoint } from '../lib/train/resume.ts';
import { isQuotaExceeded, StorageFullError } from '../lib/storage-full.ts';
import type { RunRecord } from '../lib/runs/record.ts';
import type { RunConfig } from '../lib/train/config.ts';
import { installConvGradients } from '../lib/train/conv-gradients.ts';
import { useWebGPUWeightGradients } from '../lib/webgpu/weight-gradients.ts';
import { CacheStorageError, listCaches, openImageCache, type ImageCache } from './cache/opfs-cache.ts';
import type {
  ProbeReport,
  RunSummary,
  TrainCommand,
  TrainError,
  TrainMessage,
  TrainReplies,
  TrainState,
  MemoryUse,
  WeightsSource,
} from './train-protocol.ts';

import { readPretrained, WeightsError } from './pretrained.ts';
import { listStoredWeights, storeWeights } from './weights-store.ts';
import {
  discardResumable,
  listResumable,
  lockName,
  OpfsResumeStore,
  TRAIN_DIRECTORY,
  type ResumableWeights,
} from './resume-store.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

// Multi-threaded where the page is cross-origin isolated, else single-threaded SIMD (wasm-threads.ts).
installWasmBackend();
// WASM has no conv gradient kernels of its own and the CPU's are slow: ours let both fine-tune conv layers, and the
// backend choice (which checks kernels with tf.getKernel) then prefers WASM over SwiftShader's WebGL for phase 2.
installConvGradients('wasm');
installConvGradients('cpu');

function memoryUse(): MemoryUse {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
  return {
    numBytes: m.numBytes,
    numTensors: m.numTensors,
    ...(m.numBytesInGPU === undefined ? {} : { numBytesInGPU: m.numBytesInGPU }),
  };
}

function post(message: TrainMessage): void {
  scope.postMessage(message);
}

let state: TrainState = 'idle';
function setState(next: TrainState): void {
  state = next;
  post({ type: 'state', state });
}

function toTrainError(error: unknown): TrainError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof TrainConfigError || error instanceof SplitError || error instanceof ClassWeightError) {
    return { code: 'config', message };
  }
  if (error instanceof CacheStorageError) return { code: 'cache', message };
  if (error instanceof WeightsMismatchError) return { code: 'weights', message };
  if (error instanceof BackendUnavailableError) return { code: 'backend', message };
  if (error instanceof StorageFullError) return { code: 'storage', message };
  if (isQuotaExceeded(error)) {
    return { code: 'storage', message: `Browser storage is full: ${message}` };
  }
  return { code: 'internal', message: `Unexpected problem: ${message}` };
}

// --- Backends ----------------------------------------------------------------------------------------------------

let adapter: GPUAdapter | null = null;
let probed: BackendProbe | null = null;
let webgpu: WebGPUSetup | null = null;
const watch = new DeviceWatch();
watch.onLost(() => {
  // A lost device cannot come back: the next run asks the browser for a new adapter.
  webgpu = null;
  adapter = null;
  probed = null;
});

async function probe(): Promise<BackendProbe> {
  if (probed) return probed;
  let description: BackendProbe['webgpu'] = null;
  if ('gpu' in navigator && navigator.gpu) {
    try {
      adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    } catch {
      adapter = null;
    }
    if (adapter) description = describeAdapter(adapter);
  }
  let webgl: BackendProbe['webgl'] = null;
  try {
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    if (gl) {
      const info = gl.getExtension('WEBGL_debug_renderer_info');
      const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
      webgl = { renderer, software: isSoftwareRenderer(renderer) };
      gl.getExtension('WEBGL_lose_context')?.loseContext();
    }
  } catch {
    webgl = null;
  }
  probed = { webgpu: description, webgl, wasm: typeof WebAssembly === 'object' };
  return probed;
}

async function prepareBackend(backend: string): Promise<void> {
  if (backend !== 'webgpu' || webgpu) return;
  if (!adapter) throw new BackendUnavailableError('no WebGPU adapter');
  watch.reset();
  webgpu = await registerWebGPU(adapter, watch);
}

async function probeReport(): Promise<ProbeReport> {
  const p = await probe();
  const choices = {} as ProbeReport['choices'];
  const unavailable = {} as ProbeReport['unavailable'];
  for (const workload of ['frozen-base', 'fine-tune'] as Workload[]) {
    try {
      choices[workload] = chooseBackend(p, workload);
    } catch (error) {
      choices[workload] = { error: error instanceof Error ? error.message : String(error) };
    }
    unavailable[workload] = Object.fromEntries(
      BACKEND_NAMES.map((b) => [b, unavailableBecause(b, p, workload)]),
    ) as Record<BackendName, string | null>;
  }
  return { probe: p, choices, unavailable };
}

/** The backend line's device: the probe's words, plus what only the running WASM module knows. */
async function describeBackend(backend: BackendName, p: BackendProbe): Promise<string> {
  if (backend !== 'wasm') return describeDevice(backend, p);
  return describeWasmBackend();
}

/**
 * On the CPU path the frozen base's features are shared out among feature workers (src/lib/train/feature-pool.ts);
 * the pool is used only while the backend is WASM, and ends its workers on dispose.
 */
async function featurePool(backbone: RunConfig['backbone'], inputSize: number): Promise<FeaturePool | null> {
  const plan = planFeatureWorkers({
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: self.crossOriginIsolated === true,
    simd: (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true,
    family: getBackboneInfo(backbone).family,
  });
  return plan ? new FeaturePool(plan, startFeatureWorker(backbone, inputSize)) : null;
}

// --- Weights -----------------------------------------------------------------------------------------------------

// --- Storage -----------------------------------------------------------------------------------------------------

async function trainDirectory(name: string): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle(TRAIN_DIRECTORY, { create: true });
  return dir.getDirectoryHandle(name, { create: true });
}

function cacheDataset(cache: ImageCache): ImageDataset {
  return {
    count: cache.count,
    size: cache.size,
    labels: Int32Array.from(cache.index.entries, (e) => e.label),
    readBatch: (indices) => cache.readImages(indices),
  };
}

// --- Runs --------------------------------------------------------------------------------------------------------

let control: TrainControl | null = null;
/** The last batch the run posted, for the pause reply. */
let lastBatch: TrainReplies['pause']['after'] = null;

/** A run to continue: its resume store, the point in force, and what it was started with. */
interface Continuation {
  store: OpfsResumeStore;
  point: ResumePoint;
  runId: string;
  weightsFingerprint: string | null;
}

/** The weights a resumed run reads: a dropped file is gone after a reload, the copy this browser kept is not. */
function resumableWeights(source: WeightsSource, stored: boolean): ResumableWeights | null {
  if (source.kind === 'tfjs-url' || source.kind === 'stored' || source.kind === 'none') return source;
  return stored ? { kind: 'stored' } : null;
}

async function start(
  partialConfig: Partial<RunConfig>,
  weights: WeightsSource,
  record: RunRecord | null,
  continuation: Continuation | null = null,
): Promise<RunSummary> {
  if (control)
    throw Object.assign(new Error('A training run is already going; stop it first.'), { code: 'busy' });
  control = new TrainControl();
  setState('preparing');
  let cache: ImageCache | null = null;
  let pool: FeaturePool | null = null;
  const runId = continuation?.runId ?? `run-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  // The run's lock says "in progress" to every tab; it goes when the run ends or the worker dies.
  let release: () => void = () => undefined;
  const held = await new Promise<boolean>((resolve) => {
    void navigator.locks.request(lockName(runId), { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock === null ? undefined : new Promise<void>((r) => (release = r));
    });
  });
  try {
    if (!held) {
      throw Object.assign(new Error('This run is training in another tab already.'), { code: 'busy' });
    }
    const config = runConfig(partialConfig);
    // Our split-K WebGPU weight gradients, or tfjs's when the run's config asks for the fallback.
    useWebGPUWeightGradients(config.webgpuWeightGradients);
    cache = await openImageCache(config.imageSize);
    const { index } = cache;
    const records = index.entries.map((e) => {
      const record = index.metadata.records[e.row];
      if (!record)
        throw new CacheStorageError(`the cache index has no metadata row ${e.row} for ${e.imageId}`);
      return record;
    });
    // Reading weights makes tensors, and no backend has been chosen yet: the CPU backend always starts, and
    // tfjs moves the data when the chosen backend takes over.
    await tf.setBackend('cpu');
    const pretrained = await readPretrained(weights, config.backbone);
    const fingerprint = pretrained ? fingerprintWeights(pretrained.weights) : null;
    if (continuation && fingerprint !== continuation.weightsFingerprint) {
      throw new WeightsError(
        `The ${config.backbone} weights this run started from are no longer in this browser (${pretrained?.label ?? 'none'} ` +
          'differs from them), so it cannot be resumed exactly: Discard it and start a new run.',
      );
    }
    let stored = false;
    if (pretrained && weights.kind !== 'stored') {
      // Kept for next time; a full or refused storage must not stop the run.
      stored = await storeWeights(config.backbone, pretrained.label, pretrained.weights).then(
        () => true,
        () => false,
      );
    }
    let resumeStore = continuation?.store ?? null;
    const resumeWeights = resumableWeights(weights, stored);
    if (!resumeStore && record && resumeWeights) {
      resumeStore = await OpfsResumeStore.create({
        format: 'lesion-lab-resumable-run',
        version: 1,
        runId,
        record,
        config: partialConfig,
        weights: resumeWeights,
        weightsFingerprint: fingerprint,
        startedAt: new Date().toISOString(),
      });
    }
    const backends = new BackendManager(await probe(), {
      override: config.backend,
      prepare: prepareBackend,
      describe: describeBackend,
    });
    let checkpoint: string | null = null;
    pool = await featurePool(config.backbone, config.inputSize);
    const session = runSession(config, {
      featureExtractor: pool,
      dataset: cacheDataset(cache),
      records,
      pretrained,
      backends,
      control,
      device: watch,
      // Random weights give other features every run: nothing worth keeping on disk.
      featureStore: pretrained ? await featureStore() : undefined,
      checkpointStore: new OpfsCheckpointStore(
        await trainDirectory('checkpoints'),
        `opfs:${TRAIN_DIRECTORY}/checkpoints`,
        () => navigator.storage.estimate(),
      ),
      runId,
      weightsId: pretrained?.id ?? 'random',
      datasetId: `${index.createdAt}|${index.count}`, // also in nearDuplicates' key
      resumeStore: resumeStore ?? undefined,
      resumeFrom: continuation?.point ?? null,
    });
    const from = continuation?.point ?? null;
    if (from) {
      const last = from.events.findLast((e) => e.type === 'checkpoint');
      if (last) checkpoint = last.location;
    }
    setState('training');
    let step = await session.next();
    while (!step.done) {
      const log = step.value;
      if (log.type === 'checkpoint') checkpoint = log.location;
      if (log.type === 'paused') setState('paused');
      if (log.type === 'resumed') setState('training');
      if (log.type === 'batch')
        lastBatch = { phase: log.phase, epoch: log.epoch, batch: log.batch, batches: log.batches };
      post({ type: 'log', log });
      if (log.type === 'batch' || log.type === 'epoch') post({ type: 'memory', memory: memoryUse() });
      step = await session.next();
    }
    const { result, test } = step.value;
    disposeNetwork(result.network);
    // The run ended as it should, but its resume point stays until the page has stored the run (then it sends
    // `discard`): a tab closed in between still finds the run, as an offer, instead of losing it.
    setState('done');
    return {
      runId,
      reason: result.reason,
      epochs: result.phases.map((p) => p.epochs),
      backend: backends.current,
      checkpoint,
      test,
      seconds: result.seconds,
      resumedFrom: from ? { phase: from.phase, epoch: from.epoch } : null,
    };
  } catch (error) {
    setState('failed');
    throw error;
  } finally {
    pool?.dispose();
    cache?.close();
    control = null;
    lastBatch = null;
    // Each new split, size or backbone leaves its features behind: only the newest files are kept.
    await featureStore()
      .then((store) => store.prune())
      .catch(() => undefined);
    release();
  }
}

async function continueRun(runId: string): Promise<RunSummary> {
  const store = await OpfsResumeStore.open(runId);
  const point = await store.load();
  if (!point) throw new TrainConfigError(`The run ${runId} has no checkpoint to resume from.`);
  const run = await store.run();
  return start(run.config, run.weights, run.record, {
    store,
    point,
    runId,
    weightsFingerprint: run.weightsFingerprint,
  });
}

async function featureStore(): Promise<OpfsFeatureStore> {
  return new OpfsFeatureStore(await trainDirectory('features'));
}

async function featureCache(
  command: TrainCommand & { type: 'feature-cache' },
): Promise<TrainReplies['feature-cache']> {
  const store = await featureStore();
  if (command.action === 'clear') {
    if (control) throw new TrainConfigError('the feature cache cannot be cleared while a run uses it');
    await store.prune(0);
  }
  return { ...(await store.usage()), kept: FEATURE_FILES_KEPT };
}

/**
 * Possible hidden duplicates: the pooled features of every cached image (the feature cache's entry for the whole
 * cache, computed once per backbone, weights and size), then the blockwise cosine-similarity search.
 */
async function nearDuplicates(
  command: TrainCommand & { type: 'near-duplicates' },
): Promise<TrainReplies['near-duplicates']> {
  if (control)
    throw Object.assign(new Error('A training run is going; search for duplicates after it.'), {
      code: 'busy',
    });
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const cache = await openImageCache(command.imageSize);
  try {
    const { index } = cache;
    const records = index.entries.map((e) => {
      const record = index.metadata.records[e.row];
      if (!record)
        throw new CacheStorageError(`the cache index has no metadata row ${e.row} for ${e.imageId}`);
      return record;
    });
    await tf.setBackend('cpu');
    const pretrained = await readPretrained(command.weights, command.backbone);
    if (!pretrained) {
      throw Object.assign(
        new Error('Duplicates are found with pretrained features: choose pretrained weights.'),
        {
          code: 'weights',
        },
      );
    }
    const backends = new BackendManager(await probe(), {
      override: 'auto',
      prepare: prepareBackend,
      describe: describeBackend,
    });
    const chosen = await backends.select('frozen-base');
    const pool = await featurePool(command.backbone, command.imageSize);
    const network = createNetwork(
      { backbone: command.backbone, inputSize: command.imageSize, head: headConfig({ kind: 'gap-dense' }) },
      pretrained,
    );
    try {
      const store = new OpfsFeatureStore(await trainDirectory('features'));
      const all = Array.from({ length: cache.count }, (_, i) => i);
      // The training runs' key for the same backbone, weights and size (src/lib/train/session.ts), marked as
      // flip-averaged: these vectors are not the ones training reads.
      const key = featureKey(
        `${command.backbone}|${pretrained.id}|${command.imageSize}|${index.createdAt}|${index.count}|flips`,
        true,
        command.imageSize,
        all,
      );
      const dim = (network.base.outputs[0]!.shape as number[]).at(-1)!;
      let features = await store.get(key);
      const cachedFeatures = features !== null && features.length === cache.count * dim;
      if (!cachedFeatures) {
        const dataset = cacheDataset(cache);
        const extract =
          pool && pool.workersFor(chosen.backend) ? pool.extract.bind(pool) : extractFeatureBatches;
        const extraction = extract(network.base, (p) => dataset.readBatch(p), cache.count, {
          preprocess: (x) => network.preprocess(x),
          inputSize: command.imageSize,
          imageSize: command.imageSize,
          pool: true,
          flipInvariant: true,
        });
        let step = await extraction.next();
        while (!step.done) {
          post({ type: 'duplicates-progress', stage: 'features', ...step.value, seconds: seconds() });
          step = await extraction.next();
        }
        features = step.value.values;
        await store.put(key, features).catch(() => undefined);
      }
      const search = findNearDuplicates(
        {
          features: features!,
          dim,
          imageIds: records.map((r) => r.imageId),
          lesionIds: records.map((r) => r.lesionId),
          dx: records.map((r) => r.dx),
        },
        { top: command.top },
      );
      let step = await search.next();
      while (!step.done) {
        post({ type: 'duplicates-progress', stage: 'search', ...step.value, seconds: seconds() });
        step = await search.next();
      }
      const result = step.value;
      return {
        pairs: result.pairs,
        images: result.images,
        selfCheck: result.self_check,
        cachedFeatures,
        seconds: seconds(),
      };
    } finally {
      pool?.dispose();
      disposeNetwork(network);
    }
  } finally {
    cache.close();
  }
}

async function preview(
  command: TrainCommand & { type: 'augment-preview' },
): Promise<TrainReplies['augment-preview']> {
  const cache = await openImageCache(command.imageSize);
  try {
    if (!Number.isInteger(command.index) || command.index < 0 || command.index >= cache.count) {
      throw new TrainConfigError(`image ${command.index} is outside the cache (0..${cache.count - 1})`);
    }
    const rgb = await cache.readImages([command.index]);
    // Any backend will do for a handful of images; outside a run, the CPU one avoids starting a GPU device.
    if (!control && tf.engine().backendName === null) await tf.setBackend('cpu');
    return await augmentPreview(
      rgb,
      cache.size,
      command.count,
      createRandom(command.seed),
      augmentOptions(command.augment),
    );
  } finally {
    cache.close();
  }
}

async function handle(command: TrainCommand): Promise<TrainReplies[TrainCommand['type']]> {
  switch (command.type) {
    case 'probe':
      return probeReport();
    case 'start':
      return start(command.config, command.weights, command.run ?? null);
    case 'continue':
      return continueRun(command.runId);
    case 'resumable':
      return listResumable();
    case 'discard':
      return { discarded: await discardResumable(command.runId) };
    case 'simulate-crash':
      // Thrown outside any promise chain, so it is uncaught and reaches the page as the worker's error event.
      setTimeout(() => {
        throw new Error('crash simulated on request');
      });
      return { thrown: true };
    case 'pause':
      // The state turns 'paused' when the loop has stopped at the next batch (its 'paused' log), not before.
      control?.pause();
      return { state, after: control ? lastBatch : null };
    case 'resume':
      control?.resume();
      if (control) setState('training');
      return { state };
    case 'stop':
      if (control) {
        control.stop();
        setState('stopping');
      }
      return { state };
    case 'simulate-device-loss':
      if (webgpu && tf.engine().backendName === 'webgpu') {
        webgpu.device.destroy();
        return { simulated: 'device-destroyed' };
      }
      watch.lose({ reason: 'simulated', message: 'device loss simulated on request' });
      return { simulated: 'signalled' };
    case 'augment-preview':
      return preview(command);
    case 'stored-weights':
      return listStoredWeights();
    case 'feature-cache':
      return featureCache(command);
    case 'near-duplicates':
      return nearDuplicates(command);
    case 'caches':
      return (await listCaches()).map(({ index }) => ({
        size: index.size,
        count: index.count,
        createdAt: index.createdAt,
      }));
  }
}

scope.onmessage = (event: MessageEvent<TrainCommand>) => {
  const command = event.data;
  void handle(command).then(
    (value) => post({ type: 'reply', id: command.id, ok: true, value }),
    (error: unknown) => {
      const detail: TrainError =
        (error as { code?: string }).code === 'busy'
          ? { code: 'busy', message: (error as Error).message }
          : error instanceof WeightsError
            ? { code: 'weights', message: error.message }
            : toTrainError(error);
      post({ type: 'error', error: detail });
      post({ type: 'reply', id: command.id, ok: false, error: detail });
    },
  );
};
