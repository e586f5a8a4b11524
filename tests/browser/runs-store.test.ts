/**
 * The IndexedDB run store in real Chromium: records and models persist across store instances (as across page
 * loads), deletes remove both, and a damaged record is left out of the list instead of breaking it.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeModel, headConfig } from '../../src/lib/model/heads.ts';
import { applyLog, createRun, modelArtifacts, type RunRecord } from '../../src/lib/runs/index.ts';
import { IndexedDbRunStore, runModelUrl } from '../../src/worker/runs-store.ts';

const DATABASE = 'lesion-lab-runs-test';
const CLASSES = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'];

function run(name: string, second: number): RunRecord {
  let r = createRun({
    name,
    config: {
      model: {
        backbone: 'mobilenet_v2_0.35',
        inputSize: 96,
        preprocessing: 'tf',
        head: headConfig({ kind: 'gap-dense', classes: 7 }),
        classes: CLASSES,
        gradCamLayer: 'out_relu',
      },
      training: { epochs: 1, batchSize: 8 },
    },
    created: new Date(Date.UTC(2024, 0, 1, 0, 0, second)),
  });
  r = applyLog(r, {
    type: 'epoch',
    phase: 1,
    epoch: 1,
    epochs: 1,
    loss: 1.25,
    accuracy: 0.5,
    val_loss: NaN,
    val_accuracy: 0.25,
    val_balanced_accuracy: 0.2,
    val_macro_f1: 0.1,
    lr: 0.001,
    seconds: 2,
  });
  return applyLog(r, { type: 'done', reason: 'completed', phase: 1, epochs: 1, seconds: 2 });
}

function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [96, 96, 3] });
  const conv = tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 4, activation: 'relu' });
  const base = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
  return composeModel(base, headConfig({ kind: 'gap-dense', classes: 7 }));
}

async function weightsOf(model: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
}

/** The run ids tf.io lists a model for. */
async function runModelIds(): Promise<string[]> {
  const prefix = 'indexeddb://run-';
  return Object.keys(await tf.io.listModels())
    .filter((url) => url.startsWith(prefix))
    .map((url) => url.slice(prefix.length));
}

describe('IndexedDbRunStore', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await new IndexedDbRunStore({ databaseName: DATABASE }).deleteAll();
  });

  afterAll(async () => {
    await new IndexedDbRunStore({ databaseName: DATABASE }).deleteAll();
  });

  it('puts, lists, gets and deletes runs; all of it persists across store instances', async () => {
    const a = run('first', 1);
    const b = run('second', 2);
    const writer = new IndexedDbRunStore({ databaseName: DATABASE });
    await writer.put(b);
    await writer.put(a);
    await writer.close();

    const reader = new IndexedDbRunStore({ databaseName: DATABASE });
    const listed = await reader.list();
    expect(listed.map((r) => r.name)).toEqual(['first', 'second']);
    expect(listed[0]).toEqual(a);
    expect(Number.isNaN(listed[0]!.history[0]!.val_loss)).toBe(true);
    expect(await reader.get(b.id)).toEqual(b);
    expect(await reader.get('no-such-run')).toBeNull();

    await reader.put({ ...a, name: 'renamed' });
    expect(await reader.delete(b.id)).toBe(true);
    expect(await reader.delete(b.id)).toBe(false);

    const third = new IndexedDbRunStore({ databaseName: DATABASE });
    expect((await third.list()).map((r) => r.name)).toEqual(['renamed']);
    expect(await third.deleteAll()).toBe(1);
    expect(await new IndexedDbRunStore({ databaseName: DATABASE }).list()).toEqual([]);
  });

  it('keeps the model under indexeddb://run-<id>: loaded back in a new instance, weights are identical', async () => {
    const r = run('with model', 3);
    const model = tinyModel();
    const store = new IndexedDbRunStore({ databaseName: DATABASE });
    await store.put(r);
    await store.putModel(r.id, await modelArtifacts(model));

    const other = new IndexedDbRunStore({ databaseName: DATABASE });
    const artifacts = await other.getModel(r.id);
    expect(artifacts).not.toBeNull();
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(await weightsOf(loaded)).toEqual(await weightsOf(model));
    // The same model straight from tf.io's URL.
    const direct = await tf.loadLayersModel(runModelUrl(r.id));
    const x = tf.randomUniform([2, 96, 96, 3]);
    const [p, q] = [model.predict(x) as tf.Tensor, direct.predict(x) as tf.Tensor];
    expect(Array.from(await q.data())).toEqual(Array.from(await p.data()));
    tf.dispose([x, p, q]);
    loaded.dispose();
    direct.dispose();

    expect(Object.keys(await tf.io.listModels())).toContain(runModelUrl(r.id));
    // modelIds reads tf.io's own database without tfjs: the same list as tf.io.listModels.
    expect(await other.modelIds()).toEqual(await runModelIds());
    expect(await other.modelIds()).toContain(r.id);
    expect(await other.delete(r.id)).toBe(true);
    expect(Object.keys(await tf.io.listModels())).not.toContain(runModelUrl(r.id));
    expect(await other.modelIds()).not.toContain(r.id);
    expect(await other.getModel(r.id)).toBeNull();

    // deleteAll also removes run models whose record is gone.
    await other.putModel('orphan-1', await modelArtifacts(model));
    await other.deleteAll();
    expect(Object.keys(await tf.io.listModels()).filter((u) => u.startsWith('indexeddb://run-'))).toEqual([]);
    model.dispose();
  });

  it('lists no models where tf.io never stored one, without creating its database', async () => {
    const tfjsDatabase = async () => (await indexedDB.databases()).some((d) => d.name === 'tensorflowjs');
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase('tensorflowjs');
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error);
    });
    const store = new IndexedDbRunStore({ databaseName: DATABASE });
    expect(await store.modelIds()).toEqual([]);
    expect(await tfjsDatabase()).toBe(false);
    // tf.io then creates its database as usual.
    const model = tinyModel();
    await store.putModel('first-model', await modelArtifacts(model));
    expect(await store.modelIds()).toEqual(['first-model']);
    expect(await store.modelIds()).toEqual(await runModelIds());
    await store.deleteAll();
    expect(await store.modelIds()).toEqual([]);
    model.dispose();
  });

  it('leaves a damaged record out of the list, says which, and refuses to get it', async () => {
    const problems: [string, string][] = [];
    const store = new IndexedDbRunStore({
      databaseName: DATABASE,
      onInvalid: (id, e) => problems.push([id, e.message]),
    });
    const good = run('good', 4);
    await store.put(good);
    // A record written by hand, as an older or broken version might have left it.
    await new Promise<void>((resolve, reject) => {
      const open = indexedDB.open(DATABASE);
      open.onsuccess = () => {
        const tx = open.result.transaction('runs', 'readwrite');
        tx.objectStore('runs').put({ ...good, id: 'broken-1', status: 'exploded' });
        tx.oncomplete = () => {
          open.result.close();
          resolve();
        };
        tx.onerror = () => reject(tx.error);
      };
      open.onerror = () => reject(open.error);
    });
    expect((await store.list()).map((r) => r.id)).toEqual([good.id]);
    expect(problems).toHaveLength(1);
    expect(problems[0]![0]).toBe('broken-1');
    expect(problems[0]![1]).toMatch(/stored run broken-1: status must be one of running, completed/);
    await expect(store.get('broken-1')).rejects.toThrow(/status must be one of/);
    await store.deleteAll();
  });

  it('refuses an invalid record before writing it', async () => {
    const store = new IndexedDbRunStore({ databaseName: DATABASE });
    await expect(store.put({ ...run('bad', 5), id: 'a/b' })).rejects.toThrow(/id must be 1 to 64 letters/);
    expect(await store.list()).toEqual([]);
  });
});

describe('IndexedDbRunStore in a worker', () => {
  it('saves a run and its model from a module worker; the page reads both back', async () => {
    const storeUrl = new URL('../../src/worker/runs-store.ts', import.meta.url).href;
    const runsUrl = new URL('../../src/lib/runs/index.ts', import.meta.url).href;
    const headsUrl = new URL('../../src/lib/model/heads.ts', import.meta.url).href;
    const record = run('from a worker', 6);
    // The worker script imports the same modules the app's worker bundles, from the test server.
    // Vitest rewrites the modules' dynamic import() into a call of its runner, which it defines in the workers
    // that Vite bundles (new Worker(new URL(...))) but not in a hand-made one like this.
    const source = `
      globalThis.__vitest_browser_runner__ ??= { wrapDynamicImport: (load) => load() };
      const [{ IndexedDbRunStore }, runs, heads] = await Promise.all([
        import(${JSON.stringify(storeUrl)}), import(${JSON.stringify(runsUrl)}), import(${JSON.stringify(headsUrl)}),
      ]);
      self.onmessage = async (event) => {
        try {
          // Built with the app modules' own tfjs instance (a second copy would not accept its tensors).
          const model = heads.buildHead([4], heads.headConfig({ kind: 'gap-dense', classes: 7 }));
          const store = new IndexedDbRunStore({ databaseName: ${JSON.stringify(DATABASE)} });
          await store.put(event.data);
          await store.putModel(event.data.id, await runs.modelArtifacts(model));
          const weights = await Promise.all(model.getWeights().map((w) => w.data()));
          self.postMessage({ ok: true, weights });
        } catch (error) {
          self.postMessage({ ok: false, message: String(error && error.stack || error) });
        }
      };
      self.postMessage({ ready: true });
    `;
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    const worker = new Worker(url, { type: 'module' });
    const reply = await new Promise<{ ok: boolean; message?: string; weights?: Float32Array[] }>(
      (resolve, reject) => {
        worker.onerror = (e) => reject(new Error(`worker failed: ${e.message}`));
        worker.onmessage = (e: MessageEvent) => {
          if ((e.data as { ready?: boolean }).ready) worker.postMessage(record);
          else resolve(e.data as { ok: boolean; message?: string; weights?: Float32Array[] });
        };
      },
    );
    worker.terminate();
    URL.revokeObjectURL(url);
    expect(reply.message).toBeUndefined();
    expect(reply.ok).toBe(true);

    const store = new IndexedDbRunStore({ databaseName: DATABASE });
    expect(await store.get(record.id)).toEqual(record);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory((await store.getModel(record.id))!));
    expect(await weightsOf(loaded)).toEqual(reply.weights);
    loaded.dispose();
    await store.deleteAll();
  });
});
