/**
 * The "browser storage is full" message, built from the browser's own error objects (DOMException
 * QuotaExceededError, as OPFS and IndexedDB throw it) and navigator.storage.estimate()-shaped answers.
 */
import { describe, expect, it } from 'vitest';
import {
  availableBytes,
  formatMegabytes,
  isQuotaExceeded,
  storageFullMessage,
  StorageFullError,
} from '../../src/lib/storage-full.ts';

const details = {
  what: 'the resume checkpoint of epoch 4',
  neededBytes: 2_345_678,
  kept: 'Training stopped; the run is kept as it was after epoch 3 and can be resumed from there.',
  then: 'then Resume the run',
};

describe('storage full', () => {
  it('recognises the browser quota error, and nothing else', () => {
    const quota = new DOMException(
      'The operation failed because it would cause the application to exceed its storage quota.',
      'QuotaExceededError',
    );
    expect(quota.code).toBe(22);
    expect(isQuotaExceeded(quota)).toBe(true);
    expect(
      isQuotaExceeded(new DOMException('A requested file or directory could not be found.', 'NotFoundError')),
    ).toBe(false);
    expect(isQuotaExceeded(new Error('quota exceeded'))).toBe(false);
    expect(isQuotaExceeded(null)).toBe(false);
    expect(isQuotaExceeded('QuotaExceededError')).toBe(false);
  });

  it('names what was needed and what the site has left, what was kept and what to do', () => {
    const estimate = { quota: 600_000_000, usage: 599_200_000 };
    expect(availableBytes(estimate)).toBe(800_000);
    expect(storageFullMessage({ ...details, estimate })).toBe(
      'Browser storage is full: the resume checkpoint of epoch 4 could not be saved: it needs 2.4 MB and 0.8 MB is ' +
        'available for this site (600 MB used of 600 MB). Training stopped; the run is kept as it was after epoch 3 ' +
        'and can be resumed from there. To free space: delete runs you no longer need (Runs page), forget cached ' +
        'images you do not use (Data page), or free disk space (a private window allows far less: use a normal ' +
        'one); then Resume the run.',
    );
  });

  it('says when the browser refused although its estimate shows room, and when it gives no estimate', () => {
    expect(
      storageFullMessage({ ...details, estimate: { quota: 10_741_000_000, usage: 3_400_000 } }),
    ).toContain(
      'it needs 2.4 MB and the browser refused it, although it reports 10,737 MB available for this site ' +
        '(3.4 MB used of 10,741 MB).',
    );
    expect(storageFullMessage({ ...details, estimate: undefined })).toContain(
      'it needs 2.4 MB and the browser does not say how much is left.',
    );
  });

  it('keeps the figures and the browser error on the thrown error', () => {
    const cause = new DOMException('quota', 'QuotaExceededError');
    const error = new StorageFullError({ ...details, estimate: { quota: 1_000, usage: 400 } }, { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('StorageFullError');
    expect(error.neededBytes).toBe(2_345_678);
    expect(error.availableBytes).toBe(600);
    expect(error.cause).toBe(cause);
    expect(error.message).toMatch(/^Browser storage is full: .* it needs 2\.4 MB and 0\.0 MB is available/);
  });

  it('formats megabytes with one decimal below 10 MB, needs rounded up and what is left rounded down', () => {
    expect(formatMegabytes(1)).toBe('0.1 MB');
    expect(formatMegabytes(1_640_832)).toBe('1.7 MB');
    expect(formatMegabytes(58_889_256)).toBe('59 MB');
    expect(formatMegabytes(5_480_000_000)).toBe('5,480 MB');
    expect(formatMegabytes(850_000, 'down')).toBe('0.8 MB');
    expect(formatMegabytes(10_738_600_000, 'down')).toBe('10,738 MB');
  });
});
