/**
 * Pretrained weights kept in this browser (OPFS) after their first successful load, one set per backbone, so a
 * user picks the files (or downloads the served model) once. Stored as the named arrays the loader produced:
 * a JSON manifest and one float32 file, so loading them back needs no HDF5 or model.json parsing.
 */
import type { NamedWeight } from '../lib/model/weights/assign.ts';

const DIRECTORY = 'lesion-lab-weights';

export interface StoredWeightsInfo {
  backbone: string;
  /** Where they first came from (file names or URL). */
  label: string;
  bytes: number;
  savedAt: string;
}

interface Manifest extends StoredWeightsInfo {
  weights: Array<{ layer: string; weight: string; shape: number[]; origin: string; length: number }>;
}

async function directory(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(DIRECTORY, { create: true });
}

async function writeFile(dir: FileSystemDirectoryHandle, name: string, data: Blob): Promise<void> {
  const writable = await (await dir.getFileHandle(name, { create: true })).createWritable();
  await writable.write(data);
  await writable.close();
}

export async function storeWeights(
  backbone: string,
  label: string,
  weights: readonly NamedWeight[],
): Promise<void> {
  const dir = await directory();
  const bytes = weights.reduce((sum, w) => sum + w.values.byteLength, 0);
  const manifest: Manifest = {
    backbone,
    label,
    bytes,
    savedAt: new Date().toISOString(),
    weights: weights.map((w) => ({
      layer: w.layer,
      weight: w.weight,
      shape: w.shape,
      origin: w.origin,
      length: w.values.length,
    })),
  };
  // Data first, manifest last: a manifest only ever describes a complete data file.
  await writeFile(
    dir,
    `${backbone}.bin`,
    new Blob(weights.map((w) => w.values as Float32Array<ArrayBuffer>)),
  );
  await writeFile(dir, `${backbone}.json`, new Blob([JSON.stringify(manifest)]));
}

export async function listStoredWeights(): Promise<StoredWeightsInfo[]> {
  const dir = await directory();
  const found: StoredWeightsInfo[] = [];
  for await (const [name, handle] of dir as unknown as AsyncIterable<[string, FileSystemHandle]>) {
    if (!name.endsWith('.json') || handle.kind !== 'file') continue;
    try {
      const manifest = JSON.parse(
        await (await (handle as FileSystemFileHandle).getFile()).text(),
      ) as Manifest;
      found.push({
        backbone: manifest.backbone,
        label: manifest.label,
        bytes: manifest.bytes,
        savedAt: manifest.savedAt,
      });
    } catch {
      // A damaged manifest is skipped; the next successful load of that backbone rewrites it.
    }
  }
  return found.sort((a, b) => a.backbone.localeCompare(b.backbone));
}

export async function readStoredWeights(
  backbone: string,
): Promise<{ label: string; weights: NamedWeight[] }> {
  const dir = await directory();
  let manifest: Manifest;
  let data: ArrayBuffer;
  try {
    manifest = JSON.parse(
      await (await (await dir.getFileHandle(`${backbone}.json`)).getFile()).text(),
    ) as Manifest;
    data = await (await (await dir.getFileHandle(`${backbone}.bin`)).getFile()).arrayBuffer();
  } catch {
    throw new Error(`no weights for ${backbone} are stored in this browser yet: load them from files once`);
  }
  const expected = manifest.weights.reduce((sum, w) => sum + w.length * 4, 0);
  if (data.byteLength !== expected) {
    throw new Error(
      `the stored weights for ${backbone} are damaged (${data.byteLength} bytes, ${expected} expected)`,
    );
  }
  let offset = 0;
  const weights = manifest.weights.map((w) => {
    const values = new Float32Array(data, offset, w.length);
    offset += w.length * 4;
    return { layer: w.layer, weight: w.weight, shape: w.shape, origin: w.origin, values };
  });
  return { label: `${manifest.label} (stored in this browser)`, weights };
}
