import {
  BlobReader,
  Uint8ArrayWriter,
  ZipReader,
  type FileEntry,
  type ZipReaderConstructorOptions,
} from '@zip.js/zip.js';
import { ListingBuilder, baseName, classifyPath, decodeText, errorMessage } from './listing.ts';
import type { Listing } from './types.ts';

/** An archive that cannot be listed, or an entry of it that cannot be read. The message names the file. */
export class ArchiveError extends Error {
  constructor(
    message: string,
    readonly fileName: string,
    /** The entry at fault, when the archive itself was readable. */
    readonly entry?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ArchiveError';
  }
}

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
  try {
    const entries = reader.getEntriesGenerator({
      onprogress: onProgress && ((progress, total) => onProgress(progress, total)),
    });
    for await (const entry of entries) {
      signal?.throwIfAborted();
      if (entry.directory) continue;
      addEntry(builder, entry, name);
    }
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
  return builder.build();
}

function addEntry(builder: ListingBuilder, entry: FileEntry, zipName: string): void {
  const path = entry.filename;
  const location = `${zipName}:${path}`;
  builder.countEntry();
  const kind = classifyPath(path);
  switch (kind.kind) {
    case 'image':
      builder.addImage(
        {
          imageId: kind.imageId,
          location,
          size: entry.compressedSize,
          read: (signal) => readEntry(entry, zipName, signal),
        },
        path,
      );
      break;
    case 'metadata':
      builder.addMetadata({
        location,
        name: baseName(path),
        readText: async (signal) => decodeText(await readEntry(entry, zipName, signal)),
      });
      break;
    case 'archive':
      builder.addIgnored(location, 'a zip inside a zip is not opened: extract it and drop its contents');
      break;
    case 'ignored':
      builder.addIgnored(location);
      break;
  }
}

async function readEntry(entry: FileEntry, zipName: string, signal?: AbortSignal): Promise<Uint8Array> {
  signal?.throwIfAborted();
  try {
    // The CRC check costs little next to decoding and turns a damaged download into a clear error here
    // instead of a garbled image later.
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
