/**
 * IngestClient — the UI's handle on dataset ingest. Everything heavy runs in workers; the UI thread only posts
 * File handles and receives small typed messages.
 *
 * Usage (e.g. in a *.svelte.ts state module):
 *
 *   const ingest = new IngestClient();                 // starts the ingest worker
 *   const off = ingest.on((e) => {                     // every event, in order; returns an unsubscribe
 *     switch (e.type) {
 *       case 'progress': …e.stages                     // [{stage: 'listing'|'reading'|'decoding'|'caching',
 *                                                      //   done, total, rate (items/s), etaSeconds, finished}]
 *       case 'files':    …e.files, e.listing           // what was dropped; entries/images/duplicates/ignored
 *       case 'metadata': …e.metadata, e.summary        // all parsed records + EdaSummary (+ metadata.warnings)
 *       case 'match':    …e.report, e.description      // "10,015 images matched; 0 rows without an image; …"
 *       case 'cache':    …e.cache                      // CacheSummary of the cache on disk, or null
 *       case 'error':    …e.error                      // IngestError {code, message, fileName?, line?, column?,
 *                                                      //   entry?, neededMB?, availableMB?}
 *       case 'notice':   …e.kind, e.text             // a download resumed, retried, restarted, offline copy
 *       case 'cancelled': …
 *     }
 *   });
 *   await ingest.restore();                            // after a reload: DatasetSnapshot, or null if no cache
 *   await ingest.openUrl('https://this.origin/pack.zip'); // downloads into OPFS (resumable), then as addFiles
 *   const snap = await ingest.addFiles([...fileList]); // zips, .csv/.tab, loose JPEGs (folder drop); any order,
 *                                                      // in one go or one after another. snap.errors lists bad
 *                                                      // files (also sent as 'error' events); good ones still count
 *   ingest.setImageSize(224);                          // 96 | 128 | 160 | 192 | 224 (default 224)
 *   const cache = await ingest.startCaching();         // decode + resize all matched images into OPFS
 *   await ingest.cancel();                             // really stops: aborts reads, terminates decoders,
 *                                                      // deletes the partial file; an older cache stays
 *   const grid = await ingest.samples(6);              // up to 6 cached images per class, RGBA
 *   await ingest.forget();                             // deletes every cache and forgets the session
 *   ingest.dispose();                                  // terminates all workers
 *
 * Promises reject with IngestFailure (`.error` is the IngestError; code 'cancelled' after cancel(), 'busy' when
 * another exclusive command runs). Commands that change the dataset (addFiles, openUrl, startCaching, restore,
 * forget, clearFiles) run one at a time; caches() and samples() may run alongside.
 *
 * Training reads the cache itself, in its own worker: `openImageCache(size)` from
 * src/worker/cache/opfs-cache.ts gives the index (image_id → row, label, lesion) and `readImages(indices)`.
 *
 * Resize policy (show it in the UI): RESIZE_NOTE — images are squashed to the square, never centre-cropped.
 */
import { DEFAULT_IMAGE_SIZE, IMAGE_SIZES, type ImageSize } from '../lib/data/types.ts';
import { isImageSize } from '../lib/data/cache-index.ts';
import type {
  CacheSummary,
  DatasetSnapshot,
  IngestCommand,
  IngestCommandType,
  IngestError,
  IngestEvent,
  IngestMessage,
  IngestReplies,
  InterruptedCache,
  Sample,
} from './ingest-protocol.ts';

export { RESIZE_MODE, RESIZE_NOTE } from '../lib/data/resize.ts';
export { DEFAULT_IMAGE_SIZE, IMAGE_SIZES };
export type { ImageSize };
export { formatDuration, type StageProgress, type IngestStage } from '../lib/data/progress.ts';
export type * from './ingest-protocol.ts';

/** A command that did not succeed. `error` says why, in terms the UI can show as is. */
export class IngestFailure extends Error {
  constructor(readonly error: IngestError) {
    super(error.message);
    this.name = 'IngestFailure';
  }
}

export type IngestListener = (event: IngestEvent) => void;

export interface IngestClientOptions {
  /** Decode workers per caching run; default: one per core but one, at least 2, at most 4. */
  decoders?: number;
  /** Initial cache resolution (default 224). */
  imageSize?: ImageSize;
}

/** Commands with no arguments other than their id. */
type Distribute<C> = C extends { id: number } ? Omit<C, 'id'> : never;
type CommandBody = Distribute<IngestCommand>;

interface Pending {
  resolve(value: unknown): void;
  reject(error: IngestFailure): void;
}

export function defaultDecoderCount(): number {
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 2 : 2;
  return Math.max(2, Math.min(4, cores - 1));
}

export class IngestClient {
  readonly decoderCount: number;
  private size: ImageSize;
  private worker: Worker | null = null;
  private decoders: Worker[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<IngestListener>();
  private disposed = false;

  constructor(options: IngestClientOptions = {}) {
    this.decoderCount = Math.max(1, Math.floor(options.decoders ?? defaultDecoderCount()));
    this.size = options.imageSize ?? DEFAULT_IMAGE_SIZE;
    this.ensureWorker();
  }

  /** The resolution startCaching(), restore() and samples() use when not given one. */
  get imageSize(): ImageSize {
    return this.size;
  }

  setImageSize(size: ImageSize): void {
    if (!isImageSize(size)) throw new RangeError(`image size must be one of ${IMAGE_SIZES.join(', ')}`);
    this.size = size;
  }

  /** Subscribes to every event; returns the unsubscribe function. */
  on(listener: IngestListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Lists, parses and matches dropped files (a FileList works). Resolves even when some files were bad. */
  addFiles(files: Iterable<File> | ArrayLike<File>): Promise<DatasetSnapshot> {
    return this.send({ type: 'add-files', files: Array.from(files as ArrayLike<File>) });
  }

  /**
   * Downloads the zip at `url` (absolute; the page's CSP allows its own origin only) into this browser's private
   * storage, resuming a partial download of the same URL, then adds it like a dropped file. IngestFailure code
   * 'download' names the URL (and the HTTP status); cancel() keeps the partial file for the next try.
   */
  openUrl(url: string): Promise<DatasetSnapshot> {
    return this.send({ type: 'open-url', url });
  }

  /**
   * Decodes every matched image into the OPFS cache at `size` (default: imageSize), replacing the cache of that
   * size only once the new one is complete. Quota is checked first (IngestFailure code 'quota').
   */
  async startCaching(size: ImageSize = this.size): Promise<CacheSummary> {
    if (!isImageSize(size)) throw new RangeError(`image size must be one of ${IMAGE_SIZES.join(', ')}`);
    this.terminateDecoders();
    const ports: MessagePort[] = [];
    for (let i = 0; i < this.decoderCount; i++) {
      const worker = new Worker(new URL('./decode.worker.ts', import.meta.url), {
        type: 'module',
        name: `lesion-lab-decode-${i + 1}`,
      });
      const channel = new MessageChannel();
      worker.postMessage({ type: 'connect', port: channel.port2 }, [channel.port2]);
      this.decoders.push(worker);
      ports.push(channel.port1);
    }
    const decoders = this.decoders;
    try {
      return await this.send({ type: 'start-caching', size, decoders: ports }, ports);
    } finally {
      // Decoders live for one run: their memory goes back as soon as it ends, however it ends.
      if (this.decoders === decoders) this.terminateDecoders();
    }
  }

  /**
   * Stops the running command. Decode workers are terminated at once (that is what interrupts a decode in
   * progress); the ingest worker aborts its reads, closes the cache file and deletes the partial pixels.
   * Resolves with whether anything was running.
   */
  async cancel(): Promise<boolean> {
    this.terminateDecoders();
    const { cancelled } = await this.send({ type: 'cancel' });
    return cancelled;
  }

  /** Restores the newest complete cache (or the one at `size`) with its metadata, EDA and match report. */
  restore(size?: ImageSize): Promise<DatasetSnapshot | null> {
    return this.send(size === undefined ? { type: 'restore' } : { type: 'restore', size });
  }

  /** Deletes every cached size and forgets the session's files and metadata. Resolves with the sizes removed. */
  async forget(): Promise<ImageSize[]> {
    await this.cancel();
    const { removed } = await this.send({ type: 'forget' });
    return removed;
  }

  /** Forgets the dropped files and metadata of this session (not the cache): "start over". */
  clearFiles(): Promise<DatasetSnapshot> {
    return this.send({ type: 'clear-files' });
  }

  /** The complete caches on this device, newest first. */
  caches(): Promise<CacheSummary[]> {
    return this.send({ type: 'list-caches' });
  }

  /** Caches whose writing was cut short (closed tab, crash, storage full); startCaching() continues them. */
  interrupted(): Promise<InterruptedCache[]> {
    return this.send({ type: 'interrupted' });
  }

  /** Deletes the partial cache of `size`, so the next caching starts from the first image. */
  async discardPartial(size: ImageSize): Promise<void> {
    await this.send({ type: 'discard-partial', size });
  }

  /** Up to `perClass` cached images per class (spread over the class), for the EDA's sample grid. */
  samples(perClass: number, size?: ImageSize): Promise<Sample[]> {
    return this.send(
      size === undefined ? { type: 'samples', perClass } : { type: 'samples', perClass, size },
    );
  }

  /** Terminates every worker and rejects whatever is pending. The client cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.terminateDecoders();
    this.worker?.terminate();
    this.worker = null;
    this.failAll({ code: 'cancelled', message: 'The ingest client was closed.' });
    this.listeners.clear();
  }

  private ensureWorker(): Worker {
    if (this.disposed)
      throw new IngestFailure({ code: 'internal', message: 'The ingest client was closed.' });
    if (this.worker !== null) return this.worker;
    const worker = new Worker(new URL('./ingest.worker.ts', import.meta.url), {
      type: 'module',
      name: 'lesion-lab-ingest',
    });
    worker.addEventListener('message', (event: MessageEvent<IngestMessage>) => this.onMessage(event.data));
    worker.addEventListener('error', (event: ErrorEvent) => {
      // A script error (e.g. the worker failed to load). Answer everything pending and start afresh next time.
      event.preventDefault();
      const error: IngestError = {
        code: 'internal',
        message: `The ingest worker failed: ${event.message || 'it could not be loaded'}.`,
      };
      this.emit({ type: 'error', error });
      this.worker?.terminate();
      this.worker = null;
      this.terminateDecoders();
      this.failAll(error);
    });
    this.worker = worker;
    return worker;
  }

  private send<T extends IngestCommandType>(
    body: Extract<CommandBody, { type: T }>,
    transfer: Transferable[] = [],
  ): Promise<IngestReplies[T]> {
    let worker: Worker;
    try {
      worker = this.ensureWorker();
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.nextId++;
    return new Promise<IngestReplies[T]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ ...body, id } as IngestCommand, transfer);
    });
  }

  private onMessage(message: IngestMessage): void {
    if (message.type === 'reply') {
      const pending = this.pending.get(message.id);
      if (pending === undefined) return;
      this.pending.delete(message.id);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(new IngestFailure(message.error));
      return;
    }
    this.emit(message);
  }

  private emit(event: IngestEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        // A faulty listener must not stop the others or the client.
        console.error('IngestClient listener failed', error);
      }
    }
  }

  private failAll(error: IngestError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new IngestFailure(error));
  }

  private terminateDecoders(): void {
    for (const worker of this.decoders) worker.terminate();
    this.decoders = [];
  }
}
