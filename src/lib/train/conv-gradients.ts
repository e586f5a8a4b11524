/**
 * Conv gradient kernels for fine-tuning, in plain JavaScript over flat typed arrays (NHWC), registered over tfjs's
 * (DEVELOPERS: register our own kernels rather than fork tfjs):
 *
 * - tfjs-backend-wasm 4.22 registers no Conv2DBackpropFilter/Input nor DepthwiseConv2dNativeBackpropFilter/Input,
 *   so it cannot train conv layers. Registered here for 'wasm', they let the forward pass keep XNNPACK's speed while
 *   the gradients run in JavaScript on the WASM heap. The train worker installs them, so phase 2 runs on WASM where
 *   the only GPU is a software one (before, it fell to SwiftShader's WebGL: the transfer lesson's fine-tuning run on the
 *   sample took 289 s there, 44 s on WASM with these kernels; `npm run -s bench -- sample --lessons`); the Node CLI, benchmarks and tests install them too.
 * - tfjs-backend-cpu 4.22's versions read every element through TensorBuffer.get(...) (measured: its
 *   Conv2DBackpropFilter took 13 s of a 13.6 s step fine-tuning MobileNetV2's top blocks, batch 16, 96 px); the same
 *   sums over flat arrays are 50–100× faster, so they are replaced on 'cpu'.
 *
 * The sums are the definitions (stride s, padding p, dilation d; m = depthwise channel multiplier):
 *   conv      dW[r,c,i,o] = Σ_{b,y,x} X[b, y·s+r·d−p, x·s+c·d−p, i] · dY[b,y,x,o]
 *             dX[b,u,v,i] = Σ_{y,x,r,c,o : u = y·s+r·d−p, v = x·s+c·d−p} dY[b,y,x,o] · W[r,c,i,o]
 *   depthwise dW[r,c,i,q] = Σ_{b,y,x} X[b, y·s+r·d−p, x·s+c·d−p, i] · dY[b,y,x,i·m+q]
 *             dX[b,u,v,i] = Σ_{…} Σ_q dY[b,y,x,i·m+q] · W[r,c,i,q]
 * accumulated in float64, as tfjs-backend-cpu's kernels do. Registrations are process-wide (per worker).
 */
import * as tf from '@tensorflow/tfjs';

type Shape4 = [number, number, number, number];
type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

interface ConvAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape?: Shape4;
  inputShape?: Shape4;
}

/** What a kernel needs from either backend: input values, and an output array it fills. */
interface Io {
  values(t: tf.TensorInfo): Float32Array;
  /** Allocates the output, then calls `fill` with it (WASM: a view on the heap, valid only inside `fill`). */
  output(shape: number[], fill: (out: Float32Array) => void): tf.TensorInfo;
}

function cpuIo(backend: unknown): Io {
  const b = backend as {
    data: { get(id: object): { values: Float32Array } };
    makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
  };
  return {
    values: (t) => b.data.get(t.dataId).values,
    output: (shape, fill) => {
      const out = new Float32Array(shape.reduce((a, c) => a * c, 1));
      fill(out);
      return b.makeTensorInfo(shape, 'float32', out);
    },
  };
}

function wasmIo(backend: unknown): Io {
  const b = backend as {
    makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
    typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  };
  // Views on the heap go stale when it grows: `fill` reads its inputs only after the output is allocated.
  return {
    values: (t) => b.typedArrayFromHeap(t),
    output: (shape, fill) => {
      const out = b.makeOutput(shape, 'float32');
      fill(b.typedArrayFromHeap(out));
      return out;
    },
  };
}

function info(xShape: Shape4, filterShape: Shape4, attrs: ConvAttrs, depthwise: boolean): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
    'channelsLast',
  );
}

/** Calls `each(b, y, x, r, c, xOffset, dyOffset, wOffset)` for every (output pixel, filter tap) inside the image. */
function forEachTap(
  ci: ConvInfo,
  wStride: number,
  each: (xOff: number, dyOff: number, wOff: number) => void,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = ci;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth } = ci;
  const top = ci.padInfo.top;
  const left = ci.padInfo.left;
  for (let b = 0; b < batchSize; b++) {
    for (let y = 0; y < outHeight; y++) {
      for (let x = 0; x < outWidth; x++) {
        const dyOff = ((b * outHeight + y) * outWidth + x) * outChannels;
        for (let r = 0; r < filterHeight; r++) {
          const u = y * strideHeight + r * dilationHeight - top;
          if (u < 0 || u >= inHeight) continue;
          for (let c = 0; c < filterWidth; c++) {
            const v = x * strideWidth + c * dilationWidth - left;
            if (v < 0 || v >= inWidth) continue;
            each(((b * inHeight + u) * inWidth + v) * inChannels, dyOff, (r * filterWidth + c) * wStride);
          }
        }
      }
    }
  }
}

export function conv2dFilterGrad(x: Float32Array, dy: Float32Array, ci: ConvInfo, out: Float32Array): void {
  const { inChannels, outChannels } = ci;
  const sums = new Float64Array(out.length);
  forEachTap(ci, inChannels * outChannels, (xOff, dyOff, wOff) => {
    for (let i = 0; i < inChannels; i++) {
      const xv = x[xOff + i]!;
      if (xv === 0) continue;
      const row = wOff + i * outChannels;
      for (let o = 0; o < outChannels; o++) sums[row + o]! += xv * dy[dyOff + o]!;
    }
  });
  out.set(sums);
}

export function conv2dInputGrad(dy: Float32Array, w: Float32Array, ci: ConvInfo, out: Float32Array): void {
  const { inChannels, outChannels } = ci;
  const sums = new Float64Array(out.length);
  forEachTap(ci, inChannels * outChannels, (xOff, dyOff, wOff) => {
    for (let i = 0; i < inChannels; i++) {
      const row = wOff + i * outChannels;
      let acc = 0;
      for (let o = 0; o < outChannels; o++) acc += dy[dyOff + o]! * w[row + o]!;
      sums[xOff + i]! += acc;
    }
  });
  out.set(sums);
}

export function depthwiseFilterGrad(
  x: Float32Array,
  dy: Float32Array,
  ci: ConvInfo,
  out: Float32Array,
): void {
  const { inChannels, outChannels } = ci;
  const m = outChannels / inChannels;
  const sums = new Float64Array(out.length);
  forEachTap(ci, outChannels, (xOff, dyOff, wOff) => {
    for (let i = 0; i < inChannels; i++) {
      const xv = x[xOff + i]!;
      for (let q = 0; q < m; q++) sums[wOff + i * m + q]! += xv * dy[dyOff + i * m + q]!;
    }
  });
  out.set(sums);
}

export function depthwiseInputGrad(dy: Float32Array, w: Float32Array, ci: ConvInfo, out: Float32Array): void {
  const { inChannels, outChannels } = ci;
  const m = outChannels / inChannels;
  const sums = new Float64Array(out.length);
  forEachTap(ci, outChannels, (xOff, dyOff, wOff) => {
    for (let i = 0; i < inChannels; i++) {
      let acc = 0;
      for (let q = 0; q < m; q++) acc += dy[dyOff + i * m + q]! * w[wOff + i * m + q]!;
      sums[xOff + i]! += acc;
    }
  });
  out.set(sums);
}

type Backend = 'cpu' | 'wasm';

/** A 1×1 convolution with stride 1 and no padding: per pixel, a matrix product over channels. */
function isPointwise(ci: ConvInfo): boolean {
  return (
    ci.filterHeight === 1 &&
    ci.filterWidth === 1 &&
    ci.strideHeight === 1 &&
    ci.strideWidth === 1 &&
    ci.padInfo.top === 0 &&
    ci.padInfo.left === 0 &&
    ci.outHeight === ci.inHeight &&
    ci.outWidth === ci.inWidth
  );
}

/**
 * The backend's own BatchMatMul on flat views of two tensors (same data, another shape: what a reshape is), its
 * result given `shape`. For a pointwise conv, dW = Xᵀ·dY and dX = dY·Wᵀ with pixels as rows: XNNPACK's GEMM on WASM.
 */
function matMul(
  backend: tf.KernelBackend,
  backendName: Backend,
  a: tf.TensorInfo,
  aShape: [number, number],
  b: tf.TensorInfo,
  bShape: [number, number],
  transposeA: boolean,
  transposeB: boolean,
  shape: number[],
): tf.TensorInfo {
  const kernel = tf.getKernel('BatchMatMul', backendName);
  if (!kernel) throw new Error(`the ${backendName} backend has no BatchMatMul kernel`);
  const out = kernel.kernelFunc({
    inputs: { a: { ...a, shape: aShape }, b: { ...b, shape: bShape } },
    backend,
    attrs: { transposeA, transposeB },
  }) as tf.TensorInfo;
  return { ...out, shape };
}

function kernels(backendName: Backend, ioFor: (backend: unknown) => Io): Record<string, tf.KernelFunc> {
  const filterKernel =
    (depthwise: boolean): tf.KernelFunc =>
    ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as ConvAttrs;
      const filterShape = a.filterShape!;
      const ci = info(x.shape as Shape4, filterShape, a, depthwise);
      if (!depthwise && isPointwise(ci)) {
        const pixels = ci.batchSize * ci.inHeight * ci.inWidth;
        return matMul(
          backend as tf.KernelBackend,
          backendName,
          x,
          [pixels, ci.inChannels],
          dy,
          [pixels, ci.outChannels],
          true,
          false,
          filterShape,
        );
      }
      const io = ioFor(backend);
      return io.output(filterShape, (out) =>
        (depthwise ? depthwiseFilterGrad : conv2dFilterGrad)(io.values(x), io.values(dy), ci, out),
      );
    };
  const inputKernel =
    (depthwise: boolean): tf.KernelFunc =>
    ({ inputs, backend, attrs }) => {
      const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
      const a = attrs as unknown as ConvAttrs;
      const inputShape = a.inputShape!;
      const ci = info(inputShape, filter.shape as Shape4, a, depthwise);
      if (!depthwise && isPointwise(ci)) {
        const pixels = ci.batchSize * ci.inHeight * ci.inWidth;
        return matMul(
          backend as tf.KernelBackend,
          backendName,
          dy,
          [pixels, ci.outChannels],
          filter,
          [ci.inChannels, ci.outChannels],
          false,
          true,
          inputShape,
        );
      }
      const io = ioFor(backend);
      return io.output(inputShape, (out) =>
        (depthwise ? depthwiseInputGrad : conv2dInputGrad)(io.values(dy), io.values(filter), ci, out),
      );
    };
  return {
    Conv2DBackpropFilter: filterKernel(false),
    Conv2DBackpropInput: inputKernel(false),
    DepthwiseConv2dNativeBackpropFilter: filterKernel(true),
    DepthwiseConv2dNativeBackpropInput: inputKernel(true),
  };
}

const installed = new Set<Backend>();

/**
 * Registers the four conv gradient kernels for `backend`: on 'wasm' they are missing, on 'cpu' they replace
 * tfjs's element-by-element versions. NCHW inputs are refused (the app and Keras backbones are NHWC).
 */
export function installConvGradients(backend: Backend): void {
  if (installed.has(backend)) return;
  const all = kernels(backend, backend === 'wasm' ? wasmIo : cpuIo);
  for (const name of Object.keys(all)) {
    const kernelFunc = all[name]!;
    const guarded: tf.KernelFunc = (args) => {
      if ((args.attrs as unknown as ConvAttrs).dataFormat === 'NCHW') {
        throw new Error(`${name} (${backend}, JavaScript gradients): NCHW is not supported`);
      }
      return kernelFunc(args);
    };
    if (tf.getKernel(name, backend)) tf.unregisterKernel(name, backend);
    tf.registerKernel({ kernelName: name, backendName: backend, kernelFunc: guarded });
  }
  installed.add(backend);
}
