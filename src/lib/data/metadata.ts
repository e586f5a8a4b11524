import Papa from 'papaparse';
import { DX, isDx, type Dx } from './dx.ts';
import { MetadataError, type LesionRecord, type Metadata } from './types.ts';
import { shortText } from '../short-text.ts';

/** Columns of HAM10000_metadata.csv, in the file's order. */
export const HAM10000_COLUMNS = [
  'lesion_id',
  'image_id',
  'dx',
  'dx_type',
  'age',
  'sex',
  'localization',
] as const;
export type Ham10000Column = (typeof HAM10000_COLUMNS)[number];

/**
 * Without lesion_id a lesion-grouped split is impossible and leakage would go unnoticed, so a HAM10000-style file
 * must have it; the descriptive columns only feed the EDA and may be absent (with a warning).
 */
const REQUIRED_COLUMNS: readonly Ham10000Column[] = ['lesion_id', 'image_id', 'dx'];

/** ISIC 2018 Task 3 ground-truth columns, in the official order, and the HAM10000 code each one stands for. */
export const ISIC2018_ONEHOT_COLUMNS: ReadonlyArray<readonly [string, Dx]> = [
  ['MEL', 'mel'],
  ['NV', 'nv'],
  ['BCC', 'bcc'],
  ['AKIEC', 'akiec'],
  ['BKL', 'bkl'],
  ['DF', 'df'],
  ['VASC', 'vasc'],
];

export const NO_LESION_IDS_WARNING =
  'This file has no lesion ids, so images cannot be grouped by lesion: a lesion-grouped split is impossible, ' +
  'and images of the same lesion may end up in both training and test sets.';

/** R and some spreadsheet exports write these for an empty numeric cell. */
const MISSING_NUMBER_MARKERS = new Set(['na', 'nan', 'n/a']);

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

interface Row {
  cells: string[];
  line: number;
}

interface Table {
  fileName: string;
  /** Header cells, trimmed. */
  columns: string[];
  rows: Row[];
  delimiter: string;
}

/**
 * Parses a HAM10000 metadata file (canonical CSV, Excel re-saves, the Dataverse `.tab`, extra columns) or an
 * ISIC 2018 Task 3 one-hot ground-truth file. Pure: runs in a worker and in Node.
 * @throws MetadataError naming the file, line (header = line 1) and column of the first problem found.
 */
export function parseMetadata(text: string, fileName: string): Metadata {
  // Papaparse guesses one line break for the whole file from its first one; files edited by hand or
  // concatenated mix them, so every line break becomes \n first.
  const content = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const nul = content.indexOf('\0');
  if (nul >= 0) {
    const line = content.slice(0, nul).split('\n').length;
    throw new MetadataError(
      `${fileName}, line ${line}: the file contains NUL bytes, so it is not a text CSV (a spreadsheet or another ` +
        'binary file?). Save it as "CSV UTF-8" and add it again.',
      fileName,
      line,
    );
  }
  const delimiter = detectDelimiter(content);
  const rows = readRows(content, delimiter, fileName);
  const header = rows[0];
  if (!header) throw new MetadataError(`${fileName}: the file is empty.`, fileName);
  const columns = header.cells.map((c) => c.trim());
  if (rows.length === 1) {
    throw new MetadataError(`${fileName}: the file has a header line but no data rows.`, fileName, 1);
  }
  const table: Table = { columns, rows: rows.slice(1), delimiter, fileName };
  return isOneHotHeader(columns) ? parseOneHot(table) : parseHam10000(table);
}

function readRows(content: string, delimiter: string, fileName: string): Row[] {
  const parsed = Papa.parse<string[]>(content, { delimiter, newline: '\n', skipEmptyLines: false });
  // Papaparse reports rows, not lines: count the line breaks inside quoted fields to name the right line.
  const lines: number[] = [];
  let line = 1;
  for (const cells of parsed.data) {
    lines.push(line);
    line += 1 + cells.reduce((n, cell) => n + (cell.match(/\n/g)?.length ?? 0), 0);
  }
  const problem = parsed.errors[0];
  if (problem) {
    const at = problem.row === undefined ? '' : `, line ${lines[problem.row] ?? line}`;
    throw new MetadataError(
      `${fileName}${at}: ${problem.message.toLowerCase()} (check the quotes in this line).`,
      fileName,
      problem.row === undefined ? undefined : lines[problem.row],
    );
  }
  const rows: Row[] = [];
  parsed.data.forEach((cells, i) => {
    // Blank lines and the all-empty rows spreadsheets leave at the end are not records.
    if (cells.every((c) => c.trim() === '')) return;
    rows.push({ cells, line: lines[i] as number });
  });
  return rows;
}

/** The header line decides: Dataverse's `.tab` may arrive renamed `.csv`, and a European Excel writes `;`. */
function detectDelimiter(content: string): string {
  const firstLine = /^.*\S.*$/m.exec(content)?.[0] ?? '';
  const counts = ['\t', ',', ';'].map((d) => [d, firstLine.split(d).length - 1] as const);
  const [best] = [...counts].sort((a, b) => b[1] - a[1]);
  return best && best[1] > 0 ? best[0] : ',';
}

/** Checked after the header so that a wrong file is reported by its columns, not by its first odd line. */
function checkWidth(row: Row, table: Table): void {
  if (row.cells.length === table.columns.length) return;
  const separator = table.delimiter === '\t' ? 'tab' : `"${table.delimiter}"`;
  throw new MetadataError(
    `${table.fileName}, line ${row.line}: found ${row.cells.length} fields but the header has ` +
      `${table.columns.length} (a missing or extra ${separator}, or an unclosed quote, in this line?).`,
    table.fileName,
    row.line,
  );
}

function isOneHotHeader(columns: string[]): boolean {
  const names = new Set(columns.map((c) => c.toLowerCase()));
  if (HAM10000_COLUMNS.some((c) => names.has(c))) return false;
  return names.has('image') || ISIC2018_ONEHOT_COLUMNS.some(([c]) => names.has(c.toLowerCase()));
}

function columnIndex(columns: string[]): Map<string, number> {
  const index = new Map<string, number>();
  columns.forEach((c, i) => {
    const key = c.toLowerCase();
    if (!index.has(key)) index.set(key, i);
  });
  return index;
}

function checkDuplicateColumns(columns: string[], fileName: string): void {
  const seen = new Map<string, string>();
  for (const c of columns) {
    if (c === '') continue;
    const earlier = seen.get(c.toLowerCase());
    if (earlier !== undefined) {
      throw new MetadataError(
        `${fileName}, line 1: the column "${shortText(c)}" appears twice in the header, so it is unclear which one to use.`,
        fileName,
        1,
        c,
      );
    }
    seen.set(c.toLowerCase(), c);
  }
}

function missingColumnsError(fileName: string, missing: string[], columns: string[]): MetadataError {
  const list = missing.map((c) => `"${c}"`).join(', ');
  const found = columns.filter((c) => c !== '').map((c) => `"${shortText(c)}"`);
  return new MetadataError(
    `${fileName}, line 1: missing required column${missing.length > 1 ? 's' : ''} ${list}` +
      ` (the header has ${found.length > 0 ? found.join(', ') : 'no named columns'}).`,
    fileName,
    1,
    missing[0],
  );
}

function parseHam10000(table: Table): Metadata {
  const { columns, fileName } = table;
  checkDuplicateColumns(columns, fileName);
  const index = columnIndex(columns);
  const missing = REQUIRED_COLUMNS.filter((c) => !index.has(c));
  if (missing.length > 0) throw missingColumnsError(fileName, missing, columns);

  const known = new Set<string>(HAM10000_COLUMNS);
  const extraColumns = columns.filter((c) => c !== '' && !known.has(c.toLowerCase()));
  const absent = HAM10000_COLUMNS.filter((c) => !index.has(c));
  const warnings: string[] = [];
  if (absent.length > 0) {
    warnings.push(
      `No ${absent.map((c) => `"${c}"`).join(', ')} column${absent.length > 1 ? 's' : ''}: ` +
        'the charts that need them are left out.',
    );
  }

  const cell = (row: Row, column: Ham10000Column): string | null => {
    const i = index.get(column);
    return i === undefined ? null : (row.cells[i] as string).trim();
  };
  const fail = failer(table, index);

  const lineOfImage = new Map<string, number>();
  const records: LesionRecord[] = table.rows.map((row) => {
    checkWidth(row, table);
    const imageId = cell(row, 'image_id') as string;
    if (imageId === '') throw fail(row, 'image_id', 'the image id is empty.');
    checkUnique(imageId, row, lineOfImage, 'image_id', fail);
    const lesionId = cell(row, 'lesion_id') as string;
    if (lesionId === '') throw fail(row, 'lesion_id', 'the lesion id is empty.');
    return {
      imageId,
      lesionId,
      dx: parseDx(cell(row, 'dx') as string, row, fail),
      dxType: category(cell(row, 'dx_type')),
      age: parseAge(cell(row, 'age'), row, fail),
      sex: category(cell(row, 'sex')),
      localization: category(cell(row, 'localization')),
      line: row.line,
    };
  });

  const mixed = lesionsWithSeveralDiagnoses(records);
  if (mixed.length > 0) {
    warnings.push(
      `${mixed.length} lesion${mixed.length > 1 ? 's have' : ' has'} images with different diagnoses ` +
        `(first: ${mixed
          .slice(0, 5)
          .map((id) => shortText(id))
          .join(', ')}); every image keeps its own label.`,
    );
  }

  return { fileName, format: 'ham10000', records, columns, extraColumns, hasLesionIds: true, warnings };
}

function parseOneHot(table: Table): Metadata {
  const { columns, fileName } = table;
  checkDuplicateColumns(columns, fileName);
  const index = columnIndex(columns);
  const classColumns = ISIC2018_ONEHOT_COLUMNS.map(([c]) => c);
  const missing = ['image', ...classColumns].filter((c) => !index.has(c.toLowerCase()));
  if (missing.length > 0) throw missingColumnsError(fileName, missing, columns);

  const known = new Set(['image', ...classColumns.map((c) => c.toLowerCase())]);
  const extraColumns = columns.filter((c) => c !== '' && !known.has(c.toLowerCase()));
  const nameOf = (c: string): string => columns[index.get(c.toLowerCase()) as number] as string;
  const fail = failer(table, index);

  const lineOfImage = new Map<string, number>();
  const records: LesionRecord[] = table.rows.map((row) => {
    checkWidth(row, table);
    const imageId = (row.cells[index.get('image') as number] as string).trim();
    if (imageId === '') throw fail(row, 'image', 'the image id is empty.');
    checkUnique(imageId, row, lineOfImage, 'image', fail);
    const hot: Dx[] = [];
    for (const [column, dx] of ISIC2018_ONEHOT_COLUMNS) {
      const value = (row.cells[index.get(column.toLowerCase()) as number] as string).trim();
      const n = NUMBER.test(value) ? Number(value) : NaN;
      if (n === 1) hot.push(dx);
      else if (n !== 0) throw fail(row, column, `expected 0 or 1, found "${shortText(value)}".`);
    }
    const dx = hot[0];
    if (hot.length !== 1 || dx === undefined) {
      const found =
        hot.length === 0
          ? 'none is 1'
          : `${hot.length} are 1 (${hot.map((d) => nameOf(oneHotColumn(d))).join(', ')})`;
      throw new MetadataError(
        `${fileName}, line ${row.line}: exactly one of the columns ${classColumns.join(', ')} must be 1, but ${found}.`,
        fileName,
        row.line,
      );
    }
    return {
      imageId,
      lesionId: null,
      dx,
      dxType: null,
      age: null,
      sex: null,
      localization: null,
      line: row.line,
    };
  });

  return {
    fileName,
    format: 'isic2018-onehot',
    records,
    columns,
    extraColumns,
    hasLesionIds: false,
    warnings: [NO_LESION_IDS_WARNING],
  };
}

function oneHotColumn(dx: Dx): string {
  return (ISIC2018_ONEHOT_COLUMNS.find(([, d]) => d === dx) as readonly [string, Dx])[0];
}

type Fail = (row: Row, column: string, problem: string) => MetadataError;

/** Errors name the column as the user's header spells it, which may differ in case from ours. */
function failer(table: Table, index: Map<string, number>): Fail {
  return (row, column, problem) => {
    const name = table.columns[index.get(column.toLowerCase()) ?? -1] ?? column;
    return new MetadataError(
      `${table.fileName}, line ${row.line}, column "${shortText(name)}": ${problem}`,
      table.fileName,
      row.line,
      name,
    );
  };
}

function checkUnique(
  imageId: string,
  row: Row,
  lineOfImage: Map<string, number>,
  column: string,
  fail: Fail,
) {
  const earlier = lineOfImage.get(imageId);
  if (earlier !== undefined) {
    throw fail(
      row,
      column,
      `the image id "${shortText(imageId)}" is already used on line ${earlier}; each image needs one row.`,
    );
  }
  lineOfImage.set(imageId, row.line);
}

function parseDx(value: string, row: Row, fail: Fail): Dx {
  // Upper-case codes (MEL, NV) are the ISIC spelling of the same diagnoses, not a different label.
  const dx = value.toLowerCase();
  if (isDx(dx)) return dx;
  if (value === '') throw fail(row, 'dx', `the diagnosis is empty (expected one of ${DX.join(', ')}).`);
  throw fail(row, 'dx', `unknown diagnosis "${shortText(value)}" (expected one of ${DX.join(', ')}).`);
}

function parseAge(value: string | null, row: Row, fail: Fail): number | null {
  if (value === null || value === '' || MISSING_NUMBER_MARKERS.has(value.toLowerCase())) return null;
  const age = NUMBER.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(age)) throw fail(row, 'age', `the age "${shortText(value)}" is not a number.`);
  if (age < 0) throw fail(row, 'age', `the age "${shortText(value)}" is negative.`);
  return age;
}

/** 'unknown' is one of HAM10000's own categories for sex and localization, so only an empty cell is missing. */
function category(value: string | null): string | null {
  return value === null || value === '' ? null : value;
}

function lesionsWithSeveralDiagnoses(records: LesionRecord[]): string[] {
  const dxOfLesion = new Map<string, Dx>();
  const mixed = new Set<string>();
  for (const r of records) {
    if (r.lesionId === null) continue;
    const dx = dxOfLesion.get(r.lesionId);
    if (dx === undefined) dxOfLesion.set(r.lesionId, r.dx);
    else if (dx !== r.dx) mixed.add(r.lesionId);
  }
  return [...mixed];
}
