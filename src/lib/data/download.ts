/**
 * Downloading a dataset from a URL into the browser's private storage, resumably: the decisions, kept pure so that
 * Node tests cover them. The worker side (src/worker/download-to-opfs.ts) does the fetches and the writes and asks
 * this module what each answer means.
 *
 * Every request carries `Range: bytes=<offset>-`:
 * - a fresh download asks from 0 (a server without range support answers 200 with the whole file: fine);
 * - a partial one (a dropped connection, a reload) asks from the bytes already written, and the answer must be 206
 *   with a Content-Range starting there and the same validators (ETag, Last-Modified, total length) as before,
 *   otherwise the file changed and the download restarts;
 * - a complete one asks for its last byte: the same validators mean the copy on this machine is current (one byte
 *   crosses the network, and with no network at all the copy is used as it is).
 * Validators are compared by hand rather than sent as If-Range / If-None-Match: static servers differ in which
 * conditional headers they honour (Vite's ignores If-Range and If-Modified-Since), but all of them send the headers.
 */

/** What is kept next to a downloaded or partly downloaded file, so that it can resume after a reload. */
export interface DownloadRecord {
  url: string;
  /** Bytes written to the file and flushed. */
  bytes: number;
  /** The file's full length, when the server said it. */
  total: number | null;
  etag: string | null;
  lastModified: string | null;
  /** The server answered a range request with 206, or advertised `Accept-Ranges: bytes`. */
  ranges: boolean;
  complete: boolean;
  /** ISO 8601, when complete. */
  completedAt: string | null;
}

export interface Validators {
  etag: string | null;
  lastModified: string | null;
  total: number | null;
}

export type ContentRange =
  | { kind: 'range'; start: number; end: number; total: number | null }
  /** `bytes *` then `/<total>`: sent with 416 Range Not Satisfiable. */
  | { kind: 'unsatisfied'; total: number };

/** Parses `Content-Range: bytes <start>-<end>/<total|*>` (RFC 9110 §14.4); null when absent or malformed. */
export function parseContentRange(header: string | null): ContentRange | null {
  if (header === null) return null;
  const text = header.trim();
  const unsatisfied = /^bytes\s+\*\/(\d+)$/i.exec(text);
  if (unsatisfied) return { kind: 'unsatisfied', total: Number(unsatisfied[1]) };
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(text);
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? null : Number(m[3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return null;
  if (total !== null && (!Number.isSafeInteger(total) || end >= total)) return null;
  return { kind: 'range', start, end, total };
}

/** The request to make next. */
export interface DownloadPlan {
  /** Where the body of a 206 answer goes in the file. */
  offset: number;
  /** `bytes=<offset>-` */
  range: string;
  /** Checking a complete copy (asks for its last byte only). */
  revalidate: boolean;
}

/** What to ask for, given what is on disk for this URL. */
export function planRequest(record: DownloadRecord | null, url: string): DownloadPlan {
  if (record === null || record.url !== url || record.bytes <= 0) return fresh();
  if (record.complete) {
    // An empty file cannot be checked by its last byte; fetching it again costs nothing.
    if (record.bytes === 0) return fresh();
    return { offset: record.bytes - 1, range: `bytes=${record.bytes - 1}-`, revalidate: true };
  }
  return { offset: record.bytes, range: `bytes=${record.bytes}-`, revalidate: false };
}

function fresh(): DownloadPlan {
  return { offset: 0, range: 'bytes=0-', revalidate: false };
}

/** The parts of a fetch Response the decisions need (a Response fits). */
export interface ResponseHead {
  status: number;
  statusText?: string;
  headers: { get(name: string): string | null };
}

export type DownloadProblemCode =
  /** The URL is not an http(s) address. */
  | 'bad-url'
  /** Another origin: the page's Content-Security-Policy (connect-src 'self') forbids the request. */
  | 'other-origin'
  /** An HTTP error status. */
  | 'http'
  /** No connection, or it dropped and the retries failed. */
  | 'network'
  /** The connection dropped and the server cannot resume (no range support). */
  | 'no-range'
  /** The server answered a range request with another range, or kept changing the file. */
  | 'protocol'
  /** Not enough storage for the file. */
  | 'quota';

/** A download that cannot go on. The message names the URL and says what to do. */
export class DownloadProblem extends Error {
  constructor(
    readonly code: DownloadProblemCode,
    message: string,
    readonly url: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DownloadProblem';
  }
}

export type Verdict =
  /** Write the body from `offset` on (truncating the file there); the record is updated from `validators`. */
  | { kind: 'write'; offset: number; validators: Validators; ranges: boolean; changed: boolean }
  /** The copy on disk is complete and current: do not read the body. */
  | { kind: 'complete'; validators: Validators }
  /** The file on the server is not the one partly downloaded: drop the partial file and ask again from 0. */
  | { kind: 'restart'; reason: string }
  | { kind: 'fail'; problem: DownloadProblem };

/** Statuses worth another try after a pause: timeouts, rate limits, overloaded or restarting servers. */
const RETRYABLE_STATUSES = new Set([408, 425, 429, 500, 502, 503, 504]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** Validators of an answer. A compressed transfer's length is not the file's, so it is then unknown. */
export function validatorsOf(head: ResponseHead, contentRange: ContentRange | null): Validators {
  const encoding = head.headers.get('content-encoding');
  const encoded = encoding !== null && encoding.trim().toLowerCase() !== 'identity';
  let total: number | null = null;
  if (contentRange !== null) total = contentRange.total;
  else if (head.status === 200 && !encoded) total = numberOrNull(head.headers.get('content-length'));
  return {
    etag: head.headers.get('etag'),
    lastModified: head.headers.get('last-modified'),
    total,
  };
}

function numberOrNull(text: string | null): number | null {
  if (text === null || !/^\s*\d+\s*$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/** What differs between what was recorded and what the server says now; null when nothing known differs. */
export function changedValidator(record: Validators, now: Validators): string | null {
  if (record.etag !== null && now.etag !== null && record.etag !== now.etag)
    return `its ETag changed from ${record.etag} to ${now.etag}`;
  if (record.lastModified !== null && now.lastModified !== null && record.lastModified !== now.lastModified)
    return `it was modified (${now.lastModified})`;
  if (record.total !== null && now.total !== null && record.total !== now.total)
    return `its length changed from ${record.total} to ${now.total} bytes`;
  return null;
}

export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** Decides what an answer to `plan` means. */
export function judgeResponse(
  url: string,
  plan: DownloadPlan,
  record: DownloadRecord | null,
  head: ResponseHead,
): Verdict {
  const { status } = head;
  if ((status === 200 || status === 206) && isWebPage(head)) {
    return {
      kind: 'fail',
      problem: new DownloadProblem(
        'http',
        `Could not download ${url}: the server answered with a web page, not a zip. Most likely nothing is at ` +
          'that address (single-page hosts, Vite’s preview among them, answer unknown paths with the app’s own ' +
          'page). Check the address.',
        url,
        status,
      ),
    };
  }
  if (status === 206) return judgePartial(url, plan, record, head);
  if (status === 200) {
    const validators = validatorsOf(head, null);
    const ranges = (head.headers.get('accept-ranges') ?? '').toLowerCase().includes('bytes');
    if (plan.offset === 0 && !plan.revalidate) {
      return { kind: 'write', offset: 0, validators, ranges, changed: false };
    }
    // Asked for a range and got the whole file: either it changed (then this body is the new file) or the server
    // ignores ranges.
    const changed = record === null ? null : changedValidator(record, validators);
    if (plan.revalidate) {
      // A complete copy: current if nothing the server says differs (and it says something); else this body is
      // the file again, so it is written over the copy.
      if (record !== null && changed === null && hasAnyValidator(validators))
        return { kind: 'complete', validators };
      return { kind: 'write', offset: 0, validators, ranges, changed: true };
    }
    if (changed !== null) return { kind: 'write', offset: 0, validators, ranges, changed: true };
    return { kind: 'fail', problem: noRangeProblem(url, record?.bytes ?? plan.offset) };
  }
  if (status === 416) {
    const range = parseContentRange(head.headers.get('content-range'));
    // Everything was already written (the record was saved just before it could say "complete").
    if (record !== null && range?.kind === 'unsatisfied' && range.total === plan.offset && plan.offset > 0) {
      return { kind: 'complete', validators: { ...validatorsOf(head, range), total: range.total } };
    }
    if (plan.offset > 0)
      return {
        kind: 'restart',
        reason: 'the file on the server is shorter than the part already downloaded',
      };
    return { kind: 'fail', problem: httpProblem(url, head) };
  }
  return { kind: 'fail', problem: httpProblem(url, head) };
}

function isWebPage(head: ResponseHead): boolean {
  return /^\s*(text\/html|application\/xhtml\+xml)\b/i.test(head.headers.get('content-type') ?? '');
}

function hasAnyValidator(v: Validators): boolean {
  return v.etag !== null || v.lastModified !== null || v.total !== null;
}

function judgePartial(
  url: string,
  plan: DownloadPlan,
  record: DownloadRecord | null,
  head: ResponseHead,
): Verdict {
  const range = parseContentRange(head.headers.get('content-range'));
  if (range === null || range.kind !== 'range') {
    return {
      kind: 'fail',
      problem: new DownloadProblem(
        'protocol',
        `The server at ${originOf(url)} answered the request for ${url} with 206 Partial Content but no usable ` +
          `Content-Range (${head.headers.get('content-range') ?? 'none'}). Download the file and drop it here.`,
        url,
        206,
      ),
    };
  }
  const validators = validatorsOf(head, range);
  const changed = record === null ? null : changedValidator(record, validators);
  if (changed !== null && plan.offset > 0) {
    return { kind: 'restart', reason: `the file at ${url} changed since the download began: ${changed}` };
  }
  if (range.start !== plan.offset) {
    return {
      kind: 'fail',
      problem: new DownloadProblem(
        'protocol',
        `The server at ${originOf(url)} sent bytes ${range.start}–${range.end} of ${url} when asked for bytes ` +
          `from ${plan.offset}. Download the file and drop it here.`,
        url,
        206,
      ),
    };
  }
  if (plan.revalidate) return { kind: 'complete', validators };
  return { kind: 'write', offset: plan.offset, validators, ranges: true, changed: false };
}

function httpProblem(url: string, head: ResponseHead): DownloadProblem {
  const text = head.statusText ? `${head.status} ${head.statusText}` : String(head.status);
  const hint =
    head.status === 404 || head.status === 410
      ? 'Check the address.'
      : head.status === 401 || head.status === 403
        ? 'The server refused it; this page cannot log in to other sites.'
        : isRetryableStatus(head.status)
          ? 'The server may be busy: try again in a moment.'
          : 'Check the address, or download the file and drop it here.';
  return new DownloadProblem(
    'http',
    `Could not download ${url}: the server answered ${text}. ${hint}`,
    url,
    head.status,
  );
}

export function noRangeProblem(url: string, bytes: number): DownloadProblem {
  return new DownloadProblem(
    'no-range',
    `The download of ${url} was interrupted after ${formatBytes(bytes)}, and the server at ${originOf(url)} does ` +
      'not support range requests, so the download cannot resume. Retry from the start (open it again), or ' +
      'download the file and drop it here.',
    url,
  );
}

/** A fetch that threw before any answer: another origin is refused by the CSP; anything else is the network. */
export function fetchFailure(url: string, pageOrigin: string, cause: unknown): DownloadProblem {
  if (originOf(url) !== pageOrigin) {
    return new DownloadProblem(
      'other-origin',
      `Could not download ${url}: this page connects only to its own origin, ${pageOrigin} (its ` +
        'Content-Security-Policy keeps clinic data on this machine). Put the pack next to the app — see the ' +
        "README's 'Workshop packs' — or download the file and drop it here.",
      url,
      undefined,
      { cause },
    );
  }
  return new DownloadProblem(
    'network',
    `Could not reach ${originOf(url)} to download ${url} (${causeText(cause)}). Check the connection and open it again.`,
    url,
    undefined,
    { cause },
  );
}

/** The connection dropped and the retries ran out. */
export function droppedProblem(
  url: string,
  record: DownloadRecord,
  attempts: number,
  cause: unknown,
): DownloadProblem {
  const of = record.total !== null ? ` of ${formatBytes(record.total)}` : '';
  return new DownloadProblem(
    'network',
    `The connection to ${originOf(url)} dropped while downloading ${url} (${formatBytes(record.bytes)}${of} ` +
      `written; ${attempts} ${attempts === 1 ? 'try' : 'tries'} failed: ${causeText(cause)}). Open it again to ` +
      'resume from there, or download the file and drop it here.',
    url,
    undefined,
    { cause },
  );
}

function causeText(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Pauses before another try after a failure, by how many failures in a row made no progress: 1, 2, 4 and 8 s,
 * then null (give up). A try that wrote bytes resets the count, so a long download survives many short drops.
 */
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000] as const;

export function retryDelay(failuresWithoutProgress: number): number | null {
  if (failuresWithoutProgress < 1) return 0;
  return RETRY_DELAYS_MS[failuresWithoutProgress - 1] ?? null;
}

/** How many times a file may turn out to have changed during one download before it is given up. */
export const MAX_RESTARTS = 2;

/**
 * The URL a user typed or a page query gave, resolved against the page (a relative path means "next to the app").
 * Only http(s): a file:, data: or blob: address would not be a download.
 */
export function parseDatasetUrl(input: string, base: string): string {
  const text = input.trim();
  if (text === '') throw new DownloadProblem('bad-url', 'Enter the address of a dataset zip.', input);
  let url: URL;
  try {
    url = new URL(text, base);
  } catch (cause) {
    throw new DownloadProblem('bad-url', `“${text}” is not a web address.`, text, undefined, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DownloadProblem(
      'bad-url',
      `${url.href} is not an http(s) address: to use a file on this machine, drop it here instead.`,
      url.href,
    );
  }
  url.hash = '';
  return url.href;
}

/** The name a download is shown under: the last path segment of its URL, as a zip. */
export function downloadName(url: string): string {
  let name = '';
  try {
    const segments = new URL(url).pathname.split('/');
    name = decodeURIComponent(segments.at(-1) ?? '');
  } catch {
    name = '';
  }
  // Characters that file systems or messages choke on, control characters included.
  name = Array.from(name, (ch) => (ch < ' ' || '\\/:*?"<>|'.includes(ch) ? '_' : ch))
    .join('')
    .trim();
  if (name === '') name = 'download.zip';
  return name;
}

/** A short, stable key of a URL for file names in the private storage (FNV-1a, 2 × 32 bits). */
export function downloadKey(url: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** Validates a record read back from storage; null for anything that does not look like one. */
export function parseDownloadRecord(text: string, url: string): DownloadRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  const nullableString = (v: unknown) => v === null || typeof v === 'string';
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (
    r.url !== url ||
    !count(r.bytes) ||
    !(r.total === null || count(r.total)) ||
    !nullableString(r.etag) ||
    !nullableString(r.lastModified) ||
    typeof r.ranges !== 'boolean' ||
    typeof r.complete !== 'boolean' ||
    !nullableString(r.completedAt)
  ) {
    return null;
  }
  return {
    url,
    bytes: r.bytes as number,
    total: r.total as number | null,
    etag: r.etag as string | null,
    lastModified: r.lastModified as string | null,
    ranges: r.ranges,
    complete: r.complete,
    completedAt: r.completedAt as string | null,
  };
}

/** "830 kB", "12.3 MB", "5.21 GB": for messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${bytes} bytes`;
}
