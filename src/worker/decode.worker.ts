/// <reference lib="webworker" />
/**
 * Decode worker: encoded JPEG/PNG bytes in, square RGB pixels out. Several run side by side (DecodePool); the
 * IngestClient creates them and wires each to the ingest worker with a MessagePort ({type: 'connect', port}).
 * Requests may also come straight from the owner of the worker (the ingest benchmark measures decoding alone
 * that way).
 *
 * Decoding and resizing are native: createImageBitmap(blob, {resizeWidth, resizeHeight, resizeQuality: 'high'})
 * squashes the image to size x size (RESIZE_NOTE in src/lib/data/resize.ts says why squash, not crop), then a
 * 2D OffscreenCanvas hands back the pixels. Colour profiles and EXIF orientation are ignored, as Keras/PIL
 * (the seed's loader) ignore them, so the cache matches what the seed trained on.
 */
import type { DecodeRequest, DecodeResponse } from './ingest-protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

let canvas: OffscreenCanvas | null = null;
let context: OffscreenCanvasRenderingContext2D | null = null;

function contextOf(size: number): OffscreenCanvasRenderingContext2D {
  if (canvas === null || context === null || canvas.width !== size || canvas.height !== size) {
    canvas = new OffscreenCanvas(size, size);
    // willReadFrequently keeps the canvas in CPU memory: getImageData then costs a copy, not a GPU readback.
    context = canvas.getContext('2d', { willReadFrequently: true, alpha: true });
    if (context === null) throw new Error('this browser gives workers no 2D OffscreenCanvas');
  }
  return context;
}

async function decode(bytes: ArrayBuffer, size: number): Promise<ArrayBuffer> {
  const bitmap = await createImageBitmap(new Blob([bytes]), {
    resizeWidth: size,
    resizeHeight: size,
    resizeQuality: 'high',
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  try {
    const ctx = contextOf(size);
    // A PNG with transparency is composited on black, the same every time, as the cache has no alpha.
    ctx.clearRect(0, 0, size, size);
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, size, size).data;
    const rgb = new Uint8Array(size * size * 3);
    for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
      rgb[q] = rgba[p] as number;
      rgb[q + 1] = rgba[p + 1] as number;
      rgb[q + 2] = rgba[p + 2] as number;
    }
    return rgb.buffer;
  } finally {
    bitmap.close();
  }
}

type Reply = (message: DecodeResponse, transfer?: Transferable[]) => void;

async function handle(request: DecodeRequest, reply: Reply): Promise<void> {
  try {
    const pixels = await decode(request.bytes, request.size);
    reply({ type: 'decoded', id: request.id, pixels }, [pixels]);
  } catch (error) {
    const message =
      error instanceof Error && error.name === 'InvalidStateError'
        ? 'the bytes are not an image this browser can decode (damaged or not a JPEG/PNG)'
        : error instanceof Error
          ? error.message
          : String(error);
    reply({ type: 'decode-failed', id: request.id, message });
  }
}

function isDecodeRequest(data: unknown): data is DecodeRequest {
  return typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'decode';
}

scope.addEventListener('message', (event: MessageEvent<unknown>) => {
  const data = event.data;
  if (typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'connect') {
    const port = (data as { port: MessagePort }).port;
    port.onmessage = (e: MessageEvent<unknown>) => {
      if (isDecodeRequest(e.data)) void handle(e.data, (m, t) => port.postMessage(m, t ?? []));
    };
    return;
  }
  if (isDecodeRequest(data)) void handle(data, (m, t) => scope.postMessage(m, t ?? []));
});
