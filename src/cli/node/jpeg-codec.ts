/** Shrinking one JPEG for a pack: decode (jpeg-js), the core's area resize, encode (jpeg-js). */
import jpeg from 'jpeg-js';
import { resizeRgb } from '../../lib/data/resize.ts';

export interface Target {
  width: number;
  height: number;
}

/** Decodes, shrinks with the core's area filter (no aliasing, a neutral reference) and re-encodes a JPEG. */
export function downscaleJpeg(bytes: Uint8Array, target: Target, quality: number): Uint8Array {
  const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
  const small = resizeRgb(
    { width: decoded.width, height: decoded.height, data: decoded.data, channels: 3 },
    target.width,
    target.height,
    'area',
  );
  // jpeg-js encodes from RGBA.
  const rgba = new Uint8Array(target.width * target.height * 4);
  for (let p = 0, q = 0; p < small.data.length; p += 3, q += 4) {
    rgba[q] = small.data[p] as number;
    rgba[q + 1] = small.data[p + 1] as number;
    rgba[q + 2] = small.data[p + 2] as number;
    rgba[q + 3] = 255;
  }
  return new Uint8Array(
    jpeg.encode({ width: target.width, height: target.height, data: rgba }, quality).data,
  );
}
