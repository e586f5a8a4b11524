/// <reference lib="webworker" />
/**
 * Decode worker: encoded JPEG/PNG bytes in, square RGB pixels out. Several run side by side (DecodePool); the
 * IngestClient creates them and wires each to the ingest worker with a MessagePort ({type: 'connect', port}).
 * Requests may also come straight from the owner of the worker (the ingest benchmark measures decoding alone
 * that way).
 *
 * The pixels come from decodeSquare (decode-square.ts), which Predict uses too.
 */
import { decodeSquare } from './decode-square.ts';
import type { DecodeRequest, DecodeResponse } from './ingest-protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

async function decode(bytes: ArrayBuffer, size: number, into?: ArrayBuffer): Promise<ArrayBuffer> {
  return (await decodeSquare(bytes, size, into)).buffer as ArrayBuffer;
}

type Reply = (message: DecodeResponse, transfer?: Transferable[]) => void;

async function handle(request: DecodeRequest, reply: Reply): Promise<void> {
  if (request.bytes.byteLength === 0) {
    reply({
      type: 'decode-failed',
      id: request.id,
      message: 'the file is empty (0 bytes): it holds no image',
    });
    return;
  }
  try {
    const pixels = await decode(request.bytes, request.size, request.into);
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
