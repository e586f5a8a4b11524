/**
 * Where runs are kept. The browser's store (src/worker/runs-store.ts) puts records in IndexedDB and models under
 * tf.io's `indexeddb://run-<id>`; the in-memory store here has the same contract, for tests and Node.
 *
 * Contract: records and models are copies both ways (changing what was put or got changes nothing stored);
 * `put` replaces a run with the same id (training saves the record after each epoch); deleting a run deletes its
 * model.
 */
import type * as tf from '@tensorflow/tfjs';
import { cloneArtifacts, modelArtifacts } from './model.ts';
import { parseRunRecord, sortRuns, type RunRecord } from './record.ts';

export interface RunStore {
  /** Every run, oldest first (by `created`, then id). */
  list(): Promise<RunRecord[]>;
  get(id: string): Promise<RunRecord | null>;
  /** Adds the run, or replaces the one with its id. The record is checked first (parseRunRecord). */
  put(run: RunRecord): Promise<void>;
  /** Saves the run's model, replacing any earlier one (the best checkpoint). */
  putModel(id: string, artifacts: tf.io.ModelArtifacts): Promise<void>;
  getModel(id: string): Promise<tf.io.ModelArtifacts | null>;
  /** Deletes the run and its model; false when there was no such run. */
  delete(id: string): Promise<boolean>;
  /** Deletes every run and every run model; returns how many runs there were. */
  deleteAll(): Promise<number>;
}

/** Saves `model` as the run's model. */
export async function saveRunModel(store: RunStore, id: string, model: tf.LayersModel): Promise<void> {
  await store.putModel(id, await modelArtifacts(model));
}

export class MemoryRunStore implements RunStore {
  private readonly runs = new Map<string, RunRecord>();
  private readonly models = new Map<string, tf.io.ModelArtifacts>();

  async list(): Promise<RunRecord[]> {
    return sortRuns([...this.runs.values()].map((r) => structuredClone(r)));
  }

  async get(id: string): Promise<RunRecord | null> {
    const run = this.runs.get(id);
    return run ? structuredClone(run) : null;
  }

  async put(run: RunRecord): Promise<void> {
    const checked = parseRunRecord(run, `run ${run.id}`);
    this.runs.set(checked.id, structuredClone(checked));
  }

  async putModel(id: string, artifacts: tf.io.ModelArtifacts): Promise<void> {
    this.models.set(id, cloneArtifacts(artifacts));
  }

  async getModel(id: string): Promise<tf.io.ModelArtifacts | null> {
    const artifacts = this.models.get(id);
    return artifacts ? cloneArtifacts(artifacts) : null;
  }

  async delete(id: string): Promise<boolean> {
    this.models.delete(id);
    return this.runs.delete(id);
  }

  async deleteAll(): Promise<number> {
    const count = this.runs.size;
    this.runs.clear();
    this.models.clear();
    return count;
  }
}
