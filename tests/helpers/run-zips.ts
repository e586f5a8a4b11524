/**
 * A real run export, made at test time with the app's own exportRunZip: a tiny model (one conv layer under the
 * seed's GAP → Dense → Dropout → Dense head) at 96 px, its config, history and test results. Hostile variants are
 * byte edits of its files.
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
import { composeModel, headConfig } from '../../src/lib/model/heads.ts';
import { classificationReport } from '../../src/lib/metrics/report.ts';
import {
  applyLog,
  createRun,
  exportRunZip,
  metricsFromReport,
  modelArtifacts,
} from '../../src/lib/runs/index.ts';

export const RUN_CLASSES = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'];
const SIZE = 96;

export async function makeRunZip(name = 'hostile test run'): Promise<Uint8Array<ArrayBuffer>> {
  await tf.setBackend('cpu');
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'pixels' });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'last_conv' });
  const base = tf.model({
    inputs: input,
    outputs: conv.apply(input) as tf.SymbolicTensor,
    name: 'tiny_base',
  });
  const head = headConfig({ kind: 'gap-dense-dropout-dense', classes: RUN_CLASSES.length, hiddenUnits: 5 });
  const model = composeModel(base, head);
  let run = createRun({
    name,
    config: {
      model: {
        backbone: 'mobilenet_v2_0.35',
        inputSize: SIZE,
        preprocessing: 'tf',
        head,
        classes: RUN_CLASSES,
        gradCamLayer: 'last_conv',
      },
      training: { epochs: 1 },
    },
    created: new Date(Date.UTC(2026, 10, 29, 12, 0, 0)),
  });
  run = applyLog(run, {
    type: 'epoch',
    phase: 1,
    epoch: 1,
    epochs: 1,
    loss: 1.9,
    accuracy: 0.2,
    val_loss: 1.8,
    val_accuracy: 0.25,
    val_balanced_accuracy: 0.2,
    val_macro_f1: 0.15,
    lr: 0.001,
    seconds: 2,
  });
  run = applyLog(run, { type: 'done', reason: 'completed', phase: 1, epochs: 1, seconds: 2 });
  const yTrue = RUN_CLASSES.map((_, i) => i);
  const yProb = yTrue.map((t) => RUN_CLASSES.map((_, k) => (k === t ? 0.4 : 0.1)));
  run.metrics = metricsFromReport(classificationReport({ classes: RUN_CLASSES, yTrue, yProb }));
  const blob = await exportRunZip(run, await modelArtifacts(model));
  model.dispose();
  return new Uint8Array(await blob.arrayBuffer());
}

/** Every file of a zip, by name. */
export async function unzipFiles(bytes: Uint8Array<ArrayBuffer>): Promise<Map<string, Uint8Array>> {
  const reader = new ZipReader(new BlobReader(new Blob([bytes])), { useWebWorkers: false });
  const files = new Map<string, Uint8Array>();
  for (const entry of await reader.getEntries()) {
    if (!entry.directory) files.set(entry.filename, await entry.getData(new Uint8ArrayWriter()));
  }
  await reader.close();
  return files;
}

export async function zipFiles(files: Map<string, Uint8Array>): Promise<Uint8Array> {
  const writer = new ZipWriter(new BlobWriter('application/zip'), { useWebWorkers: false });
  for (const [name, bytes] of files) await writer.add(name, new Uint8ArrayReader(bytes));
  return new Uint8Array(await (await writer.close()).arrayBuffer());
}
