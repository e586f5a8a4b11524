/**
 * The Chromium backends of `npm run -s bench -- train` (webgpu, webgl): the page tests/bench/train-harness.ts in
 * headless /usr/bin/chromium (tests/helpers/bench-page.ts) times the same phase-1 and phase-2 steps as the Node
 * backends on images the bench decoded in Node. Here both are SwiftShader (software on the CPU), so the runs use a
 * smaller batch (--browser-batch, default 4) and fewer steps than Node's 16 × 5; the entry records both.
 */
import type { BackboneId } from '../../src/lib/model/backbones/index.ts';
import type { MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import { openBenchPage } from '../helpers/bench-page.ts';
import type { BrowserTrainJob } from './train-harness.ts';

export const BROWSER_BACKENDS = ['webgpu', 'webgl'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];
/** The backbone the Chromium runs cover: the app's default. */
export const BROWSER_BACKBONE: BackboneId = 'mobilenet_v2_0.35';

export interface BrowserRunOptions {
  size: number;
  batch: number;
  /** Phase-1 steps (first included) and phase-2 steps (first included). */
  steps: number;
  fineTuneSteps: number;
  classWeights: number[];
}

const log = (message: string): void => void process.stderr.write(`[bench train] ${message}\n`);

/** Runs each backend in one page, in turn; a backend that fails is reported with its error, not thrown. */
export async function benchBrowserBackends(
  backends: BrowserBackend[],
  data: { dataset: MemoryImageDataset; train: number[]; val: number[] },
  options: BrowserRunOptions,
): Promise<Record<string, unknown>[]> {
  const train = data.train.slice(0, options.steps * options.batch);
  const val = data.val.slice(0, options.batch);
  if (train.length < options.steps * options.batch)
    throw new Error('too few decoded images for the Chromium runs');
  const indices = [...train, ...val];
  const pixels = await data.dataset.readBatch(indices);
  const { page, close } = await openBenchPage({
    html: 'tests/bench/train-harness.html',
    ready: 'benchTrain',
    include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'],
    log,
  });
  const results: Record<string, unknown>[] = [];
  try {
    for (const backend of backends) {
      const job: BrowserTrainJob = {
        backend,
        backbone: BROWSER_BACKBONE,
        size: options.size,
        batch: options.batch,
        steps: options.steps,
        fineTuneSteps: options.fineTuneSteps,
        pixels: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength).toString('base64'),
        labels: indices.map((i) => data.dataset.labels[i]!),
        train: train.length,
        val: val.length,
        classWeights: options.classWeights,
      };
      const entry: Record<string, unknown> = {
        backbone: BROWSER_BACKBONE,
        backend,
        runtime: 'headless Chromium (/usr/bin/chromium), http://localhost page, --enable-unsafe-webgpu',
        size: options.size,
        batch: options.batch,
        batch_note:
          options.batch === 16
            ? 'the Node backends’ batch'
            : `batch ${options.batch}, not 16: SwiftShader runs the GPU backends on the CPU (a batch-16 phase-2 ` +
              'step takes minutes there); --browser-batch 16 for the Node batch',
        weights: { format: 'tfjs-layers', path: `public/models/${BROWSER_BACKBONE}` },
      };
      const t0 = performance.now();
      try {
        const result = await page.evaluate(
          (j) =>
            (
              globalThis as unknown as {
                benchTrain: { run(j: BrowserTrainJob): Promise<Record<string, unknown>> };
              }
            ).benchTrain.run(j),
          job,
        );
        Object.assign(entry, result);
      } catch (error) {
        entry.error = String(error);
      }
      entry.seconds = (performance.now() - t0) / 1000;
      log(JSON.stringify(entry));
      results.push(entry);
    }
  } finally {
    await close();
  }
  return results;
}
