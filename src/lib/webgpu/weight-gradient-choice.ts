/**
 * Which weight-gradient kernels a run uses on WebGPU: 'tiled' (ours, src/lib/webgpu/weight-gradients.ts, the
 * default) or 'stock' (tfjs-backend-webgpu's own, the fallback). Plain data, free of tf, so the UI and the run
 * config can name the choice without bundling TensorFlow.js.
 */
export type WebGPUWeightGradients = 'tiled' | 'stock';
export const WEBGPU_WEIGHT_GRADIENTS: readonly WebGPUWeightGradients[] = ['tiled', 'stock'];
export const DEFAULT_WEBGPU_WEIGHT_GRADIENTS: WebGPUWeightGradients = 'tiled';

/** The browser-storage key of the switch (`localStorage.setItem(KEY, 'stock')` falls back to tfjs's kernels). */
export const WEBGPU_WEIGHT_GRADIENTS_STORAGE_KEY = 'lesion-lab:webgpu-weight-gradients';

export function isWebGPUWeightGradients(value: unknown): value is WebGPUWeightGradients {
  return (WEBGPU_WEIGHT_GRADIENTS as readonly unknown[]).includes(value);
}
