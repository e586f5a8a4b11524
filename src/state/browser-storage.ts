/**
 * What this origin keeps in the browser, item by item, and how to delete one: the Origin Private File System
 * (image caches, downloads, training checkpoints and feature caches, weights), IndexedDB (runs and their models),
 * Cache Storage (the service worker's offline copy of the app) and localStorage (forms, lesson progress).
 *
 * Plain TypeScript over the browser's storage APIs (no DOM, no runes), so the Privacy page's state and the tests
 * share it. Sizes are measured, not estimated from the quota: file sizes in OPFS, response bodies in Cache
 * Storage, and for IndexedDB the bytes of every stored value (binary data exactly, text and numbers as UTF-16).
 */

export type StorageKind = 'opfs' | 'indexeddb' | 'cache' | 'local';

export interface StoredItem {
  /** Unique across kinds, stable across listings: what deletion is asked for by. */
  key: string;
  kind: StorageKind;
  /** What a person reads: "lesion-lab-cache / images at 224 px". */
  label: string;
  /** What it is for, in the app's words. */
  purpose: string;
  bytes: number;
  /** Files, records or responses it holds. */
  count: number;
}

/** The app's OPFS folders, and what each holds. */
const OPFS_PURPOSES: Record<string, string> = {
  'lesion-lab-cache': 'decoded images of the dataset and its metadata',
  'lesion-lab-downloads': 'dataset zips downloaded from this site',
  'lesion-lab-train': 'training checkpoints and cached features',
  'lesion-lab-weights': 'backbone weights loaded once and kept',
};

const IDB_PURPOSES: Record<string, string> = {
  'lesion-lab-runs': 'runs: settings, history and test results',
  tensorflowjs: "runs' models (TensorFlow.js)",
};

type DirectoryHandle = FileSystemDirectoryHandle & {
  entries(): AsyncIterableIterator<[string, FileSystemHandle]>;
};

async function* entriesOf(dir: FileSystemDirectoryHandle): AsyncGenerator<[string, FileSystemHandle]> {
  yield* (dir as DirectoryHandle).entries();
}

async function sizeOf(handle: FileSystemHandle): Promise<{ bytes: number; count: number }> {
  if (handle.kind === 'file') {
    return { bytes: (await (handle as FileSystemFileHandle).getFile()).size, count: 1 };
  }
  let bytes = 0;
  let count = 0;
  for await (const [, child] of entriesOf(handle as FileSystemDirectoryHandle)) {
    const s = await sizeOf(child);
    bytes += s.bytes;
    count += s.count;
  }
  return { bytes, count };
}

/** The image cache keeps a pixel file and an index per size (pixels-224.rgb, index-224.json): one item each. */
const CACHE_FILE = /^(?:pixels|index)-(\d+)\./;

async function opfsItems(): Promise<StoredItem[]> {
  if (!navigator.storage?.getDirectory) return [];
  const root = await navigator.storage.getDirectory();
  const items: StoredItem[] = [];
  for await (const [top, handle] of entriesOf(root)) {
    const purpose = OPFS_PURPOSES[top] ?? 'a folder this app does not know';
    if (handle.kind === 'file') {
      const s = await sizeOf(handle);
      items.push({ key: `opfs:${top}`, kind: 'opfs', label: top, purpose, ...s });
      continue;
    }
    const groups = new Map<string, StoredItem>();
    for await (const [name, child] of entriesOf(handle as FileSystemDirectoryHandle)) {
      const size = top === 'lesion-lab-cache' ? CACHE_FILE.exec(name)?.[1] : undefined;
      const group = size ? `images at ${size} px` : name;
      const s = await sizeOf(child);
      const item = groups.get(group) ?? {
        key: `opfs:${top}/${group}`,
        kind: 'opfs' as const,
        label: `${top} / ${group}`,
        purpose,
        bytes: 0,
        count: 0,
      };
      item.bytes += s.bytes;
      item.count += s.count;
      groups.set(group, item);
    }
    items.push(...[...groups.values()].sort((a, b) => a.label.localeCompare(b.label)));
  }
  return items;
}

/** Bytes of a stored value: binary data exactly, strings as UTF-16, numbers as 8, objects by their parts. */
function valueBytes(value: unknown, seen = new Set<object>()): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'string') return value.length * 2;
  if (typeof value === 'number' || typeof value === 'bigint') return 8;
  if (typeof value === 'boolean') return 4;
  if (typeof value !== 'object') return 0;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof Blob) return value.size;
  if (seen.has(value)) return 0;
  seen.add(value);
  let bytes = 0;
  if (Array.isArray(value)) {
    for (const v of value) bytes += valueBytes(v, seen);
    return bytes;
  }
  for (const [k, v] of Object.entries(value)) bytes += k.length * 2 + valueBytes(v, seen);
  return bytes;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

async function databaseSize(name: string): Promise<{ bytes: number; count: number }> {
  const open = indexedDB.open(name);
  // Opening a name that was deleted meanwhile would create it empty: abort that upgrade instead.
  open.onupgradeneeded = () => open.transaction?.abort();
  const db = await request(open).catch(() => null);
  if (!db) return { bytes: 0, count: 0 };
  try {
    let bytes = 0;
    let count = 0;
    const stores = [...db.objectStoreNames];
    if (stores.length === 0) return { bytes, count };
    const tx = db.transaction(stores, 'readonly');
    for (const store of stores) {
      await new Promise<void>((resolve, reject) => {
        const cursor = tx.objectStore(store).openCursor();
        cursor.onerror = () => reject(cursor.error ?? new Error(`could not read ${name}/${store}`));
        cursor.onsuccess = () => {
          const c = cursor.result;
          if (!c) return resolve();
          bytes += valueBytes(c.key) + valueBytes(c.value);
          count++;
          c.continue();
        };
      });
    }
    return { bytes, count };
  } finally {
    db.close();
  }
}

async function indexedDbItems(): Promise<StoredItem[]> {
  if (typeof indexedDB === 'undefined' || !indexedDB.databases) return [];
  const items: StoredItem[] = [];
  for (const { name } of await indexedDB.databases()) {
    if (!name) continue;
    items.push({
      key: `indexeddb:${name}`,
      kind: 'indexeddb',
      label: name,
      purpose: IDB_PURPOSES[name] ?? 'a database this app does not know',
      ...(await databaseSize(name)),
    });
  }
  return items.sort((a, b) => a.label.localeCompare(b.label));
}

async function cacheStorageItems(): Promise<StoredItem[]> {
  if (typeof caches === 'undefined') return [];
  const items: StoredItem[] = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    let bytes = 0;
    const requests = await cache.keys();
    for (const r of requests) {
      const response = await cache.match(r);
      if (response) bytes += (await response.blob()).size;
    }
    items.push({
      key: `cache:${name}`,
      kind: 'cache',
      label: name,
      purpose: "the app's own files, for offline use (the service worker's copy)",
      bytes,
      count: requests.length,
    });
  }
  return items;
}

function localStorageItems(): StoredItem[] {
  if (typeof localStorage === 'undefined') return [];
  const items: StoredItem[] = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key === null) continue;
    items.push({
      key: `local:${key}`,
      kind: 'local',
      label: key,
      purpose: 'settings and progress of this page',
      bytes: (key.length + (localStorage.getItem(key)?.length ?? 0)) * 2,
      count: 1,
    });
  }
  return items.sort((a, b) => a.label.localeCompare(b.label));
}

/** Everything this origin stores in the browser, by kind (OPFS, IndexedDB, Cache Storage, localStorage). */
export async function listStoredItems(): Promise<StoredItem[]> {
  const [opfs, idb, cache] = await Promise.all([opfsItems(), indexedDbItems(), cacheStorageItems()]);
  return [...opfs, ...idb, ...cache, ...localStorageItems()];
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = () => resolve();
    r.onerror = () => reject(r.error ?? new Error(`could not delete the database ${name}`));
    // A connection that does not close on versionchange keeps the database; the deletion completes later.
    r.onblocked = () =>
      reject(new Error(`the database ${name} is in use by another tab of this app; close it and try again`));
  });
}

/** Deletes one item of listStoredItems (its key), whole: every file of an image cache size, a whole database. */
export async function deleteStoredItem(key: string): Promise<void> {
  const at = key.indexOf(':');
  const kind = key.slice(0, at);
  const name = key.slice(at + 1);
  switch (kind) {
    case 'opfs': {
      const root = await navigator.storage.getDirectory();
      const [top, group] = [name.split('/')[0]!, name.slice(name.indexOf('/') + 1)];
      if (!name.includes('/')) {
        await root.removeEntry(top, { recursive: true });
        return;
      }
      const dir = await root.getDirectoryHandle(top);
      const size = /^images at (\d+) px$/.exec(group)?.[1];
      const names: string[] = [];
      if (size) {
        for await (const [child] of entriesOf(dir))
          if (CACHE_FILE.exec(child)?.[1] === size) names.push(child);
      } else {
        names.push(group);
      }
      // The index first: a cache without its index is never taken for a complete one.
      names.sort((a, b) => Number(b.startsWith('index-')) - Number(a.startsWith('index-')));
      for (const child of names) await dir.removeEntry(child, { recursive: true });
      return;
    }
    case 'indexeddb':
      return deleteDatabase(name);
    case 'cache':
      await caches.delete(name);
      return;
    case 'local':
      localStorage.removeItem(name);
      return;
    default:
      throw new Error(`unknown storage item ${key}`);
  }
}
