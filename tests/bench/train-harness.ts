/**
 * The page side of `npm run -s bench -- train` for the backends only Chromium has (webgpu, webgl): the same two
 * step timings as the Node backends (tests/bench/train.bench.ts), on the images the bench decoded in Node:
 *
 * - phase1_step: the real loop (loopPhaseOneSteps, tests/bench/loop-timing.ts), one phase-1 epoch with
 *   augmentation and class weights, a step being the wall time between two batch logs;
 * - fine_tune_step: a phase-2 step with the top block unfrozen (timeFineTuneSteps, src/cli/step-timing.ts).
 *
 * WebGPU runs with the app's weight-gradient kernels ('tiled', src/lib/webgpu/), as the train worker does.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { timeFineTuneSteps, type StepModel } from '../../src/cli/step-timing.ts';
import { augmentOptions } from '../../src/lib/model/augment-options.ts';
import { getBackbone } from '../../src/lib/model/backbones/index.ts';
import { defaultHeadFor } from '../../src/lib/model/head-config.ts';
import { buildHead, freezeBase } from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { loadTfjsLayersWeights } from '../../src/lib/model/weights/tfjsLayers.ts';
import { describeAdapter, registerWebGPU } from '../../src/lib/train/backend.ts';
import { MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import type { Network } from '../../src/lib/train/loop.ts';
import { useWebGPUWeightGradients, webGPUWeightGradients } from '../../src/lib/webgpu/weight-gradients.ts';
import { loopPhaseOneSteps } from './loop-timing.ts';

export interface BrowserTrainJob {
  backend: 'webgpu' | 'webgl';
  backbone: string;
  size: number;
  batch: number;
  /** Phase-1 steps (the loop's epoch over steps × batch train images) and phase-2 steps, first included. */
  steps: number;
  fineTuneSteps: number;
  /** RGB uint8 pixels of the train images then the val images, base64. */
  pixels: string;
  labels: number[];
  train: number;
  val: number;
  classWeights: number[];
}

async function useBackend(backend: BrowserTrainJob['backend']): Promise<Record<string, unknown>> {
  if (backend === 'webgpu') {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter)
      throw new Error('this Chromium offers no WebGPU adapter (start it with --enable-unsafe-webgpu)');
    await registerWebGPU(adapter);
    useWebGPUWeightGradients('tiled');
    if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not start');
    return { adapter: describeAdapter(adapter), weight_gradients: webGPUWeightGradients() };
  }
  if (!(await tf.setBackend('webgl'))) throw new Error('the webgl backend did not start');
  const gl = document.createElement('canvas').getContext('webgl2');
  const info = gl?.getExtension('WEBGL_debug_renderer_info');
  return { renderer: gl ? String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER)) : null };
}

async function run(job: BrowserTrainJob): Promise<Record<string, unknown>> {
  const device = await useBackend(job.backend);
  const pixels = Uint8Array.from(atob(job.pixels), (c) => c.charCodeAt(0));
  const dataset = new MemoryImageDataset(job.size, pixels, job.labels);
  const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  const spec = getBackbone(job.backbone);
  const base = spec.build(job.size);
  await loadTfjsLayersWeights(base, new URL(`/models/${spec.id}/model.json`, location.href).href);
  const head = buildHead((base.outputs[0]!.shape as number[]).slice(1), defaultHeadFor(spec.id));
  const model: StepModel = { base, head, preprocess: (x) => preprocessInput(x, spec.preprocessing) };
  const network: Network = { base, head, preprocess: model.preprocess, inputSize: job.size, blocks: spec };
  freezeBase(base);
  try {
    const phase1 = await loopPhaseOneSteps(
      network,
      { dataset, train: range(0, job.train), val: range(job.train, job.val) },
      { batchSize: job.batch, augment: augmentOptions(), classWeights: job.classWeights },
    );
    console.info(`[bench train] ${job.backend} phase1_step ${JSON.stringify(phase1)}`);
    freezeBase(base);
    const indices = range(0, job.batch).map((i) => i % job.train);
    const { x, y } = tf.tidy(() => ({
      x: tf.tensor4d(Float32Array.from(pixels.subarray(0, job.batch * job.size * job.size * 3)), [
        job.batch,
        job.size,
        job.size,
        3,
      ]),
      y: tf
        .oneHot(
          tf.tensor1d(
            indices.map((i) => job.labels[i]!),
            'int32',
          ),
          7,
        )
        .toFloat() as tf.Tensor2D,
    }));
    try {
      const fineTune = await timeFineTuneSteps(model, spec, 1, x, y, job.fineTuneSteps);
      return { device, phase1_step: phase1, fine_tune_step: fineTune };
    } finally {
      tf.dispose([x, y]);
    }
  } finally {
    head.dispose();
    base.dispose();
  }
}

(globalThis as { benchTrain?: unknown }).benchTrain = { ready: true, run };
