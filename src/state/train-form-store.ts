/**
 * The Train form survives a reload: its settings are kept in localStorage (this browser only) and read back
 * field by field, each checked against what the form accepts, so a value from an older version or a hand edit
 * falls back to its default instead of breaking the page. The weights source is kept only when the user chose
 * it; weight files picked from disk cannot be kept (a File does not survive a reload): that choice falls back to
 * the best source available, as does a stored or served source that is gone.
 */
import { IMAGE_SIZES } from '../lib/data/types.ts';
import { BACKBONE_IDS } from '../lib/model/backbones/catalog.ts';
import { HEAD_KINDS } from '../lib/model/head-config.ts';
import { FUSIONS } from '../lib/model/fusion.ts';
import { BACKEND_NAMES } from '../lib/train/backend-names.ts';
import { MONITORS } from '../lib/train/callbacks.ts';
import {
  DEFAULT_WEBGPU_WEIGHT_GRADIENTS,
  isWebGPUWeightGradients,
  WEBGPU_WEIGHT_GRADIENTS_STORAGE_KEY,
  type WebGPUWeightGradients,
} from '../lib/webgpu/weight-gradient-choice.ts';
import type { TrainForm, WeightsKind } from './training.svelte.ts';

export const FORM_STORAGE_KEY = 'lesion-lab:train-form';

/** Weight sources a reload can come back to (the files picked from disk are gone). */
const RESTORABLE_WEIGHTS: readonly WeightsKind[] = ['official', 'stored', 'none'];

const CHOICES: Partial<Record<keyof TrainForm, readonly unknown[]>> = {
  backbone: BACKBONE_IDS,
  imageSize: IMAGE_SIZES,
  headKind: HEAD_KINDS,
  esMonitor: MONITORS,
  rlMonitor: MONITORS,
  backend: ['auto', ...BACKEND_NAMES],
  weightsKind: RESTORABLE_WEIGHTS,
  fusion: FUSIONS,
};

/**
 * The form `stored` describes, on top of `defaults`: each field whose stored value has the default's type (and,
 * for a choice, is one of its options) is taken; the rest keep their defaults. `weightsKind` is null when the
 * stored source cannot come back (files from disk) or none was stored.
 */
export function restoreForm(
  stored: unknown,
  defaults: TrainForm,
): { form: TrainForm; weightsKind: WeightsKind | null } {
  const form = { ...defaults };
  let weightsKind: WeightsKind | null = null;
  if (typeof stored !== 'object' || stored === null) return { form, weightsKind };
  const source = stored as Record<string, unknown>;
  for (const key of Object.keys(defaults) as (keyof TrainForm)[]) {
    const value = source[key];
    if (typeof value !== typeof defaults[key]) continue;
    const options = CHOICES[key];
    if (options && !options.includes(value)) continue;
    if (key === 'weightsKind') weightsKind = value as WeightsKind;
    (form as Record<string, unknown>)[key] = value;
  }
  return { form, weightsKind };
}

/** localStorage, or null where there is none or it refuses (private mode, blocked storage). */
export function formStorage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

export function readStoredForm(storage: Storage | null): unknown {
  try {
    const text = storage?.getItem(FORM_STORAGE_KEY);
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

/** Keeps `form`; its weights source only when the user chose it (`weightsChosen`). */
export function writeStoredForm(storage: Storage | null, form: TrainForm, weightsChosen: boolean): void {
  const { weightsKind, ...rest } = form;
  try {
    storage?.setItem(FORM_STORAGE_KEY, JSON.stringify(weightsChosen ? { ...rest, weightsKind } : rest));
  } catch {
    // A full or blocked storage only costs the next visit its settings.
  }
}

/**
 * The WebGPU weight-gradient kernels this browser asks for: 'stock' (tfjs's) when
 * `localStorage['lesion-lab:webgpu-weight-gradients']` says so, else ours ('tiled'). A switch to fall back on, not a
 * form field: the kernels give the same gradients, only the speed differs.
 */
export function storedWebGPUWeightGradients(storage: Storage | null): WebGPUWeightGradients {
  let value: string | null = null;
  try {
    value = storage?.getItem(WEBGPU_WEIGHT_GRADIENTS_STORAGE_KEY) ?? null;
  } catch {
    // Blocked storage: the default.
  }
  return isWebGPUWeightGradients(value) ? value : DEFAULT_WEBGPU_WEIGHT_GRADIENTS;
}
