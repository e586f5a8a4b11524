/**
 * Builders for HAM10000-shaped zip archives, for unit/browser/e2e tests and the ingest benchmark.
 *
 * Node only (node:fs). The archives are written by zip.js and streamed to disk one entry at a time, reading one
 * source JPEG from ../shared at a time, so even the benchmark's 20,030-entry archive never sits in memory (zip.js
 * keeps only its central-directory bookkeeping, roughly 10 KB per entry).
 * Output is deterministic (fixed timestamps, fixed entry order), so a rebuilt archive has the same layout.
 *
 * Typical use:
 *   const dir = await makeTempDir();
 *   const originals = readOriginals();                       // 240 real JPEGs + sha256 from the manifest
 *   await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images: originals, csvPath: METADATA_CSV });
 *   ...
 *   await removeTempDir(dir);
 */
import { createWriteStream, openAsBlob, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { TextReader, Uint8ArrayReader, ZipWriter, type ZipWriterConstructorOptions } from '@zip.js/zip.js';
import Papa from 'papaparse';

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');
/** Real data, read at run time and never copied into the repository. */
export const SHARED_DIR = resolve(PROJECT_ROOT, '..', 'shared');
export const HAM_DIR = join(SHARED_DIR, 'data', 'ham10000');
export const METADATA_CSV = join(HAM_DIR, 'HAM10000_metadata.csv');
export const ORIGINALS_DIR = join(HAM_DIR, 'originals-600x450');
export const ORIGINALS_MANIFEST = join(HAM_DIR, 'originals-600x450-manifest.csv');
/** 10,013 of the 10,015 images at 200x150, for archives at the real dataset's scale. */
export const SMALL_IMAGES_DIR = join(HAM_DIR, 'all-200x150');

export const KAGGLE_ZIP_NAME = 'skin-cancer-mnist-ham10000.zip';
export const DATAVERSE_PART_NAMES = ['HAM10000_images_part_1.zip', 'HAM10000_images_part_2.zip'] as const;
/** Kaggle's and Dataverse's part 1 hold ISIC_0024306 to ISIC_0029305 (5,000 images); part 2 the rest. */
export const LAST_PART_1_ID = 'ISIC_0029305';
/** The pixel dumps that Kaggle ships next to the images; the app must ignore them. */
export const HMNIST_NAMES = [
  'hmnist_28_28_L.csv',
  'hmnist_28_28_RGB.csv',
  'hmnist_8_8_L.csv',
  'hmnist_8_8_RGB.csv',
] as const;

/** A real JPEG on disk, stored in archives as `${imageId}.jpg`. */
export interface SourceImage {
  imageId: string;
  path: string;
}

/** One of the 240 byte-original 600x450 images, with what its manifest row says about it. */
export interface OriginalImage extends SourceImage {
  dx: string;
  lesionId: string;
  bytes: number;
  sha256: string;
}

export function readOriginals(): OriginalImage[] {
  const parsed = Papa.parse<Record<string, string>>(readFileSync(ORIGINALS_MANIFEST, 'utf8'), {
    header: true,
    skipEmptyLines: true,
  });
  return parsed.data.map((row) => ({
    imageId: required(row, 'image_id'),
    path: join(ORIGINALS_DIR, `${required(row, 'image_id')}.jpg`),
    dx: required(row, 'dx'),
    lesionId: required(row, 'lesion_id'),
    bytes: Number(required(row, 'bytes')),
    sha256: required(row, 'sha256'),
  }));
}

/** Up to `count` of `images`, taken class by class in turn so that every diagnosis is there. */
export function pickAcrossClasses<T extends { dx: string }>(images: readonly T[], count: number): T[] {
  const byDx = new Map<string, T[]>();
  for (const image of images) byDx.set(image.dx, [...(byDx.get(image.dx) ?? []), image]);
  const picked: T[] = [];
  for (let round = 0; picked.length < count; round++) {
    let added = false;
    for (const list of byDx.values()) {
      const image = list[round];
      if (image && picked.length < count) {
        picked.push(image);
        added = true;
      }
    }
    if (!added) break;
  }
  return picked;
}

/** The 10,013 downscaled images of SMALL_IMAGES_DIR, sorted by image_id. */
export function readSmallImages(): SourceImage[] {
  return readdirSync(SMALL_IMAGES_DIR)
    .filter((name) => name.endsWith('.jpg'))
    .sort()
    .map((name) => ({ imageId: name.slice(0, -'.jpg'.length), path: join(SMALL_IMAGES_DIR, name) }));
}

function required(row: Record<string, string>, column: string): string {
  const value = row[column];
  if (value === undefined || value === '') throw new Error(`${ORIGINALS_MANIFEST}: empty ${column}`);
  return value;
}

/**
 * Stores real JPEG bytes under other real image_ids, cycling through `sources`: the benchmark needs all 10,015
 * ids of the metadata file, and ../shared holds fewer full-size originals than that.
 */
export function repeatUnderIds(sources: readonly SourceImage[], imageIds: readonly string[]): SourceImage[] {
  if (sources.length === 0) throw new Error('repeatUnderIds: no source images');
  return imageIds.map((imageId, i) => ({ imageId, path: (sources[i % sources.length] as SourceImage).path }));
}

/** One entry of a zip: a file copied from disk, a text, or a directory. */
export type ZipEntrySpec =
  | { name: string; file: string }
  | { name: string; text: string }
  | { name: string; bytes: Uint8Array }
  | { name: string; directory: true };

export interface WriteZipOptions {
  /** Force Zip64 records for every entry and for the end of the central directory, as in archives over 4 GB. */
  zip64?: boolean;
  /** Deflate level, 0 (stored) to 9; zip.js's default 6 when omitted. Kaggle's archive is deflated. */
  level?: number;
}

export interface BuiltZip {
  path: string;
  /** File entries written (directories not counted), i.e. what Listing.entries should report. */
  entries: number;
  bytes: number;
}

/** A fixed timestamp keeps rebuilt archives byte-comparable. */
const ENTRY_DATE = new Date(2018, 5, 12);

/** Writes `entries` in order to `outPath`, streaming each one; the general tool behind the shaped builders. */
export async function writeZip(
  outPath: string,
  entries: Iterable<ZipEntrySpec>,
  options: WriteZipOptions = {},
): Promise<BuiltZip> {
  const writerOptions: ZipWriterConstructorOptions = {
    useWebWorkers: false,
    zip64: options.zip64 ?? false,
    lastModDate: ENTRY_DATE,
  };
  if (options.level !== undefined) writerOptions.level = options.level;
  const output = Writable.toWeb(createWriteStream(outPath)) as WritableStream<Uint8Array>;
  const writer = new ZipWriter(output, writerOptions);
  let files = 0;
  try {
    // Sequential adds: zip.js then streams each entry straight through instead of buffering them in parallel.
    for (const entry of entries) {
      if ('directory' in entry) {
        await writer.add(entry.name, null, { directory: true });
      } else if ('file' in entry) {
        await writer.add(entry.name, new Uint8ArrayReader(await readFile(entry.file)));
        files++;
      } else if ('bytes' in entry) {
        await writer.add(entry.name, new Uint8ArrayReader(entry.bytes));
        files++;
      } else {
        await writer.add(entry.name, new TextReader(entry.text));
        files++;
      }
    }
    await writer.close(undefined, { zip64: options.zip64 ?? false });
  } catch (error) {
    await output.abort(error).catch(() => undefined);
    throw error;
  }
  const handle = await open(outPath);
  const { size } = await handle.stat();
  await handle.close();
  return { path: outPath, entries: files, bytes: size };
}

function partOf(imageId: string): 1 | 2 {
  return imageId <= LAST_PART_1_ID ? 1 : 2;
}

/** Header-only stand-ins for the hmnist pixel dumps: the app must skip them by name, never by content. */
function hmnistHeader(name: string): string {
  const match = /hmnist_(\d+)_(\d+)_(L|RGB)\.csv/.exec(name);
  const pixels = match ? Number(match[1]) * Number(match[2]) * (match[3] === 'RGB' ? 3 : 1) : 0;
  const columns = Array.from({ length: pixels }, (_, i) => `pixel${String(i).padStart(4, '0')}`);
  return [...columns, 'label'].join(',') + '\n';
}

export interface KaggleZipOptions extends WriteZipOptions {
  /** The images, each stored once per copy of the part folders; see repeatUnderIds for more ids than files. */
  images: readonly SourceImage[];
  /** Stored as HAM10000_metadata.csv at the top level when given. */
  csvPath?: string;
  /** Kaggle's lower-case duplicate folders ham10000_images_part_{1,2}/ (default true). */
  lowerCaseCopies?: boolean;
  /** Kaggle's hmnist_*.csv files (default true). */
  hmnist?: boolean;
}

/**
 * Kaggle's skin-cancer-mnist-ham10000.zip layout, in its order: HAM10000_images_part_{1,2}/, the metadata CSV,
 * the lower-case copies ham10000_images_part_{1,2}/ with the same files, then hmnist_*.csv.
 */
export function buildKaggleZip(outPath: string, options: KaggleZipOptions): Promise<BuiltZip> {
  const { images, csvPath, lowerCaseCopies = true, hmnist = true } = options;
  function* imageFolders(prefix: string): Generator<ZipEntrySpec> {
    for (const part of [1, 2] as const) {
      const folder = `${prefix}_images_part_${part}/`;
      yield { name: folder, directory: true };
      for (const image of images) {
        if (partOf(image.imageId) === part) yield { name: `${folder}${image.imageId}.jpg`, file: image.path };
      }
    }
  }
  function* layout(): Generator<ZipEntrySpec> {
    yield* imageFolders('HAM10000');
    if (csvPath !== undefined) yield { name: 'HAM10000_metadata.csv', file: csvPath };
    if (lowerCaseCopies) yield* imageFolders('ham10000');
    if (hmnist) for (const name of HMNIST_NAMES) yield { name, text: hmnistHeader(name) };
  }
  return writeZip(outPath, layout(), options);
}

export interface DataverseOptions extends WriteZipOptions {
  images: readonly SourceImage[];
  /** Written next to the zips as HAM10000_metadata.csv (a copy) and HAM10000_metadata.tab (tab-separated). */
  csvPath?: string;
}

export interface BuiltDataverse {
  /** HAM10000_images_part_1.zip and HAM10000_images_part_2.zip, images at the top level. */
  zips: [BuiltZip, BuiltZip];
  csvPath?: string;
  tabPath?: string;
}

/** Harvard Dataverse's layout: two part zips with the images at the top level, the metadata as separate files. */
export async function buildDataverseZips(outDir: string, options: DataverseOptions): Promise<BuiltDataverse> {
  const { images, csvPath } = options;
  const part = (n: 1 | 2): ZipEntrySpec[] =>
    images
      .filter((image) => partOf(image.imageId) === n)
      .map((i) => ({ name: `${i.imageId}.jpg`, file: i.path }));
  const zips: [BuiltZip, BuiltZip] = [
    await writeZip(join(outDir, DATAVERSE_PART_NAMES[0]), part(1), options),
    await writeZip(join(outDir, DATAVERSE_PART_NAMES[1]), part(2), options),
  ];
  if (csvPath === undefined) return { zips };
  const csvCopy = join(outDir, 'HAM10000_metadata.csv');
  const tabPath = join(outDir, 'HAM10000_metadata.tab');
  await copyFile(csvPath, csvCopy);
  const rows = Papa.parse<string[]>(readFileSync(csvPath, 'utf8'), { skipEmptyLines: true }).data;
  await writeFile(tabPath, Papa.unparse(rows, { delimiter: '\t', newline: '\n' }) + '\n');
  return { zips, csvPath: csvCopy, tabPath };
}

export interface Zip64Records {
  /** Offset of the Zip64 end of central directory record (signature 0x06064b50). */
  endOfCentralDirectory64: number;
  /** Offset of the Zip64 end of central directory locator (signature 0x07064b50). */
  locator: number;
}

/**
 * Finds the Zip64 end-of-central-directory records by following the structure from the end of the file (locator
 * just before the classic record, whose offset field points at the Zip64 record), or null if there are none.
 */
export async function findZip64Records(path: string): Promise<Zip64Records | null> {
  const handle = await open(path);
  try {
    const { size } = await handle.stat();
    const tailLength = Math.min(size, 22 + 0xffff + 20);
    const tail = Buffer.alloc(tailLength);
    await handle.read(tail, 0, tailLength, size - tailLength);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 20 || tail.readUInt32LE(eocd - 20) !== 0x07064b50) return null;
    const locator = size - tailLength + eocd - 20;
    const record64 = Number(tail.readBigUInt64LE(eocd - 20 + 8));
    const signature = Buffer.alloc(4);
    await handle.read(signature, 0, 4, record64);
    if (signature.readUInt32LE(0) !== 0x06064b50) return null;
    return { endOfCentralDirectory64: record64, locator };
  } finally {
    await handle.close();
  }
}

export interface DiskFile {
  /** Pass this to listZip: it is read lazily, by byte range, like a browser File. */
  blob: Blob;
  name: string;
  size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * A file on disk as the app sees a dropped File: listZip(file.blob, file.name), or listLooseFiles([file]) (add a
 * `path` to stand for a file of a dropped folder). Reads lazily through fs.openAsBlob.
 */
export async function diskFile(
  path: string,
  name = path.slice(path.lastIndexOf('/') + 1),
): Promise<DiskFile> {
  const blob = await openAsBlob(path);
  return { blob, name, size: blob.size, arrayBuffer: () => blob.arrayBuffer() };
}

export function makeTempDir(prefix = 'lesion-lab-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
