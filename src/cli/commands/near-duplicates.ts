/**
 * `npm run -s cli -- near-duplicates --images <dir|zip> --csv <csv> --weights <model.json|.h5> [--backbone id]
 * [--top 100] [--size 224] [--limit N] [--threshold S] [--features <file.f32>] [--no-center] [--no-self-check] [--no-flips]`
 *
 * Pairs of images with different lesion ids whose pooled backbone features are most alike (cosine similarity), most
 * similar first: candidates for one lesion filed under two ids (src/lib/data/near-duplicates.ts). Prints
 * `{"pairs": [{a, b, similarity, lesion_a, lesion_b, dx_a, dx_b}], "images", "seconds", "self_check", …}`; the
 * self-check compares the similarities of the known duplicates (same lesion id) with those of different lesions.
 * `--features` keeps the extracted features in a file (raw float32, with `<file>.json` naming the image of each row)
 * and reuses it when it matches; `npm run -s bench -- accuracy --features <file>` trains on them. Features are the
 * mean over the image and its three flips (flip-invariant, 4× the extraction time) unless `--no-flips`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { matchImages } from '../../lib/data/match.ts';
import { parseMetadata } from '../../lib/data/metadata.ts';
import { findNearDuplicates } from '../../lib/data/near-duplicates.ts';
import { BACKBONE_IDS, DEFAULT_BACKBONE, getBackbone } from '../../lib/model/backbones/index.ts';
import { buildFeatureExtractor } from '../../lib/model/heads.ts';
import { preprocessInput } from '../../lib/model/preprocess.ts';
import { extractFeatureBatches } from '../../lib/train/featureCache.ts';
import { parseArgs, readInputFile } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';
import { useNodeBackend } from '../node/backend.ts';
import { decodeImages, listImages, stratifiedSubset } from '../node/images.ts';
import { loadWeightsFromPath } from '../node/weights.ts';

const USAGE =
  'near-duplicates --images <dir|zip> --csv <metadata.csv> --weights <model.json dir|.h5> [--backbone id] ' +
  '[--top 100] [--size 224] [--limit N] [--threshold S] [--features <file.f32>] [--no-center] [--no-self-check] [--no-flips]';

function whole(options: Record<string, string>, name: string, min: number): number | undefined {
  const text = options[name];
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new UsageError(`--${name} ${text}: expected a whole number ≥ ${min}`);
  }
  return Number(text);
}

const log = (line: object): void => void process.stderr.write(`${JSON.stringify(line)}\n`);

async function readFeatures(path: string, expected: number): Promise<Float32Array | null> {
  try {
    const bytes = await readFile(path);
    if (bytes.byteLength !== expected * 4) return null;
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

export const command: CliCommand = {
  summary: 'List the most similar image pairs with different lesion ids (possible hidden duplicates) as JSON',
  usage: USAGE,
  async run(args) {
    const { positional, options, flags } = parseArgs(args, {
      options: ['images', 'csv', 'weights', 'backbone', 'top', 'size', 'limit', 'threshold', 'features'],
      flags: ['no-self-check', 'no-center', 'no-flips'],
    });
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
    for (const name of ['images', 'csv', 'weights'] as const) {
      if (options[name] === undefined) throw new UsageError(`--${name} is required`);
    }
    const backboneId = options.backbone ?? DEFAULT_BACKBONE;
    if (!(BACKBONE_IDS as readonly string[]).includes(backboneId)) {
      throw new UsageError(`--backbone ${backboneId}: expected one of ${BACKBONE_IDS.join(', ')}`);
    }
    const flipInvariant = !flags.has('no-flips');
    const top = whole(options, 'top', 1) ?? 100;
    const size = whole(options, 'size', 32) ?? 224;
    const limit = whole(options, 'limit', 2) ?? null;
    let threshold: number | null = null;
    if (options.threshold !== undefined) {
      threshold = Number(options.threshold);
      if (!(threshold >= -1 && threshold <= 1))
        throw new UsageError(`--threshold ${options.threshold}: expected a cosine similarity in [-1, 1]`);
    }
    tf.enableProdMode();
    const t0 = performance.now();
    const csv = options.csv!;
    const metadata = parseMetadata(await readInputFile(csv), basename(csv));
    const { listing } = await listImages(options.images!);
    const { matched, report } = matchImages(metadata.records, listing);
    log({ type: 'data', stage: 'matched', ...report });
    if (matched.length < 2)
      throw new Error(`${options.images} has ${matched.length} image(s) matching ${csv}`);
    const chosen = limit === null ? matched : stratifiedSubset(matched, limit, 1337);

    const spec = getBackbone(backboneId);
    await useNodeBackend('wasm');
    const base = spec.build(size);
    const extractor = buildFeatureExtractor(base);
    const dim = (extractor.outputs[0]!.shape as number[])[1]!;
    try {
      const loaded = await loadWeightsFromPath(base, options.weights!);
      log({ type: 'model', backbone: spec.id, size, weights: loaded.path, params: loaded.params });
      const decoded = await decodeImages(chosen, {
        size,
        onProgress: (done, total, seconds) => log({ type: 'decode', done, total, seconds }),
        progressEvery: 1000,
      });
      const images = decoded.images;
      const featuresPath = options.features;
      // Beside the raw floats: which image each row is, and what made them (the accuracy bench reads it).
      const featureFileInfo = () => ({
        backbone: spec.id,
        weights: options.weights,
        size,
        dim,
        flip_invariant: flipInvariant,
        image_ids: images.map((m) => m.record.imageId),
      });
      // A file written with (or without) flips is not reused for the other kind (older files have no flag).
      const sameKind = featuresPath
        ? await readFile(`${featuresPath}.json`, 'utf8')
            .then(
              (text) =>
                ((JSON.parse(text) as { flip_invariant?: boolean }).flip_invariant ?? false) ===
                flipInvariant,
            )
            .catch(() => false)
        : false;
      let features = featuresPath && sameKind ? await readFeatures(featuresPath, images.length * dim) : null;
      let featureSeconds = 0;
      if (features) {
        log({ type: 'features', reused: featuresPath });
      } else {
        const t = performance.now();
        const extraction = extractFeatureBatches(
          base,
          (positions) => decoded.dataset.readBatch(positions),
          images.length,
          {
            preprocess: (x) => preprocessInput(x, spec.preprocessing),
            inputSize: size,
            imageSize: size,
            pool: true,
            flipInvariant,
          },
        );
        let last = 0;
        let step = await extraction.next();
        while (!step.done) {
          const { done, total } = step.value;
          if (performance.now() - last > 10_000 || done === total) {
            last = performance.now();
            const seconds = (performance.now() - t) / 1000;
            log({ type: 'features', done, total, seconds, eta_seconds: (seconds / done) * (total - done) });
          }
          step = await extraction.next();
        }
        features = step.value.values;
        featureSeconds = (performance.now() - t) / 1000;
        if (featuresPath) {
          await writeFile(featuresPath, new Uint8Array(features.buffer));
          await writeFile(`${featuresPath}.json`, JSON.stringify(featureFileInfo()));
        }
      }
      const t = performance.now();
      const search = findNearDuplicates(
        {
          features,
          dim,
          imageIds: images.map((m) => m.record.imageId),
          lesionIds: images.map((m) => m.record.lesionId),
          dx: images.map((m) => m.record.dx),
        },
        { top, threshold, selfCheck: !flags.has('no-self-check'), center: !flags.has('no-center') },
      );
      let step = await search.next();
      while (!step.done) step = await search.next();
      const result = step.value;
      return {
        pairs: result.pairs,
        images: result.images,
        seconds: (performance.now() - t0) / 1000,
        backbone: spec.id,
        size,
        feature_dim: dim,
        top,
        threshold,
        centered: !flags.has('no-center'),
        flip_invariant: flipInvariant,
        above_threshold: result.above_threshold,
        self_check: result.self_check,
        skipped: decoded.skipped,
        timing: {
          decode_seconds: decoded.seconds,
          feature_seconds: featureSeconds,
          search_seconds: (performance.now() - t) / 1000,
        },
      };
    } finally {
      extractor.dispose();
    }
  },
};
