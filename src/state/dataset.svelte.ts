/**
 * The dataset as the UI sees it: what was dropped, the metadata in use, the match report, the cache on disk,
 * live progress and errors. It mirrors the ingest worker's events (IngestClient); the UI reads the getters and
 * calls the actions, and never talks to a worker itself.
 */
import {
  DEFAULT_IMAGE_SIZE,
  IngestClient,
  IngestFailure,
  type CacheSummary,
  type DroppedFileInfo,
  type ImageSize,
  type IngestError,
  type IngestEvent,
  type InterruptedCache,
  type ListingSummary,
  type Sample,
  type StageProgress,
} from '../worker/ingest-client.ts';
import type { MatchReport, Metadata } from '../lib/data/types.ts';
import { DownloadProblem, formatBytes, parseDatasetUrl } from '../lib/data/download.ts';
import { buildEdaView, type EdaView } from './eda.svelte.ts';
import { servedUrl } from './served-url.ts';

export type DatasetPhase = 'idle' | 'restoring' | 'adding' | 'opening' | 'caching' | 'forgetting';

/** The sample pack served with the app (made by `npm run sample`; see public/samples/ATTRIBUTION.md). */
export const SAMPLE_PATH = 'samples/ham10000-sample.zip';
export const SAMPLE_ATTRIBUTION_PATH = 'samples/ATTRIBUTION.md';

/** The query parameter that opens a dataset on load: `?dataset=<url>` (relative to the page, same origin). */
export const DATASET_QUERY = 'dataset';

/**
 * The URL being opened, kept for this tab only: a reload in the middle of a download opens it again, which
 * resumes from the partial file. Cleared when the open ends in any way other than the page going away.
 */
const OPENING_KEY = 'lesion-lab:opening-url';

function rememberOpening(url: string | null): void {
  try {
    if (url === null) sessionStorage.removeItem(OPENING_KEY);
    else sessionStorage.setItem(OPENING_KEY, url);
  } catch {
    // Storage disabled: a reload then needs one more click, and the download still resumes.
  }
}

function interruptedOpening(): string | null {
  try {
    return sessionStorage.getItem(OPENING_KEY);
  } catch {
    return null;
  }
}

/** An error as shown: the worker's IngestError plus an id so the user can dismiss it. */
export interface ShownError extends IngestError {
  id: number;
}

function sameProblem(a: IngestError, b: IngestError): boolean {
  return (
    a.code === b.code &&
    a.message === b.message &&
    a.fileName === b.fileName &&
    a.url === b.url &&
    a.entry === b.entry &&
    a.line === b.line &&
    a.column === b.column
  );
}

/** A one-off message about what just happened (restored, forgotten, cancelled). */
export interface DatasetNotice {
  kind: 'ok' | 'info' | 'warn';
  text: string;
}

function createDataset() {
  let client: IngestClient | null = null;
  let phase = $state<DatasetPhase>('idle');
  let stages = $state.raw<StageProgress[]>([]);
  let stopped = $state(false);
  let files = $state.raw<DroppedFileInfo[]>([]);
  let listing = $state.raw<ListingSummary | null>(null);
  let metadata = $state.raw<Metadata | null>(null);
  let metadataLocation = $state<string | null>(null);
  let match = $state.raw<MatchReport | null>(null);
  let cache = $state.raw<CacheSummary | null>(null);
  let restored = $state(false);
  let errors = $state.raw<ShownError[]>([]);
  let notice = $state.raw<DatasetNotice | null>(null);
  let imageSize = $state<ImageSize>(DEFAULT_IMAGE_SIZE);
  let samples = $state.raw<Sample[] | null>(null);
  let samplesFor: string | null = null;
  let samplesLoading = $state(false);
  /** The URL being downloaded and opened, while phase is 'opening'. */
  let openingUrl = $state<string | null>(null);
  let nextErrorId = 1;
  /** Caches whose writing was cut short (closed tab, crash, storage full): offered for continuing. */
  let interrupted = $state.raw<InterruptedCache[]>([]);
  /** The restore started on page load; files dropped meanwhile wait for it instead of being refused. */
  let restoring: Promise<void> | null = null;

  const eda = $derived<EdaView | null>(metadata ? buildEdaView(metadata) : null);

  /** The same problem again (the same bad file dropped twice, a second busy refusal) replaces the first. */
  function addError(error: IngestError) {
    errors = [...errors.filter((e) => !sameProblem(e, error)), { ...error, id: nextErrorId++ }];
  }

  function onEvent(event: IngestEvent) {
    switch (event.type) {
      case 'progress':
        stages = event.stages;
        break;
      case 'files':
        files = event.files;
        listing = event.listing;
        break;
      case 'metadata':
        metadata = event.metadata;
        metadataLocation = event.location;
        restored = event.restored;
        break;
      case 'match':
        match = event.report;
        break;
      case 'cache':
        cache = event.cache;
        break;
      case 'error':
        addError(event.error);
        break;
      case 'cancelled':
        stopped = true;
        break;
      case 'notice':
        notice = { kind: event.kind, text: event.text };
        break;
    }
  }

  async function refreshInterrupted(): Promise<void> {
    try {
      interrupted = await ingest().interrupted();
    } catch {
      interrupted = [];
    }
  }

  function ingest(): IngestClient {
    if (client === null) {
      client = new IngestClient({ imageSize });
      client.on(onEvent);
    }
    return client;
  }

  /**
   * Runs one exclusive command. Failures other than 'busy' and 'cancelled' already arrived as `error` events;
   * a 'busy' refusal only comes back as the rejection, so it is shown from here.
   */
  async function run<T>(next: DatasetPhase, work: (c: IngestClient) => Promise<T>): Promise<T | null> {
    if (phase !== 'idle') {
      addError({ code: 'busy', message: `Still ${phase} the dataset: wait for it or cancel it first.` });
      return null;
    }
    const c = ingest();
    phase = next;
    try {
      return await work(c);
    } catch (error) {
      if (error instanceof IngestFailure) {
        if (error.error.code === 'busy') addError(error.error);
      } else {
        addError({ code: 'internal', message: `Unexpected problem: ${String(error)}` });
      }
      return null;
    } finally {
      phase = 'idle';
    }
  }

  return {
    get phase() {
      return phase;
    },
    get busy() {
      return phase !== 'idle';
    },
    /** Progress of the current or last run, one entry per stage started. */
    get stages() {
      return stages;
    },
    /** The last run was cancelled: its bars stay, marked as stopped. */
    get stopped() {
      return stopped;
    },
    get files() {
      return files;
    },
    get listing() {
      return listing;
    },
    get metadata() {
      return metadata;
    },
    get metadataLocation() {
      return metadataLocation;
    },
    get match() {
      return match;
    },
    get cache() {
      return cache;
    },
    /** A complete cache is on disk: training and the sample grid can use it. */
    get cached() {
      return cache !== null;
    },
    /** The dataset came back from this browser's cache, not from a drop in this visit. */
    get restored() {
      return restored;
    },
    get errors() {
      return errors;
    },
    get notice() {
      return notice;
    },
    get imageSize() {
      return imageSize;
    },
    get eda() {
      return eda;
    },
    get samples() {
      return samples;
    },
    get samplesLoading() {
      return samplesLoading;
    },
    get openingUrl() {
      return openingUrl;
    },
    /**
     * The dataset in use is the sample served with the app, alone: opened in this visit, or restored from a cache
     * made of it. The sample holds the full metadata and a selection of the images, so rows without an image are
     * expected there, not a problem.
     */
    get isSample(): boolean {
      const sample = servedUrl(SAMPLE_PATH);
      const sources: readonly { url?: string }[] =
        files.length > 0 ? files : restored ? (cache?.sources ?? []) : [];
      return sources.length === 1 && sources[0]?.url === sample;
    },
    /** Images the worker can cache now: matched in this visit (a restored dataset's images live only in the cache). */
    get cacheable(): number {
      return restored && files.length === 0 ? 0 : (match?.matched ?? 0);
    },

    setImageSize(size: ImageSize) {
      imageSize = size;
      client?.setImageSize(size);
    },

    dismissError(id: number) {
      errors = errors.filter((e) => e.id !== id);
    },

    dismissNotice() {
      notice = null;
    },

    /** Brings back the dataset cached by an earlier visit, if there is one. */
    restore(): Promise<void> {
      restoring ??= (async () => {
        const snapshot = await run('restoring', (c) => c.restore());
        await refreshInterrupted();
        if (!snapshot?.cache) return;
        const c = snapshot.cache;
        imageSize = c.size;
        client?.setImageSize(c.size);
        const when = new Date(c.createdAt).toLocaleString();
        notice = {
          kind: 'ok',
          text:
            `Restored the dataset cached in this browser on ${when}: ${c.count.toLocaleString('en-US')} images at ` +
            `${c.size} px with ${c.metadataFile}. Nothing was dropped or read again.`,
        };
      })().finally(() => {
        restoring = null;
      });
      return restoring;
    },

    async addFiles(list: File[]) {
      if (list.length === 0) return;
      if (restoring) await restoring;
      notice = null;
      stopped = false;
      stages = [];
      const snapshot = await run('adding', (c) => c.addFiles(list));
      if (snapshot) restored = snapshot.restored;
    },

    /**
     * Downloads the dataset zip at `input` (an address, or a path relative to the page) and adds it like a drop.
     * Resolves true when the zip was opened (its match report is then shown, and the cache step offered).
     */
    async openUrl(input: string): Promise<boolean> {
      let url: string;
      try {
        url = parseDatasetUrl(input, document.baseURI);
      } catch (error) {
        if (!(error instanceof DownloadProblem)) throw error;
        addError({ code: 'download', message: error.message, url: error.url });
        return false;
      }
      if (restoring) await restoring;
      notice = null;
      stopped = false;
      stages = [];
      openingUrl = url;
      rememberOpening(url);
      try {
        const snapshot = await run('opening', (c) => c.openUrl(url));
        if (snapshot === null) return false;
        restored = snapshot.restored;
        const file = snapshot.files.at(-1);
        // `notice` may have been set by the worker's events meanwhile (a retry, an offline copy): keep a warning.
        const news = notice as DatasetNotice | null;
        if (news?.kind !== 'warn' && file !== undefined) {
          notice = {
            kind: 'ok',
            text:
              `Opened ${url} (${formatBytes(file.size)}). The file is kept in this browser: opening it again ` +
              'checks it with the server and works offline.',
          };
        }
        return snapshot.errors.length === 0;
      } finally {
        openingUrl = null;
        rememberOpening(null);
      }
    },

    /** The sample pack served with the app: a small, attributed part of HAM10000 to try everything with. */
    openSample(): Promise<boolean> {
      return this.openUrl(servedUrl(SAMPLE_PATH));
    },

    /**
     * On page load, after the restore: opens `?dataset=<url>` of the page's address, or else the URL whose
     * download a reload of this tab interrupted (both resume from the partial file).
     */
    async openOnLoad(search: string): Promise<void> {
      const url = new URLSearchParams(search).get(DATASET_QUERY)?.trim() || interruptedOpening();
      if (url === null || url === '') return;
      await this.openUrl(url);
    },

    async startCaching() {
      notice = null;
      stopped = false;
      stages = [];
      const summary = await run('caching', (c) => c.startCaching(imageSize));
      await refreshInterrupted();
      if (summary) {
        samples = null;
        samplesFor = null;
        const reused = summary.timings?.reused ?? 0;
        if (reused > 0) {
          notice = {
            kind: 'ok',
            text:
              `Continued the interrupted caching: ${reused.toLocaleString('en-US')} images were already cached, ` +
              `${(summary.count - reused).toLocaleString('en-US')} decoded now; ` +
              `${summary.count.toLocaleString('en-US')} images at ${summary.size} px in all.`,
          };
        }
      }
    },

    /** Caches whose writing was cut short, offered for continuing (newest knowledge after each caching run). */
    get interrupted() {
      return interrupted;
    },

    /**
     * Continues an interrupted caching: files opened from this site (the sample, a pack) are opened again by
     * themselves and the caching goes on with the images not cached yet; dropped files must be dropped again.
     */
    async continueCaching(size: ImageSize) {
      const cut = interrupted.find((c) => c.size === size);
      if (!cut) return;
      this.setImageSize(size);
      if (cut.urls.length === 0) {
        notice = {
          kind: 'info',
          text:
            `Drop ${cut.sources.map((s) => s.name).join(', ')} again, then press "Decode and cache": the ` +
            `${cut.done.toLocaleString('en-US')} images already cached at ${size} px are kept and only the rest is decoded.`,
        };
        return;
      }
      for (const url of cut.urls) if (!(await this.openUrl(url))) return;
      this.setImageSize(size);
      await this.startCaching();
    },

    /** Deletes an interrupted cache's images, so the next caching of that size starts from the first image. */
    async discardCaching(size: ImageSize) {
      await run('forgetting', (c) => c.discardPartial(size));
      await refreshInterrupted();
    },

    /** Stops listing, reading or caching; what was loaded before stays. */
    async cancel() {
      if (!client || phase === 'idle') return;
      const downloading = phase === 'opening';
      await client.cancel().catch(() => false);
      notice = {
        kind: 'info',
        text: downloading
          ? 'Stopped. The part downloaded so far is kept in this browser: open the same address again to resume.'
          : 'Stopped. Everything loaded before is still here; an older cache is kept.',
      };
    },

    /** Deletes every cache and forgets the files and metadata of this visit. */
    async forget() {
      const firstNew = nextErrorId;
      const removed = await run('forgetting', (c) => c.forget());
      if (removed === null) return;
      // A drop while forgetting was refused as busy: that message stays, or the files would vanish silently.
      const during = errors.filter((e) => e.id >= firstNew);
      files = [];
      listing = null;
      metadata = null;
      metadataLocation = null;
      match = null;
      cache = null;
      restored = false;
      stages = [];
      stopped = false;
      errors = during;
      samples = null;
      samplesFor = null;
      notice = {
        kind: 'ok',
        text:
          removed.length > 0
            ? `Forgotten: the cached images (${removed.map((s) => `${s} px`).join(', ')}) and metadata were deleted from this browser.`
            : 'Forgotten: nothing was cached; the files of this visit were let go.',
      };
    },

    /** Loads up to `perClass` cached images per class for the sample grid, once per cache. */
    async loadSamples(perClass: number) {
      if (!cache) return;
      const key = `${cache.size}:${cache.createdAt}:${perClass}`;
      if (samplesFor === key || samplesLoading) return;
      samplesLoading = true;
      try {
        samples = await ingest().samples(perClass, cache.size);
        samplesFor = key;
      } catch (error) {
        if (error instanceof IngestFailure) {
          if (error.error.code === 'busy') addError(error.error);
        }
      } finally {
        samplesLoading = false;
      }
    },
  };
}

export const dataset = createDataset();
