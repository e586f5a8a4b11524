/**
 * Weights read back from the backend into plain arrays: the best-checkpoint files, the best weights EarlyStopping
 * restores, and the last per-epoch state used to resume on another backend after a WebGPU device loss. Reading is
 * asynchronous (`await tensor.data()`), never a synchronous download.
 *
 * On disk (OPFS, in the worker) a checkpoint is two files: `<name>.json` (the manifest: metadata and, per weight,
 * name, shape and offset) and `<name>.bin` (the float32 values, concatenated, little-endian).
 */
import * as tf from '@tensorflow/tfjs';
import type { Monitor } from './callbacks.ts';
import type { Phase } from './logs.ts';
import { isQuotaExceeded, StorageFullError, type StorageEstimateLike } from '../storage-full.ts';

export interface WeightValue {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** The variables' values, read back without blocking (all reads issued at once). */
export async function readWeights(
  variables: readonly tf.Variable[],
  names?: readonly string[],
): Promise<WeightValue[]> {
  const data = await Promise.all(variables.map((v) => v.data()));
  return variables.map((v, i) => ({
    name: names?.[i] ?? v.name,
    shape: [...v.shape],
    values: Float32Array.from(data[i] as Float32Array),
  }));
}

/** Assigns saved values to `variables` (same order and shapes; possibly on another backend). */
export function writeWeights(variables: readonly tf.Variable[], weights: readonly WeightValue[]): void {
  if (weights.length !== variables.length) {
    throw new RangeError(`checkpoint holds ${weights.length} weights; the model has ${variables.length}`);
  }
  variables.forEach((variable, i) => {
    const w = weights[i]!;
    if (w.shape.join('x') !== variable.shape.join('x')) {
      throw new RangeError(
        `checkpoint weight ${w.name} has shape [${w.shape}]; the model's ${variable.name} has [${variable.shape}]`,
      );
    }
    tf.tidy(() => variable.assign(tf.tensor(w.values, variable.shape, 'float32')));
  });
}

export interface Checkpoint {
  phase: Phase;
  /** 1-based epoch whose end state this is. */
  epoch: number;
  monitor: Monitor | null;
  value: number | null;
  weights: WeightValue[];
}

export interface CheckpointManifest {
  format: 'lesion-lab-checkpoint';
  version: 1;
  phase: Phase;
  epoch: number;
  monitor: Monitor | null;
  value: number | null;
  weights: Array<{ name: string; shape: number[]; offset: number; length: number }>;
}

export function encodeCheckpoint(checkpoint: Checkpoint): {
  manifest: CheckpointManifest;
  data: Float32Array;
} {
  const total = checkpoint.weights.reduce((n, w) => n + w.values.length, 0);
  const data = new Float32Array(total);
  let offset = 0;
  const weights = checkpoint.weights.map((w) => {
    data.set(w.values, offset);
    const entry = { name: w.name, shape: w.shape, offset, length: w.values.length };
    offset += w.values.length;
    return entry;
  });
  const { phase, epoch, monitor, value } = checkpoint;
  return {
    manifest: { format: 'lesion-lab-checkpoint', version: 1, phase, epoch, monitor, value, weights },
    data,
  };
}

export function decodeCheckpoint(manifest: CheckpointManifest, data: Float32Array): Checkpoint {
  if (manifest.format !== 'lesion-lab-checkpoint' || manifest.version !== 1) {
    throw new Error('not a Lesion Lab checkpoint (format/version mismatch)');
  }
  const weights = manifest.weights.map((w) => {
    if (w.offset + w.length > data.length) throw new Error(`checkpoint data ends before weight ${w.name}`);
    return { name: w.name, shape: w.shape, values: data.slice(w.offset, w.offset + w.length) };
  });
  const { phase, epoch, monitor, value } = manifest;
  return { phase, epoch, monitor, value, weights };
}

export interface CheckpointStore {
  /** Saves (replacing any previous one of that name); returns where, for the log. */
  save(name: string, checkpoint: Checkpoint): Promise<string>;
  load(name: string): Promise<Checkpoint | null>;
}

export class MemoryCheckpointStore implements CheckpointStore {
  readonly saved = new Map<string, Checkpoint>();

  async save(name: string, checkpoint: Checkpoint): Promise<string> {
    this.saved.set(name, checkpoint);
    return `memory:${name}`;
  }

  async load(name: string): Promise<Checkpoint | null> {
    return this.saved.get(name) ?? null;
  }
}

/** Checkpoints as `<name>.json` + `<name>.bin` in an OPFS directory (the worker passes the handle). */
export class OpfsCheckpointStore implements CheckpointStore {
  /** `estimate` (navigator.storage.estimate in a browser) gives a full storage's message its figures. */
  constructor(
    private readonly dir: FileSystemDirectoryHandle,
    private readonly label = 'opfs',
    private readonly estimate?: () => Promise<StorageEstimateLike | undefined>,
  ) {}

  private async write(name: string, body: BlobPart): Promise<void> {
    const handle = await this.dir.getFileHandle(name, { create: true });
    const writable = await handle.createWritable();
    try {
      await writable.write(body);
      await writable.close();
    } catch (error) {
      await writable.abort().catch(() => undefined);
      throw error;
    }
  }

  async save(name: string, checkpoint: Checkpoint): Promise<string> {
    const { manifest, data } = encodeCheckpoint(checkpoint);
    // Data first, manifest last. A writable stream replaces its file only on close(), so a failed write (storage
    // full, tab closed) leaves the previous checkpoint whole; a manifest that failed after its data is removed, so
    // a manifest on disk always describes the data file next to it.
    const text = JSON.stringify(manifest);
    try {
      await this.write(`${name}.bin`, data.buffer as ArrayBuffer);
      await this.write(`${name}.json`, text).catch(async (error: unknown) => {
        await this.dir.removeEntry(`${name}.json`).catch(() => undefined);
        throw error;
      });
    } catch (error) {
      if (!isQuotaExceeded(error)) throw error;
      throw new StorageFullError(
        {
          what: `the best checkpoint of epoch ${checkpoint.epoch}${checkpoint.phase === 2 ? ' of phase 2' : ''}`,
          neededBytes: data.byteLength + text.length,
          estimate: await this.estimate?.().catch(() => undefined),
          kept:
            'Training stopped; the run is kept as it was after the epoch before, and can be resumed from there ' +
            'with its best checkpoint so far.',
          then: 'then Resume the run',
        },
        { cause: error },
      );
    }
    return `${this.label}:${name}`;
  }

  async load(name: string): Promise<Checkpoint | null> {
    try {
      const manifestFile = await (await this.dir.getFileHandle(`${name}.json`)).getFile();
      const dataFile = await (await this.dir.getFileHandle(`${name}.bin`)).getFile();
      const manifest = JSON.parse(await manifestFile.text()) as CheckpointManifest;
      return decodeCheckpoint(manifest, new Float32Array(await dataFile.arrayBuffer()));
    } catch (error) {
      if ((error as { name?: string }).name === 'NotFoundError') return null;
      throw error;
    }
  }
}
