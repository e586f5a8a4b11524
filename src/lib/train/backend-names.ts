/** The tf backends the app knows, in order of preference; free of TensorFlow.js so the UI can validate a choice. */
import type { BackendName } from './logs.ts';

export const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software|basic render|microsoft basic/i;

/** A WebGL renderer string that names a software rasteriser (SwiftShader, llvmpipe, …), not a GPU. */
export function isSoftwareRenderer(renderer: string): boolean {
  return SOFTWARE_RENDERER.test(renderer);
}
