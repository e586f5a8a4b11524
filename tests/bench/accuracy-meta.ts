/**
 * `npm run -s bench -- accuracy --meta [--fusion concat|metablock|both] [--meta-units 32]`: the accuracy bench's
 * frozen run twice on the same split, in one process: image only, then image + metadata (age, sex, localization
 * encoded on the train split, src/lib/model/metadata-features.ts), with the same head seed, the same decoded images
 * and the same cached pooled features (computed once). Prints `{"image_only": {...}, "with_meta": {...}}`, each with
 * `test` as the plain accuracy bench prints it; `--fusion both` adds `with_metablock`.
 */
import type { Fusion } from '../../src/lib/model/fusion.ts';
import { DEFAULT_METADATA_UNITS, FUSIONS } from '../../src/lib/model/fusion.ts';
import {
  sharedData,
  trainHeadless,
  type HeadlessConfig,
  type HeadlessLog,
  type HeadlessResult,
  type TestMetrics,
} from '../../src/cli/node/headless.ts';

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
