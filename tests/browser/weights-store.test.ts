import { describe, expect, it } from 'vitest';
import { listStoredWeights, readStoredWeights, storeWeights } from '../../src/worker/weights-store.ts';
import type { NamedWeight } from '../../src/lib/model/weights/assign.ts';

function weight(layer: string, name: string, shape: number[], start: number): NamedWeight {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    layer,
    weight: name,
    shape,
    origin: `/${layer}/${name}:0`,
    values: Float32Array.from({ length: size }, (_, i) => start + i / 7),
  };
}

describe('pretrained weights kept in this browser', () => {
  it('stores a backbone’s named arrays, lists them and reads them back bit-identical', async () => {
    const weights = [weight('Conv1', 'kernel', [3, 3, 3, 4], 0.5), weight('bn_Conv1', 'gamma', [4], -2)];
    await storeWeights('mobilenet_v2_0.35', 'model.json, group1-shard1of1.bin', weights);
    const listed = await listStoredWeights();
    expect(listed.find((w) => w.backbone === 'mobilenet_v2_0.35')).toMatchObject({
      label: 'model.json, group1-shard1of1.bin',
      bytes: (108 + 4) * 4,
    });
    const back = await readStoredWeights('mobilenet_v2_0.35');
    expect(back.label).toBe('model.json, group1-shard1of1.bin (stored in this browser)');
    expect(back.weights.map((w) => [w.layer, w.weight, w.shape, w.origin])).toEqual(
      weights.map((w) => [w.layer, w.weight, w.shape, w.origin]),
    );
    back.weights.forEach((w, i) => expect(Array.from(w.values)).toEqual(Array.from(weights[i]!.values)));
  });

  it('says plainly when nothing is stored for a backbone', async () => {
    await expect(readStoredWeights('vgg16')).rejects.toThrow(
      'no weights for vgg16 are stored in this browser yet: load them from files once',
    );
  });
});
