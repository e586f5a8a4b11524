/**
 * Spreads decode requests over several decode workers (or MessagePorts wired to them), at most
 * `perDecoder` in flight on each, and queues the rest in order. Used by the ingest worker, and by the ingest
 * benchmark to time decoding alone with exactly the same code.
 */
import type { DecodeRequest, DecodeResponse } from './ingest-protocol.ts';
import type { ImageSize } from '../lib/data/types.ts';

/** A Worker or a MessagePort. */
export interface DecodeEndpoint {
  postMessage(message: DecodeRequest, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}

/** An image the browser could not decode; the pipeline skips it and reports it. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

interface Job {
  id: number;
  bytes: ArrayBuffer;
  size: ImageSize;
  resolve(pixels: Uint8Array): void;
  reject(error: unknown): void;
}

interface Lane {
  endpoint: DecodeEndpoint;
  listener: (event: MessageEvent) => void;
  inFlight: Map<number, Job>;
}

export class DecodePool {
  private readonly lanes: Lane[];
  private readonly waiting: Job[] = [];
  /** Answered pixel buffers given back (recycle), sent along with the next requests of their size. */
  private readonly spare: ArrayBuffer[] = [];
  private nextId = 1;
  private closedWith: unknown = null;
  private closed = false;

  constructor(
    endpoints: readonly DecodeEndpoint[],
    /** Two per decoder keeps each busy while its last result travels back. */
    readonly perDecoder = 2,
  ) {
    if (endpoints.length === 0) throw new Error('a decode pool needs at least one decoder');
    this.lanes = endpoints.map((endpoint) => {
      const lane: Lane = { endpoint, listener: () => {}, inFlight: new Map() };
      lane.listener = (event: MessageEvent) => this.onResponse(lane, event.data as DecodeResponse);
      endpoint.addEventListener('message', lane.listener);
      // A MessagePort only delivers to addEventListener listeners once started.
      (endpoint as Partial<MessagePort>).start?.();
      return lane;
    });
  }

  get decoders(): number {
    return this.lanes.length;
  }

  /** Requests being decoded right now (not counting queued ones). */
  get inFlight(): number {
    return this.lanes.reduce((n, lane) => n + lane.inFlight.size, 0);
  }

  /** Requests sent or queued and not answered yet. */
  get pending(): number {
    return this.inFlight + this.waiting.length;
  }

  /**
   * Decodes `bytes` to size·size·3 RGB. The bytes are transferred (the caller's view is detached afterwards)
   * unless they are a view on part of a larger buffer, which is copied.
   */
  decode(bytes: Uint8Array, size: ImageSize): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(this.closedWith);
    const buffer =
      bytes.byteOffset === 0 &&
      bytes.byteLength === bytes.buffer.byteLength &&
      bytes.buffer instanceof ArrayBuffer
        ? bytes.buffer
        : bytes.slice().buffer;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, bytes: buffer, size, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Gives back pixels a decode answered, once the caller is done with them (it must not touch them afterwards:
   * the buffer is transferred to a decoder with a later request, which writes the next image into it). Saves
   * the decoder a fresh 150 kB per image (see DecodeRequest.into). Views on part of a buffer are ignored.
   */
  recycle(pixels: Uint8Array): void {
    const buffer = pixels.buffer;
    if (this.closed || !(buffer instanceof ArrayBuffer)) return;
    if (pixels.byteOffset !== 0 || pixels.byteLength !== buffer.byteLength) return;
    if (this.spare.length < this.lanes.length * this.perDecoder + 2) this.spare.push(buffer);
  }

  /** Rejects everything pending with `reason` and stops listening; the decoders themselves are the owner's. */
  close(reason: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = reason;
    for (const lane of this.lanes) {
      lane.endpoint.removeEventListener('message', lane.listener);
      for (const job of lane.inFlight.values()) job.reject(reason);
      lane.inFlight.clear();
    }
    for (const job of this.waiting.splice(0)) job.reject(reason);
    this.spare.length = 0;
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let best: Lane | null = null;
      for (const lane of this.lanes) {
        if (
          lane.inFlight.size < this.perDecoder &&
          (best === null || lane.inFlight.size < best.inFlight.size)
        ) {
          best = lane;
        }
      }
      if (best === null) return;
      const job = this.waiting.shift() as Job;
      best.inFlight.set(job.id, job);
      const at = this.spare.findIndex((b) => b.byteLength === job.size * job.size * 3);
      const into = at >= 0 ? this.spare.splice(at, 1)[0] : undefined;
      const request: DecodeRequest = { type: 'decode', id: job.id, bytes: job.bytes, size: job.size };
      if (into === undefined) best.endpoint.postMessage(request, [job.bytes]);
      else best.endpoint.postMessage({ ...request, into }, [job.bytes, into]);
    }
  }

  private onResponse(lane: Lane, response: DecodeResponse): void {
    const job = lane.inFlight.get(response.id);
    if (job === undefined) return;
    lane.inFlight.delete(response.id);
    if (response.type === 'decoded') job.resolve(new Uint8Array(response.pixels));
    else job.reject(new DecodeError(response.message));
    this.dispatch();
  }
}
