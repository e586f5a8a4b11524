/**
 * Vitest browser commands for the ingest browser tests (registered in vitest.config.ts, project "browser").
 * They run in the Vitest Node process: build real HAM10000-shaped archives in a temp dir from ../shared, and hand
 * files to the page the way a user does, through a file input by path (Playwright's setInputFiles: the browser
 * reads the file from disk lazily; nothing is copied through the test channel).
 *
 * In a browser test:  import { commands } from 'vitest/browser';
 *                     import type {} from '../helpers/ingest-commands.ts'; // the types below
 */
import { existsSync, openAsBlob } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { BrowserCommand } from 'vitest/node';
import { listZip } from '../../src/lib/data/archive.ts';
import {
  buildDataverseZips,
  buildKaggleZip,
  KAGGLE_ZIP_NAME,
  makeTempDir,
  METADATA_CSV,
  readOriginals,
  removeTempDir,
  SHARED_DIR,
} from './zips.ts';

export interface IngestFixture {
  dir: string;
  /** Kaggle-shaped zip of the 240 real originals (+ lower-case copies, the real metadata CSV, hmnist CSVs). */
  zipPath: string;
  zipEntries: number;
  zipBytes: number;
  /** A metadata CSV with an unknown dx on one line: `badCsv.line` / `badCsv.column` say where. */
  badCsv: { path: string; name: string; line: number; column: string; value: string };
  /** Dataverse's layout of the same images: two part zips, and the metadata as a .tab file. */
  dataverse: { zipPaths: [string, string]; tabPath: string };
  /** Not a zip at all (a CSV's bytes), named like one. */
  brokenZipPath: string;
  /** The Kaggle-shaped zip (same name, in its own folder) with one byte of one image's data flipped. */
  damagedZip: { path: string; entry: string; imageId: string };
  /** The 240 originals in the zip: id, class, lesion and the path of the JPEG in ../shared. */
  originals: Array<{ imageId: string; dx: string; lesionId: string; path: string }>;
  metadataRows: number;
}

/** Directories this process created; only files under them or ../shared may be handed to the page. */
const fixtureDirs = new Set<string>();

function allowed(path: string): boolean {
  const full = resolve(path);
  const roots = [resolve(SHARED_DIR), ...fixtureDirs];
  return roots.some((root) => full === root || full.startsWith(root + sep));
}

const buildIngestFixture: BrowserCommand<[]> = async (): Promise<IngestFixture> => {
  const dir = await makeTempDir('lesion-lab-ingest-test-');
  fixtureDirs.add(resolve(dir));
  const originals = readOriginals();
  const zip = await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images: originals, csvPath: METADATA_CSV });

  // The real CSV, cut short, with one dx replaced by a code HAM10000 does not have.
  const lines = (await readFile(METADATA_CSV, 'utf8')).split('\n').slice(0, 30);
  const line = 7;
  const cells = (lines[line - 1] as string).split(',');
  cells[2] = 'melanoma';
  lines[line - 1] = cells.join(',');
  const badName = 'HAM10000_metadata_bad_dx.csv';
  const badPath = join(dir, badName);
  await writeFile(badPath, lines.join('\n') + '\n');

  const dataverseDir = join(dir, 'dataverse');
  await mkdir(dataverseDir);
  const dataverse = await buildDataverseZips(dataverseDir, { images: originals, csvPath: METADATA_CSV });
  const brokenZipPath = join(dir, 'broken.zip');
  await writeFile(brokenZipPath, lines.join('\n'));

  const damagedZip = await damageOneImage(zip.path, join(dir, 'damaged'));

  const metadataRows = (await readFile(METADATA_CSV, 'utf8')).trim().split('\n').length - 1;
  return {
    dir,
    zipPath: zip.path,
    zipEntries: zip.entries,
    zipBytes: zip.bytes,
    dataverse: {
      zipPaths: [dataverse.zips[0].path, dataverse.zips[1].path],
      tabPath: dataverse.tabPath as string,
    },
    brokenZipPath,
    damagedZip,
    badCsv: { path: badPath, name: badName, line, column: 'dx', value: 'melanoma' },
    originals: originals.map(({ imageId, dx, lesionId, path }) => ({ imageId, dx, lesionId, path })),
    metadataRows,
  };
};

/** Copies `zipPath` into `outDir` with a byte flipped in the middle of the 10th kept image's compressed data. */
async function damageOneImage(zipPath: string, outDir: string): Promise<IngestFixture['damagedZip']> {
  const listing = await listZip(await openAsBlob(zipPath), KAGGLE_ZIP_NAME);
  const image = listing.images[9];
  const span = image?.span;
  if (image === undefined || span === undefined)
    throw new Error('the fixture zip has no readable 10th image');
  const bytes = Buffer.from(await readFile(zipPath));
  const dataStart =
    span.start + 30 + bytes.readUInt16LE(span.start + 26) + bytes.readUInt16LE(span.start + 28);
  const at = dataStart + Math.floor(span.compressedSize / 2);
  bytes[at] = (bytes[at] as number) ^ 0xff;
  await mkdir(outDir);
  const path = join(outDir, KAGGLE_ZIP_NAME);
  await writeFile(path, bytes);
  return { path, entry: span.entry, imageId: image.imageId };
}

const removeIngestFixture: BrowserCommand<[dir: string]> = async (_context, dir) => {
  const full = resolve(dir);
  if (!fixtureDirs.has(full)) throw new Error(`not a fixture directory of this run: ${dir}`);
  await removeTempDir(full);
  fixtureDirs.delete(full);
};

/** Sets the files of the `<input type=file>` matching `selector` in the test frame to files on disk. */
const setInputFilesFromDisk: BrowserCommand<[selector: string, paths: string[]]> = async (
  context,
  selector,
  paths,
) => {
  for (const path of paths) {
    if (!allowed(path))
      throw new Error(`refusing to hand ${path} to the page (not a fixture or ../shared file)`);
    if (!existsSync(path)) throw new Error(`no such file: ${path}`);
  }
  if (context.provider.name !== 'playwright')
    throw new Error('setInputFilesFromDisk needs the playwright provider');
  await context.iframe.locator(selector).setInputFiles(paths);
};

export const ingestCommands = { buildIngestFixture, removeIngestFixture, setInputFilesFromDisk };

declare module 'vitest/browser' {
  interface BrowserCommands {
    buildIngestFixture: () => Promise<IngestFixture>;
    removeIngestFixture: (dir: string) => Promise<void>;
    setInputFilesFromDisk: (selector: string, paths: string[]) => Promise<void>;
  }
}
