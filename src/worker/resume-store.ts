/**
 * Resumable runs in OPFS, written by the training worker: `lesion-lab-train/resume/<runId>/`
 *
 *   run.json          what the run was started with (the page's run record, the run config, the weights source and a
 *                     fingerprint of the pretrained weights), written when the run starts
 *   a.bin / a.json    one resume point (src/lib/train/resume.ts): float32 data, then its manifest
 *   b.bin / b.json    the other slot: each save writes the slot not in force
 *   marker.json       names the slot in force; written last, so it only ever names a complete pair
 *
 * Every file is written with a writable stream, which Chromium writes to a swap file and moves into place on close(),
 * so a tab closed mid-write leaves the old file. A run in progress holds the Web Lock `lesion-lab-run:<runId>`;
 * a run whose lock is free and that has a marker was interrupted, and is offered for resuming.
 */
import type { RunRecord } from '../lib/runs/record.ts';
import type { RunConfig } from '../lib/train/config.ts';
import type { EpochLog, Phase } from '../lib/train/logs.ts';
import {
  decodeResumePoint,
  encodeResumePoint,
  parseExact,
  resumePointBytes,
  stringifyExact,
  type ResumeEvent,
  type ResumeManifest,
  type ResumePoint,
  type ResumeStore,
} from '../lib/train/resume.ts';
import { isQuotaExceeded, StorageFullError } from '../lib/storage-full.ts';
import type { WeightsSource } from './train-protocol.ts';

export const TRAIN_DIRECTORY = 'lesion-lab-train';
const RESUME_DIRECTORY = 'resume';
const MARKER = 'marker.json';
const RUN_FILE = 'run.json';

/** The weights sources a run can be resumed with (dropped files are gone after a reload; their stored copy is not). */
export type ResumableWeights = Extract<WeightsSource, { kind: 'tfjs-url' | 'stored' | 'none' }>;

export interface ResumableRun {
  format: 'lesion-lab-resumable-run';
  version: 1;
  /** The worker's name for the run's checkpoints (`<runId>-best-phase1`). */
  runId: string;
  /** The page's record as the run started (id, name, created, config); history and events come from the point. */
  record: RunRecord;
  config: Partial<RunConfig>;
  weights: ResumableWeights;
  /** Fingerprint of the pretrained weights the run started from (null: random base). */
  weightsFingerprint: string | null;
  startedAt: string;
}

export interface Marker {
  slot: 'a' | 'b';
  phase: Phase;
  epoch: number;
  bytes: number;
  savedAt: string;
}

/** A run that can be resumed, as the page offers it. */
export interface ResumeOffer {
  runId: string;
  record: RunRecord;
  config: Partial<RunConfig>;
  weights: ResumableWeights;
  phase: Phase;
  /** Epochs of `phase` finished. */
  epoch: number;
  /** Epochs planned for `phase`. */
  epochs: number;
  savedAt: string;
  history: EpochLog[];
  events: ResumeEvent[];
}

export function lockName(runId: string): string {
  return `lesion-lab-run:${runId}`;
}

function isNamed(error: unknown, ...names: string[]): boolean {
  return (
    typeof error === 'object' && error !== null && names.includes((error as { name?: string }).name ?? '')
  );
}

async function resumeRoot(create: boolean): Promise<FileSystemDirectoryHandle | null> {
  const root = await navigator.storage.getDirectory();
  try {
    const train = await root.getDirectoryHandle(TRAIN_DIRECTORY, { create });
    return await train.getDirectoryHandle(RESUME_DIRECTORY, { create });
  } catch (error) {
    if (!create && isNamed(error, 'NotFoundError')) return null;
    throw error;
  }
}

async function writeFile(dir: FileSystemDirectoryHandle, name: string, body: BlobPart): Promise<void> {
  const handle = await dir.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  try {
    await writable.write(body);
    await writable.close();
  } catch (error) {
    await writable.abort().catch(() => undefined);
    throw error;
  }
}

async function readText(dir: FileSystemDirectoryHandle, name: string): Promise<string | null> {
  try {
    return await (await (await dir.getFileHandle(name)).getFile()).text();
  } catch (error) {
    if (isNamed(error, 'NotFoundError')) return null;
    throw error;
  }
}

/** Epochs planned for `phase` of `config` (the defaults apply where the config says nothing). */
function plannedEpochs(config: Partial<RunConfig>, phase: Phase): number {
  return phase === 2 ? (config.phase2?.epochs ?? 0) : (config.epochs ?? 30);
}

/** The resume points of one run; the training worker passes it to runSession as its ResumeStore. */
export class OpfsResumeStore implements ResumeStore {
  /** The marker of the point in force (null before the first). */
  marker: Marker | null = null;

  private constructor(
    private readonly dir: FileSystemDirectoryHandle,
    readonly runId: string,
  ) {}

  /** Starts a run's directory with its run.json (replacing what an earlier run of that id left). */
  static async create(run: ResumableRun): Promise<OpfsResumeStore> {
    const root = (await resumeRoot(true))!;
    await root.removeEntry(run.runId, { recursive: true }).catch(() => undefined);
    const dir = await root.getDirectoryHandle(run.runId, { create: true });
    await writeFile(dir, RUN_FILE, stringifyExact(run));
    return new OpfsResumeStore(dir, run.runId);
  }

  /** Opens an interrupted run's directory to go on saving points there. */
  static async open(runId: string): Promise<OpfsResumeStore> {
    const root = await resumeRoot(false);
    if (!root) throw new Error(`no resumable run ${runId} in this browser`);
    const store = new OpfsResumeStore(await root.getDirectoryHandle(runId), runId);
    const marker = await readText(store.dir, MARKER);
    store.marker = marker ? (JSON.parse(marker) as Marker) : null;
    return store;
  }

  async save(point: ResumePoint): Promise<void> {
    const encoded = encodeResumePoint(point);
    const next = this.marker?.slot === 'a' ? 'b' : 'a';
    const bytes = resumePointBytes(encoded);
    const marker: Marker = {
      slot: next,
      phase: point.phase,
      epoch: point.epoch,
      bytes,
      savedAt: new Date().toISOString(),
    };
    try {
      await writeFile(this.dir, `${next}.bin`, encoded.data.buffer as ArrayBuffer);
      await writeFile(this.dir, `${next}.json`, stringifyExact(encoded.manifest));
      // The flip: from here on the new point is the one in force.
      await writeFile(this.dir, MARKER, JSON.stringify(marker));
    } catch (error) {
      if (!isQuotaExceeded(error)) throw error;
      const before = this.marker;
      throw new StorageFullError(
        {
          what: `the resume checkpoint of epoch ${point.epoch}${point.phase === 2 ? ' of phase 2' : ''}`,
          neededBytes: bytes,
          estimate: await navigator.storage.estimate?.().catch(() => undefined),
          kept: before
            ? `Training stopped; the run is kept as it was after epoch ${before.epoch}${before.phase === 2 ? ' of phase 2' : ''} and can be resumed from there.`
            : 'Training stopped before its first checkpoint, so there is nothing to resume.',
          then: before ? 'then Resume the run' : 'then start the run again',
        },
        { cause: error },
      );
    }
    this.marker = marker;
  }

  /** The point in force, or null when no epoch finished. */
  async load(): Promise<ResumePoint | null> {
    if (this.marker === null) return null;
    const { slot } = this.marker;
    const manifest = parseExact((await readText(this.dir, `${slot}.json`)) ?? 'null') as ResumeManifest;
    const data = await (await (await this.dir.getFileHandle(`${slot}.bin`)).getFile()).arrayBuffer();
    if (data.byteLength % 4 !== 0)
      throw new Error(`the resume data of ${this.runId} is damaged (odd length)`);
    return decodeResumePoint(manifest, new Float32Array(data));
  }

  async run(): Promise<ResumableRun> {
    const text = await readText(this.dir, RUN_FILE);
    if (text === null) throw new Error(`the resumable run ${this.runId} has no run.json`);
    return parseExact(text) as ResumableRun;
  }
}

/** Web Locks held or waited for now (runs in progress in any tab or worker of this origin). */
async function lockedNames(): Promise<Set<string>> {
  const state = await navigator.locks.query();
  return new Set([...(state.held ?? []), ...(state.pending ?? [])].map((l) => l.name ?? ''));
}

/**
 * Interrupted runs that can be resumed, newest first. Directories of runs that ended before their first point,
 * or whose files are unreadable, are deleted on the way (unless a run holds them).
 */
export async function listResumable(): Promise<ResumeOffer[]> {
  const root = await resumeRoot(false);
  if (!root) return [];
  const locked = await lockedNames();
  const offers: ResumeOffer[] = [];
  const names: string[] = [];
  for await (const [name, handle] of root as unknown as AsyncIterable<[string, FileSystemHandle]>) {
    if (handle.kind === 'directory') names.push(name);
  }
  for (const runId of names) {
    if (locked.has(lockName(runId))) continue;
    try {
      const store = await OpfsResumeStore.open(runId);
      const point = await store.load();
      if (!point) {
        await root.removeEntry(runId, { recursive: true });
        continue;
      }
      const run = await store.run();
      offers.push({
        runId,
        record: run.record,
        config: run.config,
        weights: run.weights,
        phase: point.phase,
        epoch: point.epoch,
        epochs: plannedEpochs(run.config, point.phase),
        savedAt: store.marker!.savedAt,
        history: point.history,
        events: point.events,
      });
    } catch (error) {
      console.warn(`resumable run ${runId} is unreadable and is deleted: ${String(error)}`);
      await root.removeEntry(runId, { recursive: true }).catch(() => undefined);
    }
  }
  return offers.sort((a, b) => (a.savedAt < b.savedAt ? 1 : -1));
}

/** Deletes a run's resume points; false when there were none. Refused while the run holds its lock. */
export async function discardResumable(runId: string): Promise<boolean> {
  const root = await resumeRoot(false);
  if (!root) return false;
  if ((await lockedNames()).has(lockName(runId))) {
    throw new Error('This run is training now (in this tab or another): stop it there first.');
  }
  try {
    await root.removeEntry(runId, { recursive: true });
    return true;
  } catch (error) {
    if (isNamed(error, 'NotFoundError')) return false;
    throw error;
  }
}
