import { describe, expect, it } from 'vitest';
import { describeWasm, MAX_WASM_THREADS, planWasmThreads } from '../../src/lib/train/wasm-threads.ts';
import { wasmThreadFiles } from '../../deploy/vite-plugin-wasm-threads.ts';

describe('WASM threads', () => {
  it('uses every core of an isolated page, up to the helper pool', () => {
    expect(planWasmThreads({ crossOriginIsolated: true, hardwareConcurrency: 2, simd: true })).toEqual({
      threads: 2,
      singleBecause: null,
    });
    expect(planWasmThreads({ crossOriginIsolated: true, hardwareConcurrency: 32, simd: true }).threads).toBe(
      MAX_WASM_THREADS,
    );
  });

  it('says why it runs one thread', () => {
    const plain = planWasmThreads({ crossOriginIsolated: false, hardwareConcurrency: 8, simd: true });
    expect(plain.threads).toBe(1);
    expect(plain.singleBecause).toMatch(/not cross-origin isolated/);
    expect(planWasmThreads({ crossOriginIsolated: true, hardwareConcurrency: 8, simd: false })).toEqual({
      threads: 1,
      singleBecause: 'this browser has no WebAssembly SIMD',
    });
    expect(
      planWasmThreads({ crossOriginIsolated: true, hardwareConcurrency: undefined, simd: true }).threads,
    ).toBe(1);
    expect(describeWasm(true, 1, plain.singleBecause)).toBe(
      'WebAssembly, SIMD, 1 thread (the page is not cross-origin isolated (this host sends no COOP/COEP headers))',
    );
    expect(describeWasm(true, 2, null)).toBe('WebAssembly, SIMD, 2 threads');
  });

  it('serves the package’s own glue and helper-worker script (what tfjs would put in Blobs)', () => {
    const { version, files } = wasmThreadFiles();
    expect(version).toBe('4.22.0');
    expect(files['tfjs-backend-wasm-threaded-simd.js']).toContain('var WasmBackendModuleThreadedSimd');
    const worker = files['pthread-worker.js'] ?? '';
    // The helper imports the main script by URL when it is given a string, which is what we give it.
    expect(worker).toContain('importScripts(e.data.urlOrBlob)');
    expect(worker).toContain('WasmBackendModuleThreadedSimd(Module)');
    expect(worker).not.toMatch(/\n/);
  });
});
