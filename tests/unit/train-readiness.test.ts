/**
 * What the Train page says is missing before Start (pure parts; the e2e test sees them on the built app), how the
 * form comes back after a reload, run names, and the elapsed-time clock.
 */
import { describe, expect, it } from 'vitest';
import { ActiveClock } from '../../src/lib/train/clock.ts';
import { EventLoopTurns, nextMacrotask } from '../../src/lib/train/control.ts';
import {
  checkRunName,
  runLabel,
  runName,
  runTimestamp,
  type RunNameParts,
} from '../../src/lib/runs/naming.ts';
import { missingCache } from '../../src/state/train-readiness.ts';
import {
  FORM_STORAGE_KEY,
  readStoredForm,
  restoreForm,
  storedWebGPUWeightGradients,
  writeStoredForm,
} from '../../src/state/train-form-store.ts';
import { runConfig } from '../../src/lib/train/config.ts';
import { WEBGPU_WEIGHT_GRADIENTS_STORAGE_KEY } from '../../src/lib/webgpu/weight-gradient-choice.ts';
import { defaultForm } from '../../src/state/training.svelte.ts';

describe('missing image cache', () => {
  it('says there is none, or which sizes there are, and nothing while unknown or present', () => {
    expect(missingCache(224, [])).toBe(
      'There is no image cache on this device yet: drop the dataset on the Data page and cache it at 224 px.',
    );
    expect(missingCache(224, [160, 96])).toBe(
      'There is no 224 px image cache on this device (there is one at 96 px, 160 px): pick that size, or ' +
        'cache the images at 224 px on the Data page.',
    );
    expect(missingCache(96, [160, 96])).toBeNull();
    expect(missingCache(96, null)).toBeNull();
  });
});

describe('the Train form after a reload', () => {
  it('comes back field by field; a bad or unknown value keeps its default', () => {
    const defaults = defaultForm();
    const saved = {
      ...defaults,
      epochs: '2',
      imageSize: 96,
      backbone: 'mobilenet_v1_0.25',
      weightsKind: 'stored',
    };
    const restored = restoreForm(JSON.parse(JSON.stringify(saved)), defaults);
    expect(restored.form.epochs).toBe('2');
    expect(restored.form.imageSize).toBe(96);
    expect(restored.form.backbone).toBe('mobilenet_v1_0.25');
    expect(restored.weightsKind).toBe('stored');
    const broken = restoreForm(
      { epochs: 2, imageSize: 100, backbone: 'resnet9', backend: 'tpu', phase2: 'yes', extra: 1 },
      defaults,
    );
    expect(broken.form).toEqual(defaults);
    expect(broken.weightsKind).toBeNull();
    expect(restoreForm(null, defaults).form).toEqual(defaults);
    expect(restoreForm('[', defaults).form).toEqual(defaults);
  });

  it('does not come back to weight files from disk (they are gone): the best source is chosen then', () => {
    const defaults = defaultForm();
    expect(restoreForm({ ...defaults, weightsKind: 'tfjs-files' }, defaults).weightsKind).toBeNull();
    expect(restoreForm({ ...defaults, weightsKind: 'keras-h5' }, defaults).weightsKind).toBeNull();
    expect(restoreForm({ ...defaults, weightsKind: 'none' }, defaults).weightsKind).toBe('none');
  });

  it('reads what was stored, and nothing from a damaged entry', () => {
    const entries = new Map<string, string>();
    const storage = {
      getItem: (k: string) => entries.get(k) ?? null,
      setItem: (k: string, v: string) => void entries.set(k, v),
    } as unknown as Storage;
    expect(readStoredForm(storage)).toBeNull();
    entries.set(FORM_STORAGE_KEY, '{"epochs":"7"}');
    expect(readStoredForm(storage)).toEqual({ epochs: '7' });
    entries.set(FORM_STORAGE_KEY, '{"epochs":');
    expect(readStoredForm(storage)).toBeNull();
    // The source the form settled on by itself is not kept; one the user chose is.
    const form = { ...defaultForm(), epochs: '4', weightsKind: 'stored' as const };
    writeStoredForm(storage, form, false);
    expect(restoreForm(readStoredForm(storage), defaultForm())).toEqual({
      form: { ...form, weightsKind: defaultForm().weightsKind },
      weightsKind: null,
    });
    writeStoredForm(storage, form, true);
    expect(restoreForm(readStoredForm(storage), defaultForm())).toEqual({ form, weightsKind: 'stored' });
  });
});

describe('the WebGPU weight-gradient switch', () => {
  it("is ours ('tiled') unless this browser's storage says 'stock'; the run's config keeps it and refuses others", () => {
    const entries = new Map<string, string>();
    const storage = { getItem: (k: string) => entries.get(k) ?? null } as unknown as Storage;
    expect(storedWebGPUWeightGradients(null)).toBe('tiled');
    expect(storedWebGPUWeightGradients(storage)).toBe('tiled');
    entries.set(WEBGPU_WEIGHT_GRADIENTS_STORAGE_KEY, 'stock');
    expect(storedWebGPUWeightGradients(storage)).toBe('stock');
    entries.set(WEBGPU_WEIGHT_GRADIENTS_STORAGE_KEY, 'fast please');
    expect(storedWebGPUWeightGradients(storage)).toBe('tiled');
    const blocked = {
      getItem: () => {
        throw new DOMException('blocked', 'SecurityError');
      },
    } as unknown as Storage;
    expect(storedWebGPUWeightGradients(blocked)).toBe('tiled');
    expect(runConfig().webgpuWeightGradients).toBe('tiled');
    expect(runConfig({ webgpuWeightGradients: 'stock' }).webgpuWeightGradients).toBe('stock');
    expect(() => runConfig({ webgpuWeightGradients: 'naive' as never })).toThrow(
      /^webgpuWeightGradients must be one of tiled, stock; got naive$/,
    );
  });
});

describe('run names', () => {
  const parts: RunNameParts = {
    model: 'MobileNetV2 α=0.35',
    inputSize: 224,
    epochs: 30,
    phase2Epochs: null,
    weights: 'served weights',
    classWeights: true,
    augment: false,
    grouped: true,
    created: new Date(2025, 10, 29, 15, 42, 7),
  };

  it('say the settings that differ and when, and never repeat a taken name', () => {
    const first = runName(parts);
    expect(first).toBe(
      'MobileNetV2 α=0.35 224 px · 30 ep · served weights · class weights · grouped split · 2025-11-29 15:42',
    );
    expect(runName(parts, [first])).toBe(`${first} #2`);
    expect(runName(parts, [first, `${first} #2`])).toBe(`${first} #3`);
    expect(
      runName({
        ...parts,
        epochs: 2,
        phase2Epochs: 3,
        weights: 'random init',
        classWeights: false,
        augment: true,
        grouped: false,
      }),
    ).toBe(
      'MobileNetV2 α=0.35 224 px · 2+3 ep · random init · no class weights · augmented · LEAKY split · ' +
        '2025-11-29 15:42',
    );
    expect(runTimestamp(new Date(2024, 0, 5, 9, 3))).toBe('2024-01-05 09:03');
  });

  it('are listed in a run picker with one date: the name’s, or the start time when the name has none', () => {
    const created = new Date(2026, 10, 29, 21, 42, 58);
    const named = runName({ ...parts, created });
    const locale = (date: Date) => date.toLocaleString('en-US');
    // The walk saw "… · 2026-11-29 21:42 — 11/29/2026, 9:42:58 PM (early-stop)".
    expect(runLabel({ name: named, created: created.toISOString(), status: 'early-stop' }, locale)).toBe(
      `${named} (early-stop)`,
    );
    expect(
      runLabel({ name: `${named} #2`, created: created.toISOString(), status: 'completed' }, locale),
    ).toBe(`${named} #2 (completed)`);
    // Renamed without a date: the start time stays in the label.
    expect(runLabel({ name: 'baseline', created: created.toISOString(), status: 'completed' }, locale)).toBe(
      'baseline — 11/29/2026, 9:42:58 PM (completed)',
    );
    expect(runLabel({ name: 'baseline', created: created.toISOString(), status: 'failed' })).toBe(
      `baseline — ${created.toLocaleString()} (failed)`,
    );
  });

  it('are checked when typed: trimmed, not empty, not too long, not another run’s', () => {
    expect(checkRunName('  baseline   224 ', ['other'])).toBe('baseline 224');
    expect(() => checkRunName('   ', [])).toThrow('Enter a name.');
    expect(() => checkRunName('x'.repeat(121), [])).toThrow(/at most 120 characters \(this one has 121\)/);
    expect(() => checkRunName('other', ['other'])).toThrow('Another run is already named "other".');
  });
});

describe('elapsed time', () => {
  it('leaves pauses out while running and at the end, and keeps its reading after stop', () => {
    let t = 1000;
    const clock = new ActiveClock(() => t);
    expect(clock.seconds).toBe(0);
    clock.start();
    t += 10_000;
    expect(clock.seconds).toBe(10);
    clock.pause();
    t += 60_000;
    // While paused the reading stands still: what the page shows during the pause…
    expect(clock.seconds).toBe(10);
    clock.pause();
    clock.resume();
    t += 5_000;
    expect(clock.seconds).toBe(15);
    clock.pause();
    t += 1_000;
    clock.stop();
    t += 99_000;
    // …is what it shows at the end, a pause at the end included.
    expect(clock.seconds).toBe(15);
    expect(clock.running).toBe(false);
    clock.start();
    expect(clock.seconds).toBe(0);
  });
});

describe('event-loop turns', () => {
  it('let a queued task run, at most once per interval', async () => {
    let ran = false;
    setTimeout(() => (ran = true), 0);
    await nextMacrotask();
    await nextMacrotask();
    expect(ran).toBe(true);
    let t = 0;
    const turns = new EventLoopTurns(50, () => t);
    await turns.maybeYield();
    expect(turns.turns).toBe(0);
    t = 49;
    await turns.maybeYield();
    expect(turns.turns).toBe(0);
    t = 50;
    await turns.maybeYield();
    expect(turns.turns).toBe(1);
    await turns.maybeYield();
    expect(turns.turns).toBe(1);
  });
});
