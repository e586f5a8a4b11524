import type { ImageSource, Listing, MetadataSource } from './types.ts';

/**
 * The image_id of an image file: its name without the extension (".jpg", ".jpeg" or ".png", any case), or null
 * for anything else. Hidden files are never images: macOS writes "._ISIC_0024306.jpg" resource forks next to the
 * real files (and into __MACOSX/ inside zips), and their stem would otherwise pass for an image_id.
 */
export function imageIdFromPath(path: string): string | null {
  const name = baseName(path);
  if (name.startsWith('.')) return null;
  const match = /^(.+)\.(?:jpe?g|png)$/i.exec(name);
  return match?.[1] ?? null;
}

/** What an entry of an archive or a dropped folder is to the app. */
export type EntryKind =
  | { kind: 'image'; imageId: string }
  | { kind: 'metadata' }
  /** A zip among the entries: the caller decides what to say (nested zips are not opened). */
  | { kind: 'archive' }
  /** Not data; `reason` is what the match report shows next to it. */
  | { kind: 'ignored'; reason: string };

/**
 * Classifies a file path (directories are not entries and must be skipped by the caller).
 * Metadata is any .csv or .tab file except Kaggle's hmnist_*.csv pixel dumps, which are not labels.
 */
export function classifyPath(path: string): EntryKind {
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.includes('..'))
    return { kind: 'ignored', reason: 'its path climbs out of the archive (../), so it is not read' };
  // Archivers on macOS add __MACOSX/ and dotfiles (.DS_Store, ._resource forks): never data.
  if (segments.includes('__MACOSX')) return { kind: 'ignored', reason: 'macOS archive metadata' };
  if (segments.some((s) => s.startsWith('.'))) return { kind: 'ignored', reason: 'a hidden file' };
  const name = segments.at(-1) ?? '';
  const imageId = imageIdFromPath(name);
  if (imageId !== null) return { kind: 'image', imageId };
  if (/^hmnist_.*\.csv$/i.test(name))
    return { kind: 'ignored', reason: "Kaggle's pixel table (hmnist), not the metadata" };
  if (/\.(?:csv|tab)$/i.test(name)) return { kind: 'metadata' };
  if (/\.zip$/i.test(name)) return { kind: 'archive' };
  return {
    kind: 'ignored',
    reason: 'neither an image named ISIC_<7 digits>.jpg/.jpeg/.png nor a metadata .csv/.tab',
  };
}

/**
 * Kaggle's archive holds every image twice: in HAM10000_images_part_N/ and in a lower-case copy
 * ham10000_images_part_N/. The copy in an all-lower-case folder loses to any other; between equals the first
 * seen wins, so the choice depends only on the order of the entries and of the drops, never on timing.
 */
function copyRank(path: string): number {
  const segments = path.split('/');
  const folder = segments.length > 1 ? (segments.at(-2) ?? '') : '';
  const isLowerCaseCopy = folder === folder.toLowerCase() && folder !== folder.toUpperCase();
  return isLowerCaseCopy ? 1 : 0;
}

/** The path inside its container of each source this module listed, for the copy rule when listings merge. */
const sourcePaths = new WeakMap<ImageSource, string>();

interface Candidate {
  source: ImageSource;
  rank: number;
  order: number;
}

/**
 * Collects the entries of one or several containers into a Listing, keeping one source per image_id.
 * listZip and listLooseFiles feed it; it knows nothing about where the bytes come from.
 */
export class ListingBuilder {
  private entries = 0;
  private order = 0;
  private readonly kept = new Map<string, Candidate>();
  /** Losing locations per image_id, in the order seen; their kept location is known only at the end. */
  private readonly losers: Array<{ imageId: string; location: string }> = [];
  private readonly carriedDuplicates: Array<{ imageId: string; location: string }> = [];
  private readonly metadata: MetadataSource[] = [];
  private readonly ignored: string[] = [];

  /** Counts one file entry (not a directory) towards Listing.entries. */
  countEntry(count = 1): void {
    this.entries += count;
  }

  /** `path` is the path inside the container, used for the copy rule; `source.location` is for people. */
  addImage(source: ImageSource, path: string): void {
    sourcePaths.set(source, path);
    const candidate: Candidate = { source, rank: copyRank(path), order: this.order++ };
    const current = this.kept.get(source.imageId);
    if (current === undefined) {
      this.kept.set(source.imageId, candidate);
    } else if (candidate.rank < current.rank) {
      this.losers.push({ imageId: current.source.imageId, location: current.source.location });
      this.kept.set(source.imageId, candidate);
    } else {
      this.losers.push({ imageId: source.imageId, location: source.location });
    }
  }

  /** Duplicates already decided by an earlier listing; their kept location is re-resolved at the end. */
  addDuplicate(imageId: string, location: string): void {
    this.carriedDuplicates.push({ imageId, location });
  }

  addMetadata(source: MetadataSource): void {
    this.metadata.push(source);
  }

  /** `why`, when given, is appended for the user, e.g. why a nested zip was not opened. */
  addIgnored(location: string, why?: string): void {
    this.ignored.push(why === undefined ? location : `${location} (${why})`);
  }

  build(): Listing {
    const keptLocation = (imageId: string): string => {
      const kept = this.kept.get(imageId);
      if (kept === undefined) throw new Error(`no image kept for duplicate ${imageId}`);
      return kept.source.location;
    };
    const images = [...this.kept.values()].sort((a, b) => a.order - b.order).map((c) => c.source);
    const duplicates = [...this.carriedDuplicates, ...this.losers].map((d) => ({
      ...d,
      keptLocation: keptLocation(d.imageId),
    }));
    return {
      entries: this.entries,
      images,
      duplicates,
      metadata: [...this.metadata],
      ignored: [...this.ignored],
    };
  }
}

/**
 * A dropped file or a file from a dropped folder. A browser File fits (its webkitRelativePath is used as the
 * path when set); in Node, fs.openAsBlob(path) plus a name. Either bytes() or arrayBuffer() must exist.
 */
export interface LooseFile {
  name: string;
  /** Path relative to the dropped folder, e.g. "HAM10000_images_part_1/ISIC_0024306.jpg". */
  path?: string;
  webkitRelativePath?: string;
  size: number;
  bytes?(): Promise<Uint8Array>;
  arrayBuffer?(): Promise<ArrayBuffer>;
}

async function readLoose(file: LooseFile, location: string, signal?: AbortSignal): Promise<Uint8Array> {
  signal?.throwIfAborted();
  let bytes: Uint8Array;
  try {
    if (file.bytes) bytes = await file.bytes();
    else if (file.arrayBuffer) bytes = new Uint8Array(await file.arrayBuffer());
    else throw new Error('the file object has neither bytes() nor arrayBuffer()');
  } catch (cause) {
    throw new Error(`Could not read ${location}: ${errorMessage(cause)}`, { cause });
  }
  // A single file read cannot be interrupted; dropping its result keeps cancellation prompt for the caller.
  signal?.throwIfAborted();
  return bytes;
}

/**
 * Lists a folder drop or loose files. Zips among them are not opened here (the caller lists them with listZip
 * and merges): they are reported as ignored with a note, like any other unused file.
 */
export function listLooseFiles(files: readonly LooseFile[]): Listing {
  const builder = new ListingBuilder();
  for (const file of files) {
    const path = file.path || file.webkitRelativePath || file.name;
    builder.countEntry();
    const entry = classifyPath(path);
    switch (entry.kind) {
      case 'image':
        builder.addImage(
          {
            imageId: entry.imageId,
            location: path,
            size: file.size,
            read: (signal) => readLoose(file, path, signal),
          },
          path,
        );
        break;
      case 'metadata':
        builder.addMetadata({
          location: path,
          name: baseName(path),
          readText: async (signal) => decodeText(await readLoose(file, path, signal)),
        });
        break;
      case 'archive':
        builder.addIgnored(path, 'a zip is opened as an archive, not as a loose file');
        break;
      case 'ignored':
        builder.addIgnored(path, entry.reason);
        break;
    }
  }
  return builder.build();
}

/**
 * Merges listings of containers dropped one after another, in drop order, with the same one-copy-per-image_id
 * rule as within a container: a lower-case copy loses to any other; otherwise the earlier drop wins.
 */
export function mergeListings(listings: readonly Listing[]): Listing {
  const builder = new ListingBuilder();
  for (const listing of listings) {
    builder.countEntry(listing.entries);
    for (const image of listing.images) builder.addImage(image, sourcePaths.get(image) ?? image.location);
    for (const duplicate of listing.duplicates) builder.addDuplicate(duplicate.imageId, duplicate.location);
    for (const metadata of listing.metadata) builder.addMetadata(metadata);
    for (const ignored of listing.ignored) builder.addIgnored(ignored);
  }
  return builder.build();
}

/**
 * Metadata text exactly as stored: a UTF-8 byte-order mark is kept (the CSV parser strips it) so that what the
 * parser sees and what the file holds never differ; invalid bytes become U+FFFD and surface as bad values there.
 */
/**
 * Text of a metadata file. UTF-8 unless the bytes say otherwise: a UTF-16 byte-order mark, or — for a UTF-16 file
 * saved without one (Excel's "Unicode text") — NUL bytes in every other position of the first line. Read as UTF-8,
 * such a file comes out as mojibake and is refused for "missing columns", which says nothing useful.
 */
export function decodeText(bytes: Uint8Array): string {
  return new TextDecoder(textEncoding(bytes), { ignoreBOM: true }).decode(bytes);
}

export function textEncoding(bytes: Uint8Array): 'utf-8' | 'utf-16le' | 'utf-16be' {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  const sample = bytes.subarray(0, Math.min(bytes.length - (bytes.length % 2), 200));
  if (sample.length < 4) return 'utf-8';
  let evenNul = 0;
  let oddNul = 0;
  for (let i = 0; i < sample.length; i += 2) {
    if (sample[i] === 0) evenNul++;
    if (sample[i + 1] === 0) oddNul++;
  }
  const pairs = sample.length / 2;
  if (oddNul > 0.9 * pairs && evenNul === 0) return 'utf-16le';
  if (evenNul > 0.9 * pairs && oddNul === 0) return 'utf-16be';
  return 'utf-8';
}

export function baseName(path: string): string {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
