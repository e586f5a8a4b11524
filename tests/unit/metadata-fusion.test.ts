/**
 * Metadata fusion: the encoder on the real HAM10000 metadata, the fused heads (concatenation and MetaBlock), and the
 * training loop with a fused head on real images and their real metadata, on tfjs's CPU backend.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { DX, dxIndex } from '../../src/lib/data/dx.ts';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import type { LesionRecord } from '../../src/lib/data/types.ts';
import { metadataWidth, takesMetadata } from '../../src/lib/model/fused-head.ts';
import { metadataFusion } from '../../src/lib/model/fusion.ts';
import { buildHead, composeModel, headConfig } from '../../src/lib/model/heads.ts';
import {
  encodeMetadata,
  encodeRecords,
  fitMetadataEncoding,
  metadataDim,
  metadataFeatureNames,
  MetadataEncodingError,
  parseMetadataEncoding,
  recordValues,
} from '../../src/lib/model/metadata-features.ts';
import { gradCamImage } from '../../src/lib/model/gradcam.ts';
import { predictImage } from '../../src/lib/predict.ts';
import { exportRunZip, importRunZip } from '../../src/lib/runs/export.ts';
import { loadRunModel, modelArtifacts } from '../../src/lib/runs/model.ts';
import { createRun, modelConfigFor } from '../../src/lib/runs/record.ts';
import { MemoryImageDataset } from '../../src/lib/train/dataset.ts';
import { poolingSplit } from '../../src/lib/train/featureCache.ts';
import type { EpochLog } from '../../src/lib/train/logs.ts';
import {
  predict,
  predictFeatures,
  train,
  TrainConfigError,
  type Network,
  type TrainOptions,
} from '../../src/lib/train/loop.ts';

const DATA = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'ham10000');
const SIZE = 16;

let records: LesionRecord[];

beforeAll(async () => {
  await tf.setBackend('cpu');
  records = parseMetadata(
    readFileSync(join(DATA, 'HAM10000_metadata.csv'), 'utf8'),
    'HAM10000_metadata.csv',
  ).records;
});

describe('the metadata encoder', () => {
  it('fits age mean/sd and vocabularies on the given (train) records only, "unknown" its own value', () => {
    const encoding = fitMetadataEncoding(records.map(recordValues));
    const ages = records.map((r) => r.age).filter((a): a is number => a !== null);
    expect(ages.length).toBe(10015 - 57);
    const mean = ages.reduce((a, b) => a + b, 0) / ages.length;
    expect(encoding.ageMean).toBeCloseTo(mean, 10);
    // Imputed ages sit at the mean: the sd is over all 10,015 rows with the 57 missing at the mean.
    const sd = Math.sqrt(ages.reduce((s, a) => s + (a - mean) ** 2, 0) / records.length);
    expect(encoding.ageSd).toBeCloseTo(sd, 10);
    expect(encoding.sexes).toEqual(['female', 'male', 'unknown']);
    expect(encoding.localizations).toHaveLength(15);
    expect(encoding.localizations).toContain('unknown');
    expect(encoding.localizations).toContain('acral');
    expect(metadataDim(encoding)).toBe(1 + 3 + 15);
    expect(metadataFeatureNames(encoding)[0]).toBe('age (standardised)');

    // Fitted on a subset without "acral": an acral lesion then encodes as unknown site.
    const train = records.filter((r) => r.localization !== 'acral').slice(0, 2000);
    const sub = fitMetadataEncoding(train.map(recordValues));
    expect(sub.localizations).not.toContain('acral');
    const v = encodeMetadata(sub, { age: null, sex: 'male', localization: 'acral' });
    expect(v[0]).toBe(0); // imputed with the train mean, standardised
    expect(v[1 + sub.sexes.indexOf('male')]).toBe(1);
    expect(v[1 + sub.sexes.length + sub.localizations.indexOf('unknown')]).toBe(1);
    expect(v.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('encodes each record into one row; missing and unseen values go to "unknown"', () => {
    const encoding = fitMetadataEncoding(records.map(recordValues));
    const rows = encodeRecords(encoding, records.slice(0, 50).map(recordValues));
    const dim = metadataDim(encoding);
    expect(rows.length).toBe(50 * dim);
    const first = records[0]!;
    const row = rows.subarray(0, dim);
    expect(row[0]).toBeCloseTo((first.age! - encoding.ageMean) / encoding.ageSd, 6);
    expect(row[1 + encoding.sexes.indexOf(first.sex!)]).toBe(1);
    expect(row[1 + encoding.sexes.length + encoding.localizations.indexOf(first.localization!)]).toBe(1);
    const blank = encodeMetadata(encoding, { age: null, sex: '', localization: 'the moon' });
    expect(blank[1 + encoding.sexes.indexOf('unknown')]).toBe(1);
    expect(blank[1 + encoding.sexes.length + encoding.localizations.indexOf('unknown')]).toBe(1);
  });

  it('round-trips through JSON and refuses a damaged saved encoding by field', () => {
    const encoding = fitMetadataEncoding(records.slice(0, 500).map(recordValues));
    expect(parseMetadataEncoding(JSON.parse(JSON.stringify(encoding)))).toEqual(encoding);
    expect(() => parseMetadataEncoding({ ...encoding, ageSd: 0 }, 'metadata.json')).toThrow(
      /metadata.json: "ageSd"/,
    );
    expect(() => parseMetadataEncoding({ ...encoding, sexes: ['male'] })).toThrow(/"sexes".*unknown/);
    expect(() => parseMetadataEncoding({ ...encoding, format: 'x' })).toThrow(MetadataEncodingError);
  });
});

describe('the fused head', () => {
  for (const fusion of ['concat', 'metablock'] as const) {
    it(`${fusion}: takes [features, metadata], gives 7 probabilities, gradients reach both inputs`, async () => {
      const config = headConfig({ kind: 'gap-dense', metadata: metadataFusion({ features: 19, fusion }) });
      const head = buildHead([4, 4, 24], config);
      try {
        expect(takesMetadata(head)).toBe(true);
        expect(metadataWidth(head)).toBe(19);
        expect(head.inputs.map((i) => i.shape)).toEqual([
          [null, 4, 4, 24],
          [null, 19],
        ]);
        expect(head.outputs[0]!.shape).toEqual([null, 7]);
        if (fusion === 'metablock') {
          expect(head.getLayer('metablock_f').outputShape).toEqual([null, 24]);
          expect(head.getLayer('metablock_g').outputShape).toEqual([null, 24]);
        }
        const x = tf.randomUniform([3, 4, 4, 24], 0, 6, 'float32', 1);
        const m = tf.randomNormal([3, 19], 0, 1, 'float32', 2);
        const y = tf.oneHot(tf.tensor1d([0, 3, 6], 'int32'), 7);
        const [gx, gm] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.losses.softmaxCrossEntropy(y, head.apply([a, b]) as tf.Tensor),
        )([x, m]);
        const probs = head.predict([x, m]) as tf.Tensor;
        const sums = await tf.sum(probs, 1).data();
        for (const s of sums) expect(s).toBeCloseTo(1, 5);
        expect((await tf.max(tf.abs(gx!)).data())[0]).toBeGreaterThan(0);
        expect((await tf.max(tf.abs(gm!)).data())[0]).toBeGreaterThan(0);
        // The loop's feature cache: the pooling comes off, the rest takes [pooled, metadata] with the same layers.
        const { pool, rest } = poolingSplit(head);
        expect(pool).toBe(true);
        expect(rest.inputs.map((i) => i.shape)).toEqual([
          [null, 24],
          [null, 19],
        ]);
        const viaRest = rest.predict([tf.mean(x, [1, 2]), m]) as tf.Tensor;
        expect(Array.from(await viaRest.data())).toEqual(
          Array.from(await probs.data()).map((v) => expect.closeTo(v, 6) as unknown as number),
        );
        tf.dispose([x, m, y, gx!, gm!, probs, viaRest]);
      } finally {
        head.dispose();
      }
    });
  }

  it('composes with a base into one model that takes [image, metadata]', () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const base = tf.model({
      inputs: input,
      outputs: tf.layers.conv2d({ filters: 5, kernelSize: 3, name: 'c' }).apply(input) as tf.SymbolicTensor,
    });
    const head = buildHead(
      [5],
      headConfig({
        kind: 'gap-dense-dropout-dense',
        hiddenUnits: 8,
        metadata: metadataFusion({ features: 4 }),
      }),
    );
    const model = composeModel(base, head);
    expect(model.inputs.map((i) => i.shape)).toEqual([
      [null, 8, 8, 3],
      [null, 4],
    ]);
    const out = model.predict([tf.ones([2, 8, 8, 3]), tf.zeros([2, 4])]) as tf.Tensor;
    expect(out.shape).toEqual([2, 7]);
    out.dispose();
    model.dispose();
  });
});

/** 40 real images (10 per class of bcc, bkl, mel, nv) and their metadata records. */
function loadData(): { dataset: MemoryImageDataset; chosen: LesionRecord[] } {
  const want: Record<string, number> = { bcc: 10, bkl: 10, mel: 10, nv: 10 };
  const chosen: LesionRecord[] = [];
  const pixels: Uint8Array[] = [];
  for (const r of records) {
    if (!want[r.dx]) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(DATA, 'all-200x150', `${r.imageId}.jpg`));
    } catch {
      continue;
    }
    const decoded = jpeg.decode(bytes, { useTArray: true });
    pixels.push(resizeRgb({ ...decoded, channels: 4 }, SIZE, SIZE).data);
    chosen.push(r);
    want[r.dx] = want[r.dx]! - 1;
  }
  const all = new Uint8Array(pixels.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => all.set(p, i * SIZE * SIZE * 3));
  return {
    dataset: new MemoryImageDataset(
      SIZE,
      all,
      chosen.map((r) => dxIndex(r.dx)),
    ),
    chosen,
  };
}

function fusedNetwork(dim: number): Network {
  const input = tf.input({ shape: [SIZE, SIZE, 3] });
  const conv = tf.layers.conv2d({
    filters: 6,
    kernelSize: 3,
    strides: 2,
    activation: 'relu',
    name: 'conv',
    kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
  });
  const base = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
  const head = buildHead(
    [7, 7, 6],
    headConfig({ kind: 'gap-dense', metadata: metadataFusion({ features: dim, units: 8 }) }),
  );
  head.weights.forEach((w, i) =>
    w.write(
      w.shape.length >= 2
        ? tf.initializers.glorotUniform({ seed: 10 + i }).apply(w.shape as number[], 'float32')
        : tf.zeros(w.shape as number[]),
    ),
  );
  return { base, head, inputSize: SIZE, preprocess: (x) => tf.div(tf.sub(x, 127.5), 127.5) as tf.Tensor4D };
}

async function run(options: TrainOptions): Promise<EpochLog[]> {
  const epochs: EpochLog[] = [];
  for await (const log of train(options)) if (log.type === 'epoch') epochs.push(log);
  return epochs;
}

describe('training with metadata', () => {
  it('trains a fused head on cached features and through the base with the same losses, and predicts', async () => {
    const { dataset, chosen } = loadData();
    expect(dataset.count).toBe(40);
    const picks = Array.from({ length: 30 }, (_, i) => (i * 4) % 39);
    const trainSet = [...new Set(picks)];
    const val = Array.from({ length: 40 }, (_, i) => i).filter((i) => !trainSet.includes(i));
    const encoding = fitMetadataEncoding(trainSet.map((i) => recordValues(chosen[i]!)));
    const dim = metadataDim(encoding);
    const metadata = { values: encodeRecords(encoding, chosen.map(recordValues)), dim };
    const common = { data: { dataset, train: trainSet, val, metadata }, epochs: 3, batchSize: 8, seed: 5 };
    const a = fusedNetwork(dim);
    const b = fusedNetwork(dim);
    const cached = await run({ ...common, network: a });
    const direct = await run({ ...common, network: b, featureCache: false });
    expect(cached).toHaveLength(3);
    cached.forEach((e, i) => {
      expect(e.loss).toBeCloseTo(direct[i]!.loss, 4);
      expect(e.val_loss).toBeCloseTo(direct[i]!.val_loss, 4);
    });
    expect(cached[2]!.loss).toBeLessThan(cached[0]!.loss);

    const withMeta = await predict(a, dataset, val, 8, metadata);
    expect(withMeta.probs.length).toBe(val.length * 7);
    // The evaluation of a run scores the test split from its cached features: the fused head alone, fed the
    // test rows' metadata, predicts what the whole network does from the images (here the val split as test).
    const generator = train({ ...common, data: { ...common.data, test: val }, network: a, epochs: 1 });
    let step = await generator.next();
    while (!step.done) step = await generator.next();
    const features = step.value.features!;
    expect(features.test).not.toBeNull();
    const viaFeatures = await predictFeatures(
      a,
      dataset,
      val,
      { ...features, values: features.test! },
      8,
      metadata,
    );
    const viaImages = await predict(a, dataset, val, 8, metadata);
    expect(Math.max(...viaFeatures.probs.map((p, i) => Math.abs(p - viaImages.probs[i]!)))).toBeLessThan(
      1e-6,
    );
    // The metadata changes the prediction: zeroed metadata gives other probabilities.
    const zeroed = await predict(a, dataset, val, 8, {
      values: new Float32Array(metadata.values.length),
      dim,
    });
    expect(Array.from(zeroed.probs)).not.toEqual(Array.from(withMeta.probs));

    await expect(run({ ...common, data: { dataset, train: trainSet, val }, network: a })).rejects.toThrow(
      TrainConfigError,
    );
    await expect(
      run({
        ...common,
        data: { ...common.data, metadata: { values: metadata.values, dim: dim - 1 } },
        network: a,
      }),
    ).rejects.toThrow(/takes 19 metadata values|takes \d+ metadata values/);
    for (const n of [a, b]) {
      n.head.dispose();
      n.base.dispose();
    }
  });
});

describe('a metadata run through export, import, Predict and Grad-CAM', () => {
  it('keeps the encoding in config.json, imports, and predicts with the typed metadata', async () => {
    const encoding = fitMetadataEncoding(records.slice(0, 3000).map(recordValues));
    const dim = metadataDim(encoding);
    const input = tf.input({ shape: [96, 96, 3] });
    const conv = tf.layers.conv2d({
      filters: 6,
      kernelSize: 3,
      strides: 4,
      activation: 'relu',
      name: 'last_conv',
    });
    const base = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
    const head = headConfig({
      kind: 'gap-dense',
      metadata: metadataFusion({ features: dim, fusion: 'metablock' }),
    });
    const model = composeModel(base, buildHead([6], head));
    const run = createRun({
      name: 'metadata run',
      config: {
        model: {
          ...modelConfigFor('mobilenet_v2_0.35', 96, head, DX),
          gradCamLayer: 'last_conv',
          metadata: encoding,
        },
        training: { metadata: { fusion: 'metablock', units: 32 } },
      },
    });
    const zip = await exportRunZip(run, await modelArtifacts(model));
    const imported = await importRunZip(zip, 'run.zip');
    expect(imported.run.config.model.metadata).toEqual(encoding);
    expect(imported.run.config.model.head.metadata).toEqual(head.metadata);
    const loaded = await loadRunModel(imported.modelArtifacts!, imported.run.config.model, 'model.json');
    const classifier = { model: loaded, preprocessing: 'tf' as const, classes: DX, metadata: encoding };
    const { width, height, data } = jpeg.decode(readFileSync(join(DATA, 'all-200x150', 'ISIC_0024306.jpg')), {
      useTArray: true,
    });
    const image = { width, height, data, channels: 4 as const };
    const young = await predictImage(classifier, image, {
      metadata: { age: 20, sex: 'female', localization: 'face' },
    });
    const old = await predictImage(classifier, image, {
      metadata: { age: 85, sex: 'male', localization: 'back' },
    });
    const unknown = await predictImage(classifier, image);
    expect(young.probabilities).not.toEqual(old.probabilities);
    expect(unknown.probabilities).toHaveLength(7);
    // The imported model predicts as the original did on the same inputs.
    const original = await predictImage({ ...classifier, model }, image, {
      metadata: { age: 20, sex: 'female', localization: 'face' },
    });
    young.probabilities.forEach((p, i) => expect(p).toBeCloseTo(original.probabilities[i]!, 6));
    const tta = await predictImage(classifier, image, {
      tta: true,
      metadata: { age: 20, sex: null, localization: null },
    });
    expect(tta.tta).toBe(true);
    const cam = await gradCamImage(classifier, image, {
      layerName: 'last_conv',
      metadataValues: { age: 20, sex: 'female', localization: 'face' },
    });
    expect(cam.width).toBe(width);
    cam.probabilities.forEach((p, i) => expect(p).toBeCloseTo(young.probabilities[i]!, 5));

    // A config whose head width disagrees with its encoding is refused by field.
    const bad = structuredClone(run);
    bad.config.model.head.metadata!.features = dim + 1;
    await expect(exportRunZip(bad, null)).rejects.toThrow(/head\.metadata\.features/);
    // An image-only config for this two-input model is refused at load.
    const { metadata: _m, ...imageOnly } = imported.run.config.model;
    await expect(loadRunModel(imported.modelArtifacts!, imageOnly, 'model.json')).rejects.toThrow(/input/);
    loaded.dispose();
    model.dispose();
  });
});
