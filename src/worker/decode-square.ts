/// <reference lib="webworker" />
/**
 * Encoded JPEG/PNG bytes → square RGB pixels, the way the training cache is made. The decode workers use it to
 * build the cache and the runs worker uses it for Predict, so a file given to Predict reaches the model as the same
 * pixels as its cached copy did in training (same decoder, resize filter and colour handling).
 *
 * Every image is squashed to size x size (RESIZE_NOTE in src/lib/data/resize.ts says why squash, not crop) with
 * the Catmull–Rom filter, the one Chromium's createImageBitmap uses for resizeQuality 'high'. Colour profiles and
 * EXIF orientation are ignored, as Keras/PIL (the seed's loader) ignore them, so the cache matches what the seed
 * trained on. Two ways get there:
 * - JPEGs, where the browser has WebCodecs' ImageDecoder: the browser decodes (libjpeg-turbo), VideoFrame.copyTo
 *   hands over RGBA, and squashRgba (src/lib/data/squash-rgba.ts) resizes in JavaScript, in fixed point.
 *   `bench decode` measured this at under half the CPU time per image of the second way, with the same pixels to
 *   within 2 levels.
 * - Anything else (PNGs, browsers without ImageDecoder or VideoFrame.copyTo to RGBA, a JPEG whose frame comes
 *   rotated by its EXIF orientation, a JPEG ImageDecoder refuses): createImageBitmap(blob, {resizeWidth,
 *   resizeHeight, resizeQuality: 'high'}), drawn onto a 2D OffscreenCanvas to read the pixels back.
 */
import { squashRgba } from '../lib/data/squash-rgba.ts';

let canvas: OffscreenCanvas | null = null;
let context: OffscreenCanvasRenderingContext2D | null = null;

function contextOf(size: number): OffscreenCanvasRenderingContext2D {
  if (canvas === null || context === null || canvas.width !== size || canvas.height !== size) {
    canvas = new OffscreenCanvas(size, size);
    // willReadFrequently keeps the canvas in CPU memory: getImageData then costs a copy, not a GPU readback.
    context = canvas.getContext('2d', { willReadFrequently: true, alpha: true });
    if (context === null) throw new Error('this browser gives workers no 2D OffscreenCanvas');
  }
  return context;
}

/** The bitmap way alone (see the file's comment); `bench decode` times it against decodeSquare. */
export async function decodeWithBitmap(image: Blob, size: number): Promise<Uint8Array> {
  const bitmap = await createImageBitmap(image, {
    resizeWidth: size,
    resizeHeight: size,
    resizeQuality: 'high',
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  try {
    const ctx = contextOf(size);
    // A PNG with transparency is composited on black, the same every time, as the cache has no alpha.
    ctx.clearRect(0, 0, size, size);
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, size, size).data;
    const rgb = new Uint8Array(size * size * 3);
    for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
      rgb[q] = rgba[p] as number;
      rgb[q + 1] = rgba[p + 1] as number;
      rgb[q + 2] = rgba[p + 2] as number;
    }
    return rgb;
  } finally {
    bitmap.close();
  }
}

/** False once VideoFrame.copyTo has refused RGBA here (older browsers): the bitmap way is used from then on. */
let copyToRgba = typeof ImageDecoder === 'function' && typeof VideoFrame === 'function';

// Buffers for the decoded RGBA, reused: allocating (and zeroing) a megabyte per image costs measurable time. One
// per image in flight (a decoder has several), none kept above REUSED_RGBA_BYTES, so one huge photo does not pin
// its memory.
const REUSED_RGBA_BYTES = 16 * 1024 * 1024;
const spareRgba: Uint8Array[] = [];

function takeRgba(bytes: number): Uint8Array {
  const i = spareRgba.findIndex((b) => b.length === bytes);
  return i >= 0 ? (spareRgba.splice(i, 1)[0] as Uint8Array) : new Uint8Array(bytes);
}

function giveBackRgba(buffer: Uint8Array): void {
  if (buffer.length <= REUSED_RGBA_BYTES && spareRgba.length < 4) spareRgba.push(buffer);
}

function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/**
 * The JPEG through ImageDecoder and squashRgba, or null when this way does not apply to it (see the file's comment);
 * the caller then takes the bitmap way, which also words the error when the bytes are no image.
 */
async function decodeWithImageDecoder(
  bytes: Uint8Array,
  size: number,
  into?: ArrayBuffer,
): Promise<Uint8Array | null> {
  let frame: VideoFrame;
  try {
    const decoder = new ImageDecoder({ data: bytes, type: 'image/jpeg', colorSpaceConversion: 'none' });
    try {
      frame = (await decoder.decode()).image;
    } finally {
      decoder.close();
    }
  } catch {
    return null;
  }
  try {
    // Newer browsers carry the EXIF orientation on the frame; copyTo would ignore it where the bitmap way may not.
    const { rotation = 0, flip = false } = frame as VideoFrame & { rotation?: number; flip?: boolean };
    if (rotation !== 0 || flip) return null;
    const { width, height } = frame.visibleRect ?? { width: frame.displayWidth, height: frame.displayHeight };
    const rgba = takeRgba(width * height * 4);
    try {
      try {
        await frame.copyTo(rgba, { format: 'RGBA' });
      } catch {
        copyToRgba = false;
        return null;
      }
      const reused =
        into !== undefined && into.byteLength === size * size * 3 ? new Uint8Array(into) : undefined;
      return squashRgba(rgba, width, height, size, reused);
    } finally {
      giveBackRgba(rgba);
    }
  } finally {
    frame.close();
  }
}

/**
 * The image squashed to `size`×`size`, as RGB bytes (row-major, no alpha). Rejects when it is not an image. The
 * JPEG way writes them into `into` when it holds size·size·3 bytes (a decoder reuses answered buffers that way).
 */
export async function decodeSquare(
  image: Blob | ArrayBuffer,
  size: number,
  into?: ArrayBuffer,
): Promise<Uint8Array> {
  if (copyToRgba) {
    const bytes = new Uint8Array(image instanceof Blob ? await image.arrayBuffer() : image);
    if (isJpeg(bytes)) {
      const pixels = await decodeWithImageDecoder(bytes, size, into);
      if (pixels !== null) return pixels;
    }
    return decodeWithBitmap(image instanceof Blob ? image : new Blob([bytes]), size);
  }
  return decodeWithBitmap(image instanceof Blob ? image : new Blob([image]), size);
}
