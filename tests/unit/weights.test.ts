import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import h5wasm, { type Dataset, type Group } from 'h5wasm/node';
import jpeg from 'jpeg-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertKerasH5File } from '../../src/cli/weights.ts';
import { buildBackbone } from '../../src/lib/model/backbones/index.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import {
  filesIOHandler,
  loadKerasH5Weights,
  loadTfjsLayersWeights,
  readKerasH5,
  readNamedWeights,
  toTfjsLayersFiles,
  WeightsMismatchError,
  type FileLike,
  type NamedWeight,
} from '../../src/lib/model/weights/index.ts';
import { randomKerasLayers, writeKerasH5, type H5Layer } from '../helpers/keras-h5.ts';

const root = join(import.meta.dirname, '..', '..');
const shared = join(root, '..', 'shared');
const tfjsDir = join(shared, 'weights', 'tfjs-mobilenet-v2-0.35-224-notop');
const h5Path = join(shared, 'weights', 'keras-mobilenet-v1-0.25-224-notop', 'mobilenet_2_5_224_tf_no_top.h5');
const originals = join(shared, 'data', 'ham10000', 'originals-600x450');

function fileLike(path: string, name = path.slice(path.lastIndexOf('/') + 1)): FileLike {
  return {
    name,
    arrayBuffer: async () => {
      const b = readFileSync(path);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  };
}

const filesIn = (dir: string): FileLike[] => readdirSync(dir).map((n) => fileLike(join(dir, n)));

const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** `layer/weight` → values, read back from the model's variables. */
async function weightMap(model: tf.LayersModel): Promise<Map<string, NamedWeight>> {
  return new Map((await readNamedWeights(model)).map((w) => [`${w.layer}/${w.weight}`, w]));
}

/** Real HAM10000 images, one per class for the first `count` classes of the manifest, resized to `size`. */
function realImages(count: number, size: number): tf.Tensor4D {
  const manifest = readFileSync(join(shared, 'data', 'ham10000', 'originals-600x450-manifest.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(','));
  const byClass = new Map<string, string>();
  for (const [imageId, dx] of manifest) if (dx && imageId && !byClass.has(dx)) byClass.set(dx, imageId);
  const ids = [...byClass.values()].slice(0, count);
  return tf.tidy(() =>
    tf.stack(
      ids.map((id) => {
        const { width, height, data } = jpeg.decode(readFileSync(join(originals, `${id}.jpg`)), {
          useTArray: true,
          formatAsRGBA: false,
        });
        const rgb = tf.tensor3d(data, [height, width, 3], 'int32');
        return tf.image.resizeBilinear(rgb.toFloat(), [size, size]);
      }),
    ),
  ) as tf.Tensor4D;
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const [v] = await d.data();
  d.dispose();
  return v as number;
}

async function expectMismatch(promise: Promise<unknown>): Promise<WeightsMismatchError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WeightsMismatchError);
  return error as WeightsMismatchError;
}

beforeAll(async () => {
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
  await h5wasm.ready;
});

describe('TensorFlow.js layers weights (real MobileNetV2 0.35, ImageNet)', () => {
  let reference: tf.LayersModel;
  let ours: tf.LayersModel;
  let images: tf.Tensor4D;

  beforeAll(async () => {
    reference = await tf.loadLayersModel(filesIOHandler(filesIn(tfjsDir)));
    ours = buildBackbone('mobilenet_v2_0.35', 224);
    images = tf.tidy(() => preprocessInput(realImages(4, 224), 'tf'));
  });

  afterAll(() => {
    images.dispose();
    reference.dispose();
    ours.dispose();
  });

  it('loads all 260 arrays by name and gives the same features as tf.loadLayersModel (max |diff| ≤ 1e-5)', async () => {
    const random = ours.predict(images) as tf.Tensor;
    const expected = reference.predict(images) as tf.Tensor;
    // The comparison means something: before loading, our randomly initialised backbone is far off.
    expect(await maxAbsDiff(random, expected)).toBeGreaterThan(0.1);

    const report = await loadTfjsLayersWeights(
      ours,
      filesIOHandler(filesIn(tfjsDir)),
      'tfjs-mobilenet-v2-0.35',
    );
    expect(report).toMatchObject({ arrays: 260, params: 410_208 });

    const before = tf.memory().numTensors;
    const actual = ours.predict(images) as tf.Tensor;
    expect(actual.shape).toEqual([4, 7, 7, 1280]);
    const diff = await maxAbsDiff(actual, expected);
    console.info(`MobileNetV2 0.35 on 4 HAM10000 images: max |ours - tf.loadLayersModel| = ${diff}`);
    expect(diff).toBeLessThanOrEqual(1e-5);
    const moments = tf.moments(actual);
    const [mean, variance] = [(await moments.mean.data())[0], (await moments.variance.data())[0]];
    tf.dispose([moments.mean, moments.variance]);
    expect(mean).toBeGreaterThan(0.05); // ReLU6 features of real images: not all zero
    expect(variance).toBeGreaterThan(0.01);
    actual.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([random, expected]);
  });

  it('names the weights that do not fit: MobileNetV2 0.35 files into a MobileNetV2 0.5 backbone', async () => {
    const wider = buildBackbone('mobilenet_v2_0.5', 96);
    const kernel = await wider.getLayer('Conv1').weights[0]?.read().data();
    const error = await expectMismatch(
      loadTfjsLayersWeights(wider, filesIOHandler(filesIn(tfjsDir)), 'v2-0.35'),
    );
    expect(error.message).toMatch(
      /^v2-0\.35 does not fit the model: block_1_project\/kernel has shape \[1, 1, 48, 8\] \(at model\.json:block_1_project\/kernel\), the model expects \[1, 1, 48, 16\]/,
    );
    expect(error.problems.every((p) => p.kind === 'shape')).toBe(true);
    // All or nothing: the failed load changed no weight.
    expect(await wider.getLayer('Conv1').weights[0]?.read().data()).toEqual(kernel);
    wider.dispose();
  });

  it('says which shard is missing, and rejects a folder without model.json', async () => {
    const onlyJson = [fileLike(join(tfjsDir, 'model.json'))];
    await expect(tf.loadLayersModel(filesIOHandler(onlyJson))).rejects.toThrow(
      'model.json lists the shard group1-shard1of1.bin, which is not among the files',
    );
    await expect(filesIOHandler([fileLike(join(tfjsDir, 'group1-shard1of1.bin'))]).load?.()).rejects.toThrow(
      'no model.json among the files (group1-shard1of1.bin)',
    );
  });
});

describe('damaged TensorFlow.js files are named, with what to do', () => {
  const json = readFileSync(join(tfjsDir, 'model.json'), 'utf8');
  const shard = readFileSync(join(tfjsDir, 'group1-shard1of1.bin'));
  const bytesFile = (name: string, bytes: Uint8Array): FileLike => ({
    name,
    // A copy of exactly these bytes (Buffer.slice would share the whole file).
    arrayBuffer: async () => new Uint8Array(bytes).buffer as ArrayBuffer,
  });
  const files = (modelJson: string, shardBytes: Uint8Array) => [
    bytesFile('model.json', new TextEncoder().encode(modelJson)),
    bytesFile('group1-shard1of1.bin', shardBytes),
  ];
  const load = async (modelJson: string, shardBytes: Uint8Array) => {
    const model = buildBackbone('mobilenet_v2_0.35', 96);
    try {
      return await loadTfjsLayersWeights(model, filesIOHandler(files(modelJson, shardBytes)), 'model.json');
    } finally {
      model.dispose();
    }
  };

  it('a shard cut short names the shard and the weight where the data runs out', async () => {
    // The manifest lists the moving statistics last; 11,520 bytes short ends inside block_16_depthwise_BN's.
    await expect(load(json, shard.subarray(0, shard.byteLength - 11_520))).rejects.toThrow(
      'group1-shard1of1.bin holds 1,629,312 bytes, 11,520 fewer than the 1,640,832 that model.json describes: ' +
        'the data runs out at the weight block_16_depthwise_BN/moving_variance. The file was cut short (an interrupted download or ' +
        'copy?): get it again.',
    );
  });

  it('an odd-length shard is refused by name, not as a typed-array error', async () => {
    await expect(load(json, shard.subarray(0, shard.byteLength - 3))).rejects.toThrow(
      /^group1-shard1of1\.bin holds 1,640,829 bytes, 3 fewer than the 1,640,832 that model\.json describes: the data runs out at the weight Conv_1_bn\/moving_variance\./,
    );
  });

  it('a shard with extra bytes is refused, not loaded silently', async () => {
    const padded = new Uint8Array(shard.byteLength + 64);
    padded.set(shard);
    await expect(load(json, padded)).rejects.toThrow(
      'group1-shard1of1.bin holds 1,640,896 bytes, 64 more than the 1,640,832 that model.json describes: the ' +
        'shard does not belong to this model.json (or was altered). Use the shard files that came with this ' +
        'model.json.',
    );
  });

  it('an edited shape in model.json names the weight and both shapes', async () => {
    const edited = json.replace(
      '{"name": "Conv1/kernel", "shape": [3, 3, 3, 16]',
      '{"name": "Conv1/kernel", "shape": [3, 3, 16, 3]',
    );
    expect(edited).not.toBe(json);
    const error = await expectMismatch(load(edited, shard));
    expect(error.message).toBe(
      'model.json does not fit the model: Conv1/kernel has shape [3, 3, 16, 3] (at model.json:Conv1/kernel), ' +
        'the model expects [3, 3, 3, 16]',
    );
  });
});

describe('Keras .h5 weights', () => {
  it('real MobileNet v1 0.25 .h5: all 135 arrays land in their layers, byte-equal to what h5wasm reads', async () => {
    const model = buildBackbone('mobilenet_v1_0.25', 224);
    const report = await loadKerasH5Weights(model, readFileSync(h5Path), 'mobilenet_2_5_224_tf_no_top.h5');
    expect(report).toMatchObject({ arrays: 135, params: 218_544, kerasVersion: '2.0.4' });

    // An independent read of the file with h5wasm's own API, walking Keras's layout.
    const ours = await weightMap(model);
    const file = new h5wasm.File(h5Path, 'r');
    let compared = 0;
    const mismatches: string[] = [];
    try {
      for (const layer of file.attrs['layer_names']?.value as string[]) {
        const group = file.get(layer) as Group;
        const names = group.attrs['weight_names']?.value;
        for (const stored of Array.isArray(names) ? (names as string[]) : []) {
          const dataset = group.get(stored) as Dataset;
          const weight = stored.slice(stored.lastIndexOf('/') + 1).replace(/:0$/, '');
          const mine = ours.get(`${layer}/${weight}`);
          const theirs = dataset.value as Float32Array;
          if (
            !mine ||
            !bytesOf(mine.values).equals(bytesOf(theirs)) ||
            mine.shape.join() !== dataset.shape?.join()
          ) {
            mismatches.push(`${layer}/${stored}`);
          }
          compared++;
        }
      }
    } finally {
      file.close();
    }
    expect(mismatches).toEqual([]);
    expect(compared).toBe(135);
    expect(ours.size).toBe(135);
    model.dispose();
  });

  // Real VGG16/ResNet50V2 files are 58/94 MB and not available here: the test writes files with Keras's layout and
  // naming (VGG16's file still uses Keras 1 names, block1_conv1_W_1:0) and checks every array lands in its layer.
  it.each([
    ['vgg16', 'keras1', 26, 14_714_688],
    ['resnet50v2', 'keras2', 270, 23_564_800],
  ] as const)(
    '%s: every array of a Keras-layout .h5 (%s names) lands in its layer',
    async (id, naming, arrays, params) => {
      const model = buildBackbone(id, 96);
      const layers = randomKerasLayers(model, naming, arrays);
      const bytes = await writeKerasH5(layers);
      const report = await loadKerasH5Weights(model, bytes, `${id}.h5`);
      expect(report).toMatchObject({ arrays, params });
      const ours = await weightMap(model);
      const mismatches: string[] = [];
      let compared = 0;
      for (const layer of layers) {
        for (const w of layer.weights) {
          const weight =
            naming === 'keras1'
              ? { W: 'kernel', b: 'bias' }[w.stored.split('_').at(-2) as 'W' | 'b']
              : w.stored.split('/')[1]?.replace(/:0$/, '');
          const mine = ours.get(`${layer.name}/${weight}`);
          if (!mine || !bytesOf(mine.values).equals(bytesOf(w.values)))
            mismatches.push(`${layer.name}/${w.stored}`);
          compared++;
        }
      }
      expect(mismatches).toEqual([]);
      expect(compared).toBe(arrays);
      model.dispose();
    },
  );

  describe('errors that name the weight (MobileNet v1 0.25)', () => {
    let model: tf.LayersModel;
    let layers: H5Layer[];
    const edit = (fn: (ls: H5Layer[]) => void): H5Layer[] => {
      const copy = layers.map((l) => ({ name: l.name, weights: [...l.weights] }));
      fn(copy);
      return copy;
    };
    const layer = (ls: H5Layer[], name: string): H5Layer => ls.find((l) => l.name === name) as H5Layer;

    beforeAll(() => {
      model = buildBackbone('mobilenet_v1_0.25', 96);
      layers = randomKerasLayers(model, 'keras2', 5);
    });
    afterAll(() => model.dispose());

    it('a missing weight, and nothing is changed', async () => {
      const kernel = await model.getLayer('conv1').weights[0]?.read().data();
      const bytes = await writeKerasH5(edit((ls) => layer(ls, 'conv_pw_13_bn').weights.pop()));
      const error = await expectMismatch(loadKerasH5Weights(model, bytes, 'cut.h5'));
      expect(error.message).toBe(
        'cut.h5 does not fit the model: missing conv_pw_13_bn/moving_variance (shape [256])',
      );
      expect(await model.getLayer('conv1').weights[0]?.read().data()).toEqual(kernel);
    });

    it('an extra layer and an extra weight', async () => {
      const bytes = await writeKerasH5(
        edit((ls) => {
          const values = new Float32Array(256 * 7);
          ls.push({
            name: 'predictions',
            weights: [{ stored: 'predictions/kernel:0', shape: [256, 7], values }],
          });
          const bias = { stored: 'conv1/bias:0', shape: [8], values: new Float32Array(8) };
          layer(ls, 'conv1').weights.push(bias);
        }),
      );
      const error = await expectMismatch(loadKerasH5Weights(model, bytes, 'extra.h5'));
      expect(error.problems.map((p) => `${p.kind} ${p.layer}/${p.weight}`).sort()).toEqual([
        'extra conv1/bias',
        'extra predictions/kernel',
      ]);
      expect(error.message).toContain(
        'extra predictions/kernel (shape [256, 7], at /predictions/predictions/kernel:0): the model has no such weight',
      );
    });

    it('a mis-shaped weight', async () => {
      const bytes = await writeKerasH5(
        edit((ls) => {
          const values = new Float32Array(3 * 3 * 3 * 16);
          layer(ls, 'conv1').weights[0] = { stored: 'conv1/kernel:0', shape: [3, 3, 3, 16], values };
        }),
      );
      const error = await expectMismatch(loadKerasH5Weights(model, bytes, 'wide.h5'));
      expect(error.message).toBe(
        'wide.h5 does not fit the model: conv1/kernel has shape [3, 3, 3, 16] (at /conv1/conv1/kernel:0), ' +
          'the model expects [3, 3, 3, 8]',
      );
    });

    it('files that are not Keras weights', async () => {
      await expect(
        loadKerasH5Weights(model, new TextEncoder().encode('not hdf5'), 'notes.h5'),
      ).rejects.toThrow('notes.h5 is not an HDF5 file (no HDF5 signature)');
      const noNames = await writeKerasH5(layers, { layerNames: ['conv1', 'conv_dw_99'] });
      await expect(readKerasH5(noNames, 'odd.h5')).rejects.toThrow(
        'odd.h5: layer_names lists "conv_dw_99" but the file has no group "conv_dw_99"',
      );
    });
  });
});

describe('convert: Keras .h5 → TensorFlow.js files', () => {
  let out: string;
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'weights-convert-'));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('round-trips the real MobileNet v1 0.25 .h5: tf.loadLayersModel of the output has identical weights', async () => {
    const result = await convertKerasH5File('mobilenet_v1_0.25', h5Path, out);
    expect(result).toMatchObject({ arrays: 135, params: 218_544, dir: join(out, 'mobilenet_v1_0.25') });
    expect(readdirSync(result.dir).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);

    const loaded = await tf.loadLayersModel(filesIOHandler(filesIn(result.dir)));
    const h5 = await readKerasH5(readFileSync(h5Path));
    const converted = await weightMap(loaded);
    const mismatches = h5.layers
      .flatMap((l) => l.weights)
      .filter(
        (w) =>
          !bytesOf(converted.get(`${w.layer}/${w.weight}`)?.values ?? new Float32Array()).equals(
            bytesOf(w.values),
          ),
      );
    expect(mismatches.map((w) => w.origin)).toEqual([]);
    expect(converted.size).toBe(135);
    expect(loaded.layers.map((l) => l.name)).toEqual(
      buildBackbone('mobilenet_v1_0.25', 224).layers.map((l) => l.name),
    );
    loaded.dispose();
  });

  it('splits weights into shards of at most shardBytes that load back identically', async () => {
    const model = buildBackbone('mobilenet_v1_0.25', 96);
    const files = await toTfjsLayersFiles(model, { shardBytes: 300_000 });
    expect(files.map((f) => f.name)).toEqual([
      'model.json',
      'group1-shard1of3.bin',
      'group1-shard2of3.bin',
      'group1-shard3of3.bin',
    ]);
    expect(files.slice(1).every((f) => f.bytes.byteLength <= 300_000)).toBe(true);
    const handler = filesIOHandler(
      files.map((f) => ({ name: f.name, arrayBuffer: async () => f.bytes.slice().buffer as ArrayBuffer })),
    );
    const copy = buildBackbone('mobilenet_v1_0.25', 96);
    await loadTfjsLayersWeights(copy, handler);
    const [a, b] = await Promise.all([weightMap(model), weightMap(copy)]);
    for (const [key, w] of a)
      expect(bytesOf(b.get(key)?.values as Float32Array).equals(bytesOf(w.values)), key).toBe(true);
    model.dispose();
    copy.dispose();
  });

  it('npm run weights -- convert writes public/models-style output and prints JSON', () => {
    const printed = execFileSync(
      'npm',
      ['run', '-s', 'weights', '--', 'convert', 'mobilenet_v1_0.25', h5Path, '--out', join(out, 'cli')],
      { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const result = JSON.parse(printed) as { dir: string; files: { name: string; bytes: number }[] };
    expect(result.dir).toBe(join(out, 'cli', 'mobilenet_v1_0.25'));
    expect(result.files.find((f) => f.name === 'group1-shard1of1.bin')?.bytes).toBe(218_544 * 4);
    expect(readdirSync(result.dir).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
  });
});
