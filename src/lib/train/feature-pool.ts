/**
 * Frozen-base features on several WASM instances at once. MobileNetV2 0.35's convolutions are too small for
 * XNNPACK's thread pool (2 threads extract 1.11× the features of 1, measured), so on the CPU path a second core
 * mostly idles while the base runs; here the batches of a split are shared out among K instances instead (each a
 * feature worker with its own WASM module and a copy of the base's weights), and their features are put back in
 * order. Each batch is the batch the in-process path would run (same images, same size) and goes through the same
 * `featuresOfBatch`, so the features are the same.
 *
 * The instances come from a `startInstance` function (the training worker starts feature workers, src/worker/
 * feature-client.ts); this file is plain TypeScript, so the scheduling runs and is tested in Node too. If an instance
 * fails to start or fails on a batch, the pool names it (`fallback`), ends every instance and computes the rest of
 * the split in-process; later splits of the run stay in-process.
 */
import type * as tf from '@tensorflow/tfjs';
import { readWeights, type WeightValue } from './checkpoint.ts';
import {
  batchPositions,
  extractFeatureBatches,
  extractionBatchSize,
  featuresOfBatch,
  featureShape,
  type ExtractOptions,
  type Features,
} from './featureCache.ts';
import type { BackendName } from './logs.ts';
import type { BackboneInfo } from '../model/backbones/catalog.ts';
import { MAX_WASM_THREADS } from './wasm-threads.ts';

/** How many instances extract features, and the WASM threads of each. */
export interface FeatureWorkers {
  workers: number;
  threads: number;
}

/** What `obtainFeatures` in the loop asks of an extractor (the default is `extractFeatureBatches` in-process). */
export interface FeatureExtractor {
  /** The instances extraction would use on `backend`; null: the in-process path. */
  workersFor(backend: BackendName | null): FeatureWorkers | null;
  /** As `extractFeatureBatches`: the same batches, the same order, the same values. */
  extract(
    base: tf.LayersModel,
    read: (positions: readonly number[]) => Promise<Uint8Array | Float32Array>,
    count: number,
    options: ExtractOptions,
  ): AsyncGenerator<{ done: number; total: number }, Features>;
  /** Why extraction went back to the in-process path (what failed, and where); null while it has not. */
  readonly fallback: string | null;
}

/** The batch as an instance gets it: `preprocess` stays behind (the instance applies its backbone's own). */
export type BatchSettings = Omit<ExtractOptions, 'preprocess' | 'batchSize'>;

/** One extraction instance with its own copy of the base: the features of one batch at a time. */
export interface FeatureInstance {
  /** Names it in errors, e.g. "feature worker 2 of 2". */
  readonly name: string;
  /** `pixels` may be transferred (detached) by the call. */
  features(pixels: Uint8Array | Float32Array, n: number, settings: BatchSettings): Promise<Float32Array>;
  /** Ends it at once (work in flight is dropped). */
  dispose(): void;
}

/** Starts instance `index` (0-based) of `count` with the base's `weights` (all of them, in `base.weights` order). */
export type StartFeatureInstance = (
  setup: { weights: WeightValue[]; threads: number },
  index: number,
  count: number,
) => Promise<FeatureInstance>;

/** Past 4 instances the copies of the base cost more memory than the cores give back on a small backbone. */
export const MAX_FEATURE_WORKERS = 4;

export interface FeatureWorkersEnvironment {
  /** `navigator.hardwareConcurrency`; undefined where the browser does not tell. */
  hardwareConcurrency: number | undefined;
  /** Threads need SharedArrayBuffer, which exists only on a cross-origin isolated page. */
  crossOriginIsolated: boolean;
  /** tfjs ships its threaded WASM build with SIMD only. */
  simd: boolean;
  /** The backbone's family: only the MobileNets, whose memory per instance was measured, get instances. */
  family: BackboneInfo['family'];
}

/**
 * Each instance holds its own copy of the base and a batch's activations (peak renderer memory +550–630 MB with
 * two for MobileNetV2 0.35 at 224 px, batch 32, in the e2e bench). VGG16's first block alone makes a batch's activations ≈ 0.4 GB per
 * layer output, so for it and ResNet50V2, unmeasured, several instances could take the tab's memory: they stay in
 * the training worker.
 */
const POOLED_FAMILIES: ReadonlySet<BackboneInfo['family']> = new Set(['mobilenet_v2', 'mobilenet_v1']);

/**
 * One instance per core up to MAX_FEATURE_WORKERS, and each gets the cores left over as threads (only where
 * threads exist), so that instances × threads ≈ cores; null on a single core, where there is nothing to share, and
 * for the heavy backbones (see POOLED_FAMILIES).
 * Instances need no isolation: they talk by messages, so a page without COOP/COEP gets them too.
 */
export function planFeatureWorkers(env: FeatureWorkersEnvironment): FeatureWorkers | null {
  const cores = env.hardwareConcurrency;
  if (!POOLED_FAMILIES.has(env.family)) return null;
  if (cores === undefined || !Number.isFinite(cores) || cores < 2) return null;
  const workers = Math.min(Math.floor(cores), MAX_FEATURE_WORKERS);
  const threads =
    env.crossOriginIsolated && env.simd
      ? Math.max(1, Math.min(Math.floor(cores / workers), MAX_WASM_THREADS))
      : 1;
  return { workers, threads };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A batch given to an instance, and its outcome. */
interface Outcome {
  start: number;
  n: number;
  instance: FeatureInstance;
  values?: Float32Array;
  error?: unknown;
  /** Reading the images failed (not the instance): the error is the run's, as on the in-process path. */
  readFailed?: boolean;
}

/**
 * The FeatureExtractor of the CPU path: `plan.workers` instances on the backends in `backends` (WASM), the
 * in-process path elsewhere. One per run: the instances are started at the first extraction (with the weights of the
 * base it gets) and kept for the run's other splits; `dispose` ends them.
 */
export class FeaturePool implements FeatureExtractor {
  #instances: FeatureInstance[] = [];
  /** The base whose weights the instances hold. */
  #base: tf.LayersModel | null = null;
  #fallback: string | null = null;

  constructor(
    private readonly plan: FeatureWorkers,
    private readonly startInstance: StartFeatureInstance,
    private readonly backends: readonly BackendName[] = ['wasm'],
  ) {}

  get fallback(): string | null {
    return this.#fallback;
  }

  workersFor(backend: BackendName | null): FeatureWorkers | null {
    if (this.#fallback !== null || backend === null || !this.backends.includes(backend)) return null;
    return this.plan.workers >= 2 ? { ...this.plan } : null;
  }

  dispose(): void {
    for (const instance of this.#instances) instance.dispose();
    this.#instances = [];
    this.#base = null;
  }

  /** The instances, started with `base`'s weights unless they already hold them. */
  async #ready(base: tf.LayersModel): Promise<FeatureInstance[]> {
    if (this.#base === base && this.#instances.length > 0) return this.#instances;
    this.dispose();
    const weights = await readWeights(
      base.weights.map((w) => w.read() as tf.Variable),
      base.weights.map((w) => w.originalName),
    );
    const count = this.plan.workers;
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        this.startInstance({ weights, threads: this.plan.threads }, i, count),
      ),
    );
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      for (const s of started) if (s.status === 'fulfilled') s.value.dispose();
      throw failed.reason;
    }
    this.#instances = started.map((s) => (s as PromiseFulfilledResult<FeatureInstance>).value);
    this.#base = base;
    return this.#instances;
  }

  #fail(what: string, error: unknown): void {
    this.#fallback = `${what}: ${message(error)}`;
    this.dispose();
  }

  async *extract(
    base: tf.LayersModel,
    read: (positions: readonly number[]) => Promise<Uint8Array | Float32Array>,
    count: number,
    options: ExtractOptions,
  ): AsyncGenerator<{ done: number; total: number }, Features> {
    if (this.#fallback !== null) return yield* extractFeatureBatches(base, read, count, options);
    let instances: FeatureInstance[];
    try {
      instances = await this.#ready(base);
    } catch (error) {
      this.#fail('the feature workers did not start', error);
      return yield* extractFeatureBatches(base, read, count, options);
    }
    const batchSize = extractionBatchSize(options);
    const shape = featureShape(base, options.pool);
    const dim = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count * dim);
    const settings: BatchSettings = {
      inputSize: options.inputSize,
      imageSize: options.imageSize,
      pool: options.pool,
      ...(options.flipInvariant === undefined ? {} : { flipInvariant: options.flipInvariant }),
    };
    const finished = new Set<number>();
    const inFlight = new Map<number, Promise<Outcome>>();
    let nextStart = 0;
    let done = 0;
    let complete = false;

    const dispatch = (instance: FeatureInstance): void => {
      if (nextStart >= count) return;
      const start = nextStart;
      const n = Math.min(batchSize, count - start);
      nextStart += n;
      const outcome = read(batchPositions(start, n)).then(
        (pixels) =>
          instance.features(pixels, n, settings).then(
            (v): Outcome => ({ start, n, instance, values: v }),
            (error: unknown): Outcome => ({ start, n, instance, error }),
          ),
        (error: unknown): Outcome => ({ start, n, instance, error, readFailed: true }),
      );
      inFlight.set(start, outcome);
    };

    try {
      for (const instance of instances) dispatch(instance);
      while (inFlight.size > 0) {
        const outcome = await Promise.race(inFlight.values());
        inFlight.delete(outcome.start);
        if (outcome.readFailed) throw outcome.error;
        if (outcome.error !== undefined || outcome.values?.length !== outcome.n * dim) {
          const why =
            outcome.error !== undefined
              ? outcome.error
              : `it returned ${outcome.values?.length} values for ${outcome.n} images of ${dim} features`;
          this.#fail(
            `${outcome.instance.name} failed on images ${outcome.start + 1}–${outcome.start + outcome.n} of ${count}`,
            why,
          );
          inFlight.clear();
          break;
        }
        values.set(outcome.values, outcome.start * dim);
        finished.add(outcome.start);
        done += outcome.n;
        // The freed instance gets its next batch before the progress goes out, so it never waits on the consumer.
        dispatch(outcome.instance);
        yield { done, total: count };
      }
      // After a failure: every batch not finished, in-process, with the same batch boundaries.
      for (let start = 0; start < count; start += batchSize) {
        if (finished.has(start)) continue;
        const n = Math.min(batchSize, count - start);
        values.set(
          await featuresOfBatch(base, await read(batchPositions(start, n)), n, options),
          start * dim,
        );
        finished.add(start);
        done += n;
        yield { done, total: count };
      }
      complete = true;
      return { values, count, shape };
    } finally {
      // Stopped (return()) with batches in flight: the instances are ended, and the next extraction starts new ones.
      if (!complete && inFlight.size > 0) this.dispose();
    }
  }
}
