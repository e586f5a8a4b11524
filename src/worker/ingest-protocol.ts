/**
 * Messages between the UI thread (IngestClient, src/worker/ingest-client.ts) and the ingest worker
 * (src/worker/ingest.worker.ts), and between the ingest worker and the decode workers (decode.worker.ts).
 *
 * Commands go in with a numeric `id`; every command is answered by exactly one `reply` with the same id, after
 * any events it caused. Events (`progress`, `files`, `metadata`, `match`, `cache`, `error`, `cancelled`, `notice`) can come
 * at any time and are what the UI renders from. Everything is structured-clonable; Files travel as handles (no
 * bytes are copied), pixel buffers are transferred.
 */
import type { CacheSource } from '../lib/data/cache-index.ts';
import type { StageProgress } from '../lib/data/progress.ts';
import type { ImageSize, MatchReport, Metadata } from '../lib/data/types.ts';
import type { Dx } from '../lib/data/dx.ts';
import type { EdaSummary } from '../lib/eda/types.ts';

// ---------------------------------------------------------------------------------------------------------------
// UI → ingest worker

export type IngestCommand =
  /** Lists the files (zips with random access, loose images, metadata), parses the newest metadata, matches. */
  | { type: 'add-files'; id: number; files: File[] }
  /**
   * Downloads the zip at `url` (absolute, same origin) into OPFS, resuming a partial download of the same URL,
   * then adds it like a dropped file. Progress comes as the `downloading` stage, then the listing.
   */
  | { type: 'open-url'; id: number; url: string }
  /**
   * Decodes every matched image into the OPFS cache at `size`. `decoders` are MessagePorts wired to decode
   * workers the client owns (the client terminates them on cancel, which is what really stops decoding).
   */
  | { type: 'start-caching'; id: number; size: ImageSize; decoders: MessagePort[] }
  /** Stops whatever runs (listing, reading, caching): aborts reads, closes handles, drops the partial file. */
  | { type: 'cancel'; id: number }
  /** Loads the newest complete cache (or the one at `size`) and its metadata, EDA and match report. */
  | { type: 'restore'; id: number; size?: ImageSize }
  /** Deletes every cache (all sizes) and forgets the session's files. */
  | { type: 'forget'; id: number }
  /** Forgets the dropped files and parsed metadata of this session; the cache on disk stays. */
  | { type: 'clear-files'; id: number }
  /** The complete caches on disk. */
  | { type: 'list-caches'; id: number }
  /** Up to `perClass` cached images per class, spread over the cache, as RGBA for an ImageData. */
  | { type: 'samples'; id: number; perClass: number; size?: ImageSize }
  /** Caches whose writing was cut short and can be continued. */
  | { type: 'interrupted'; id: number }
  /** Deletes the partial cache of `size` and its journal. */
  | { type: 'discard-partial'; id: number; size: ImageSize };

export type IngestCommandType = IngestCommand['type'];

/** What each command's reply carries on success. */
export interface IngestReplies {
  'add-files': DatasetSnapshot;
  'open-url': DatasetSnapshot;
  'start-caching': CacheSummary;
  cancel: { cancelled: boolean };
  restore: DatasetSnapshot | null;
  forget: { removed: ImageSize[] };
  'clear-files': DatasetSnapshot;
  'list-caches': CacheSummary[];
  samples: Sample[];
  interrupted: InterruptedCache[];
  'discard-partial': { discarded: true };
}

// ---------------------------------------------------------------------------------------------------------------
// ingest worker → UI

/** A failure the user must see, with enough detail to act on it. */
export interface IngestError {
  code:
    | 'metadata' // a bad CSV/TAB: fileName, line, column
    | 'archive' // an unreadable zip or entry: fileName, entry
    | 'image' // an image that cannot be decoded: fileName (the entry's location)
    | 'download' // a URL that could not be downloaded: url, and status for an HTTP error
    | 'quota' // not enough storage: neededMB, availableMB
    | 'storage' // OPFS unavailable or a cache file in use elsewhere
    | 'no-data' // nothing to cache yet: no metadata, or no matched image
    | 'busy' // a command that cannot run while caching is under way
    | 'cancelled'
    | 'internal';
  message: string;
  fileName?: string;
  line?: number;
  column?: string;
  entry?: string;
  url?: string;
  status?: number;
  neededMB?: number;
  availableMB?: number;
}

export interface DroppedFileInfo {
  name: string;
  size: number;
  lastModified: number;
  kind: 'zip' | 'metadata' | 'image' | 'other';
  /** The same-origin URL the file was opened from (the sample, a pack); absent for a dropped file. */
  url?: string;
}

export interface ListingSummary {
  /** Every file entry seen, across all dropped containers. */
  entries: number;
  /** Distinct image_ids found. */
  images: number;
  /** Copies skipped because their image_id was already listed. */
  duplicates: number;
  /** Metadata files found, by location; the one used is DatasetSnapshot.metadataLocation. */
  metadataFiles: string[];
  /** Entries not used, with the reason when there is one (first 50). */
  ignored: string[];
  ignoredCount: number;
}

export interface CacheSummary {
  size: ImageSize;
  count: number;
  bytes: number;
  createdAt: string;
  metadataFile: string;
  sources: CacheSource[];
  /** Seconds per stage of the run that built it (absent for a restored cache). */
  timings?: CacheTimings;
}

export interface CacheTimings {
  /** From the start of caching to the index being written. */
  totalSeconds: number;
  /** Time the reader spent waiting for bytes (reads overlap decoding, so stages overlap in wall time). */
  readSeconds: number;
  /** Wall time from the first decode sent to the last decoded. */
  decodeSeconds: number;
  /** Time spent writing pixels and the index. */
  writeSeconds: number;
  decoders: number;
  /** Images an interrupted run had cached already, taken up without reading them again (0: none). */
  reused: number;
}

/** A cache whose writing was cut short (closed tab, crash, storage full), as the page offers to continue it. */
export interface InterruptedCache {
  size: ImageSize;
  /** Images written, of `total`. */
  done: number;
  total: number;
  /** The files it was being made from (names, for "drop them again"). */
  sources: CacheSource[];
  /** Same-origin URLs they were opened from (the sample, a pack): Continue opens them again by itself. */
  urls: string[];
  updatedAt: string;
}

/** The session as the UI should show it after a command. Metadata and summary come as separate events. */
export interface DatasetSnapshot {
  files: DroppedFileInfo[];
  listing: ListingSummary | null;
  /** Location of the metadata file in use ("x.zip:HAM10000_metadata.csv" or "HAM10000_metadata.csv"). */
  metadataLocation: string | null;
  rows: number;
  match: MatchReport | null;
  /** Training uses only these. */
  matched: number;
  cache: CacheSummary | null;
  restored: boolean;
  /** Errors of this command (e.g. one bad file among good ones); also sent as `error` events. */
  errors: IngestError[];
}

export interface Sample {
  imageId: string;
  dx: Dx;
  lesionId: string | null;
  width: number;
  height: number;
  /** RGBA, ready for `new ImageData(rgba, width, height)`. */
  rgba: Uint8ClampedArray<ArrayBuffer>;
}

export type IngestEvent =
  /** Throttled to ≤ 10 a second; `stages` holds every stage started in the current run. */
  | { type: 'progress'; stages: StageProgress[] }
  | { type: 'files'; files: DroppedFileInfo[]; listing: ListingSummary }
  /** The parsed metadata (all records), its EDA summary and plain-language warnings. */
  | { type: 'metadata'; metadata: Metadata; location: string; summary: EdaSummary; restored: boolean }
  | { type: 'match'; report: MatchReport; description: string; restored: boolean }
  /** The cache now on disk for the current size (null after forget). */
  | { type: 'cache'; cache: CacheSummary | null }
  | { type: 'cancelled'; during: string }
  /** News that is not a failure: a download resumed, retried, restarted because the file changed, or offline. */
  | { type: 'notice'; kind: 'info' | 'warn'; text: string }
  | { type: 'error'; error: IngestError };

export type IngestReply =
  | {
      [K in IngestCommandType]: { type: 'reply'; id: number; command: K; ok: true; value: IngestReplies[K] };
    }[IngestCommandType]
  | { type: 'reply'; id: number; command: IngestCommandType; ok: false; error: IngestError };

export type IngestMessage = IngestEvent | IngestReply;

// ---------------------------------------------------------------------------------------------------------------
// ingest worker ↔ decode worker (over a MessagePort)

export interface DecodeRequest {
  type: 'decode';
  id: number;
  /** The encoded image (transferred). */
  bytes: ArrayBuffer;
  size: ImageSize;
  /**
   * A buffer of size·size·3 bytes for the answer (transferred): pixels an earlier answer brought, which their
   * receiver is done with (DecodePool.recycle). Filling it instead of a new buffer saves the first touch of
   * 150 kB of fresh memory per image, page faults that cost about a millisecond on some VMs. Optional; a decoder
   * that cannot use it (another length, the bitmap way) answers in a new buffer.
   */
  into?: ArrayBuffer;
}

export type DecodeResponse =
  /** `pixels` is size·size·3 RGB bytes (transferred). */
  | { type: 'decoded'; id: number; pixels: ArrayBuffer }
  | { type: 'decode-failed'; id: number; message: string };
