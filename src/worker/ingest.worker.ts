/// <reference lib="webworker" />
/**
 * The ingest worker: everything between a drop and a training-ready cache, off the UI thread.
 * Protocol: src/worker/ingest-protocol.ts. The UI talks to it through IngestClient (ingest-client.ts).
 *
 * - add-files: zips are listed with random access (zip.js reads the central directory; entries are later read
 *   by byte range, never the whole File), loose files are classified, the newest metadata file is parsed (papaparse,
 *   inside parseMetadata), summarised for the EDA and matched to the images.
 * - start-caching: two read lanes go through the archive front to back, up to 32 MB of neighbouring entries per
 *   File read, and feed the decode workers through a bounded window (backpressure: at most `window` images are
 *   read and not yet written), so reading overlaps decoding and memory stays flat;
 *   decoded pixels go straight into the OPFS pixel file at their slot.
 * - open-url: the zip at a same-origin URL is downloaded into OPFS (download-to-opfs.ts: HTTP ranges, resumable)
 *   and then added like a dropped file.
 * - Failures are posted as structured errors and never end the worker; a cache already on disk is only
 *   replaced by a complete new one.
 */
import { ArchiveError } from '../lib/data/archive.ts';
import { listZip } from '../lib/data/archive.ts';
import { entryError, extractEntry, planReads, readRange } from '../lib/data/zip-span.ts';
import {
  buildCacheIndex,
  bytesPerImage,
  cacheBytesNeeded,
  isImageSize,
  type CacheIndex,
} from '../lib/data/cache-index.ts';
import { buildJournal, planKey, SlotSet } from '../lib/data/cache-progress.ts';
import { isQuotaExceeded } from '../lib/storage-full.ts';
import { listLooseFiles, mergeListings } from '../lib/data/listing.ts';
import { describeMatch, matchImages, type MatchResult } from '../lib/data/match.ts';
import { parseMetadata } from '../lib/data/metadata.ts';
import { StageMeter, Throttle, type IngestStage } from '../lib/data/progress.ts';
import {
  MetadataError,
  type ImageSize,
  type Listing,
  type Metadata,
  type MetadataSource,
} from '../lib/data/types.ts';
import { summarizeMetadata } from '../lib/eda/summary.ts';
import { DownloadProblem } from '../lib/data/download.ts';
import { downloadToOpfs, DownloadStorageError, forgetDownloads } from './download-to-opfs.ts';
import {
  availableBytes,
  CacheStorageError,
  CacheWriter,
  discardPartialCache,
  forgetCaches,
  listPartialCaches,
  readPartialCache,
  listCaches,
  openImageCache,
  QuotaError,
  type CacheListing,
} from './cache/opfs-cache.ts';
import { DecodeError, DecodePool } from './decode-pool.ts';
import type {
  CacheSummary,
  CacheTimings,
  DatasetSnapshot,
  DroppedFileInfo,
  IngestCommand,
  IngestCommandType,
  IngestError,
  IngestEvent,
  IngestReplies,
  IngestReply,
  ListingSummary,
  Sample,
} from './ingest-protocol.ts';
import { toMegabytes } from '../lib/data/cache-index.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

// ---------------------------------------------------------------------------------------------------------------
// Session state

interface Session {
  files: DroppedFileInfo[];
  /** One listing per drop, merged on demand (drop order decides which copy of an image wins). */
  listings: Listing[];
  listing: Listing | null;
  metadata: { value: Metadata; location: string } | null;
  match: MatchResult | null;
  /** True when the metadata came from the cache (after a reload) rather than from a drop. */
  restored: boolean;
  cache: CacheSummary | null;
  /** What each URL opened in this visit added, so that opening it again replaces it instead of doubling it. */
  fromUrls: Map<string, { listing: Listing; file: DroppedFileInfo }>;
}

const session: Session = {
  files: [],
  listings: [],
  listing: null,
  metadata: null,
  match: null,
  restored: false,
  cache: null,
  fromUrls: new Map(),
};

/** The job that may be cancelled. Only one runs at a time. */
let job: { kind: IngestCommandType; controller: AbortController } | null = null;

function post(message: IngestEvent | IngestReply, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

function reply<K extends IngestCommandType>(
  id: number,
  command: K,
  value: IngestReplies[K],
  transfer: Transferable[] = [],
): void {
  post({ type: 'reply', id, command, ok: true, value } as IngestReply, transfer);
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

class Cancelled extends Error {
  constructor() {
    super('Cancelled.');
    this.name = 'AbortError';
  }
}

class IngestProblem extends Error {
  constructor(readonly detail: IngestError) {
    super(detail.message);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isAbort(error: unknown): boolean {
  return error instanceof Cancelled || (error instanceof DOMException && error.name === 'AbortError');
}

/** Any thrown value → the structured error the UI shows. */
function toIngestError(error: unknown): IngestError {
  if (error instanceof IngestProblem) return error.detail;
  if (isAbort(error)) return { code: 'cancelled', message: 'Cancelled.' };
  if (error instanceof MetadataError) {
    return {
      code: 'metadata',
      message: error.message,
      fileName: error.fileName,
      ...(error.line !== undefined ? { line: error.line } : {}),
      ...(error.column !== undefined ? { column: error.column } : {}),
    };
  }
  if (error instanceof ArchiveError) {
    return {
      code: 'archive',
      message: error.message,
      fileName: error.fileName,
      ...(error.entry !== undefined ? { entry: error.entry } : {}),
    };
  }
  if (error instanceof QuotaError) {
    return {
      code: 'quota',
      message: error.message,
      neededMB: toMegabytes(error.neededBytes),
      availableMB: toMegabytes(error.availableBytes),
    };
  }
  if (error instanceof CacheStorageError || error instanceof DownloadStorageError)
    return { code: 'storage', message: error.message };
  if (error instanceof DownloadProblem) {
    return {
      code: error.code === 'quota' ? 'quota' : 'download',
      message: error.message,
      url: error.url,
      ...(error.status !== undefined ? { status: error.status } : {}),
    };
  }
  if (error instanceof DOMException && error.name === 'QuotaExceededError') {
    return {
      code: 'quota',
      message: `The browser refused to store more data for this site (${error.message}).`,
    };
  }
  return { code: 'internal', message: `Unexpected problem: ${errorMessage(error)}` };
}

function reportError(error: IngestError): void {
  post({ type: 'error', error });
}

// ---------------------------------------------------------------------------------------------------------------
// Progress: one meter per stage of the current job; posts throttled to ≤ 10 a second.

class Progress {
  private readonly meters = new Map<IngestStage, StageMeter>();
  private readonly throttle = new Throttle();

  start(stage: IngestStage, total: number | null): StageMeter {
    const meter = new StageMeter(stage, total, performance.now());
    this.meters.set(stage, meter);
    this.post(true);
    return meter;
  }

  update(meter: StageMeter, done: number, total?: number | null): void {
    meter.update(done, performance.now(), total);
    this.post(false);
  }

  /** A count that jumped (a download resumed or restarted): the rate is measured afresh from here. */
  rebase(meter: StageMeter, done: number, total: number | null): void {
    meter.rebase(done, performance.now(), total);
    this.post(true);
  }

  finish(meter: StageMeter): void {
    meter.finish(performance.now());
    this.post(true);
  }

  post(force: boolean): void {
    const now = performance.now();
    if (!this.throttle.take(now, force)) return;
    post({ type: 'progress', stages: [...this.meters.values()].map((m) => m.snapshot(now)) });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// add-files

function fileKind(name: string): DroppedFileInfo['kind'] {
  if (/\.zip$/i.test(name)) return 'zip';
  if (/\.(csv|tab)$/i.test(name)) return 'metadata';
  if (/\.(jpe?g|png)$/i.test(name)) return 'image';
  return 'other';
}

function listingSummary(listing: Listing): ListingSummary {
  return {
    entries: listing.entries,
    images: listing.images.length,
    duplicates: listing.duplicates.length,
    metadataFiles: listing.metadata.map((m) => m.location),
    ignored: listing.ignored.slice(0, 50),
    ignoredCount: listing.ignored.length,
  };
}

function snapshot(errors: IngestError[] = []): DatasetSnapshot {
  return {
    files: session.files,
    listing: session.listing === null ? null : listingSummary(session.listing),
    metadataLocation: session.metadata?.location ?? null,
    rows: session.metadata?.value.records.length ?? 0,
    match: session.match?.report ?? null,
    matched: session.match?.report.matched ?? 0,
    cache: session.cache,
    restored: session.restored,
    errors,
  };
}

/**
 * Which of the newly found metadata files to use: the one named like HAM10000's metadata if any (Kaggle's zip
 * also holds hmnist_*.csv, already ignored by the listing), else the last one dropped.
 */
function pickMetadata(sources: readonly MetadataSource[]): MetadataSource | null {
  if (sources.length === 0) return null;
  return sources.find((s) => /metadata/i.test(s.name)) ?? (sources[sources.length - 1] as MetadataSource);
}

interface AddOptions {
  /** Progress of the command so far (a download's stage stays on show while the file is listed). */
  progress?: Progress;
  /** The file came from this URL: opened as a zip whatever its name, and replacing what the URL added before. */
  url?: string;
}

async function addFiles(
  files: File[],
  signal: AbortSignal,
  options: AddOptions = {},
): Promise<DatasetSnapshot> {
  const errors: IngestError[] = [];
  const fail = (error: unknown) => {
    const detail = toIngestError(error);
    errors.push(detail);
    reportError(detail);
  };
  const progress = options.progress ?? new Progress();
  const isZip = (f: File) => options.url !== undefined || fileKind(f.name) === 'zip';
  const zips = files.filter(isZip);
  const loose = files.filter((f) => !isZip(f));

  // Listing: counts entries; a zip's total is known once zip.js has read its directory's end record.
  const listing = progress.start('listing', null);
  const zipTotals = new Map<File, number>();
  let entriesDone = loose.length;
  const totalKnown = () =>
    zipTotals.size === zips.length ? loose.length + [...zipTotals.values()].reduce((a, b) => a + b, 0) : null;
  const newListings: Listing[] = [];
  if (loose.length > 0) newListings.push(listLooseFiles(loose));
  for (const zip of zips) {
    signal.throwIfAborted();
    const before = entriesDone;
    try {
      const listed = await listZip(zip, zip.name, {
        signal,
        onProgress: (read, total) => {
          zipTotals.set(zip, total);
          entriesDone = before + read;
          progress.update(listing, entriesDone, totalKnown());
        },
      });
      newListings.push(listed);
    } catch (error) {
      if (isAbort(error) || signal.aborted) throw new Cancelled();
      fail(error);
    } finally {
      if (!zipTotals.has(zip)) zipTotals.set(zip, entriesDone - before);
    }
  }
  progress.update(listing, entriesDone, totalKnown());
  progress.finish(listing);

  if (newListings.length > 0) {
    const added = files.map((f): DroppedFileInfo => ({
      name: f.name,
      size: f.size,
      lastModified: f.lastModified,
      kind: isZip(f) ? 'zip' : fileKind(f.name),
      ...(options.url !== undefined ? { url: options.url } : {}),
    }));
    if (options.url !== undefined) {
      const earlier = session.fromUrls.get(options.url);
      if (earlier !== undefined) {
        session.listings = session.listings.filter((l) => l !== earlier.listing);
        session.files = session.files.filter((f) => f !== earlier.file);
      }
      session.fromUrls.set(options.url, {
        listing: newListings[0] as Listing,
        file: added[0] as DroppedFileInfo,
      });
    }
    session.files = [...session.files, ...added];
    session.listings.push(...newListings);
    session.listing = mergeListings(session.listings);
    post({ type: 'files', files: session.files, listing: listingSummary(session.listing) });
  }

  // Metadata: the newest file wins; a bad one is reported and the previous metadata stays in use.
  const source = pickMetadata(newListings.flatMap((l) => l.metadata));
  if (source !== null) {
    try {
      const text = await source.readText(signal);
      signal.throwIfAborted();
      const metadata = parseMetadata(text, source.name);
      session.metadata = { value: metadata, location: source.location };
      session.restored = false;
      post({
        type: 'metadata',
        metadata,
        location: source.location,
        summary: summarizeMetadata(metadata),
        restored: false,
      });
    } catch (error) {
      if (isAbort(error) || signal.aborted) throw new Cancelled();
      fail(error);
    }
  }

  rematch();
  return snapshot(errors);
}

/** Downloads the zip at `url` into OPFS (resuming a partial download), then adds it like a dropped file. */
async function openUrl(url: string, signal: AbortSignal): Promise<DatasetSnapshot> {
  const progress = new Progress();
  const meter = progress.start('downloading', null);
  const { file } = await downloadToOpfs(
    url,
    scope.location.origin,
    {
      progress: (done, total, jumped) =>
        jumped ? progress.rebase(meter, done, total) : progress.update(meter, done, total),
      notice: (text, kind) => post({ type: 'notice', kind, text }),
    },
    signal,
  );
  progress.finish(meter);
  return addFiles([file], signal, { progress, url });
}

/** Matches the current metadata against the current images, if both exist, and tells the UI. */
function rematch(): void {
  if (session.metadata === null || session.listing === null || session.listing.images.length === 0) {
    session.match = null;
    return;
  }
  session.match = matchImages(session.metadata.value.records, session.listing);
  post({
    type: 'match',
    report: session.match.report,
    description: describeMatch(session.match.report),
    restored: false,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// start-caching

function summaryOf(listing: CacheListing, timings?: CacheTimings): CacheSummary {
  const { index, bytes } = listing;
  return {
    size: index.size,
    count: index.count,
    bytes,
    createdAt: index.createdAt,
    metadataFile: index.metadata.fileName,
    sources: index.sources,
    ...(timings !== undefined ? { timings } : {}),
  };
}

/** How often (ms) the journal of the cache being written is brought up to date. */
const JOURNAL_INTERVAL_MS = 1000;

/** Concurrent File reads: two, so that one range is read while the previous one is extracted. */
const READ_LANES = 2;

/** Read-ahead bound: images read but not yet written. Enough to hide read latency, small enough for memory. */
function windowFor(decoders: number, perDecoder: number): number {
  return decoders * perDecoder + READ_LANES + 2;
}

async function startCaching(
  size: ImageSize,
  ports: MessagePort[],
  signal: AbortSignal,
): Promise<CacheSummary> {
  if (!isImageSize(size))
    throw new IngestProblem({ code: 'internal', message: `Unsupported image size ${String(size)}.` });
  const metadata = session.metadata;
  const match = session.match;
  if (metadata === null) {
    throw new IngestProblem({
      code: 'no-data',
      message: 'Drop the metadata file (HAM10000_metadata.csv) first.',
    });
  }
  if (match === null || match.matched.length === 0) {
    const message = session.restored
      ? 'The images of the restored dataset are only in the cache: drop the archive again to cache another size.'
      : 'No image matches a metadata row yet: drop the images (zip or folder) as well.';
    throw new IngestProblem({ code: 'no-data', message });
  }
  if (ports.length === 0)
    throw new IngestProblem({ code: 'internal', message: 'No decode workers were given.' });

  const started = performance.now();
  const items = match.matched;
  const n = items.length;
  const sources = session.files.map(({ name, size: bytes, lastModified, url }) => ({
    name,
    size: bytes,
    lastModified,
    ...(url !== undefined ? { url } : {}),
  }));
  // An interrupted run of the same images at this size (closed tab, crash, storage full) is continued: the images
  // its journal names are on disk and are not read again.
  const plan = planKey(
    size,
    items.map((it) => it.record.imageId),
  );
  let writer: CacheWriter;
  let done: SlotSet;
  try {
    const earlier = await readPartialCache(size);
    const matches = earlier !== null && earlier.journal.plan === plan && earlier.journal.count === n;
    writer = await CacheWriter.create(size, n, { continuePartial: matches });
    done = writer.continued && earlier ? earlier.done : new SlotSet(n);
  } catch (error) {
    for (const port of ports) port.close();
    throw error;
  }
  const reused = done.count;
  const urls = [...session.fromUrls.keys()];
  /** Flushes the pixels, then names the slots written in the journal; at most one write at a time. */
  let journaling: Promise<void> | null = null;
  let journaledAt = performance.now();
  const journal = (): Promise<void> => {
    if (journaling) return journaling;
    writer.flush();
    const entry = buildJournal({ size, plan, done, sources, urls, now: new Date() });
    journaledAt = performance.now();
    journaling = writer
      .writeJournal(entry)
      // A journal that cannot be written costs only the ability to continue; the cache itself goes on.
      .catch(() => undefined)
      .finally(() => {
        journaling = null;
      });
    return journaling;
  };
  if (!writer.continued) await journal();
  const pool = new DecodePool(ports);
  const onAbort = () => pool.close(new Cancelled());
  signal.addEventListener('abort', onAbort);
  const progress = new Progress();
  const reading = progress.start('reading', n);
  const decoding = progress.start('decoding', n);
  const caching = progress.start('caching', n);
  if (reused > 0) for (const meter of [reading, decoding, caching]) progress.rebase(meter, reused, n);

  let readSeconds = 0;
  let readsOutstanding = 0;
  let readingSince = 0;
  let writeSeconds = 0;
  let firstDecodeAt = 0;
  let lastDecodedAt = 0;
  let read = reused;
  let decoded = reused;
  let written = reused;
  const failed: Array<{ slot: number; error: IngestError }> = [];
  let fatal: unknown = null;

  // The window: a place is taken before reading an image and given back once its pixels are written (or it
  // failed), so at most `windowSize` encoded or decoded images are in memory whatever the speeds.
  const windowSize = windowFor(pool.decoders, pool.perDecoder);
  let free = windowSize;
  const waiters: Array<() => void> = [];
  const release = () => {
    free++;
    waiters.shift()?.();
  };
  const wakeAll = () => {
    for (const wake of waiters.splice(0)) wake();
  };
  const acquire = async () => {
    while (free === 0 && fatal === null && !signal.aborted) await new Promise<void>((r) => waiters.push(r));
    free--;
  };
  signal.addEventListener('abort', wakeAll);
  const inFlight = new Set<Promise<void>>();

  // Read in archive order (the listing's), so a 5 GB zip is read front to back; each image still goes to the
  // slot of its metadata row.
  const position = new Map((session.listing?.images ?? []).map((image, i) => [image, i]));
  const readOrder = items
    .map((_, slot) => slot)
    .filter((slot) => !done.has(slot))
    .sort((a, b) => (position.get(items[a]!.image) ?? a) - (position.get(items[b]!.image) ?? b));

  const decodeAndWrite = (slot: number, bytes: Uint8Array, location: string) => {
    if (firstDecodeAt === 0) firstDecodeAt = performance.now();
    const task = pool
      .decode(bytes, size)
      .then(
        (rgb) => {
          lastDecodedAt = performance.now();
          progress.update(decoding, ++decoded);
          const w0 = performance.now();
          writer.writeImage(slot, rgb);
          // Written (synchronously): the buffer goes back to carry a later image's pixels.
          pool.recycle(rgb);
          done.add(slot);
          writeSeconds += (performance.now() - w0) / 1000;
          progress.update(caching, ++written);
          if (performance.now() - journaledAt > JOURNAL_INTERVAL_MS) void journal();
        },
        (error: unknown) => {
          if (!(error instanceof DecodeError)) throw error;
          failed.push({
            slot,
            error: { code: 'image', message: `${location}: ${error.message}`, fileName: location },
          });
          progress.update(decoding, ++decoded);
        },
      )
      .catch((error: unknown) => {
        if (fatal === null) fatal = error;
        wakeAll();
      })
      .finally(() => {
        inFlight.delete(task);
        release();
      });
    inFlight.add(task);
  };

  const stopped = () => signal.aborted || fatal !== null;
  /** Time spent reading counts once however many lanes read at the same time. */
  const timedRead = async <R>(work: () => Promise<R>): Promise<R> => {
    if (readsOutstanding++ === 0) readingSince = performance.now();
    try {
      return await work();
    } finally {
      if (--readsOutstanding === 0) readSeconds += (performance.now() - readingSince) / 1000;
    }
  };
  // One unreadable entry (a damaged download) should not cost the other 10,000 images.
  const readFailed = (slot: number, error: unknown) => {
    const { image } = items[slot] as (typeof items)[number];
    failed.push({ slot, error: { ...toIngestError(error), fileName: image.location } });
  };
  /** Reads one image into a window place; false when the job stops. */
  const readInto = async (slot: number, fetchBytes: () => Promise<Uint8Array>): Promise<boolean> => {
    await acquire();
    if (stopped()) {
      release();
      return false;
    }
    let bytes: Uint8Array;
    try {
      bytes = await timedRead(fetchBytes);
    } catch (error) {
      release();
      if (signal.aborted || isAbort(error)) return false;
      readFailed(slot, error);
      return true;
    }
    progress.update(reading, ++read);
    decodeAndWrite(slot, bytes, (items[slot] as (typeof items)[number]).image.location);
    return true;
  };

  // Neighbouring zip entries come in one File read of up to 32 MB (zip-span.ts): per-entry reads cost as much
  // CPU as decoding on a small machine. Loose files and odd entries are read one by one.
  const steps = planReads(readOrder, (slot) => (items[slot] as (typeof items)[number]).image.span);
  let nextStep = 0;

  /** One of READ_LANES: while one lane extracts a range, the next range is already being read. */
  const readerLane = async (): Promise<void> => {
    while (!stopped() && nextStep < steps.length) {
      const step = steps[nextStep++] as (typeof steps)[number];
      if (step.kind === 'single') {
        const { image } = items[step.item] as (typeof items)[number];
        if (!(await readInto(step.item, () => image.read(signal)))) return;
        continue;
      }
      const { range } = step;
      let chunk: Uint8Array;
      try {
        chunk = await timedRead(() => readRange(range.blob, range.start, range.end, signal));
      } catch (error) {
        if (signal.aborted || isAbort(error)) return;
        for (const { item, span } of range.members)
          readFailed(item, entryError(span, errorMessage(error), error));
        continue;
      }
      for (const { item, span } of range.members) {
        if (!(await readInto(item, async () => extractEntry(chunk, range.start, span)))) return;
      }
    }
  };

  try {
    await Promise.all(
      Array.from({ length: READ_LANES }, () =>
        readerLane().catch((error: unknown) => {
          if (fatal === null) fatal = error;
          wakeAll();
        }),
      ),
    );
    await Promise.all([...inFlight]);
    if (signal.aborted) throw new Cancelled();
    if (fatal !== null) throw fatal;
    progress.finish(reading);
    progress.finish(decoding);

    // Images that failed leave holes: fill each with one of the last good images, so the file stays dense.
    const slots = Array.from({ length: n }, (_, i) => i);
    const bad = new Set(failed.map((f) => f.slot));
    let end = n;
    for (const hole of [...bad].sort((a, b) => a - b)) {
      while (end > hole && bad.has(end - 1)) end--;
      if (end - 1 <= hole) {
        end = hole;
        break;
      }
      writer.moveImage(end - 1, hole);
      slots[hole] = end - 1;
      end--;
    }
    const order = slots.slice(0, n - bad.size);
    for (const f of failed) reportError(f.error);
    if (order.length === 0) {
      throw new IngestProblem({
        code: 'image',
        message: `None of the ${n} matched images could be read and decoded.`,
      });
    }

    const w0 = performance.now();
    const index: CacheIndex = buildCacheIndex({
      size,
      metadata: metadata.value,
      match: match.report,
      records: order.map((i) => (items[i] as (typeof items)[number]).record),
      sources,
      createdAt: new Date(),
    });
    await journaling;
    await writer.commit(index);
    writeSeconds += (performance.now() - w0) / 1000;
    progress.finish(caching);
    const timings: CacheTimings = {
      totalSeconds: (performance.now() - started) / 1000,
      readSeconds,
      decodeSeconds: Math.max(0, lastDecodedAt - firstDecodeAt) / 1000,
      writeSeconds,
      decoders: pool.decoders,
      reused,
    };
    session.cache = summaryOf({ index, bytes: index.count * bytesPerImage(size) }, timings);
    post({ type: 'cache', cache: session.cache });
    return session.cache;
  } catch (error) {
    pool.close(error);
    await Promise.allSettled([...inFlight]);
    if (signal.aborted) {
      await writer.abort().catch(() => {});
      throw new Cancelled();
    }
    // A failure (storage full, a worker lost) keeps what was written, for Continue after it is dealt with.
    await journaling;
    if (done.count > 0) {
      await journal();
      writer.keepForLater();
    } else {
      await writer.abort().catch(() => {});
    }
    if (error instanceof QuotaError || isQuotaExceeded(error)) {
      throw new QuotaError(
        error instanceof QuotaError ? error.neededBytes : cacheBytesNeeded(size, n),
        await availableBytes(),
        true,
        `; ${done.count.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} images are cached and kept, ` +
          'and Continue (on the next visit too) decodes only the rest',
      );
    }
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    pool.close(new Cancelled());
    for (const port of ports) port.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// restore, forget, samples

async function restore(size: ImageSize | undefined): Promise<DatasetSnapshot | null> {
  const caches = await listCaches();
  const chosen = size === undefined ? caches[0] : caches.find((c) => c.index.size === size);
  if (chosen === undefined) return null;
  const { index } = chosen;
  session.files = [];
  session.listings = [];
  session.fromUrls.clear();
  session.listing = null;
  session.metadata = { value: index.metadata, location: index.metadata.fileName };
  session.match = null;
  session.restored = true;
  session.cache = summaryOf(chosen);
  post({
    type: 'metadata',
    metadata: index.metadata,
    location: index.metadata.fileName,
    summary: summarizeMetadata(index.metadata),
    restored: true,
  });
  post({ type: 'match', report: index.match, description: describeMatch(index.match), restored: true });
  post({ type: 'cache', cache: session.cache });
  return { ...snapshot(), match: index.match, matched: index.count };
}

function clearSession(): void {
  session.files = [];
  session.listings = [];
  session.listing = null;
  session.metadata = null;
  session.match = null;
  session.restored = false;
  session.cache = null;
  session.fromUrls.clear();
}

async function samples(
  perClass: number,
  size: ImageSize | undefined,
): Promise<{ samples: Sample[]; transfer: ArrayBuffer[] }> {
  const cache = await openImageCache(size ?? session.cache?.size);
  try {
    const byClass = new Map<string, number[]>();
    cache.index.entries.forEach((entry, i) => {
      const list = byClass.get(entry.dx) ?? [];
      list.push(i);
      byClass.set(entry.dx, list);
    });
    const picked: number[] = [];
    for (const list of byClass.values()) {
      const k = Math.min(perClass, list.length);
      // Spread over the class rather than its first rows, which often come from the same few lesions.
      for (let j = 0; j < k; j++) picked.push(list[Math.floor((j * list.length) / k)] as number);
    }
    picked.sort((a, b) => a - b);
    const rgb = await cache.readImages(picked);
    const s = cache.size;
    const out: Sample[] = picked.map((i, j) => {
      const entry = cache.index.entries[i] as CacheIndex['entries'][number];
      const rgba = new Uint8ClampedArray(s * s * 4);
      const base = j * cache.bytesPerImage;
      for (let p = 0, q = 0; q < rgba.length; p += 3, q += 4) {
        rgba[q] = rgb[base + p] as number;
        rgba[q + 1] = rgb[base + p + 1] as number;
        rgba[q + 2] = rgb[base + p + 2] as number;
        rgba[q + 3] = 255;
      }
      return { imageId: entry.imageId, dx: entry.dx, lesionId: entry.lesionId, width: s, height: s, rgba };
    });
    return { samples: out, transfer: out.map((x) => x.rgba.buffer) };
  } finally {
    cache.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Dispatch

const EXCLUSIVE: ReadonlySet<IngestCommandType> = new Set([
  'add-files',
  'open-url',
  'start-caching',
  'restore',
  'forget',
  'clear-files',
  'discard-partial',
]);

const BUSY_WITH: Partial<Record<IngestCommandType, string>> = {
  'start-caching': 'caching images',
  'add-files': 'reading the files',
  'open-url': 'a download',
};

async function run(command: IngestCommand): Promise<void> {
  const { id, type } = command;
  if (type === 'cancel') {
    const current = job;
    if (current !== null) current.controller.abort(new Cancelled());
    reply(id, 'cancel', { cancelled: current !== null });
    return;
  }
  if (EXCLUSIVE.has(type) && job !== null) {
    if (type === 'start-caching') for (const port of command.decoders) port.close();
    const error: IngestError = {
      code: 'busy',
      message: `Busy with ${BUSY_WITH[job.kind] ?? job.kind}: wait for it or cancel it first.`,
    };
    post({ type: 'reply', id, command: type, ok: false, error });
    return;
  }
  const controller = new AbortController();
  if (EXCLUSIVE.has(type)) job = { kind: type, controller };
  try {
    switch (type) {
      case 'add-files':
        reply(id, type, await addFiles(command.files, controller.signal));
        break;
      case 'open-url':
        reply(id, type, await openUrl(command.url, controller.signal));
        break;
      case 'start-caching':
        reply(id, type, await startCaching(command.size, command.decoders, controller.signal));
        break;
      case 'restore':
        reply(id, type, await restore(command.size));
        break;
      case 'forget': {
        const removed = await forgetCaches();
        await forgetDownloads();
        clearSession();
        post({ type: 'cache', cache: null });
        reply(id, type, { removed });
        break;
      }
      case 'clear-files':
        clearSession();
        session.cache = (await listCaches()).map((c) => summaryOf(c))[0] ?? null;
        reply(id, type, snapshot());
        break;
      case 'list-caches':
        reply(
          id,
          type,
          (await listCaches()).map((c) => summaryOf(c)),
        );
        break;
      case 'samples': {
        const result = await samples(command.perClass, command.size);
        reply(id, type, result.samples, result.transfer);
        break;
      }
      case 'interrupted':
        reply(
          id,
          type,
          (await listPartialCaches())
            .filter(({ done }) => done.count > 0)
            .map(({ journal, done }) => ({
              size: journal.size,
              done: done.count,
              total: journal.count,
              sources: journal.sources,
              urls: journal.urls,
              updatedAt: journal.updatedAt,
            })),
        );
        break;
      case 'discard-partial':
        await discardPartialCache(command.size);
        reply(id, type, { discarded: true });
        break;
    }
  } catch (error) {
    const detail = toIngestError(error);
    if (detail.code === 'cancelled') post({ type: 'cancelled', during: type });
    else reportError(detail);
    post({ type: 'reply', id, command: type, ok: false, error: detail });
  } finally {
    if (job?.controller === controller) job = null;
  }
}

scope.addEventListener('message', (event: MessageEvent<IngestCommand>) => {
  void run(event.data).catch((error: unknown) => {
    // run() answers every command itself; this only guards against a bug there taking the worker down.
    reportError({ code: 'internal', message: `Unexpected problem: ${errorMessage(error)}` });
  });
});
