import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '../helpers/zips.ts';
import { parseRange, startStaticServer, type StaticServer } from '../helpers/static-server.ts';

describe('parseRange', () => {
  it('reads single byte ranges as RFC 9110 defines them', () => {
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=95-200', 100)).toEqual({ start: 95, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-500', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=9-3', 100)).toBe('unsatisfiable');
    // Several ranges, or another unit: the whole file, as the RFC allows.
    expect(parseRange('bytes=0-1,5-6', 100)).toBeNull();
    expect(parseRange('items=0-1', 100)).toBeNull();
  });
});

describe('the plain static server', () => {
  let dir: string;
  let server: StaticServer;
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);

  beforeAll(async () => {
    dir = await makeTempDir();
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>app</title>');
    await writeFile(join(dir, 'assets', 'data.bin'), bytes);
    await writeFile(join(dir, 'assets', 'core.wasm'), bytes.subarray(0, 8));
    server = await startStaticServer({ root: dir, base: '/lesion-lab/' });
  });
  afterAll(async () => {
    await server?.close();
    if (dir) await removeTempDir(dir);
  });

  it('listens on a free port and names its origin localhost', () => {
    expect(server.origin).toMatch(/^http:\/\/localhost:\d+$/);
    expect(server.url).toBe(`${server.origin}/lesion-lab/`);
  });

  it('serves index.html at the sub-path with no security headers', async () => {
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    for (const name of [
      'content-security-policy',
      'cross-origin-opener-policy',
      'cross-origin-embedder-policy',
      'cross-origin-resource-policy',
    ]) {
      expect(response.headers.get(name), name).toBeNull();
    }
    expect(await response.text()).toContain('<title>app</title>');
  });

  it('redirects the bare sub-path and refuses what is outside it', async () => {
    const bare = await fetch(`${server.origin}/lesion-lab`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/lesion-lab/');
    expect((await fetch(`${server.origin}/assets/data.bin`)).status).toBe(404);
    expect((await fetch(`${server.url}missing.js`)).status).toBe(404);
    expect((await fetch(`${server.url}..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
  });

  it('answers byte ranges with 206 and Content-Range, and 416 past the end', async () => {
    const whole = await fetch(`${server.url}assets/data.bin`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(bytes);

    const part = await fetch(`${server.url}assets/data.bin`, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(part.headers.get('content-length')).toBe('100');
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(100, 200));

    const tail = await fetch(`${server.url}assets/data.bin`, { headers: { Range: 'bytes=-24' } });
    expect(tail.status).toBe(206);
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.subarray(976));

    const past = await fetch(`${server.url}assets/data.bin`, { headers: { Range: 'bytes=1000-' } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */1000');
  });

  it('gives WASM its MIME type and answers HEAD without a body', async () => {
    const head = await fetch(`${server.url}assets/core.wasm`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/wasm');
    expect(head.headers.get('content-length')).toBe('8');
  });

  it('lets a test put its own handler on a path, and take it away', async () => {
    server.route('/lesion-lab/index.html', (_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/plain' });
      response.end('routed');
    });
    expect(await (await fetch(`${server.url}index.html`)).text()).toBe('routed');
    server.unroute('/lesion-lab/index.html');
    expect(await (await fetch(`${server.url}index.html`)).text()).toContain('<title>app</title>');
  });

  it('drops every connection while unreachable', async () => {
    server.unreachable = true;
    try {
      await expect(fetch(server.url)).rejects.toThrow();
    } finally {
      server.unreachable = false;
    }
    expect(server.log.at(-1)).toBe('GET /lesion-lab/ dropped');
    expect((await fetch(server.url)).status).toBe(200);
  });
});
