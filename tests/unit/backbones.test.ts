import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BACKBONE_IDS,
  BACKBONES,
  buildBackbone,
  getBackbone,
  parseBackboneId,
  summarizeBackbone,
  type BackboneId,
  type ModelSummary,
} from '../../src/lib/model/backbones/index.ts';

const root = join(import.meta.dirname, '..', '..');
const shared = join(root, '..', 'shared');
const tfjsMobileNetV2 = join(shared, 'weights', 'tfjs-mobilenet-v2-0.35-224-notop', 'model.json');

/** Keras's parameter counts for include_top=False, as listed in the issue (from Keras's model summaries). */
const KERAS_PARAMS: Partial<Record<BackboneId, number>> = {
  vgg16: 14_714_688,
  resnet50v2: 23_564_800,
  'mobilenet_v2_1.0': 2_257_984,
  'mobilenet_v2_0.35': 410_208,
  'mobilenet_v1_0.25': 218_544,
};

const models = new Map<BackboneId, tf.LayersModel>();
const summaries = new Map<BackboneId, ModelSummary>();

beforeAll(async () => {
  // WASM: 6x faster than the CPU backend for the forward passes below.
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
  for (const id of BACKBONE_IDS) {
    const model = buildBackbone(id, 224);
    models.set(id, model);
    summaries.set(id, summarizeBackbone(id, model));
  }
});

afterAll(() => {
  for (const m of models.values()) m.dispose();
});

const model = (id: BackboneId): tf.LayersModel => models.get(id) as tf.LayersModel;
const summary = (id: BackboneId): ModelSummary => summaries.get(id) as ModelSummary;
const layerOf = (id: BackboneId, name: string) => summary(id).layers.find((l) => l.name === name);

describe('backbone registry', () => {
  it('has the ten backbones of the issue, with ids mobilenet_v2_<alpha>, mobilenet_v1_<alpha>, vgg16, resnet50v2', () => {
    expect([...BACKBONE_IDS].sort()).toEqual(
      [
        'mobilenet_v2_0.35',
        'mobilenet_v2_0.5',
        'mobilenet_v2_0.75',
        'mobilenet_v2_1.0',
        'mobilenet_v1_0.25',
        'mobilenet_v1_0.5',
        'mobilenet_v1_0.75',
        'mobilenet_v1_1.0',
        'vgg16',
        'resnet50v2',
      ].sort(),
    );
    expect(parseBackboneId('mobilenet_v2_1')).toBe('mobilenet_v2_1.0');
    expect(parseBackboneId('MobileNet_V2_0.50')).toBe('mobilenet_v2_0.5');
    expect(() => parseBackboneId('resnet50')).toThrow(/unknown backbone "resnet50"; choose one of/);
  });

  it('names the official Keras weights file of each backbone, with its size', () => {
    for (const spec of Object.values(BACKBONES)) {
      const w = spec.weights;
      expect(w.url, spec.id).toMatch(/^https:\/\/storage\.googleapis\.com\/tensorflow\/keras-applications\//);
      expect(w.url.endsWith(`/${w.fileName}`), spec.id).toBe(true);
      expect(w.fileName, spec.id).toMatch(/no_?top\.h5$/);
      expect(w.approxBytes, spec.id).toBe(w.bytes ?? w.approxBytes);
    }
    // The one official file at hand has exactly the recorded size.
    const h5 = join(shared, 'weights', 'keras-mobilenet-v1-0.25-224-notop', 'mobilenet_2_5_224_tf_no_top.h5');
    expect(statSync(h5).size).toBe(BACKBONES['mobilenet_v1_0.25'].weights.bytes);
    expect(BACKBONES['mobilenet_v1_0.25'].weights.fileName).toBe('mobilenet_2_5_224_tf_no_top.h5');
    expect(BACKBONES.vgg16.weights.bytes).toBe(58_889_256);
    expect(BACKBONES.resnet50v2.weights.bytes).toBe(94_668_760);
  });

  it("parameter counts at 224 equal Keras's", () => {
    for (const [id, params] of Object.entries(KERAS_PARAMS) as [BackboneId, number][]) {
      expect(summary(id).params, id).toBe(params);
    }
    // The other widths against the registry's figures (from Keras's summaries too).
    for (const id of BACKBONE_IDS) expect(summary(id).params, id).toBe(BACKBONES[id].params);
  });

  it('parameter counts do not depend on the input size; output sizes follow Keras padding (odd sizes too)', () => {
    const cases: [BackboneId, number, number[]][] = [
      ['mobilenet_v2_0.35', 96, [3, 3, 1280]],
      ['mobilenet_v2_0.35', 97, [4, 4, 1280]],
      // MobileNet v1 pads bottom/right by one before each stride-2 depthwise conv, whatever the parity.
      ['mobilenet_v1_0.25', 97, [3, 3, 256]],
      ['mobilenet_v1_0.25', 160, [5, 5, 256]],
    ];
    for (const [id, size, output] of cases) {
      const m = buildBackbone(id, size);
      expect(m.outputs[0]?.shape, `${id}@${size}`).toEqual([null, ...output]);
      expect(m.countParams()).toBe(BACKBONES[id].params);
      m.dispose();
    }
    expect(() => buildBackbone('vgg16', 95)).toThrow(/from 96 to 1024, got 95/);
    expect(() => buildBackbone('vgg16', 224.5)).toThrow(RangeError);
  });

  it('every backbone outputs its outputLayer, has its gradCamLayer, and 7x7 features at 224', () => {
    for (const id of BACKBONE_IDS) {
      const spec = BACKBONES[id];
      const layers = model(id).layers;
      expect(layers[layers.length - 1]?.name, id).toBe(spec.outputLayer);
      expect(model(id).getLayer(spec.gradCamLayer), id).toBeDefined();
      expect(model(id).outputs[0]?.shape, id).toEqual([null, 7, 7, spec.featureChannels]);
      expect(summary(id).input).toEqual([224, 224, 3]);
    }
  });

  it('blocks cover every layer with weights, bottom to top, in the order of the model', () => {
    for (const id of BACKBONE_IDS) {
      const spec = BACKBONES[id];
      const seen: string[] = [];
      for (const layer of model(id).layers) {
        const block = spec.blockOf(layer.name);
        if (block === null) {
          expect(layer.getClassName(), `${id}: ${layer.name} is outside every block`).toBe('InputLayer');
          continue;
        }
        expect(spec.blocks, `${id}: ${layer.name} → ${block}`).toContain(block);
        if (seen[seen.length - 1] !== block) seen.push(block);
      }
      expect(seen, id).toEqual(spec.blocks);
    }
  });
});

describe('layers as Keras names and shapes them', () => {
  interface KerasLayerJson {
    name: string;
    class_name: string;
    config: Record<string, unknown>;
    inbound_nodes: [string, number, number, unknown][][];
  }

  it('MobileNetV2 0.35 matches the layers of a real Keras export (tfjs model.json) one for one', () => {
    const json = JSON.parse(readFileSync(tfjsMobileNetV2, 'utf8')) as {
      modelTopology: { config: { layers: KerasLayerJson[] } };
      weightsManifest: { weights: { name: string; shape: number[] }[] }[];
    };
    // That export predates Keras 2.2.5, which replaced Conv1_pad + 'valid' by Conv1 with 'same' (the same
    // padding for stride 2: nothing top/left, one bottom/right on even sizes).
    const reference = json.modelTopology.config.layers.filter((l) => l.name !== 'Conv1_pad');
    const ours = model('mobilenet_v2_0.35').layers;
    expect(ours.map((l) => l.name)).toEqual(reference.map((l) => l.name));
    expect(ours.map((l) => l.getClassName())).toEqual(
      reference.map((l) => (l.class_name === 'Model' ? 'InputLayer' : l.class_name)),
    );
    const keys = [
      'filters',
      'kernel_size',
      'strides',
      'use_bias',
      'epsilon',
      'momentum',
      'max_value',
      'padding',
    ];
    for (const [i, ref] of reference.entries()) {
      const config = ours[i]?.getConfig() as Record<string, unknown>;
      for (const key of keys) {
        if (!(key in ref.config) || (ref.name === 'Conv1' && key === 'padding')) continue;
        const snake = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
        const value = config[snake] ?? config[key];
        expect(value, `${ref.name}.${key}`).toEqual(ref.config[key]);
      }
      const inbound = (ref.inbound_nodes[0] ?? []).map(([n]) => (n === 'Conv1_pad' ? 'input_1' : n));
      const ourInbound = ours[i]?.inboundNodes[0]?.inboundLayers.map((l) => l.name) ?? [];
      expect(ourInbound, `inputs of ${ref.name}`).toEqual(inbound);
    }
    const refWeights = json.weightsManifest
      .flatMap((g) => g.weights)
      .map((w) => `${w.name} ${w.shape.join('x')}`);
    const ourWeights = ours.flatMap((l) => l.weights.map((w) => `${w.originalName} ${w.shape.join('x')}`));
    expect(ourWeights.sort()).toEqual(refWeights.sort());
    expect(layerOf('mobilenet_v2_0.35', 'out_relu')?.output).toEqual([7, 7, 1280]);
  });

  it('VGG16: 19 layers, block<i>_conv<j> and block<i>_pool', () => {
    expect(
      summary('vgg16').layers.map((l) => `${l.name}:${l.class}:${l.output.join('x')}:${l.params}`),
    ).toEqual([
      'input_1:InputLayer:224x224x3:0',
      'block1_conv1:Conv2D:224x224x64:1792',
      'block1_conv2:Conv2D:224x224x64:36928',
      'block1_pool:MaxPooling2D:112x112x64:0',
      'block2_conv1:Conv2D:112x112x128:73856',
      'block2_conv2:Conv2D:112x112x128:147584',
      'block2_pool:MaxPooling2D:56x56x128:0',
      'block3_conv1:Conv2D:56x56x256:295168',
      'block3_conv2:Conv2D:56x56x256:590080',
      'block3_conv3:Conv2D:56x56x256:590080',
      'block3_pool:MaxPooling2D:28x28x256:0',
      'block4_conv1:Conv2D:28x28x512:1180160',
      'block4_conv2:Conv2D:28x28x512:2359808',
      'block4_conv3:Conv2D:28x28x512:2359808',
      'block4_pool:MaxPooling2D:14x14x512:0',
      'block5_conv1:Conv2D:14x14x512:2359808',
      'block5_conv2:Conv2D:14x14x512:2359808',
      'block5_conv3:Conv2D:14x14x512:2359808',
      'block5_pool:MaxPooling2D:7x7x512:0',
    ]);
  });

  it('ResNet50V2: 190 layers; stem, pre-activation blocks, stride-2 last blocks, post_bn/post_relu', () => {
    const s = summary('resnet50v2');
    expect(s.layers).toHaveLength(190);
    expect(s.layers.slice(0, 12).map((l) => l.name)).toEqual([
      'input_1',
      'conv1_pad',
      'conv1_conv',
      'pool1_pad',
      'pool1_pool',
      'conv2_block1_preact_bn',
      'conv2_block1_preact_relu',
      'conv2_block1_1_conv',
      'conv2_block1_1_bn',
      'conv2_block1_1_relu',
      'conv2_block1_2_pad',
      'conv2_block1_2_conv',
    ]);
    const shapes: Record<string, number[]> = {
      conv1_conv: [112, 112, 64],
      pool1_pool: [56, 56, 64],
      conv2_block1_0_conv: [56, 56, 256],
      conv2_block3_out: [28, 28, 256],
      max_pooling2d: [28, 28, 256],
      conv3_block4_out: [14, 14, 512],
      max_pooling2d_1: [14, 14, 512],
      conv4_block6_out: [7, 7, 1024],
      max_pooling2d_2: [7, 7, 1024],
      conv5_block3_out: [7, 7, 2048],
      post_relu: [7, 7, 2048],
    };
    for (const [name, shape] of Object.entries(shapes))
      expect(layerOf('resnet50v2', name)?.output, name).toEqual(shape);
    expect(layerOf('resnet50v2', 'conv1_conv')?.params).toBe(9472);
    expect(layerOf('resnet50v2', 'conv2_block1_1_conv')?.params).toBe(4096); // no bias
    expect(layerOf('resnet50v2', 'conv2_block1_3_conv')?.params).toBe(16640); // bias
    expect(layerOf('resnet50v2', 'post_bn')?.params).toBe(8192);
    const classes = new Set(s.layers.map((l) => l.class));
    expect([...classes].sort()).toEqual(
      [
        'Activation',
        'Add',
        'BatchNormalization',
        'Conv2D',
        'InputLayer',
        'MaxPooling2D',
        'ZeroPadding2D',
      ].sort(),
    );
  });

  it('MobileNet v1 1.0: conv1, 13 dw/pw blocks, 1024 features', () => {
    const s = summary('mobilenet_v1_1.0');
    expect(s.layers).toHaveLength(86);
    expect(layerOf('mobilenet_v1_1.0', 'conv_pad_2')?.output).toEqual([113, 113, 64]);
    expect(layerOf('mobilenet_v1_1.0', 'conv_dw_2')?.output).toEqual([56, 56, 64]);
    expect(layerOf('mobilenet_v1_1.0', 'conv_pw_13_relu')?.output).toEqual([7, 7, 1024]);
  });
});

describe('forward passes on a small input', () => {
  it('VGG16 and ResNet50V2 run at 96x96 and give finite features, without leaking tensors', async () => {
    for (const id of ['vgg16', 'resnet50v2'] as const) {
      const m = getBackbone(id).build(96);
      const before = tf.memory().numTensors;
      const x = tf.randomUniform([1, 96, 96, 3], -1, 1, 'float32', 7);
      const y = m.predict(x) as tf.Tensor;
      expect(y.shape).toEqual([1, 3, 3, BACKBONES[id].featureChannels]);
      const values = await y.data();
      expect(values.every(Number.isFinite)).toBe(true);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).toBe(before);
      m.dispose();
    }
  });
});

describe('cli summary', () => {
  it('prints {backbone, input, params, layers} as JSON, the same as summarizeBackbone', () => {
    const out = execFileSync(
      'npm',
      ['run', '-s', 'cli', '--', 'summary', 'mobilenet_v1_0.25', '--size', '128'],
      {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const printed = JSON.parse(out) as ModelSummary;
    expect(Object.keys(printed)).toEqual(['backbone', 'input', 'params', 'layers']);
    expect(printed.input).toEqual([128, 128, 3]);
    expect(printed.params).toBe(218_544);
    const m = buildBackbone('mobilenet_v1_0.25', 128);
    expect(printed).toEqual(summarizeBackbone('mobilenet_v1_0.25', m));
    m.dispose();
    expect(printed.layers[1]).toEqual({ name: 'conv1', class: 'Conv2D', output: [64, 64, 8], params: 216 });
  });
});
