/**
 * The training worker's side of a feature worker (src/worker/feature.worker.ts): starts it with the base's weights
 * and sends it batches, as a FeatureInstance for the pool in src/lib/train/feature-pool.ts. Every failure names the
 * worker ("feature worker 2 of 2") and what it was doing; the pool then falls back to the in-process path.
 */
import type { BackboneId } from '../lib/model/backbones/catalog.ts';
import type { WeightValue } from '../lib/train/checkpoint.ts';
import type { BatchSettings, FeatureInstance, StartFeatureInstance } from '../lib/train/feature-pool.ts';
import type { FeatureCommand, FeatureMessage } from './feature-protocol.ts';

/** Long enough to fetch and compile the WASM module and build the base on a slow, busy laptop. */
const START_TIMEOUT_MS = 60_000;

interface Pending {
  resolve(values: Float32Array): void;
  reject(error: Error): void;
}

/** The buffer of `array` when it is all of it (so it can be transferred), else a copy's. */
function ownBuffer<T extends Uint8Array | Float32Array>(array: T): T {
  return array.buffer instanceof ArrayBuffer &&
    array.byteOffset === 0 &&
    array.byteLength === array.buffer.byteLength
    ? array
    : (array.slice() as T);
}

export class FeatureWorkerClient implements FeatureInstance {
  #worker: Worker;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #failure: Error | null = null;
  /** The feature worker's backend line (e.g. "WebAssembly, SIMD, 1 thread"), once ready. */
  device = '';

  private constructor(readonly name: string) {
    this.#worker = new Worker(new URL('./feature.worker.ts', import.meta.url), {
      type: 'module',
      name: `lesion-lab-${name.replace(/\s+/g, '-')}`,
    });
  }

  /** Starts a feature worker and builds `backbone` with `weights` in it; rejects naming the worker and the cause. */
  static async start(
    name: string,
    setup: { backbone: BackboneId; inputSize: number; threads: number; weights: WeightValue[] },
  ): Promise<FeatureWorkerClient> {
    const client = new FeatureWorkerClient(name);
    try {
      await client.#init(setup);
      return client;
    } catch (error) {
      client.dispose();
      throw error;
    }
  }

  #init(setup: { backbone: BackboneId; inputSize: number; threads: number; weights: WeightValue[] }) {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not start within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
      const done = (error: Error | null) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      this.#worker.onerror = (event) => {
        event.preventDefault();
        this.#fail(
          new Error(
            `${this.name} stopped: ${event.message || 'without a message (its script failed to load, or out of memory?)'}`,
          ),
        );
        done(this.#failure);
      };
      this.#worker.onmessageerror = () => {
        this.#fail(new Error(`${this.name} sent a message that could not be read`));
        done(this.#failure);
      };
      this.#worker.onmessage = (event: MessageEvent<FeatureMessage>) => {
        const message = event.data;
        if (message.type === 'ready') {
          this.device = message.device;
          done(null);
        } else if (message.type === 'failed' && message.id === null) {
          done(new Error(`${this.name} could not build the base: ${message.message}`));
        } else {
          this.#receive(message);
        }
      };
      // Copied, not transferred: every feature worker gets the same weights.
      this.#post({ type: 'init', ...setup });
    });
  }

  #post(command: FeatureCommand, transfer: Transferable[] = []): void {
    this.#worker.postMessage(command, transfer);
  }

  #receive(message: FeatureMessage): void {
    if (message.type === 'ready' || message.id === null) return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    if (message.type === 'features') pending.resolve(message.values);
    else pending.reject(new Error(message.message));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(this.#failure);
    this.#pending.clear();
    this.#worker.terminate();
  }

  features(pixels: Uint8Array | Float32Array, n: number, settings: BatchSettings): Promise<Float32Array> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const own = ownBuffer(pixels);
    return new Promise<Float32Array>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post({ type: 'batch', id, pixels: own, n, settings }, [own.buffer]);
    });
  }

  dispose(): void {
    this.#fail(new Error(`${this.name} was ended`));
  }
}

/** The pool's `startInstance` for a run of `backbone` at `inputSize`: feature worker `index + 1` of `count`. */
export function startFeatureWorker(backbone: BackboneId, inputSize: number): StartFeatureInstance {
  return ({ weights, threads }, index, count) =>
    FeatureWorkerClient.start(`feature worker ${index + 1} of ${count}`, {
      backbone,
      inputSize,
      threads,
      weights,
    });
}
