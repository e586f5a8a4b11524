/// <reference lib="webworker" />
/**
 * Other ways a worker can turn JPEG bytes into square RGB pixels, for `bench decode` to time against the app's
 * own (src/worker/decode-square.ts, run by the real decode workers). Each message decodes one image and answers
 * with its RGB bytes, so the bench can also compare the pixels with the app's and with the reference decode.
 *
 * Candidates (answer the image's RGB pixels):
 * - 'app': the app's decodeSquare (for JPEGs: ImageDecoder → VideoFrame.copyTo RGBA → squashRgba).
 * - 'bitmap-resize': the app's way before, still its fallback (decodeWithBitmap): createImageBitmap(blob) with
 *   resizeWidth/Height ('high') → 2D canvas → getImageData → RGB.
 * - 'bitmap-canvas-scale': createImageBitmap at full size, then drawImage scaled onto the size×size canvas with
 *   imageSmoothingQuality 'high' (the resize moves from the decoder to the canvas).
 * - 'imagedecoder-canvas': WebCodecs ImageDecoder → VideoFrame, drawn scaled onto the canvas.
 * - 'imagedecoder-bitmap': ImageDecoder → VideoFrame → createImageBitmap(frame, resize 'high') → canvas.
 * - 'bitmap-full-js-resize': createImageBitmap at full size → full-size canvas → getImageData → resizeRgb
 *   ('catmull-rom', src/lib/data/resize.ts) in JavaScript.
 * - 'imagedecoder-copyto-js-resize': ImageDecoder → VideoFrame.copyTo({format: 'RGBA'}) → resizeRgb.
 * - 'imagedecoder-reduced-js-resize': ImageDecoder asked for a reduced size (desiredWidth/Height: libjpeg's DCT
 *   scaling by n/8), the smallest that still covers size×size (600x450 → 300x225 for 224; Chromium keeps the
 *   decoded area within the desired one, so asking for size×size gave 225x169) → copyTo RGBA → resizeRgb.
 *
 * Stages of the app's way, each stopping earlier (answer zeros; only their CPU time means something):
 * - 'stage-message': no decode at all, the worker round trip alone.
 * - 'stage-blob-decode': createImageBitmap(blob) at full size, closed.
 * - 'stage-blob-decode-resize': createImageBitmap(blob, resize 'high'), closed.
 * - 'stage-draw': … then drawn onto the 2D canvas.
 * - 'stage-readback': … then getImageData (the app's way less the RGBA → RGB copy).
 * - 'stage-imagedecoder-decode': ImageDecoder → VideoFrame, closed.
 * - 'stage-imagedecoder-copyto': … then VideoFrame.copyTo RGBA into a reused buffer.
 * - 'stage-js-resize': resizeRgb of an RGBA buffer of the image's full size, without decoding.
 * - 'stage-squash': squashRgba (the app's resize) of the same buffer.
 */
import { decodeSquare, decodeWithBitmap } from '../../src/worker/decode-square.ts';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import { squashRgba } from '../../src/lib/data/squash-rgba.ts';
import type { DecodeVariant } from './decode-variants.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

const contexts = new Map<string, OffscreenCanvasRenderingContext2D>();

function contextOf(width: number, height: number): OffscreenCanvasRenderingContext2D {
  const key = `${width}x${height}`;
  let context = contexts.get(key);
  if (context === undefined) {
    const created = new OffscreenCanvas(width, height).getContext('2d', {
      willReadFrequently: true,
      alpha: true,
    });
    if (created === null) throw new Error('no 2D OffscreenCanvas in this worker');
    created.imageSmoothingEnabled = true;
    created.imageSmoothingQuality = 'high';
    contexts.set(key, created);
    context = created;
  }
  return context;
}

function rgbOf(rgba: Uint8ClampedArray | Uint8Array): Uint8Array {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    rgb[q] = rgba[p] as number;
    rgb[q + 1] = rgba[p + 1] as number;
    rgb[q + 2] = rgba[p + 2] as number;
  }
  return rgb;
}

async function frameOf(bytes: ArrayBuffer, desired?: { width: number; height: number }): Promise<VideoFrame> {
  const decoder = new ImageDecoder({
    data: bytes,
    type: 'image/jpeg',
    colorSpaceConversion: 'none',
    ...(desired === undefined ? {} : { desiredWidth: desired.width, desiredHeight: desired.height }),
  });
  try {
    return (await decoder.decode()).image;
  } finally {
    decoder.close();
  }
}

/** The size the last image was decoded at, reported with its pixels (shows whether DCT scaling happened). */
let decodedSize: [number, number] | null = null;

async function rgbaOfFrame(frame: VideoFrame): Promise<{ width: number; height: number; data: Uint8Array }> {
  const width = frame.displayWidth;
  const height = frame.displayHeight;
  decodedSize = [width, height];
  const data = new Uint8Array(width * height * 4);
  await frame.copyTo(data, { format: 'RGBA' });
  return { width, height, data };
}

let rgbaScratch = new Uint8Array(0);

async function rgbaIntoScratch(
  frame: VideoFrame,
): Promise<{ width: number; height: number; data: Uint8Array }> {
  const { width, height } = frame.visibleRect ?? { width: frame.displayWidth, height: frame.displayHeight };
  if (rgbaScratch.length !== width * height * 4) rgbaScratch = new Uint8Array(width * height * 4);
  await frame.copyTo(rgbaScratch, { format: 'RGBA' });
  return { width, height, data: rgbaScratch };
}

// The full size of the bench's JPEGs, for 'stage-js-resize' (the HAM10000 originals are all 600x450).
const FULL = { width: 600, height: 450 };
let fullRgba: Uint8Array | null = null;

async function decode(variant: DecodeVariant, bytes: ArrayBuffer, size: number): Promise<Uint8Array> {
  const zeros = () => new Uint8Array(size * size * 3);
  switch (variant) {
    case 'app':
      return decodeSquare(bytes, size);
    case 'bitmap-resize':
      return decodeWithBitmap(new Blob([bytes]), size);
    case 'bitmap-canvas-scale': {
      const bitmap = await createImageBitmap(new Blob([bytes]), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
      try {
        const ctx = contextOf(size, size);
        ctx.drawImage(bitmap, 0, 0, size, size);
        return rgbOf(ctx.getImageData(0, 0, size, size).data);
      } finally {
        bitmap.close();
      }
    }
    case 'imagedecoder-canvas': {
      const frame = await frameOf(bytes);
      try {
        const ctx = contextOf(size, size);
        ctx.drawImage(frame, 0, 0, size, size);
        return rgbOf(ctx.getImageData(0, 0, size, size).data);
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
          const ctx = contextOf(size, size);
          ctx.drawImage(bitmap, 0, 0);
          return rgbOf(ctx.getImageData(0, 0, size, size).data);
        } finally {
          bitmap.close();
        }
      } finally {
        frame.close();
      }
    }
    case 'bitmap-full-js-resize': {
      const bitmap = await createImageBitmap(new Blob([bytes]), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
      try {
        const { width, height } = bitmap;
        const ctx = contextOf(width, height);
        ctx.clearRect(0, 0, width, height);
        ctx.drawImage(bitmap, 0, 0);
        const data = ctx.getImageData(0, 0, width, height).data;
        return resizeRgb({ width, height, data, channels: 4 }, size, size, 'catmull-rom').data;
      } finally {
        bitmap.close();
      }
    }
    case 'imagedecoder-copyto-js-resize': {
      const frame = await frameOf(bytes);
      try {
        const image = await rgbaOfFrame(frame);
        return resizeRgb({ ...image, channels: 4 }, size, size, 'catmull-rom').data;
      } finally {
        frame.close();
      }
    }
    case 'stage-imagedecoder-copyto': {
      const frame = await frameOf(bytes);
      try {
        await rgbaIntoScratch(frame);
        return zeros();
      } finally {
        frame.close();
      }
    }
    case 'imagedecoder-reduced-js-resize': {
      const eighths = Math.ceil((8 * size) / Math.min(FULL.width, FULL.height));
      const frame = await frameOf(bytes, {
        width: Math.ceil((FULL.width * eighths) / 8),
        height: Math.ceil((FULL.height * eighths) / 8),
      });
      try {
        const image = await rgbaOfFrame(frame);
        return resizeRgb({ ...image, channels: 4 }, size, size, 'catmull-rom').data;
      } finally {
        frame.close();
      }
    }
    case 'stage-message':
      return zeros();
    case 'stage-blob-decode': {
      const bitmap = await createImageBitmap(new Blob([bytes]), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
      bitmap.close();
      return zeros();
    }
    case 'stage-blob-decode-resize':
    case 'stage-draw':
    case 'stage-readback': {
      const bitmap = await createImageBitmap(new Blob([bytes]), {
        resizeWidth: size,
        resizeHeight: size,
        resizeQuality: 'high',
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
      try {
        if (variant === 'stage-blob-decode-resize') return zeros();
        const ctx = contextOf(size, size);
        ctx.clearRect(0, 0, size, size);
        ctx.drawImage(bitmap, 0, 0);
        if (variant === 'stage-readback') ctx.getImageData(0, 0, size, size);
        return zeros();
      } finally {
        bitmap.close();
      }
    }
    case 'stage-imagedecoder-decode':
      (await frameOf(bytes)).close();
      return zeros();
    case 'stage-squash':
      fullRgba ??= new Uint8Array(FULL.width * FULL.height * 4).map((_, i) => (i * 37) & 255);
      return squashRgba(fullRgba, FULL.width, FULL.height, size);
    case 'stage-js-resize': {
      fullRgba ??= new Uint8Array(FULL.width * FULL.height * 4).map((_, i) => (i * 37) & 255);
      return resizeRgb({ ...FULL, data: fullRgba, channels: 4 }, size, size, 'catmull-rom').data;
    }
  }
}

scope.onmessage = (
  event: MessageEvent<{ id: number; variant: DecodeVariant; bytes: ArrayBuffer; size: number }>,
) => {
  const { id, variant, bytes, size } = event.data;
  decodedSize = null;
  decode(variant, bytes, size).then(
    (pixels) => scope.postMessage({ id, pixels, decoded: decodedSize }, [pixels.buffer]),
    (error: unknown) =>
      scope.postMessage({ id, error: error instanceof Error ? error.message : String(error) }),
  );
};
