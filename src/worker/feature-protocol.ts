/**
 * Messages between the training worker (FeatureWorkerClient, src/worker/feature-client.ts) and a feature worker
 * (src/worker/feature.worker.ts): one WASM instance of the frozen base that computes the features of the batches it
 * is given (src/lib/train/feature-pool.ts shares a split's batches among several).
 *
 * `init` first (the backbone, its threads and every weight of the base), answered by `ready` or `failed`; then
 * `batch` messages, each answered by `features` or `failed` with its id. Pixels and features are transferred.
 */
import type { BackboneId } from '../lib/model/backbones/catalog.ts';
import type { WeightValue } from '../lib/train/checkpoint.ts';
import type { BatchSettings } from '../lib/train/feature-pool.ts';

export type FeatureCommand =
  | {
      type: 'init';
      backbone: BackboneId;
      /** The base's input edge (the base is built for it). */
      inputSize: number;
      /** WASM threads for this instance. */
      threads: number;
      /** Every weight of the base, in `base.weights` order, named by `originalName`. */
      weights: WeightValue[];
    }
  | {
      type: 'batch';
      id: number;
      pixels: Uint8Array | Float32Array;
      n: number;
      settings: BatchSettings;
    };

export type FeatureMessage =
  /** The base is built with the weights; `device` is the backend line's words (e.g. "WebAssembly, SIMD, 1 thread"). */
  | { type: 'ready'; backend: string; device: string }
  | { type: 'features'; id: number; values: Float32Array }
  /** `id` null: `init` failed. */
  | { type: 'failed'; id: number | null; message: string };
