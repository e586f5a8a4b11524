/**
 * The decoded-image cache in the Origin Private File System.
 *
 * Layout, in the directory `lesion-lab-cache/` of the origin's OPFS, per resolution S (96…224):
 *   pixels-S.rgb          flat uint8 RGB: image i at byte offset i·S·S·3 (no header, no padding)
 *   index-S.json          CacheIndex (src/lib/data/cache-index.ts): image_id → row, label, lesion; the metadata;
 *                         the match report; created time. Written last, atomically, and only when complete.
 *   pixels-S.rgb.partial  the pixel file while it is being written; renamed over pixels-S.rgb on success, so a
 *                         cancelled or failed run leaves the previous cache of that size untouched.
 *   progress-S.json       while writing: which slots of the partial file hold their image (cache-progress.ts),
 *                         replaced after each flush; kept when a run is cut short (closed tab, crash, storage full)
 *                         so the next visit continues, deleted on commit or cancel.
 *
 * Writing uses a FileSystemSyncAccessHandle (dedicated workers only). Readers (`openImageCache`: the training
 * worker, the sample grid) open the pixel file with a shared 'read-only' handle in workers, or read File slices
 * elsewhere; a read-only handle blocks replacing the file, so close() readers when done.
 */
import {
  bytesPerImage,
  cacheBytesNeeded,
  cacheFileNames,
  checkPixelFileSize,
  CacheIndexError,
  parseCacheIndex,
  quotaShortfall,
  serializeCacheIndex,
  toMegabytes,
  type CacheIndex,
} from '../../lib/data/cache-index.ts';
import { IMAGE_SIZES, type ImageSize } from '../../lib/data/types.ts';
import {
  journalFileName,
  parseJournal,
  type CacheJournal,
  type SlotSet,
} from '../../lib/data/cache-progress.ts';

export const CACHE_DIRECTORY = 'lesion-lab-cache';

/** Not enough storage for the image cache. The message says how much is needed and how much is available. */
export class QuotaError extends Error {
  constructor(
    readonly neededBytes: number,
    /** What navigator.storage.estimate() reports as free for this site. */
    readonly availableBytes: number,
    /** True when the estimate said it fits but the browser refused the space anyway (disk fuller than it says). */
    readonly refused = false,
    detail = '',
  ) {
    super(
      refused
        ? `Not enough storage for the image cache: it needs ${toMegabytes(neededBytes)} MB and the browser refused ` +
            `to store it, although it reports ${toMegabytes(availableBytes)} MB available for this site${detail}. ` +
            'In a private (incognito) window the browser keeps site data in memory and allows far less (about ' +
            '1 GB per file in Chromium): use a normal window. Otherwise free disk space, choose a smaller image ' +
            'size, or forget other cached datasets.'
        : `Not enough storage for the image cache: it needs ${toMegabytes(neededBytes)} MB and the browser offers ` +
            `${toMegabytes(availableBytes)} MB for this site${detail}. Free disk space, choose a smaller image ` +
            'size, or forget other cached datasets.',
    );
    this.name = 'QuotaError';
  }
}

/** OPFS missing, or a cache file locked by another worker or tab. */
export class CacheStorageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CacheStorageError';
  }
}

// FileSystemSyncAccessHandle as used here, declared locally: TypeScript's DOM library (used by the Node-side
// tests that import this module) lacks it, its WebWorker library lacks the `mode` option and move().
type SyncMode = 'readwrite' | 'read-only' | 'readwrite-unsafe';
interface SyncHandle {
  read(buffer: Uint8Array, options: { at: number }): number;
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}
interface FileHandleExtras {
  createSyncAccessHandle?(options?: { mode?: SyncMode }): Promise<SyncHandle>;
  move?(newName: string): Promise<void>;
}

/** True in a worker, where sync access handles exist (they are not exposed on the UI thread). */
function inWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';
}

function isNamed(error: unknown, ...names: string[]): boolean {
  return (
    typeof error === 'object' && error !== null && names.includes((error as { name?: string }).name ?? '')
  );
}

function inUse(name: string, cause: unknown): CacheStorageError {
  return new CacheStorageError(
    `The cache file ${name} is in use by another part of the app or another tab (e.g. training). ` +
      'Stop it or close the other tab, then try again.',
    { cause },
  );
}

export async function cacheDirectory(create: boolean): Promise<FileSystemDirectoryHandle | null> {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) {
    throw new CacheStorageError(
      'This browser has no Origin Private File System, so no image cache can be kept.',
    );
  }
  const root = await navigator.storage.getDirectory();
  try {
    return await root.getDirectoryHandle(CACHE_DIRECTORY, { create });
  } catch (error) {
    if (!create && isNamed(error, 'NotFoundError')) return null;
    throw error;
  }
}

async function fileIfExists(
  dir: FileSystemDirectoryHandle,
  name: string,
): Promise<FileSystemFileHandle | null> {
  try {
    return await dir.getFileHandle(name);
  } catch (error) {
    if (isNamed(error, 'NotFoundError', 'TypeMismatchError')) return null;
    throw error;
  }
}

async function removeIfExists(dir: FileSystemDirectoryHandle, name: string): Promise<void> {
  // A reader may be closing its handle right now: retry briefly before calling the file busy.
  for (let attempt = 0; ; attempt++) {
    try {
      await dir.removeEntry(name);
      return;
    } catch (error) {
      if (isNamed(error, 'NotFoundError')) return;
      if (isNamed(error, 'NoModificationAllowedError', 'InvalidModificationError') && attempt < 10) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (isNamed(error, 'NoModificationAllowedError', 'InvalidModificationError')) throw inUse(name, error);
      throw error;
    }
  }
}

export interface CacheListing {
  index: CacheIndex;
  bytes: number;
}

/** Reads and validates the index of one size; null when there is no complete, consistent cache of that size. */
export async function readCacheIndex(size: ImageSize): Promise<CacheListing | null> {
  const dir = await cacheDirectory(false);
  if (dir === null) return null;
  return readIndexIn(dir, size);
}

async function readIndexIn(dir: FileSystemDirectoryHandle, size: ImageSize): Promise<CacheListing | null> {
  const names = cacheFileNames(size);
  const indexHandle = await fileIfExists(dir, names.index);
  const pixelsHandle = await fileIfExists(dir, names.pixels);
  if (indexHandle === null || pixelsHandle === null) return null;
  try {
    const index = parseCacheIndex(await (await indexHandle.getFile()).text(), size);
    const bytes = (await pixelsHandle.getFile()).size;
    checkPixelFileSize(index, bytes);
    return { index, bytes };
  } catch (error) {
    if (error instanceof CacheIndexError) return null;
    throw error;
  }
}

/** Every complete cache on disk, newest first. */
export async function listCaches(): Promise<CacheListing[]> {
  const dir = await cacheDirectory(false);
  if (dir === null) return [];
  const found: CacheListing[] = [];
  for (const size of IMAGE_SIZES) {
    const listing = await readIndexIn(dir, size);
    if (listing !== null) found.push(listing);
  }
  return found.sort((a, b) => Date.parse(b.index.createdAt) - Date.parse(a.index.createdAt));
}

/** Deletes the whole cache directory; returns the sizes that had a complete cache. */
export async function forgetCaches(): Promise<ImageSize[]> {
  const dir = await cacheDirectory(false);
  if (dir === null) return [];
  const sizes = (await listCaches()).map((c) => c.index.size);
  const root = await navigator.storage.getDirectory();
  try {
    await root.removeEntry(CACHE_DIRECTORY, { recursive: true });
  } catch (error) {
    if (isNamed(error, 'NotFoundError')) return sizes;
    if (isNamed(error, 'NoModificationAllowedError', 'InvalidModificationError'))
      throw inUse(CACHE_DIRECTORY, error);
    throw error;
  }
  return sizes;
}

/** Bytes the origin may still write, from navigator.storage.estimate(); Infinity when the browser won't say. */
export async function availableBytes(): Promise<number> {
  const estimate = await navigator.storage.estimate?.();
  if (estimate?.quota === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(0, estimate.quota - (estimate.usage ?? 0));
}

/**
 * Writes one resolution's cache: create() checks the quota and reserves the whole pixel file up front (so a
 * quota problem shows at once, not after an hour), writeImage() puts image i at its offset, commit() makes it
 * the cache, abort() leaves the previous cache as it was. Worker only (SyncAccessHandle).
 */
export class CacheWriter {
  private closed = false;

  private constructor(
    private readonly dir: FileSystemDirectoryHandle,
    readonly size: ImageSize,
    readonly count: number,
    private readonly partial: FileSystemFileHandle,
    private readonly handle: SyncHandle,
    /** The partial file of an interrupted run was taken up as it is (its journal says which slots it holds). */
    readonly continued: boolean,
  ) {}

  /**
   * With `continuePartial`, the partial file an interrupted run left is kept as it is when it has the planned
   * length; otherwise (and when there is none) a new one is reserved.
   */
  static async create(
    size: ImageSize,
    count: number,
    options: { continuePartial?: boolean } = {},
  ): Promise<CacheWriter> {
    const pixelBytes = count * bytesPerImage(size);
    const needed = cacheBytesNeeded(size, count);
    const dir = (await cacheDirectory(true)) as FileSystemDirectoryHandle;
    const names = cacheFileNames(size);
    const existing = options.continuePartial ? await fileIfExists(dir, names.partial) : null;
    if (existing === null) {
      const shortfall = quotaShortfall(needed, await navigator.storage.estimate?.());
      if (shortfall !== null) {
        throw new QuotaError(shortfall.neededBytes, shortfall.availableBytes, false, existingNote(size));
      }
    }
    const partial = existing ?? (await dir.getFileHandle(names.partial, { create: true }));
    const create = (partial as unknown as FileHandleExtras).createSyncAccessHandle;
    if (typeof create !== 'function') {
      throw new CacheStorageError('The image cache can only be written from a dedicated worker.');
    }
    let handle: SyncHandle | null = null;
    // The worker of a closed tab may still be letting go of the file: retry briefly before calling it busy.
    for (let attempt = 0; handle === null; attempt++) {
      try {
        handle = await create.call(partial, { mode: 'readwrite' });
      } catch (error) {
        if (!isNamed(error, 'NoModificationAllowedError', 'InvalidStateError')) throw error;
        if (attempt >= 20) throw inUse(names.partial, error);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (existing !== null && handle.getSize() === pixelBytes) {
      return new CacheWriter(dir, size, count, partial, handle, true);
    }
    // Reserve the whole file now. Chromium may refuse silently (the size stays short) rather than throw.
    let reserved = false;
    try {
      handle.truncate(0);
      handle.truncate(pixelBytes);
      reserved = handle.getSize() === pixelBytes;
    } catch (error) {
      if (!isNamed(error, 'QuotaExceededError')) {
        handle.close();
        await removeIfExists(dir, names.partial).catch(() => {});
        throw error;
      }
    }
    if (!reserved) {
      handle.close();
      await removeIfExists(dir, names.partial).catch(() => {});
      throw new QuotaError(needed, await availableBytes(), true, existingNote(size));
    }
    return new CacheWriter(dir, size, count, partial, handle, false);
  }

  /** Makes every image written so far durable (before a journal names them). */
  flush(): void {
    if (!this.closed) this.handle.flush();
  }

  /** Replaces the progress journal (atomically: a writable stream replaces its file on close). */
  async writeJournal(journal: CacheJournal): Promise<void> {
    const handle = await this.dir.getFileHandle(journalFileName(this.size), { create: true });
    const writable = await handle.createWritable();
    try {
      await writable.write(JSON.stringify(journal));
      await writable.close();
    } catch (error) {
      await writable.abort().catch(() => undefined);
      throw error;
    }
  }

  /** Leaves the partial file and its journal for a later visit to continue (storage full, a failure). */
  keepForLater(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.flush();
    this.handle.close();
  }

  get bytesPerImage(): number {
    return bytesPerImage(this.size);
  }

  writeImage(slot: number, rgb: Uint8Array): void {
    if (rgb.length !== this.bytesPerImage) {
      throw new RangeError(`image for slot ${slot} has ${rgb.length} bytes, expected ${this.bytesPerImage}`);
    }
    if (slot < 0 || slot >= this.count) throw new RangeError(`slot ${slot} outside 0..${this.count - 1}`);
    let written = -1;
    try {
      written = this.handle.write(rgb, { at: slot * this.bytesPerImage });
    } catch (error) {
      if (!isNamed(error, 'QuotaExceededError')) throw error;
    }
    // A refused write may throw, or just report a short (or nonsensical) count.
    if (written !== rgb.length) {
      throw new QuotaError(cacheBytesNeeded(this.size, this.count), 0, true, existingNote(this.size));
    }
  }

  /** Copies slot `from` to slot `to` (to fill the hole of an image that failed to decode). */
  moveImage(from: number, to: number): void {
    const buffer = new Uint8Array(this.bytesPerImage);
    this.handle.read(buffer, { at: from * this.bytesPerImage });
    this.writeImage(to, buffer);
  }

  /**
   * Shrinks the file to `count` images, makes it the cache of its size, and writes `index` (whose count must
   * match). Order matters for crash safety: the old index goes first, the new index last.
   */
  async commit(index: CacheIndex): Promise<void> {
    const names = cacheFileNames(this.size);
    if (index.size !== this.size) throw new Error(`index is for ${index.size} px, cache for ${this.size} px`);
    this.handle.truncate(index.count * this.bytesPerImage);
    this.handle.flush();
    this.handle.close();
    this.closed = true;
    // Fail before touching the old cache if a reader holds its pixel file: taking the exclusive lock first
    // means the old index is only removed once the old pixels can be too.
    const old = await fileIfExists(this.dir, names.pixels);
    if (old !== null) {
      let lock: SyncHandle;
      try {
        lock = await (old as unknown as FileHandleExtras).createSyncAccessHandle!({ mode: 'readwrite' });
      } catch (error) {
        if (isNamed(error, 'NoModificationAllowedError', 'InvalidStateError'))
          throw inUse(names.pixels, error);
        throw error;
      }
      lock.close();
    }
    await removeIfExists(this.dir, names.index);
    await removeIfExists(this.dir, names.pixels);
    const move = (this.partial as unknown as FileHandleExtras).move;
    if (typeof move === 'function') {
      await move.call(this.partial, names.pixels);
    } else {
      await copyFile(this.dir, names.partial, names.pixels);
      await removeIfExists(this.dir, names.partial);
    }
    await removeIfExists(this.dir, journalFileName(this.size));
    const indexHandle = await this.dir.getFileHandle(names.index, { create: true });
    // A writable stream writes to a swap file and replaces the index atomically on close().
    try {
      const writable = await indexHandle.createWritable();
      await writable.write(serializeCacheIndex(index));
      await writable.close();
    } catch (error) {
      if (isNamed(error, 'QuotaExceededError')) {
        throw new QuotaError(cacheBytesNeeded(this.size, index.count), await availableBytes(), true);
      }
      throw error;
    }
  }

  /** Closes the handle and deletes the partial file and its journal. Safe to call more than once and after commit. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.handle.close();
    }
    await removeIfExists(this.dir, cacheFileNames(this.size).partial);
    await removeIfExists(this.dir, journalFileName(this.size));
  }
}

function existingNote(size: ImageSize): string {
  return ` (a ${size} px cache already on this device, if any, is kept)`;
}

/** Fallback for browsers without FileSystemFileHandle.move(): copies in 16 MB chunks with sync handles. */
async function copyFile(dir: FileSystemDirectoryHandle, from: string, to: string): Promise<void> {
  const source = (await dir.getFileHandle(from)) as unknown as FileHandleExtras;
  const target = (await dir.getFileHandle(to, { create: true })) as unknown as FileHandleExtras;
  const input = await source.createSyncAccessHandle!({ mode: 'readwrite' });
  const output = await target.createSyncAccessHandle!({ mode: 'readwrite' });
  try {
    const total = input.getSize();
    output.truncate(total);
    const chunk = new Uint8Array(16 * 1024 * 1024);
    for (let at = 0; at < total; at += chunk.length) {
      const n = input.read(chunk, { at });
      output.write(chunk.subarray(0, n), { at });
    }
    output.flush();
  } finally {
    input.close();
    output.close();
  }
}

/** A complete cache opened for reading. */
export interface ImageCache {
  readonly index: CacheIndex;
  readonly size: ImageSize;
  readonly count: number;
  readonly bytesPerImage: number;
  /**
   * The images at `indices` (positions in index.entries), concatenated in that order as RGB bytes.
   * Runs of consecutive indices are read in one go. `out`, if given, must hold indices.length images.
   */
  readImages(indices: ArrayLike<number>, out?: Uint8Array): Promise<Uint8Array>;
  /** Releases the file (a read-only handle blocks replacing or forgetting the cache). */
  close(): void;
}

/**
 * Opens the cache of `size`, or the newest complete cache when no size is given. Throws CacheStorageError
 * when there is none. In a dedicated worker reads are synchronous reads of a shared read-only handle; elsewhere
 * (the UI thread) they are File slices.
 */
export async function openImageCache(size?: ImageSize): Promise<ImageCache> {
  const dir = await cacheDirectory(false);
  const listing =
    dir === null
      ? null
      : size !== undefined
        ? await readIndexIn(dir, size)
        : ((await listCaches())[0] ?? null);
  if (dir === null || listing === null) {
    throw new CacheStorageError(
      size === undefined
        ? 'No image cache on this device yet.'
        : `No complete ${size} px image cache on this device.`,
    );
  }
  const { index } = listing;
  const handle = (await dir.getFileHandle(index.pixelsFile)) as FileSystemFileHandle & FileHandleExtras;
  const bpi = index.bytesPerImage;
  let sync: SyncHandle | null = null;
  let file: File | null = null;
  if (typeof handle.createSyncAccessHandle === 'function' && inWorker()) {
    try {
      sync = await handle.createSyncAccessHandle({ mode: 'read-only' });
    } catch (error) {
      if (isNamed(error, 'NoModificationAllowedError')) throw inUse(index.pixelsFile, error);
      throw error;
    }
  } else {
    file = await handle.getFile();
  }
  let closed = false;
  return {
    index,
    size: index.size,
    count: index.count,
    bytesPerImage: bpi,
    async readImages(indices: ArrayLike<number>, out?: Uint8Array): Promise<Uint8Array> {
      if (closed) throw new CacheStorageError('the image cache was closed');
      const n = indices.length;
      const target = out ?? new Uint8Array(n * bpi);
      if (target.length < n * bpi) throw new RangeError(`out holds ${target.length} bytes, need ${n * bpi}`);
      let i = 0;
      while (i < n) {
        const first = indices[i] as number;
        if (!Number.isInteger(first) || first < 0 || first >= index.count) {
          throw new RangeError(`image ${first} is outside the cache (0..${index.count - 1})`);
        }
        let run = 1;
        while (i + run < n && indices[i + run] === first + run) run++;
        const view = target.subarray(i * bpi, (i + run) * bpi);
        if (sync !== null) {
          const read = sync.read(view, { at: first * bpi });
          if (read !== view.length)
            throw new CacheStorageError('the cache file is shorter than its index says');
        } else {
          const blob = (file as File).slice(first * bpi, (first + run) * bpi);
          view.set(new Uint8Array(await blob.arrayBuffer()));
        }
        i += run;
      }
      return target;
    },
    close() {
      if (closed) return;
      closed = true;
      sync?.close();
    },
  };
}

/** A cache whose writing was cut short, with what its journal says is written. */
export interface PartialCache {
  journal: CacheJournal;
  done: SlotSet;
}

/** The journal of an interrupted cache of `size` whose partial file is still there, else null. */
export async function readPartialCache(size: ImageSize): Promise<PartialCache | null> {
  const dir = await cacheDirectory(false);
  if (dir === null) return null;
  const journalHandle = await fileIfExists(dir, journalFileName(size));
  const partial = await fileIfExists(dir, cacheFileNames(size).partial);
  if (journalHandle === null || partial === null) return null;
  const parsed = parseJournal(await (await journalHandle.getFile()).text());
  if (parsed === null || parsed.journal.size !== size) return null;
  if ((await partial.getFile()).size !== parsed.journal.count * bytesPerImage(size)) return null;
  return parsed;
}

/** Every interrupted cache on this device. */
export async function listPartialCaches(): Promise<PartialCache[]> {
  const found: PartialCache[] = [];
  for (const size of IMAGE_SIZES) {
    const partial = await readPartialCache(size);
    if (partial !== null) found.push(partial);
  }
  return found;
}

/** Deletes an interrupted cache's partial file and journal. */
export async function discardPartialCache(size: ImageSize): Promise<void> {
  const dir = await cacheDirectory(false);
  if (dir === null) return;
  await removeIfExists(dir, cacheFileNames(size).partial);
  await removeIfExists(dir, journalFileName(size));
}
