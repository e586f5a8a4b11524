/**
 * The run export zip: a round trip with a tiny real tfjs model (the run comes back equal, the model predicts
 * identically), the zip's model files load as a standard TensorFlow.js layers model, CSV cells are escaped, and
 * damaged or incomplete zips are refused with a message naming the file at fault.
 */
import * as tf from '@tensorflow/tfjs';
import {
  BlobReader,
  BlobWriter,
  Uint8ArrayReader,
  Uint8ArrayWriter,
  ZipReader,
  ZipWriter,
} from '@zip.js/zip.js';
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { classificationReport, reportToJson } from '../../src/lib/metrics/report.ts';
import { parsePredictions } from '../../src/lib/metrics/input.ts';
import { composeModel, headConfig } from '../../src/lib/model/heads.ts';
import { BACKBONES } from '../../src/lib/model/backbones/index.ts';
import { filesIOHandler } from '../../src/lib/model/weights/index.ts';
import { createRandom } from '../../src/lib/random.ts';
import {
  applyLog,
  createRun,
  exportFileName,
  exportRunZip,
  importRunZip,
  checkRunModel,
  loadRunModel,
  metricsFromReport,
  modelArtifacts,
  RunFileError,
  standaloneSvg,
  type RunRecord,
} from '../../src/lib/runs/index.ts';

const SIZE = 96;
const CLASSES = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'];

function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'pixels' });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'last_conv' });
  const base = tf.model({
    inputs: input,
    outputs: conv.apply(input) as tf.SymbolicTensor,
    name: 'tiny_base',
  });
  return composeModel(
    base,
    headConfig({ kind: 'gap-dense-dropout-dense', classes: CLASSES.length, hiddenUnits: 5 }),
  );
}

async function predictions(model: tf.LayersModel, images: tf.Tensor4D): Promise<Float32Array> {
  const out = model.predict(images) as tf.Tensor;
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

function makeRun(yProb: number[][], classes = CLASSES, name = 'tiny run: =1+2'): RunRecord {
  const spec = BACKBONES['mobilenet_v2_0.35'];
  let run = createRun({
    name,
    config: {
      model: {
        backbone: spec.id,
        inputSize: 96,
        preprocessing: 'tf',
        head: headConfig({ kind: 'gap-dense-dropout-dense', classes: classes.length, hiddenUnits: 5 }),
        classes,
        gradCamLayer: 'last_conv',
      },
      training: { epochs: 2, lr: 0.001, augment: { rotationDeg: 20, horizontalFlip: true }, note: '=cmd|x' },
    },
    created: new Date(Date.UTC(2024, 5, 2, 12, 0, 0)),
  });
  const epochs = [
    [1, 1.9, 1.8, NaN],
    [2, 1.7, 1.6, 1e-4],
  ] as const;
  for (const [epoch, loss, valLoss, lr] of epochs) {
    run = applyLog(run, {
      type: 'epoch',
      phase: 1,
      epoch,
      epochs: 2,
      loss,
      accuracy: 0.1 * epoch,
      val_loss: valLoss,
      val_accuracy: 1 / 3,
      val_balanced_accuracy: 0.2,
      val_macro_f1: 0.15,
      lr: Number.isNaN(lr) ? 0.001 : lr,
      seconds: 3.25,
    });
  }
  run = applyLog(run, { type: 'lr-reduced', phase: 1, epoch: 1, from: 0.001, to: 1e-4, monitor: 'val_loss' });
  run = applyLog(run, {
    type: 'checkpoint',
    phase: 1,
    epoch: 2,
    monitor: 'val_loss',
    value: 1.6,
    location: null,
  });
  run = applyLog(run, { type: 'done', reason: 'completed', phase: 1, epochs: 2, seconds: 6.5 });
  const yTrue = yProb.map((_, i) => i % classes.length);
  run.history[0] = { ...run.history[0]!, val_loss: NaN };
  run.metrics = metricsFromReport(classificationReport({ classes, yTrue, yProb }));
  run.predictions = { imageIds: yProb.map((_, i) => `ISIC_00${24306 + i}`), yTrue, yProb };
  return run;
}

/** Every file of a zip, by name. */
async function unzip(blob: Blob): Promise<Map<string, Uint8Array>> {
  const reader = new ZipReader(new BlobReader(blob), { useWebWorkers: false });
  const files = new Map<string, Uint8Array>();
  for (const entry of await reader.getEntries()) {
    if (!entry.directory) files.set(entry.filename, await entry.getData(new Uint8ArrayWriter()));
  }
  await reader.close();
  return files;
}

async function rezip(files: Map<string, Uint8Array>, level = 6): Promise<Blob> {
  const writer = new ZipWriter(new BlobWriter('application/zip'), { useWebWorkers: false, level });
  for (const [name, bytes] of files) await writer.add(name, new Uint8ArrayReader(bytes));
  return writer.close();
}

const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);
const bytes = (t: string): Uint8Array => new TextEncoder().encode(t);

async function importError(blob: Blob): Promise<RunFileError> {
  const error = await importRunZip(blob, 'run.zip').then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunFileError);
  return error as RunFileError;
}

describe('run export zip', () => {
  let model: tf.LayersModel;
  let images: tf.Tensor4D;
  let run: RunRecord;
  let zip: Blob;
  const charts = {
    loss: '<svg viewBox="0 0 10 10" width="10"><path d="M0 10L10 0"/></svg>',
    'confusion_matrix.svg': '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>',
  };

  beforeAll(async () => {
    await tf.setBackend('cpu');
    model = tinyModel();
    const random = createRandom(5);
    images = tf.tensor4d(
      Float32Array.from({ length: 6 * SIZE * SIZE * 3 }, () => random.uniform(-1, 1)),
      [6, SIZE, SIZE, 3],
    );
    const probs = await predictions(model, images);
    const yProb = Array.from({ length: 6 }, (_, i) => Array.from(probs.subarray(i * 7, i * 7 + 7)));
    run = makeRun(yProb);
    zip = await exportRunZip(run, await modelArtifacts(model), charts);
  });

  afterAll(() => {
    model.dispose();
    images.dispose();
  });

  it('holds the listed files', async () => {
    const files = await unzip(zip);
    expect([...files.keys()].sort()).toEqual(
      [
        'README.txt',
        'charts/confusion_matrix.svg',
        'charts/loss.svg',
        'classification_report.csv',
        'config.json',
        'confusion_matrix.csv',
        'history.csv',
        'metrics.json',
        'model/model.json',
        'model/weights.bin',
        'predictions.json',
        'run.json',
      ].sort(),
    );
    const manifest = JSON.parse(text(files.get('run.json'))) as { files: string[]; format: string };
    expect(manifest.format).toBe('lesion-lab-run');
    expect([...manifest.files].sort()).toEqual([...files.keys()].sort());
    expect(JSON.parse(text(files.get('metrics.json')))).toEqual(run.metrics);
    expect(text(files.get('README.txt'))).toMatch(/not a medical device/);
    console.info(
      `export zip of a ${model.countParams()}-parameter model, ${files.size} files: ${zip.size} bytes`,
    );
  });

  it('restores the run exactly, and the model predicts identically', async () => {
    const imported = await importRunZip(zip, 'run.zip');
    expect(imported.run).toEqual(run);
    expect(Number.isNaN(imported.run.history[0]!.val_loss)).toBe(true);
    expect(imported.charts.loss).toBe(standaloneSvg(charts.loss, 'loss'));
    expect(imported.charts.loss).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(imported.charts.confusion_matrix).toBe(charts['confusion_matrix.svg']);
    const loaded = await loadRunModel(imported.modelArtifacts!, imported.run.config.model);
    expect(await predictions(loaded, images)).toEqual(await predictions(model, images));
    loaded.dispose();
    // Exporting the imported run again gives the same files (dates aside).
    const again = await unzip(await exportRunZip(imported.run, imported.modelArtifacts, imported.charts));
    const first = await unzip(zip);
    for (const [name, data] of first) {
      if (name !== 'run.json') expect(again.get(name), name).toEqual(data);
    }
  });

  it('writes a standard TensorFlow.js layers model: model.json + weights.bin load with tf.loadLayersModel', async () => {
    const files = await unzip(zip);
    const asFile = (name: string) => ({
      name: name.slice(name.lastIndexOf('/') + 1),
      arrayBuffer: async () => files.get(name)!.slice().buffer as ArrayBuffer,
    });
    const loaded = await tf.loadLayersModel(
      filesIOHandler([asFile('model/model.json'), asFile('model/weights.bin')]),
    );
    expect(await predictions(loaded, images)).toEqual(await predictions(model, images));
    loaded.dispose();
  });

  it('keeps predictions.json as the metrics CLI input: recomputing gives metrics.json', async () => {
    const files = await unzip(zip);
    const recomputed = reportToJson(
      classificationReport(parsePredictions(JSON.parse(text(files.get('predictions.json'))))),
    );
    expect(recomputed).toEqual(JSON.parse(text(files.get('metrics.json'))));
  });

  it('escapes formula-like cells in the CSVs and still imports them', async () => {
    const classes = ['=cmd', '+1', '-2', '@x', 'nv'];
    const random = createRandom(9);
    const yProb = Array.from({ length: 10 }, () => {
      const raw = classes.map(() => random.next() + 0.01);
      const sum = raw.reduce((a, b) => a + b, 0);
      return raw.map((v) => v / sum);
    });
    const odd = makeRun(yProb, classes);
    const files = await unzip(await exportRunZip(odd, null));
    for (const name of ['classification_report.csv', 'confusion_matrix.csv']) {
      const csv = text(files.get(name));
      expect(csv).toContain("'=cmd");
      expect(csv).toContain("'+1");
      expect(csv).toContain("'-2");
      expect(csv).toContain("'@x");
      for (const line of csv.trim().split('\n')) expect(line, name).not.toMatch(/(^|,)"?[=+\-@]/);
    }
    expect(files.has('model/model.json')).toBe(false);
    const back = await importRunZip(await rezip(files));
    expect(back.run).toEqual(odd);
    expect(back.modelArtifacts).toBeNull();
  });

  it('names the download safely', () => {
    expect(exportFileName({ id: '20240602-120000-abcdef', name: 'tiny run: =1+2 / ü' })).toBe(
      'lesion-lab-tiny-run-1-2-u-20240602-120000-abcdef.zip',
    );
  });

  it('refuses a chart that is not SVG, naming it', async () => {
    await expect(exportRunZip(run, null, { roc: '<html></html>' })).rejects.toThrow(
      /charts\/roc\.svg: not an SVG image/,
    );
    await expect(exportRunZip(run, null, { '../x': '<svg></svg>' })).rejects.toThrow(/chart name "\.\.\/x"/);
  });

  describe('damaged or incomplete zips give a message naming the file', () => {
    it('a truncated download or a file that is no zip at all', async () => {
      const truncated = new Blob([(await zip.arrayBuffer()).slice(0, Math.floor(zip.size / 2))]);
      expect((await importError(truncated)).message).toMatch(
        /^run\.zip isn't a readable zip file .*incomplete/,
      );
      expect((await importError(new Blob(['hello']))).message).toMatch(/^run\.zip isn't a readable zip file/);
      // It says what to import instead.
      expect((await importError(new Blob(['hello']))).message).toMatch(
        /Import a zip saved with "Export zip"/,
      );
    });

    it('a zip that is not a run export', async () => {
      const other = await rezip(new Map([['HAM10000_metadata.csv', bytes('lesion_id,image_id\n')]]));
      const error = await importError(other);
      expect(error.file).toBe('run.json');
      expect(error.message).toMatch(
        /run\.json is missing: run\.zip is not a Lesion Lab run export \(it holds HAM10000_metadata\.csv\)/,
      );
    });

    it.each([
      'model/weights.bin',
      'history.csv',
      'config.json',
      'classification_report.csv',
      'model/model.json',
    ])('a zip without %s', async (name) => {
      const files = await unzip(zip);
      files.delete(name);
      const error = await importError(await rezip(files));
      expect(error.file).toBe(name);
      expect(error.message).toContain(`${name} is missing from run.zip`);
    });

    it('an entry whose bytes were damaged (CRC mismatch)', async () => {
      const files = await unzip(zip);
      const stored = await rezip(files, 0);
      const buffer = new Uint8Array(await stored.arrayBuffer());
      const needle = bytes('phase,epoch,epochs');
      const at = buffer.findIndex((_, i) => needle.every((b, k) => buffer[i + k] === b));
      expect(at).toBeGreaterThan(0);
      buffer[at + 200] = buffer[at + 200]! ^ 0xff;
      const error = await importError(new Blob([buffer]));
      expect(error.file).toBe('history.csv');
      expect(error.message).toMatch(/^history\.csv: could not be read from run\.zip .*damaged/);
    });

    it('weights.bin shorter than model.json says', async () => {
      const files = await unzip(zip);
      files.set('model/weights.bin', files.get('model/weights.bin')!.slice(0, 100));
      const error = await importError(await rezip(files));
      expect(error.file).toBe('model/weights.bin');
      expect(error.message).toMatch(
        /model\/weights\.bin: holds 100 bytes, but the weights listed in model\/model\.json need \d+/,
      );
    });

    it.each([
      [
        'config.json',
        (t: string) => t.replace('"inputSize": 96', '"inputSize": "big"'),
        /^config\.json: model\.inputSize must be a whole number/,
      ],
      ['metrics.json', (t: string) => t.slice(0, 50), /^metrics\.json: not valid JSON/],
      [
        'metrics.json',
        (t: string) => t.replace('"accuracy": 0', '"accuracy": 7'),
        /^metrics\.json: accuracy must be ≤ 1; got 7/,
      ],
      [
        'history.csv',
        (t: string) => t.replace(/\n1,2,2,1\.7,/, '\n1,2,2,x,'),
        /^history\.csv: line 3, column loss: "x" is not a number/,
      ],
      [
        'classification_report.csv',
        (t: string) => t.replace('akiec', 'AKIEC'),
        /^classification_report\.csv: line 2 does not match metrics\.json/,
      ],
      [
        'predictions.json',
        (t: string) => t.replace('"ISIC_0024307"', '"ISIC_0024306"'),
        /^predictions\.json: image_ids\[1\] "ISIC_0024306" repeats image_ids\[0\]/,
      ],
      [
        'model/model.json',
        (t: string) => t.replace('"weightsManifest"', '"weights"'),
        /^model\/model\.json: weightsManifest must be a list; got nothing/,
      ],
      [
        'run.json',
        (t: string) => t.replace('"lesion-lab-run"', '"other"'),
        /^run\.json: format must be "lesion-lab-run"/,
      ],
      [
        'run.json',
        (t: string) => t.replace('"monitor": "val_loss"', '"monitor": "val_f2"'),
        /^run\.json: events\[0\]\.monitor must be one of/,
      ],
    ])('a bad %s (%#)', async (name, edit, message) => {
      const files = await unzip(zip);
      const edited = edit(text(files.get(name)));
      expect(edited).not.toBe(text(files.get(name)));
      files.set(name, bytes(edited));
      const error = await importError(await rezip(files));
      expect(error.file).toBe(name);
      expect(error.message).toMatch(message);
    });

    it('a model that does not fit the run is refused when loaded', async () => {
      const imported = await importRunZip(zip);
      await expect(
        loadRunModel(imported.modelArtifacts!, { inputSize: 128, classes: CLASSES }),
      ).rejects.toThrow(
        /model\.json: the model does not fit the run: its input is \[batch, 96, 96, 3\], the run's images are \[batch, 128, 128, 3\]/,
      );
      await expect(
        loadRunModel(imported.modelArtifacts!, { inputSize: 96, classes: ['a', 'b'] }),
      ).rejects.toThrow(/its output is \[batch, 7\], the run has 2 classes/);
    });
  });

  describe('hostile run zips are refused before they cost memory, naming the file', () => {
    it('a config.json padded to 8 MB with spaces is refused from its declared size, not parsed', async () => {
      const files = await unzip(zip);
      files.set('config.json', bytes(text(files.get('config.json')) + ' '.repeat(8 * 1024 * 1024)));
      const error = await importError(await rezip(files));
      expect(error.file).toBe('config.json');
      expect(error.message).toMatch(
        /^config\.json: 8\.4 MB uncompressed \(from the zip's directory\), over the 1 MB this app reads for it/,
      );
    });

    it('a weights file that announces more bytes than model.json needs is not inflated', async () => {
      const files = await unzip(zip);
      const weights = files.get('model/weights.bin')!;
      files.set('model/weights.bin', new Uint8Array(weights.byteLength + 8));
      const error = await importError(await rezip(files));
      expect(error.file).toBe('model/weights.bin');
      expect(error.message).toMatch(/holds \d+ bytes, but the weights listed in model\/model\.json need \d+/);
    });

    it('a topology with an unknown layer class is refused by checkRunModel, naming the layer', async () => {
      const files = await unzip(zip);
      const json = JSON.parse(text(files.get('model/model.json'))) as {
        modelTopology: { config: { layers: { class_name: string; config: { name: string } }[] } };
      };
      const layer = json.modelTopology.config.layers[1]!;
      layer.class_name = 'Nope';
      files.set('model/model.json', bytes(JSON.stringify(json)));
      const imported = await importRunZip(await rezip(files));
      const error = await checkRunModel(imported.modelArtifacts!, imported.run.config.model).then(
        () => null,
        (e: unknown) => e as RunFileError,
      );
      expect(error).toBeInstanceOf(RunFileError);
      expect(error!.message).toContain(
        `model/model.json: layer "${layer.config.name}" is a "Nope", a layer class TensorFlow.js does not have`,
      );
      expect(error!.message).not.toMatch(/This may be due to/);
    });

    it('a config whose image size disagrees with the model is refused by checkRunModel', async () => {
      const imported = await importRunZip(zip);
      await expect(
        checkRunModel(imported.modelArtifacts!, { ...imported.run.config.model, inputSize: 224 }),
      ).rejects.toThrow(
        /^model\/model\.json: the model does not fit the run: its input is \[batch, 96, 96, 3\], the run's images are \[batch, 224, 224, 3\] \(config\.json: model\.inputSize\)/,
      );
      await checkRunModel(imported.modelArtifacts!, imported.run.config.model);
    });
  });

  it('still imports without README.txt and the charts (they are for people)', async () => {
    const files = await unzip(zip);
    for (const name of ['README.txt', 'charts/loss.svg']) files.delete(name);
    const imported = await importRunZip(await rezip(files));
    expect(imported.run).toEqual(run);
    expect(Object.keys(imported.charts)).toEqual(['confusion_matrix']);
  });

  it('reads a run zip whose files sit in one folder (unzipped and zipped again)', async () => {
    const files = await unzip(zip);
    const nested = new Map([...files].map(([name, data]) => [`my run/${name}`, data]));
    const imported = await importRunZip(await rezip(nested));
    expect(imported.run).toEqual(run);
  });
});
