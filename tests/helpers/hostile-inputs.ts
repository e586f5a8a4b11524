/**
 * Malformed and hostile inputs, made at test time (nothing of the kind is kept in the repository): images the
 * decoder must survive (flat JPEGs of any size and colour model, EXIF orientation), zips with lying headers, and
 * byte-level edits of real files. Node only.
 */
import { crc32, deflateRawSync, deflateSync } from 'node:zlib';

// ---------------------------------------------------------------------------------------------------------------
// JPEG: a baseline file of one flat colour, written bit by bit. Every 8x8 block is its DC value and an end of
// block, so even 12000 x 9000 pixels take a few MB and a few hundred ms to write; any number of components (1
// grey, 3 YCbCr, 4 CMYK with Adobe's APP14 marker) with the same tables.

class BitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private n = 0;
  write(code: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((code >> i) & 1);
      if (++this.n === 8) this.flushByte();
    }
  }
  private flushByte(): void {
    this.bytes.push(this.acc);
    if (this.acc === 0xff) this.bytes.push(0x00);
    this.acc = 0;
    this.n = 0;
  }
  finish(): Uint8Array {
    while (this.n !== 0) this.write(1, 1);
    return Uint8Array.from(this.bytes);
  }
}

function segment(marker: number, body: number[]): number[] {
  const length = body.length + 2;
  return [0xff, marker, length >> 8, length & 0xff, ...body];
}

/** The DC magnitude category of a value and its bits (JPEG F.1.2.1). */
function category(value: number): [number, number] {
  let c = 0;
  while (Math.abs(value) >= 1 << c) c++;
  return [c, value >= 0 ? value : value + (1 << c) - 1];
}

export interface FlatJpegOptions {
  width: number;
  height: number;
  /** 1 grey, 3 YCbCr, 4 CMYK (Adobe, inverted as Photoshop writes it). */
  components: 1 | 3 | 4;
  /** Each component's sample value, 0–255 (default 128 + 40 per component). */
  values?: number[];
}

export function flatJpeg(options: FlatJpegOptions): Uint8Array {
  const { width, height, components } = options;
  const values = options.values ?? Array.from({ length: components }, (_, i) => 160 + 20 * i);
  // DC of a flat block with all quantisers 1: 8 × (sample − 128).
  const dcs = values.map((v) => 8 * (v - 128));
  const dcCategories = [...new Set([0, ...dcs.map((d) => category(d)[0])])].sort((a, b) => a - b);
  const header: number[] = [0xff, 0xd8];
  header.push(...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
  if (components === 4) header.push(...segment(0xee, [0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, 0]));
  header.push(...segment(0xdb, [0, ...new Array<number>(64).fill(1)]));
  const sof = [8, height >> 8, height & 0xff, width >> 8, width & 0xff, components];
  for (let c = 0; c < components; c++) sof.push(c + 1, 0x11, 0);
  header.push(...segment(0xc0, sof));
  // DC table 0: every category used, all with codes of the same length; AC table 0: only end of block.
  const dcLength = Math.max(2, Math.ceil(Math.log2(dcCategories.length + 1)));
  const dcBits = new Array<number>(16).fill(0);
  dcBits[dcLength - 1] = dcCategories.length;
  header.push(...segment(0xc4, [0x00, ...dcBits, ...dcCategories]));
  const acBits = new Array<number>(16).fill(0);
  acBits[1] = 1;
  header.push(...segment(0xc4, [0x10, ...acBits, 0x00]));
  const sos: number[] = [components];
  for (let c = 0; c < components; c++) sos.push(c + 1, 0x00);
  sos.push(0, 63, 0);
  header.push(...segment(0xda, sos));

  const bits = new BitWriter();
  const code = (cat: number) => dcCategories.indexOf(cat);
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  for (let b = 0; b < blocks; b++) {
    for (let c = 0; c < components; c++) {
      const diff = b === 0 ? dcs[c]! : 0;
      const [cat, extra] = category(diff);
      bits.write(code(cat), dcLength);
      if (cat > 0) bits.write(extra, cat);
      bits.write(0, 2); // end of block
    }
  }
  const scan = bits.finish();
  const out = new Uint8Array(header.length + scan.length + 2);
  out.set(header, 0);
  out.set(scan, header.length);
  out.set([0xff, 0xd9], header.length + scan.length);
  return out;
}

/** The JPEG with an EXIF APP1 segment saying how to rotate it (6: 90° clockwise), right after SOI. */
export function withExifOrientation(jpeg: Uint8Array, orientation: number): Uint8Array {
  const tiff = [
    0x4d,
    0x4d,
    0,
    0x2a,
    0,
    0,
    0,
    8,
    0,
    1,
    0x01,
    0x12,
    0,
    3,
    0,
    0,
    0,
    1,
    0,
    orientation,
    0,
    0,
    0,
    0,
    0,
    0,
  ];
  const app1 = segment(0xe1, [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff]);
  const out = new Uint8Array(jpeg.length + app1.length);
  out.set(jpeg.subarray(0, 2), 0);
  out.set(app1, 2);
  out.set(jpeg.subarray(2), 2 + app1.length);
  return out;
}

/** A small RGB PNG of one colour. */
export function flatPng(
  width: number,
  height: number,
  rgb: [number, number, number] = [200, 120, 90],
): Uint8Array {
  const raw = new Uint8Array((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(rgb, y * (width * 3 + 1) + 1 + x * 3);
  }
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// Zips written byte by byte (stored or deflated), so that headers can lie and 50,000 entries take a moment.

export interface RawEntry {
  name: string;
  data: Uint8Array;
  /** Deflate the data (default: store). */
  deflate?: boolean;
  /** Write this uncompressed size in the local header instead of the true one. */
  localSize?: number;
  /** Write this uncompressed size in the central directory instead of the true one. */
  centralSize?: number;
}

export function rawZip(entries: readonly RawEntry[], options: { centralDirectory?: boolean } = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const body = e.deflate ? deflateRawSync(e.data) : Buffer.from(e.data);
    const crc = crc32(e.data) >>> 0;
    const method = e.deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(0x4c8c0000, 10);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.localSize ?? e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(0x4c8c0000, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.centralSize ?? e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  if (options.centralDirectory === false) return Buffer.concat(locals);
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** Deterministic bytes that are no known format. */
export function noise(length: number, seed = 1337): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
