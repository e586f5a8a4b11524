/** The tf backends the app knows, in order of preference; free of TensorFlow.js so the UI can validate a choice. */
import type { BackendName } from './logs.ts';

export const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];
