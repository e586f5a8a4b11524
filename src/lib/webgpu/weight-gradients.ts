/**
 * Our WebGPU weight-gradient kernels (Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter), registered over
 * tfjs-backend-webgpu's for the 'webgpu' backend, with a switch back to the stock ones (the same pattern as
 * src/lib/train/conv-gradients.ts for WASM and CPU: register our own kernels rather than fork tfjs). The programs
 * and why they are faster: ./weight-gradient-programs.ts.
 *
 * Registrations are process-wide (per worker or page) and take effect at the next kernel call: a model need not be
 * rebuilt. NCHW inputs go to the stock kernels (the app and the Keras backbones are NHWC).
 */
import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { WebGPUWeightGradients } from './weight-gradient-choice.ts';
import {
  ConvFilterGradProgram,
  DEFAULT_SPLIT_POLICY,
  DepthwiseFilterGradProgram,
  SplitSumProgram,
  type ConvInfo,
  type SplitPolicy,
} from './weight-gradient-programs.ts';

export const WEIGHT_GRADIENT_KERNELS = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
] as const;
export type WeightGradientKernel = (typeof WEIGHT_GRADIENT_KERNELS)[number];

export type { WebGPUWeightGradients } from './weight-gradient-choice.ts';

type Shape4 = [number, number, number, number];

interface FilterGradAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: Shape4;
}

/** tfjs's own kernels, kept when ours are registered so that `useWebGPUWeightGradients('stock')` restores them. */
const stock = new Map<WeightGradientKernel, tf.KernelConfig>();

function runFilterGrad(
  backend: WebGPUBackend,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  program: ConvFilterGradProgram | DepthwiseFilterGradProgram,
  filterShape: Shape4,
): tf.TensorInfo {
  const out = backend.runWebGPUProgram(program, [x, dy], 'float32');
  if (program.splits === 1) return out;
  const summed = backend.runWebGPUProgram(new SplitSumProgram(program.splits, filterShape), [out], 'float32');
  backend.disposeData(out.dataId);
  return summed;
}

/** The conv info tfjs computes for these attributes (NHWC), with the filter shape the gradient must have. */
function convInfo(x: tf.TensorInfo, attrs: FilterGradAttrs, depthwise: boolean): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    x.shape as Shape4,
    attrs.filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
    'channelsLast',
  );
}

let policy: SplitPolicy = { ...DEFAULT_SPLIT_POLICY };

/** For tests and benchmarks: how the reduction is split (e.g. `targetThreads: 1` forces single-pass kernels). */
export function setSplitPolicy(next: Partial<SplitPolicy> | null): void {
  policy = { ...DEFAULT_SPLIT_POLICY, ...next };
}

function kernelFunc(name: WeightGradientKernel): tf.KernelFunc {
  const depthwise = name === 'DepthwiseConv2dNativeBackpropFilter';
  return (args) => {
    const attrs = args.attrs as unknown as FilterGradAttrs;
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') {
      const fallback = stock.get(name);
      if (!fallback) throw new Error(`${name} (webgpu): tfjs's kernel is not registered`);
      return fallback.kernelFunc(args);
    }
    const ci = convInfo(x, attrs, depthwise);
    const program = depthwise
      ? new DepthwiseFilterGradProgram(ci, policy)
      : new ConvFilterGradProgram(ci, policy);
    return runFilterGrad(args.backend as WebGPUBackend, x, dy, program, attrs.filterShape);
  };
}

/** Which kernels the 'webgpu' backend runs for the weight gradients now. */
export function webGPUWeightGradients(): WebGPUWeightGradients {
  return stock.size > 0 ? 'tiled' : 'stock';
}

/**
 * Registers our weight-gradient kernels for 'webgpu' ('tiled'), or puts tfjs-backend-webgpu's back ('stock').
 * Import '@tensorflow/tfjs-backend-webgpu' first: its kernels are what 'stock' restores.
 */
export function useWebGPUWeightGradients(which: WebGPUWeightGradients): void {
  if (which === webGPUWeightGradients()) return;
  for (const name of WEIGHT_GRADIENT_KERNELS) {
    if (which === 'tiled') {
      const theirs = tf.getKernel(name, 'webgpu');
      if (!theirs) {
        throw new Error(`${name} has no 'webgpu' kernel: import '@tensorflow/tfjs-backend-webgpu' first`);
      }
      stock.set(name, theirs);
      tf.unregisterKernel(name, 'webgpu');
      tf.registerKernel({ kernelName: name, backendName: 'webgpu', kernelFunc: kernelFunc(name) });
    } else {
      const theirs = stock.get(name)!;
      tf.unregisterKernel(name, 'webgpu');
      tf.registerKernel(theirs);
    }
  }
  if (which === 'stock') stock.clear();
}
