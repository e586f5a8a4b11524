/**
 * Runs kept in the browser: records in IndexedDB (database `lesion-lab-runs`, object store `runs`, keyed by id),
 * each run's model through tf.io at `indexeddb://run-<id>` (tfjs's own IndexedDB database). Works in a worker and
 * on the page; several instances (tabs, workers) share the same data.
 *
 * Records are checked when read (parseRunRecord): one written by an incompatible version, or damaged, is left out
 * of `list` and reported through `onInvalid` instead of breaking the Runs page; `get` of it throws, naming the
 * field. Storage that is full fails with a message that says what to do.
 *
 * TensorFlow.js is imported only when a model is saved, loaded or removed: listing the runs and which of them have
 * a model (`modelIds`, read from tfjs's own database) must not wait for its megabytes to load and start.
 */
import type * as tf from '@tensorflow/tfjs';
import { parseRunRecord, RUN_ID_PATTERN, sortRuns, type RunRecord } from '../lib/runs/record.ts';
import type { RunStore } from '../lib/runs/store.ts';

export const RUNS_DATABASE = 'lesion-lab-runs';
const RUNS_STORE = 'runs';
const DATABASE_VERSION = 1;
const MODEL_PREFIX = 'indexeddb://run-';
/** tf.io's IndexedDB database and the store of its model list (tfjs-core src/io/indexed_db.ts). */
const TFJS_DATABASE = 'tensorflowjs';
const TFJS_MODEL_INFO_STORE = 'model_info_store';

const tfjs = () => import('@tensorflow/tfjs');

/** Where tf.io keeps a run's model (also loadable with tf.loadLayersModel). */
export function runModelUrl(id: string): string {
  if (!RUN_ID_PATTERN.test(id)) throw new Error(`"${id}" is not a run id`);
  return `${MODEL_PREFIX}${id}`;
}

export interface IndexedDbRunStoreOptions {
  /** Database for the records (tests use their own); models always go to tfjs's database. */
  databaseName?: string;
  /** Told about each stored record that fails its check, which `list` then leaves out. Default: console.warn. */
  onInvalid?: (id: string, error: Error) => void;
}

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
    transaction.onerror = () => reject(transaction.error ?? new Error('IndexedDB transaction failed'));
  });
}

const isNotFound = (error: unknown): boolean =>
  /Cannot find model with path/.test(String((error as Error)?.message));

function storageError(error: unknown, what: string): Error {
  const name = (error as { name?: string })?.name;
  if (name === 'QuotaExceededError' || /quota/i.test(String((error as Error)?.message))) {
    return new Error(
      `The browser's storage for this site is full: could not save ${what}. ` +
        'Delete runs you no longer need (Runs page) or free disk space, then try again.',
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

export class IndexedDbRunStore implements RunStore {
  private database: Promise<IDBDatabase> | null = null;
  private readonly databaseName: string;
  private readonly onInvalid: (id: string, error: Error) => void;

  constructor(options: IndexedDbRunStoreOptions = {}) {
    this.databaseName = options.databaseName ?? RUNS_DATABASE;
    this.onInvalid =
      options.onInvalid ?? ((id, error) => console.warn(`stored run ${id} is left out: ${error.message}`));
  }

  private open(): Promise<IDBDatabase> {
    this.database ??= new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(this.databaseName, DATABASE_VERSION);
      request.onupgradeneeded = () => {
        if (!request.result.objectStoreNames.contains(RUNS_STORE)) {
          request.result.createObjectStore(RUNS_STORE, { keyPath: 'id' });
        }
      };
      request.onsuccess = () => {
        const db = request.result;
        // Another tab upgrading or deleting the database: let it, and reopen on the next call.
        db.onversionchange = () => {
          db.close();
          this.database = null;
        };
        resolve(db);
      };
      request.onerror = () =>
        reject(request.error ?? new Error(`could not open IndexedDB ${this.databaseName}`));
      request.onblocked = () =>
        reject(
          new Error('the runs database is held open by an older version of the app in another tab; close it'),
        );
    }).catch((error: unknown) => {
      this.database = null;
      throw error;
    });
    return this.database;
  }

  private async transaction<T>(
    mode: IDBTransactionMode,
    work: (store: IDBObjectStore) => Promise<T>,
  ): Promise<T> {
    const db = await this.open();
    const tx = db.transaction(RUNS_STORE, mode);
    const finished = committed(tx);
    const result = await work(tx.objectStore(RUNS_STORE));
    await finished;
    return result;
  }

  async list(): Promise<RunRecord[]> {
    const values = await this.transaction('readonly', (store) => done(store.getAll()));
    const runs: RunRecord[] = [];
    for (const value of values as unknown[]) {
      try {
        runs.push(parseRunRecord(value, `stored run ${(value as { id?: unknown })?.id}`));
      } catch (error) {
        this.onInvalid(String((value as { id?: unknown })?.id), error as Error);
      }
    }
    return sortRuns(runs);
  }

  async get(id: string): Promise<RunRecord | null> {
    const value = await this.transaction('readonly', (store) => done(store.get(id)));
    return value === undefined ? null : parseRunRecord(value, `stored run ${id}`);
  }

  async put(run: RunRecord): Promise<void> {
    const checked = parseRunRecord(run, `run ${run.id}`);
    try {
      await this.transaction('readwrite', (store) => done(store.put(checked)));
    } catch (error) {
      throw storageError(error, `run "${run.name}"`);
    }
  }

  async putModel(id: string, artifacts: tf.io.ModelArtifacts): Promise<void> {
    const { io } = await tfjs();
    const [handler] = io.getSaveHandlers(runModelUrl(id));
    if (!handler?.save) throw new Error('this browser offers no IndexedDB to keep models in');
    try {
      await handler.save(artifacts);
    } catch (error) {
      throw storageError(error, `the model of run ${id}`);
    }
  }

  async getModel(id: string): Promise<tf.io.ModelArtifacts | null> {
    const { io } = await tfjs();
    const [handler] = io.getLoadHandlers(runModelUrl(id));
    if (!handler?.load) throw new Error('this browser offers no IndexedDB to keep models in');
    try {
      return await handler.load();
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  private async removeModel(url: string): Promise<void> {
    const { io } = await tfjs();
    try {
      await io.removeModel(url);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async delete(id: string): Promise<boolean> {
    const existed = await this.transaction('readwrite', async (store) => {
      const key = await done(store.getKey(id));
      if (key === undefined) return false;
      await done(store.delete(id));
      return true;
    });
    await this.removeModel(runModelUrl(id));
    return existed;
  }

  async deleteAll(): Promise<number> {
    const count = await this.transaction('readwrite', async (store) => {
      const n = await done(store.count());
      await done(store.clear());
      return n;
    });
    // Every run model, also those whose record was lost (e.g. a tab closed between the two saves).
    const { io } = await tfjs();
    const models = Object.keys(await io.listModels()).filter((url) => url.startsWith(MODEL_PREFIX));
    for (const url of models) await this.removeModel(url);
    return count;
  }

  /**
   * The ids of the runs that have a stored model, read from tf.io's own database without loading TensorFlow.js
   * (the same list as `tf.io.listModels()`, tested). A browser where tf.io never saved a model has no such
   * database: opening it would create an empty one that tfjs would then find without its stores, so the creation
   * is aborted.
   */
  async modelIds(): Promise<string[]> {
    const db = await new Promise<IDBDatabase | null>((resolve, reject) => {
      // No version: whatever version tfjs made it at (an absent database is asked to be made, which is called off).
      const request = indexedDB.open(TFJS_DATABASE);
      let created = false;
      request.onupgradeneeded = () => {
        created = true;
        request.transaction?.abort();
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => {
        if (created) resolve(null);
        else reject(request.error ?? new Error(`could not open IndexedDB ${TFJS_DATABASE}`));
      };
    });
    if (!db) return [];
    try {
      if (!db.objectStoreNames.contains(TFJS_MODEL_INFO_STORE)) return [];
      const tx = db.transaction(TFJS_MODEL_INFO_STORE, 'readonly');
      const keys = await done(tx.objectStore(TFJS_MODEL_INFO_STORE).getAllKeys());
      const prefix = MODEL_PREFIX.slice('indexeddb://'.length);
      return keys
        .map(String)
        .filter((key) => key.startsWith(prefix))
        .map((key) => key.slice(prefix.length));
    } finally {
      db.close();
    }
  }

  /** Closes the connection (e.g. before deleting the database); the next call opens it again. */
  async close(): Promise<void> {
    const db = await this.database?.catch(() => null);
    db?.close();
    this.database = null;
  }
}
