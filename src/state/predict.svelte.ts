/** The Predict page's state: the dropped image, the run whose model predicts, TTA, and the result. */
import type { MetadataValues } from '../lib/model/metadata-features.ts';
import type { PredictResult } from '../worker/predict-client.ts';
import { lab } from './runs.svelte.ts';

const ACCEPTED = /^image\/(jpeg|png)$/;

function createPredict() {
  let file = $state.raw<File | null>(null);
  let tta = $state(false);
  let result = $state.raw<PredictResult | null>(null);
  let error = $state<string | null>(null);
  let working = $state(false);
  /** What the user says about the lesion, for a run whose model takes metadata; blank means unknown. */
  // A number input's bind:value holds a number, or null when empty.
  const metadata = $state<{ age: number | string | null; sex: string; localization: string }>({
    age: null,
    sex: '',
    localization: '',
  });
  let token = 0;

  /** The typed metadata as the encoder takes it; an age that is not a number in 0–120 is an error. */
  function metadataValues(): MetadataValues | string {
    const text = String(metadata.age ?? '').trim();
    const age = text === '' ? null : Number(text);
    if (age !== null && !(Number.isFinite(age) && age >= 0 && age <= 120)) {
      return `Age "${text}" is not a number of years from 0 to 120 (leave it empty if unknown).`;
    }
    return { age, sex: metadata.sex || null, localization: metadata.localization || null };
  }

  async function run(runId: string | null) {
    if (!file) return;
    if (!runId) {
      error = 'There is no run with a model yet: train one (Train page) or import a run zip (Runs page).';
      return;
    }
    const values = metadataValues();
    if (typeof values === 'string') {
      error = values;
      result = null;
      return;
    }
    const mine = ++token;
    working = true;
    error = null;
    try {
      const value = await lab.predict(runId, file, tta, values);
      if (mine === token) result = value;
    } catch (e) {
      if (mine === token) {
        result = null;
        error = e instanceof Error ? e.message : String(e);
      }
    } finally {
      if (mine === token) working = false;
    }
  }

  return {
    get file() {
      return file;
    },
    get tta() {
      return tta;
    },
    get result() {
      return result;
    },
    get error() {
      return error;
    },
    get working() {
      return working;
    },
    /** Age (text as typed), sex and site; bound by the Predict form of a metadata run. */
    metadata,
    /** Takes the first file; refuses anything but a JPEG or PNG with a reason. */
    choose(files: readonly File[], runId: string | null) {
      const first = files[0];
      if (!first) return;
      if (files.length > 1) error = null;
      if (!ACCEPTED.test(first.type) && !/\.(jpe?g|png)$/i.test(first.name)) {
        error = `"${first.name}" is not a JPEG or PNG image.`;
        return;
      }
      file = first;
      result = null;
      void run(runId);
    },
    setTta(value: boolean, runId: string | null) {
      tta = value;
      void run(runId);
    },
    rerun(runId: string | null) {
      void run(runId);
    },
  };
}

export const predictState = createPredict();
