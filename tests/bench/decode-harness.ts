/**
 * The page `bench decode` drives (tests/bench/decode.bench.ts). The JPEGs' bytes are read into memory first; then
 * the same sequence of images (image i is file i mod n) is decoded and squashed to size×size:
 * - appDecode: by the app's own decode workers and DecodePool, as the ingest does (src/worker/decode.worker.ts);
 * - variantDecode: by decode-variants.worker.ts, one way at a time, with the same number of workers and two images
 *   in flight on each;
 * - pixelDiff: a variant's pixels against the app's on the first images.
 */
import { DecodePool } from '../../src/worker/decode-pool.ts';
import type { ImageSize } from '../../src/lib/data/types.ts';
import type { DecodeVariant } from './decode-variants.worker.ts';
import { defaultDecoderCount } from '../../src/worker/ingest-client.ts';

let buffers: ArrayBuffer[] = [];

async function load(): Promise<number> {
  const input = document.querySelector<HTMLInputElement>('#jpegs');
  buffers = await Promise.all([...(input?.files ?? [])].map((f) => f.arrayBuffer()));
  if (buffers.length === 0) throw new Error('no JPEGs were given');
  return buffers.length;
}

const bytesOf = (i: number): ArrayBuffer => (buffers[i % buffers.length] as ArrayBuffer).slice(0);

async function appDecode(count: number, size: ImageSize, decoders: number) {
  const workers = Array.from(
    { length: decoders },
    () => new Worker(new URL('../../src/worker/decode.worker.ts', import.meta.url), { type: 'module' }),
  );
  const pool = new DecodePool(workers);
  const window = decoders * pool.perDecoder + 4;
  try {
    // Warm-up (worker start, first canvas) outside the timing, as the ingest's decoders start before it.
    await Promise.all(workers.map(() => pool.decode(new Uint8Array(bytesOf(0)), size)));
    const started = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      while (inFlight.size >= window) await Promise.race(inFlight);
      const task: Promise<unknown> = pool
        .decode(new Uint8Array(bytesOf(i)), size)
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    }
    await Promise.all(inFlight);
    return { seconds: (performance.now() - started) / 1000, decoders };
  } finally {
    pool.close(new Error('done'));
    for (const w of workers) w.terminate();
  }
}

interface VariantWorker {
  worker: Worker;
  pending: Map<number, { resolve(p: Uint8Array): void; reject(e: Error): void }>;
}

function variantWorkers(count: number): VariantWorker[] {
  return Array.from({ length: count }, () => {
    const worker = new Worker(new URL('./decode-variants.worker.ts', import.meta.url), { type: 'module' });
    const lane: VariantWorker = { worker, pending: new Map() };
    worker.onmessage = (e: MessageEvent<{ id: number; pixels?: Uint8Array; error?: string }>) => {
      const job = lane.pending.get(e.data.id);
      lane.pending.delete(e.data.id);
      if (e.data.error !== undefined) job?.reject(new Error(e.data.error));
      else job?.resolve(e.data.pixels as Uint8Array);
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
): Promise<Uint8Array> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    lane.pending.set(id, { resolve, reject });
    lane.worker.postMessage({ id, variant, bytes, size }, [bytes]);
  });
}

async function variantDecode(variant: DecodeVariant, count: number, size: number, workers: number) {
  const lanes = variantWorkers(workers);
  try {
    await Promise.all(lanes.map((lane) => send(lane, variant, bytesOf(0), size)));
    const started = performance.now();
    let next = 0;
    // Two in flight per worker, like DecodePool's perDecoder.
    const runLane = async (lane: VariantWorker) => {
      while (next < count) {
        const i = next++;
        await send(lane, variant, bytesOf(i), size);
      }
    };
    await Promise.all(lanes.flatMap((lane) => [runLane(lane), runLane(lane)]));
    return { seconds: (performance.now() - started) / 1000, workers };
  } finally {
    for (const lane of lanes) lane.worker.terminate();
  }
}

async function pixelDiff(variant: DecodeVariant, size: number, images: number) {
  const [lane] = variantWorkers(1);
  if (!lane) throw new Error('no worker');
  try {
    let sum = 0;
    let n = 0;
    let max = 0;
    let worstImageMean = 0;
    for (let i = 0; i < Math.min(images, buffers.length); i++) {
      const ours = await send(lane, 'bitmap-resize', bytesOf(i), size);
      const theirs = await send(lane, variant, bytesOf(i), size);
      let imageSum = 0;
      for (let k = 0; k < ours.length; k++) {
        const d = Math.abs((ours[k] as number) - (theirs[k] as number));
        imageSum += d;
        if (d > max) max = d;
      }
      sum += imageSum;
      n += ours.length;
      worstImageMean = Math.max(worstImageMean, imageSum / ours.length);
    }
    return { mean_abs: sum / n, worst_image_mean_abs: worstImageMean, max_abs: max };
  } finally {
    lane.worker.terminate();
  }
}

Object.assign(globalThis, {
  benchDecode: { load, appDecode, variantDecode, pixelDiff, decoders: defaultDecoderCount(), ready: true },
});
