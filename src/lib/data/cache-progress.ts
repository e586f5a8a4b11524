/**
 * The progress journal of a cache being written (src/worker/cache/opfs-cache.ts): which slots of the partial pixel
 * file hold their image, for which plan (the images in slot order, at which size), and where the files came from.
 * The ingest worker flushes the pixel file and then replaces the journal (atomically), so the journal only ever
 * names slots whose pixels are on disk. After a closed tab, a reload or a failure (storage full) the journal lets
 * the next visit continue with only the images not cached yet; the cache itself is only marked complete by its
 * index, written once every image is in (cache-index.ts).
 */
import type { CacheSource } from './cache-index.ts';
import { isImageSize } from './cache-index.ts';
import type { ImageSize } from './types.ts';

export interface CacheJournal {
  format: 'lesion-lab-cache-progress';
  version: 1;
  size: ImageSize;
  /** Images planned, one slot each. */
  count: number;
  /** planKey() of the images in slot order: a continuation must cache the same images in the same slots. */
  plan: string;
  sources: CacheSource[];
  /** Same-origin URLs the files were opened from (the sample, a pack); empty when files were dropped. */
  urls: string[];
  /** Hex bitmap of the slots written (bit i of byte i>>3, low bit first). */
  done: string;
  doneCount: number;
  updatedAt: string;
}

export function journalFileName(size: ImageSize): string {
  return `progress-${size}.json`;
}

/** FNV-1a of the size and the image ids in slot order. */
export function planKey(size: ImageSize, imageIds: readonly string[]): string {
  let h = 0x811c9dc5;
  const text = `${size}|${imageIds.join(',')}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return `${(h >>> 0).toString(16).padStart(8, '0')}-${imageIds.length}`;
}

/** Slots written, as a bitmap. */
export class SlotSet {
  readonly bits: Uint8Array;
  count = 0;

  constructor(readonly size: number) {
    this.bits = new Uint8Array(Math.ceil(size / 8));
  }

  has(slot: number): boolean {
    return ((this.bits[slot >> 3] ?? 0) & (1 << (slot & 7))) !== 0;
  }

  add(slot: number): void {
    if (slot < 0 || slot >= this.size || this.has(slot)) return;
    this.bits[slot >> 3]! |= 1 << (slot & 7);
    this.count++;
  }

  toHex(): string {
    return Array.from(this.bits, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  static fromHex(hex: string, size: number): SlotSet {
    const set = new SlotSet(size);
    if (hex.length !== set.bits.length * 2 || !/^[0-9a-f]*$/.test(hex)) {
      throw new Error(`the written-slot map has ${hex.length / 2} bytes, expected ${set.bits.length}`);
    }
    for (let i = 0; i < set.bits.length; i++) set.bits[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    for (let slot = 0; slot < size; slot++) if (set.has(slot)) set.count++;
    // Bits past the last slot are not slots.
    if (set.count !== countBits(set.bits)) throw new Error('the written-slot map marks slots past the end');
    return set;
  }
}

function countBits(bits: Uint8Array): number {
  let n = 0;
  for (let b of bits) {
    while (b) {
      n += b & 1;
      b >>= 1;
    }
  }
  return n;
}

export function buildJournal(options: {
  size: ImageSize;
  plan: string;
  done: SlotSet;
  sources: CacheSource[];
  urls: string[];
  now: Date;
}): CacheJournal {
  return {
    format: 'lesion-lab-cache-progress',
    version: 1,
    size: options.size,
    count: options.done.size,
    plan: options.plan,
    sources: options.sources,
    urls: options.urls,
    done: options.done.toHex(),
    doneCount: options.done.count,
    updatedAt: options.now.toISOString(),
  };
}

/** The journal in `text`, or null when it is not a usable one (damaged, foreign, another version). */
export function parseJournal(text: string): { journal: CacheJournal; done: SlotSet } | null {
  try {
    const j = JSON.parse(text) as CacheJournal;
    if (j?.format !== 'lesion-lab-cache-progress' || j.version !== 1) return null;
    if (!isImageSize(j.size) || !Number.isInteger(j.count) || j.count < 1) return null;
    if (typeof j.plan !== 'string' || !Array.isArray(j.sources) || !Array.isArray(j.urls)) return null;
    const done = SlotSet.fromHex(j.done, j.count);
    if (done.count !== j.doneCount) return null;
    return { journal: j, done };
  } catch {
    return null;
  }
}
