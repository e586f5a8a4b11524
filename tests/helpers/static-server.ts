/**
 * A plain static file server, as a host with no configuration serves the build (`python3 -m http.server`, GitHub
 * Pages, a university web space): files under a sub-path, the usual Content-Type, Last-Modified, byte ranges —
 * and NO security headers (no CSP, COOP, COEP). What protects the page there is what the build itself carries.
 *
 * Tests can put a handler on one path (`server.route`), e.g. to serve a changed sw.js as a new deployment would.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';

export type RouteHandler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface StaticServer {
  /** `http://localhost:<port>`: localhost, not 127.0.0.1, because Chromium treats it as a secure context. */
  origin: string;
  /** The sub-path the build is served under, with both slashes, e.g. `/lesion-lab/`. */
  base: string;
  /** origin + base: where the app opens. */
  url: string;
  /** Every request served, in order, as `METHOD /path status` (`dropped` while unreachable). */
  log: string[];
  /** While true, every connection is dropped unanswered, as when the host or the network is gone. */
  unreachable: boolean;
  /** Serves `pathname` (exact, without query) with `handler` instead of the file system, until removed. */
  route(pathname: string, handler: RouteHandler): void;
  unroute(pathname: string): void;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.zip': 'application/zip',
  '.csv': 'text/csv; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Parses a single `bytes=` range against a file of `size` bytes (RFC 9110 §14.1.2). Returns the inclusive byte
 * span, 'unsatisfiable' (answered 416), or null when the header is absent or not a single byte range, in which
 * case the whole file is sent, as the RFC allows.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** Serves `root` under `base` on 127.0.0.1 at a free port. */
export async function startStaticServer(options: { root: string; base?: string }): Promise<StaticServer> {
  const root = resolve(options.root);
  const base = `/${(options.base ?? '/').replace(/^\/+|\/+$/g, '')}/`.replace(/^\/\/$/, '/');
  const routes = new Map<string, RouteHandler>();
  const log: string[] = [];

  async function serveFile(
    request: IncomingMessage,
    response: ServerResponse,
    pathname: string,
  ): Promise<void> {
    const relative = pathname.slice(base.length);
    const path = resolve(join(root, relative));
    if (path !== root && !path.startsWith(root + sep)) return void send(response, 404, 'Not Found');
    let info = await stat(path).catch(() => null);
    let file = path;
    if (info?.isDirectory()) {
      if (!pathname.endsWith('/')) {
        response.writeHead(301, { Location: `${pathname}/` });
        return void response.end();
      }
      file = join(path, 'index.html');
      info = await stat(file).catch(() => null);
    }
    if (!info?.isFile()) return void send(response, 404, 'Not Found');

    const lastModified = new Date(Math.floor(info.mtimeMs / 1000) * 1000);
    const since = request.headers['if-modified-since'];
    if (since && !request.headers.range && Date.parse(since) >= lastModified.getTime()) {
      response.writeHead(304, { 'Last-Modified': lastModified.toUTCString() });
      return void response.end();
    }
    const headers: Record<string, string | number> = {
      'Content-Type': contentTypeOf(file),
      'Last-Modified': lastModified.toUTCString(),
      'Accept-Ranges': 'bytes',
    };
    const range = parseRange(request.headers.range, info.size);
    if (range === 'unsatisfiable') {
      response.writeHead(416, { ...headers, 'Content-Range': `bytes */${info.size}` });
      return void response.end();
    }
    const { start, end } = range ?? { start: 0, end: info.size - 1 };
    const length = info.size === 0 ? 0 : end - start + 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${info.size}`;
    headers['Content-Length'] = length;
    response.writeHead(range ? 206 : 200, headers);
    if (request.method === 'HEAD' || length === 0) return void response.end();
    await new Promise<void>((done, fail) => {
      createReadStream(file, { start, end })
        .on('error', fail)
        .pipe(response)
        .on('finish', () => done())
        .on('error', fail);
    });
  }

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const pathname = decodeURIComponent(url.pathname);
    if (served.unreachable) {
      log.push(`${request.method} ${pathname} dropped`);
      request.socket.destroy();
      return;
    }
    response.on('finish', () => log.push(`${request.method} ${pathname} ${response.statusCode}`));
    const handle = async () => {
      const route = routes.get(pathname);
      if (route) return route(request, response);
      if (request.method !== 'GET' && request.method !== 'HEAD')
        return send(response, 501, 'Not Implemented');
      if (`${pathname}/` === base) {
        response.writeHead(301, { Location: base });
        return response.end();
      }
      if (!pathname.startsWith(base)) return send(response, 404, 'Not Found');
      return serveFile(request, response, pathname);
    };
    handle().catch((error: unknown) => {
      if (!response.headersSent) send(response, 500, `Cannot serve ${pathname}: ${String(error)}`);
      else response.destroy();
    });
  });

  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the static server has no port');
  const origin = `http://localhost:${address.port}`;
  const served: StaticServer = {
    origin,
    base,
    url: `${origin}${base}`,
    log,
    unreachable: false,
    route: (pathname, handler) => void routes.set(pathname, handler),
    unroute: (pathname) => void routes.delete(pathname),
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((error) => (error ? fail(error) : done()));
      }),
  };
  return served;
}

function send(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(`${status} ${text}\n`);
}
