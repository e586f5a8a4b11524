/**
 * The weights the app serves (public/models/), read over real HTTP the way the train worker reads them: the committed
 * copy is the real ImageNet backbone, and a missing file reads as "not served" whether the host answers 404 or an
 * SPA fallback page, never as a JSON parse error.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isModelServed,
  ServedWeightsMissingError,
  servedModelFiles,
  servedModelPath,
} from '../../src/lib/model/weights/served.ts';
import { filesIOHandler, readTfjsLayersWeights } from '../../src/lib/model/weights/index.ts';
import { buildBackbone } from '../../src/lib/model/backbones/index.ts';
import { assignWeights } from '../../src/lib/model/weights/assign.ts';

const root = join(import.meta.dirname, '..', '..');
const publicDir = join(root, 'public');
const sharedWeights = join(root, '..', 'shared', 'weights', 'tfjs-mobilenet-v2-0.35-224-notop');

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Serves public/ like a static host; unknown paths get index-like HTML (SPA fallback) or a 404. */
function serve(fallback: 'spa' | '404'): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    try {
      if (path.includes('..')) throw new Error('no');
      const body = readFileSync(join(publicDir, path));
      res.writeHead(200, {
        'content-type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      });
      res.end(body);
    } catch {
      if (fallback === 'spa') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><html><body><div id="app"></div></body></html>');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` }),
    ),
  );
}

describe('served weights', () => {
  let spa: { server: Server; base: string };
  let strict: { server: Server; base: string };
  beforeAll(async () => {
    await tf.setBackend('cpu');
    spa = await serve('spa');
    strict = await serve('404');
  });
  afterAll(() => {
    spa.server.close();
    strict.server.close();
  });

  it('ships the real MobileNetV2 0.35 ImageNet weights for the default backbone', () => {
    for (const name of ['model.json', 'group1-shard1of1.bin']) {
      expect(sha256(join(publicDir, 'models', 'mobilenet_v2_0.35', name))).toBe(
        sha256(join(sharedWeights, name)),
      );
    }
  });

  it('reads the served default weights into the default backbone, every weight matching', async () => {
    const url = new URL(servedModelPath('mobilenet_v2_0.35'), spa.base).href;
    expect(await isModelServed(url)).toBe(true);
    const weights = await readTfjsLayersWeights(filesIOHandler(await servedModelFiles(url)));
    const model = buildBackbone('mobilenet_v2_0.35');
    try {
      const report = assignWeights(model, weights, url);
      expect(report.arrays).toBe(260);
      expect(model.countParams()).toBe(410_208);
    } finally {
      model.dispose();
    }
  });

  it.each(['spa', '404'] as const)('says a backbone is not served when the host answers %s', async (kind) => {
    const base = kind === 'spa' ? spa.base : strict.base;
    const url = new URL(servedModelPath('vgg16'), base).href;
    expect(await isModelServed(url)).toBe(false);
    const error = await servedModelFiles(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServedWeightsMissingError);
    expect((error as Error).message).toBe(
      `no weights are served at ${url} (${kind === 'spa' ? 'the server answered with an HTML page, so the file is not there' : 'HTTP 404'})`,
    );
  });

  it('names a missing shard by its URL', async () => {
    // A model.json that lists a shard the server does not have.
    const server = createServer((req, res) => {
      if (req.url === '/m/model.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(readFileSync(join(publicDir, 'models', 'mobilenet_v2_0.35', 'model.json')));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const error = await readTfjsLayersWeights(
        filesIOHandler(await servedModelFiles(`${base}/m/model.json`)),
      ).catch((e: unknown) => e);
      expect((error as Error).message).toBe(
        `no weights are served at ${base}/m/group1-shard1of1.bin (HTTP 404)`,
      );
    } finally {
      server.close();
    }
  });
});
