/**
 * TrainClient — the UI's handle on training. TensorFlow.js runs only in the training worker; the UI sends typed
 * commands and renders typed logs.
 *
 * Usage (e.g. in a *.svelte.ts state module):
 *
 *   const trainer = new TrainClient();                   // starts the training worker
 *   const off = trainer.subscribe((e) => {               // every event, in order; returns an unsubscribe
 *     switch (e.type) {
 *       case 'state': …e.state                           // idle | preparing | training | paused | stopping | done | failed
 *       case 'error': …e.error                           // TrainError {code, message}
 *       case 'log':                                      // RunLog (src/lib/train/logs.ts), by e.log.type:
 *         // 'prepared'  split table (per class train/val/test), totals, lesions, classWeights (null when off)
 *         // 'backend'   backend ('webgpu'|'webgl'|'wasm'|'cpu'), device (adapter, WebGL renderer, WASM threads
 *         //             and SIMD, or CPU, in words), adapter {vendor, architecture, description, isFallback}
 *         //             on webgpu else null, reason (plain language) — show it next to the run
 *         // 'phase'     phase 1|2, epochs, learningRate, input 'features'|'images', trainableParams, images
 *         // 'features'  feature-cache progress per split: done/total, cached (true: read from storage)
 *         // 'batch'     epoch, batch/batches, loss                    → live loss curve
 *         // 'epoch'     loss, accuracy, val_loss, val_accuracy, val_balanced_accuracy, val_macro_f1, lr, seconds
 *         // 'lr-reduced' | 'early-stop' | 'checkpoint' (location) | 'restored-best'
 *         // 'paused' | 'resumed' | 'device-lost' | 'recovered' (new backend, fromEpoch)
 *         // 'done'      reason 'completed'|'early-stop'|'stopped'
 *         // 'test'      test-split accuracy, balancedAccuracy, macroF1, recall per class, confusion, yTrue/yPred/yProb
 *     }
 *   });
 *   const report = await trainer.probe();                // backends on offer and what each kind of work would use
 *   const summary = await trainer.start(                 // resolves when the run ends (RunSummary)
 *     { backbone: 'mobilenet_v2_0.35', imageSize: 224, epochs: 30, augment: null, phase2: null },   // Partial<RunConfig>
 *     { kind: 'tfjs-url', url: 'models/mobilenet_v2_0.35/model.json' },                            // WeightsSource
 *   );
 *   await trainer.pause(); await trainer.resume();       // at the next batch; the state turns 'paused' with
 *                                                        // the loop's 'paused' log
 *   await trainer.stop();                                // ends after the current step; start() resolves 'stopped'
 *   const grid = await trainer.augmentPreview({ imageSize: 224, index: 0, count: 8, seed: 1, augment: {} });
 *   trainer.dispose();                                   // terminates the worker
 *
 * Defaults of a run are DEFAULT_RUN_CONFIG (src/lib/train/config.ts): Adam 1e-3, batch 16, 30 epochs, split seed
 * 1337 80/10/10 lesion-grouped, balanced class weights, EarlyStopping(val_loss, patience 5, restore best),
 * ReduceLROnPlateau(val_loss, 0.5, patience 3, min 1e-5), best checkpoint by val_loss in OPFS, backend auto.
 * The images come from the ingest step's OPFS cache of `imageSize`; start() fails with code 'cache' when there is
 * none. Promises reject with TrainFailure (`.error` is the TrainError, code 'busy' when a run is going).
 */
import type { BackboneId } from '../lib/model/backbones/catalog.ts';
import type { AugmentOptions } from '../lib/model/augment.ts';
import type { RunConfig } from '../lib/train/config.ts';
import type {
  TrainCommand,
  TrainError,
  TrainEvent,
  TrainMessage,
  TrainReplies,
  TrainState,
  WeightsSource,
} from './train-protocol.ts';
import type { ImageSize } from '../lib/data/types.ts';
import type { RunRecord } from '../lib/runs/record.ts';

export { DEFAULT_RUN_CONFIG, type RunConfig } from '../lib/train/config.ts';
export type * from './train-protocol.ts';
export type * from '../lib/train/logs.ts';

export class TrainFailure extends Error {
  constructor(readonly error: TrainError) {
    super(error.message);
    this.name = 'TrainFailure';
  }
}

export type TrainListener = (event: TrainEvent) => void;

type Distribute<C> = C extends { id: number } ? Omit<C, 'id'> : never;
type CommandBody = Distribute<TrainCommand>;

interface Pending {
  resolve(value: unknown): void;
  reject(error: TrainFailure): void;
}

export class TrainClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<TrainListener>();
  private disposed = false;
  /** The latest state the worker reported. */
  state: TrainState = 'idle';
  /** The worker failed and was ended: make a new client to go on. */
  crashed = false;

  constructor() {
    this.worker = new Worker(new URL('./train.worker.ts', import.meta.url), {
      type: 'module',
      name: 'lesion-lab-train',
    });
    this.worker.onmessage = (event: MessageEvent<TrainMessage>) => this.receive(event.data);
    // An uncaught error (or the worker running out of memory) leaves it in no known state: it is ended, and what
    // was waiting on it fails with the reason. The run's last resume point stays in storage, so it can be resumed.
    this.worker.onerror = (event) => {
      event.preventDefault();
      const why = event.message || 'it stopped without a message (out of memory?)';
      const error: TrainError = { code: 'crashed', message: `The training worker failed: ${why}` };
      this.crashed = true;
      this.worker.terminate();
      this.state = 'failed';
      this.emit({ type: 'state', state: 'failed' });
      this.emit({ type: 'error', error });
      this.rejectAll(error);
      this.disposed = true;
    };
  }

  /** Every event, in order; returns the unsubscribe function. */
  subscribe(listener: TrainListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  probe(): Promise<TrainReplies['probe']> {
    return this.send({ type: 'probe' });
  }

  /** The pretrained weights this browser kept after their first load, one set per backbone. */
  storedWeights(): Promise<TrainReplies['stored-weights']> {
    return this.send({ type: 'stored-weights' });
  }

  /** The complete image caches on this device, newest first. */
  caches(): Promise<TrainReplies['caches']> {
    return this.send({ type: 'caches' });
  }

  /** The base features kept between runs: files and bytes; `clear` deletes them first. */
  featureCache(action: 'usage' | 'clear' = 'usage'): Promise<TrainReplies['feature-cache']> {
    return this.send({ type: 'feature-cache', action });
  }

  /**
   * Trains; resolves with the summary when the run ends (completed, early stop, or stopped). With `run` (the page's
   * record), the worker saves a resume point after every epoch.
   */
  start(config: Partial<RunConfig>, weights: WeightsSource, run?: RunRecord): Promise<TrainReplies['start']> {
    return this.send({ type: 'start', config, weights, ...(run ? { run } : {}) });
  }

  /** Interrupted runs that can be resumed (their lock is free and they have a resume point), newest first. */
  resumable(): Promise<TrainReplies['resumable']> {
    return this.send({ type: 'resumable' });
  }

  /** Resumes an interrupted run from its last resume point; resolves when it ends, like start(). */
  continueRun(runId: string): Promise<TrainReplies['continue']> {
    return this.send({ type: 'continue', runId });
  }

  /** Deletes an interrupted run's resume points. */
  discard(runId: string): Promise<TrainReplies['discard']> {
    return this.send({ type: 'discard', runId });
  }

  /** Tests only: makes the worker throw an uncaught error, as a crash would. */
  simulateCrash(): Promise<TrainReplies['simulate-crash']> {
    return this.send({ type: 'simulate-crash' });
  }

  pause(): Promise<TrainReplies['pause']> {
    return this.send({ type: 'pause' });
  }

  resume(): Promise<TrainReplies['resume']> {
    return this.send({ type: 'resume' });
  }

  stop(): Promise<TrainReplies['stop']> {
    return this.send({ type: 'stop' });
  }

  /** Loses the GPU device on purpose (diagnostics and tests): training recovers on another backend. */
  simulateDeviceLoss(): Promise<TrainReplies['simulate-device-loss']> {
    return this.send({ type: 'simulate-device-loss' });
  }

  /** Possible hidden duplicates among the cached images (progress as `duplicates-progress` events). */
  nearDuplicates(options: {
    imageSize: ImageSize;
    backbone: BackboneId;
    weights: WeightsSource;
    top: number;
  }): Promise<TrainReplies['near-duplicates']> {
    return this.send({ type: 'near-duplicates', ...options });
  }

  /** The original and `count` augmented variants of one cached image, as RGBA tiles. */
  augmentPreview(options: {
    imageSize: ImageSize;
    index: number;
    count: number;
    seed: number;
    augment: Partial<AugmentOptions>;
  }): Promise<TrainReplies['augment-preview']> {
    return this.send({ type: 'augment-preview', ...options });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.worker.terminate();
    this.rejectAll({ code: 'internal', message: 'The training client was closed.' });
    this.listeners.clear();
  }

  private send<T>(body: CommandBody): Promise<T> {
    if (this.disposed) {
      return Promise.reject(
        new TrainFailure({ code: 'internal', message: 'The training client was closed.' }),
      );
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ ...body, id } as TrainCommand);
    });
  }

  private receive(message: TrainMessage): void {
    if (message.type === 'reply') {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(new TrainFailure(message.error));
      return;
    }
    if (message.type === 'state') this.state = message.state;
    this.emit(message);
  }

  private emit(event: TrainEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private rejectAll(error: TrainError): void {
    for (const pending of this.pending.values()) pending.reject(new TrainFailure(error));
    this.pending.clear();
  }
}
