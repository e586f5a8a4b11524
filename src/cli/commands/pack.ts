import { DEFAULT_PACK_SIZE } from '../../lib/data/pack.ts';
import { parseArgs } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';
import { availableParallelism } from 'node:os';
import { DownscalePool } from '../node/pack-pool.ts';
import { PackWriter } from '../node/pack-writer.ts';
import { packImages, readPackInputs } from '../node/packing.ts';

const USAGE =
  'pack --images <zip|dir> --csv <metadata.csv> [--size 224] [--quality 90] [--jobs <cores>] --out <pack.zip>';

function wholeNumber(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} ${value}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

export const command: CliCommand = {
  summary:
    'A compact pack for slow networks: the metadata CSV as given plus the matched JPEGs, downscaled so the longer side is --size (never upscaled; smaller ones copied byte for byte)',
  usage: USAGE,
  async run(args) {
    const { positional, options } = parseArgs(args, {
      options: ['images', 'csv', 'size', 'quality', 'jobs', 'out'],
    });
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
    const { images, csv, out } = options;
    if (images === undefined || csv === undefined || out === undefined) {
      throw new UsageError('--images, --csv and --out are required');
    }
    const size = wholeNumber('size', options.size, DEFAULT_PACK_SIZE, 16, 4096);
    const quality = wholeNumber('quality', options.quality, 90, 1, 100);
    // One thread unless asked: worker threads pay off only with idle cores (see pack-pool.ts).
    const jobs = wholeNumber('jobs', options.jobs, 1, 1, Math.max(1, availableParallelism()) * 4);
    const t0 = performance.now();
    const inputs = await readPackInputs(images, csv);
    const writer = new PackWriter(out);
    const pool = new DownscalePool(jobs);
    try {
      writer.add(inputs.csvName, inputs.csvBytes, { deflate: true });
      const total = inputs.match.matched.length;
      const packed = await packImages(writer, inputs.match.matched, {
        size,
        quality,
        pool,
        onProgress: (done) => {
          if (done % 500 === 0 || done === total) {
            const seconds = (performance.now() - t0) / 1000;
            process.stderr.write(`pack: ${done} of ${total} images, ${seconds.toFixed(1)} s\n`);
          }
        },
      });
      for (const s of packed.skipped) process.stderr.write(`pack: skipped ${s.location}: ${s.reason}\n`);
      const bytes = writer.close();
      return {
        images: packed.resized + packed.copied,
        resized: packed.resized,
        copied: packed.copied,
        skipped: packed.skipped,
        rows: inputs.metadata.records.length,
        rows_without_image: inputs.match.report.rowsWithoutImage,
        images_without_row: inputs.match.report.imagesWithoutRow,
        bytes,
        size,
        quality,
        jobs,
        out,
        seconds: (performance.now() - t0) / 1000,
      };
    } catch (error) {
      writer.abort();
      throw error;
    } finally {
      await pool.close();
    }
  },
};
