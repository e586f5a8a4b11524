/**
 * Browser tests: files on disk put into a real <input type=file>, as a user's pick or drop does (the
 * setInputFilesFromDisk command of tests/helpers/ingest-commands.ts: the browser reads them from disk lazily).
 */
import { commands } from 'vitest/browser';
import type {} from './ingest-commands.ts';

let inputs = 0;

export async function pickFiles(paths: string[]): Promise<File[]> {
  const input = document.createElement('input');
  input.type = 'file';
  input.multiple = true;
  input.id = `picked-files-${++inputs}`;
  document.body.append(input);
  try {
    await commands.setInputFilesFromDisk(`#${input.id}`, paths);
    return [...(input.files ?? [])];
  } finally {
    input.remove();
  }
}
