import { describe, expect, it } from 'vitest';
import { FEATURE_FILES_KEPT, filesToPrune } from '../../src/lib/train/featureCache.ts';

describe('feature cache pruning', () => {
  const files = [
    { name: 'a.f32', lastModified: 3 },
    { name: 'b.f32', lastModified: 9 },
    { name: 'c.f32', lastModified: 1 },
    { name: 'd.f32', lastModified: 9 },
    { name: 'e.f32', lastModified: 5 },
  ];

  it('keeps the newest files and deletes the rest, oldest last in the list', () => {
    expect(filesToPrune(files, 2)).toEqual(['e.f32', 'a.f32', 'c.f32']);
    expect(filesToPrune(files, 0)).toEqual(['b.f32', 'd.f32', 'e.f32', 'a.f32', 'c.f32']);
    expect(filesToPrune(files, 10)).toEqual([]);
  });

  it('keeps a few runs’ worth: train, val and test of the last configurations', () => {
    expect(FEATURE_FILES_KEPT % 3).toBe(0);
    expect(FEATURE_FILES_KEPT).toBeGreaterThanOrEqual(6);
  });
});
