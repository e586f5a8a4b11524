import { describe, expect, it } from 'vitest';
import { featuresProgress } from '../../src/lib/train/logs.ts';

describe('features progress text', () => {
  it('gives the rate and the time left while the base computes features', () => {
    expect(
      featuresProgress({
        type: 'features',
        split: 'train',
        done: 500,
        total: 8011,
        cached: false,
        seconds: 10,
      }),
    ).toBe('Computing train features: 500 / 8011, 50.0 images/s, about 2 min 30 s left');
    expect(
      featuresProgress({
        type: 'features',
        split: 'val',
        done: 1002,
        total: 1002,
        cached: false,
        seconds: 20,
      }),
    ).toBe('Computing val features: 1002 / 1002, 50.1 images/s');
  });

  it('says nothing of a rate for features read from the cache', () => {
    expect(
      featuresProgress({
        type: 'features',
        split: 'train',
        done: 8011,
        total: 8011,
        cached: true,
        seconds: 0.2,
      }),
    ).toBe('Reading cached train features: 8011 / 8011');
  });
});
