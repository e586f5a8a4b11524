/**
 * Our WebGPU weight-gradient kernels (src/lib/webgpu/weight-gradients.ts) against the CPU backend, on every
 * distinct conv configuration of MobileNetV2 (α 0.35 and 1.0), VGG16 and ResNet50V2: kernel size, strides,
 * padding, input and output channels (depth multiplier for depthwise convs), read from the backbone definitions in
 * src/lib/model/backbones. Headless Chromium's WebGPU is SwiftShader (software), so each configuration runs at a
 * reduced spatial size (about 8×8, keeping the parity of the real input so 'same' padding splits the same way) and a
 * batch of 2; channels and everything else are the real ones. Each runs twice: one pass per thread block (no
 * split), and the reduction split over every output row with the second summing pass.
 *
 * Reference: the 'cpu' backend's kernels with the app's conv gradients installed (src/lib/train/conv-gradients.ts,
 * float64 sums; tfjs-backend-cpu's own take minutes on VGG16's 512-channel filters). Error: max |ours − cpu| /
 * max |cpu| over the filter, ≤ 1e-4.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBackbone } from '../../src/lib/model/backbones/index.ts';
import { registerWebGPU } from '../../src/lib/train/backend.ts';
import { installConvGradients } from '../../src/lib/train/conv-gradients.ts';
import {
  setSplitPolicy,
  useWebGPUWeightGradients,
  webGPUWeightGradients,
} from '../../src/lib/webgpu/weight-gradients.ts';

interface ConvCase {
  kind: 'conv' | 'depthwise';
  kernel: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
  inC: number;
  /** Filters, or the depth multiplier for a depthwise conv. */
  out: number;
  /** Parity of the real input's height/width (0 even, 1 odd). */
  parity: [number, number];
  /** Where it comes from, for the report (first layer found). */
  from: string;
}

const BACKBONES = ['mobilenet_v2_0.35', 'mobilenet_v2_1.0', 'vgg16', 'resnet50v2'];

type LayerConfig = {
  kernelSize: number[];
  strides: number[];
  padding: 'same' | 'valid';
  filters?: number;
  depthMultiplier?: number;
  dilationRate?: number[] | number;
};

function pair(v: number | number[]): [number, number] {
  return Array.isArray(v) ? [v[0]!, v[1] ?? v[0]!] : [v, v];
}

/**
 * Every distinct conv configuration of the backbones, from the layers of models built at 96 px, each under the
 * first backbone that has it.
 */
function convCases(): Map<string, ConvCase[]> {
  const cases = new Map<string, ConvCase>();
  for (const id of BACKBONES) {
    const model = buildBackbone(id, 96);
    for (const layer of model.layers) {
      const className = layer.getClassName();
      if (className !== 'Conv2D' && className !== 'DepthwiseConv2D') continue;
      const config = layer.getConfig() as unknown as LayerConfig;
      const inShape = (layer.input as tf.SymbolicTensor).shape;
      const dilation = pair(config.dilationRate ?? 1);
      expect(dilation, `${id}/${layer.name} dilation`).toEqual([1, 1]);
      const c: ConvCase = {
        kind: className === 'Conv2D' ? 'conv' : 'depthwise',
        kernel: pair(config.kernelSize),
        strides: pair(config.strides),
        padding: config.padding,
        inC: inShape[3] as number,
        out: className === 'Conv2D' ? config.filters! : (config.depthMultiplier ?? 1),
        parity: [(inShape[1] as number) % 2, (inShape[2] as number) % 2],
        from: `${id}/${layer.name}`,
      };
      const key = JSON.stringify([c.kind, c.kernel, c.strides, c.padding, c.inC, c.out, c.parity]);
      if (!cases.has(key)) cases.set(key, c);
    }
    model.dispose();
  }
  const byBackbone = new Map<string, ConvCase[]>(BACKBONES.map((id) => [id, []]));
  for (const c of cases.values()) byBackbone.get(c.from.split('/')[0]!)!.push(c);
  return byBackbone;
}

const BATCH = 1;

/** A reduced input side: about 6, with the real parity; big enough for a 'valid' kernel to give 2+ outputs. */
function side(kernel: number, parity: number): number {
  const base = Math.max(6, kernel + 3);
  return base % 2 === parity ? base : base + 1;
}

async function filterGrad(
  c: ConvCase,
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  backend: string,
): Promise<Float32Array> {
  await tf.setBackend(backend);
  const xs = tf.tensor4d(await x.data(), x.shape);
  const dys = tf.tensor4d(await dy.data(), dy.shape);
  const filterShape: [number, number, number, number] = [c.kernel[0], c.kernel[1], c.inC, c.out];
  const attrs =
    c.kind === 'conv'
      ? { strides: c.strides, pad: c.padding, dataFormat: 'NHWC', filterShape }
      : { strides: c.strides, pad: c.padding, dilations: [1, 1], filterShape };
  const name = c.kind === 'conv' ? 'Conv2DBackpropFilter' : 'DepthwiseConv2dNativeBackpropFilter';
  const dw = tf.engine().runKernel(name, { x: xs, dy: dys }, attrs as never) as tf.Tensor;
  expect(dw.shape).toEqual(filterShape);
  const values = (await dw.data()) as Float32Array;
  tf.dispose([xs, dys, dw]);
  return values;
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

let cases = new Map<string, ConvCase[]>();

beforeAll(async () => {
  await tf.setBackend('cpu');
  installConvGradients('cpu');
  cases = convCases();
  const adapter = await navigator.gpu.requestAdapter();
  expect(adapter).not.toBeNull();
  await registerWebGPU(adapter!);
  expect(await tf.setBackend('webgpu')).toBe(true);
  useWebGPUWeightGradients('tiled');
});

afterAll(async () => {
  setSplitPolicy(null);
  useWebGPUWeightGradients('stock');
  await tf.setBackend('cpu');
});

describe('WebGPU weight gradients (ours) equal the CPU backend’s', () => {
  it('cover 1×1, 3×3 and 7×7 kernels, strides 1 and 2, both paddings, depthwise multiplier 1', () => {
    const all = [...cases.values()].flat();
    expect(new Set(all.map((c) => c.kernel[0]))).toEqual(new Set([1, 3, 7]));
    expect(new Set(all.map((c) => c.strides[0]))).toEqual(new Set([1, 2]));
    expect(new Set(all.map((c) => c.padding))).toEqual(new Set(['same', 'valid']));
    expect(new Set(all.filter((c) => c.kind === 'depthwise').map((c) => c.out))).toEqual(new Set([1]));
    expect(webGPUWeightGradients()).toBe('tiled');
  });

  it.each(BACKBONES)(
    'on every conv configuration of %s (not already in a backbone above), unsplit and split (≤ 1e-4 relative)',
    async (id) => {
      const rows: Array<Record<string, unknown>> = [];
      let worst = 0;
      for (const [n, c] of (cases.get(id) ?? []).entries()) {
        const started = performance.now();
        await tf.setBackend('cpu');
        const h = side(c.kernel[0], c.parity[0]);
        const w = side(c.kernel[1], c.parity[1]);
        const outC = c.kind === 'conv' ? c.out : c.inC * c.out;
        const x = tf.randomUniform([BATCH, h, w, c.inC], -1, 1, 'float32', 1000 + n) as tf.Tensor4D;
        const probe =
          c.kind === 'conv'
            ? tf.conv2d(x, tf.zeros([c.kernel[0], c.kernel[1], c.inC, outC]), c.strides, c.padding)
            : tf.depthwiseConv2d(x, tf.zeros([c.kernel[0], c.kernel[1], c.inC, c.out]), c.strides, c.padding);
        const dy = tf.randomUniform(probe.shape, -1, 1, 'float32', 2000 + n) as tf.Tensor4D;
        probe.dispose();
        const reference = await filterGrad(c, x, dy, 'cpu');
        setSplitPolicy({ targetThreads: 1 });
        const unsplit = relativeError(await filterGrad(c, x, dy, 'webgpu'), reference);
        setSplitPolicy({ targetThreads: 1e9, minPixelsPerSplit: 1 });
        const split = relativeError(await filterGrad(c, x, dy, 'webgpu'), reference);
        setSplitPolicy(null);
        await tf.setBackend('cpu');
        tf.dispose([x, dy]);
        worst = Math.max(worst, unsplit, split);
        rows.push({ ...c, input: [BATCH, h, w, c.inC], unsplit, split, ms: performance.now() - started });
        expect(unsplit, `${c.from} ${JSON.stringify(c)} unsplit`).toBeLessThanOrEqual(1e-4);
        expect(split, `${c.from} ${JSON.stringify(c)} split`).toBeLessThanOrEqual(1e-4);
      }
      console.info(
        `[webgpu-weight-gradients] ${id}`,
        JSON.stringify({ configurations: rows.length, worst, rows }),
      );
    },
  );

  it('switches back to tfjs’s kernels and again to ours', () => {
    const ours = tf.getKernel('Conv2DBackpropFilter', 'webgpu');
    useWebGPUWeightGradients('stock');
    expect(webGPUWeightGradients()).toBe('stock');
    const theirs = tf.getKernel('Conv2DBackpropFilter', 'webgpu');
    expect(theirs?.kernelFunc).not.toBe(ours?.kernelFunc);
    useWebGPUWeightGradients('tiled');
    expect(webGPUWeightGradients()).toBe('tiled');
    expect(tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'webgpu')?.kernelFunc).not.toBe(
      theirs?.kernelFunc,
    );
  });
});
