/**
 * The feature cache. With the base frozen and no augmentation, the base maps each image to the same features in
 * every epoch, so they are computed once per split (one forward pass in batches), kept as a Float32Array, and the
 * head trains on them: an epoch then costs a few small matrix products instead of a pass through the backbone.
 *
 * When the head starts with GlobalAveragePooling2D (both seed heads do), the cache stores the pooled vectors
 * (e.g. 1,280 floats per image for MobileNetV2, 5 KB) and training uses the rest of the head (same layer objects,
 * so the same weights); otherwise it stores the whole feature map.
 *
 * Storage sits behind `FeatureStore`: memory in Node and tests, OPFS in the worker (`OpfsFeatureStore`, given the
 * directory handle, so this module touches no browser global).
 */
import * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from './dataset.ts';

export interface FeatureStore {
  get(key: string): Promise<Float32Array | null>;
  put(key: string, values: Float32Array): Promise<void>;
}

export class MemoryFeatureStore implements FeatureStore {
  private readonly entries = new Map<string, Float32Array>();

  async get(key: string): Promise<Float32Array | null> {
    return this.entries.get(key) ?? null;
  }

  async put(key: string, values: Float32Array): Promise<void> {
    this.entries.set(key, values);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Files `<safe key>.f32` (raw little-endian float32) in an OPFS directory. */
export class OpfsFeatureStore implements FeatureStore {
  constructor(private readonly dir: FileSystemDirectoryHandle) {}

  private async files(): Promise<File[]> {
    const out: File[] = [];
    // FileSystemDirectoryHandle is async-iterable in browsers; TypeScript's DOM types lack `values()`.
    const entries = (this.dir as unknown as { values(): AsyncIterable<FileSystemHandle> }).values();
    for await (const entry of entries) {
      if (entry.kind === 'file' && entry.name.endsWith('.f32')) {
        out.push(await (entry as FileSystemFileHandle).getFile());
      }
    }
    return out;
  }

  async usage(): Promise<FeatureCacheUsage> {
    const files = await this.files();
    return { files: files.length, bytes: files.reduce((sum, f) => sum + f.size, 0) };
  }

  /** Deletes all but the `keep` newest files; returns the names deleted. */
  async prune(keep = FEATURE_FILES_KEPT): Promise<string[]> {
    const doomed = filesToPrune(await this.files(), keep);
    for (const name of doomed) await this.dir.removeEntry(name).catch(() => undefined);
    return doomed;
  }

  static fileName(key: string): string {
    return `${key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 160)}-${hashString(key)}.f32`;
  }

  async get(key: string): Promise<Float32Array | null> {
    let handle: FileSystemFileHandle;
    try {
      handle = await this.dir.getFileHandle(OpfsFeatureStore.fileName(key));
    } catch (error) {
      if ((error as { name?: string }).name === 'NotFoundError') return null;
      throw error;
    }
    const buffer = await (await handle.getFile()).arrayBuffer();
    if (buffer.byteLength % 4 !== 0) return null;
    return new Float32Array(buffer);
  }

  async put(key: string, values: Float32Array): Promise<void> {
    const name = OpfsFeatureStore.fileName(key);
    const handle = await this.dir.getFileHandle(name, { create: true });
    const writable = await handle.createWritable();
    try {
      await writable.write(values.slice().buffer);
      await writable.close();
    } catch (error) {
      await writable.abort().catch(() => undefined);
      await this.dir.removeEntry(name).catch(() => undefined);
      throw error;
    }
  }
}

/** What the feature cache holds on this device. */
export interface FeatureCacheUsage {
  files: number;
  bytes: number;
}

/**
 * How many feature files the OPFS store keeps: the newest, by when they were written (a run writes one per split,
 * train, val and test, so this is the last four configurations). One configuration of MobileNetV2 on the whole
 * dataset is about 51 MB at 224 px; the bound keeps the cache near 200 MB instead of growing by that much with
 * every new split seed, size or backbone.
 */
export const FEATURE_FILES_KEPT = 12;

/** Which files to delete to keep the `keep` newest (ties: the name decides, so the choice is stable). */
export function filesToPrune(
  files: readonly { name: string; lastModified: number }[],
  keep: number,
): string[] {
  return [...files]
    .sort((a, b) => b.lastModified - a.lastModified || a.name.localeCompare(b.name))
    .slice(Math.max(0, keep))
    .map((f) => f.name);
}

/** FNV-1a, 32 bits, as 8 hex digits. */
export function hashString(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The store key of one split's features (the loop's feature cache; a caller may fill the store ahead). */
export function featureKey(
  key: string,
  pool: boolean,
  inputSize: number,
  indices: ArrayLike<number>,
): string {
  return `${key}|${pool ? 'gap' : 'map'}|${inputSize}|${hashIndices(indices)}`;
}

/** A hash of an index list, so a cache key changes with the split. */
export function hashIndices(indices: ArrayLike<number>): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < indices.length; i++) {
    let v = indices[i]! >>> 0;
    for (let b = 0; b < 4; b++) {
      h ^= v & 0xff;
      h = Math.imul(h, 0x01000193);
      v >>>= 8;
    }
  }
  return `${indices.length}-${(h >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Splits a linear head into the part the cache can absorb (a leading GlobalAveragePooling2D) and the rest as a
 * model of its own over the pooled vector. The rest shares the head's layers, so training it trains the head.
 */
export function poolingSplit(head: tf.LayersModel): { pool: boolean; rest: tf.LayersModel } {
  if (head.inputs.length === 2) return fusedPoolingSplit(head);
  const layers = head.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const first = layers[0];
  const linear =
    head.inputs.length === 1 && head.outputs.length === 1 && layers.every((l) => l.inboundNodes.length >= 1);
  if (!first || first.getClassName() !== 'GlobalAveragePooling2D' || !linear || !isChain(head)) {
    return { pool: false, rest: head };
  }
  const pooledShape = first.outputShape as tf.Shape;
  const input = tf.input({ shape: pooledShape.slice(1) as number[], name: `${head.name}_pooled_input` });
  let x: tf.SymbolicTensor = input;
  for (const layer of layers.slice(1)) x = layer.apply(x) as tf.SymbolicTensor;
  return { pool: true, rest: tf.model({ inputs: input, outputs: x, name: `${head.name}_on_pooled` }) };
}

/**
 * poolingSplit for a metadata-fused head (inputs [features, metadata]): when the features input goes straight into
 * a GlobalAveragePooling2D, the rest is the same layers re-applied on [pooled features, metadata].
 */
function fusedPoolingSplit(head: tf.LayersModel): { pool: boolean; rest: tf.LayersModel } {
  const [featuresIn, metadataIn] = head.inputs as [tf.SymbolicTensor, tf.SymbolicTensor];
  const gap = head.layers.find(
    (l) =>
      l.getClassName() === 'GlobalAveragePooling2D' &&
      l.inboundNodes[0]?.inputTensors.length === 1 &&
      l.inboundNodes[0].inputTensors[0]!.id === featuresIn.id,
  );
  if (!gap) return { pool: false, rest: head };
  const pooledShape = gap.outputShape as tf.Shape;
  const pooled = tf.input({ shape: pooledShape.slice(1) as number[], name: `${head.name}_pooled_input` });
  const metadata = tf.input({
    shape: metadataIn.shape.slice(1) as number[],
    name: `${head.name}_metadata_input`,
  });
  const mapped = new Map<number, tf.SymbolicTensor>([
    [gap.inboundNodes[0]!.outputTensors[0]!.id, pooled],
    [metadataIn.id, metadata],
  ]);
  for (const layer of head.layers) {
    if (layer === gap || layer.getClassName() === 'InputLayer') continue;
    const node = layer.inboundNodes[0]!;
    const ins = node.inputTensors.map((t) => mapped.get(t.id));
    if (ins.some((t) => t === undefined)) return { pool: false, rest: head };
    const out = layer.apply(ins.length === 1 ? ins[0]! : (ins as tf.SymbolicTensor[])) as tf.SymbolicTensor;
    mapped.set(node.outputTensors[0]!.id, out);
  }
  const output = mapped.get(head.outputs[0]!.id);
  if (!output) return { pool: false, rest: head };
  return {
    pool: true,
    rest: tf.model({ inputs: [pooled, metadata], outputs: output, name: `${head.name}_on_pooled` }),
  };
}

/** Every layer feeds exactly the next one (a Sequential-shaped functional model). */
function isChain(model: tf.LayersModel): boolean {
  const layers = model.layers;
  for (let i = 1; i < layers.length; i++) {
    const node = layers[i]!.inboundNodes[0];
    if (!node || node.inboundLayers.length !== 1 || node.inboundLayers[0] !== layers[i - 1]) return false;
  }
  return true;
}

export interface ExtractOptions {
  /** Maps uint8-valued float images to the base's input (Keras preprocess_input). */
  preprocess: (images: tf.Tensor4D) => tf.Tensor4D;
  /** The base's input edge; images of another size are resized (bilinear). */
  inputSize: number;
  /** Edge of the stored images. */
  imageSize: number;
  /** Average-pool the base output to one vector per image. */
  pool: boolean;
  /**
   * With `pool`: average the pooled vectors of the image and its horizontal, vertical and double flips, so that a
   * mirrored copy gets the same vector (dermoscopy photos have no canonical orientation; the duplicate search needs
   * this). Costs four forward passes per image; batches hold a quarter of `batchSize` images.
   */
  flipInvariant?: boolean;
  batchSize?: number;
}

export interface Features {
  /** count × dim values, image-major. */
  values: Float32Array;
  count: number;
  /** Shape of one image's features (e.g. [1280] pooled, or [7, 7, 1280]). */
  shape: number[];
}

/** The image, its horizontal, vertical and double flips: a batch of n becomes 4n, orientation-major. */
const FLIPS = 4;
function withFlips(x: tf.Tensor4D): tf.Tensor4D {
  const h = tf.reverse(x, 2);
  return tf.concat([x, h, tf.reverse(x, 1), tf.reverse(h, 1)], 0);
}

/** Images per forward pass of an extraction: a quarter of the batch with flips (each image runs four times). */
export function extractionBatchSize(
  options: Pick<ExtractOptions, 'batchSize' | 'pool' | 'flipInvariant'>,
): number {
  const flips = options.pool && options.flipInvariant === true;
  return Math.max(1, Math.floor((options.batchSize ?? 32) / (flips ? FLIPS : 1)));
}

/** One image's feature shape: the base's output map, or its channels when pooled. */
export function featureShape(base: tf.LayersModel, pool: boolean): number[] {
  const outShape = (base.outputs[0]!.shape as number[]).slice(1);
  return pool ? [outShape[outShape.length - 1]!] : outShape;
}

/**
 * The features of one batch of `n` stored images (RGB, image-major): the frozen base in inference mode, after the
 * resize and preprocessing. Every path (in this worker, or a feature worker's own WASM instance) computes a batch
 * with this function, so the same batch gives the same values.
 */
export async function featuresOfBatch(
  base: tf.LayersModel,
  pixels: Uint8Array | Float32Array,
  n: number,
  options: ExtractOptions,
): Promise<Float32Array> {
  const size = options.imageSize;
  if (pixels.length !== n * size * size * 3) {
    throw new RangeError(`the dataset returned ${pixels.length} bytes for ${n} images of ${size}×${size}`);
  }
  const flips = options.pool && options.flipInvariant === true;
  const dim = featureShape(base, options.pool).reduce((a, b) => a * b, 1);
  const out = tf.tidy(() => {
    let x: tf.Tensor4D = tf.tensor4d(Float32Array.from(pixels), [n, size, size, 3]);
    if (size !== options.inputSize) x = tf.image.resizeBilinear(x, [options.inputSize, options.inputSize]);
    if (flips) x = withFlips(x);
    const y = base.apply(options.preprocess(x), { training: false }) as tf.Tensor;
    if (!options.pool) return y;
    const pooled = tf.mean(y, [1, 2]);
    return flips ? tf.mean(tf.reshape(pooled, [FLIPS, n, dim]), 0) : pooled;
  });
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

/** Positions start..start+n−1. */
export function batchPositions(start: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

/**
 * Runs the frozen base (inference mode) over images 0..count-1 of `read`, in batches, reading features back;
 * yields progress after each batch and returns the features. Stop early with `return()`.
 */
export async function* extractFeatureBatches(
  base: tf.LayersModel,
  read: (positions: readonly number[]) => Promise<Uint8Array | Float32Array>,
  count: number,
  options: ExtractOptions,
): AsyncGenerator<{ done: number; total: number }, Features> {
  const batchSize = extractionBatchSize(options);
  const shape = featureShape(base, options.pool);
  const dim = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(count * dim);
  let next = count > 0 ? read(batchPositions(0, Math.min(batchSize, count))) : null;
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const pixels = await (next as Promise<Uint8Array | Float32Array>);
    const following = start + batchSize;
    next = following < count ? read(batchPositions(following, Math.min(batchSize, count - following))) : null;
    next?.catch(() => undefined);
    values.set(await featuresOfBatch(base, pixels, n, options), start * dim);
    yield { done: start + n, total: count };
  }
  return { values, count, shape };
}

/** extractFeatureBatches over a whole dataset, without progress. */
export async function extractFeatures(
  base: tf.LayersModel,
  dataset: ImageDataset,
  options: Omit<ExtractOptions, 'imageSize'>,
): Promise<Features> {
  const batches = extractFeatureBatches(base, (p) => dataset.readBatch(p), dataset.count, {
    ...options,
    imageSize: dataset.size,
  });
  for (;;) {
    const step = await batches.next();
    if (step.done) return step.value;
  }
}
