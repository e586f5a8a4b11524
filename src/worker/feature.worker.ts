/// <reference lib="webworker" />
/**
 * A feature worker: its own WASM instance of the frozen base, started by the training worker (a dedicated worker
 * may start workers), computing the features of the batches it is sent with the same `featuresOfBatch` as the
 * training worker's in-process path. Protocol: src/worker/feature-protocol.ts; the pool: src/lib/train/feature-pool.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { getBackbone } from '../lib/model/backbones/index.ts';
import { useKerasBatchNormSemantics } from '../lib/model/heads.ts';
import { preprocessInput } from '../lib/model/preprocess.ts';
import { writeWeights } from '../lib/train/checkpoint.ts';
import { featuresOfBatch } from '../lib/train/featureCache.ts';
import type { FeatureCommand, FeatureMessage } from './feature-protocol.ts';
import { capWasmThreads, describeWasmBackend, installWasmBackend } from './wasm-threads.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

installWasmBackend();

function post(message: FeatureMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

let base: tf.LayersModel | null = null;
let preprocess: ((x: tf.Tensor4D) => tf.Tensor4D) | null = null;

async function init(command: FeatureCommand & { type: 'init' }): Promise<FeatureMessage> {
  capWasmThreads(command.threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('the WASM backend did not start');
  const spec = getBackbone(command.backbone);
  base?.dispose();
  base = spec.build(command.inputSize);
  // By name: `weights` lists trainable weights first, so a frozen base lists them in another order than a new one.
  const byName = new Map(base.weights.map((w) => [w.originalName, w.read() as tf.Variable]));
  const unknown = command.weights.find((w) => !byName.has(w.name));
  if (unknown || command.weights.length !== byName.size) {
    const missing = [...byName.keys()].find((name) => !command.weights.some((w) => w.name === name));
    throw new Error(
      `the base's weights differ from the ${command.backbone} built here (${command.weights.length} sent, ` +
        `${byName.size} here; ${unknown ? `${unknown.name} is not a weight here` : `${missing} was not sent`})`,
    );
  }
  writeWeights(
    command.weights.map((w) => byName.get(w.name)!),
    command.weights,
  );
  base.trainable = false;
  useKerasBatchNormSemantics(base);
  preprocess = (x) => preprocessInput(x, spec.preprocessing);
  return { type: 'ready', backend: tf.getBackend(), device: await describeWasmBackend() };
}

scope.onmessage = (event: MessageEvent<FeatureCommand>) => {
  const command = event.data;
  if (command.type === 'init') {
    init(command).then(post, (error: unknown) =>
      post({ type: 'failed', id: null, message: error instanceof Error ? error.message : String(error) }),
    );
    return;
  }
  const model = base;
  const pre = preprocess;
  if (!model || !pre) {
    post({ type: 'failed', id: command.id, message: 'a batch came before the base was built (no init)' });
    return;
  }
  featuresOfBatch(model, command.pixels, command.n, { ...command.settings, preprocess: pre }).then(
    (values) => {
      // Only a buffer of its own can be transferred (a view into a shared or larger one is copied first).
      const own =
        values.buffer instanceof ArrayBuffer &&
        values.byteOffset === 0 &&
        values.byteLength === values.buffer.byteLength
          ? values
          : values.slice();
      post({ type: 'features', id: command.id, values: own }, [own.buffer]);
    },
    (error: unknown) =>
      post({
        type: 'failed',
        id: command.id,
        message: error instanceof Error ? error.message : String(error),
      }),
  );
};
