/**
 * The page side of `npm run -s bench -- ingest` (tests/bench/ingest.bench.ts). Two measurements in the same page,
 * with the same decode workers and the same DecodePool:
 * - decodeOnly: the JPEG bytes are read into memory first, then the same sequence of images the ingest decodes
 *   (image i of the metadata is original i mod 240) goes through the decoders with nothing else running;
 * - ingest: the real pipeline through IngestClient, from the dropped archive to a committed OPFS cache;
 * and, with --read-only, what reading the archive costs alone (readOnly below).
 */
import { DecodePool } from '../../src/worker/decode-pool.ts';
import { defaultDecoderCount, IngestClient, type IngestEvent } from '../../src/worker/ingest-client.ts';
import type { ImageSize } from '../../src/lib/data/types.ts';
import { listZip } from '../../src/lib/data/archive.ts';
import { extractEntry, planReads, readRange } from '../../src/lib/data/zip-span.ts';

function filesOf(id: string): File[] {
  const input = document.getElementById(id) as HTMLInputElement;
  return [...(input.files ?? [])];
}

/**
 * Reading alone, on this thread, each unique image once, `concurrency` reads at a time:
 * - 'entries': ImageSource.read() from listZip, one File read per entry (what a single image costs);
 * - 'ranges': what the ingest pipeline does: planReads() groups neighbouring entries into reads of up to 32 MB,
 *   each entry is then taken out of its range with extractEntry() (inflate + CRC-32);
 * - 'range-reads': the same File reads as 'ranges' without extracting anything (the cost of moving the bytes).
 */
async function readOnly(
  concurrency: number,
  mode: 'entries' | 'ranges' | 'range-reads',
): Promise<{ seconds: number; images: number; bytes: number }> {
  const [archive] = filesOf('archive');
  if (archive === undefined) throw new Error('no archive was given');
  const listing = await listZip(archive, archive.name);
  let reads: Array<() => Promise<number>>;
  if (mode === 'entries') {
    reads = listing.images.map((image) => async () => (await image.read()).length);
  } else {
    const steps = planReads(listing.images, (image) => image.span);
    reads = steps.map((step) => async () => {
      if (step.kind === 'single') return (await step.item.read()).length;
      const { blob, start, end, members } = step.range;
      const chunk = await readRange(blob, start, end);
      if (mode === 'range-reads') return chunk.length;
      let bytes = 0;
      for (const { span } of members) bytes += extractEntry(chunk, start, span).length;
      return bytes;
    });
  }
  const started = performance.now();
  let next = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < reads.length) bytes += await reads[next++]!();
    }),
  );
  return { seconds: (performance.now() - started) / 1000, images: listing.images.length, bytes };
}

async function decodeOnly(count: number, size: ImageSize): Promise<{ seconds: number; decoders: number }> {
  const buffers = await Promise.all(filesOf('originals').map((f) => f.arrayBuffer()));
  if (buffers.length === 0) throw new Error('no originals were given');
  const decoders = defaultDecoderCount();
  const workers = Array.from(
    { length: decoders },
    () => new Worker(new URL('../../src/worker/decode.worker.ts', import.meta.url), { type: 'module' }),
  );
  const pool = new DecodePool(workers);
  // The same bound on images in flight as the ingest worker's read-ahead window.
  const window = decoders * pool.perDecoder + 4;
  try {
    // Warm-up (worker start, first canvas), outside the timing as in the ingest, whose workers start before it.
    await pool.decode(new Uint8Array(buffers[0]!.slice(0)), size);
    const started = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      while (inFlight.size >= window) await Promise.race(inFlight);
      const task: Promise<unknown> = pool
        .decode(new Uint8Array(buffers[i % buffers.length]!.slice(0)), size)
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

async function ingest(size: ImageSize) {
  const client = new IngestClient();
  let last: Extract<IngestEvent, { type: 'progress' }>['stages'] = [];
  let listing: (typeof last)[number] | undefined;
  client.on((e) => {
    if (e.type !== 'progress') return;
    last = e.stages;
    listing = e.stages.find((s) => s.stage === 'listing') ?? listing;
  });
  try {
    // Start from an empty cache so every run writes the whole file.
    await client.forget();
    const started = performance.now();
    const snapshot = await client.addFiles(filesOf('archive'));
    const addSeconds = (performance.now() - started) / 1000;
    if (snapshot.errors.length > 0) throw new Error(snapshot.errors.map((e) => e.message).join('\n'));
    const cache = await client.startCaching(size);
    const totalSeconds = (performance.now() - started) / 1000;
    return {
      entries: snapshot.listing?.entries ?? 0,
      uniqueImages: snapshot.listing?.images ?? 0,
      duplicates: snapshot.listing?.duplicates ?? 0,
      matched: snapshot.matched,
      cached: cache.count,
      listSeconds: listing?.elapsedSeconds ?? addSeconds,
      addFilesSeconds: addSeconds,
      totalSeconds,
      timings: cache.timings,
      stages: last,
    };
  } finally {
    await client.forget().catch(() => {});
    client.dispose();
  }
}

Object.assign(globalThis, { benchIngest: { decodeOnly, ingest, readOnly, ready: true } });
