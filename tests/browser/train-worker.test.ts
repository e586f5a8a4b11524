/**
 * The training worker end to end, as the UI drives it: real HAM10000 JPEGs and the real metadata go through the
 * ingest worker into the OPFS cache (96 px), then TrainClient trains MobileNet v1 0.25 with the real Keras `.h5`
 * weights dropped as a file. Checks the backend choice on this machine (SwiftShader → WASM), the typed log stream,
 * pause/resume, a simulated device loss, stop, and the augmentation preview.
 */
import { pickFiles } from '../helpers/pick-files.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { IngestClient } from '../../src/worker/ingest-client.ts';
import {
  TrainClient,
  TrainFailure,
  type EpochLog,
  type RunLog,
  type TrainEvent,
} from '../../src/worker/train-client.ts';
import { render } from '../helpers/render.ts';
import EpochChart from '../../src/components/train/EpochChart.svelte';
import CompareCurves from '../../src/components/runs/CompareCurves.svelte';
import { applyLog, createRun, modelConfigFor } from '../../src/lib/runs/record.ts';
import { headConfig } from '../../src/lib/model/head-config.ts';
import { EVENT_LOOP_TURN_MS } from '../../src/lib/train/control.ts';

const SHARED = '../shared';
const PER_CLASS = 10;

let trainer: TrainClient;
let h5: File;
const AUGMENT = {
  rotationDeg: 20,
  shearDeg: 0.1,
  zoom: 0.1,
  horizontalFlip: true,
  verticalFlip: false,
  widthShift: 0,
  heightShift: 0,
  fillMode: 'nearest' as const,
  interpolation: 'bilinear' as const,
};
/** The epoch logs of the real runs below, for the chart test. */
const histories: EpochLog[][] = [];
const events: TrainEvent[] = [];
const logsOf = (type: RunLog['type']) =>
  events.flatMap((e) => (e.type === 'log' && e.log.type === type ? [e.log] : []));

beforeAll(async () => {
  // A small cache of real images: PER_CLASS of each of four classes, with the real metadata file.
  const [csv] = await pickFiles([`${SHARED}/data/ham10000/HAM10000_metadata.csv`]);
  const want: Partial<Record<string, number>> = {
    bcc: PER_CLASS,
    bkl: PER_CLASS,
    mel: PER_CLASS,
    nv: PER_CLASS,
  };
  const ids: string[] = [];
  for (const line of (await csv!.text()).trim().split('\n').slice(1)) {
    const [, imageId, dx] = line.split(',');
    if (!imageId || !dx || !want[dx]) continue;
    ids.push(imageId);
    want[dx] -= 1;
  }
  const images = await pickFiles(ids.map((id) => `${SHARED}/data/ham10000/all-200x150/${id}.jpg`));
  const ingest = new IngestClient({ decoders: 2 });
  try {
    const snapshot = await ingest.addFiles([csv!, ...images]);
    expect(snapshot.match?.matched).toBe(4 * PER_CLASS);
    const cache = await ingest.startCaching(96);
    expect(cache.count).toBe(4 * PER_CLASS);
  } finally {
    ingest.dispose();
  }
  h5 = (
    await pickFiles([`${SHARED}/weights/keras-mobilenet-v1-0.25-224-notop/mobilenet_2_5_224_tf_no_top.h5`])
  )[0]!;
  trainer = new TrainClient();
  trainer.subscribe((e) => events.push(e));
});

afterAll(() => {
  trainer?.dispose();
});

describe('TrainClient and the training worker', () => {
  it('probes the backends: SwiftShader WebGPU is a fallback, so frozen-base work goes to WASM', async () => {
    const report = await trainer.probe();
    console.info('[train-worker] probe', JSON.stringify(report.probe));
    expect(report.probe.webgpu?.isFallback).toBe(true);
    expect(report.probe.wasm).toBe(true);
    expect(report.choices['frozen-base']).toMatchObject({ backend: 'wasm' });
    // The worker registers JavaScript conv gradient kernels for WASM (tfjs's WASM backend has none), so
    // fine-tuning also goes to WASM rather than SwiftShader's WebGL.
    expect(report.choices['fine-tune']).toMatchObject({ backend: 'wasm' });
    expect(report.unavailable['fine-tune'].wasm).toBeNull();
    expect(report.unavailable['fine-tune'].cpu).toBeNull();
    expect(report.unavailable['frozen-base'].wasm).toBeNull();
  });

  it('lists the image caches on this device', async () => {
    const caches = await trainer.caches();
    expect(caches.find((c) => c.size === 96)).toMatchObject({ size: 96, count: 4 * PER_CLASS });
  });

  it('trains from the OPFS cache with the real .h5 weights and reports split, epochs, checkpoint and test scores', async () => {
    events.length = 0;
    const summary = await trainer.start(
      {
        backbone: 'mobilenet_v1_0.25',
        imageSize: 96,
        epochs: 3,
        batchSize: 8,
        split: { seed: 1337, ratios: [0.6, 0.2, 0.2], grouped: true },
      },
      { kind: 'keras-h5', file: h5 },
    );
    expect(summary.reason).toBe('completed');
    expect(summary.backend).toBe('wasm');
    expect(summary.epochs).toEqual([3]);
    expect(summary.checkpoint).toMatch(/^opfs:lesion-lab-train\/checkpoints:run-.*-best-phase1$/);
    const states = events.flatMap((e) => (e.type === 'state' ? [e.state] : []));
    expect(states).toEqual(['preparing', 'training', 'done']);
    const [prepared] = logsOf('prepared');
    expect(prepared).toMatchObject({ type: 'prepared', classNames: [...DX] });
    // The backend line names what WASM runs on, not the (unused) WebGPU adapter. Vitest's page sends no COOP/COEP
    // (see vitest.config.ts), so one thread, and the line says why.
    expect(logsOf('backend')[0]).toMatchObject({
      backend: 'wasm',
      adapter: null,
      device: expect.stringMatching(
        /^WebAssembly, (SIMD|no SIMD), 1 thread \(the page is not cross-origin isolated/,
      ),
    });
    // On WASM the features come from feature workers (one per core, up to 4; one thread each without isolation),
    // and none of them failed (a failure would add a second log with workers 0 and the reason).
    if (navigator.hardwareConcurrency >= 2) {
      expect(logsOf('feature-workers')).toEqual([
        {
          type: 'feature-workers',
          workers: Math.min(navigator.hardwareConcurrency, 4),
          threads: 1,
          fallback: null,
        },
      ]);
    }
    histories.push(logsOf('epoch').flatMap((e) => (e.type === 'epoch' ? [e] : [])));
    expect(logsOf('phase')[0]).toMatchObject({ input: 'features', trainableParams: 256 * 7 + 7 });
    // Train, val and then test features, all before the first epoch: the evaluation after the last epoch runs
    // only the head on the test split's cached features.
    const finished = logsOf('features').flatMap((f) =>
      f.type === 'features' && f.done === f.total ? [[f.split, f.total]] : [],
    );
    const totals = prepared!.type === 'prepared' ? prepared.split.totals : null;
    expect(finished).toEqual([
      ['train', totals?.train],
      ['val', totals?.val],
      ['test', totals?.test],
    ]);
    const runLogs = events.flatMap((e) => (e.type === 'log' ? [e.log] : []));
    expect(runLogs.findIndex((l) => l.type === 'features' && l.split === 'test')).toBeLessThan(
      runLogs.findIndex((l) => l.type === 'batch'),
    );
    expect(logsOf('epoch')).toHaveLength(3);
    expect(logsOf('checkpoint').length).toBeGreaterThanOrEqual(1);
    const test = summary.test!;
    expect(test.images).toBe(prepared!.type === 'prepared' ? prepared.split.totals.test : -1);
    expect(test.confusion.flat().reduce((a, b) => a + b, 0)).toBe(test.images);
    console.info(
      '[train-worker] run',
      JSON.stringify({
        seconds: summary.seconds,
        epochSeconds: logsOf('epoch').map((e) => (e.type === 'epoch' ? e.seconds : null)),
        test: { balancedAccuracy: test.balancedAccuracy, accuracy: test.accuracy },
      }),
    );
    // The features are now in OPFS: a second run reads them instead of running the backbone.
    events.length = 0;
    await trainer.start(
      {
        backbone: 'mobilenet_v1_0.25',
        imageSize: 96,
        epochs: 1,
        batchSize: 8,
        split: { seed: 1337, ratios: [0.6, 0.2, 0.2], grouped: true },
      },
      { kind: 'keras-h5', file: h5 },
    );
    expect(logsOf('features').map((f) => f.type === 'features' && f.cached)).toEqual([true, true, true]);
    histories.push(logsOf('epoch').flatMap((e) => (e.type === 'epoch' ? [e] : [])));
  });

  it.each([
    ['head-only epochs on cached features', null],
    ['epochs of augmented images through the base', AUGMENT],
  ])(
    'pauses at the next batch on %s, whose batches never give the worker a turn by themselves',
    async (_, augment) => {
      events.length = 0;
      let sent: number | null = null;
      let reply: Awaited<ReturnType<TrainClient['pause']>> | null = null;
      let batchesAtReply = 0;
      let batches = 0;
      const off = trainer.subscribe((e) => {
        if (e.type !== 'log' || e.log.type !== 'batch') return;
        batches++;
        // Sent as soon as epoch 2 starts (features cached, every batch a microtask on WASM).
        if (sent === null && e.log.epoch === 2) {
          sent = batches;
          void trainer.pause().then((r) => {
            reply = r;
            batchesAtReply = batches;
          });
        }
      });
      const running = trainer.start(
        {
          backbone: 'mobilenet_v1_0.25',
          imageSize: 96,
          epochs: 50,
          batchSize: 1,
          augment,
          earlyStopping: null,
          split: { seed: 1337, ratios: [0.6, 0.2, 0.2], grouped: true },
        },
        { kind: 'keras-h5', file: h5 },
      );
      const until = async (predicate: () => boolean) => {
        while (!predicate()) await new Promise((r) => setTimeout(r, 5));
      };
      try {
        await until(() => logsOf('paused').length === 1 || logsOf('done').length === 1);
        off();
        const all = events.flatMap((e) => (e.type === 'log' ? [e.log] : []));
        const pausedAt = all.findIndex((l) => l.type === 'paused');
        expect(pausedAt).toBeGreaterThan(0);
        const beforePause = all.slice(0, pausedAt).filter((l) => l.type === 'batch');
        const last = beforePause.at(-1)!;
        const after = reply!.after!;
        const [epoch1] = logsOf('epoch');
        const epochMs = epoch1?.type === 'epoch' ? epoch1.seconds * 1000 : 0;
        console.info(
          '[train-worker] pause',
          JSON.stringify({
            sentAfterBatch: sent,
            deliveredAfter: after,
            pausedAfter: last,
            batchesAtReply,
            epochMs,
          }),
        );
        // The reply is posted when the message arrives, before the state turns 'paused' at the next batch.
        expect(reply!.state).toBe('training');
        // Paused at the first batch boundary after the message arrived, at most one batch later…
        expect(beforePause.length - batchesAtReply).toBeLessThanOrEqual(1);
        expect(after.epoch).toBe(2);
        // …and the message got in during epoch 2, not only at its end as before the fix, whenever the epoch lasts
        // clearly longer than the loop's turn interval (on a faster machine the whole epoch fits in one interval).
        if (epochMs > 3 * EVENT_LOOP_TURN_MS) expect(after.batch).toBeLessThan(after.batches);
      } finally {
        off();
        await trainer.stop();
        await running.catch(() => undefined);
      }
    },
  );

  it('pauses, resumes, recovers from a simulated device loss, and stops on request', async () => {
    events.length = 0;
    const running = trainer.start(
      {
        backbone: 'mobilenet_v1_0.25',
        imageSize: 96,
        epochs: 50,
        batchSize: 4,
        augment: {
          rotationDeg: 20,
          shearDeg: 0.1,
          zoom: 0.1,
          horizontalFlip: true,
          verticalFlip: false,
          widthShift: 0,
          heightShift: 0,
          fillMode: 'nearest',
          interpolation: 'bilinear',
        },
        earlyStopping: null,
        split: { seed: 1337, ratios: [0.6, 0.2, 0.2], grouped: true },
      },
      { kind: 'keras-h5', file: h5 },
    );
    const until = async (predicate: () => boolean) => {
      while (!predicate()) await new Promise((r) => setTimeout(r, 20));
    };
    await until(() => logsOf('batch').length >= 2);
    expect((await trainer.pause()).state).toBe('training');
    await until(() => logsOf('paused').length === 1);
    expect(trainer.state).toBe('paused');
    const batchesWhilePaused = logsOf('batch').length;
    await new Promise((r) => setTimeout(r, 400));
    expect(logsOf('batch').length).toBe(batchesWhilePaused);
    await trainer.resume();
    await until(() => logsOf('epoch').length >= 1);
    expect(await trainer.simulateDeviceLoss()).toEqual({ simulated: 'signalled' });
    await until(() => logsOf('recovered').length === 1);
    const recovered = logsOf('recovered')[0]!;
    expect(recovered.type === 'recovered' && recovered.backend).not.toBe('wasm');
    await until(() => logsOf('batch').length > batchesWhilePaused + 12);
    await trainer.stop();
    const summary = await running;
    expect(summary.reason).toBe('stopped');
    expect(summary.test).toBeNull();
    // Another start while idle works; two at once are refused.
    const again = trainer.start(
      { imageSize: 96, backbone: 'mobilenet_v1_0.25', epochs: 1 },
      { kind: 'none' },
    );
    const busy = await trainer.start({ imageSize: 96 }, { kind: 'none' }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(TrainFailure);
    expect((busy as TrainFailure).error.code).toBe('busy');
    await trainer.stop();
    await again;
  });

  it('refuses bad settings and a missing cache with errors that say what is wrong', async () => {
    const bad = await trainer.start({ imageSize: 96, epochs: 0 }, { kind: 'none' }).catch((e: unknown) => e);
    expect((bad as TrainFailure).error).toMatchObject({
      code: 'config',
      message: expect.stringMatching(/epochs/),
    });
    const noCache = await trainer.start({ imageSize: 160 }, { kind: 'none' }).catch((e: unknown) => e);
    expect((noCache as TrainFailure).error.code).toBe('cache');
  });

  it('previews augmentation of a cached image as RGBA tiles', async () => {
    const preview = await trainer.augmentPreview({ imageSize: 96, index: 3, count: 5, seed: 1, augment: {} });
    expect(preview.size).toBe(96);
    expect(preview.tiles).toHaveLength(6);
    expect(preview.tiles[0]!.length).toBe(96 * 96 * 4);
    expect(preview.tiles.slice(1).some((t) => t.some((v, i) => v !== preview.tiles[0]![i]))).toBe(true);
  });
});

describe('the training charts on these runs', () => {
  it('draw the epoch curves and the overlaid runs without Plot warnings, from the first epoch on', () => {
    expect(histories.map((h) => h.length)).toEqual([3, 1]);
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => {
      warnings.push(args.map(String).join(' '));
      original(...args);
    };
    try {
      for (const history of [histories[1]!, histories[0]!.slice(0, 1), histories[0]!]) {
        const root = render(EpochChart, {
          title: 'Loss per epoch',
          yLabel: 'Loss',
          history,
          series: [
            { key: 'loss', label: 'train loss', color: '#2f6db5' },
            { key: 'val_loss', label: 'val loss', color: '#D55E00' },
          ],
        });
        expect(root.querySelectorAll('g[aria-label="line"] path').length).toBe(2);
      }
      const runs = histories.map((history, i) =>
        history.reduce(
          (run, log) => applyLog(run, log),
          createRun({
            name: `run ${i + 1}`,
            config: {
              model: modelConfigFor('mobilenet_v1_0.25', 96, headConfig({ kind: 'gap-dense' }), DX),
              training: {},
            },
          }),
        ),
      );
      const root = render(CompareCurves, {
        runs: [runs[1]!, { ...runs[0]!, history: runs[0]!.history.slice(0, 1) }],
      });
      expect(root.querySelectorAll('g[aria-label="line"] path').length).toBe(2);
      const single = render(CompareCurves, {
        runs: [{ ...runs[0]!, history: runs[0]!.history.slice(0, 1) }],
      });
      expect(single.innerHTML).toMatch(/for 1 run: .*, 1 epoch, last/);
      render(CompareCurves, { runs });
    } finally {
      console.warn = original;
    }
    expect(warnings.filter((w) => /cardinality/.test(w))).toEqual([]);
    expect(warnings).toEqual([]);
  });
});
