/**
 * `npm run weights -- fetch <backbone> [--out DIR] [--cache DIR]` downloads the official Keras ImageNet weights of a
 * backbone (include_top=False) and converts them to a TensorFlow.js layers model under public/models/<backbone>/,
 * so a deployment serves them same-origin. `npm run weights -- convert <backbone> <file.h5> [--out DIR]` does the
 * conversion alone, from a local file (no network). `npm run weights -- list` prints the sources.
 * One JSON object on stdout; progress on stderr.
 */
import * as tf from '@tensorflow/tfjs';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BACKBONE_IDS, BACKBONES, getBackbone, type BackboneId } from '../lib/model/backbones/index.ts';
import { loadKerasH5Weights, toTfjsLayersFiles } from '../lib/model/weights/index.ts';

const USAGE = [
  'usage: npm run weights -- fetch <backbone> [--out DIR] [--cache DIR]',
  '       npm run weights -- convert <backbone> <file.h5> [--out DIR]',
  '       npm run weights -- list',
  `backbones: ${BACKBONE_IDS.join(', ')}`,
].join('\n');

const projectRoot = resolve(import.meta.dirname, '..', '..');
export const DEFAULT_OUT_DIR = join(projectRoot, 'public', 'models');
const DEFAULT_CACHE_DIR = join(tmpdir(), 'lesion-lab-keras-weights');

export interface ConversionResult {
  backbone: BackboneId;
  source: string;
  dir: string;
  files: { name: string; bytes: number }[];
  arrays: number;
  params: number;
  kerasVersion: string | null;
  seconds: number;
}

class CliUsageError extends Error {}

const log = (line: string): void => void process.stderr.write(`weights: ${line}\n`);

/**
 * Converts a Keras `.h5` of `backbone` to TensorFlow.js files in `outDir/<backbone>/`: the backbone is built, the
 * h5 assigned by name (every array must fit), and the model saved with 4 MiB shards. Files are written to a
 * temporary folder first, so an interrupted conversion never leaves a half-written model behind.
 */
export async function convertKerasH5File(
  backbone: BackboneId,
  h5Path: string,
  outDir = DEFAULT_OUT_DIR,
): Promise<ConversionResult> {
  const started = performance.now();
  const spec = getBackbone(backbone);
  if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
  const bytes = await readFile(h5Path);
  const model = spec.build();
  try {
    const report = await loadKerasH5Weights(model, bytes, basename(h5Path));
    const files = await toTfjsLayersFiles(model, {
      convertedBy: `lesion-lab weights convert (${basename(h5Path)})`,
    });
    const dir = join(outDir, backbone);
    const staging = `${dir}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    for (const file of files) await writeFile(join(staging, file.name), file.bytes);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
    return {
      backbone,
      source: h5Path,
      dir,
      files: files.map((f) => ({ name: f.name, bytes: f.bytes.byteLength })),
      arrays: report.arrays,
      params: report.params,
      kerasVersion: report.kerasVersion,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    model.dispose();
  }
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

/** Downloads `url` to `path` (via a .part file), logging progress with an ETA; reuses a complete earlier download. */
export async function download(url: string, path: string, expectedBytes: number | null): Promise<number> {
  const existing = await stat(path).catch(() => null);
  if (existing && (expectedBytes === null || existing.size === expectedBytes)) {
    log(`using ${path} (${formatBytes(existing.size)}, downloaded before)`);
    return existing.size;
  }
  await mkdir(resolve(path, '..'), { recursive: true });
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(
      `cannot download ${url}: ${(error as Error).message} (no network? use "convert" with a local file)`,
      {
        cause: error,
      },
    );
  }
  if (!response.ok || !response.body) throw new Error(`cannot download ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || expectedBytes || 0;
  const part = `${path}.part`;
  const out = createWriteStream(part);
  const started = performance.now();
  let received = 0;
  let lastLog = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      received += chunk.byteLength;
      const now = performance.now();
      if (now - lastLog > 1000) {
        lastLog = now;
        const rate = received / ((now - started) / 1000);
        const eta = total > 0 ? ` ETA ${Math.ceil((total - received) / rate)} s` : '';
        const of = total > 0 ? ` / ${formatBytes(total)} (${((100 * received) / total).toFixed(0)} %)` : '';
        log(`downloading ${basename(path)}: ${formatBytes(received)}${of}${eta}`);
      }
    }
  } finally {
    await new Promise<void>((r, reject) => out.end((error?: Error | null) => (error ? reject(error) : r())));
  }
  if (expectedBytes !== null && received !== expectedBytes) {
    await rm(part, { force: true });
    throw new Error(`${url} gave ${received} bytes, expected ${expectedBytes}; not using it`);
  }
  await rename(part, path);
  log(
    `downloaded ${basename(path)}: ${formatBytes(received)} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return received;
}

function parse(args: string[]): { positional: string[]; out: string; cache: string } {
  const positional: string[] = [];
  let out = DEFAULT_OUT_DIR;
  let cache = DEFAULT_CACHE_DIR;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string?];
    const value = inline ?? args[++i];
    if (value === undefined) throw new CliUsageError(`--${key} needs a value`);
    if (key === 'out') out = resolve(value);
    else if (key === 'cache') cache = resolve(value);
    else throw new CliUsageError(`unknown option ${arg}`);
  }
  return { positional, out, cache };
}

export async function main(argv: string[]): Promise<unknown> {
  const { positional, out, cache } = parse(argv);
  const [verb, ...rest] = positional;
  if (verb === 'list' && rest.length === 0) {
    return Object.values(BACKBONES).map((s) => ({ backbone: s.id, params: s.params, ...s.weights }));
  }
  if (verb === 'convert' && rest.length === 2) {
    const spec = getBackbone(rest[0] as string);
    return convertKerasH5File(spec.id, rest[1] as string, out);
  }
  if (verb === 'fetch' && rest.length === 1) {
    const spec = getBackbone(rest[0] as string);
    const h5 = join(cache, spec.weights.fileName);
    log(`${spec.label}: ${spec.weights.url}`);
    await download(spec.weights.url, h5, spec.weights.bytes);
    const result = await convertKerasH5File(spec.id, h5, out);
    log(`wrote ${result.files.length} files to ${result.dir}`);
    return { ...result, url: spec.weights.url };
  }
  throw new CliUsageError(verb ? `cannot understand "${argv.join(' ')}"` : 'no command given');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    process.stdout.write(`${JSON.stringify(await main(process.argv.slice(2)))}\n`);
  } catch (error) {
    process.stderr.write(`weights: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof CliUsageError) process.stderr.write(`${USAGE}\n`);
    process.exitCode = error instanceof CliUsageError ? 2 : 1;
  }
}
