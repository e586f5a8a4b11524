import { pretrainedMobileNetV2 } from '../helpers/pretrained.ts';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKBONES, buildBackbone } from '../../src/lib/model/backbones/index.ts';
import {
  buildFeatureExtractor,
  buildHead,
  composeModel,
  defaultHeadFor,
  freezeBase,
  headConfig,
  unfreezeTopBlocks,
  useKerasBatchNormSemantics,
} from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';

const root = join(import.meta.dirname, '..', '..');
const shared = join(root, '..', 'shared');
const SIZE = 96;

/** MobileNetV2 0.35 with its real ImageNet weights (real BatchNormalization statistics) at 96x96. */
const realMobileNetV2 = () => pretrainedMobileNetV2(SIZE);

/** Eight real HAM10000 images (preprocessed 'tf') and one-hot labels over 7 classes. */
function realBatch(): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const dir = join(shared, 'data', 'ham10000', 'originals-600x450');
  const rows = readFileSync(join(shared, 'data', 'ham10000', 'originals-600x450-manifest.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','))
    .slice(0, 8);
  const classes = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'];
  return tf.tidy(() => {
    const images = rows.map(([id]) => {
      const { width, height, data } = jpeg.decode(readFileSync(join(dir, `${id}.jpg`)), {
        useTArray: true,
        formatAsRGBA: false,
      });
      return tf.image.resizeBilinear(tf.tensor3d(data, [height, width, 3], 'int32').toFloat(), [SIZE, SIZE]);
    });
    const labels = rows.map(([, dx]) => classes.indexOf(dx as string));
    return {
      x: preprocessInput(tf.stack(images) as tf.Tensor4D, 'tf'),
      y: tf.oneHot(tf.tensor1d(labels, 'int32'), 7).toFloat() as tf.Tensor2D,
    };
  });
}

async function snapshot(model: tf.LayersModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const w of model.weights) out.set(w.name, (await w.read().data()) as Float32Array);
  return out;
}

const scalar = async (t: tf.Scalar | tf.Tensor | number | number[] | tf.Tensor[]): Promise<number> => {
  const value = Array.isArray(t) ? t[0] : t;
  return typeof value === 'number' ? value : ((await (value as tf.Tensor).data())[0] as number);
};

let batch: { x: tf.Tensor4D; y: tf.Tensor2D };

beforeAll(async () => {
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
  batch = realBatch();
});

afterAll(() => tf.dispose([batch.x, batch.y]));

describe('heads', () => {
  it("'gap-dense' and 'gap-dense-dropout-dense', as in the seed notebook", () => {
    const vgg = buildHead([7, 7, 512], defaultHeadFor('vgg16'));
    expect(vgg.layers.map((l) => `${l.name}:${l.getClassName()}`)).toEqual([
      'features:InputLayer',
      'avg_pool:GlobalAveragePooling2D',
      'predictions:Dense',
    ]);
    expect(vgg.countParams()).toBe(512 * 7 + 7);
    expect(vgg.outputs[0]?.shape).toEqual([null, 7]);

    const resnet = buildHead([2048], defaultHeadFor('resnet50v2'));
    expect(resnet.layers.map((l) => `${l.name}:${l.getClassName()}`)).toEqual([
      'features:InputLayer',
      'head_dense:Dense',
      'head_dropout:Dropout',
      'predictions:Dense',
    ]);
    expect(resnet.countParams()).toBe(2048 * 128 + 128 + 128 * 7 + 7);
    expect((resnet.getLayer('head_dropout').getConfig() as { rate: number }).rate).toBe(0.2);
    expect((resnet.getLayer('head_dense').getConfig() as { activation: string }).activation).toBe('relu');
    expect((resnet.getLayer('predictions').getConfig() as { activation: string }).activation).toBe('softmax');
    vgg.dispose();
    resnet.dispose();
  });

  it('units, dropout and classes are configurable and validated; either head fits any backbone', () => {
    const head = buildHead(
      [1280],
      headConfig({ kind: 'gap-dense-dropout-dense', hiddenUnits: 64, dropout: 0.5, classes: 3 }),
    );
    expect(head.countParams()).toBe(1280 * 64 + 64 + 64 * 3 + 3);
    expect((head.getLayer('head_dropout').getConfig() as { rate: number }).rate).toBe(0.5);
    expect(() => headConfig({ kind: 'gap-dense', dropout: 1 })).toThrow(/dropout must be in \[0, 1\), got 1/);
    expect(() => headConfig({ kind: 'gap-dense-dropout-dense', hiddenUnits: 0 })).toThrow(/hidden units/);
    expect(() => headConfig({ kind: 'gap-dense', classes: 1 })).toThrow(/classes ≥ 2/);
    expect(() => buildHead([7, 1280], headConfig({ kind: 'gap-dense' }))).toThrow(
      /\[channels\] or \[h, w, channels\]/,
    );
    for (const spec of Object.values(BACKBONES)) {
      expect(defaultHeadFor(spec.id).kind).toBe(
        spec.id === 'resnet50v2' ? 'gap-dense-dropout-dense' : 'gap-dense',
      );
    }
  });
});

describe('composition and frozen BatchNormalization (real MobileNetV2 0.35 weights, real images)', () => {
  let base: tf.LayersModel;

  beforeAll(async () => {
    base = await realMobileNetV2();
  });
  afterAll(() => base.dispose());

  it('a head trained on cached pooled features sits unchanged on the backbone: same predictions', async () => {
    const extractor = buildFeatureExtractor(base);
    const features = extractor.predict(batch.x) as tf.Tensor2D;
    expect(features.shape).toEqual([8, 1280]);
    const head = buildHead([1280], headConfig({ kind: 'gap-dense-dropout-dense', hiddenUnits: 32 }));
    head.compile({ optimizer: tf.train.adam(1e-2), loss: 'categoricalCrossentropy' });
    await head.fit(features, batch.y, { epochs: 3, batchSize: 8, verbose: 0 });

    const model = composeModel(base, head);
    expect(model.outputs[0]?.shape).toEqual([null, 7]);
    const fromCache = head.predict(features) as tf.Tensor;
    const fromImages = model.predict(batch.x) as tf.Tensor;
    const diff = await scalar(tf.tidy(() => tf.max(tf.abs(tf.sub(fromCache, fromImages)))));
    expect(diff).toBeLessThanOrEqual(1e-6);
    const sums = Array.from(await tf.tidy(() => tf.sum(fromImages, 1)).data());
    sums.forEach((s) => expect(s).toBeCloseTo(1, 5));
    tf.dispose([features, fromCache, fromImages]);
  });

  it('with the base frozen, fit uses the moving statistics (loss = inference loss) and changes only the head', async () => {
    expect(freezeBase(base)).toEqual({ blocks: [], layers: [], trainableParams: 0 });
    const model = composeModel(base, headConfig({ kind: 'gap-dense' }));
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    expect(model.trainableWeights.map((w) => w.originalName)).toEqual([
      'predictions/kernel',
      'predictions/bias',
    ]);

    const inference = await scalar(model.evaluate(batch.x, batch.y, { batchSize: 8 }) as tf.Scalar);
    const baseBefore = await snapshot(base);
    const headBefore = await (model.getLayer('head') as tf.LayersModel)
      .getLayer('predictions')
      .getWeights()[0]
      ?.data();
    const training = await scalar(await model.trainOnBatch(batch.x, batch.y));
    expect(Math.abs(training - inference)).toBeLessThanOrEqual(1e-5);

    const baseAfter = await snapshot(base);
    for (const [name, values] of baseBefore) expect(baseAfter.get(name), name).toEqual(values);
    const headAfter = await (model.getLayer('head') as tf.LayersModel)
      .getLayer('predictions')
      .getWeights()[0]
      ?.data();
    expect(headAfter).not.toEqual(headBefore);

    // Steps after the first (which creates Adam's slots) leave the tensor count flat.
    const before = tf.memory().numTensors;
    await model.trainOnBatch(batch.x, batch.y);
    await model.trainOnBatch(batch.x, batch.y);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("without Keras's semantics, tfjs fit would normalise a frozen base with batch statistics", async () => {
    const raw = await realMobileNetV2();
    raw.trainable = false;
    const input = tf.input({ shape: [SIZE, SIZE, 3] });
    const pooled = tf.layers.globalAveragePooling2d({}).apply(raw.apply(input)) as tf.SymbolicTensor;
    const output = tf.layers.dense({ units: 7, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
    const plain = tf.model({ inputs: input, outputs: output });
    plain.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const inference = await scalar(plain.evaluate(batch.x, batch.y) as tf.Scalar);
    const training = await scalar(await plain.trainOnBatch(batch.x, batch.y));
    expect(Math.abs(training - inference)).toBeGreaterThan(1e-3);

    expect(useKerasBatchNormSemantics(raw)).toBe(52);
    expect(useKerasBatchNormSemantics(raw)).toBe(0);
    const patchedInference = await scalar(plain.evaluate(batch.x, batch.y) as tf.Scalar);
    const patchedTraining = await scalar(await plain.trainOnBatch(batch.x, batch.y));
    expect(Math.abs(patchedTraining - patchedInference)).toBeLessThanOrEqual(1e-5);
    raw.dispose();
  });
});

describe('unfreezing the top N blocks (phase 2)', () => {
  it('opens whole blocks from the top, never BatchNormalization, and reports the trainable parameters', () => {
    const spec = BACKBONES['mobilenet_v2_0.35'];
    const base = buildBackbone(spec.id, SIZE);
    const batchNorms = base.layers.filter((l) => l.getClassName() === 'BatchNormalization');

    expect(unfreezeTopBlocks(base, spec, 1)).toEqual({
      blocks: ['top'],
      layers: ['Conv_1'],
      trainableParams: 112 * 1280,
    });
    const two = unfreezeTopBlocks(base, spec, 2);
    expect(two.blocks).toEqual(['block_16', 'top']);
    expect(two.layers).toEqual(['block_16_expand', 'block_16_depthwise', 'block_16_project', 'Conv_1']);
    expect(two.trainableParams).toBe(56 * 336 + 3 * 3 * 336 + 336 * 112 + 112 * 1280);
    expect(batchNorms.every((l) => !l.trainable && l.trainableWeights.length === 0)).toBe(true);

    const model = composeModel(base, headConfig({ kind: 'gap-dense' }));
    model.compile({ optimizer: tf.train.adam(1e-5), loss: 'categoricalCrossentropy' });
    const trainable = model.trainableWeights.reduce(
      (n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1),
      0,
    );
    expect(trainable).toBe(two.trainableParams + 1280 * 7 + 7);

    const all = unfreezeTopBlocks(base, spec, 100);
    expect(all.blocks).toEqual(spec.blocks);
    const convParams = base.layers
      .filter((l) => l.getClassName() !== 'BatchNormalization')
      .reduce((n, l) => n + l.countParams(), 0);
    expect(all.trainableParams).toBe(convParams);
    expect(batchNorms.every((l) => !l.trainable)).toBe(true);
    expect(unfreezeTopBlocks(base, spec, 0).trainableParams).toBe(0);
    expect(() => unfreezeTopBlocks(base, spec, -1)).toThrow(RangeError);
    base.dispose();
  });
});
