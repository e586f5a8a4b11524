/**
 * The measurement of `npm run -s bench -- kernels` (tests/bench/kernels.bench.ts), shared by its two runtimes (the
 * Chromium page tests/bench/kernels-harness.ts, Dawn in Node tests/bench/kernels-dawn.ts): tfjs-backend-webgpu's
 * weight gradient kernels ('stock') against ours (src/lib/webgpu/weight-gradients.ts, 'tiled') on one WebGPU
 * adapter, in the same run, interleaved (stock, ours, stock, ours…) so that load from other processes falls on both:
 *
 * - each weight-gradient call a phase-2 step makes (the trainable convs of the unfrozen blocks, at their real shapes
 *   for the batch and input size): median ms from the call to the result read back, and the error of ours against
 *   the CPU backend's (the app's float64 JavaScript kernels, src/lib/train/conv-gradients.ts), max |Δ| / max |cpu|;
 * - the phase-2 step itself: MobileNetV2 α 0.35 with the served ImageNet weights (public/models), the top blocks
 *   unfrozen (BatchNormalization frozen), GAP → Dense(7) head, Adam, as the training loop runs it (trainStep):
 *   median ms of a step, read back.
 */
import * as tf from '@tensorflow/tfjs';
import { getBackbone } from '../../src/lib/model/backbones/index.ts';
import { headConfig } from '../../src/lib/model/head-config.ts';
import { buildHead, unfreezeTopBlocks } from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { describeAdapter, registerWebGPU } from '../../src/lib/train/backend.ts';
import { installConvGradients } from '../../src/lib/train/conv-gradients.ts';
import { syntheticBatch } from '../../src/cli/step-timing.ts';
import { extractFeatureBatches } from '../../src/lib/train/featureCache.ts';
import { trainStep } from '../../src/lib/train/loop.ts';
import { Adam } from '../../src/lib/train/optimizer.ts';
import {
  useWebGPUWeightGradients,
  type WebGPUWeightGradients,
} from '../../src/lib/webgpu/weight-gradients.ts';
import type { KernelsOptions } from './kernels-options.ts';

export type { KernelsOptions };

const BACKBONE = 'mobilenet_v2_0.35';
const MODES: WebGPUWeightGradients[] = ['stock', 'tiled'];
/** Round i's order: stock first on even rounds, ours first on odd ones (ABBA), so neither always runs second. */
const order = (i: number): WebGPUWeightGradients[] => (i % 2 === 0 ? MODES : [...MODES].reverse());
const log = (message: string): void => console.info(`[bench kernels] ${message}`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface WeightGradCall {
  name: string;
  kernel: 'Conv2DBackpropFilter' | 'DepthwiseConv2dNativeBackpropFilter';
  xShape: [number, number, number, number];
  dyShape: number[];
  attrs: Record<string, unknown>;
}

type LayerConfig = {
  kernelSize: number[];
  strides: number[];
  padding: 'same' | 'valid';
  filters?: number;
  depthMultiplier?: number;
};

/** The weight-gradient calls of a step: one per trainable conv layer, at its input shape for `batch`. */
function weightGradCalls(base: tf.LayersModel, batch: number): WeightGradCall[] {
  const calls: WeightGradCall[] = [];
  for (const layer of base.layers) {
    const cls = layer.getClassName();
    if (!layer.trainable || (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D')) continue;
    const c = layer.getConfig() as unknown as LayerConfig;
    const [, h, w, inC] = (layer.input as tf.SymbolicTensor).shape as number[];
    const [, oh, ow, outC] = (layer.output as tf.SymbolicTensor).shape as number[];
    const [kh, kw] = c.kernelSize as [number, number];
    const depthwise = cls === 'DepthwiseConv2D';
    const filterShape = [kh, kw, inC!, depthwise ? (c.depthMultiplier ?? 1) : c.filters!];
    calls.push({
      name: `${layer.name} ${kh}x${kw}/${c.strides[0]} ${c.padding} ${inC}→${outC} at ${h}x${w}`,
      kernel: depthwise ? 'DepthwiseConv2dNativeBackpropFilter' : 'Conv2DBackpropFilter',
      xShape: [batch, h!, w!, inC!],
      dyShape: [batch, oh!, ow!, outC!],
      attrs: depthwise
        ? { strides: c.strides, pad: c.padding, dilations: [1, 1], filterShape }
        : { strides: c.strides, pad: c.padding, dataFormat: 'NHWC', filterShape },
    });
  }
  return calls;
}

async function timeCall(call: WeightGradCall, x: tf.Tensor, dy: tf.Tensor): Promise<[number, Float32Array]> {
  const t0 = performance.now();
  const out = tf.engine().runKernel(call.kernel, { x, dy }, call.attrs as never) as tf.Tensor;
  const values = (await out.data()) as Float32Array;
  const ms = performance.now() - t0;
  out.dispose();
  return [ms, values];
}

function relativeError(ours: Float32Array, reference: Float32Array): number {
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < reference.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(reference[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - reference[i]!));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

async function benchKernel(call: WeightGradCall, reps: number, seed: number) {
  await tf.setBackend('cpu');
  const xv = tf.randomUniform(call.xShape, -1, 1, 'float32', seed);
  const dyv = tf.randomUniform(call.dyShape, -1, 1, 'float32', seed + 1);
  const [xData, dyData] = [await xv.data(), await dyv.data()];
  const [, reference] = await timeCall(call, xv, dyv);
  tf.dispose([xv, dyv]);
  await tf.setBackend('webgpu');
  const x = tf.tensor(xData, call.xShape);
  const dy = tf.tensor(dyData, call.dyShape);
  const times: Record<WebGPUWeightGradients, number[]> = { stock: [], tiled: [] };
  const errors: Record<WebGPUWeightGradients, number> = { stock: 0, tiled: 0 };
  for (let i = 0; i <= reps; i++) {
    for (const mode of order(i)) {
      useWebGPUWeightGradients(mode);
      const [ms, values] = await timeCall(call, x, dy);
      if (i === 0) errors[mode] = relativeError(values, reference);
      else times[mode].push(ms);
    }
  }
  tf.dispose([x, dy]);
  return {
    stock_ms: median(times.stock),
    ours_ms: median(times.tiled),
    max_relative_error: errors.tiled,
    stock_max_relative_error: errors.stock,
  };
}

/** Where the runtime takes the ImageNet weights of BACKBONE from (the page fetches them, Node reads the files). */
/**
 * The Train page's frozen-base pass (extractFeatureBatches: batches of 32, preprocess, base in inference mode,
 * pooled, read back) over `options.features` images of fixed pseudo-random pixels at the input size, after one
 * untimed batch (pipeline compilation). Speed does not depend on the pixels.
 */
async function timeFeatures(base: tf.LayersModel, options: KernelsOptions) {
  const spec = getBackbone(BACKBONE);
  const imageBytes = options.size * options.size * 3;
  let state = 12345;
  const pixels = new Uint8Array(32 * imageBytes).map(
    () => (state = (state * 1103515245 + 12345) >>> 0) >>> 24,
  );
  const read = (positions: readonly number[]) =>
    Promise.resolve(pixels.subarray(0, positions.length * imageBytes));
  const run = async (count: number) => {
    const batches = extractFeatureBatches(base, read, count, {
      preprocess: (images) => preprocessInput(images, spec.preprocessing),
      inputSize: options.size,
      imageSize: options.size,
      pool: true,
    });
    for (let step = await batches.next(); !step.done; step = await batches.next());
  };
  await run(32);
  const t0 = performance.now();
  await run(options.features);
  const seconds = (performance.now() - t0) / 1000;
  log(`feature extraction: ${(options.features / seconds).toFixed(1)} images/s`);
  return { images: options.features, batch: 32, seconds, images_per_second: options.features / seconds };
}

export type LoadWeights = (base: tf.LayersModel, backbone: string) => Promise<unknown>;

export async function measureKernels(adapter: GPUAdapter, options: KernelsOptions, loadWeights: LoadWeights) {
  await registerWebGPU(adapter);
  installConvGradients('cpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not start');

  const spec = getBackbone(BACKBONE);
  const base = spec.build(options.size);
  await loadWeights(base, BACKBONE);
  const head = buildHead(base.outputs[0]!.shape.slice(1) as number[], headConfig({ kind: 'gap-dense' }));
  const trainable = unfreezeTopBlocks(base, spec, options.blocks);
  log(`unfrozen ${trainable.blocks.join(', ')}: ${trainable.layers.length} layers`);

  const calls = weightGradCalls(base, options.batch);
  const kernels: Record<string, ReturnType<typeof benchKernel> extends Promise<infer T> ? T : never> = {};
  for (const [i, call] of calls.entries()) {
    kernels[call.name] = await benchKernel(call, options.reps, 10 + 2 * i);
    log(`${call.name}: ${JSON.stringify(kernels[call.name])}`);
  }
  await tf.setBackend('webgpu');

  const { x, y } = syntheticBatch(options.batch, options.size, 7, 1);
  const variables = [...base.trainableWeights, ...head.trainableWeights].map((w) => w.read() as tf.Variable);
  const optimizer = new Adam({ learningRate: 1e-5 });
  optimizer.init(variables);
  const forward = (input: tf.Tensor) =>
    head.apply(base.apply(input, { training: false }), { training: true }) as tf.Tensor;
  /** One phase-2 step on the fixed batch; resolves to the loss tensor (the caller reads and disposes it). */
  const step = () =>
    tf.tidy(() => trainStep(forward, preprocessInput(x, spec.preprocessing), y, null, variables, optimizer));
  const steps: Record<WebGPUWeightGradients, number[]> = { stock: [], tiled: [] };
  const losses: Record<WebGPUWeightGradients, number[]> = { stock: [], tiled: [] };
  for (let i = 0; i <= options.steps; i++) {
    for (const mode of order(i)) {
      useWebGPUWeightGradients(mode);
      const t0 = performance.now();
      const out = step();
      const [loss] = await out.data();
      const ms = performance.now() - t0;
      out.dispose();
      losses[mode].push(loss!);
      if (i > 0) steps[mode].push(ms);
      log(`step ${i} ${mode}: ${ms.toFixed(0)} ms, loss ${loss}`);
    }
  }
  const profile: Record<string, Array<{ kernel: string; ms: number; calls: number }>> = {};
  if (options.profile) {
    for (const mode of MODES) {
      useWebGPUWeightGradients(mode);
      const info = await tf.profile(async () => {
        const out = step();
        await out.data();
        out.dispose();
      });
      const byKernel = new Map<string, { ms: number; calls: number }>();
      for (const k of info.kernels) {
        const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
        entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        entry.calls += 1;
        byKernel.set(k.name, entry);
      }
      profile[mode] = [...byKernel]
        .map(([kernel, e]) => ({ kernel, ...e }))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 15);
      log(`profile ${mode}: ${JSON.stringify(profile[mode])}`);
    }
  }
  const featureExtraction = options.features > 0 ? await timeFeatures(base, options) : null;
  optimizer.dispose();
  tf.dispose([x, y]);
  base.dispose();
  head.dispose();
  useWebGPUWeightGradients('tiled');

  const errors = Object.values(kernels).map((k) => k.max_relative_error);
  const stock = median(steps.stock);
  const ours = median(steps.tiled);
  return {
    adapter: describeAdapter(adapter),
    kernels,
    max_relative_error: Math.max(...errors),
    step: {
      stock_ms: stock,
      ours_ms: ours,
      ratio: ours / stock,
      stock_all_ms: steps.stock,
      ours_all_ms: steps.tiled,
    },
    ...(options.profile ? { profile } : {}),
    ...(featureExtraction ? { feature_extraction: featureExtraction } : {}),
    setup: {
      backbone: BACKBONE,
      weights: `public/models/${BACKBONE}`,
      unfrozen_blocks: trainable.blocks,
      trainable_params: trainable.trainableParams,
      input_size: options.size,
      batch: options.batch,
      timed_steps_per_mode: options.steps,
      timed_calls_per_kernel: options.reps,
      order:
        'interleaved, stock first on even rounds and ours first on odd ones; round 0 discarded (pipeline compilation)',
    },
  };
}
