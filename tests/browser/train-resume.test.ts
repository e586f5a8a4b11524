/**
 * Interrupted training through the real training worker (WASM, real HAM10000 JPEGs cached at 96 px, the real
 * MobileNet v1 0.25 Keras weights dropped as a file, so a resumed run reads the copy the browser kept):
 *
 * - A worker crash: a test-only command makes the worker throw an uncaught error from a timer, which reaches the
 *   page as the Worker's `error` event, as a crash does. The client ends the worker and the run fails with the
 *   reason; its last resume point stays, is offered by a new worker, and the run resumes from it to the end with
 *   the history continuing from the checkpoint's epoch.
 * - Storage full: a real small quota (Chrome DevTools Protocol, Storage.overrideQuotaForOrigin, set while the run
 *   is paused) makes the next checkpoint write fail with the browser's own QuotaExceededError; the run stops with a
 *   message naming the sizes, the previous resume point is kept and, with the quota back, resumes.
 */
import { pickFiles } from '../helpers/pick-files.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cdp } from 'vitest/browser';
import { IngestClient } from '../../src/worker/ingest-client.ts';
import {
  TrainClient,
  TrainFailure,
  type EpochLog,
  type RunLog,
  type RunSummary,
  type TrainEvent,
} from '../../src/worker/train-client.ts';
import { createRun, modelConfigFor } from '../../src/lib/runs/record.ts';
import { headConfig } from '../../src/lib/model/head-config.ts';
import { DX } from '../../src/lib/data/dx.ts';

const SHARED = '../shared';
const PER_CLASS = 8;
const CONFIG = {
  backbone: 'mobilenet_v1_0.25' as const,
  imageSize: 96 as const,
  epochs: 5,
  batchSize: 4,
  earlyStopping: null,
  split: { seed: 1337, ratios: [0.6, 0.2, 0.2] as [number, number, number], grouped: true },
};

let h5: File;

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
    await ingest.addFiles([csv!, ...images]);
    expect((await ingest.startCaching(96)).count).toBe(4 * PER_CLASS);
  } finally {
    ingest.dispose();
  }
  h5 = (
    await pickFiles([`${SHARED}/weights/keras-mobilenet-v1-0.25-224-notop/mobilenet_2_5_224_tf_no_top.h5`])
  )[0]!;
});

afterAll(async () => {
  await cdp()
    .send('Storage.overrideQuotaForOrigin', { origin: location.origin })
    .catch(() => undefined);
});

function record(name: string) {
  return createRun({
    name,
    config: {
      model: modelConfigFor('mobilenet_v1_0.25', 96, headConfig({ kind: 'gap-dense' }), DX),
      training: { epochs: CONFIG.epochs },
    },
  });
}

/** Every event of `client`, and a wait for the first that matches. */
function watch(client: TrainClient) {
  const events: TrainEvent[] = [];
  const waiters: Array<() => void> = [];
  client.subscribe((e) => {
    events.push(e);
    for (const wake of waiters.splice(0)) wake();
  });
  const logs = <T extends RunLog['type']>(type: T) =>
    events.flatMap((e) =>
      e.type === 'log' && e.log.type === type ? [e.log as Extract<RunLog, { type: T }>] : [],
    );
  const until = async (predicate: () => boolean) => {
    while (!predicate()) await new Promise<void>((r) => waiters.push(r));
  };
  return { events, logs, until };
}

const epochNumbers = (logs: EpochLog[]) => logs.map((e) => e.epoch);

describe('interrupted training', () => {
  it('a crashed worker fails the run with the reason; its last checkpoint resumes to the end', async () => {
    const first = new TrainClient();
    const seen = watch(first);
    const run = record('crash test');
    const running = first.start(CONFIG, { kind: 'keras-h5', file: h5 }, run);
    await seen.until(() => seen.logs('epoch').length >= 2);
    await first.simulateCrash();
    const failure = await running.then(
      () => null,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(TrainFailure);
    expect((failure as TrainFailure).error).toEqual({
      code: 'crashed',
      message: expect.stringMatching(/^The training worker failed: .*crash simulated on request/),
    });
    expect(first.crashed).toBe(true);
    expect(seen.events.findLast((e) => e.type === 'state')).toEqual({ type: 'state', state: 'failed' });
    // The worker is gone: nothing more comes from it.
    const epochsBefore = seen.logs('epoch').length;
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.logs('epoch').length).toBe(epochsBefore);

    const second = new TrainClient();
    try {
      const offers = await second.resumable();
      const offer = offers.find((o) => o.record.id === run.id)!;
      expect(offer).toBeDefined();
      // At most the epoch in progress is lost.
      expect(offer.epoch).toBeGreaterThanOrEqual(2);
      expect(offer.epoch).toBeLessThanOrEqual(epochsBefore);
      expect(offer).toMatchObject({ phase: 1, epochs: 5, weights: { kind: 'stored' } });
      expect(epochNumbers(offer.history)).toEqual(Array.from({ length: offer.epoch }, (_, i) => i + 1));
      expect(offer.history).toEqual(seen.logs('epoch').slice(0, offer.epoch));

      const after = watch(second);
      const summary: RunSummary = await second.continueRun(offer.runId);
      expect(summary).toMatchObject({
        reason: 'completed',
        epochs: [5],
        resumedFrom: { phase: 1, epoch: offer.epoch },
      });
      expect(epochNumbers(after.logs('epoch'))).toEqual(
        Array.from({ length: 5 - offer.epoch }, (_, i) => offer.epoch + i + 1),
      );
      expect(summary.test?.images).toBeGreaterThan(0);
      expect(summary.checkpoint).toMatch(/-best-phase1$/);
      expect(summary.runId).toBe(offer.runId);
      // Finished, but the resume point stays (now at the last epoch) until the page has stored the run: a tab
      // closed in between still finds it. The page then discards it.
      const kept = (await second.resumable()).find((o) => o.runId === offer.runId);
      expect(kept).toMatchObject({ phase: 1, epoch: 5, epochs: 5 });
      expect(await second.discard(offer.runId)).toEqual({ discarded: true });
      expect((await second.resumable()).some((o) => o.runId === offer.runId)).toBe(false);
    } finally {
      second.dispose();
    }
  });

  it('storage full: the run stops with the sizes named, the previous checkpoint is kept and resumes', async () => {
    const client = new TrainClient();
    const seen = watch(client);
    const run = record('quota test');
    try {
      const running = client.start(CONFIG, { kind: 'keras-h5', file: h5 }, run);
      await seen.until(() => seen.logs('epoch').length >= 1);
      await client.pause();
      await seen.until(() => seen.logs('paused').length >= 1);
      // A real quota: no room left beyond what this origin stores now.
      const { usage } = await navigator.storage.estimate();
      await cdp().send('Storage.overrideQuotaForOrigin', { origin: location.origin, quotaSize: usage });
      const epochsAtQuota = seen.logs('epoch').length;
      await client.resume();
      const failure = await running.then(
        () => null,
        (e: unknown) => e,
      );
      await cdp().send('Storage.overrideQuotaForOrigin', { origin: location.origin });
      expect(failure).toBeInstanceOf(TrainFailure);
      const { error } = failure as TrainFailure;
      console.info('[train-resume] storage full', JSON.stringify(error));
      expect(error.code).toBe('storage');
      expect(error.message).toMatch(
        /^Browser storage is full: the (resume|best) checkpoint of epoch \d+ could not be saved: it needs \d+\.\d MB and (the browser refused it, although it reports )?[\d,.]+ MB (is )?available for this site \([\d,.]+ MB used of [\d,.]+ MB\)\. Training stopped; /,
      );
      expect(error.message).toMatch(/delete runs you no longer need \(Runs page\)/);

      const offer = (await client.resumable()).find((o) => o.record.id === run.id)!;
      expect(offer.epoch).toBe(epochsAtQuota);
      const summary = await client.continueRun(offer.runId);
      expect(summary).toMatchObject({
        reason: 'completed',
        epochs: [5],
        resumedFrom: { epoch: epochsAtQuota },
      });
      // No page stores this run: its resume point is let go here, as the page would once it had.
      expect(await client.discard(summary.runId)).toEqual({ discarded: true });
    } finally {
      client.dispose();
    }
  });
});
