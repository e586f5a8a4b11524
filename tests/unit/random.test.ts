import { describe, expect, it } from 'vitest';
import { createRandom } from '../../src/lib/random.ts';

describe('createRandom', () => {
  it('is reproducible from its seed and differs between seeds', () => {
    const a = Array.from({ length: 5 }, createRandom(1337).next);
    const b = Array.from({ length: 5 }, createRandom(1337).next);
    const c = Array.from({ length: 5 }, createRandom(1338).next);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('is close to uniform on [0, 1)', () => {
    const r = createRandom(7);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = r.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      bins[Math.floor(x * 10)]++;
    }
    for (const n of bins) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });

  it('shuffles into a permutation', () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const shuffled = createRandom(3).shuffle([...items]);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items);
  });
});
