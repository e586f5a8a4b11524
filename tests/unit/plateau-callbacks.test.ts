/**
 * The headless pipeline's EarlyStopping and ReduceLROnPlateau options, shared by `cli train`, the accuracy bench
 * and cross-validation: a null patience turns a callback off; otherwise both watch the config's monitor.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, plateauCallbacks } from '../../src/cli/node/headless.ts';

describe('plateauCallbacks', () => {
  it('turns both callbacks off by default', () => {
    expect(plateauCallbacks(DEFAULT_CONFIG)).toEqual({ earlyStopping: null, reduceLr: null });
  });

  it('builds EarlyStopping (restoring the best weights) and ReduceLROnPlateau from the patiences', () => {
    const config = {
      monitor: 'val_balanced_accuracy',
      earlyStoppingPatience: 10,
      minDelta: 0.001,
      reduceLrPatience: 5,
    } as const;
    expect(plateauCallbacks(config)).toEqual({
      earlyStopping: {
        monitor: 'val_balanced_accuracy',
        patience: 10,
        minDelta: 0.001,
        restoreBestWeights: true,
      },
      reduceLr: { monitor: 'val_balanced_accuracy', patience: 5, factor: 0.5, minLr: 1e-5 },
    });
    expect(plateauCallbacks({ ...config, reduceLrPatience: null }).reduceLr).toBeNull();
    expect(plateauCallbacks({ ...config, earlyStoppingPatience: null }).earlyStopping).toBeNull();
  });
});
