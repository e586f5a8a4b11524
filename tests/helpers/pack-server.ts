/**
 * A Node HTTP server for the open-from-URL e2e tests: it serves the built app (`dist/`) with the app's security
 * headers, the way a static host next to which a workshop pack is put would, and test routes for packs on the
 * same origin, with the faults a real network has:
 *
 *   /test-packs/ranged.zip        range requests (206 + Content-Range), ETag and Last-Modified
 *   /test-packs/cut-once.zip      the same, but the first request's connection is cut after `cutAfter` bytes
 *   /test-packs/no-range.zip      no range support (200 with the whole file, Range ignored); the first request
 *                                 is cut after `cutAfter` bytes, later ones are whole
 *   /test-packs/slow*.zip         range requests, the first answer trickled (`slowChunk` bytes per 100 ms), so a
 *                                 test can reload the page mid-download (one path per test: only the first
 *                                 request to each path is slow)
 *   /test-packs/offline-after-first.zip   served once; later connections close before any answer (offline)
 *   anything else missing         404
 *
 * Every request is logged (host, path, Range header, status) so tests can check what the app asked for and that
 * nothing went elsewhere. Static files support ranges too (the sample pack is downloaded like any pack).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { securityHeaders } from '../../deploy/security-headers.ts';

const DIST = resolve(import.meta.dirname, '..', '..', 'dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.zip': 'application/zip',
  '.md': 'text/markdown; charset=utf-8',
  '.bin': 'application/octet-stream',
};

export interface LoggedRequest {
  host: string;
  path: string;
  range: string | null;
  status: number;
}

export interface PackServerOptions {
  /** The pack served under /test-packs/*.zip. */
  packPath: string;
  /** Where the faulty routes cut their first answer. */
  cutAfter: number;
  /** Bytes per 100 ms of the slow route's first answer. */
  slowChunk?: number;
}

export interface PackServer {
  /** http://localhost:<port>: a secure context for Chromium (OPFS). */
  origin: string;
  /** http://127.0.0.1:<port>: the same server under another origin, for the CSP test. */
  otherOrigin: string;
  requests: LoggedRequest[];
  /** Requests to one path, in order. */
  requestsTo(path: string): LoggedRequest[];
  packBytes: number;
  packSha256: string;
  close(): Promise<void>;
}

export async function startPackServer(options: PackServerOptions): Promise<PackServer> {
  if (!existsSync(join(DIST, 'index.html'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run test:e2e does)');
  }
  const pack = readFileSync(options.packPath);
  const packModified = new Date(Math.floor(statSync(options.packPath).mtimeMs / 1000) * 1000).toUTCString();
  const packEtag = `"${createHash('sha256').update(pack).digest('hex').slice(0, 16)}"`;
  const requests: LoggedRequest[] = [];
  const served = new Map<string, number>();

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const range = req.headers.range ?? null;
    const log = (status: number) => requests.push({ host: req.headers.host ?? '', path, range, status });
    const count = (served.get(path) ?? 0) + 1;
    served.set(path, count);
    for (const [name, value] of Object.entries(securityHeaders)) res.setHeader(name, value);
    res.setHeader('Cache-Control', 'no-cache');

    if (path.startsWith('/test-packs/')) {
      const name = path.slice('/test-packs/'.length);
      const meta = { type: TYPES['.zip'] as string, etag: packEtag, modified: packModified };
      if (name === 'ranged.zip') return sendBytes(req, res, pack, meta, { ranges: true }, log);
      if (name === 'cut-once.zip') {
        return sendBytes(
          req,
          res,
          pack,
          meta,
          { ranges: true, cutAfter: count === 1 ? options.cutAfter : null },
          log,
        );
      }
      if (name === 'no-range.zip') {
        return sendBytes(
          req,
          res,
          pack,
          { type: meta.type, etag: null, modified: packModified },
          { ranges: false, cutAfter: count === 1 ? options.cutAfter : null },
          log,
        );
      }
      if (name === 'offline-after-first.zip' && count > 1) {
        // The network is gone: the connection closes before any answer.
        log(0);
        req.socket.destroy();
        return;
      }
      if (name === 'offline-after-first.zip') return sendBytes(req, res, pack, meta, { ranges: true }, log);
      if (/^slow[\w-]*\.zip$/.test(name)) {
        return sendBytes(
          req,
          res,
          pack,
          meta,
          { ranges: true, trickle: count === 1 ? (options.slowChunk ?? 16 * 1024) : null },
          log,
        );
      }
      return notFound(res, log);
    }

    const file = path === '/' ? join(DIST, 'index.html') : normalize(join(DIST, path));
    if (!file.startsWith(DIST) || !existsSync(file) || !statSync(file).isFile()) return notFound(res, log);
    const bytes = readFileSync(file);
    const stat = statSync(file);
    return sendBytes(
      req,
      res,
      bytes,
      {
        type: TYPES[extname(file)] ?? 'application/octet-stream',
        etag: `W/"${stat.size}-${Math.floor(stat.mtimeMs)}"`,
        modified: stat.mtime.toUTCString(),
      },
      { ranges: true },
      log,
    );
  });

  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://localhost:${port}`,
    otherOrigin: `http://127.0.0.1:${port}`,
    requests,
    requestsTo: (p) => requests.filter((r) => r.path === p),
    packBytes: pack.length,
    packSha256: createHash('sha256').update(pack).digest('hex'),
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

function notFound(res: ServerResponse, log: (status: number) => void): void {
  log(404);
  res.statusCode = 404;
  res.statusMessage = 'Not Found';
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end('Not Found');
}

interface Meta {
  type: string;
  etag: string | null;
  modified: string;
}

interface Behaviour {
  ranges: boolean;
  /** Destroy the connection after this many body bytes. */
  cutAfter?: number | null;
  /** Send the body in pieces of this many bytes every 100 ms. */
  trickle?: number | null;
}

function sendBytes(
  req: IncomingMessage,
  res: ServerResponse,
  bytes: Buffer,
  meta: Meta,
  behaviour: Behaviour,
  log: (status: number) => void,
): void {
  res.setHeader('Content-Type', meta.type);
  res.setHeader('Last-Modified', meta.modified);
  if (meta.etag !== null) res.setHeader('ETag', meta.etag);
  let status = 200;
  let body = bytes;
  const range = behaviour.ranges ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '') : null;
  if (behaviour.ranges) res.setHeader('Accept-Ranges', 'bytes');
  if (range) {
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
    if (start >= bytes.length) {
      log(416);
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      res.end();
      return;
    }
    status = 206;
    body = bytes.subarray(start, end + 1);
    res.setHeader('Content-Range', `bytes ${start}-${end}/${bytes.length}`);
  }
  log(status);
  res.writeHead(status, { 'Content-Length': body.length });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (behaviour.cutAfter != null && behaviour.cutAfter < body.length) {
    // Real bytes, then the connection dies: what a dropped Wi-Fi looks like to the browser.
    res.write(body.subarray(0, behaviour.cutAfter), () => setTimeout(() => res.socket?.destroy(), 50));
    return;
  }
  if (behaviour.trickle != null) {
    const size = behaviour.trickle;
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= body.length) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(body.subarray(at, at + size));
      at += size;
    }, 100);
    res.on('close', () => clearInterval(timer));
    return;
  }
  res.end(body);
}
