/**
 * `npm run -s bench -- accuracy --meta [--fusion concat|metablock|both] [--meta-units 32]`: the accuracy bench's
 * frozen run twice on the same split, in one process: image only, then image + metadata (age, sex, localization
 * encoded on the train split, src/lib/model/metadata-features.ts), with the same head seed, the same decoded images
 * and the same cached pooled features (computed once). Prints `{"image_only": {...}, "with_meta": {...}}`, each with
 * `test` as the plain accuracy bench prints it; `--fusion both` adds `with_metablock`. `--features <file>` trains and
 * tests on pooled features already computed by `cli near-duplicates --features <file> --no-flips` (same backbone and size).
 */
import { readFile } from 'node:fs/promises';
import type { Fusion } from '../../src/lib/model/fusion.ts';
import { DEFAULT_METADATA_UNITS, FUSIONS } from '../../src/lib/model/fusion.ts';
import {
  sharedData,
  trainHeadless,
  type HeadlessConfig,
  type HeadlessLog,
  type HeadlessResult,
  type PooledFeatures,
  type TestMetrics,
} from '../../src/cli/node/headless.ts';

/**
 * Pooled features written by `cli near-duplicates --features <file> --no-flips` (raw float32 + `<file>.json`),
 * checked against the bench's backbone and size (and refused when flip-averaged), so that the frozen base's forward pass over 10,013 images is not repeated.
 */
async function readPooledFeatures(path: string, config: HeadlessConfig): Promise<PooledFeatures> {
  const info = JSON.parse(await readFile(`${path}.json`, 'utf8')) as {
    backbone: string;
    size: number;
    dim: number;
    image_ids: string[];
    flip_invariant?: boolean;
  };
  if (info.flip_invariant === true) {
    throw new Error(
      `${path}: flip-averaged features (the duplicate search's); training needs the plain ones: ` +
        'write them with `cli near-duplicates --features <file> --no-flips`',
    );
  }
  if (info.backbone !== config.backbone || info.size !== config.size) {
    throw new Error(
      `${path}: features of ${info.backbone} at ${info.size} px; the bench runs ${config.backbone} at ${config.size}`,
    );
  }
  const bytes = await readFile(path);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (values.length !== info.image_ids.length * info.dim) {
    throw new Error(`${path}: ${values.length} values for ${info.image_ids.length} images of ${info.dim}`);
  }
  return { imageIds: info.image_ids, values, dim: info.dim };
}

export async function metadataComparison(
  args: string[],
  config: HeadlessConfig,
  summary: (test: TestMetrics | null) => unknown,
  log: (line: HeadlessLog) => void,
): Promise<Record<string, unknown>> {
  const option = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const fusionArg = option('fusion') ?? 'concat';
  const fusions: Fusion[] =
    fusionArg === 'both' ? ['concat', 'metablock'] : FUSIONS.filter((f) => f === fusionArg);
  if (fusions.length === 0) throw new Error(`--fusion ${fusionArg}: expected concat, metablock or both`);
  const units = Number(option('meta-units') ?? DEFAULT_METADATA_UNITS);
  const shared = sharedData();
  const featuresPath = option('features');
  if (featuresPath) shared.pooled = await readPooledFeatures(featuresPath, config);
  const t0 = performance.now();
  const describe = (run: HeadlessResult, seconds: number) => {
    const one = run.phases[0]!;
    return {
      test: summary(one.test),
      head_params: run.model.head_params,
      epochs_run: one.epochs_run,
      best_epoch: one.best_epoch,
      best_val_balanced_accuracy: one.best_value,
      feature_seconds: one.feature_seconds,
      head_training_seconds: one.train_seconds,
      seconds,
    };
  };
  const runOne = async (meta: HeadlessConfig['meta']) => {
    const t = performance.now();
    const run = await trainHeadless({ ...config, meta }, { onLog: log, shared });
    return { run, seconds: (performance.now() - t) / 1000 };
  };
  const plain = await runOne(null);
  const result: Record<string, unknown> = {
    backbone: config.backbone,
    images: plain.run.data.used,
    split: (plain.run.data.split as { totals: unknown }).totals,
    monitor: config.monitor,
    image_only: describe(plain.run, plain.seconds),
  };
  for (const fusion of fusions) {
    const withMeta = await runOne({ fusion, units });
    const key = fusion === fusions[0] ? 'with_meta' : `with_${fusion}`;
    result[key] = {
      fusion,
      metadata_units: units,
      metadata_features: withMeta.run.data.metadata_features,
      metadata_encoding: withMeta.run.data.metadata_encoding,
      ...describe(withMeta.run, withMeta.seconds),
    };
  }
  result.wall_seconds = (performance.now() - t0) / 1000;
  return result;
}
