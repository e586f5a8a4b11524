/**
 * One zip per run, written and read with zip.js:
 *
 *   run.json                   id, name, created, status, error, callback events, and the list of files
 *   config.json                the run's settings (model + training form)
 *   history.csv                one row per epoch
 *   metrics.json               the test report (the `metrics` CLI's JSON)               } when the run was
 *   classification_report.csv  per class + accuracy, balanced accuracy, averages         } evaluated
 *   confusion_matrix.csv       rows = true class, columns = predicted                    }
 *   predictions.json           test predictions by image id (the `metrics` CLI's input), when kept
 *   evaluation.json            95 % bootstrap CIs, calibration (Brier, ECE, reliability bins, temperature), TTA
 *   model/model.json           the model in TensorFlow.js layers format, loadable with
 *   model/weights.bin            tf.loadLayersModel(tf.io.browserFiles([model.json, weights.bin]))
 *   charts/<name>.svg          the charts as the page drew them
 *   README.txt                 what these files are
 *
 * Importing reads every file back and checks it; any problem is a RunFileError whose message names the file (and
 * the field, line or column) at fault. The derived CSVs must agree with metrics.json.
 */
import type * as tf from '@tensorflow/tfjs';
import {
  BlobReader,
  BlobWriter,
  TextReader,
  Uint8ArrayReader,
  Uint8ArrayWriter,
  ZipReader,
  ZipWriter,
  type FileEntry,
} from '@zip.js/zip.js';
import {
  classificationReportCsv,
  configJson,
  confusionMatrixCsv,
  historyCsv,
  metricsJsonText,
  parseHistoryCsv,
  predictionsJsonText,
} from './files.ts';
import { weightBytes, weightSpecBytes } from './model.ts';
import { MAX_RUN_NAME_LENGTH } from './naming.ts';
import {
  FieldReader,
  RunFileError,
  parseMetricsJson,
  parseRunConfig,
  parseRunEvent,
  parseRunRecord,
  parseTestPredictions,
  RUN_STATUSES,
  type RunRecord,
} from './record.ts';
import { parseRunEvaluation } from './evaluation.ts';

export const RUN_ZIP_FORMAT = 'lesion-lab-run';
export const RUN_ZIP_VERSION = 1;

export const RUN_ZIP_FILES = {
  run: 'run.json',
  config: 'config.json',
  history: 'history.csv',
  metrics: 'metrics.json',
  report: 'classification_report.csv',
  confusion: 'confusion_matrix.csv',
  predictions: 'predictions.json',
  evaluation: 'evaluation.json',
  modelJson: 'model/model.json',
  weights: 'model/weights.bin',
  readme: 'README.txt',
} as const;
const CHARTS_DIR = 'charts/';
const WEIGHTS_NAME = 'weights.bin';

export interface ImportedRun {
  run: RunRecord;
  /** The model, ready for tf.io.fromMemory / loadRunModel; null when the zip holds none. */
  modelArtifacts: tf.io.ModelArtifacts | null;
  /** Chart name (file name without .svg) → SVG text. */
  charts: Record<string, string>;
}

export interface ExportOptions {
  /** Date stamped on the entries and in run.json; default now. */
  now?: Date;
}

const CHART_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** A chart's file name in the zip: `charts/<name>.svg`. */
export function chartFileName(name: string): string {
  const bare = name.replace(/\.svg$/i, '');
  if (!CHART_NAME.test(bare)) {
    throw new RunFileError(
      `chart name "${name}" must be letters, digits, ".", "-" or "_" (it becomes a file name)`,
      `${CHARTS_DIR}${name}`,
    );
  }
  return `${CHARTS_DIR}${bare}.svg`;
}

/**
 * Checks that `text` is one SVG document and makes it standalone: the SVG namespace is added to the root element
 * when missing (an inline <svg> taken from a page has none, and without it a browser shows a file as plain XML).
 */
export function standaloneSvg(text: string, file: string): string {
  const body = text.replace(/^\uFEFF/, '').trim();
  const root =
    /^(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg(?=[\s>/])([^>]*)>/i.exec(body);
  if (!root || !/<\/svg>$/i.test(body)) {
    const start = JSON.stringify(body.slice(0, 30));
    throw new RunFileError(
      `${file}: not an SVG image (it must start with <svg and end with </svg>; starts ${start})`,
      file,
    );
  }
  if (/\sxmlns\s*=/.test(root[1] ?? '')) return body;
  const at = root.index + root[0].indexOf('<svg') + 4;
  return `${body.slice(0, at)} xmlns="http://www.w3.org/2000/svg"${body.slice(at)}`;
}

/** A file name for the download: `lesion-lab-<run name>-<id>.zip`, with only safe characters. */
export function exportFileName(run: Pick<RunRecord, 'id' | 'name'>): string {
  const slug = run.name
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return `lesion-lab-${slug ? `${slug}-` : ''}${run.id}.zip`;
}

function readme(run: RunRecord, files: readonly string[]): string {
  const { model } = run.config;
  return [
    `Lesion Lab run "${run.name}" (${run.id}), created ${run.created}, status ${run.status}.`,
    '',
    'A research and teaching tool, not a medical device: its predictions are not diagnoses.',
    '',
    `Model: ${model.backbone} at ${model.inputSize}x${model.inputSize} px, head ${model.head.kind},`,
    `classes in output order: ${model.classes.join(', ')}.`,
    `Input: RGB images squashed (not cropped) to ${model.inputSize}x${model.inputSize}, then Keras`,
    `preprocess_input mode '${model.preprocessing}'.`,
    '',
    'Files:',
    ...files.map((f) => `  ${f}`),
    '',
    'Load the model in TensorFlow.js with',
    '  tf.loadLayersModel(tf.io.browserFiles([modelJsonFile, weightsBinFile]))',
    'and recompute metrics.json from predictions.json with `npm run cli -- metrics predictions.json`.',
    '',
  ].join('\n');
}

/**
 * The run as one zip (see the file list above). `model` is the run's model (e.g. from `modelArtifacts(model)` or
 * the store's getModel), null to export without one; `charts` maps a chart name to its SVG text.
 */
export async function exportRunZip(
  run: RunRecord,
  model: tf.io.ModelArtifacts | null,
  charts: Readonly<Record<string, string>> = {},
  options: ExportOptions = {},
): Promise<Blob> {
  const checked = parseRunRecord(run, `run ${run.id}`);
  const now = options.now ?? new Date();
  const texts = new Map<string, string>();
  texts.set(RUN_ZIP_FILES.config, configJson(checked.config));
  texts.set(RUN_ZIP_FILES.history, historyCsv(checked.history));
  if (checked.metrics) {
    texts.set(RUN_ZIP_FILES.metrics, metricsJsonText(checked.metrics));
    texts.set(RUN_ZIP_FILES.report, classificationReportCsv(checked.metrics));
    texts.set(RUN_ZIP_FILES.confusion, confusionMatrixCsv(checked.metrics));
  }
  if (checked.predictions) {
    texts.set(
      RUN_ZIP_FILES.predictions,
      predictionsJsonText(checked.predictions, checked.config.model.classes),
    );
  }
  if (checked.evaluation) {
    texts.set(RUN_ZIP_FILES.evaluation, `${JSON.stringify(checked.evaluation, null, 2)}\n`);
  }
  let weights: Uint8Array | null = null;
  if (model) {
    if (!model.modelTopology || !model.weightSpecs) {
      throw new Error(
        'the model artifacts have no topology or weight specs; export them with modelArtifacts(model)',
      );
    }
    weights = new Uint8Array(weightBytes(model));
    const expected = weightSpecBytes(model.weightSpecs);
    if (expected !== weights.byteLength) {
      throw new Error(
        `the model's weight specs need ${expected} bytes, its weight data has ${weights.byteLength}`,
      );
    }
    const modelJson: tf.io.ModelJSON = {
      format: model.format ?? 'layers-model',
      generatedBy: model.generatedBy ?? 'TensorFlow.js',
      convertedBy: model.convertedBy ?? null,
      modelTopology: model.modelTopology,
      weightsManifest: [{ paths: [WEIGHTS_NAME], weights: model.weightSpecs }],
      ...(model.trainingConfig ? { trainingConfig: model.trainingConfig } : {}),
      ...(model.userDefinedMetadata ? { userDefinedMetadata: model.userDefinedMetadata } : {}),
    };
    texts.set(RUN_ZIP_FILES.modelJson, JSON.stringify(modelJson));
  }
  const chartTexts = new Map<string, string>();
  for (const [name, svg] of Object.entries(charts)) {
    const file = chartFileName(name);
    if (chartTexts.has(file)) throw new RunFileError(`two charts would both be saved as ${file}`, file);
    chartTexts.set(file, standaloneSvg(svg, file));
  }
  const files = [
    RUN_ZIP_FILES.run,
    ...texts.keys(),
    ...(weights ? [RUN_ZIP_FILES.weights] : []),
    ...chartTexts.keys(),
    RUN_ZIP_FILES.readme,
  ];
  const manifest = {
    format: RUN_ZIP_FORMAT,
    version: RUN_ZIP_VERSION,
    exported: now.toISOString(),
    id: checked.id,
    name: checked.name,
    created: checked.created,
    status: checked.status,
    error: checked.error,
    events: checked.events,
    files,
  };

  const writer = new ZipWriter(new BlobWriter('application/zip'), {
    useWebWorkers: false,
    lastModDate: now,
  });
  // One entry at a time: zip.js then streams each straight into the zip, in this order.
  await writer.add(RUN_ZIP_FILES.run, new TextReader(`${JSON.stringify(manifest, null, 2)}\n`));
  for (const [name, text] of texts) await writer.add(name, new TextReader(text));
  // Float weights barely deflate; storing them keeps export and import fast.
  if (weights) await writer.add(RUN_ZIP_FILES.weights, new Uint8ArrayReader(weights), { level: 0 });
  for (const [name, text] of chartTexts) await writer.add(name, new TextReader(text));
  await writer.add(RUN_ZIP_FILES.readme, new TextReader(readme(checked, files)));
  return writer.close();
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The zip's entries by path relative to the folder that holds run.json (a re-zipped folder works too). */
async function entriesOf(blob: Blob, zipName: string): Promise<Map<string, FileEntry>> {
  const reader = new ZipReader(new BlobReader(blob), {
    useWebWorkers: false,
    filenameValidation: 'tolerant',
  });
  let entries;
  try {
    entries = await reader.getEntries();
  } catch (error) {
    throw new RunFileError(
      `${zipName} isn't a readable zip file (${message(error)}); it may be incomplete (an interrupted download) or not a zip. ` +
        'Import a zip saved with "Export zip" (Runs page) or "Export run (zip)" (Results page), or export the run again.',
      zipName,
      null,
      { cause: error },
    );
  } finally {
    await reader.close();
  }
  const files = entries.filter((e): e is FileEntry => !e.directory);
  const runJsons = files.filter(
    (e) => e.filename === RUN_ZIP_FILES.run || e.filename.endsWith(`/${RUN_ZIP_FILES.run}`),
  );
  const top =
    runJsons.find((e) => e.filename === RUN_ZIP_FILES.run) ??
    (runJsons.length === 1 ? runJsons[0] : undefined);
  if (!top) {
    const listed = files.slice(0, 6).map((e) => e.filename);
    const more = files.length > listed.length ? `, … (${files.length} files)` : '';
    throw new RunFileError(
      `${RUN_ZIP_FILES.run} is missing: ${zipName} is not a Lesion Lab run export ` +
        `(it holds ${listed.length > 0 ? listed.join(', ') + more : 'no files'})`,
      RUN_ZIP_FILES.run,
    );
  }
  const prefix = top.filename.slice(0, top.filename.length - RUN_ZIP_FILES.run.length);
  return new Map(
    files.filter((e) => e.filename.startsWith(prefix)).map((e) => [e.filename.slice(prefix.length), e]),
  );
}

/**
 * The most each file of a run export may inflate to. An exported run is far below these (config.json a few kB,
 * model.json about 100 kB for MobileNetV2, predictions.json about 1 MB for the whole dataset's test split); a file
 * over its cap is refused by name from the zip's central directory before a byte is inflated, so an entry padded
 * to hundreds of MB never takes the tab's memory.
 */
export const RUN_FILE_LIMITS: Readonly<Record<string, number>> = {
  [RUN_ZIP_FILES.run]: 4_000_000,
  [RUN_ZIP_FILES.config]: 1_000_000,
  [RUN_ZIP_FILES.history]: 8_000_000,
  [RUN_ZIP_FILES.metrics]: 8_000_000,
  [RUN_ZIP_FILES.report]: 8_000_000,
  [RUN_ZIP_FILES.confusion]: 8_000_000,
  [RUN_ZIP_FILES.predictions]: 64_000_000,
  [RUN_ZIP_FILES.modelJson]: 32_000_000,
};
/** A chart's SVG (the largest the page draws is the ROC curves, about 100 kB). */
export const RUN_CHART_LIMIT = 16_000_000;

const sizeText = (bytes: number): string =>
  bytes < 1e6
    ? `${bytes.toLocaleString('en-US')} bytes`
    : `${(bytes / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1 })} MB`;

/** zip.js's Uint8ArrayWriter that refuses to grow past `limit` bytes, whatever the directory announced. */
class CappedWriter extends Uint8ArrayWriter {
  private written = 0;
  constructor(
    private readonly limit: number,
    private readonly file: string,
  ) {
    super();
  }
  override async init(size?: number): Promise<void> {
    await super.init?.(Math.min(size ?? 0, this.limit));
  }
  override async writeUint8Array(array: Uint8Array): Promise<void> {
    this.written += array.length;
    if (this.written > this.limit) {
      throw new RunFileError(
        `${this.file}: inflates past ${sizeText(this.limit)}, more than its size in the zip's directory says; the zip is damaged or was made to exhaust memory`,
        this.file,
      );
    }
    await super.writeUint8Array(array);
  }
}

function checkDeclaredSize(entry: FileEntry, file: string, limit: number): void {
  if (entry.uncompressedSize > limit) {
    throw new RunFileError(
      `${file}: ${sizeText(entry.uncompressedSize)} uncompressed (from the zip's directory), over the ` +
        `${sizeText(limit)} this app reads for it, so it is not read; a run this app exported is far smaller ` +
        '(was the file edited or padded?)',
      file,
    );
  }
}

async function readBytes(
  entry: FileEntry,
  file: string,
  zipName: string,
  limit: number,
): Promise<Uint8Array> {
  checkDeclaredSize(entry, file, limit);
  try {
    return await entry.getData(new CappedWriter(limit, file), { checkCrc32: true });
  } catch (error) {
    if (error instanceof RunFileError) throw error;
    throw new RunFileError(
      `${file}: could not be read from ${zipName} (${message(error)}); the zip is damaged`,
      file,
      null,
      {
        cause: error,
      },
    );
  }
}

async function readText(entry: FileEntry, file: string, zipName: string): Promise<string> {
  const limit = RUN_FILE_LIMITS[file] ?? RUN_CHART_LIMIT;
  return new TextDecoder().decode(await readBytes(entry, file, zipName, limit));
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RunFileError(`${file}: not valid JSON (${message(error)})`, file, null, { cause: error });
  }
}

/** Line endings and trailing blanks aside, the same text; else the first line that differs. */
function firstDifference(actual: string, expected: string): number | null {
  const lines = (t: string): string[] => t.replace(/\r\n?/g, '\n').trimEnd().split('\n');
  const a = lines(actual);
  const b = lines(expected);
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i + 1;
  return null;
}

async function readModel(
  entries: Map<string, FileEntry>,
  zipName: string,
  listed: boolean,
): Promise<tf.io.ModelArtifacts | null> {
  const jsonEntry = entries.get(RUN_ZIP_FILES.modelJson);
  if (!jsonEntry) {
    if (listed) throw missing(RUN_ZIP_FILES.modelJson, zipName);
    return null;
  }
  const file = RUN_ZIP_FILES.modelJson;
  const r = new FieldReader(file);
  const json = r.object(parseJson(await readText(jsonEntry, file, zipName), file), 'the model');
  if (json.format !== undefined && json.format !== 'layers-model') {
    r.fail(
      'format',
      `must be "layers-model" (a TensorFlow.js layers model); got ${JSON.stringify(json.format)}`,
    );
  }
  r.object(json.modelTopology, 'modelTopology');
  const groups = r.array(json.weightsManifest, 'weightsManifest').map((g, i) => {
    const group = r.object(g, `weightsManifest[${i}]`);
    const paths = r
      .array(group.paths, `weightsManifest[${i}].paths`)
      .map((p, j) => r.string(p, `weightsManifest[${i}].paths[${j}]`, true));
    const weights = r.array(group.weights, `weightsManifest[${i}].weights`).map((w, j) => {
      const field = `weightsManifest[${i}].weights[${j}]`;
      const spec = r.object(w, field);
      r.string(spec.name, `${field}.name`, true);
      r.string(spec.dtype, `${field}.dtype`, true);
      r.array(spec.shape, `${field}.shape`).forEach((d, k) => r.integer(d, `${field}.shape[${k}]`));
      return spec as unknown as tf.io.WeightsManifestEntry;
    });
    return { paths, weights };
  });
  const specs = groups.flatMap((g) => g.weights);
  const needed = weightSpecBytes(specs, file);
  const weightEntries = groups
    .flatMap((g) => g.paths)
    .map((path) => {
      const name = `model/${path.replace(/^\.\//, '')}`;
      const entry = entries.get(name);
      if (!entry) throw missing(name, zipName, `${file} lists it`);
      return { name, entry };
    });
  // Sizes from the directory first: weights files that announce more than the specs need are not inflated.
  const announced = weightEntries.reduce((n, w) => n + w.entry.uncompressedSize, 0);
  const buffers: Uint8Array[] = [];
  if (announced === needed) {
    for (const { name, entry } of weightEntries) {
      buffers.push(await readBytes(entry, name, zipName, entry.uncompressedSize));
    }
  }
  const total = announced === needed ? buffers.reduce((n, b) => n + b.byteLength, 0) : announced;
  if (total !== needed) {
    const names = groups.flatMap((g) => g.paths).join(', ') || 'no weight file';
    throw new RunFileError(
      `model/${names}: holds ${total} bytes, but the weights listed in ${file} need ${needed}; ` +
        'the weights file is truncated or belongs to another model',
      `model/${groups[0]?.paths[0] ?? WEIGHTS_NAME}`,
    );
  }
  const data = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    data.set(b, offset);
    offset += b.byteLength;
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology as object,
    format: (json.format as string | undefined) ?? 'layers-model',
    generatedBy: json.generatedBy as string | undefined,
    convertedBy: (json.convertedBy as string | null | undefined) ?? null,
    weightSpecs: specs,
    weightData: data.buffer,
  };
  if (json.trainingConfig) artifacts.trainingConfig = json.trainingConfig as tf.io.TrainingConfig;
  if (json.userDefinedMetadata)
    artifacts.userDefinedMetadata = json.userDefinedMetadata as Record<string, object>;
  return artifacts;
}

function missing(file: string, zipName: string, why = `${RUN_ZIP_FILES.run} lists it`): RunFileError {
  return new RunFileError(`${file} is missing from ${zipName} (${why}): the zip is incomplete`, file);
}

/**
 * Reads a run export back: the run record (as it was exported), its model's artifacts and its charts. `zipName`
 * (e.g. File.name) is used in messages.
 */
export async function importRunZip(blob: Blob, zipName = 'the zip'): Promise<ImportedRun> {
  const entries = await entriesOf(blob, zipName);
  const text = async (file: string): Promise<string> => {
    const entry = entries.get(file);
    if (!entry) throw missing(file, zipName);
    return readText(entry, file, zipName);
  };

  const r = new FieldReader(RUN_ZIP_FILES.run);
  const manifest = r.object(parseJson(await text(RUN_ZIP_FILES.run), RUN_ZIP_FILES.run), 'run.json');
  if (manifest.format !== RUN_ZIP_FORMAT) {
    r.fail('format', `must be "${RUN_ZIP_FORMAT}"; got ${JSON.stringify(manifest.format)}`);
  }
  const version = r.integer(manifest.version, 'version', 1);
  if (version > RUN_ZIP_VERSION) {
    r.fail(
      'version',
      `is ${version}; this app reads run exports up to version ${RUN_ZIP_VERSION} (update the app)`,
    );
  }
  const listed = new Set(r.array(manifest.files, 'files').map((f, i) => r.string(f, `files[${i}]`, true)));
  // The readme and the charts are for people; a zip without them still restores the run.
  for (const file of listed) {
    const optional = file === RUN_ZIP_FILES.readme || file.startsWith(CHARTS_DIR);
    if (!optional && !entries.has(file)) throw missing(file, zipName);
  }
  for (const file of [RUN_ZIP_FILES.config, RUN_ZIP_FILES.history])
    if (!entries.has(file)) throw missing(file, zipName, 'every run has it');

  const config = parseRunConfig(
    parseJson(await text(RUN_ZIP_FILES.config), RUN_ZIP_FILES.config),
    RUN_ZIP_FILES.config,
  );
  const history = parseHistoryCsv(await text(RUN_ZIP_FILES.history), RUN_ZIP_FILES.history);
  const events = r.array(manifest.events, 'events').map((e, i) => parseRunEvent(e, r, `events[${i}]`));
  const sameClasses = (classes: readonly string[], file: string, field: string): void => {
    if (classes.join('\n') !== config.model.classes.join('\n')) {
      throw new RunFileError(
        `${file}: ${field} (${classes.join(', ')}) are not the classes of ${RUN_ZIP_FILES.config} (${config.model.classes.join(', ')})`,
        file,
        field,
      );
    }
  };

  let metrics = null;
  if (entries.has(RUN_ZIP_FILES.metrics)) {
    metrics = parseMetricsJson(
      parseJson(await text(RUN_ZIP_FILES.metrics), RUN_ZIP_FILES.metrics),
      RUN_ZIP_FILES.metrics,
    );
    sameClasses(metrics.classes, RUN_ZIP_FILES.metrics, 'classes');
    for (const [file, expected] of [
      [RUN_ZIP_FILES.report, classificationReportCsv(metrics)],
      [RUN_ZIP_FILES.confusion, confusionMatrixCsv(metrics)],
    ] as const) {
      const line = firstDifference(await text(file), expected);
      if (line !== null) {
        throw new RunFileError(
          `${file}: line ${line} does not match ${RUN_ZIP_FILES.metrics}; the files were edited or mixed up`,
          file,
        );
      }
    }
  }
  let predictions = null;
  if (entries.has(RUN_ZIP_FILES.predictions)) {
    const json = parseJson(await text(RUN_ZIP_FILES.predictions), RUN_ZIP_FILES.predictions);
    predictions = parseTestPredictions(json, config.model.classes, RUN_ZIP_FILES.predictions);
  }

  let evaluation = null;
  if (entries.has(RUN_ZIP_FILES.evaluation)) {
    evaluation = parseRunEvaluation(
      parseJson(await text(RUN_ZIP_FILES.evaluation), RUN_ZIP_FILES.evaluation),
      new FieldReader(RUN_ZIP_FILES.evaluation),
      'the evaluation',
    );
  }

  const modelArtifacts = await readModel(entries, zipName, listed.has(RUN_ZIP_FILES.modelJson));

  const charts: Record<string, string> = {};
  for (const [file, entry] of entries) {
    if (!file.startsWith(CHARTS_DIR) || !file.toLowerCase().endsWith('.svg')) continue;
    const name = file.slice(CHARTS_DIR.length, -'.svg'.length);
    if (!CHART_NAME.test(name)) continue;
    charts[name] = standaloneSvg(await readText(entry, file, zipName), file);
  }

  // The name is shown wherever the run is listed; a name no user could type is an edited file.
  if (typeof manifest.name === 'string' && manifest.name.length > MAX_RUN_NAME_LENGTH) {
    r.fail(
      'name',
      `is ${manifest.name.length.toLocaleString('en-US')} characters long; a run's name has at most ${MAX_RUN_NAME_LENGTH}`,
    );
  }
  const run = {
    id: manifest.id,
    name: manifest.name,
    created: manifest.created,
    status: r.oneOf(manifest.status, RUN_STATUSES, 'status'),
    error: manifest.error ?? null,
    config,
    history,
    events,
    metrics,
    predictions,
    evaluation,
  };
  return { run: parseRunRecord(run, RUN_ZIP_FILES.run), modelArtifacts, charts };
}
