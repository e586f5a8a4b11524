/// <reference lib="webworker" />
/**
 * The WASM backend for the train and predict workers: multi-threaded wherever the page is cross-origin isolated,
 * single-threaded (SIMD) elsewhere, and the backend line says which and why.
 *
 * tfjs's own start of the threaded build cannot work in our bundle (see deploy/vite-plugin-wasm-threads.ts: its
 * helper workers get Blobs of a minified function, and our CSP refuses blob: workers). So the 'wasm' backend is
 * registered again here: when threads are possible it starts the same Emscripten module tfjs would, but points the
 * helper workers at the two same-origin files the Vite plugin serves; when they are not, or the threaded start
 * fails, it calls tfjs's stock factory, which loads the single-threaded SIMD build.
 */
import * as tf from '@tensorflow/tfjs';
import {
  BackendWasm,
  getThreadsCount,
  setThreadsCount,
  setWasmPaths,
  version_wasm,
} from '@tensorflow/tfjs-backend-wasm';
import * as threadedGlue from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js';
import type { WasmFactoryConfig } from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js';
import wasmPlainUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { describeWasm, planWasmThreads, type WasmThreadsPlan } from '../lib/train/wasm-threads.ts';

/** Where deploy/vite-plugin-wasm-threads.ts serves the glue and the helper worker's script. */
const THREAD_FILES = `${import.meta.env.BASE_URL}tfjs-wasm/${version_wasm}/`;

/** Long enough for 8 helper workers to fetch and compile the glue on a slow laptop; then single-threaded. */
const THREADED_START_TIMEOUT_MS = 30_000;

type Factory = (config: WasmFactoryConfig) => Promise<ConstructorParameters<typeof BackendWasm>[0]>;

let singleBecause: string | null = null;
/** At most this many threads (a feature worker gets its share of the cores); set before the backend starts. */
let threadsCap = Number.POSITIVE_INFINITY;

/** Caps the WASM backend's threads; call before it starts (a started backend keeps its count). */
export function capWasmThreads(threads: number): void {
  threadsCap = Math.max(1, Math.floor(threads));
}

function threadFile(name: string): string {
  return new URL(`${THREAD_FILES}${name}`, self.location.href).href;
}

async function startThreaded(threads: number): Promise<BackendWasm> {
  const imported = threadedGlue as unknown as { default?: Factory } & Factory;
  const factory: Factory = imported.default ?? imported;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // The module caps XNNPACK's pool at navigator.hardwareConcurrency / 2 (backend.cc: it takes half the logical
  // cores to be hyper-threads), read once while it starts; we already chose the count, so it reads twice ours.
  const shadowed = Object.getOwnPropertyDescriptor(navigator, 'hardwareConcurrency');
  Object.defineProperty(navigator, 'hardwareConcurrency', { value: threads * 2, configurable: true });
  const started = new Promise<ConstructorParameters<typeof BackendWasm>[0]>((resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `its helper workers did not start within ${THREADED_START_TIMEOUT_MS / 1000} s ` +
              `(${threadFile('pthread-worker.js')})`,
          ),
        ),
      THREADED_START_TIMEOUT_MS,
    );
    factory({
      locateFile: (path, prefix) => {
        if (path.endsWith('.worker.js')) return threadFile('pthread-worker.js');
        if (path.endsWith('.wasm')) return new URL(wasmThreadedUrl, self.location.href).href;
        return prefix + path;
      },
      mainScriptUrlOrBlob: threadFile('tfjs-backend-wasm-threaded-simd.js'),
      onAbort: (message) => reject(new Error(`the threaded module aborted: ${message}`)),
    }).then(resolve, reject);
  }).finally(() => clearTimeout(timer));
  let module: ConstructorParameters<typeof BackendWasm>[0];
  try {
    module = await started;
  } finally {
    if (shadowed) Object.defineProperty(navigator, 'hardwareConcurrency', shadowed);
    else delete (navigator as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
  // The same bridge tfjs's init() adds (backend_wasm.js); BackendWasm's constructor calls it with our count.
  const cwrap = (module as unknown as { cwrap: (...args: unknown[]) => never }).cwrap;
  module.tfjs = {
    init: cwrap('init', null, []),
    initWithThreadsCount: cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: cwrap('get_threads_count', 'number', []),
    registerTensor: cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: cwrap('dispose_data', null, ['number']),
    dispose: cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  return new BackendWasm(module);
}

/**
 * Registers the 'wasm' backend as described above. Call once, at the worker's start, before any backend starts.
 */
export function installWasmBackend(): void {
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmPlainUrl,
    'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
  });
  // tfjs's stock factory must never try its own threaded start (the Blobs above): it is our single-thread path.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const stock = tf.findBackendFactory('wasm');
  if (!stock) throw new Error('@tensorflow/tfjs-backend-wasm did not register its backend');
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const plan: WasmThreadsPlan = planWasmThreads({
        crossOriginIsolated: self.crossOriginIsolated === true,
        hardwareConcurrency: navigator.hardwareConcurrency,
        simd: simd === true,
      });
      singleBecause = plan.singleBecause;
      const threads = Math.min(plan.threads, threadsCap);
      if (threads > 1) {
        try {
          return await startThreaded(threads);
        } catch (error) {
          singleBecause = `the threaded build failed to start: ${error instanceof Error ? error.message : String(error)}`;
          console.warn(`WASM backend: ${singleBecause}; continuing single-threaded`);
        }
      }
      setThreadsCount(1);
      return stock();
    },
    2,
  );
}

/** The backend line's words once the WASM backend runs: SIMD, threads, and why only one. */
export async function describeWasmBackend(): Promise<string> {
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  return describeWasm(simd, getThreadsCount(), singleBecause);
}

/** Threads the running WASM backend uses (1 before it started). */
export function wasmThreadsInUse(): number {
  try {
    return getThreadsCount();
  } catch {
    return 1;
  }
}
