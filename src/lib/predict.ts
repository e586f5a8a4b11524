/**
 * Predict one image of any size with a trained classifier: squash it to the model's square input (as the training
 * cache does, never a centre crop), preprocess it as the backbone expects, and return the class probabilities and
 * the top classes. Optional test-time augmentation (TTA) averages the probabilities of the image and its
 * horizontal, vertical and double flips (a lesion has no up or left).
 *
 * Nothing is read back synchronously; every tensor is disposed before the promise resolves.
 */
import * as tf from '@tensorflow/tfjs';
import { resizeRgb, type PixelImage, type ResizeFilter } from './data/resize.ts';
import { preprocessInput, type PreprocessMode } from './model/preprocess.ts';
import { encodeMetadata, type MetadataEncoding, type MetadataValues } from './model/metadata-features.ts';

/** A trained model with what it takes to feed it. */
export interface Classifier {
  /** Preprocessed images [batch, size, size, 3] → class probabilities [batch, classes] (softmax). */
  model: tf.LayersModel;
  preprocessing: PreprocessMode;
  /** Class names in output order. */
  classes: readonly string[];
  /** For a model that takes metadata as a second input: how to encode it (the run's encoding). */
  metadata?: MetadataEncoding | null;
}

/** Nothing known about the lesion: every field "unknown", the age imputed. */
export const UNKNOWN_METADATA: MetadataValues = { age: null, sex: null, localization: null };

/**
 * The [1, dim] metadata tensor for `classifier` from what is known (`values`; missing fields are unknown), or null
 * for an image-only model. The caller disposes it.
 */
export function metadataInput(classifier: Classifier, values?: MetadataValues | null): tf.Tensor2D | null {
  if (classifier.model.inputs.length < 2) return null;
  if (!classifier.metadata) {
    throw new Error('the model takes metadata, and the run does not say how to encode it');
  }
  const row = encodeMetadata(classifier.metadata, values ?? UNKNOWN_METADATA);
  return tf.tensor2d(row, [1, row.length]);
}

/**
 * Decoded pixels (RGB or RGBA bytes: ImageData, a jpeg-js decode), or an HWC tensor of RGB values in [0, 255]
 * (the caller keeps ownership of a tensor).
 */
export type PredictInput = PixelImage | tf.Tensor3D;

export interface ClassProbability {
  index: number;
  name: string;
  probability: number;
}

export interface ImagePrediction {
  /** One probability per class, in class order. */
  probabilities: number[];
  /** The `topK` most probable classes, most probable first (ties: lower class index first). */
  top: ClassProbability[];
  /** Whether the probabilities are the mean over the four flips. */
  tta: boolean;
}

export interface PredictOptions {
  /** Average over the image, its left-right, top-bottom and double flips. Default false. */
  tta?: boolean;
  /** How many classes `top` lists. Default 3. */
  topK?: number;
  /**
   * Filter that squashes decoded pixels (PixelImage) to the model size. Default 'catmull-rom': what the browser's
   * createImageBitmap(…, {resizeQuality: 'high'}) does for the training cache, so predictions see the same pixels.
   * A tensor input is resized bilinearly.
   */
  filter?: ResizeFilter;
  /** Age, sex and site for a model that takes metadata; missing or null: unknown. Ignored by image-only models. */
  metadata?: MetadataValues | null;
}

/** The model's square input edge; throws when the model does not take [batch, n, n, 3] images. */
export function modelInputSize(model: tf.LayersModel): number {
  const shape = model.inputs[0]?.shape;
  const [, h, w, c] = shape ?? [];
  // A second input may only be the metadata vector (src/lib/model/fused-head.ts).
  const extra = model.inputs.length === 2 && model.inputs[1]!.shape.length === 2;
  if ((model.inputs.length !== 1 && !extra) || shape?.length !== 4 || h == null || h !== w || c !== 3) {
    throw new Error(
      `the model must take square RGB images [batch, n, n, 3]; its input is [${shape?.join(', ')}]`,
    );
  }
  return h;
}

function isTensor(input: PredictInput): input is tf.Tensor3D {
  return input instanceof tf.Tensor;
}

/**
 * The image squashed to `size`×`size` and preprocessed: a [1, size, size, 3] float32 tensor the caller disposes.
 */
export function prepareImage(
  image: PredictInput,
  size: number,
  preprocessing: PreprocessMode,
  filter: ResizeFilter = 'catmull-rom',
): tf.Tensor4D {
  if (isTensor(image)) {
    const [h, w, c] = image.shape;
    if (image.rank !== 3 || (c !== 3 && c !== 4)) {
      throw new Error(`an image tensor must be [height, width, 3 or 4]; got [${image.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      let x = tf
        .cast(c === 4 ? tf.slice(image, [0, 0, 0], [h, w, 3]) : image, 'float32')
        .expandDims(0) as tf.Tensor4D;
      if (h !== size || w !== size) x = tf.image.resizeBilinear(x, [size, size], false, true);
      return preprocessInput(x, preprocessing);
    });
  }
  const rgb = resizeRgb(image, size, size, filter);
  return tf.tidy(() => preprocessInput(tf.tensor4d(rgb.data, [1, size, size, 3], 'float32'), preprocessing));
}

/** The four flips of a batch: original, left-right, top-bottom, both. */
export function flipBatch(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.concat([x, tf.reverse(x, 2), tf.reverse(x, 1), tf.reverse(x, [1, 2])], 0));
}

/**
 * Class probabilities [classes] of one prepared image ([1, size, size, 3]); with `tta`, the mean over its four
 * flips. The caller disposes the result.
 */
export function predictTensor(
  model: tf.LayersModel,
  prepared: tf.Tensor4D,
  tta = false,
  metadata: tf.Tensor2D | null = null,
): tf.Tensor1D {
  if (prepared.shape[0] !== 1)
    throw new Error(`predict one image at a time; got a batch of ${prepared.shape[0]}`);
  return tf.tidy(() => {
    const batch = tta ? flipBatch(prepared) : prepared;
    const meta = metadata && tta ? tf.tile(metadata, [4, 1]) : metadata;
    const probs = model.predict(meta ? [batch, meta] : batch) as tf.Tensor2D;
    return tf.mean(probs, 0) as tf.Tensor1D;
  });
}

/** The `k` largest probabilities, largest first; equal ones in class order. */
export function topClasses(
  probabilities: readonly number[],
  classes: readonly string[],
  k = 3,
): ClassProbability[] {
  return probabilities
    .map((probability, index) => ({ index, name: classes[index] ?? String(index), probability }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, Math.max(0, k));
}

/** Predicts one image (any size): probabilities per class and the top classes (default 3). */
export async function predictImage(
  classifier: Classifier,
  image: PredictInput,
  options: PredictOptions = {},
): Promise<ImagePrediction> {
  const { model, preprocessing, classes } = classifier;
  const size = modelInputSize(model);
  const outputs = model.outputs[0]?.shape;
  if (outputs?.[outputs.length - 1] !== classes.length) {
    throw new Error(`the model outputs [${outputs?.join(', ')}], but ${classes.length} classes are named`);
  }
  const tta = options.tta ?? false;
  const probs = tf.tidy(() => {
    const prepared = prepareImage(image, size, preprocessing, options.filter);
    return predictTensor(model, prepared, tta, metadataInput(classifier, options.metadata));
  });
  let values: Float32Array;
  try {
    values = (await probs.data()) as Float32Array;
  } finally {
    probs.dispose();
  }
  const probabilities = Array.from(values);
  return { probabilities, top: topClasses(probabilities, classes, options.topK ?? 3), tta };
}
