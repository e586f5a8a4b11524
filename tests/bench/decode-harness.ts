/**
 * The page `bench decode` drives (tests/bench/decode.bench.ts). The JPEGs' bytes are read into memory first; then
 * the same sequence of images (image i is file i mod n) is decoded and squashed to size×size:
 * - startApp / runApp / stopApp: by the app's own decode workers and DecodePool, as the ingest does
 *   (src/worker/decode.worker.ts);
 * - startVariant / runVariant / stopVariant: by decode-variants.worker.ts, one way at a time, with the same number
 *   of workers and two images in flight on each.
 * start* starts the workers, warms them up and copies the inputs; only run* is timed (its wall and CPU time), as
 * decode_pillow.py times only its loop;
 * - pixelDiff: a variant's pixels against the app's, and against the reference decode the ingest test uses
 *   (tests/browser/ingest.test.ts: jpeg-js, then resizeRgb's 'catmull-rom' squash), on images spread over the files.
 */
import jpeg from 'jpeg-js';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { DecodePool } from '../../src/worker/decode-pool.ts';
import type { ImageSize } from '../../src/lib/data/types.ts';
import type { DecodeVariant } from './decode-variants.ts';
import { defaultDecoderCount } from '../../src/worker/ingest-client.ts';

let buffers: ArrayBuffer[] = [];

async function load(): Promise<number> {
  const input = document.querySelector<HTMLInputElement>('#jpegs');
  buffers = await Promise.all([...(input?.files ?? [])].map((f) => f.arrayBuffer()));
  if (buffers.length === 0) throw new Error('no JPEGs were given');
  return buffers.length;
}

const bytesOf = (i: number): ArrayBuffer => (buffers[i % buffers.length] as ArrayBuffer).slice(0);

/**
 * The timed loops' inputs, copied before the timing: each image's bytes are transferred to a worker, so each needs
 * its own buffer, and making it is the harness's stand-in for reading the zip (Pillow's loop reads from memory
 * too). On this machine a fresh 80 kB buffer costs ~0.7–1.3 ms of page faults, as much as a third of a decode, so
 * copying inside the loop would charge the decoder for it.
 */
let inputs: ArrayBuffer[] = [];

function prepareInputs(count: number): void {
  inputs = Array.from({ length: count }, (_, i) => bytesOf(i));
}

function takeInput(i: number): ArrayBuffer {
  const input = inputs[i];
  if (input === undefined) throw new Error(`input ${i} was not prepared (or was used already)`);
  inputs[i] = new ArrayBuffer(0);
  return input;
}

/** The app's decode workers and DecodePool, started and warmed up, for runApp to time. */
let app: { workers: Worker[]; pool: DecodePool; decoders: number } | null = null;

async function startApp(count: number, size: ImageSize, decoders: number): Promise<void> {
  stopApp();
  const workers = Array.from(
    { length: decoders },
    () => new Worker(new URL('../../src/worker/decode.worker.ts', import.meta.url), { type: 'module' }),
  );
  const pool = new DecodePool(workers);
  app = { workers, pool, decoders };
  // Warm-up (worker start, first decode) outside the timing, as the ingest's decoders start before it.
  await Promise.all(workers.map(() => pool.decode(new Uint8Array(bytesOf(0)), size)));
  prepareInputs(count);
}

async function runApp(count: number, size: ImageSize) {
  if (app === null) throw new Error('startApp first');
  const { pool, decoders } = app;
  const window = decoders * pool.perDecoder + 4;
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < count; i++) {
    while (inFlight.size >= window) await Promise.race(inFlight);
    // The pixels go back to the pool once received, as the ingest gives them back once written.
    const task: Promise<unknown> = pool
      .decode(new Uint8Array(takeInput(i)), size)
      .then((pixels) => pool.recycle(pixels))
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  }
  await Promise.all(inFlight);
  return { seconds: (performance.now() - started) / 1000, decoders };
}

function stopApp(): void {
  if (app === null) return;
  app.pool.close(new Error('done'));
  for (const w of app.workers) w.terminate();
  app = null;
  inputs = [];
}

interface Decoded {
  pixels: Uint8Array;
  /** The size the worker decoded at, when it says (the variants that read a VideoFrame). */
  decoded: [number, number] | null;
}

interface VariantWorker {
  worker: Worker;
  pending: Map<number, { resolve(p: Decoded): void; reject(e: Error): void }>;
}

function variantWorkers(count: number): VariantWorker[] {
  return Array.from({ length: count }, () => {
    const worker = new Worker(new URL('./decode-variants.worker.ts', import.meta.url), { type: 'module' });
    const lane: VariantWorker = { worker, pending: new Map() };
    worker.onmessage = (
      e: MessageEvent<{ id: number; pixels?: Uint8Array; decoded?: [number, number] | null; error?: string }>,
    ) => {
      const job = lane.pending.get(e.data.id);
      lane.pending.delete(e.data.id);
      if (e.data.error !== undefined) job?.reject(new Error(e.data.error));
      else job?.resolve({ pixels: e.data.pixels as Uint8Array, decoded: e.data.decoded ?? null });
    };
    return lane;
  });
}

let nextId = 1;
function send(
  lane: VariantWorker,
  variant: DecodeVariant,
  bytes: ArrayBuffer,
  size: number,
): Promise<Decoded> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    lane.pending.set(id, { resolve, reject });
    lane.worker.postMessage({ id, variant, bytes, size }, [bytes]);
  });
}

/** decode-variants.worker.ts's workers, started and warmed up on one variant, for runVariant to time. */
let variantLanes: { lanes: VariantWorker[]; variant: DecodeVariant; workers: number } | null = null;

async function startVariant(variant: DecodeVariant, count: number, size: number, workers: number) {
  stopVariant();
  const lanes = variantWorkers(workers);
  variantLanes = { lanes, variant, workers };
  await Promise.all(lanes.map((lane) => send(lane, variant, bytesOf(0), size)));
  prepareInputs(count);
}

async function runVariant(count: number, size: number) {
  if (variantLanes === null) throw new Error('startVariant first');
  const { lanes, variant, workers } = variantLanes;
  const started = performance.now();
  let next = 0;
  // Two in flight per worker, like DecodePool's perDecoder.
  const runLane = async (lane: VariantWorker) => {
    while (next < count) {
      const i = next++;
      await send(lane, variant, takeInput(i), size);
    }
  };
  await Promise.all(lanes.flatMap((lane) => [runLane(lane), runLane(lane)]));
  return { seconds: (performance.now() - started) / 1000, workers };
}

function stopVariant(): void {
  if (variantLanes === null) return;
  for (const lane of variantLanes.lanes) lane.worker.terminate();
  variantLanes = null;
  inputs = [];
}

const references = new Map<string, Uint8Array>();

/** The ingest test's reference: jpeg-js's decode squashed by resizeRgb's 'catmull-rom' (tests/browser/ingest.test.ts). */
function referenceOf(file: number, size: number): Uint8Array {
  const key = `${file}@${size}`;
  let reference = references.get(key);
  if (reference === undefined) {
    const decoded = jpeg.decode(new Uint8Array(bytesOf(file)), { useTArray: true, formatAsRGBA: false });
    const source = { width: decoded.width, height: decoded.height, data: decoded.data, channels: 3 as const };
    reference = resizeRgb(source, size, size, 'catmull-rom').data;
    references.set(key, reference);
  }
  return reference;
}

class Difference {
  private sum = 0;
  private n = 0;
  private max = 0;
  private worstImageMean = 0;
  add(a: Uint8Array, b: Uint8Array): void {
    if (a.length !== b.length) throw new Error(`pixel buffers differ in length: ${a.length} vs ${b.length}`);
    let imageSum = 0;
    for (let k = 0; k < a.length; k++) {
      const d = Math.abs((a[k] as number) - (b[k] as number));
      imageSum += d;
      if (d > this.max) this.max = d;
    }
    this.sum += imageSum;
    this.n += a.length;
    this.worstImageMean = Math.max(this.worstImageMean, imageSum / a.length);
  }
  get json() {
    return { mean_abs: this.sum / this.n, worst_image_mean_abs: this.worstImageMean, max_abs: this.max };
  }
}

/**
 * A variant's pixels against the app's and against the reference, on `images` files spread evenly over the set
 * (the ingest test takes 14, two per class).
 */
async function pixelDiff(variant: DecodeVariant, size: number, images: number) {
  const [lane] = variantWorkers(1);
  if (!lane) throw new Error('no worker');
  try {
    const vsApp = new Difference();
    const vsReference = new Difference();
    const appVsReference = new Difference();
    let decoded: [number, number] | null = null;
    const n = Math.min(images, buffers.length);
    for (let j = 0; j < n; j++) {
      const file = Math.floor((j * buffers.length) / n);
      const app = (await send(lane, 'app', bytesOf(file), size)).pixels;
      const theirs = await send(lane, variant, bytesOf(file), size);
      decoded = theirs.decoded;
      const reference = referenceOf(file, size);
      vsApp.add(app, theirs.pixels);
      vsReference.add(reference, theirs.pixels);
      appVsReference.add(reference, app);
    }
    return {
      images: n,
      vs_app: vsApp.json,
      vs_reference: vsReference.json,
      app_vs_reference: appVsReference.json,
      decoded_size: decoded,
    };
  } finally {
    lane.worker.terminate();
  }
}

Object.assign(globalThis, {
  benchDecode: {
    load,
    startApp,
    runApp,
    stopApp,
    startVariant,
    runVariant,
    stopVariant,
    pixelDiff,
    decoders: defaultDecoderCount(),
    ready: true,
  },
});
