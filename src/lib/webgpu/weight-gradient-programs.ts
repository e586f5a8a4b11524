/**
 * WGSL programs for the two weight gradients of fine-tuning on WebGPU, run through tfjs-backend-webgpu's program
 * API (`backend.runWebGPUProgram`). Why: tfjs 4.22's Conv2DDerFilterProgram and DepthwiseConv2DDerFilterProgram
 * give one thread per filter weight, and that thread walks the whole batch × height × width with an index
 * computation, two scalar loads and two bounds checks per multiply-add. A depthwise 3×3 filter of 96 channels is
 * then 864 threads each summing 16·112·112 products; a GPU cannot fill itself with that, and a software adapter
 * pays the addressing work on every product.
 *
 * Here the reduction is split instead (split-K), and the products are blocked in registers:
 *
 * - Conv2D: for one filter tap (r, c), dW[r,c,:,:] = Σ_pixels X_shifted(pixel)ᵀ · dY(pixel): a matrix product with
 *   the pixels as the inner dimension, read straight from X and dY (no im2col copy). A thread owns a block of
 *   4 input × 4·`oVec4s` output channels of one tap and one range of output rows: per pixel, one vec4 of X and
 *   `oVec4s` vec4 of dY give 16·`oVec4s` products, with no bounds check inside a row (the valid columns of a tap are
 *   computed once per row).
 * - Depthwise: a thread owns 4 channels, one filter row (all its taps in registers) and one range of output rows.
 * - When the filter alone gives too few threads, the output rows are split into `splits` ranges written to a
 *   [splits, filter] buffer, summed by a second pass (`SplitSumProgram`).
 *
 * Shapes are compiled in as constants (one pipeline per conv shape, cached by the backend), so every loop bound and
 * stride is known to the shader compiler. Sums are in float32, as tfjs's own kernels do, but over shorter runs.
 */
import type * as tf from '@tensorflow/tfjs';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

export type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

/** Invocations per workgroup for every program here (WebGPU's guaranteed minimum is 256). */
const WORKGROUP = 64;
/** tfjs reshapes a dispatch above this; ours index workgroups themselves, so they stay below it. */
const MAX_WORKGROUPS = 65535;

/** The geometry every program here needs, from tfjs's own conv info (NHWC). */
interface Geometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  fH: number;
  fW: number;
  sH: number;
  sW: number;
  dH: number;
  dW: number;
  padTop: number;
  padLeft: number;
}

function geometry(ci: ConvInfo): Geometry {
  return {
    batch: ci.batchSize,
    inH: ci.inHeight,
    inW: ci.inWidth,
    inC: ci.inChannels,
    outH: ci.outHeight,
    outW: ci.outWidth,
    outC: ci.outChannels,
    fH: ci.filterHeight,
    fW: ci.filterWidth,
    sH: ci.strideHeight,
    sW: ci.strideWidth,
    dH: ci.dilationHeight,
    dW: ci.dilationWidth,
    padTop: ci.padInfo.top,
    padLeft: ci.padInfo.left,
  };
}

const key = (g: Geometry): string =>
  [
    g.batch,
    g.inH,
    g.inW,
    g.inC,
    g.outH,
    g.outW,
    g.outC,
    g.fH,
    g.fW,
    g.sH,
    g.sW,
    g.dH,
    g.dW,
    g.padTop,
    g.padLeft,
  ].join('_');

/** How many row ranges to split the reduction into. */
export interface SplitPolicy {
  /** Aim for about this many threads in all (filter blocks × splits). */
  targetThreads: number;
  /** Never fewer output pixels than this per split (the second pass and the partial buffer cost something). */
  minPixelsPerSplit: number;
  /** Cap on the partial-sums buffer, in float32 elements. */
  maxPartialElements: number;
}

export const DEFAULT_SPLIT_POLICY: Readonly<SplitPolicy> = {
  targetThreads: 16384,
  minPixelsPerSplit: 256,
  maxPartialElements: 16 * 1024 * 1024,
};

function chooseSplits(
  threadsPerSplit: number,
  rows: number,
  outW: number,
  filterElements: number,
  policy: SplitPolicy,
): number {
  let splits = Math.ceil(policy.targetThreads / threadsPerSplit);
  splits = Math.min(splits, Math.floor((rows * outW) / policy.minPixelsPerSplit), rows);
  splits = Math.min(splits, Math.floor(policy.maxPartialElements / filterElements));
  splits = Math.min(splits, Math.floor((MAX_WORKGROUPS * WORKGROUP) / threadsPerSplit));
  return Math.max(1, splits);
}

/** WGSL: the first and one-past-last output column whose input column x·s + c·d − pad lies in [0, inW). */
function columnRange(g: Geometry, tapColumn: string): string {
  return `
    let colOffset = ${tapColumn} * ${g.dW} - ${g.padLeft};
    let xoStart = max(0, (${g.sW - 1} - colOffset) / ${g.sW});
    let lastNum = ${g.inW - 1} - colOffset;
    var xoEnd = 0;
    if (lastNum >= 0) { xoEnd = min(${g.outW}, lastNum / ${g.sW} + 1); }`;
}

/** WGSL: a vec4 of `count` channels from `buffer` at element `at` (vec4 loads when the layout allows). */
function load4(buffer: string, vec4s: boolean, at: string, channel: string, channels: number): string {
  if (vec4s) return `${buffer}[(${at}) / 4]`;
  const parts = [0, 1, 2, 3].map(
    (k) => `select(0.0, ${buffer}[min((${at}) + ${k}, ${buffer}Last)], ${channel} + ${k} < ${channels})`,
  );
  return `vec4<f32>(${parts.join(', ')})`;
}

/**
 * Conv2D weight gradient, dW[r,c,i,o] = Σ_{b,y,x} X[b, y·s+r·d−p, x·s+c·d−p, i] · dY[b,y,x,o], into
 * [splits, fH, fW, inC, outC] (splits = 1: the filter itself).
 */
export class ConvFilterGradProgram implements WebGPUProgram {
  variableNames = ['x', 'dy'];
  variableComponents: number[];
  outputComponent: number;
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly splits: number;
  private readonly g: Geometry;
  private readonly oVec4s: number;
  private readonly rowsPerSplit: number;

  constructor(ci: ConvInfo, policy: SplitPolicy = DEFAULT_SPLIT_POLICY, splits?: number) {
    const g = geometry(ci);
    this.g = g;
    const xVec4 = g.inC % 4 === 0;
    const dyVec4 = g.outC % 4 === 0;
    this.oVec4s = g.outC % 8 === 0 ? 2 : 1;
    this.variableComponents = [xVec4 ? 4 : 1, dyVec4 ? 4 : 1];
    this.outputComponent = dyVec4 ? 4 : 1;
    const taps = g.fH * g.fW;
    const tiles = Math.ceil(g.inC / 4) * Math.ceil(g.outC / (4 * this.oVec4s));
    const rows = g.batch * g.outH;
    const filterElements = taps * g.inC * g.outC;
    this.splits = splits ?? chooseSplits(tiles * taps, rows, g.outW, filterElements, policy);
    this.rowsPerSplit = Math.ceil(rows / this.splits);
    this.splits = Math.ceil(rows / this.rowsPerSplit);
    this.outputShape = this.splits === 1 ? [g.fH, g.fW, g.inC, g.outC] : [this.splits, filterElements];
    const threads = tiles * taps * this.splits;
    const groups = Math.ceil(threads / WORKGROUP);
    if (groups > MAX_WORKGROUPS) throw new Error(`conv filter gradient: ${threads} threads is too many`);
    this.dispatch = [groups, 1, 1];
    this.shaderKey = `lesionLabConvFilterGrad_${key(g)}_${this.splits}_${this.oVec4s}`;
  }

  getUserCode(): string {
    const g = this.g;
    const [xComp, dyComp] = this.variableComponents;
    const xVec4 = xComp === 4;
    const dyVec4 = dyComp === 4;
    const outVec4 = this.outputComponent === 4;
    const oBlocks = Math.ceil(g.outC / (4 * this.oVec4s));
    const tiles = Math.ceil(g.inC / 4) * oBlocks;
    const taps = g.fH * g.fW;
    const q = Array.from({ length: this.oVec4s }, (_, k) => k);
    const acc = (j: number, k: number) => `a${j}_${k}`;
    const declare = [0, 1, 2, 3]
      .flatMap((j) => q.map((k) => `var ${acc(j, k)} = vec4<f32>(0.0);`))
      .join('\n');
    const loads = q
      .map((k) => `let d${k} = ${load4('dy', dyVec4, `dIdx + ${4 * k}`, `o0 + ${4 * k}`, g.outC)};`)
      .join('\n');
    const products = [0, 1, 2, 3]
      .flatMap((j) => q.map((k) => `${acc(j, k)} = fma(vec4<f32>(xv[${j}]), d${k}, ${acc(j, k)});`))
      .join('\n');
    const stores = [0, 1, 2, 3]
      .flatMap((j) =>
        q.map((k) => {
          const at = `base + (i0 + ${j}) * ${g.outC} + o0 + ${4 * k}`;
          const guard = `i0 + ${j} < ${g.inC} && o0 + ${4 * k} < ${g.outC}`;
          if (outVec4) return `if (${guard}) { result[(${at}) / 4] = ${acc(j, k)}; }`;
          return [0, 1, 2, 3]
            .map(
              (e) =>
                `if (${guard} && o0 + ${4 * k + e} < ${g.outC}) { result[${at} + ${e}] = ${acc(j, k)}[${e}]; }`,
            )
            .join('\n');
        }),
      )
      .join('\n');
    return `
  const xLast = ${g.batch * g.inH * g.inW * g.inC - 1};
  const dyLast = ${g.batch * g.outH * g.outW * g.outC - 1};
  fn main(gid : i32) {
    _ = uniforms.NAN; // tfjs binds its uniforms buffer to every program: the shader must use it
    if (gid >= ${tiles * taps * this.splits}) { return; }
    let tile = gid % ${tiles};
    let rest = gid / ${tiles};
    let tap = rest % ${taps};
    let split = rest / ${taps};
    let i0 = (tile / ${oBlocks}) * 4;
    let o0 = (tile % ${oBlocks}) * ${4 * this.oVec4s};
    let r = tap / ${g.fW};
    let c = tap % ${g.fW};
    ${columnRange(g, 'c')}
    ${declare}
    let rowStart = split * ${this.rowsPerSplit};
    let rowEnd = min(rowStart + ${this.rowsPerSplit}, ${g.batch * g.outH});
    for (var row = rowStart; row < rowEnd; row++) {
      let b = row / ${g.outH};
      let y = row % ${g.outH};
      let u = y * ${g.sH} + r * ${g.dH} - ${g.padTop};
      if (u < 0 || u >= ${g.inH}) { continue; }
      var xIdx = ((b * ${g.inH} + u) * ${g.inW} + xoStart * ${g.sW} + colOffset) * ${g.inC} + i0;
      var dIdx = (row * ${g.outW} + xoStart) * ${g.outC} + o0;
      for (var xo = xoStart; xo < xoEnd; xo++) {
        let xv = ${load4('x', xVec4, 'xIdx', 'i0', g.inC)};
        ${loads}
        ${products}
        xIdx += ${g.sW * g.inC};
        dIdx += ${g.outC};
      }
    }
    let base = split * ${taps * g.inC * g.outC} + tap * ${g.inC * g.outC};
    ${stores}
  }`;
  }
}

/**
 * Depthwise weight gradient, dW[r,c,i,m] = Σ_{b,y,x} X[b, y·s+r·d−p, x·s+c·d−p, i] · dY[b,y,x,i·M+m], into
 * [splits, fH, fW, inC, M] (splits = 1: the filter itself). Channels are the flat output channels i·M+m.
 */
export class DepthwiseFilterGradProgram implements WebGPUProgram {
  variableNames = ['x', 'dy'];
  variableComponents: number[];
  outputComponent: number;
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly splits: number;
  private readonly g: Geometry;
  private readonly multiplier: number;
  private readonly rowsPerSplit: number;

  constructor(ci: ConvInfo, policy: SplitPolicy = DEFAULT_SPLIT_POLICY, splits?: number) {
    const g = geometry(ci);
    this.g = g;
    this.multiplier = g.outC / g.inC;
    const vec4 = g.outC % 4 === 0;
    this.variableComponents = [vec4 && this.multiplier === 1 ? 4 : 1, vec4 ? 4 : 1];
    this.outputComponent = vec4 ? 4 : 1;
    const tiles = Math.ceil(g.outC / 4) * g.fH;
    const rows = g.batch * g.outH;
    const filterElements = g.fH * g.fW * g.outC;
    this.splits = splits ?? chooseSplits(tiles, rows, g.outW, filterElements, policy);
    this.rowsPerSplit = Math.ceil(rows / this.splits);
    this.splits = Math.ceil(rows / this.rowsPerSplit);
    this.outputShape =
      this.splits === 1 ? [g.fH, g.fW, g.inC, this.multiplier] : [this.splits, filterElements];
    const groups = Math.ceil((tiles * this.splits) / WORKGROUP);
    if (groups > MAX_WORKGROUPS) throw new Error(`depthwise filter gradient: too many threads`);
    this.dispatch = [groups, 1, 1];
    this.shaderKey = `lesionLabDepthwiseFilterGrad_${key(g)}_${this.splits}`;
  }

  getUserCode(): string {
    const g = this.g;
    const m = this.multiplier;
    const [xComp, dyComp] = this.variableComponents;
    const dyVec4 = dyComp === 4;
    const outVec4 = this.outputComponent === 4;
    const chBlocks = Math.ceil(g.outC / 4);
    const tiles = chBlocks * g.fH;
    const taps = Array.from({ length: g.fW }, (_, c) => c);
    // X's channel for flat output channel ch is ch / M; with M = 1 and whole vec4s it is the same vec4.
    const xAt = (c: number) =>
      xComp === 4
        ? `x[(xRow + v${c} * ${g.inC} + ch0) / 4]`
        : `vec4<f32>(${[0, 1, 2, 3]
            .map(
              (k) =>
                `select(0.0, x[min(xRow + v${c} * ${g.inC} + (ch0 + ${k}) / ${m}, xLast)], ch0 + ${k} < ${g.outC})`,
            )
            .join(', ')})`;
    const perTap = taps
      .map(
        (c) => `
        let v${c} = xo * ${g.sW} + ${c * g.dW - g.padLeft};
        if (v${c} >= 0 && v${c} < ${g.inW}) { a${c} = fma(${xAt(c)}, dv, a${c}); }`,
      )
      .join('');
    const stores = taps
      .map((c) => {
        const at = `base + (r * ${g.fW} + ${c}) * ${g.outC} + ch0`;
        if (outVec4) return `result[(${at}) / 4] = a${c};`;
        return [0, 1, 2, 3]
          .map((e) => `if (ch0 + ${e} < ${g.outC}) { result[${at} + ${e}] = a${c}[${e}]; }`)
          .join('\n');
      })
      .join('\n');
    return `
  const xLast = ${g.batch * g.inH * g.inW * g.inC - 1};
  const dyLast = ${g.batch * g.outH * g.outW * g.outC - 1};
  fn main(gid : i32) {
    _ = uniforms.NAN; // tfjs binds its uniforms buffer to every program: the shader must use it
    if (gid >= ${tiles * this.splits}) { return; }
    let ch0 = (gid % ${chBlocks}) * 4;
    let rest = gid / ${chBlocks};
    let r = rest % ${g.fH};
    let split = rest / ${g.fH};
    ${taps.map((c) => `var a${c} = vec4<f32>(0.0);`).join('\n')}
    let rowStart = split * ${this.rowsPerSplit};
    let rowEnd = min(rowStart + ${this.rowsPerSplit}, ${g.batch * g.outH});
    for (var row = rowStart; row < rowEnd; row++) {
      let b = row / ${g.outH};
      let y = row % ${g.outH};
      let u = y * ${g.sH} + r * ${g.dH} - ${g.padTop};
      if (u < 0 || u >= ${g.inH}) { continue; }
      let xRow = (b * ${g.inH} + u) * ${g.inW * g.inC};
      var dIdx = row * ${g.outW * g.outC} + ch0;
      for (var xo = 0; xo < ${g.outW}; xo++) {
        let dv = ${load4('dy', dyVec4, 'dIdx', 'ch0', g.outC)};
        ${perTap}
        dIdx += ${g.outC};
      }
    }
    let base = split * ${g.fH * g.fW * g.outC};
    ${stores}
  }`;
  }
}

/** The second pass of a split reduction: out[n] = Σ_s partial[s, n], four elements a thread when they align. */
export class SplitSumProgram implements WebGPUProgram {
  variableNames = ['partial'];
  variableComponents: number[];
  outputComponent: number;
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  private readonly splits: number;
  private readonly units: number;

  constructor(splits: number, outputShape: number[]) {
    const elements = outputShape.reduce((a, b) => a * b, 1);
    const vec4 = elements % 4 === 0;
    this.splits = splits;
    this.units = vec4 ? elements / 4 : elements;
    this.variableComponents = [vec4 ? 4 : 1];
    this.outputComponent = vec4 ? 4 : 1;
    this.outputShape = outputShape;
    const groups = Math.ceil(this.units / WORKGROUP);
    if (groups > MAX_WORKGROUPS) throw new Error(`split sum: ${elements} elements is too many`);
    this.dispatch = [groups, 1, 1];
    this.shaderKey = `lesionLabSplitSum_${splits}_${this.units}_${this.outputComponent}`;
  }

  getUserCode(): string {
    const type = this.outputComponent === 4 ? 'vec4<f32>' : 'f32';
    return `
  fn main(n : i32) {
    _ = uniforms.NAN; // tfjs binds its uniforms buffer to every program: the shader must use it
    if (n >= ${this.units}) { return; }
    var sum = ${type}(0.0);
    for (var s = 0; s < ${this.splits}; s++) { sum += partial[s * ${this.units} + n]; }
    result[n] = sum;
  }`;
  }
}
