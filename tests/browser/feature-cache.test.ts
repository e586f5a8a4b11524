import { describe, expect, it } from 'vitest';
import { OpfsFeatureStore } from '../../src/lib/train/featureCache.ts';

describe('feature cache in OPFS', () => {
  it('reports its files and bytes and keeps only the newest', async () => {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry('feature-cache-test', { recursive: true }).catch(() => undefined);
    const dir = await root.getDirectoryHandle('feature-cache-test', { create: true });
    const store = new OpfsFeatureStore(dir);
    for (let i = 0; i < 5; i++) {
      await store.put(`key-${i}`, new Float32Array(100 + i));
      // lastModified has millisecond resolution: the files must be told apart by age.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await store.usage()).toEqual({ files: 5, bytes: 4 * (100 + 101 + 102 + 103 + 104) });
    const deleted = await store.prune(3);
    expect(deleted).toEqual([OpfsFeatureStore.fileName('key-1'), OpfsFeatureStore.fileName('key-0')]);
    expect(await store.get('key-0')).toBeNull();
    expect((await store.get('key-4'))?.length).toBe(104);
    expect(await store.usage()).toEqual({ files: 3, bytes: 4 * (102 + 103 + 104) });
    await store.prune(0);
    expect(await store.usage()).toEqual({ files: 0, bytes: 0 });
    await root.removeEntry('feature-cache-test', { recursive: true });
  });
});
