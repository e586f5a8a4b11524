/**
 * Writes a pack (see src/lib/data/pack.ts) as a zip, one entry at a time, straight to disk: fflate's streaming
 * Zip with stored JPEGs (they do not deflate) and a deflated CSV. Deterministic: fixed timestamps and fflate's own
 * deflate (not the platform's zlib), so the same inputs give the same bytes on every machine; the sample pack's
 * test relies on it. The zip is written to `<out>.partial` and renamed when complete, so a failed run never leaves
 * a truncated pack behind.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { Zip, ZipDeflate, ZipPassThrough, type ZipInputFile } from 'fflate';

/** Local midnight of a fixed day: the DOS date fields come out the same in every time zone. */
const ENTRY_DATE = new Date(2018, 7, 14);

/** fflate writes no Zip64 records: a pack must stay under the classic zip's limits. */
const MAX_ENTRIES = 0xffff;
const MAX_BYTES = 0xffffffff;

export class PackWriter {
  private readonly zip: Zip;
  private readonly fd: number;
  private readonly partial: string;
  private written = 0;
  private entryCount = 0;
  private failure: Error | null = null;
  private ended = false;
  private closed = false;

  constructor(readonly out: string) {
    this.partial = `${out}.partial`;
    this.fd = openSync(this.partial, 'w');
    this.zip = new Zip((error, chunk, final) => {
      if (error) {
        this.failure ??= error;
        return;
      }
      if (this.written + chunk.length > MAX_BYTES) {
        this.failure ??= new Error(
          `${out}: a pack must stay under 4 GB (a zip without Zip64); choose a smaller --size`,
        );
        return;
      }
      writeSync(this.fd, chunk);
      this.written += chunk.length;
      if (final) this.ended = true;
    });
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.written;
  }

  get entries(): number {
    return this.entryCount;
  }

  /** Adds one file; `deflate` for text (the CSV), stored otherwise. */
  add(path: string, bytes: Uint8Array, { deflate = false }: { deflate?: boolean } = {}): void {
    this.check();
    if (this.entryCount + 1 > MAX_ENTRIES - 1) {
      throw new Error(`${this.out}: a pack holds at most ${MAX_ENTRIES - 1} files (a zip without Zip64)`);
    }
    const file: ZipInputFile & { push(chunk: Uint8Array, final?: boolean): void } = deflate
      ? new ZipDeflate(path, { level: 9 })
      : new ZipPassThrough(path);
    file.mtime = ENTRY_DATE;
    this.zip.add(file);
    file.push(bytes, true);
    this.entryCount++;
    this.check();
  }

  /** Finishes the zip and moves it into place; returns its size in bytes. */
  close(): number {
    this.check();
    this.zip.end();
    this.check();
    if (!this.ended) throw new Error(`${this.out}: the zip writer did not finish`);
    closeSync(this.fd);
    this.closed = true;
    renameSync(this.partial, this.out);
    return this.written;
  }

  /** Drops the partial file (after a failure). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.zip.terminate();
    closeSync(this.fd);
    rmSync(this.partial, { force: true });
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
  }
}
