/** A worker thread of DownscalePool (pack-pool.ts): shrinks the JPEGs it is sent, one at a time. */
import { parentPort } from 'node:worker_threads';
import { downscaleJpeg } from './jpeg-codec.ts';
import type { PoolRequest, PoolResponse } from './pack-pool.ts';

const port = parentPort;
if (port === null) throw new Error('pack-worker.ts runs as a worker thread of DownscalePool');
port.on('message', ({ id, bytes, target, quality }: PoolRequest) => {
  let response: PoolResponse;
  try {
    const out = downscaleJpeg(bytes, target, quality);
    response = { id, bytes: out };
    port.postMessage(response, [out.buffer as ArrayBuffer]);
  } catch (error) {
    response = { id, error: error instanceof Error ? error.message : String(error) };
    port.postMessage(response);
  }
});
