/**
 * `npm run -s cli -- train --images <dir|zip> --csv <csv> --backbone <id> --weights <path> [options]`: the app's
 * training, headless (src/cli/node/headless.ts). Logs go to stderr as JSON lines (data, model, feature progress,
 * one line per epoch, test metrics); stdout gets one JSON object: config, data, history and the test-split metrics of
 * the best checkpoint, with the predictions aligned to the labels by image id.
 */
import * as tf from '@tensorflow/tfjs';
import { BACKBONE_IDS, DEFAULT_BACKBONE } from '../../lib/model/backbones/index.ts';
import { HEAD_KINDS, type HeadKind } from '../../lib/model/heads.ts';
import { DEFAULT_METADATA_UNITS, FUSIONS, type Fusion } from '../../lib/model/fusion.ts';
import { parseRatios } from '../../lib/split/split.ts';
import { MONITORS, type Monitor } from '../../lib/train/callbacks.ts';
import { parseArgs } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';
import { isNodeBackend, NODE_BACKENDS, type NodeBackend } from '../node/backend.ts';
import { DEFAULT_CONFIG, trainHeadless, type HeadlessConfig } from '../node/headless.ts';

const USAGE =
  'train --images <dir|zip> [--csv <metadata.csv>] --backbone <id> (--weights <model.json dir|.h5> | --random-init) ' +
  '[--size 224] [--epochs 30] [--batch 16] [--lr 1e-3] [--seed 1337] [--ratios .8,.1,.1] [--leaky] ' +
  `[--no-class-weights] [--head ${HEAD_KINDS.join('|')}] [--hidden-units 128] [--dropout 0.2] [--limit N] ` +
  `[--backend ${NODE_BACKENDS.join('|')}] [--monitor val_loss|val_accuracy|val_balanced_accuracy|val_macro_f1] ` +
  '[--early-stopping-patience N] [--min-delta X] [--reduce-lr-patience N] [--fine-tune-blocks N ' +
  '[--fine-tune-epochs 10] [--fine-tune-lr 1e-5] [--fine-tune-backend wasm|cpu (default: --backend)]] [--inference-batch 32] ' +
  `[--meta [--fusion ${FUSIONS.join('|')}] [--meta-units 32]] [--no-predictions] [--tta] [--quiet]  (backbones: ${BACKBONE_IDS.join(', ')})`;

const OPTIONS = [
  'images',
  'csv',
  'backbone',
  'weights',
  'size',
  'epochs',
  'batch',
  'lr',
  'seed',
  'ratios',
  'head',
  'hidden-units',
  'dropout',
  'limit',
  'backend',
  'monitor',
  'early-stopping-patience',
  'min-delta',
  'reduce-lr-patience',
  'fine-tune-blocks',
  'fine-tune-epochs',
  'fine-tune-lr',
  'fine-tune-backend',
  'inference-batch',
  'fusion',
  'meta-units',
];
const FLAGS = ['leaky', 'no-class-weights', 'random-init', 'no-predictions', 'tta', 'quiet', 'meta'];

function integer(options: Record<string, string>, name: string, min: number): number | undefined {
  const text = options[name];
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new UsageError(`--${name} ${text}: expected a whole number ≥ ${min}`);
  }
  return Number(text);
}

function positive(options: Record<string, string>, name: string): number | undefined {
  const text = options[name];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${name} ${text}: expected a number > 0`);
  }
  return value;
}

function backend(options: Record<string, string>, name: string, fallback: NodeBackend): NodeBackend {
  const value = options[name] ?? fallback;
  if (!isNodeBackend(value))
    throw new UsageError(`--${name} ${value}: expected one of ${NODE_BACKENDS.join(', ')}`);
  return value;
}

export function parseTrainArgs(args: string[]): HeadlessConfig & { quiet: boolean } {
  const { positional, options, flags } = parseArgs(args, { options: OPTIONS, flags: FLAGS });
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  if (options.images === undefined) throw new UsageError('--images <folder or zip> is required');
  if (options.weights === undefined && !flags.has('random-init')) {
    throw new UsageError(
      '--weights <path> is required (or --random-init, for timing runs without pretrained weights)',
    );
  }
  if (options.weights !== undefined && flags.has('random-init')) {
    throw new UsageError('--weights and --random-init exclude each other');
  }
  const head = options.head ?? DEFAULT_CONFIG.head;
  if (!(HEAD_KINDS as readonly string[]).includes(head)) {
    throw new UsageError(`--head ${head}: expected one of ${HEAD_KINDS.join(', ')}`);
  }
  const monitor = options.monitor ?? DEFAULT_CONFIG.monitor;
  if (!(MONITORS as readonly string[]).includes(monitor)) {
    throw new UsageError(`--monitor ${monitor}: expected one of ${MONITORS.join(', ')}`);
  }
  const dropoutText = options.dropout;
  const dropout = dropoutText === undefined ? DEFAULT_CONFIG.dropout : Number(dropoutText);
  if (!(dropout >= 0 && dropout < 1))
    throw new UsageError(`--dropout ${dropoutText}: expected a number in [0, 1)`);
  let seed = DEFAULT_CONFIG.seed;
  if (options.seed !== undefined) {
    seed = /^[+-]?\d+$/.test(options.seed) ? Number(options.seed) : Number.NaN;
    if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed ${options.seed}: expected an integer`);
  }
  let minDelta = DEFAULT_CONFIG.minDelta;
  if (options['min-delta'] !== undefined) {
    minDelta = Number(options['min-delta']);
    if (!Number.isFinite(minDelta) || minDelta < 0) {
      throw new UsageError(`--min-delta ${options['min-delta']}: expected a number ≥ 0`);
    }
  }
  const metaOnly = ['fusion', 'meta-units'].filter((o) => o in options);
  if (!flags.has('meta') && metaOnly.length > 0) throw new UsageError(`--${metaOnly[0]} needs --meta`);
  const fusion = options.fusion ?? 'concat';
  if (!(FUSIONS as readonly string[]).includes(fusion)) {
    throw new UsageError(`--fusion ${fusion}: expected one of ${FUSIONS.join(', ')}`);
  }
  const fineTuneBlocks = integer(options, 'fine-tune-blocks', 1);
  const fineTuneOnly = ['fine-tune-epochs', 'fine-tune-lr', 'fine-tune-backend'].filter((o) => o in options);
  if (fineTuneBlocks === undefined && fineTuneOnly.length > 0) {
    throw new UsageError(`--${fineTuneOnly[0]} needs --fine-tune-blocks N`);
  }
  return {
    ...DEFAULT_CONFIG,
    images: options.images,
    csv: options.csv ?? null,
    backbone: options.backbone ?? DEFAULT_BACKBONE,
    weights: options.weights ?? null,
    size: integer(options, 'size', 96) ?? DEFAULT_CONFIG.size,
    epochs: integer(options, 'epochs', 1) ?? DEFAULT_CONFIG.epochs,
    batchSize: integer(options, 'batch', 1) ?? DEFAULT_CONFIG.batchSize,
    learningRate: positive(options, 'lr') ?? DEFAULT_CONFIG.learningRate,
    seed,
    ratios: options.ratios === undefined ? DEFAULT_CONFIG.ratios : parseRatios(options.ratios),
    leaky: flags.has('leaky'),
    classWeights: !flags.has('no-class-weights'),
    head: head as HeadKind,
    hiddenUnits: integer(options, 'hidden-units', 1) ?? DEFAULT_CONFIG.hiddenUnits,
    dropout,
    limit: integer(options, 'limit', 2) ?? null,
    backend: backend(options, 'backend', DEFAULT_CONFIG.backend),
    monitor: monitor as Monitor,
    earlyStoppingPatience: integer(options, 'early-stopping-patience', 0) ?? null,
    minDelta,
    reduceLrPatience: integer(options, 'reduce-lr-patience', 0) ?? null,
    fineTune:
      fineTuneBlocks === undefined
        ? null
        : {
            blocks: fineTuneBlocks,
            epochs: integer(options, 'fine-tune-epochs', 1) ?? 10,
            learningRate: positive(options, 'fine-tune-lr') ?? 1e-5,
            backend: backend(
              options,
              'fine-tune-backend',
              backend(options, 'backend', DEFAULT_CONFIG.backend),
            ),
          },
    inferenceBatchSize: integer(options, 'inference-batch', 1) ?? DEFAULT_CONFIG.inferenceBatchSize,
    predictions: !flags.has('no-predictions'),
    tta: flags.has('tta'),
    meta: flags.has('meta')
      ? { fusion: fusion as Fusion, units: integer(options, 'meta-units', 1) ?? DEFAULT_METADATA_UNITS }
      : null,
    quiet: flags.has('quiet'),
  };
}

export const command: CliCommand = {
  summary:
    'Train a classifier headless (frozen pretrained base, feature cache, head; optional fine-tuning) and print the ' +
    'history and test-split metrics as JSON',
  usage: USAGE,
  async run(args) {
    const { quiet, ...config } = parseTrainArgs(args);
    // tfjs's console banners (e.g. "install tfjs-node") would break the JSON lines on stderr.
    tf.enableProdMode();
    const write = (log: object): void => void process.stderr.write(`${JSON.stringify(log)}\n`);
    return trainHeadless(config, { onLog: quiet ? undefined : write });
  },
};
