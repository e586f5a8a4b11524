/**
 * Test-time augmentation for evaluating a split: the mean of the class probabilities of each image and its
 * left-right, top-bottom and double flips (the four flips Predict uses, src/lib/predict.ts; a dermoscopic lesion has
 * no up or left). The flips happen on the uint8 pixels as they are read, so every model path (features, the whole
 * network, any backend) sees them the same way.
 */
import type { ImageDataset } from './dataset.ts';
import { predict, type MetadataRows, type Network, type Prediction } from './loop.ts';

export type Flip = 'none' | 'horizontal' | 'vertical' | 'both';
export const TTA_FLIPS: readonly Flip[] = ['none', 'horizontal', 'vertical', 'both'];

/** Flips square HWC RGB images (n of them, edge `size`) into a new buffer. */
export function flipPixels(pixels: Uint8Array, size: number, flip: Flip): Uint8Array {
  if (flip === 'none') return pixels;
  const out = new Uint8Array(pixels.length);
  const image = size * size * 3;
  const n = pixels.length / image;
  const h = flip === 'horizontal' || flip === 'both';
  const v = flip === 'vertical' || flip === 'both';
  for (let k = 0; k < n; k++) {
    const base = k * image;
    for (let y = 0; y < size; y++) {
      const sy = v ? size - 1 - y : y;
      for (let x = 0; x < size; x++) {
        const sx = h ? size - 1 - x : x;
        const to = base + (y * size + x) * 3;
        const from = base + (sy * size + sx) * 3;
        out[to] = pixels[from]!;
        out[to + 1] = pixels[from + 1]!;
        out[to + 2] = pixels[from + 2]!;
      }
    }
  }
  return out;
}

/** The same images, flipped as they are read. */
export function flippedDataset(dataset: ImageDataset, flip: Flip): ImageDataset {
  if (flip === 'none') return dataset;
  return {
    count: dataset.count,
    size: dataset.size,
    labels: dataset.labels,
    readBatch: async (indices) => flipPixels(await dataset.readBatch(indices), dataset.size, flip),
  };
}

/** predict() averaged over the four flips; yPred is the argmax of the mean. */
export async function predictWithTta(
  network: Network,
  dataset: ImageDataset,
  indices: readonly number[],
  batchSize = 32,
  metadata: MetadataRows | null = null,
): Promise<Prediction> {
  let sum: Float32Array | null = null;
  let yTrue: number[] = [];
  for (const flip of TTA_FLIPS) {
    const p = await predict(network, flippedDataset(dataset, flip), indices, batchSize, metadata);
    yTrue = p.yTrue;
    if (!sum) sum = Float32Array.from(p.probs);
    else for (let i = 0; i < sum.length; i++) sum[i]! += p.probs[i]!;
  }
  const probs = (sum as Float32Array).map((v) => v / TTA_FLIPS.length);
  const k = yTrue.length === 0 ? 0 : probs.length / yTrue.length;
  const yPred = yTrue.map((_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (probs[i * k + j]! > probs[i * k + best]!) best = j;
    return best;
  });
  return { probs, yTrue, yPred };
}
