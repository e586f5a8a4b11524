/**
 * `npm run -s bench -- pause [--images 400] [--epochs 4] [--rounds 3]`
 *
 * What the loop's event-loop turns (src/lib/train/control.ts) cost on the path they matter for, and what they buy.
 * Head epochs on cached features resolve every batch as a microtask, so without a turn a 'pause' message waits for
 * the end of the epoch. Here the real loop (`train()`) trains the head of MobileNetV2 0.35 (real ImageNet weights,
 * 96 px) on the cached features of real HAM10000 images (all-200x150) on WASM in Node, with the turn interval at
 * Infinity (never: the old loop), the default EVENT_LOOP_TURN_MS, and 0 (before every batch), interleaved over
 * several rounds:
 *
 *   epoch_ms             median epoch wall time per setting and batch size (1 and 16), and its overhead against
 *                        Infinity
 *   turns_per_epoch      macrotasks the loop waited for
 *   pause                a pause queued as a task right after the first batch of an epoch (as the worker receives
 *                        it): milliseconds and batches until the loop paused; null when it never did in the run
 */
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { matchImages } from '../../src/lib/data/match.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { EVENT_LOOP_TURN_MS, TrainControl } from '../../src/lib/train/control.ts';
import { MemoryFeatureStore } from '../../src/lib/train/featureCache.ts';
import { train } from '../../src/lib/train/loop.ts';
import { createNetwork, disposeNetwork } from '../../src/lib/train/network.ts';
import { useNodeBackend } from '../../src/cli/node/backend.ts';
import { decodeImages, listImages, stratifiedSubset } from '../../src/cli/node/images.ts';
import { loadWeightsFromPath } from '../../src/cli/node/weights.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const HAM = join(ROOT, '..', 'shared', 'data', 'ham10000');
const WEIGHTS = join(ROOT, '..', 'shared', 'weights', 'tfjs-mobilenet-v2-0.35-224-notop');
const SIZE = 96;

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const log = (line: object): void => void process.stderr.write(`${JSON.stringify(line)}\n`);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function bench(args: string[]): Promise<unknown> {
  tf.enableProdMode();
  const count = Number(option(args, 'images') ?? 400);
  const epochs = Number(option(args, 'epochs') ?? 4);
  const rounds = Number(option(args, 'rounds') ?? 3);
  const t0 = performance.now();
  const loadAtStart = loadavg();
  await useNodeBackend('wasm');
  const { listing } = await listImages(join(HAM, 'all-200x150'));
  const metadata = parseMetadata(
    await readFile(join(HAM, 'HAM10000_metadata.csv'), 'utf8'),
    'HAM10000_metadata.csv',
  );
  const { matched } = matchImages(metadata.records, listing);
  const { dataset } = await decodeImages(stratifiedSubset(matched, count, 1337), { size: SIZE });
  const network = createNetwork({
    backbone: 'mobilenet_v2_0.35',
    inputSize: SIZE,
    head: { kind: 'gap-dense', classes: 7, hiddenUnits: 128, dropout: 0.2 },
  });
  await loadWeightsFromPath(network.base, WEIGHTS);
  const split = Math.floor(dataset.count * 0.8);
  const data = {
    dataset,
    train: Array.from({ length: split }, (_, i) => i),
    val: Array.from({ length: dataset.count - split }, (_, i) => split + i),
  };
  // One feature store for every run: the base runs once, then every run trains the head on cached features.
  const featureCache = { store: new MemoryFeatureStore(), key: 'pause-bench' };
  const warm = train({ network, data, epochs: 1, batchSize: 16, featureCache });
  while (!(await warm.next()).done);

  const settings = [Infinity, EVENT_LOOP_TURN_MS, 0];
  const epochMs: Record<string, number[]> = {};
  const turns: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const batchSize of [1, 16]) {
      for (const interval of settings) {
        const key = `${interval}|${batchSize}`;
        const run = train({ network, data, epochs, batchSize, featureCache, eventLoopTurnMs: interval });
        let step = await run.next();
        while (!step.done) {
          if (step.value.type === 'epoch') (epochMs[key] ??= []).push(step.value.seconds * 1000);
          step = await run.next();
        }
        (turns[key] ??= []).push(step.value.eventLoopTurns / epochs);
        log({ round, batchSize, interval, epoch_ms: epochMs[key]!.slice(-epochs) });
      }
    }
  }

  const pause: Record<string, unknown> = {};
  for (const interval of settings) {
    const control = new TrainControl();
    const run = train({
      network,
      data,
      epochs: 2,
      batchSize: 1,
      featureCache,
      control,
      eventLoopTurnMs: interval,
    });
    let batches = 0;
    let queuedAt: { ms: number; batches: number } | null = null;
    let result: { ms: number; batches: number; epoch: number; batch: number } | null = null;
    let last = { epoch: 0, batch: 0 };
    let step = await run.next();
    while (!step.done) {
      const value = step.value;
      if (value.type === 'batch') {
        batches++;
        last = { epoch: value.epoch, batch: value.batch };
        if (value.epoch === 2 && value.batch === 1) {
          queuedAt = { ms: performance.now(), batches };
          setTimeout(() => control.pause(), 0);
        }
      }
      if (value.type === 'paused' && queuedAt) {
        result = { ms: performance.now() - queuedAt.ms, batches: batches - queuedAt.batches, ...last };
        control.stop();
      }
      step = await run.next();
    }
    pause[String(interval)] = result;
    log({ interval, pause: result });
  }
  disposeNetwork(network);

  const results = [1, 16].map((batchSize) => {
    const base = median(epochMs[`Infinity|${batchSize}`]!);
    return {
      batch: batchSize,
      batches_per_epoch: Math.ceil(data.train.length / batchSize),
      settings: settings.map((interval) => {
        const ms = median(epochMs[`${interval}|${batchSize}`]!);
        return {
          event_loop_turn_ms: interval === Infinity ? 'never' : interval,
          epoch_ms: ms,
          overhead_vs_never: ms / base - 1,
          turns_per_epoch: median(turns[`${interval}|${batchSize}`]!),
        };
      }),
    };
  });
  return {
    node: process.version,
    cpus: cpus().length,
    load_average: { start: loadAtStart, end: loadavg() },
    backend: 'wasm',
    model: 'mobilenet_v2_0.35 (ImageNet) at 96 px, gap-dense head on cached features',
    images: { train: data.train.length, val: data.val.length },
    epochs_per_run: epochs,
    rounds,
    default_event_loop_turn_ms: EVENT_LOOP_TURN_MS,
    results,
    pause: Object.fromEntries(Object.entries(pause).map(([k, v]) => [k === 'Infinity' ? 'never' : k, v])),
    seconds: (performance.now() - t0) / 1000,
  };
}
