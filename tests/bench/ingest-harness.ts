/**
 * The page side of `npm run -s bench -- ingest` (tests/bench/ingest.bench.ts). Two measurements in the same page,
 * with the same decode workers and the same DecodePool:
 * - decodeOnly: the JPEG bytes are read into memory first, then the same sequence of images the ingest decodes
 *   (image i of the metadata is original i mod 240) goes through the decoders with nothing else running;
 * - ingest: the real pipeline through IngestClient, from the dropped archive to a committed OPFS cache;
 * and, with --read-only, diagnostics of what reading an archive costs (readOnly below).
 */
import { DecodePool } from '../../src/worker/decode-pool.ts';
import { defaultDecoderCount, IngestClient, type IngestEvent } from '../../src/worker/ingest-client.ts';
import type { ImageSize } from '../../src/lib/data/types.ts';
import { listZip } from '../../src/lib/data/archive.ts';
import { BlobReader, ZipReader } from '@zip.js/zip.js';

function filesOf(id: string): File[] {
  const input = document.getElementById(id) as HTMLInputElement;
  return [...(input.files ?? [])];
}

/**
 * Reading alone, on this thread, each unique image once, `concurrency` at a time:
 * - 'archive': ImageSource.read() from listZip (zip.js getData: what the pipeline does);
 * - 'single-read': for comparison, one Blob.slice().arrayBuffer() per entry (local header + data, located from
 *   zip.js's central directory), inflated with DecompressionStream when deflated, no CRC check;
 * - 'spans': as many bytes as the images hold, read from the start of the archive in 8 MB slices (the cost of
 *   moving bytes out of a File, without per-entry calls or inflating);
 * - 'inflate-memory': the compressed bytes of the first 30 entries read once, then inflated over and over with
 *   DecompressionStream, as many times as there are images (the cost of inflating alone).
 */
async function readOnly(
  concurrency: number,
  mode: 'archive' | 'single-read' | 'spans' | 'inflate-memory',
): Promise<{ seconds: number; images: number; bytes: number }> {
  const [archive] = filesOf('archive');
  if (archive === undefined) throw new Error('no archive was given');
  let reads: Array<() => Promise<number>>;
  if (mode === 'inflate-memory') {
    const reader = new ZipReader(new BlobReader(archive), { useWebWorkers: false });
    const all = (await reader.getEntries()).filter((e) => !e.directory && e.filename.endsWith('.jpg'));
    const count = all.length / 2;
    const samples: Array<Uint8Array<ArrayBuffer>> = [];
    for (const entry of all.slice(0, 30)) {
      const span = 30 + entry.rawFilename.length + 1024 + entry.compressedSize;
      const bytes = new Uint8Array(await archive.slice(entry.offset, entry.offset + span).arrayBuffer());
      const view = new DataView(bytes.buffer);
      const start = 30 + view.getUint16(26, true) + view.getUint16(28, true);
      samples.push(bytes.slice(start, start + entry.compressedSize));
      if (entry.compressionMethod !== 8) throw new Error('inflate-memory needs a deflated archive');
    }
    reads = Array.from({ length: count }, (_, i) => async () => {
      const stream = new DecompressionStream('deflate-raw');
      const writer = stream.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array<ArrayBuffer>>;
      void writer.write(samples[i % samples.length]!).then(() => writer.close());
      return (await new Response(stream.readable).arrayBuffer()).byteLength;
    });
  } else if (mode === 'spans') {
    const listing = await listZip(archive, archive.name);
    const total = listing.images.reduce((sum, image) => sum + image.size, 0);
    const chunk = 8 * 1024 * 1024;
    reads = Array.from({ length: Math.ceil(total / chunk) }, (_, i) => async () => {
      const end = Math.min(total, (i + 1) * chunk);
      return (await archive.slice(i * chunk, end).arrayBuffer()).byteLength;
    });
  } else if (mode === 'archive') {
    const listing = await listZip(archive, archive.name);
    reads = listing.images.map((image) => async () => (await image.read()).length);
  } else {
    const reader = new ZipReader(new BlobReader(archive), { useWebWorkers: false });
    const seen = new Set<string>();
    const entries = [];
    for (const entry of await reader.getEntries()) {
      const id = entry.filename.split('/').pop() ?? '';
      if (entry.directory || !id.endsWith('.jpg') || seen.has(id)) continue;
      seen.add(id);
      entries.push(entry);
    }
    reads = entries.map((entry) => async () => {
      // 30-byte local header + name + extra field (≤ 64 KiB; Zip64 extras are small), then the data.
      const span = 30 + entry.rawFilename.length + 1024 + entry.compressedSize;
      const bytes = new Uint8Array(await archive.slice(entry.offset, entry.offset + span).arrayBuffer());
      const view = new DataView(bytes.buffer);
      const start = 30 + view.getUint16(26, true) + view.getUint16(28, true);
      const data = bytes.subarray(start, start + entry.compressedSize);
      if (entry.compressionMethod === 0) return data.length;
      const inflated = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
      return (await new Response(inflated).arrayBuffer()).byteLength;
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
  return { seconds: (performance.now() - started) / 1000, images: reads.length, bytes };
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
