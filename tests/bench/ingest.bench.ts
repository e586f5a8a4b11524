/**
 * `npm run -s bench -- ingest [--store] [--size 224] [--limit N] [--keep] [--archive PATH] [--read-only]`
 *
 * Builds a Kaggle-shaped archive of 20,030 image entries (the 10,015 image_ids of the real metadata CSV, each the
 * bytes of one of the 240 real 600x450 originals from ../shared, cycling; in HAM10000_images_part_{1,2}/ and
 * again in the lower-case copies; plus HAM10000_metadata.csv and the hmnist CSVs), deflated like Kaggle's (or
 * stored with --store), in a temp dir. Serves a small harness page (tests/bench/ingest-harness.html) with Vite's
 * dev server and the app's COOP/COEP/CSP headers on http://localhost, and drives headless /usr/bin/chromium with
 * playwright-core: the archive is set on a file input by path (no copy), decoding alone is timed first, then the
 * whole ingest. Prints one JSON object on stdout:
 *
 *   entries            file entries listed in the archive
 *   unique_images      distinct image_ids (one copy of each is read and decoded)
 *   seconds.list       listing the archive (central directory)
 *   seconds.read       time the pipeline's reader spent waiting for entry bytes (overlaps decoding)
 *   seconds.decode     wall time from the first image sent to a decoder to the last one decoded
 *   seconds.total      from the drop (addFiles) to the committed cache: list + parse + match + read/decode/write
 *   decode_only_seconds  the same decoders decoding the same image sequence from memory, nothing else running
 *   cached_images      images decoded and written to the committed cache (unique images less any that failed)
 *   images_per_second  cached_images / seconds.total (images that reached the cache, not images listed)
 *   peak_renderer_rss_mb  the largest sum of VmRSS over this Chromium's renderer processes, sampled every 250 ms
 *                      during the ingest. Covers the page and every worker it starts (ingest, decoders: dedicated
 *                      workers run inside the renderer process); NOT the browser process, the GPU process or the
 *                      utility processes (network, storage: OPFS writes go through the storage service) — their
 *                      peak sum is peak_other_chromium_rss_mb, and peak_all_chromium_rss_mb is every process of
 *                      this Chromium together (each a peak of its own sampled sum)
 *   details            the rest: archive size and build time, decoders, write time, per-stage rates, peak RSS
 *                      of the largest single renderer and during decode-only
 *
 * --limit N keeps only the first N image_ids (quick runs); --keep leaves the archive in the temp dir and prints
 * its path on stderr; --archive PATH reuses such an archive (built with the same --limit); --read-only also
 * times reading alone on the page thread, three ways (see readOnly in ingest-harness.ts), with Chromium's CPU
 * seconds for each, in details.read_only_seconds.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import Papa from 'papaparse';
import { createServer, type ViteDevServer } from 'vite';
import type { Page } from 'playwright-core';
import { securityHeaders } from '../../deploy/security-headers.ts';
import { chromium } from 'playwright-core';
import { chromiumArgs, chromiumPath } from '../helpers/chromium.ts';
import { chromiumProcesses } from '../helpers/renderer-rss.ts';
import {
  buildKaggleZip,
  KAGGLE_ZIP_NAME,
  makeTempDir,
  METADATA_CSV,
  readOriginals,
  removeTempDir,
  repeatUnderIds,
} from '../helpers/zips.ts';

const root = resolve(import.meta.dirname, '..', '..');

function log(message: string): void {
  process.stderr.write(`[bench ingest] ${message}\n`);
}

interface Options {
  store: boolean;
  size: number;
  limit: number | null;
  keep: boolean;
  archive: string | null;
  readOnly: boolean;
}

function parseArgs(args: string[]): Options {
  const options: Options = {
    store: false,
    size: 224,
    limit: null,
    keep: false,
    archive: null,
    readOnly: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--store') options.store = true;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--read-only') options.readOnly = true;
    else if (arg === '--size') options.size = Number(value());
    else if (arg === '--limit') options.limit = Number(value());
    else if (arg === '--archive') options.archive = resolve(value());
    else throw new Error(`unknown argument ${arg}`);
  }
  if (![96, 128, 160, 192, 224].includes(options.size))
    throw new Error('--size must be 96, 128, 160, 192 or 224');
  return options;
}

interface Sampled<T> {
  result: T;
  /** Largest sum of VmRSS over the renderer processes, and largest single renderer. */
  peakSumMb: number;
  peakMaxMb: number;
  /** Largest sum of VmRSS over the other processes (browser, GPU, utilities), and over all of them. */
  peakOtherMb: number;
  peakAllMb: number;
  /** CPU seconds all of this Chromium's processes used meanwhile (renderer with its workers, browser, GPU…). */
  cpuSeconds: number;
  wallSeconds: number;
}

/** Runs `work` while sampling renderer RSS every 250 ms, and counts Chromium's CPU time over it. */
async function sampled<T>(work: () => Promise<T>): Promise<Sampled<T>> {
  let peakSumMb = 0;
  let peakMaxMb = 0;
  let peakOtherMb = 0;
  let peakAllMb = 0;
  const startTicks = new Map<number, number>();
  const endTicks = new Map<number, number>();
  const sample = (edge?: Map<number, number>) => {
    let sum = 0;
    let other = 0;
    for (const p of chromiumProcesses()) {
      edge?.set(p.pid, p.cpuTicks);
      if (edge === undefined || edge === endTicks) endTicks.set(p.pid, p.cpuTicks);
      if (!p.renderer) {
        other += p.rssMb;
        continue;
      }
      sum += p.rssMb;
      peakMaxMb = Math.max(peakMaxMb, p.rssMb);
    }
    peakSumMb = Math.max(peakSumMb, sum);
    peakOtherMb = Math.max(peakOtherMb, other);
    peakAllMb = Math.max(peakAllMb, sum + other);
  };
  sample(startTicks);
  const started = performance.now();
  const timer = setInterval(() => sample(), 250);
  try {
    const result = await work();
    const wallSeconds = (performance.now() - started) / 1000;
    sample(endTicks);
    let ticks = 0;
    for (const [pid, end] of endTicks) ticks += end - (startTicks.get(pid) ?? 0);
    return { result, peakSumMb, peakMaxMb, peakOtherMb, peakAllMb, cpuSeconds: ticks / 100, wallSeconds };
  } finally {
    clearInterval(timer);
  }
}

async function buildArchive(
  dir: string,
  options: Options,
): Promise<{ path: string; bytes: number; seconds: number }> {
  const rows = Papa.parse<Record<string, string>>(readFileSync(METADATA_CSV, 'utf8'), {
    header: true,
    skipEmptyLines: true,
  }).data;
  let ids = rows.map((r) => r.image_id as string);
  if (options.limit !== null) ids = ids.slice(0, options.limit);
  // Image i of the metadata gets original i mod 240: the decode-only pass replays exactly this sequence.
  const images = repeatUnderIds(readOriginals(), ids);
  const path = join(dir, KAGGLE_ZIP_NAME);
  const started = performance.now();
  log(`building ${path}: ${ids.length * 2} image entries${options.store ? ' (stored)' : ' (deflated)'} …`);
  let csvPath = METADATA_CSV;
  if (options.limit !== null) {
    csvPath = join(dir, 'HAM10000_metadata.csv');
    const { writeFile } = await import('node:fs/promises');
    const keep = new Set(ids);
    await writeFile(csvPath, Papa.unparse(rows.filter((r) => keep.has(r.image_id as string))) + '\n');
  }
  // Zip64, as Kaggle's 5.2 GB archive must be (offsets past 4 GiB).
  const built = await buildKaggleZip(path, {
    images,
    csvPath,
    zip64: true,
    ...(options.store ? { level: 0 } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  log(`built ${(built.bytes / 1e9).toFixed(2)} GB, ${built.entries} entries, in ${seconds.toFixed(0)} s`);
  return { path, bytes: built.bytes, seconds };
}

async function startServer(): Promise<{ server: ViteDevServer; origin: string }> {
  const server = await createServer({
    configFile: false,
    root,
    logLevel: 'warn',
    server: { host: 'localhost', port: 0, strictPort: false, headers: securityHeaders, hmr: false },
    preview: { headers: securityHeaders },
    worker: { format: 'es' },
    // Pre-bundled up front: a dependency found late makes Vite reload the page in the middle of the run.
    optimizeDeps: {
      entries: ['tests/bench/ingest-harness.html'],
      include: ['@zip.js/zip.js', 'papaparse'],
    },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('the dev server has no port');
  // localhost, not 127.0.0.1: Chromium treats http://localhost as a secure context (OPFS).
  return { server, origin: `http://localhost:${address.port}` };
}

export async function bench(args: string[]): Promise<unknown> {
  const options = parseArgs(args);
  const dir = options.archive === null ? await makeTempDir('lesion-lab-ingest-bench-') : null;
  let server: ViteDevServer | null = null;
  // A persistent profile on disk, as a user has: Playwright's default contexts are incognito-like, and there
  // Chromium keeps OPFS in memory and silently refuses a file over 1 GB (measured), while the cache is 1.5 GB.
  const profile = await makeTempDir('lesion-lab-ingest-bench-profile-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    args: chromiumArgs,
    headless: true,
  });
  try {
    const archive =
      options.archive !== null
        ? { path: options.archive, bytes: statSync(options.archive).size, seconds: 0 }
        : await buildArchive(dir as string, options);
    if (!existsSync(archive.path)) throw new Error(`no archive at ${archive.path}`);

    const started = await startServer();
    server = started.server;
    const page: Page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') log(`page ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    await page.goto(`${started.origin}/tests/bench/ingest-harness.html`);
    await page.waitForFunction(
      () => (globalThis as { benchIngest?: { ready: boolean } }).benchIngest?.ready,
      null,
      {
        timeout: 120_000,
      },
    );
    const isolated = await page.evaluate(() => crossOriginIsolated);
    log(`harness ready at ${started.origin} (crossOriginIsolated: ${isolated})`);

    const count = options.limit ?? 10_015;
    await page.setInputFiles(
      '#originals',
      readOriginals().map((o) => o.path),
    );
    log(`decode only: ${count} images at ${options.size} px …`);
    const decodeOnly = await sampled(() =>
      page.evaluate(
        ([n, size]) =>
          (
            globalThis as unknown as {
              benchIngest: {
                decodeOnly(n: number, size: number): Promise<{ seconds: number; decoders: number }>;
              };
            }
          ).benchIngest.decodeOnly(n, size),
        [count, options.size] as const,
      ),
    );
    log(`decode only: ${decodeOnly.result.seconds.toFixed(1)} s with ${decodeOnly.result.decoders} decoders`);
    await page.setInputFiles('#originals', []);

    await page.setInputFiles('#archive', archive.path);
    const readOnly: Record<string, number> = {};
    const modes = options.readOnly ? (['range-reads', 'ranges', 'entries'] as const) : [];
    for (const mode of modes) {
      for (const concurrency of [1, 2]) {
        const r = await sampled(() =>
          page.evaluate(
            ([c, m]) =>
              (
                globalThis as unknown as {
                  benchIngest: { readOnly(c: number, m: string): Promise<{ seconds: number }> };
                }
              ).benchIngest.readOnly(c, m),
            [concurrency, mode] as const,
          ),
        );
        readOnly[`${mode}_x${concurrency}_seconds`] = r.result.seconds;
        readOnly[`${mode}_x${concurrency}_cpu_seconds`] = r.cpuSeconds;
        log(
          `read only, ${mode}, ${concurrency} at a time (page thread): ${r.result.seconds.toFixed(1)} s, ` +
            `${r.cpuSeconds.toFixed(1)} CPU s`,
        );
      }
    }
    log('ingest …');
    const ingest = await sampled(() =>
      page.evaluate(
        (size) =>
          (
            globalThis as unknown as {
              benchIngest: { ingest(size: number): Promise<IngestRun> };
            }
          ).benchIngest.ingest(size),
        options.size,
      ),
    );
    const run = ingest.result;
    log(`ingest: ${run.totalSeconds.toFixed(1)} s, ${run.cached} images cached`);
    return {
      entries: run.entries,
      unique_images: run.uniqueImages,
      cached_images: run.cached,
      seconds: {
        list: run.listSeconds,
        read: run.timings?.readSeconds ?? Number.NaN,
        decode: run.timings?.decodeSeconds ?? Number.NaN,
        total: run.totalSeconds,
      },
      decode_only_seconds: decodeOnly.result.seconds,
      images_per_second: run.cached / run.totalSeconds,
      peak_renderer_rss_mb: ingest.peakSumMb,
      rss_covers:
        'peak_renderer_rss_mb: the renderer processes (the page, the ingest worker, the decode workers); not the ' +
        'browser, GPU or utility (network, storage) processes: see details.peak_other_chromium_rss_mb and ' +
        'details.peak_all_chromium_rss_mb',
      details: {
        size_px: options.size,
        archive_gb: archive.bytes / 1e9,
        archive_deflated: !options.store,
        archive_build_seconds: archive.seconds,
        duplicates_skipped: run.duplicates,
        matched: run.matched,
        cached: run.cached,
        decoders: run.timings?.decoders,
        add_files_seconds: run.addFilesSeconds,
        write_seconds: run.timings?.writeSeconds ?? Number.NaN,
        caching_seconds: run.timings?.totalSeconds ?? Number.NaN,
        ...(options.readOnly ? { read_only_seconds: readOnly } : {}),
        total_over_decode_only: run.totalSeconds / decodeOnly.result.seconds,
        stage_rates_per_second: Object.fromEntries(run.stages.map((s) => [s.stage, s.rate])),
        peak_single_renderer_rss_mb: ingest.peakMaxMb,
        peak_other_chromium_rss_mb: ingest.peakOtherMb,
        peak_all_chromium_rss_mb: ingest.peakAllMb,
        peak_renderer_rss_mb_decode_only: decodeOnly.peakSumMb,
        // CPU seconds of all Chromium processes during each phase: on a machine with few cores, reading (file
        // IPC, zip.js, CRC-32, inflate) competes with decoding for the same cores.
        cpu_seconds_decode_only: decodeOnly.cpuSeconds,
        cpu_seconds_ingest: ingest.cpuSeconds,
        cores: availableParallelism(),
        rss_measure:
          'VmRSS from /proc/<pid>/status of every process this Chromium started, summed per group (renderers; ' +
          'the others; all), peak of 250 ms samples; pages shared between processes count in each of them',
        cross_origin_isolated: isolated,
      },
    };
  } finally {
    await context.close().catch(() => {});
    await server?.close().catch(() => {});
    await removeTempDir(profile);
    if (dir !== null) {
      if (options.keep) log(`archive kept in ${dir} (reuse with --archive ${join(dir, KAGGLE_ZIP_NAME)})`);
      else await removeTempDir(dir);
    }
  }
}

interface IngestRun {
  entries: number;
  uniqueImages: number;
  duplicates: number;
  matched: number;
  cached: number;
  listSeconds: number;
  addFilesSeconds: number;
  totalSeconds: number;
  timings?: {
    readSeconds: number;
    decodeSeconds: number;
    writeSeconds: number;
    totalSeconds: number;
    decoders: number;
  };
  stages: Array<{ stage: string; rate: number }>;
}
