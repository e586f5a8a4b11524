/**
 * The pixel size of a JPEG from its frame header (SOFn), without decoding it: a pack keeps an image that is
 * already small enough byte for byte, and needs to know that before paying for a decode.
 */

export interface JpegSize {
  width: number;
  height: number;
}

/** Start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT (C4), JPG (C8) or DAC (CC). */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Width and height from the first frame header, or null when `bytes` is not a JPEG or has none. */
export function jpegSize(bytes: Uint8Array): JpegSize | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let i = 2;
  while (i + 3 < bytes.length) {
    if (bytes[i] !== 0xff) return null;
    let marker = bytes[i + 1] as number;
    // Any number of 0xFF fill bytes may precede a marker.
    while (marker === 0xff && i + 2 < bytes.length) {
      i++;
      marker = bytes[i + 1] as number;
    }
    i += 2;
    // Markers without a length: TEM, RSTn, SOI. EOI or SOS before a frame header: no size to find.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    if (marker === 0xd9 || marker === 0xda) return null;
    if (i + 1 >= bytes.length) return null;
    const length = ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
    if (length < 2) return null;
    if (isStartOfFrame(marker)) {
      if (i + 6 >= bytes.length) return null;
      const height = ((bytes[i + 3] as number) << 8) | (bytes[i + 4] as number);
      const width = ((bytes[i + 5] as number) << 8) | (bytes[i + 6] as number);
      return width > 0 && height > 0 ? { width, height } : null;
    }
    i += length;
  }
  return null;
}
