/**
 * `npm run -s bench -- decode [--count 2000] [--size 224] [--small] [--no-variants] [--variants a,b,…]`
 *
 * The app's decode-only rate against Pillow's, in one run, on the same JPEGs: the 240 real 600x450 HAM10000
 * originals of ../shared (--small: the 10,013 real 200x150 images), image i being file i mod n, --count images,
 * squashed to --size. Pillow: one process (tests/bench/decode_pillow.py, Debian's /usr/bin/python3 with
 * python3-pil, or $PYTHON), bicubic. The app: its own decode workers and DecodePool in headless /usr/bin/chromium,
 * on a harness page (tests/bench/decode-harness.html) served by Vite's dev server with the app's headers, with
 * the ingest's decoder count, then with one decoder. Then, unless --no-variants, other ways to decode in a worker
 * and stages of the old way (tests/bench/decode-variants.worker.ts; --variants picks some, names in
 * decode-variants.ts), each timed the same way; each candidate's pixels are compared with the app's and with the
 * ingest test's reference decode (jpeg-js + resizeRgb 'catmull-rom'). Prints one JSON object:
 *
 *   pillow              {images, seconds, cpu_seconds, cpu_ms_per_image, images_per_second, size, filter, pillow}
 *   app                 {decoders, seconds, cpu_seconds, cpu_ms_per_image, minor_faults_per_image,
 *                       images_per_second}: the ingest's path, decoders = ingest's default; cpu_seconds (and the
 *                       minor page faults) are all of Chromium's processes' (/proc) over the timed loop only, as
 *                       Pillow's: the workers are started and warmed up, and each image's input buffer is copied
 *                       (the harness's stand-in for reading the zip), before it. Page faults matter on VMs where
 *                       a first touch of fresh memory is slow (here ~30 µs a 4 kB page: ~0.7 ms for an 80 kB buffer).
 *   app_one_decoder     the same with one decoder (one core's worth, as Pillow)
 *   app_vs_reference    the app's pixels against the ingest test's reference decode, {images, mean_abs,
 *                       worst_image_mean_abs, max_abs} (tolerance 1, 1.5, 12)
 *   ratio               app.images_per_second / pillow.images_per_second (> 1: the app is faster)
 *   ratio_one_decoder   app_one_decoder / pillow
 *   cpu_ratio           pillow.cpu_ms_per_image / app.cpu_ms_per_image (> 1: the app spends less CPU per image).
 *                       Unlike the rates, CPU time per image barely moves with the load other jobs put on the
 *                       machine: the rates compare only on a quiet machine, this compares on a busy one too.
 *   one_decoder_per_core_vs_one_pillow
 *                       pillow.cpu_ms_per_image · app.decoders / app.cpu_ms_per_image: the app's rate with each
 *                       decoder on a core of its own against one Pillow process's on one core (> 1: the app's
 *                       decoders, one per core, out-decode one Pillow process). cpu_ratio is the per-core parity.
 *   variants            {name: {images_per_second, cpu_ms_per_image, workers, images, vs_app, vs_reference,
 *                       app_vs_reference, decoded_size}}; the diffs are {mean_abs, worst_image_mean_abs, max_abs}
 *                       in 8-bit levels over `images` files spread over the set (the ingest test's tolerance:
 *                       1, 1.5, 12 against the reference); decoded_size: the size ImageDecoder decoded at, if any
 *   stages              {name: {images_per_second, cpu_ms_per_image, workers}}: the old way cut short at each step
 *                       (stage-message: the worker round trip alone), to see where its CPU time goes
 *   hardware_concurrency, load_average (1-minute, start and end: other jobs share the cores), images, size, source */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'vite';
import { chromium } from 'playwright-core';
import { securityHeaders } from '../../deploy/security-headers.ts';
import { chromiumArgs, chromiumPath } from '../helpers/chromium.ts';
import { chromiumProcesses } from '../helpers/renderer-rss.ts';
import { readOriginals, readSmallImages } from '../helpers/zips.ts';
import { CANDIDATES, STAGES, type DecodeVariant } from './decode-variants.ts';

const root = resolve(import.meta.dirname, '..', '..');
const log = (message: string): void => void process.stderr.write(`[bench decode] ${message}\n`);
const VARIANTS: readonly DecodeVariant[] = [...CANDIDATES, ...STAGES];
const isStage = (v: string): boolean => (STAGES as readonly string[]).includes(v);

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

interface Harness {
  load(): Promise<number>;
  startApp(count: number, size: number, decoders: number): Promise<void>;
  runApp(count: number, size: number): Promise<{ seconds: number; decoders: number }>;
  stopApp(): void;
  startVariant(variant: string, count: number, size: number, workers: number): Promise<void>;
  runVariant(count: number, size: number): Promise<{ seconds: number; workers: number }>;
  stopVariant(): void;
  pixelDiff(variant: string, size: number, images: number): Promise<Record<string, unknown>>;
  decoders: number;
}

export async function bench(args: string[]) {
  const count = Number(option(args, 'count') ?? 2000);
  const size = Number(option(args, 'size') ?? 224);
  const small = args.includes('--small');
  const files = (small ? readSmallImages() : readOriginals()).map((image) => image.path);
  const python = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const loadStart = loadavg()[0];

  log(`Pillow: ${count} images from ${files.length} files at ${size} px`);
  const pillow = JSON.parse(
    execFileSync(
      python,
      [join(import.meta.dirname, 'decode_pillow.py'), String(size), String(count), ...files],
      {
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
      },
    ),
  ) as { images: number; seconds: number; cpu_ms_per_image: number; images_per_second: number };
  log(`Pillow: ${pillow.images_per_second.toFixed(1)} images/s`);

  const server = await createServer({
    configFile: false,
    root,
    logLevel: 'warn',
    server: { host: 'localhost', port: 0, strictPort: false, headers: securityHeaders, hmr: false },
    worker: { format: 'es' },
    optimizeDeps: { entries: ['tests/bench/decode-harness.html'] },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('the dev server has no port');
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    await page.goto(`http://localhost:${address.port}/tests/bench/decode-harness.html`);
    await page.waitForFunction(
      () => (globalThis as { benchDecode?: { ready: boolean } }).benchDecode?.ready,
      null,
      {
        timeout: 120_000,
      },
    );
    await page.setInputFiles('#jpegs', files);
    type Call =
      | { fn: 'load' }
      | { fn: 'startApp'; count: number; size: number; decoders: number }
      | { fn: 'runApp'; count: number; size: number }
      | { fn: 'stopApp' }
      | { fn: 'startVariant'; variant: string; count: number; size: number; workers: number }
      | { fn: 'runVariant'; count: number; size: number }
      | { fn: 'stopVariant' }
      | { fn: 'pixelDiff'; variant: string; size: number; images: number };
    // One entry point into the harness: page.evaluate runs outside the page's CSP, which forbids eval.
    const call = <T>(request: Call): Promise<T> =>
      page.evaluate<unknown, Call>((r): Promise<unknown> => {
        const h = (globalThis as unknown as { benchDecode: Harness }).benchDecode;
        switch (r.fn) {
          case 'load':
            return h.load();
          case 'startApp':
            return h.startApp(r.count, r.size, r.decoders);
          case 'runApp':
            return h.runApp(r.count, r.size);
          case 'stopApp':
            return Promise.resolve(h.stopApp());
          case 'startVariant':
            return h.startVariant(r.variant, r.count, r.size, r.workers);
          case 'runVariant':
            return h.runVariant(r.count, r.size);
          case 'stopVariant':
            return Promise.resolve(h.stopVariant());
          case 'pixelDiff':
            return h.pixelDiff(r.variant, r.size, r.images);
        }
      }, request) as Promise<T>;
    await call({ fn: 'load' });
    const decoders = await page.evaluate(
      () => (globalThis as unknown as { benchDecode: Harness }).benchDecode.decoders,
    );
    const rate = (r: { seconds: number }) => count / r.seconds;
    const chromiumUsage = () =>
      chromiumProcesses().reduce(
        (sum, p) => ({ cpuSeconds: sum.cpuSeconds + p.cpuTicks / 100, faults: sum.faults + p.minorFaults }),
        { cpuSeconds: 0, faults: 0 },
      );
    const withCpu = async <T extends { seconds: number }>(run: () => Promise<T>) => {
      const before = chromiumUsage();
      const result = await run();
      const after = chromiumUsage();
      const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
      return {
        ...result,
        cpu_seconds: cpuSeconds,
        cpu_ms_per_image: (1000 * cpuSeconds) / count,
        minor_faults_per_image: (after.faults - before.faults) / count,
      };
    };
    // Only the timed loop counts, as in decode_pillow.py: start and warm-up come first, stop after.
    const timedApp = async (n: number) => {
      await call({ fn: 'startApp', count, size, decoders: n });
      try {
        return await withCpu(() => call<{ seconds: number }>({ fn: 'runApp', count, size }));
      } finally {
        await call({ fn: 'stopApp' });
      }
    };
    const appRun = await timedApp(decoders);
    const app = { decoders, ...appRun, images_per_second: rate(appRun) };
    log(`app: ${app.images_per_second.toFixed(1)} images/s with ${decoders} decoders`);
    const oneRun = await timedApp(1);
    const appOne = { ...oneRun, decoders: 1, images_per_second: rate(oneRun) };
    log(`app, one decoder: ${appOne.images_per_second.toFixed(1)} images/s`);
    const appPixels = await call<{ app_vs_reference: unknown; images: number }>({
      fn: 'pixelDiff',
      variant: 'app',
      size,
      images: 30,
    });
    log(`app vs reference: ${JSON.stringify(appPixels.app_vs_reference)}`);
    const variants: Record<string, unknown> = {};
    const stages: Record<string, unknown> = {};
    const chosen = option(args, 'variants')?.split(',') ?? VARIANTS;
    const unknown = chosen.filter((v) => !(VARIANTS as readonly string[]).includes(v));
    if (unknown.length > 0)
      throw new Error(`unknown --variants ${unknown.join(', ')}: the choices are ${VARIANTS.join(', ')}`);
    if (!args.includes('--no-variants')) {
      for (const variant of chosen) {
        try {
          await call({ fn: 'startVariant', variant, count, size, workers: decoders });
          const run = await withCpu(() =>
            call<{ seconds: number }>({ fn: 'runVariant', count, size }),
          ).finally(() => call({ fn: 'stopVariant' }));
          const timing = {
            images_per_second: rate(run),
            cpu_ms_per_image: run.cpu_ms_per_image,
            minor_faults_per_image: run.minor_faults_per_image,
            workers: decoders,
          };
          if (isStage(variant)) {
            stages[variant] = timing;
            log(`${variant}: ${run.cpu_ms_per_image.toFixed(2)} CPU ms/image`);
          } else {
            const pixels = await call<Record<string, unknown>>({
              fn: 'pixelDiff',
              variant,
              size,
              images: 30,
            });
            variants[variant] = { ...timing, ...pixels };
            log(
              `${variant}: ${run.cpu_ms_per_image.toFixed(2)} CPU ms/image, pixels ${JSON.stringify(pixels)}`,
            );
          }
        } catch (error) {
          const failed = { error: error instanceof Error ? error.message : String(error) };
          if (isStage(variant)) stages[variant] = failed;
          else variants[variant] = failed;
          log(`${variant}: ${failed.error}`);
        }
      }
    }
    return {
      images: count,
      size,
      source: small ? 'all-200x150' : 'originals-600x450',
      files: files.length,
      pillow,
      app,
      app_one_decoder: appOne,
      app_vs_reference: { images: appPixels.images, ...(appPixels.app_vs_reference as object) },
      ratio: app.images_per_second / pillow.images_per_second,
      ratio_one_decoder: appOne.images_per_second / pillow.images_per_second,
      cpu_ratio: pillow.cpu_ms_per_image / app.cpu_ms_per_image,
      one_decoder_per_core_vs_one_pillow: (pillow.cpu_ms_per_image * decoders) / app.cpu_ms_per_image,
      variants,
      stages,
      hardware_concurrency: availableParallelism(),
      load_average: { start: loadStart, end: loadavg()[0] },
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
