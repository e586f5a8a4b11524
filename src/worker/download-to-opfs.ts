/**
 * Downloads a dataset zip from a URL into the Origin Private File System, resumably, for the ingest worker's
 * open-url command; the ingest then reads the OPFS File exactly like a dropped one (random access by Blob slices).
 *
 * Why a file in OPFS rather than reading the zip over HTTP ranges directly (zip.js's HttpRangeReader): the ingest
 * is built and measured on Blob byte ranges (the Kaggle 5 GB zip), so nothing downstream changes; a file on disk
 * resumes where a dropped connection left it, survives a reload, and keeps working offline afterwards.
 *
 * Layout, in `lesion-lab-downloads/` of the origin's OPFS, per URL (key = a hash of the URL):
 *   <key>.zip    the bytes, written in order with a SyncAccessHandle (dedicated workers only)
 *   <key>.json   DownloadRecord: URL, bytes written and flushed, total, ETag / Last-Modified, complete or not
 * The record is saved after each flush, so after a reload the download resumes from the last flushed byte.
 * What each answer of the server means is decided in src/lib/data/download.ts (pure, unit-tested).
 */
import {
  DownloadProblem,
  MAX_RESTARTS,
  downloadKey,
  downloadName,
  droppedProblem,
  fetchFailure,
  formatBytes,
  isRetryableStatus,
  judgeResponse,
  noRangeProblem,
  parseDownloadRecord,
  planRequest,
  retryDelay,
  type DownloadRecord,
} from '../lib/data/download.ts';

export const DOWNLOAD_DIRECTORY = 'lesion-lab-downloads';

/** Flush and save the record at least this often while bytes arrive. */
const SAVE_INTERVAL_MS = 1000;
const SAVE_INTERVAL_BYTES = 16 * 1024 * 1024;

export interface DownloadListener {
  /** Bytes on disk of `total`; `jumped` when the count did not grow smoothly (a resume, a restart). */
  progress(done: number, total: number | null, jumped: boolean): void;
  /** Something the user should know that is not a failure: a retry, a resume, a file that changed, offline. */
  notice(text: string, kind: 'info' | 'warn'): void;
}

export interface DownloadedFile {
  /** The OPFS file under the URL's file name. */
  file: File;
  record: DownloadRecord;
  /** A complete copy already on disk was used (checked against the server, or offline). */
  reused: boolean;
}

/** A storage problem (OPFS missing, or the file locked by another tab). */
export class DownloadStorageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DownloadStorageError';
  }
}

// FileSystemSyncAccessHandle as used here (see opfs-cache.ts for why it is declared locally).
interface SyncHandle {
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}
interface SyncCapable {
  createSyncAccessHandle(): Promise<SyncHandle>;
}

function isNamed(error: unknown, ...names: string[]): boolean {
  return (
    typeof error === 'object' && error !== null && names.includes((error as { name?: string }).name ?? '')
  );
}

async function downloadsDirectory(create: boolean): Promise<FileSystemDirectoryHandle | null> {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) {
    throw new DownloadStorageError(
      'This browser has no Origin Private File System, so nothing can be downloaded.',
    );
  }
  const root = await navigator.storage.getDirectory();
  try {
    return await root.getDirectoryHandle(DOWNLOAD_DIRECTORY, { create });
  } catch (error) {
    if (!create && isNamed(error, 'NotFoundError')) return null;
    throw error;
  }
}

/** Deletes every download (complete or partial). */
export async function forgetDownloads(): Promise<void> {
  const root = await navigator.storage.getDirectory();
  try {
    await root.removeEntry(DOWNLOAD_DIRECTORY, { recursive: true });
  } catch (error) {
    if (isNamed(error, 'NotFoundError')) return;
    if (isNamed(error, 'NoModificationAllowedError', 'InvalidModificationError')) {
      throw new DownloadStorageError(
        'A download is still in use (another tab may be downloading): close it, then forget again.',
        { cause: error },
      );
    }
    throw error;
  }
}

/** Opens a sync handle, waiting briefly for a handle of a worker that is going away (a reload) to be released. */
async function openSync(handle: FileSystemFileHandle, url: string): Promise<SyncHandle> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await (handle as unknown as SyncCapable).createSyncAccessHandle();
    } catch (error) {
      if (isNamed(error, 'NoModificationAllowedError', 'InvalidStateError') && attempt < 10) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (isNamed(error, 'NoModificationAllowedError', 'InvalidStateError')) {
        throw new DownloadStorageError(
          `The download of ${url} is in use in another tab of this app: close it there, then open it again.`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function availableBytes(): Promise<number> {
  const estimate = await navigator.storage.estimate?.();
  if (estimate?.quota === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(0, estimate.quota - (estimate.usage ?? 0));
}

/** The record file, written whole (truncate + write + flush) through its own sync handle. */
class RecordFile {
  constructor(private readonly handle: SyncHandle) {}

  save(record: DownloadRecord | null): void {
    const bytes = new TextEncoder().encode(record === null ? '' : JSON.stringify(record));
    this.handle.truncate(0);
    if (bytes.length > 0) this.handle.write(bytes, { at: 0 });
    this.handle.flush();
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * Downloads `url` (absolute, http(s)) into OPFS, or reuses the complete copy there if the server says it is
 * current (or cannot be reached). Rejects with a DownloadProblem naming the URL, a DownloadStorageError, or the
 * signal's reason once aborted (the partial file is kept, so opening the URL again resumes).
 */
export async function downloadToOpfs(
  url: string,
  pageOrigin: string,
  listener: DownloadListener,
  signal: AbortSignal,
): Promise<DownloadedFile> {
  signal.throwIfAborted();
  const dir = (await downloadsDirectory(true)) as FileSystemDirectoryHandle;
  const key = downloadKey(url);
  const dataHandle = await dir.getFileHandle(`${key}.zip`, { create: true });
  const recordHandle = await dir.getFileHandle(`${key}.json`, { create: true });
  let record = parseDownloadRecord(await (await recordHandle.getFile()).text(), url);
  const onDisk = (await dataHandle.getFile()).size;
  if (record !== null && onDisk < record.bytes) {
    // The record runs ahead of the data only if the browser lost unflushed writes: trust the file.
    record = { ...record, bytes: onDisk, complete: false, completedAt: null };
  }

  const data = await openSync(dataHandle, url);
  let records: RecordFile;
  try {
    records = new RecordFile(await openSync(recordHandle, url));
  } catch (error) {
    data.close();
    throw error;
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    data.close();
    records.close();
  };
  const finish = async (done: DownloadRecord, reused: boolean): Promise<DownloadedFile> => {
    close();
    const stored = await dataHandle.getFile();
    const lastModified = done.completedAt !== null ? Date.parse(done.completedAt) : stored.lastModified;
    const file = new File([stored], downloadName(url), { type: 'application/zip', lastModified });
    return { file, record: done, reused };
  };
  /** Drops what was written: the next open starts from 0. */
  const discard = () => {
    data.truncate(0);
    data.flush();
    records.save(null);
    record = null;
  };

  try {
    if (record !== null && !record.complete && record.bytes > 0) {
      listener.notice(
        `Resuming the download of ${url} from ${formatBytes(record.bytes)}` +
          `${record.total !== null ? ` of ${formatBytes(record.total)}` : ''}.`,
        'info',
      );
    }
    listener.progress(record?.complete ? 0 : (record?.bytes ?? 0), record?.total ?? null, true);

    let failures = 0;
    let tries = 0;
    let restarts = 0;
    for (;;) {
      signal.throwIfAborted();
      const plan = planRequest(record, url);
      let response: Response;
      try {
        response = await fetch(url, {
          headers: { Range: plan.range },
          // Ranges and the browser's HTTP cache do not mix well; the OPFS file is the cache.
          cache: 'no-store',
          credentials: 'same-origin',
          signal,
        });
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const problem = fetchFailure(url, pageOrigin, error);
        if (problem.code === 'other-origin') throw problem;
        if (record?.complete) {
          listener.notice(
            `${new URL(url).origin} cannot be reached: using the copy of ${url} downloaded on ` +
              `${new Date(record.completedAt ?? Date.now()).toLocaleString()}.`,
            'warn',
          );
          return await finish(record, true);
        }
        tries++;
        const delay = retryDelay(++failures);
        if (delay === null)
          throw record !== null && record.bytes > 0 ? droppedProblem(url, record, tries, error) : problem;
        listener.notice(`${problem.message} Trying again in ${delay / 1000} s.`, 'warn');
        await sleep(delay, signal);
        continue;
      }

      const verdict = judgeResponse(url, plan, record, response);
      if (verdict.kind !== 'write') await response.body?.cancel().catch(() => undefined);
      if (verdict.kind === 'complete') {
        const done: DownloadRecord = {
          ...(record as DownloadRecord),
          etag: verdict.validators.etag ?? record?.etag ?? null,
          lastModified: verdict.validators.lastModified ?? record?.lastModified ?? null,
          complete: true,
          completedAt: record?.completedAt ?? new Date().toISOString(),
        };
        done.total = done.bytes;
        records.save(done);
        listener.progress(done.bytes, done.total, true);
        return await finish(done, record?.complete === true);
      }
      if (verdict.kind === 'restart') {
        if (++restarts > MAX_RESTARTS) {
          throw new DownloadProblem(
            'protocol',
            `The file at ${url} kept changing while it was downloaded (${verdict.reason}). Try again later.`,
            url,
          );
        }
        listener.notice(`Downloading ${url} again from the start: ${verdict.reason}.`, 'warn');
        discard();
        listener.progress(0, null, true);
        continue;
      }
      if (verdict.kind === 'fail') {
        const { problem } = verdict;
        if (problem.code === 'http' && problem.status !== undefined && isRetryableStatus(problem.status)) {
          tries++;
          const delay = retryDelay(++failures);
          if (delay !== null) {
            listener.notice(`${problem.message} Trying again in ${delay / 1000} s.`, 'warn');
            await sleep(delay, signal);
            continue;
          }
        }
        if (problem.code === 'no-range') discard();
        throw problem;
      }

      // 'write': the body goes into the file from verdict.offset on.
      if (verdict.changed) {
        listener.notice(`The file at ${url} changed since it was downloaded: downloading it again.`, 'warn');
      }
      const total = verdict.validators.total ?? (verdict.offset > 0 ? (record?.total ?? null) : null);
      if (total !== null) {
        const needed = total - verdict.offset;
        const available = await availableBytes();
        if (needed > available) {
          await response.body?.cancel().catch(() => undefined);
          throw new DownloadProblem(
            'quota',
            `Not enough storage to download ${url}: it needs ${formatBytes(needed)} more and the browser offers ` +
              `${formatBytes(available)} for this site. Free disk space or forget other cached datasets.`,
            url,
          );
        }
      }
      data.truncate(verdict.offset);
      const current: DownloadRecord = {
        url,
        bytes: verdict.offset,
        total,
        etag: verdict.validators.etag,
        lastModified: verdict.validators.lastModified,
        ranges: verdict.ranges || (verdict.offset > 0 && record?.ranges === true),
        complete: false,
        completedAt: null,
      };
      record = current;
      records.save(current);
      listener.progress(current.bytes, current.total, true);

      const startedAt = current.bytes;
      let dropped: unknown = null;
      try {
        await writeBody(response, data, current, records, listener, signal);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        dropped = error;
      }
      if (dropped === null && current.total !== null && current.bytes < current.total) {
        dropped = new Error(
          `the connection closed after ${formatBytes(current.bytes)} of ${formatBytes(current.total)}`,
        );
      }
      if (dropped === null) {
        if (current.total !== null && current.bytes > current.total) {
          discard();
          throw new DownloadProblem(
            'protocol',
            `The server sent more of ${url} than its announced length (${current.total} bytes). Try again.`,
            url,
          );
        }
        const done: DownloadRecord = {
          ...current,
          total: current.bytes,
          complete: true,
          completedAt: new Date().toISOString(),
        };
        records.save(done);
        listener.progress(done.bytes, done.total, false);
        return await finish(done, false);
      }
      // The connection dropped mid-body.
      if (!current.ranges) {
        const problem = noRangeProblem(url, current.bytes);
        discard();
        throw problem;
      }
      tries++;
      if (current.bytes > startedAt) failures = 0;
      const delay = retryDelay(++failures);
      if (delay === null) throw droppedProblem(url, current, tries, dropped);
      listener.notice(
        `The connection dropped after ${formatBytes(current.bytes)}` +
          `${current.total !== null ? ` of ${formatBytes(current.total)}` : ''}: resuming in ${delay / 1000} s.`,
        'info',
      );
      await sleep(delay, signal);
    }
  } finally {
    close();
  }
}

/** Streams the body into the file at `record.bytes`, flushing and saving the record about once a second. */
async function writeBody(
  response: Response,
  data: SyncHandle,
  record: DownloadRecord,
  records: RecordFile,
  listener: DownloadListener,
  signal: AbortSignal,
): Promise<void> {
  if (response.body === null) return;
  const reader = response.body.getReader();
  let savedAt = performance.now();
  let savedBytes = record.bytes;
  const save = () => {
    data.flush();
    records.save(record);
    savedAt = performance.now();
    savedBytes = record.bytes;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let written = 0;
      while (written < value.length) {
        const n = data.write(value.subarray(written), { at: record.bytes + written });
        if (n <= 0)
          throw new DownloadStorageError(`Could not write ${record.url} to this browser's storage.`);
        written += n;
      }
      record.bytes += value.length;
      listener.progress(record.bytes, record.total, false);
      if (performance.now() - savedAt >= SAVE_INTERVAL_MS || record.bytes - savedBytes >= SAVE_INTERVAL_BYTES)
        save();
      if (signal.aborted) throw signal.reason;
    }
  } finally {
    // Whatever ends the body (the end, a drop, a cancel), what was written counts from now on.
    save();
    reader.releaseLock();
  }
}
