/**
 * Shrinks JPEGs for `cli pack` on several cores: decoding and encoding with jpeg-js cost about 0.1 s per 600x450
 * image, so packing the full-size dataset on one core takes a quarter of an hour. Each worker thread runs
 * pack-worker.ts (TypeScript, loaded through tsx's API as the CLI itself is). With one job, no thread is started.
 * Results do not depend on the number of jobs: each image is shrunk by the same code, alone.
 * Each thread costs a second or two of start-up (tsx compiles the worker's modules again), and on a 2-core machine
 * already busy with other work, 2 jobs were measured slower than 1 (240 originals: 47–78 s against 31–36 s), so
 * `cli pack` uses one thread unless given `--jobs`.
 */
import { Worker } from 'node:worker_threads';
import { downscaleJpeg, type Target } from './jpeg-codec.ts';

export interface PoolRequest {
  id: number;
  bytes: Uint8Array;
  target: Target;
  quality: number;
}

export type PoolResponse = { id: number; bytes: Uint8Array } | { id: number; error: string };

interface Waiting {
  resolve(bytes: Uint8Array): void;
  reject(error: Error): void;
}

export class DownscalePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ request: PoolRequest; waiting: Waiting }> = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private failure: Error | null = null;

  constructor(readonly jobs: number) {
    if (jobs <= 1) return;
    const script = new URL('./pack-worker.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(script)}); });`;
    for (let i = 0; i < jobs; i++) {
      const worker = new Worker(boot, { eval: true });
      worker.on('message', (response: PoolResponse) => this.settle(worker, response));
      worker.on('error', (error) => this.fail(error));
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  downscale(bytes: Uint8Array, target: Target, quality: number): Promise<Uint8Array> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.workers.length === 0) {
      try {
        return Promise.resolve(downscaleJpeg(bytes, target, quality));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      this.queue.push({
        request: { id: this.nextId++, bytes, target, quality },
        waiting: { resolve, reject },
      });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop() as Worker;
      const { request, waiting } = this.queue.shift() as (typeof this.queue)[number];
      this.waiting.set(request.id, waiting);
      worker.postMessage(request);
    }
  }

  private settle(worker: Worker, response: PoolResponse): void {
    const waiting = this.waiting.get(response.id);
    this.waiting.delete(response.id);
    this.idle.push(worker);
    if ('error' in response) waiting?.reject(new Error(response.error));
    else waiting?.resolve(response.bytes);
    this.pump();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.waiting.values()) waiting.reject(error);
    this.waiting.clear();
    for (const { waiting } of this.queue.splice(0)) waiting.reject(error);
  }
}
