import {
  BlobReader,
  Uint8ArrayWriter,
  ZipReader,
  type FileEntry,
  type ZipReaderConstructorOptions,
} from '@zip.js/zip.js';
import { ListingBuilder, baseName, classifyPath, decodeText, errorMessage } from './listing.ts';
import type { Listing } from './types.ts';
import { ArchiveError } from './archive-error.ts';
import { readSpan, type ZipSpan } from './zip-span.ts';

export { ArchiveError };

export interface ListZipOptions {
  signal?: AbortSignal;
  /** Called as the central directory is read, for a progress bar: entries read so far of the total. */
  onProgress?: (entriesRead: number, totalEntries: number) => void;
}

const READER_OPTIONS: ZipReaderConstructorOptions = {
  // We already run inside our own ingest worker; zip.js's workers would need extra script URLs under our CSP
  // and do not exist in Node. Inflating in place keeps one code path for the browser worker and Node.
  useWebWorkers: false,
  // Entries are read into memory and never extracted to disk, so odd names ("../x", "C:/x") are harmless and
  // must not make the whole dataset unreadable.
  filenameValidation: 'tolerant',
};

/**
 * Lists a zip (Kaggle's skin-cancer-mnist-ham10000.zip, Dataverse's part zips, or any zip of JPEGs + CSV) without
 * reading it whole: zip.js reads the central directory from the end of the Blob, and each ImageSource.read()
 * later reads just its entry (random access, Zip64 aware), so a 5 GB File costs a few MB here.
 * `name` is the file name shown to the user, e.g. File.name.
 */
export async function listZip(file: Blob, name: string, options: ListZipOptions = {}): Promise<Listing> {
  const { signal, onProgress } = options;
  signal?.throwIfAborted();
  const reader = new ZipReader(new BlobReader(file), READER_OPTIONS);
  const builder = new ListingBuilder();
  const starts: number[] = [];
  const spans: ZipSpan[] = [];
  let encrypted = 0;
  let usable = 0;
  let listed = 0;
  try {
    const entries = reader.getEntriesGenerator({
      onprogress: onProgress && ((progress, total) => onProgress(progress, total)),
    });
    for await (const entry of entries) {
      signal?.throwIfAborted();
      listed++;
      starts.push(entry.offset);
      if (entry.directory) continue;
      const kind = classifyPath(entry.filename).kind;
      if (entry.encrypted && (kind === 'image' || kind === 'metadata')) {
        // One message for the archive (below), not one failed read per image later.
        builder.countEntry();
        builder.addIgnored(`${name}:${entry.filename}`, 'encrypted: this app asks for no password');
        encrypted++;
        continue;
      }
      if (kind === 'image' || kind === 'metadata') usable++;
      const span = spanOf(entry, file, name);
      if (span !== undefined) spans.push(span);
      addEntry(builder, entry, name, span);
    }
    closeSpans(spans, starts, Math.min(file.size, reader.directoryOffset ?? file.size));
  } catch (cause) {
    if (signal?.aborted) throw signal.reason;
    throw new ArchiveError(
      `${name} isn't a readable zip file (${errorMessage(cause)}). ` +
        'It may be incomplete, e.g. an interrupted download, or not a zip at all.',
      name,
      undefined,
      { cause },
    );
  } finally {
    // Releases nothing held for a Blob today, but keeps the reader's contract if the input type ever changes.
    await reader.close();
  }
  if (listed === 0) {
    // zip.js finds no directory record to list (a zip cut before its central directory reads this way too).
    throw new ArchiveError(
      `${name} lists no files: its central directory (the table of contents at the end of a zip) is missing or ` +
        'empty. It may be incomplete, e.g. an interrupted download: download it again.',
      name,
    );
  }
  if (encrypted > 0 && usable === 0) {
    throw new ArchiveError(
      `${name} is encrypted (${encrypted.toLocaleString('en-US')} of its images and data files need a password). ` +
        'This app asks for no password: extract the zip with its password, then drop the folder or a new zip.',
      name,
    );
  }
  return builder.build();
}

/** The byte range of an entry we can read ourselves (see zip-span.ts); its end is set by closeSpans. */
function spanOf(entry: FileEntry, blob: Blob, zipName: string): ZipSpan | undefined {
  const method = entry.compressionMethod;
  if (entry.encrypted || entry.diskNumberStart !== 0 || (method !== 0 && method !== 8)) return undefined;
  if (entry.crc32 === undefined) return undefined;
  return {
    blob,
    zipName,
    entry: entry.filename,
    start: entry.offset,
    end: blob.size,
    method,
    compressedSize: entry.compressedSize,
    uncompressedSize: entry.uncompressedSize,
    crc32: entry.crc32,
  };
}

/** Each span ends where the next local header (of any entry) or the central directory starts. */
function closeSpans(spans: ZipSpan[], starts: number[], directoryStart: number): void {
  const sorted = Float64Array.from(starts).sort();
  for (const span of spans) {
    // First start strictly greater than this entry's.
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((sorted[mid] as number) <= span.start) lo = mid + 1;
      else hi = mid;
    }
    span.end = Math.min(lo < sorted.length ? (sorted[lo] as number) : directoryStart, directoryStart);
    if (span.end <= span.start) span.end = directoryStart > span.start ? directoryStart : span.blob.size;
  }
}

function addEntry(builder: ListingBuilder, entry: FileEntry, zipName: string, span?: ZipSpan): void {
  const path = entry.filename;
  const location = `${zipName}:${path}`;
  builder.countEntry();
  const kind = classifyPath(path);
  const refusal = kind.kind === 'image' || kind.kind === 'metadata' ? oversized(entry, kind.kind) : null;
  if (refusal !== null) {
    builder.addIgnored(location, refusal);
    return;
  }
  switch (kind.kind) {
    case 'image':
      builder.addImage(
        {
          imageId: kind.imageId,
          location,
          size: entry.compressedSize,
          read: (signal) => readEntry(entry, zipName, span, signal),
          ...(span !== undefined ? { span } : {}),
        },
        path,
      );
      break;
    case 'metadata':
      builder.addMetadata({
        location,
        name: baseName(path),
        readText: async (signal) => decodeText(await readEntry(entry, zipName, span, signal)),
      });
      break;
    case 'archive':
      builder.addIgnored(location, 'a zip inside a zip is not opened: extract it and drop its contents');
      break;
    case 'ignored':
      builder.addIgnored(location, kind.reason);
      break;
  }
}

/** No HAM10000 image comes near this (the originals are 0.3 MB; a 12000×9000 photo is about 30 MB). */
export const MAX_IMAGE_BYTES = 50 * 1024 * 1024;
/** The real metadata CSV is 0.56 MB. */
export const MAX_METADATA_BYTES = 64 * 1024 * 1024;
/** JPEG and PNG data hardly deflate (HAM10000's JPEGs: about 1.05:1); a far higher ratio is a zip bomb. */
export const MAX_IMAGE_RATIO = 100;

const mb = (bytes: number): string =>
  bytes < 1e6
    ? `${(bytes / 1e3).toLocaleString('en-US', { maximumFractionDigits: 1 })} kB`
    : `${(bytes / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1 })} MB`;

/**
 * Why an entry is not read at all, judged from the central directory before a byte is inflated: one entry that
 * inflates to gigabytes would take the tab's memory and block every other image. Reading checks again (zip-span
 * inflates into a buffer of the announced size, so an entry that lies about its size cannot grow past it).
 */
function oversized(entry: FileEntry, kind: 'image' | 'metadata'): string | null {
  const size = entry.uncompressedSize;
  const max = kind === 'image' ? MAX_IMAGE_BYTES : MAX_METADATA_BYTES;
  if (size > max) {
    return `it would inflate to ${mb(size)}, more than the ${mb(max)} any ${kind === 'image' ? 'image' : 'metadata file'} here needs, so it is not read (a damaged or malicious archive?)`;
  }
  if (kind === 'image' && entry.compressedSize > 0 && size / entry.compressedSize > MAX_IMAGE_RATIO) {
    return `it would inflate ${Math.round(size / entry.compressedSize).toLocaleString('en-US')} times (${mb(entry.compressedSize)} to ${mb(size)}); no image compresses like that, so it is not read (a zip bomb?)`;
  }
  return null;
}

async function readEntry(
  entry: FileEntry,
  zipName: string,
  span: ZipSpan | undefined,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  signal?.throwIfAborted();
  if (span !== undefined) return readSpan(span, signal);
  try {
    // zip.js for what zip-span.ts does not read (encrypted entries, other methods): it reports those plainly.
    return await entry.getData(new Uint8ArrayWriter(), { signal, checkCrc32: true });
  } catch (cause) {
    if (signal?.aborted) throw signal.reason;
    throw new ArchiveError(
      `Could not read ${entry.filename} from ${zipName} (${errorMessage(cause)}).`,
      zipName,
      entry.filename,
      { cause },
    );
  }
}
