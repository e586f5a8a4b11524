import { basename } from 'node:path';
import { parseMetadata } from '../../lib/data/metadata.ts';
import { trainClassWeights } from '../../lib/split/classWeights.ts';
import { DEFAULT_RATIOS, DEFAULT_SEED, parseRatios, splitRecords } from '../../lib/split/split.ts';
import { parseArgs, readInputFile } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';

const USAGE = 'split <metadata.csv> [--seed N] [--ratios .8,.1,.1] [--leaky] [--images-as-lesions]';

function parseSplitArgs(args: string[]) {
  const { positional, options, flags } = parseArgs(args, {
    options: ['seed', 'ratios'],
    flags: ['leaky', 'images-as-lesions'],
  });
  const [path, ...rest] = positional;
  if (path === undefined || rest.length > 0) throw new UsageError('expected one metadata file');
  let seed = DEFAULT_SEED;
  if (options.seed !== undefined) {
    seed = /^[+-]?\d+$/.test(options.seed) ? Number(options.seed) : Number.NaN;
    if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed ${options.seed}: expected an integer`);
  }
  return {
    path,
    seed,
    ratios: options.ratios === undefined ? DEFAULT_RATIOS : parseRatios(options.ratios),
    leaky: flags.has('leaky'),
    imagesAsLesions: flags.has('images-as-lesions'),
  };
}

export const command: CliCommand = {
  summary:
    'Train/val/test split, stratified by dx and grouped by lesion (or --leaky: image-level, as the seed notebook), as JSON',
  usage: USAGE,
  async run(args) {
    const options = parseSplitArgs(args);
    const text = await readInputFile(options.path);
    const metadata = parseMetadata(text, basename(options.path));
    if (!metadata.hasLesionIds && !options.leaky && !options.imagesAsLesions) {
      throw new Error(
        `${metadata.fileName} has no lesion ids (${metadata.format} format), so a lesion-grouped split is impossible: ` +
          `use --leaky for the image-level split, or --images-as-lesions if you know no lesion was photographed twice`,
      );
    }
    const split = splitRecords(metadata.records, {
      seed: options.seed,
      ratios: options.ratios,
      grouped: !options.leaky,
      missingLesionId: options.imagesAsLesions ? 'own-lesion' : 'error',
    });
    if (!split.grouped) {
      process.stderr.write(
        `split: image-level split (leaky, as the seed notebook): ${split.leakedLesions} lesions have images in more than one split\n`,
      );
    }
    if (split.imagesWithoutLesionId > 0) {
      process.stderr.write(
        `split: ${split.imagesWithoutLesionId} images without a lesion id were each treated as their own lesion\n`,
      );
    }
    return {
      seed: split.seed,
      ratios: split.ratios,
      grouped: split.grouped,
      // Object.fromEntries defines own properties, so an id like "__proto__" stays a plain key.
      assignment: Object.fromEntries(split.assignment),
      table: split.table,
      totals: split.totals,
      lesions: split.lesions,
      leaked_lesions: split.leakedLesions,
      class_weights: trainClassWeights(split, { absent: 'zero' }),
    };
  },
};
