/**
 * tfjs backends in Node. `@tensorflow/tfjs-node` cannot be installed here (it downloads libtensorflow), so Node runs
 * the WASM backend (SIMD build, one thread in Node; fast forward passes) or the plain-JavaScript CPU backend (slow).
 * Both get the conv gradient kernels of src/lib/train/conv-gradients.ts when selected here: WASM has none of its own, the CPU's
 * are slow — so in Node both can fine-tune conv layers.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { missingKernels, REQUIRED_KERNELS, type Workload } from '../../lib/train/backend.ts';
import { installConvGradients } from '../../lib/train/conv-gradients.ts';

export const NODE_BACKENDS = ['wasm', 'cpu'] as const;
export type NodeBackend = (typeof NODE_BACKENDS)[number];

export function isNodeBackend(name: string): name is NodeBackend {
  return (NODE_BACKENDS as readonly string[]).includes(name);
}

/** The folder holding tfjs-backend-wasm's .wasm binaries, with a trailing slash (setWasmPaths wants a prefix). */
export function wasmBinariesDir(): string {
  const require = createRequire(import.meta.url);
  return `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`;
}

let wasmPathsSet = false;

/** Makes `name` the active backend (a no-op when it already is). Throws when tfjs cannot start it. */
export async function useNodeBackend(name: NodeBackend): Promise<void> {
  installConvGradients(name);
  if (tf.getBackend() === name) return;
  if (name === 'wasm' && !wasmPathsSet) {
    setWasmPaths(wasmBinariesDir());
    wasmPathsSet = true;
  }
  if (!(await tf.setBackend(name))) {
    throw new Error(`the ${name} backend of TensorFlow.js failed to start in this Node process`);
  }
  await tf.ready();
}

/**
 * Kernels `backend` lacks for `workload`, after this module's gradient kernels are registered (so none, for these
 * two backends, unless tfjs changes its kernel names).
 */
export function lackingKernels(backend: NodeBackend, workload: Workload): string[] {
  installConvGradients(backend);
  return missingKernels(backend, REQUIRED_KERNELS[workload]);
}
