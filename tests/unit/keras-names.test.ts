/**
 * Our VGG16 and ResNet50V2 against Keras's own applications source, not against our own model: the layers and
 * weights that keras/src/applications/{vgg16,resnet,resnet_v2}.py build (tests/fixtures/keras-applications/
 * keras-layers.json, extracted by executing those files at the commit recorded in the fixture; see extract.py
 * there). The Keras `*_notop.h5` files are written by those definitions, and our loader assigns weights by layer and
 * weight name, so a name or shape that differs here is a weight that would not load from the real file. (The `.h5`
 * fixtures of tests/unit/weights.test.ts are written from our own model, so they cannot catch this.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBackbone, type BackboneId } from '../../src/lib/model/backbones/index.ts';

interface KerasLayer {
  name: string;
  class: string;
  named_in_source: boolean;
  weights: Array<{ name: string; shape: number[] }>;
}
interface Fixture {
  source: { repository: string; commit: string; files: Record<string, string> };
  models: Record<'vgg16' | 'resnet50v2', KerasLayer[]>;
}

const fixture = JSON.parse(
  readFileSync(
    join(import.meta.dirname, '..', 'fixtures', 'keras-applications', 'keras-layers.json'),
    'utf8',
  ),
) as Fixture;

const built: tf.LayersModel[] = [];
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => {
  for (const m of built) m.dispose();
});

describe.each(['vgg16', 'resnet50v2'] as const)('%s against Keras applications source', (id) => {
  const keras = fixture.models[id];
  const ours = (): tf.LayersModel => {
    const model = buildBackbone(id as BackboneId, 224);
    built.push(model);
    return model;
  };
  let model: tf.LayersModel;

  it('the fixture comes from a recorded keras commit and file contents', () => {
    expect(fixture.source.repository).toBe('https://github.com/keras-team/keras');
    expect(fixture.source.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(Object.keys(fixture.source.files)).toContain(
      `keras/src/applications/${id === 'vgg16' ? 'vgg16' : 'resnet_v2'}.py`,
    );
    expect(keras.length).toBeGreaterThan(10);
  });

  it('has every weight Keras creates, by the same layer/weight name and shape, and no other', () => {
    model = ours();
    const kerasWeights = keras.flatMap((l) => l.weights.map((w) => `${w.name} ${w.shape.join('x')}`)).sort();
    const ourWeights = model.layers
      .flatMap((l) => l.weights.map((w) => `${w.originalName} ${w.shape.join('x')}`))
      .sort();
    expect(ourWeights).toEqual(kerasWeights);
  });

  it('names every layer the source names, with the same layer class', () => {
    const named = keras.filter((l) => l.named_in_source).map((l) => `${l.name}:${l.class}`);
    const ourNamed = new Set(model.layers.map((l) => `${l.name}:${l.getClassName()}`));
    expect(named.filter((n) => !ourNamed.has(n))).toEqual([]);
    // Unnamed layers (the input, ResNet's stride-2 shortcut poolings) carry no weights: only their count matters.
    expect(model.layers).toHaveLength(keras.length);
  });
});
