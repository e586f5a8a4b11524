/**
 * What must exist before a run can start, beyond well-typed settings: an image cache of the chosen size on this
 * device, and a backend that can do the work (phase 2 fine-tunes conv layers, which WASM cannot). The Train page
 * lists these next to Start before the user presses it, instead of a run that fails after minutes.
 */
import type { ImageSize } from '../lib/data/types.ts';
import type { BackendName } from '../lib/train/logs.ts';

export type BackendChoiceName = BackendName | 'auto';

/** What the Train page knows about this device; null for what is not known yet (then nothing is refused). */
export interface TrainEnvironment {
  /** Sizes of the complete image caches on this device. */
  cacheSizes: readonly ImageSize[] | null;
  /**
   * Per kind of work, per backend: why that backend cannot do it here (null: it can). From the training worker's
   * probe, which checks the kernels each backend registers.
   */
  backends: Record<'frozen-base' | 'fine-tune', Partial<Record<BackendName, string | null>>> | null;
}

export const UNKNOWN_ENVIRONMENT: TrainEnvironment = { cacheSizes: null, backends: null };

const BACKEND_LABELS: Record<BackendName, string> = {
  webgpu: 'WebGPU',
  webgl: 'WebGL',
  wasm: 'WASM',
  cpu: 'CPU',
};

/** Why no run can train at `size` px here, or null when a cache of that size exists (or it is not known yet). */
export function missingCache(size: ImageSize, cacheSizes: readonly ImageSize[] | null): string | null {
  if (cacheSizes === null || cacheSizes.includes(size)) return null;
  if (cacheSizes.length === 0)
    return `There is no image cache on this device yet: drop the dataset on the Data page and cache it at ${size} px.`;
  const have = [...cacheSizes].sort((a, b) => a - b).map((s) => `${s} px`);
  return (
    `There is no ${size} px image cache on this device (there is one at ${have.join(', ')}): pick that size, ` +
    `or cache the images at ${size} px on the Data page.`
  );
}

/** Why the chosen backend cannot run the run's work, or null. 'auto' picks a capable one itself. */
export function unsuitableBackend(
  backend: BackendChoiceName,
  phase2: boolean,
  backends: TrainEnvironment['backends'],
): string | null {
  if (backend === 'auto' || backends === null) return null;
  const label = BACKEND_LABELS[backend];
  const frozen = backends['frozen-base'][backend];
  if (frozen) return `${label} cannot run here: ${frozen}. Choose Automatic or another backend.`;
  const fine = phase2 ? backends['fine-tune'][backend] : null;
  if (fine) {
    const able = (Object.keys(BACKEND_LABELS) as BackendName[])
      .filter((b) => backends['fine-tune'][b] === null)
      .map((b) => BACKEND_LABELS[b]);
    return (
      `Phase 2 fine-tunes conv layers, and ${fine}. Choose Automatic` +
      (able.length ? ` or ${able.join(', ')}` : '') +
      ', or turn phase 2 off.'
    );
  }
  return null;
}
