/**
 * The runs kept in this browser, as the Results, Runs and Predict pages see them. The records and models live in
 * IndexedDB behind LabClient (a worker); this module mirrors the list and which run is selected.
 */
import type { MetadataValues } from '../lib/model/metadata-features.ts';
import { LabClient, type LabReplies } from '../worker/predict-client.ts';
import type { FinishRunRequest } from '../worker/predict-client.ts';
import type { RunRecord } from '../lib/runs/record.ts';
import { checkRunName } from '../lib/runs/naming.ts';
import type { ImageSize } from '../lib/data/types.ts';

export interface RunsNotice {
  kind: 'ok' | 'error';
  text: string;
}

function createLab() {
  let client: LabClient | null = null;
  let runs = $state.raw<RunRecord[]>([]);
  let models = $state.raw<string[]>([]);
  let loaded = $state(false);
  let loading = $state(false);
  let selectedId = $state<string | null>(null);
  let compareIds = $state.raw<string[]>([]);
  let notice = $state.raw<RunsNotice | null>(null);
  let problems = $state.raw<string[]>([]);
  let busy = $state<string | null>(null);

  /** Names given on the Runs page to runs still training: the Train page's later saves keep them. */
  const renamed: Record<string, string> = {};
  const named = (run: RunRecord): RunRecord => {
    const name = renamed[run.id];
    return name === undefined || name === run.name ? run : { ...run, name };
  };

  const c = (): LabClient => (client ??= new LabClient());
  const text = (e: unknown) => (e instanceof Error ? e.message : String(e));

  async function refresh(): Promise<void> {
    loading = true;
    try {
      const list = await c().list();
      runs = list.runs;
      models = list.models;
      problems = list.invalid;
      if (selectedId && !runs.some((r) => r.id === selectedId)) selectedId = null;
      compareIds = compareIds.filter((id) => runs.some((r) => r.id === id));
    } catch (e) {
      notice = { kind: 'error', text: `The stored runs could not be read: ${text(e)}` };
    } finally {
      loaded = true;
      loading = false;
    }
  }

  function upsert(run: RunRecord) {
    const i = runs.findIndex((r) => r.id === run.id);
    runs = i < 0 ? [...runs, run] : runs.map((r) => (r.id === run.id ? run : r));
  }

  async function guarded<T>(label: string, work: () => Promise<T>): Promise<T | null> {
    busy = label;
    try {
      return await work();
    } catch (e) {
      notice = { kind: 'error', text: text(e) };
      return null;
    } finally {
      busy = null;
    }
  }

  return {
    get runs() {
      return runs;
    },
    get models() {
      return models;
    },
    get loaded() {
      return loaded;
    },
    get loading() {
      return loading;
    },
    get busy() {
      return busy;
    },
    get notice() {
      return notice;
    },
    get problems() {
      return problems;
    },
    dismissNotice() {
      notice = null;
    },
    /** The run Results and Predict show: the chosen one, else the newest with a report. */
    get selectedId(): string | null {
      return selectedId;
    },
    get selected(): RunRecord | null {
      return (
        runs.find((r) => r.id === selectedId) ??
        runs.findLast((r) => r.metrics !== null) ??
        runs.at(-1) ??
        null
      );
    },
    select(id: string | null) {
      selectedId = id;
    },
    get compareIds() {
      return compareIds;
    },
    setCompare(ids: string[]) {
      compareIds = ids;
    },
    hasModel(id: string) {
      return models.includes(id);
    },
    refresh,
    ensureLoaded() {
      if (!loaded && !loading) void refresh();
    },
    /** Saves a running run's record (Train page, after each epoch). */
    async save(run: RunRecord) {
      const record = named(run);
      upsert(record);
      await c().save(record);
    },
    async finishRun(request: FinishRunRequest) {
      const result = await c().finishRun({ ...request, run: named(request.run) });
      upsert(result.run);
      if (result.model && !models.includes(result.run.id)) models = [...models, result.run.id];
      return result;
    },
    /**
     * Gives a run a new name (trimmed; not empty, not another run's). Resolves with null when it was saved, or
     * with what is wrong with the name.
     */
    async rename(id: string, name: string): Promise<string | null> {
      const run = runs.find((r) => r.id === id);
      if (!run) return 'That run is no longer stored.';
      let checked: string;
      try {
        checked = checkRunName(
          name,
          runs.filter((r) => r.id !== id).map((r) => r.name),
        );
      } catch (e) {
        return text(e);
      }
      if (checked === run.name) return null;
      const next = { ...run, name: checked };
      const ok = await guarded('rename', async () => {
        await c().save(next);
        return true;
      });
      if (ok === null) return 'The new name could not be saved.';
      renamed[id] = checked;
      upsert(next);
      notice = { kind: 'ok', text: `Renamed "${run.name}" to "${checked}".` };
      return null;
    },
    async deleteRun(id: string) {
      const run = runs.find((r) => r.id === id);
      const ok = await guarded('delete', () => c().deleteRun(id));
      if (ok === null) return;
      runs = runs.filter((r) => r.id !== id);
      models = models.filter((m) => m !== id);
      compareIds = compareIds.filter((m) => m !== id);
      if (selectedId === id) selectedId = null;
      notice = { kind: 'ok', text: `Deleted run "${run?.name ?? id}".` };
    },
    async deleteAll() {
      const n = await guarded('delete-all', () => c().deleteAll());
      if (n === null) return;
      runs = [];
      models = [];
      compareIds = [];
      selectedId = null;
      notice = { kind: 'ok', text: `Deleted ${n} run${n === 1 ? '' : 's'}.` };
    },
    async exportRun(id: string, charts: Record<string, string> = {}): Promise<LabReplies['export'] | null> {
      const result = await guarded('export', () => c().exportRun(id, charts));
      if (result) notice = { kind: 'ok', text: `Exported ${result.fileName}.` };
      return result;
    },
    async importRun(file: File) {
      const result = await guarded('import', () => c().importRun(file));
      if (!result) return null;
      upsert(result.run);
      if (result.model && !models.includes(result.run.id)) models = [...models, result.run.id];
      notice = {
        kind: 'ok',
        text: `Imported run "${result.run.name}"${result.model ? ' with its model' : ' (no model in the zip)'}.`,
      };
      return result.run;
    },
    thumbnails(imageSize: ImageSize, imageIds: string[]) {
      return c().thumbnails(imageSize, imageIds);
    },
    predict(runId: string, file: File, tta: boolean, metadata: MetadataValues | null = null) {
      return c().predict(runId, file, { tta, metadata });
    },
  };
}

export const lab = createLab();
