/**
 * Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class is. With A the feature map of the
 * backbone's last conv block (channels k, positions i, j) and y_c the class's score:
 *
 *   α_k   = (1 / (h·w)) Σ_ij ∂y_c / ∂A_ij^k        channel weights: spatial mean of the gradients
 *   L_c   = ReLU(Σ_k α_k · A^k)                     only evidence for the class, not against it
 *   map   = L_c / max(L_c)                          in [0, 1] (all zeros when nothing speaks for the class)
 *
 * then upsampled bilinearly to the image. y_c is the class's logit, the softmax's input, as in the paper (the
 * softmax output saturates and mixes in the other classes); a model that does not end in a softmax Dense layer is
 * explained on its output as is.
 *
 * The model is split at the layer's output without copying anything: the image runs through the graph up to A,
 * then a function of A runs the rest of the graph (descending into nested models, such as the composed
 * base + head) and tf.grad differentiates it with respect to A. Only the part above A is differentiated, so this
 * also works on backends without conv gradient kernels (WASM) when A is the base's output.
 */
import * as tf from '@tensorflow/tfjs';
import type { PixelImage } from '../data/resize.ts';
import {
  metadataInput,
  modelInputSize,
  prepareImage,
  type Classifier,
  type PredictInput,
} from '../predict.ts';
import type { MetadataValues } from './metadata-features.ts';
import type { ResizeFilter } from '../data/resize.ts';

type Sym = tf.SymbolicTensor;
type Thunk = () => tf.Tensor;

/** The models from `model` down to the one whose own layers include `layerName`, or null. */
function pathTo(model: tf.LayersModel, layerName: string): tf.LayersModel[] | null {
  if (model.layers.some((l) => l.name === layerName)) return [model];
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) {
      const sub = pathTo(layer, layerName);
      if (sub) return [model, ...sub];
    }
  }
  return null;
}

/** The symbolic tensor of `graph` (its own graph, not a nested one) produced by `layer`. */
function producedBy(graph: tf.LayersModel, layer: tf.layers.Layer): Sym {
  const seen = new Set<number>();
  const stack = [...graph.outputs];
  while (stack.length > 0) {
    const t = stack.pop() as Sym;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    if (t.sourceLayer === layer) return t;
    stack.push(...t.inputs);
  }
  throw new Error(`layer ${layer.name} does not feed the outputs of ${graph.name}`);
}

function isSoftmaxDense(layer: tf.layers.Layer): boolean {
  const config = layer.getConfig();
  return layer.getClassName() === 'Dense' && config.activation === 'softmax';
}

/**
 * Evaluates symbolic tensors of one graph on concrete tensors, in inference mode. Values of some symbolic tensors
 * are given (the graph's inputs, or a cut through it); a nested model is evaluated inside, layer by layer, so that
 * a cut inside it takes effect.
 */
class GraphRun {
  private readonly memo = new Map<number, tf.Tensor>();

  constructor(private readonly known: ReadonlyMap<number, Thunk>) {}

  /** The run inside `inner`, which `application` (a tensor of this graph) applies. */
  child(inner: tf.LayersModel, application: Sym): GraphRun {
    const known = new Map(this.known);
    inner.inputs.forEach((input, i) => {
      const outer = application.inputs[i];
      if (outer) known.set(input.id, () => this.value(outer));
    });
    return new GraphRun(known);
  }

  value(t: Sym): tf.Tensor {
    const hit = this.memo.get(t.id);
    if (hit) return hit;
    let out: tf.Tensor;
    const given = this.known.get(t.id);
    const layer = t.sourceLayer;
    if (given) {
      out = given();
    } else if (layer instanceof tf.LayersModel) {
      out = this.child(layer, t).value(layer.outputs[t.outputTensorIndex ?? 0] as Sym);
    } else {
      if (t.inputs.length === 0) throw new Error(`no value given for the input ${t.name}`);
      const inputs = t.inputs.map((s) => this.value(s));
      const result = layer.apply(inputs.length === 1 ? (inputs[0] as tf.Tensor) : inputs, {
        ...t.callArgs,
        training: false,
      });
      out = Array.isArray(result) ? (result[t.outputTensorIndex ?? 0] as tf.Tensor) : (result as tf.Tensor);
    }
    this.memo.set(t.id, out);
    return out;
  }

  /** The pre-softmax scores behind `t` when a softmax Dense (or Activation) layer makes it; else `t` itself. */
  scores(t: Sym): { value: tf.Tensor; kind: 'logit' | 'probability' } {
    const layer = t.sourceLayer;
    if (!this.known.has(t.id)) {
      if (layer instanceof tf.LayersModel) {
        return this.child(layer, t).scores(layer.outputs[t.outputTensorIndex ?? 0] as Sym);
      }
      const input = t.inputs[0];
      if (input && t.inputs.length === 1 && isSoftmaxDense(layer)) {
        const [kernel, bias] = layer.getWeights();
        const x = this.value(input);
        if (x.rank === 2 && kernel) {
          const z = tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D);
          return { value: bias ? tf.add(z, bias) : z, kind: 'logit' };
        }
      }
      if (input && layer.getClassName() === 'Activation' && layer.getConfig().activation === 'softmax') {
        return { value: this.value(input), kind: 'logit' };
      }
    }
    return { value: this.value(t), kind: 'probability' };
  }
}

export interface GradCamOptions {
  /** The layer whose output feature map is explained: the backbone's last conv block (BackboneSpec.gradCamLayer). */
  layerName: string;
  /** The class to explain; default the predicted one. */
  classIndex?: number;
  /** [height, width] of the heatmap; default the model's input size. */
  size?: readonly [number, number];
  /** The [1, dim] metadata tensor, for a model that takes metadata as a second input. */
  metadata?: tf.Tensor2D;
}

export interface GradCamTensors {
  /** [height, width], values in [0, 1]. */
  heatmap: tf.Tensor2D;
  /** The class explained (int32 scalar). */
  classIndex: tf.Scalar;
  /** The model's class probabilities for the image [classes]. */
  probabilities: tf.Tensor1D;
  /** What was differentiated: the class's logit, or its probability when the model has no softmax layer to undo. */
  score: 'logit' | 'probability';
  /** [h, w] of the feature map before upsampling. */
  featureSize: [number, number];
}

/**
 * Grad-CAM of one preprocessed image ([1, size, size, 3]) for `model` (image → class probabilities; may nest
 * the base and head as composeModel does). Synchronous and all on the backend; the caller disposes the tensors.
 */
export function gradCamTensors(
  model: tf.LayersModel,
  image: tf.Tensor4D,
  options: GradCamOptions,
): GradCamTensors {
  if (image.shape[0] !== 1)
    throw new Error(`Grad-CAM explains one image at a time; got a batch of ${image.shape[0]}`);
  const path = pathTo(model, options.layerName);
  if (!path)
    throw new Error(
      `the model has no layer named "${options.layerName}" to take Grad-CAM's feature map from`,
    );
  const inner = path[path.length - 1] as tf.LayersModel;
  const target = producedBy(inner, inner.getLayer(options.layerName));
  if (target.shape.length !== 4) {
    throw new Error(
      `layer ${options.layerName} outputs [${target.shape.join(', ')}]; Grad-CAM needs a feature map`,
    );
  }
  const input = model.inputs[0] as Sym;
  // A metadata-fused model's second input: its value is given with the image.
  const metaInput = model.inputs[1] as Sym | undefined;
  if (metaInput && !options.metadata) throw new Error('the model takes metadata: give it with the image');
  const givenMeta = (): Array<[number, Thunk]> =>
    metaInput && options.metadata ? [[metaInput.id, () => options.metadata as tf.Tensor]] : [];
  const output = model.outputs[0] as Sym;
  const classes = output.shape[output.shape.length - 1] as number;
  const classIndex = options.classIndex;
  if (
    classIndex !== undefined &&
    !(Number.isInteger(classIndex) && classIndex >= 0 && classIndex < classes)
  ) {
    throw new RangeError(`class index ${classIndex} is not one of the model's classes (0..${classes - 1})`);
  }
  const size = options.size ?? [modelInputSize(model), modelInputSize(model)];
  let score: 'logit' | 'probability' = 'logit';

  const result = tf.tidy(() => {
    let run = new GraphRun(new Map<number, Thunk>([[input.id, () => image], ...givenMeta()]));
    for (let d = 0; d + 1 < path.length; d++) {
      run = run.child(
        path[d + 1] as tf.LayersModel,
        producedBy(path[d] as tf.LayersModel, path[d + 1] as tf.LayersModel),
      );
    }
    const features = run.value(target) as tf.Tensor4D;
    // The rest of the network as a function of the feature map (the image stays available for any path around it).
    const tail = (a: tf.Tensor) =>
      new GraphRun(
        new Map<number, Thunk>([[input.id, () => image], [target.id, () => a], ...givenMeta()]),
      ).scores(output);
    const forward = tail(features);
    score = forward.kind;
    const probabilities = (forward.kind === 'logit' ? tf.softmax(forward.value) : forward.value).reshape([
      classes,
    ]);
    const chosen = (
      classIndex === undefined ? tf.argMax(probabilities) : tf.scalar(classIndex, 'int32')
    ).toInt();
    const mask = tf.oneHot(chosen.reshape([1]), classes).toFloat();
    const grads = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tail(a).value, mask)))(features);
    const weights = tf.mean(grads, [1, 2], true);
    const cam = tf.relu(tf.sum(tf.mul(features, weights), -1, true)) as tf.Tensor4D;
    const peak = tf.max(cam);
    // A map with no positive evidence stays all zeros instead of 0 / 0.
    const normalised = tf.div(cam, tf.maximum(peak, 1e-30)) as tf.Tensor4D;
    const up = tf.image.resizeBilinear(normalised, [size[0], size[1]], false, true);
    return {
      heatmap: tf.clipByValue(up, 0, 1).reshape([size[0], size[1]]) as tf.Tensor2D,
      classIndex: chosen as tf.Scalar,
      probabilities: probabilities as tf.Tensor1D,
    };
  });
  return { ...result, score, featureSize: [target.shape[1] as number, target.shape[2] as number] };
}

export interface GradCamResult {
  /** Row-major, width × height values in [0, 1]. */
  heatmap: Float32Array;
  width: number;
  height: number;
  classIndex: number;
  probabilities: Float32Array;
  score: 'logit' | 'probability';
  featureSize: [number, number];
}

/** Grad-CAM of one preprocessed image, read back asynchronously; no tensor outlives the call. */
export async function gradCam(
  model: tf.LayersModel,
  image: tf.Tensor4D,
  options: GradCamOptions,
): Promise<GradCamResult> {
  const t = gradCamTensors(model, image, options);
  try {
    const [heatmap, classIndex, probabilities] = await Promise.all([
      t.heatmap.data(),
      t.classIndex.data(),
      t.probabilities.data(),
    ]);
    const [height, width] = t.heatmap.shape;
    return {
      heatmap: heatmap as Float32Array,
      width,
      height,
      classIndex: classIndex[0] as number,
      probabilities: probabilities as Float32Array,
      score: t.score,
      featureSize: t.featureSize,
    };
  } finally {
    tf.dispose([t.heatmap, t.classIndex, t.probabilities]);
  }
}

/**
 * Grad-CAM of an image of any size, as Predict shows it: the image is squashed and preprocessed like for
 * `predictImage`, and the heatmap comes back at the image's own size (to lay over the original).
 */
export async function gradCamImage(
  classifier: Classifier,
  image: PredictInput,
  options: Omit<GradCamOptions, 'size' | 'metadata'> & {
    filter?: ResizeFilter;
    /** Age, sex and site for a model that takes metadata (unknown when absent). */
    metadataValues?: MetadataValues | null;
  },
): Promise<GradCamResult> {
  const size = modelInputSize(classifier.model);
  const [height, width] = image instanceof tf.Tensor ? image.shape : [image.height, image.width];
  const prepared = prepareImage(image, size, classifier.preprocessing, options.filter);
  const metadata = metadataInput(classifier, options.metadataValues);
  try {
    return await gradCam(classifier.model, prepared, {
      ...options,
      size: [height, width],
      metadata: metadata ?? undefined,
    });
  } finally {
    prepared.dispose();
    metadata?.dispose();
  }
}

export type Colormap = 'turbo' | 'jet';

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * RGB in [0, 255] for a value in [0, 1]. 'turbo': Google's Turbo colormap (A. Mikhailov; the published polynomial
 * fit by R. Du, Apache-2.0), dark → blue → green → yellow → dark red; 'jet': the classic piecewise-linear blue → cyan → yellow → red of Grad-CAM figures.
 */
export function colormap(value: number, map: Colormap = 'turbo'): [number, number, number] {
  const x = clamp01(value);
  let r: number;
  let g: number;
  let b: number;
  if (map === 'turbo') {
    r =
      0.13572138 +
      x * (4.6153926 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))));
    g =
      0.09140261 +
      x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))));
    b =
      0.1066733 +
      x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))));
  } else {
    r = clamp01(1.5 - Math.abs(4 * x - 3));
    g = clamp01(1.5 - Math.abs(4 * x - 2));
    b = clamp01(1.5 - Math.abs(4 * x - 1));
  }
  return [Math.round(clamp01(r) * 255), Math.round(clamp01(g) * 255), Math.round(clamp01(b) * 255)];
}

export interface OverlayOptions {
  /** Opacity of the heatmap where it is 1. Default 0.5. */
  opacity?: number;
  /**
   * Scale each pixel's opacity by its heat, so that cold regions show the image untouched. Default true; false
   * lays the colours over the whole image evenly.
   */
  weighted?: boolean;
  colormap?: Colormap;
}

/**
 * The heatmap coloured and laid over the image, as RGBA bytes (for ImageData / a canvas); pure. The heatmap must
 * have the image's size (gradCamImage gives it so).
 */
export function overlayHeatmap(
  heatmap: ArrayLike<number>,
  image: PixelImage,
  options: OverlayOptions = {},
): Uint8ClampedArray {
  const { width, height, data, channels } = image;
  if (heatmap.length !== width * height) {
    throw new RangeError(
      `the heatmap has ${heatmap.length} values; the ${width}x${height} image needs ${width * height}`,
    );
  }
  if (data.length !== width * height * channels) {
    throw new RangeError(`pixel buffer holds ${data.length} bytes, expected ${width}x${height}x${channels}`);
  }
  const opacity = clamp01(options.opacity ?? 0.5);
  const weighted = options.weighted ?? true;
  const map = options.colormap ?? 'turbo';
  // 256 colour steps are finer than the eye tells apart and spare a polynomial per pixel.
  const lut = Array.from({ length: 256 }, (_, i) => colormap(i / 255, map));
  const out = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    const v = clamp01(Number(heatmap[p]) || 0);
    const [r, g, b] = lut[Math.round(v * 255)] as [number, number, number];
    const a = weighted ? opacity * v : opacity;
    const s = p * channels;
    const o = p * 4;
    out[o] = (1 - a) * (data[s] as number) + a * r;
    out[o + 1] = (1 - a) * (data[s + 1] as number) + a * g;
    out[o + 2] = (1 - a) * (data[s + 2] as number) + a * b;
    out[o + 3] = 255;
  }
  return out;
}

/** The heatmap alone as RGBA (alpha = heat × opacity), to draw over the image on its own layer. */
export function heatmapRgba(
  heatmap: ArrayLike<number>,
  options: Omit<OverlayOptions, 'weighted'> = {},
): Uint8ClampedArray {
  const opacity = clamp01(options.opacity ?? 0.5);
  const map = options.colormap ?? 'turbo';
  const out = new Uint8ClampedArray(heatmap.length * 4);
  for (let p = 0; p < heatmap.length; p++) {
    const v = clamp01(Number(heatmap[p]) || 0);
    const [r, g, b] = colormap(v, map);
    out.set([r, g, b, Math.round(255 * opacity * v)], p * 4);
  }
  return out;
}
