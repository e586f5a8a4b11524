/// <reference lib="webworker" />
/**
 * Encoded JPEG/PNG bytes → square RGB pixels, the way the training cache is made. The decode workers use it to
 * build the cache and the runs worker uses it for Predict, so a file given to Predict reaches the model as the same
 * pixels as its cached copy did in training (same decoder, resize filter and colour handling).
 *
 * Decoding and resizing are native: createImageBitmap(blob, {resizeWidth, resizeHeight, resizeQuality: 'high'})
 * squashes the image to size x size (RESIZE_NOTE in src/lib/data/resize.ts says why squash, not crop), then a
 * 2D OffscreenCanvas hands back the pixels. Colour profiles and EXIF orientation are ignored, as Keras/PIL
 * (the seed's loader) ignore them, so the cache matches what the seed trained on.
 */

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

/** The image squashed to `size`×`size`, as RGB bytes (row-major, no alpha). Rejects when it is not an image. */
export async function decodeSquare(image: Blob, size: number): Promise<Uint8Array> {
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
