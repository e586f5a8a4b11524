import { DX } from '../../lib/data/dx.ts';
import { chooseSample } from '../../lib/data/pack.ts';
import { DEFAULT_SEED } from '../../lib/split/split.ts';
import { parseArgs } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';
import { PackWriter } from '../node/pack-writer.ts';
import { packImages, readPackInputs } from '../node/packing.ts';

const USAGE =
  'sample --images <dir|zip> --csv <metadata.csv> --out <sample.zip> [--per-class 150] [--seed 1337] [--max-bytes 8000000]';

function wholeNumber(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} ${value}: expected a whole number ≥ ${min}`);
  return n;
}

export const command: CliCommand = {
  summary:
    'The sample pack: the metadata CSV as given plus a seeded, lesion-grouped choice of at most --per-class images per diagnosis, copied byte for byte',
  usage: USAGE,
  async run(args) {
    const { positional, options } = parseArgs(args, {
      options: ['images', 'csv', 'out', 'per-class', 'seed', 'max-bytes'],
    });
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
    const { images, csv, out } = options;
    if (images === undefined || csv === undefined || out === undefined) {
      throw new UsageError('--images, --csv and --out are required');
    }
    const perClass = wholeNumber('per-class', options['per-class'], 150);
    const seed = wholeNumber('seed', options.seed, DEFAULT_SEED, 0);
    const maxBytes = wholeNumber('max-bytes', options['max-bytes'], 8_000_000);
    const t0 = performance.now();
    const inputs = await readPackInputs(images, csv);
    const available = new Set(inputs.match.matched.map((m) => m.record.imageId));
    const choice = chooseSample(inputs.metadata.records, available, { perClass, seed });
    if (choice.incompleteLesions.length > 0) {
      process.stderr.write(
        `sample: ${choice.incompleteLesions.length} lesions left out because an image of theirs is missing ` +
          `(${choice.incompleteLesions.slice(0, 10).join(', ')})\n`,
      );
    }
    const chosen = new Set(choice.imageIds);
    const writer = new PackWriter(out);
    try {
      writer.add(inputs.csvName, inputs.csvBytes, { deflate: true });
      await packImages(
        writer,
        inputs.match.matched.filter((m) => chosen.has(m.record.imageId)),
        { size: null, quality: 90 },
      );
      if (writer.bytes > maxBytes) {
        throw new Error(`${out} would be ${writer.bytes} bytes, more than --max-bytes ${maxBytes}`);
      }
      const bytes = writer.close();
      return {
        images: choice.imageIds.length,
        per_class: Object.fromEntries(DX.map((dx) => [dx, choice.perClass[dx]])),
        lesions: choice.lesions,
        lesions_left_out_incomplete: choice.incompleteLesions,
        rows: inputs.metadata.records.length,
        per_class_limit: perClass,
        seed,
        bytes,
        out,
        seconds: (performance.now() - t0) / 1000,
      };
    } catch (error) {
      writer.abort();
      throw error;
    }
  },
};
