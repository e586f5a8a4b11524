import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Plugin } from 'vite';
import { securityHeaders } from './security-headers.ts';

/**
 * Serves the two scripts tfjs-backend-wasm's threaded build needs as plain same-origin files, so that the WASM
 * backend can run multi-threaded inside our bundled module workers.
 *
 * Why: tfjs-backend-wasm 4.22 hands each of its pthread helper workers (Emscripten's) a Blob of
 * `'var WasmBackendModuleThreadedSimd = ' + factory.toString()` to import, and makes the helper worker itself from
 * another Blob. Once bundled and minified, `factory.toString()` refers to variables the bundler renamed outside the
 * function ("e is not defined" in the helper), and a `blob:` worker or script is refused by our CSP
 * (`worker-src 'self'`, `script-src 'self'`) anyway. src/worker/wasm-threads.ts starts the same threaded module
 * with these two files instead:
 * - `tfjs-backend-wasm-threaded-simd.js`: Emscripten's glue, byte for byte from the package; it defines the global
 *   `WasmBackendModuleThreadedSimd` that a helper worker calls after `importScripts`.
 * - `pthread-worker.js`: the helper worker's script, the package's `wasmWorkerContents` (the string tfjs puts in
 *   a Blob), with the newlines escaped as tfjs does.
 * Both live under `tfjs-wasm/<version>/` next to index.html (the build, so the preview server and `_headers` give
 * them the security headers) or are answered by the dev server with the same headers: a helper worker must be
 * cross-origin isolated like the page. The worker finds them from Vite's base and the package's `version_wasm`.
 */
export const WASM_THREADS_DIRECTORY = 'tfjs-wasm';

const require = createRequire(import.meta.url);

export interface WasmThreadFiles {
  version: string;
  /** file name → contents */
  files: Record<string, string>;
}

export function wasmThreadFiles(): WasmThreadFiles {
  const packageJson = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  const out = join(dirname(packageJson), 'wasm-out');
  const glue = readFileSync(join(out, 'tfjs-backend-wasm-threaded-simd.js'), 'utf8');
  const { wasmWorkerContents } = require(join(out, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents?: unknown;
  };
  if (typeof wasmWorkerContents !== 'string' || !glue.includes('var WasmBackendModuleThreadedSimd')) {
    throw new Error(
      `@tensorflow/tfjs-backend-wasm ${version} is not laid out as 4.22 was (wasm-out/*threaded-simd*): ` +
        'update deploy/vite-plugin-wasm-threads.ts and src/worker/wasm-threads.ts for it',
    );
  }
  return {
    version,
    files: {
      'tfjs-backend-wasm-threaded-simd.js': glue,
      // tfjs escapes these before making its Blob: the template literal turned the "\n" in strings into newlines.
      'pthread-worker.js': wasmWorkerContents.replace(/\n/g, '\\n'),
    },
  };
}

export function wasmThreadsPlugin(): Plugin {
  const { version, files } = wasmThreadFiles();
  const prefix = `${WASM_THREADS_DIRECTORY}/${version}/`;
  let base = '/';
  return {
    name: 'lesion-lab:wasm-threads',
    configResolved(config) {
      base = config.base;
    },
    configureServer(server) {
      server.middlewares.use((request, response, next) => {
        const path = (request.url ?? '').split('?')[0] ?? '';
        const name = path.startsWith(`${base}${prefix}`) ? path.slice(base.length + prefix.length) : null;
        const source = name === null ? undefined : files[name];
        if (source === undefined) {
          next();
          return;
        }
        for (const [header, value] of Object.entries(securityHeaders)) response.setHeader(header, value);
        response.setHeader('Content-Type', 'text/javascript; charset=utf-8');
        response.end(source);
      });
    },
    generateBundle() {
      for (const [name, source] of Object.entries(files)) {
        this.emitFile({ type: 'asset', fileName: `${prefix}${name}`, source });
      }
    },
  };
}
