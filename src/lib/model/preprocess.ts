/**
 * Keras `preprocess_input`, as tensor functions. Input: RGB pixels in [0, 255], uint8 or float32, NHWC or HWC.
 * - 'tf' (MobileNet v1/v2, ResNet50V2): x / 127.5 − 1, giving [−1, 1].
 * - 'caffe' (VGG16): RGB → BGR, then minus the ImageNet BGR mean [103.939, 116.779, 123.68]; no scaling.
 * Division (not multiplication by 1/127.5) and the order of operations follow Keras, so results are bit-equal on
 * backends with IEEE float32 arithmetic (CPU, WASM).
 */
import * as tf from '@tensorflow/tfjs';

export type PreprocessMode = 'tf' | 'caffe';

/** ImageNet channel means in BGR order, as Keras's imagenet_utils uses them for 'caffe'. */
export const CAFFE_BGR_MEAN = [103.939, 116.779, 123.68] as const;

export function preprocessInput<T extends tf.Tensor3D | tf.Tensor4D>(images: T, mode: PreprocessMode): T {
  if (images.rank !== 3 && images.rank !== 4) {
    throw new Error(`preprocessInput expects an HWC or NHWC image tensor, got rank ${images.rank}`);
  }
  const channels = images.shape[images.rank - 1];
  if (channels !== 3) {
    throw new Error(`preprocessInput expects 3 (RGB) channels, got ${channels}`);
  }
  return tf.tidy(() => {
    const x = images.dtype === 'float32' ? images : tf.cast(images, 'float32');
    if (mode === 'tf') return tf.sub(tf.div(x, 127.5), 1) as T;
    const bgr = tf.reverse(x, -1);
    return tf.sub(bgr, tf.tensor1d(CAFFE_BGR_MEAN as unknown as number[], 'float32')) as T;
  });
}

/** The inverse, for showing what the network sees (e.g. augmented previews): back to RGB in [0, 255]. */
export function deprocessInput<T extends tf.Tensor3D | tf.Tensor4D>(x: T, mode: PreprocessMode): T {
  return tf.tidy(() => {
    if (mode === 'tf') return tf.mul(tf.add(x, 1), 127.5) as T;
    return tf.reverse(tf.add(x, tf.tensor1d(CAFFE_BGR_MEAN as unknown as number[], 'float32')), -1) as T;
  });
}
