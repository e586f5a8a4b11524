import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKBONES } from '../../src/lib/model/backbones/index.ts';
import { CAFFE_BGR_MEAN, deprocessInput, preprocessInput } from '../../src/lib/model/preprocess.ts';

const f32 = Math.fround;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe("preprocessInput, as Keras's imagenet_utils.preprocess_input", () => {
  // One 2x2 RGB image with the corner values of the range and a few in between.
  const pixels = [0, 0, 0, 255, 255, 255, 51, 127, 200, 10, 128, 254];

  it("'tf': x / 127.5 - 1, computed in float32 as Keras does (divide, then subtract)", async () => {
    const x = tf.tensor4d(pixels, [1, 2, 2, 3], 'float32');
    const y = preprocessInput(x, 'tf');
    expect(y.dtype).toBe('float32');
    expect(y.shape).toEqual([1, 2, 2, 3]);
    const expected = pixels.map((v) => f32(f32(v / 127.5) - 1));
    expect(Array.from(await y.data())).toEqual(expected);
    // Known values: 0 → -1, 255 → 1, 51 → -0.6, 127 → -0.003921568…
    const out = await y.data();
    expect([out[0], out[3], out[6]]).toEqual([-1, 1, f32(-0.6)]);
    expect(out[7]).toBeCloseTo(-1 / 255, 7);
    tf.dispose([x, y]);
  });

  it("'caffe': RGB → BGR, minus [103.939, 116.779, 123.68], no scaling", async () => {
    const x = tf.tensor4d(pixels, [1, 2, 2, 3], 'float32');
    const y = preprocessInput(x, 'caffe');
    const out = Array.from(await y.data());
    const expected: number[] = [];
    for (let p = 0; p < pixels.length; p += 3) {
      const [r, g, b] = pixels.slice(p, p + 3) as [number, number, number];
      expected.push(f32(b - f32(103.939)), f32(g - f32(116.779)), f32(r - f32(123.68)));
    }
    expect(out).toEqual(expected);
    // A pure red pixel (255, 0, 0) becomes B = -103.939, G = -116.779, R = 131.32.
    const red = preprocessInput(tf.tensor3d([255, 0, 0], [1, 1, 3]), 'caffe');
    const [b, g, r] = Array.from(await red.data());
    expect(b).toBeCloseTo(-103.939, 4);
    expect(g).toBeCloseTo(-116.779, 4);
    expect(r).toBeCloseTo(131.32, 4);
    expect(CAFFE_BGR_MEAN).toEqual([103.939, 116.779, 123.68]);
    tf.dispose([x, y, red]);
  });

  it('takes uint8-range int32 tensors (decoded images) and HWC images, with the same result', async () => {
    const asInt = tf.tensor3d(pixels, [2, 2, 3], 'int32');
    const asFloat = tf.tensor3d(pixels, [2, 2, 3], 'float32');
    for (const mode of ['tf', 'caffe'] as const) {
      const a = preprocessInput(asInt, mode);
      const b = preprocessInput(asFloat, mode);
      expect(a.shape).toEqual([2, 2, 3]);
      expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
      tf.dispose([a, b]);
    }
    tf.dispose([asInt, asFloat]);
  });

  it('leaves no tensors behind, and rejects inputs that are not RGB images', () => {
    const x = tf.tensor4d(pixels, [1, 2, 2, 3]);
    const before = tf.memory().numTensors;
    tf.dispose([preprocessInput(x, 'tf'), preprocessInput(x, 'caffe')]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => preprocessInput(tf.zeros([1, 2, 2, 4]) as tf.Tensor4D, 'tf')).toThrow(
      /3 \(RGB\) channels, got 4/,
    );
    expect(() => preprocessInput(tf.zeros([4, 3]) as unknown as tf.Tensor3D, 'tf')).toThrow(/rank 2/);
    x.dispose();
  });

  it('deprocessInput inverts both modes', async () => {
    const x = tf.tensor4d(pixels, [1, 2, 2, 3]);
    for (const mode of ['tf', 'caffe'] as const) {
      const back = tf.tidy(() => deprocessInput(preprocessInput(x, mode), mode));
      const values = Array.from(await back.data());
      values.forEach((v, i) => expect(v).toBeCloseTo(pixels[i] as number, 3));
      back.dispose();
    }
    x.dispose();
  });

  it("each backbone uses Keras's mode: 'caffe' for VGG16, 'tf' for ResNet50V2 and the MobileNets", () => {
    for (const spec of Object.values(BACKBONES)) {
      expect(spec.preprocessing, spec.id).toBe(spec.id === 'vgg16' ? 'caffe' : 'tf');
    }
  });
});
