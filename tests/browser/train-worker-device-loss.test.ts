/**
 * A real WebGPU device loss in the training worker, as a user's GPU would lose it: a run on WebGPU (headless
 * Chromium's SwiftShader adapter, chosen by the user, since auto would pick WASM here) over real HAM10000 images
 * cached by the ingest worker, with the real MobileNet v1 0.25 Keras `.h5` weights: the base's features are
 * computed on the GPU, then the head trains there (SwiftShader compiles every shader in software, so batches of
 * images through the base each epoch would take minutes). After the first epoch the worker destroys its real GPUDevice
 * (`GPUDevice.destroy()` through TrainClient.simulateDeviceLoss, which only falls back to a signalled loss when the
 * backend is not WebGPU, and says which it did). The worker must learn of the loss from the device itself
 * (`device.lost`), switch to another backend, rebuild the network there with the pretrained weights, restore the
 * last epoch's state, and finish the run; and the next run must get a new device.
 * tests/browser/train-webgpu.test.ts covers the loop alone on a destroyed device; this is the worker's whole path.
 */
import { pickFiles } from '../helpers/pick-files.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestClient } from '../../src/worker/ingest-client.ts';
import { TrainClient, type RunLog, type TrainEvent } from '../../src/worker/train-client.ts';

const SHARED = '../shared';
const PER_CLASS = 6;

let trainer: TrainClient;
let h5: File;
const events: TrainEvent[] = [];
const logs = (): RunLog[] => events.flatMap((e) => (e.type === 'log' ? [e.log] : []));
const logsOf = <T extends RunLog['type']>(type: T) =>
  logs().filter((l): l is Extract<RunLog, { type: T }> => l.type === type);
const started = performance.now();
const until = async (predicate: () => boolean, what: string, ms = 400_000) => {
  const t0 = performance.now();
  while (!predicate()) {
    if (performance.now() - t0 > ms) {
      const seen = logs().map((l) => l.type);
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}; logs so far: ${seen.join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
};

beforeAll(async () => {
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
    expect((await ingest.startCaching(96)).count).toBe(4 * PER_CLASS);
  } finally {
    ingest.dispose();
  }
  h5 = (
    await pickFiles([`${SHARED}/weights/keras-mobilenet-v1-0.25-224-notop/mobilenet_2_5_224_tf_no_top.h5`])
  )[0]!;
  trainer = new TrainClient();
  trainer.subscribe((e) => {
    events.push(e);
    if (e.type === 'log' && e.log.type !== 'batch')
      console.info(`[device-loss] ${((performance.now() - started) / 1000).toFixed(1)} s ${e.log.type}`);
  });
});

afterAll(() => {
  trainer?.dispose();
});

const RUN = {
  backbone: 'mobilenet_v1_0.25',
  imageSize: 96,
  backend: 'webgpu',
  batchSize: 4,
  earlyStopping: null,
  reduceLr: null,
  split: { seed: 1337, ratios: [0.6, 0.2, 0.2], grouped: true },
  augment: null,
} as const;

describe('the training worker on a real WebGPU device that is destroyed mid-run', () => {
  it('learns of the loss from the device, moves to WASM, rebuilds with the pretrained weights, resumes from the last epoch and finishes', async () => {
    events.length = 0;
    const running = trainer.start({ ...RUN, epochs: 3 }, { kind: 'keras-h5', file: h5 });
    running.catch(() => undefined);
    try {
      await until(
        () => logsOf('epoch').length >= 1 || logsOf('done').length > 0,
        'the first epoch on WebGPU',
      );
      const [first] = logsOf('backend');
      expect(first).toMatchObject({ backend: 'webgpu', adapter: { isFallback: true } });
      expect(logsOf('phase')[0]).toMatchObject({ input: 'features' });
      const batchesBefore = logsOf('batch').length;

      // The worker is on WebGPU, so this destroys its real GPUDevice rather than signalling a loss.
      expect(await trainer.simulateDeviceLoss()).toEqual({ simulated: 'device-destroyed' });
      const summary = await running;

      const all = logs();
      const lostAt = all.findIndex((l) => l.type === 'device-lost');
      const recoveredAt = all.findIndex((l) => l.type === 'recovered');
      expect(lostAt).toBeGreaterThan(0);
      expect(recoveredAt).toBeGreaterThan(lostAt);
      const lost = all[lostAt] as Extract<RunLog, { type: 'device-lost' }>;
      const recovered = all[recoveredAt] as Extract<RunLog, { type: 'recovered' }>;
      console.info('[device-loss]', JSON.stringify({ lost, recovered, summary: { ...summary, test: null } }));
      expect(logsOf('device-lost')).toHaveLength(1);
      // The browser's own words from GPUDevice.lost ("Device was destroyed."), not the simulated signal's.
      expect(lost.message).toMatch(/destroyed/i);
      expect(lost.message).not.toMatch(/simulated/);
      expect(logsOf('recovered')).toHaveLength(1);
      // Resumed from the end of the last complete epoch on WebGPU: epoch 1 (or 2 if it ended before the loss landed).
      expect(recovered.backend).toBe('wasm');
      expect(recovered.fromEpoch).toBeGreaterThanOrEqual(1);
      expect(lost.epoch).toBe(recovered.fromEpoch + 1);
      // The backend line after the switch names WASM and the loss.
      const after = all.slice(recoveredAt).find((l) => l.type === 'backend');
      expect(after).toMatchObject({
        backend: 'wasm',
        adapter: null,
        reason: expect.stringMatching(/after losing webgpu/),
      });
      // Training went on there: batches after the switch, every epoch once in the history, the run completed and
      // scored on the test split by the backend it ended on.
      const batchesAfter = all.slice(recoveredAt).filter((l) => l.type === 'batch');
      expect(batchesAfter.length).toBeGreaterThan(0);
      expect(logsOf('batch').length).toBeGreaterThan(batchesBefore);
      const epochs = logsOf('epoch').map((e) => e.epoch);
      expect(epochs).toEqual([1, 2, 3]);
      for (const e of logsOf('epoch'))
        expect(Number.isFinite(e.loss) && Number.isFinite(e.val_loss)).toBe(true);
      expect(summary).toMatchObject({ reason: 'completed', backend: 'wasm', epochs: [3] });
      expect(summary.test?.images).toBeGreaterThan(0);
    } finally {
      await trainer.stop();
      await running.catch(() => undefined);
    }
  }, 600_000);

  it('gives the next WebGPU run a new device', async () => {
    events.length = 0;
    const summary = await trainer.start({ ...RUN, epochs: 1 }, { kind: 'keras-h5', file: h5 });
    expect(logsOf('backend')[0]).toMatchObject({ backend: 'webgpu' });
    expect(logsOf('device-lost')).toHaveLength(0);
    expect(summary).toMatchObject({ reason: 'completed', backend: 'webgpu', epochs: [1] });
  }, 600_000);
});
