/**
 * The page side of `npm run -s bench -- kernels` in Chromium (tests/bench/kernels.bench.ts): the measurement of
 * tests/bench/kernels-measure.ts on this page's WebGPU adapter, with the served ImageNet weights.
 */
import '@tensorflow/tfjs-backend-webgpu';
import { loadTfjsLayersWeights } from '../../src/lib/model/weights/tfjsLayers.ts';
import { measureKernels, type KernelsOptions } from './kernels-measure.ts';

async function run(options: KernelsOptions) {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter)
    throw new Error('this browser offers no WebGPU adapter (start Chromium with --enable-unsafe-webgpu)');
  return measureKernels(adapter, options, (base, backbone) =>
    loadTfjsLayersWeights(base, new URL(`/models/${backbone}/model.json`, location.href).href),
  );
}

(globalThis as { benchKernels?: unknown }).benchKernels = { ready: true, run };
