import { preview, type PreviewServer } from 'vite';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

/** Serves the built app (`dist/`, made by `npm run build`) with the same headers a deployment sends. */
export async function startPreview(): Promise<{
  server: PreviewServer;
  origin: string;
  close(): Promise<void>;
}> {
  if (!existsSync(join(root, 'dist', 'index.html'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run test:e2e does)');
  }
  const server = await preview({
    root,
    preview: { port: 0, host: '127.0.0.1', strictPort: false },
    logLevel: 'warn',
  });
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('preview server has no port');
  // localhost, not 127.0.0.1: Chromium treats http://localhost as a secure context (OPFS, WebGPU).
  const origin = `http://localhost:${address.port}`;
  return { server, origin, close: () => server.close() };
}
