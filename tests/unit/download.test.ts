/**
 * The decisions behind opening a dataset from a URL (src/lib/data/download.ts): Content-Range parsing, what to ask
 * for given what is on disk, what each answer means (write, resume, restart because the file changed, reuse a
 * complete copy, fail with a message naming the URL), retries, and the URL itself.
 */
import { describe, expect, it } from 'vitest';
import {
  DownloadProblem,
  RETRY_DELAYS_MS,
  changedValidator,
  downloadKey,
  downloadName,
  droppedProblem,
  fetchFailure,
  isRetryableStatus,
  judgeResponse,
  noRangeProblem,
  parseContentRange,
  parseDatasetUrl,
  parseDownloadRecord,
  planRequest,
  retryDelay,
  type DownloadRecord,
  type ResponseHead,
} from '../../src/lib/data/download.ts';

const URL_ = 'http://localhost:4173/packs/ham10000-224.zip';
const ETAG = '"5f3a-1c0"';
const MODIFIED = 'Tue, 12 Jun 2018 10:00:00 GMT';

function head(status: number, headers: Record<string, string> = {}, statusText?: string): ResponseHead {
  return { status, ...(statusText !== undefined ? { statusText } : {}), headers: new Headers(headers) };
}

function record(overrides: Partial<DownloadRecord> = {}): DownloadRecord {
  return {
    url: URL_,
    bytes: 400,
    total: 1000,
    etag: ETAG,
    lastModified: MODIFIED,
    ranges: true,
    complete: false,
    completedAt: null,
    ...overrides,
  };
}

const complete = () => record({ bytes: 1000, complete: true, completedAt: '2024-01-01T00:00:00.000Z' });

describe('parseContentRange', () => {
  it('reads ranges, unknown totals and unsatisfiable ranges', () => {
    expect(parseContentRange('bytes 0-99/1000')).toEqual({ kind: 'range', start: 0, end: 99, total: 1000 });
    expect(parseContentRange('bytes 400-999/1000')).toEqual({
      kind: 'range',
      start: 400,
      end: 999,
      total: 1000,
    });
    expect(parseContentRange('bytes 100-199/*')).toEqual({
      kind: 'range',
      start: 100,
      end: 199,
      total: null,
    });
    expect(parseContentRange('bytes */1000')).toEqual({ kind: 'unsatisfied', total: 1000 });
    expect(parseContentRange(' Bytes 0-0/1 ')).toEqual({ kind: 'range', start: 0, end: 0, total: 1 });
  });

  it('refuses what is absent or malformed', () => {
    expect(parseContentRange(null)).toBeNull();
    expect(parseContentRange('')).toBeNull();
    expect(parseContentRange('bytes 5-3/10')).toBeNull();
    expect(parseContentRange('bytes 0-10/10')).toBeNull();
    expect(parseContentRange('items 0-1/2')).toBeNull();
    expect(parseContentRange('bytes 0-/10')).toBeNull();
    expect(parseContentRange('bytes 0-1,4-5/10')).toBeNull();
  });
});

describe('planRequest', () => {
  it('asks from 0 for a new download, from the bytes written for a partial one', () => {
    expect(planRequest(null, URL_)).toEqual({ offset: 0, range: 'bytes=0-', revalidate: false });
    expect(planRequest(record(), URL_)).toEqual({ offset: 400, range: 'bytes=400-', revalidate: false });
    expect(planRequest(record({ bytes: 0 }), URL_)).toEqual({
      offset: 0,
      range: 'bytes=0-',
      revalidate: false,
    });
    expect(planRequest(record({ url: 'http://localhost:4173/other.zip' }), URL_).offset).toBe(0);
  });

  it('checks a complete copy by asking for its last byte', () => {
    expect(planRequest(complete(), URL_)).toEqual({ offset: 999, range: 'bytes=999-', revalidate: true });
  });
});

describe('judgeResponse', () => {
  const full = { 'content-length': '1000', etag: ETAG, 'last-modified': MODIFIED };

  it('writes a first answer from 0, whether 206 or a plain 200', () => {
    const plan = planRequest(null, URL_);
    expect(
      judgeResponse(URL_, plan, null, head(206, { ...full, 'content-range': 'bytes 0-999/1000' })),
    ).toEqual({
      kind: 'write',
      offset: 0,
      validators: { etag: ETAG, lastModified: MODIFIED, total: 1000 },
      ranges: true,
      changed: false,
    });
    expect(judgeResponse(URL_, plan, null, head(200, { ...full, 'accept-ranges': 'bytes' }))).toMatchObject({
      kind: 'write',
      offset: 0,
      ranges: true,
      validators: { total: 1000 },
    });
    // No Accept-Ranges: it may still work, but a drop will not be resumable.
    expect(judgeResponse(URL_, plan, null, head(200, full))).toMatchObject({ kind: 'write', ranges: false });
    // A compressed transfer's length is not the file's.
    expect(judgeResponse(URL_, plan, null, head(200, { ...full, 'content-encoding': 'gzip' }))).toMatchObject(
      { kind: 'write', validators: { total: null } },
    );
  });

  it('resumes at the bytes written when the server answers 206 from there for the same file', () => {
    const r = record();
    const verdict = judgeResponse(
      URL_,
      planRequest(r, URL_),
      r,
      head(206, { 'content-range': 'bytes 400-999/1000', etag: ETAG, 'last-modified': MODIFIED }),
    );
    expect(verdict).toMatchObject({ kind: 'write', offset: 400, ranges: true, changed: false });
    // A server that sends no validators on a 206 is trusted on the range and length alone.
    expect(
      judgeResponse(URL_, planRequest(r, URL_), r, head(206, { 'content-range': 'bytes 400-999/1000' })),
    ).toMatchObject({ kind: 'write', offset: 400 });
  });

  it('restarts when the file changed: another ETag, modification time or length', () => {
    const r = record();
    const plan = planRequest(r, URL_);
    const range = { 'content-range': 'bytes 400-999/1000' };
    expect(judgeResponse(URL_, plan, r, head(206, { ...range, etag: '"other"' }))).toMatchObject({
      kind: 'restart',
      reason: expect.stringContaining('ETag changed'),
    });
    expect(
      judgeResponse(URL_, plan, r, head(206, { ...range, 'last-modified': 'Wed, 13 Jun 2018 10:00:00 GMT' })),
    ).toMatchObject({ kind: 'restart', reason: expect.stringContaining('modified') });
    expect(judgeResponse(URL_, plan, r, head(206, { 'content-range': 'bytes 400-1199/1200' }))).toMatchObject(
      { kind: 'restart', reason: expect.stringContaining('length changed from 1000 to 1200') },
    );
    expect(judgeResponse(URL_, plan, r, head(416, { 'content-range': 'bytes */300' }))).toMatchObject({
      kind: 'restart',
    });
  });

  it('says that a server which ignores ranges cannot resume, naming its origin', () => {
    const r = record();
    const verdict = judgeResponse(URL_, planRequest(r, URL_), r, head(200, full));
    expect(verdict.kind).toBe('fail');
    const problem = (verdict as { problem: DownloadProblem }).problem;
    expect(problem.code).toBe('no-range');
    expect(problem.message).toContain(URL_);
    expect(problem.message).toContain(
      'the server at http://localhost:4173 does not support range requests, so the download cannot resume',
    );
    expect(problem.message).toContain('Retry from the start');
    expect(problem.message).toContain('download the file and drop it here');
    // …but a whole new file in answer to a resume is simply written from 0.
    expect(judgeResponse(URL_, planRequest(r, URL_), r, head(200, { ...full, etag: '"new"' }))).toMatchObject(
      { kind: 'write', offset: 0, changed: true },
    );
  });

  it('refuses a 206 that starts elsewhere, or has no Content-Range', () => {
    const r = record();
    const plan = planRequest(r, URL_);
    const elsewhere = judgeResponse(URL_, plan, r, head(206, { 'content-range': 'bytes 0-999/1000' }));
    expect(elsewhere).toMatchObject({ kind: 'fail', problem: { code: 'protocol' } });
    expect((elsewhere as { problem: Error }).problem.message).toContain('from 400');
    expect(judgeResponse(URL_, plan, r, head(206))).toMatchObject({
      kind: 'fail',
      problem: { code: 'protocol' },
    });
  });

  it('reuses a complete copy that the server says is current, and fetches a changed one again', () => {
    const c = complete();
    const plan = planRequest(c, URL_);
    const lastByte = { 'content-range': 'bytes 999-999/1000', etag: ETAG, 'last-modified': MODIFIED };
    expect(judgeResponse(URL_, plan, c, head(206, lastByte))).toMatchObject({ kind: 'complete' });
    expect(judgeResponse(URL_, plan, c, head(206, { ...lastByte, etag: '"new"' }))).toMatchObject({
      kind: 'restart',
    });
    // A server without ranges sends the whole file: the validators decide, the body is not read when current.
    expect(judgeResponse(URL_, plan, c, head(200, full))).toMatchObject({ kind: 'complete' });
    expect(judgeResponse(URL_, plan, c, head(200, { ...full, 'content-length': '1001' }))).toMatchObject({
      kind: 'write',
      offset: 0,
      changed: true,
    });
    // Nothing to compare with: the body is the file, written again.
    expect(judgeResponse(URL_, plan, c, head(200))).toMatchObject({ kind: 'write', offset: 0 });
  });

  it('takes a 416 at exactly the recorded length as "already complete"', () => {
    const r = record({ bytes: 1000 });
    expect(
      judgeResponse(URL_, planRequest(r, URL_), r, head(416, { 'content-range': 'bytes */1000' })),
    ).toMatchObject({ kind: 'complete', validators: { total: 1000 } });
  });

  it('does not take a web page for a zip (a single-page host answers unknown paths with its index)', () => {
    const verdict = judgeResponse(
      URL_,
      planRequest(null, URL_),
      null,
      head(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': '900' }),
    );
    expect(verdict).toMatchObject({ kind: 'fail', problem: { code: 'http', url: URL_ } });
    expect((verdict as { problem: Error }).problem.message).toContain('answered with a web page, not a zip');
  });

  it('names the URL and the status of an HTTP error', () => {
    const verdict = judgeResponse(URL_, planRequest(null, URL_), null, head(404, {}, 'Not Found'));
    expect(verdict).toMatchObject({ kind: 'fail', problem: { code: 'http', status: 404, url: URL_ } });
    const message = (verdict as { problem: Error }).problem.message;
    expect(message).toBe(`Could not download ${URL_}: the server answered 404 Not Found. Check the address.`);
    expect(isRetryableStatus(503)).toBe(true);
    expect(isRetryableStatus(404)).toBe(false);
  });
});

describe('failures before an answer', () => {
  it('blames the page’s Content-Security-Policy for another origin, and the network otherwise', () => {
    const other = fetchFailure(
      'https://example.org/ham.zip',
      'http://localhost:4173',
      new TypeError('Failed to fetch'),
    );
    expect(other.code).toBe('other-origin');
    expect(other.message).toContain('https://example.org/ham.zip');
    expect(other.message).toContain(
      'this page connects only to its own origin, http://localhost:4173 (its Content-Security-Policy keeps clinic data on this machine)',
    );
    expect(other.message).toContain("see the README's 'Workshop packs'");
    const same = fetchFailure(URL_, 'http://localhost:4173', new TypeError('Failed to fetch'));
    expect(same.code).toBe('network');
    expect(same.message).toContain('Could not reach http://localhost:4173');
  });

  it('says how far a dropped download got and that opening it again resumes', () => {
    const p = droppedProblem(
      URL_,
      record({ bytes: 12_300_000, total: 45_600_000 }),
      5,
      new TypeError('network error'),
    );
    expect(p.message).toContain('12.3 MB of 45.6 MB written; 5 tries failed');
    expect(p.message).toContain('Open it again to resume');
    expect(noRangeProblem(URL_, 2_500_000).message).toContain('interrupted after 2.5 MB');
  });

  it('backs off 1, 2, 4, 8 s between tries without progress, then gives up', () => {
    expect([1, 2, 3, 4].map(retryDelay)).toEqual([...RETRY_DELAYS_MS]);
    expect(retryDelay(5)).toBeNull();
    expect(retryDelay(0)).toBe(0);
  });

  it('compares validators only where both sides have them', () => {
    const known = { etag: ETAG, lastModified: MODIFIED, total: 1000 };
    expect(changedValidator(known, { etag: null, lastModified: null, total: null })).toBeNull();
    expect(changedValidator(known, { ...known })).toBeNull();
    expect(changedValidator(known, { ...known, total: 999 })).toContain('length changed');
  });
});

describe('the URL', () => {
  const page = 'http://localhost:4173/app/?dataset=x';

  it('resolves paths against the page and keeps http(s) only', () => {
    expect(parseDatasetUrl('packs/ham.zip', page)).toBe('http://localhost:4173/app/packs/ham.zip');
    expect(parseDatasetUrl(' /samples/s.zip#top ', page)).toBe('http://localhost:4173/samples/s.zip');
    expect(parseDatasetUrl('https://example.org/a.zip', page)).toBe('https://example.org/a.zip');
    for (const bad of [
      '',
      '   ',
      'file:///home/me/ham.zip',
      'data:application/zip,xx',
      'ftp://x/y.zip',
      'http://',
    ]) {
      expect(() => parseDatasetUrl(bad, page), bad).toThrow(DownloadProblem);
    }
    expect(() => parseDatasetUrl('file:///home/me/ham.zip', page)).toThrow(/drop it here instead/);
  });

  it('names a download after the last segment of its path', () => {
    expect(downloadName('http://h/a/ham%20sample.zip?x=1')).toBe('ham sample.zip');
    expect(downloadName('http://h/')).toBe('download.zip');
    expect(downloadName('http://h/a%2Fb%3A.zip')).toBe('a_b_.zip');
  });

  it('keys downloads by URL, stably', () => {
    expect(downloadKey(URL_)).toBe(downloadKey(URL_));
    expect(downloadKey(URL_)).toMatch(/^[0-9a-f]{16}$/);
    expect(downloadKey(URL_)).not.toBe(downloadKey(`${URL_}?v=2`));
  });

  it('reads back a saved record, and nothing else', () => {
    const r = record();
    expect(parseDownloadRecord(JSON.stringify(r), URL_)).toEqual(r);
    expect(parseDownloadRecord(JSON.stringify(r), 'http://localhost:4173/other.zip')).toBeNull();
    expect(parseDownloadRecord('', URL_)).toBeNull();
    expect(parseDownloadRecord('{"url":1}', URL_)).toBeNull();
    expect(parseDownloadRecord(JSON.stringify({ ...r, bytes: -1 }), URL_)).toBeNull();
  });
});
