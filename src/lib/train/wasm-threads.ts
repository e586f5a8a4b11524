/**
 * How many threads the WASM backend gets, and why not more: a pure decision, so the rule is tested in Node and the
 * backend line can say it in words (src/worker/wasm-threads.ts applies it in the train and predict workers).
 */

/**
 * tfjs-backend-wasm 4.22's Emscripten glue starts a pool of 8 helper workers up front; XNNPACK's thread pool of N
 * threads uses N − 1 of them plus the calling thread. A thread beyond the pool would need a new worker to start
 * while the calling thread blocks on it, which never happens (a deadlock), so 8 is the most that is safe. Past 8
 * the convolutions of a small backbone such as MobileNetV2 0.35 gain little anyway.
 */
export const MAX_WASM_THREADS = 8;

export interface WasmThreadsEnvironment {
  /** `self.crossOriginIsolated`: SharedArrayBuffer, and with it WebAssembly threads, exist only then. */
  crossOriginIsolated: boolean;
  /** `navigator.hardwareConcurrency` (logical cores); undefined where the browser does not tell. */
  hardwareConcurrency: number | undefined;
  /** WebAssembly SIMD: tfjs ships its threaded build with SIMD only. */
  simd: boolean;
}

export interface WasmThreadsPlan {
  threads: number;
  /** Why only one thread, in words for the backend line; null when threaded. */
  singleBecause: string | null;
}

export function planWasmThreads(env: WasmThreadsEnvironment): WasmThreadsPlan {
  if (!env.crossOriginIsolated) {
    return {
      threads: 1,
      singleBecause: 'the page is not cross-origin isolated (this host sends no COOP/COEP headers)',
    };
  }
  if (!env.simd) return { threads: 1, singleBecause: 'this browser has no WebAssembly SIMD' };
  const cores = env.hardwareConcurrency;
  if (cores === undefined || !Number.isFinite(cores) || cores < 2) {
    return { threads: 1, singleBecause: 'the browser reports a single core' };
  }
  return { threads: Math.min(Math.floor(cores), MAX_WASM_THREADS), singleBecause: null };
}

/** The backend line's words for WASM, e.g. "WebAssembly, SIMD, 2 threads". */
export function describeWasm(simd: boolean, threads: number, singleBecause: string | null): string {
  const base = `WebAssembly, ${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}`;
  return singleBecause && threads === 1 ? `${base} (${singleBecause})` : base;
}
