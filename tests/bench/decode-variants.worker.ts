/// <reference lib="webworker" />
/**
 * Other ways a worker can turn JPEG bytes into square RGB pixels, for `bench decode` to time against the app's
 * own (src/worker/decode-square.ts, run by the real decode workers). Each message decodes one image and answers
 * with its RGB bytes, so the bench can also compare the pixels with the app's.
 *
 * - 'bitmap-resize': the app's way, createImageBitmap with resizeWidth/Height ('high') → 2D canvas → getImageData.
 * - 'bitmap-canvas-scale': createImageBitmap at full size, then drawImage scaled onto the size×size canvas with
 *   imageSmoothingQuality 'high' (the resize moves from the decoder to the canvas).
 * - 'imagedecoder-canvas': WebCodecs ImageDecoder → VideoFrame, drawn scaled onto the canvas.
 * - 'imagedecoder-bitmap': ImageDecoder → VideoFrame → createImageBitmap(frame, resize 'high') → canvas.
 */
import { decodeSquare } from '../../src/worker/decode-square.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

export type DecodeVariant =
  'bitmap-resize' | 'bitmap-canvas-scale' | 'imagedecoder-canvas' | 'imagedecoder-bitmap';

let canvas: OffscreenCanvas | null = null;
let context: OffscreenCanvasRenderingContext2D | null = null;

function contextOf(size: number): OffscreenCanvasRenderingContext2D {
  if (canvas === null || context === null || canvas.width !== size) {
    canvas = new OffscreenCanvas(size, size);
    context = canvas.getContext('2d', { willReadFrequently: true, alpha: true });
    if (context === null) throw new Error('no 2D OffscreenCanvas in this worker');
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = 'high';
  }
  return context;
}

function rgbOf(ctx: OffscreenCanvasRenderingContext2D, size: number): Uint8Array {
  const rgba = ctx.getImageData(0, 0, size, size).data;
  const rgb = new Uint8Array(size * size * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    rgb[q] = rgba[p] as number;
    rgb[q + 1] = rgba[p + 1] as number;
    rgb[q + 2] = rgba[p + 2] as number;
  }
  return rgb;
}

async function frameOf(bytes: ArrayBuffer): Promise<VideoFrame> {
  const decoder = new ImageDecoder({ data: bytes, type: 'image/jpeg', colorSpaceConversion: 'none' });
  try {
    return (await decoder.decode()).image;
  } finally {
    decoder.close();
  }
}

async function decode(variant: DecodeVariant, bytes: ArrayBuffer, size: number): Promise<Uint8Array> {
  switch (variant) {
    case 'bitmap-resize':
      return decodeSquare(new Blob([bytes]), size);
    case 'bitmap-canvas-scale': {
      const bitmap = await createImageBitmap(new Blob([bytes]), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
      try {
        const ctx = contextOf(size);
        ctx.drawImage(bitmap, 0, 0, size, size);
        return rgbOf(ctx, size);
      } finally {
        bitmap.close();
      }
    }
    case 'imagedecoder-canvas': {
      const frame = await frameOf(bytes);
      try {
        const ctx = contextOf(size);
        ctx.drawImage(frame, 0, 0, size, size);
        return rgbOf(ctx, size);
      } finally {
        frame.close();
      }
    }
    case 'imagedecoder-bitmap': {
      const frame = await frameOf(bytes);
      try {
        const bitmap = await createImageBitmap(frame, {
          resizeWidth: size,
          resizeHeight: size,
          resizeQuality: 'high',
        });
        try {
          const ctx = contextOf(size);
          ctx.drawImage(bitmap, 0, 0);
          return rgbOf(ctx, size);
        } finally {
          bitmap.close();
        }
      } finally {
        frame.close();
      }
    }
  }
}

scope.onmessage = (
  event: MessageEvent<{ id: number; variant: DecodeVariant; bytes: ArrayBuffer; size: number }>,
) => {
  const { id, variant, bytes, size } = event.data;
  decode(variant, bytes, size).then(
    (pixels) => scope.postMessage({ id, pixels }, [pixels.buffer]),
    (error: unknown) =>
      scope.postMessage({ id, error: error instanceof Error ? error.message : String(error) }),
  );
};
