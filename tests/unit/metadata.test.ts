import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { NO_LESION_IDS_WARNING, parseMetadata } from '../../src/lib/data/metadata.ts';
import { MetadataError, type Metadata } from '../../src/lib/data/types.ts';
import { decodeText, textEncoding } from '../../src/lib/data/listing.ts';

const HAM = resolve(import.meta.dirname, '../../../shared/data/ham10000');
const read = (path: string): string => readFileSync(join(HAM, path), 'utf8');
const CANONICAL = 'HAM10000_metadata.csv';
const canonicalText = read(CANONICAL);
/** The real file's lines; index i is line i + 1 (the header is line 1). */
const lines = canonicalText.split('\n').filter((l) => l !== '');

function csv(editedLines: string[], eol = '\n'): string {
  return editedLines.join(eol) + eol;
}

/** The real file with one cell changed; `line` is 1-based as in error messages. */
function withCell(line: number, column: number, value: string): string {
  const edited = [...lines];
  const cells = (edited[line - 1] as string).split(',');
  cells[column] = value;
  edited[line - 1] = cells.join(',');
  return csv(edited);
}

function parseError(text: string, fileName = CANONICAL): MetadataError {
  try {
    parseMetadata(text, fileName);
  } catch (error) {
    expect(error).toBeInstanceOf(MetadataError);
    return error as MetadataError;
  }
  throw new Error('expected a MetadataError');
}

function comparable(metadata: Metadata) {
  return metadata.records.map(({ imageId, lesionId, dx, dxType, age, sex, localization }) => ({
    imageId,
    lesionId,
    dx,
    dxType,
    age,
    sex,
    localization,
  }));
}

describe('parseMetadata on the real HAM10000 files', () => {
  const canonical = parseMetadata(canonicalText, CANONICAL);

  it('reads the canonical CSV: every row, line numbers, empty ages as null', () => {
    expect(canonical.format).toBe('ham10000');
    expect(canonical.hasLesionIds).toBe(true);
    expect(canonical.warnings).toEqual([]);
    expect(canonical.extraColumns).toEqual([]);
    expect(canonical.columns).toEqual([
      'lesion_id',
      'image_id',
      'dx',
      'dx_type',
      'age',
      'sex',
      'localization',
    ]);
    expect(canonical.records).toHaveLength(10015);
    expect(canonical.records[0]).toEqual({
      imageId: 'ISIC_0027419',
      lesionId: 'HAM_0000118',
      dx: 'bkl',
      dxType: 'histo',
      age: 80,
      sex: 'male',
      localization: 'scalp',
      line: 2,
    });
    const last = canonical.records.at(-1);
    expect(last?.line).toBe(10016);
    expect(lines[10015]).toBe(
      [
        last?.lesionId,
        last?.imageId,
        last?.dx,
        last?.dxType,
        `${last?.age}.0`,
        last?.sex,
        last?.localization,
      ].join(','),
    );
    const emptyAgeLines = lines.flatMap((l, i) => (l.split(',')[4] === '' ? [i + 1] : []));
    expect(emptyAgeLines).toHaveLength(57);
    expect(canonical.records.filter((r) => r.age === null).map((r) => r.line)).toEqual(emptyAgeLines);
    // 'unknown' is a category of the data, not a missing value.
    expect(canonical.records.filter((r) => r.sex === 'unknown')).toHaveLength(57);
    expect(canonical.records.filter((r) => r.localization === 'unknown')).toHaveLength(234);
  });

  it('reads the CRLF, integer-age Excel re-save into the same records', () => {
    const variant = parseMetadata(read('variants/HAM10000_metadata_crlf_intages.csv'), 'crlf.csv');
    expect(variant.extraColumns).toEqual([]);
    expect(comparable(variant)).toEqual(comparable(canonical));
  });

  it('reads the newer Dataverse layout, keeping `dataset` as an extra column', () => {
    const variant = parseMetadata(
      read('variants/HAM10000_metadata_with_dataset_column.csv'),
      'dataverse.csv',
    );
    expect(variant.format).toBe('ham10000');
    expect(variant.extraColumns).toEqual(['dataset']);
    expect(variant.warnings).toEqual([]);
    expect(comparable(variant)).toEqual(comparable(canonical));
  });

  it('detects tabs from the header line, whatever the file is called', () => {
    const tab = csv(lines.map((l) => l.replaceAll(',', '\t')));
    expect(comparable(parseMetadata(tab, 'HAM10000_metadata.tab'))).toEqual(comparable(canonical));
    expect(comparable(parseMetadata(tab, 'HAM10000_metadata.csv'))).toEqual(comparable(canonical));
    const afterBlankLine = parseMetadata(`\r\n${tab}`, 'HAM10000_metadata.tab');
    expect(comparable(afterBlankLine)).toEqual(comparable(canonical));
    expect(afterBlankLine.records[0]?.line).toBe(3);
  });

  it('ignores a UTF-8 BOM, surrounding whitespace, blank lines and a missing final line break', () => {
    const padded = lines.map((l) =>
      l
        .split(',')
        .map((c) => `  ${c} `)
        .join(','),
    );
    const messy =
      '\uFEFF' + padded.slice(0, 100).join('\r\n') + '\r\n\r\n   \r\n' + padded.slice(100).join('\r\n');
    const parsed = parseMetadata(messy, CANONICAL);
    expect(parsed.columns).toEqual(canonical.columns);
    expect(comparable(parsed)).toEqual(comparable(canonical));
    // The two blank lines shift the later records' line numbers; errors must name the real line.
    expect(parsed.records[98]?.line).toBe(100);
    expect(parsed.records[99]?.line).toBe(103);
    expect(parseMetadata(csv(lines) + '\n\n', CANONICAL).records).toHaveLength(10015);
  });

  it('keeps line numbers right past a quoted cell with a line break in it', () => {
    const edited = [...lines];
    edited[1] = (edited[1] as string).replace(',scalp', ',"scalp\n(left side)"');
    edited[4] = (edited[4] as string).replace(',bkl,', ',melanoma,');
    expect(parseMetadata(csv(edited.slice(0, 3)), CANONICAL).records[0]?.localization).toBe(
      'scalp\n(left side)',
    );
    expect(parseError(csv(edited)).line).toBe(6);
  });

  it('treats NA and NaN ages as missing, as R and some exports write them', () => {
    const parsed = parseMetadata(withCell(2, 4, 'NA'), CANONICAL);
    expect(parsed.records[0]?.age).toBeNull();
    expect(parseMetadata(withCell(2, 4, 'NaN'), CANONICAL).records[0]?.age).toBeNull();
  });

  it('accepts a file without the descriptive columns, and says which charts are left out', () => {
    const narrow = csv(lines.map((l) => l.split(',').slice(0, 3).join(',')));
    const parsed = parseMetadata(narrow, 'labels.csv');
    expect(parsed.records).toHaveLength(10015);
    expect(parsed.records[0]).toMatchObject({ dxType: null, age: null, sex: null, localization: null });
    expect(parsed.warnings).toEqual([
      'No "dx_type", "age", "sex", "localization" columns: the charts that need them are left out.',
    ]);
  });

  it('warns when one lesion carries two diagnoses', () => {
    // Lines 2 and 3 are two images of lesion HAM_0000118.
    const parsed = parseMetadata(withCell(3, 2, 'mel'), CANONICAL);
    expect(parsed.warnings).toEqual([
      '1 lesion has images with different diagnoses (first: HAM_0000118); every image keeps its own label.',
    ]);
  });
});

describe('parseMetadata on the ISIC 2018 Task 3 one-hot files', () => {
  it.each([
    ['ISIC2018_Task3_Validation_GroundTruth.csv', 193],
    ['ISIC2018_Task3_Test_GroundTruth.csv', 1512],
  ])('reads %s (%i rows) and says a lesion-grouped split is impossible', (name, rows) => {
    const text = read(`variants/${name}`);
    const parsed = parseMetadata(text, name);
    expect(parsed.format).toBe('isic2018-onehot');
    expect(parsed.hasLesionIds).toBe(false);
    expect(parsed.records).toHaveLength(rows);
    expect(parsed.warnings).toEqual([NO_LESION_IDS_WARNING]);
    expect(NO_LESION_IDS_WARNING).toMatch(/no lesion ids.*lesion-grouped split is impossible/);
    expect(parsed.records.every((r) => r.lesionId === null && r.age === null && r.dxType === null)).toBe(
      true,
    );

    // Each record's dx is the column holding the 1, checked against the raw text.
    const [header, ...body] = text.trim().split('\n');
    const classColumns = (header as string).split(',').slice(1);
    expect(classColumns).toEqual(['MEL', 'NV', 'BCC', 'AKIEC', 'BKL', 'DF', 'VASC']);
    body.forEach((line, i) => {
      const [image, ...values] = line.split(',');
      const hot = classColumns[values.findIndex((v) => Number(v) === 1)] as string;
      expect(parsed.records[i]).toMatchObject({ imageId: image, dx: hot.toLowerCase(), line: i + 2 });
    });
    expect(new Set(parsed.records.map((r) => r.dx))).toEqual(new Set(DX));
  });

  const oneHot = read('variants/ISIC2018_Task3_Validation_GroundTruth.csv').trim().split('\n');
  const NAME = 'ISIC2018_Task3_Validation_GroundTruth.csv';
  const withRow = (line: number, row: string): string => {
    const edited = [...oneHot];
    edited[line - 1] = row;
    return csv(edited);
  };

  it('rejects a row with no 1', () => {
    const error = parseError(withRow(5, 'ISIC_0034324,0.0,0.0,0.0,0.0,0.0,0.0,0.0'), NAME);
    expect(error.message).toBe(
      `${NAME}, line 5: exactly one of the columns MEL, NV, BCC, AKIEC, BKL, DF, VASC must be 1, but none is 1.`,
    );
    expect(error.line).toBe(5);
  });

  it('rejects a row with two 1s, naming them', () => {
    const error = parseError(withRow(7, 'ISIC_0034326,1.0,1.0,0.0,0.0,0.0,0.0,0.0'), NAME);
    expect(error.message).toBe(
      `${NAME}, line 7: exactly one of the columns MEL, NV, BCC, AKIEC, BKL, DF, VASC must be 1, but 2 are 1 (MEL, NV).`,
    );
  });

  it('rejects a value other than 0 or 1, naming the column', () => {
    const error = parseError(withRow(3, 'ISIC_0034322,0.0,0.5,0.0,0.0,0.0,0.0,0.5'), NAME);
    expect(error.message).toBe(`${NAME}, line 3, column "NV": expected 0 or 1, found "0.5".`);
    expect(error.column).toBe('NV');
  });

  it('rejects a missing class column and a duplicate image', () => {
    const noVasc = csv(oneHot.map((l) => l.split(',').slice(0, 7).join(',')));
    expect(parseError(noVasc, NAME).message).toBe(
      `${NAME}, line 1: missing required column "VASC" (the header has "image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF").`,
    );
    const duplicate = csv([...oneHot, oneHot[1] as string]);
    expect(parseError(duplicate, NAME).message).toBe(
      `${NAME}, line 195, column "image": the image id "ISIC_0034321" is already used on line 2; each image needs one row.`,
    );
  });
});

describe('parseMetadata errors name the file, line and column', () => {
  it('missing required columns, listing them', () => {
    const header = 'lesion_id,,dx,dx_type,age,sex,location';
    const error = parseError(csv([header, ...lines.slice(1)]));
    expect(error.message).toBe(
      `${CANONICAL}, line 1: missing required column "image_id" (the header has "lesion_id", "dx", "dx_type", "age", "sex", "location").`,
    );
    expect(error).toMatchObject({ fileName: CANONICAL, line: 1, column: 'image_id' });

    const two = parseError(csv([',,dx,dx_type,age,sex,localization', ...lines.slice(1)]));
    expect(two.message).toMatch(
      /^HAM10000_metadata\.csv, line 1: missing required columns "lesion_id", "image_id" \(/,
    );
  });

  it('an unknown diagnosis, quoted, with the allowed ones', () => {
    const error = parseError(withCell(17, 2, 'melanoma'));
    expect(error.message).toBe(
      'HAM10000_metadata.csv, line 17, column "dx": unknown diagnosis "melanoma" (expected one of akiec, bcc, bkl, df, mel, nv, vasc).',
    );
    expect(error).toMatchObject({ line: 17, column: 'dx' });
    expect(parseError(withCell(9, 2, '')).message).toBe(
      'HAM10000_metadata.csv, line 9, column "dx": the diagnosis is empty (expected one of akiec, bcc, bkl, df, mel, nv, vasc).',
    );
  });

  it('names the column as the header spells it', () => {
    const edited = withCell(17, 2, 'melanoma').replace(
      /^[^\n]*/,
      'LESION_ID,Image_ID,DX,dx_type,age,sex,localization',
    );
    expect(parseError(edited)).toMatchObject({
      message: expect.stringMatching(
        /^HAM10000_metadata\.csv, line 17, column "DX": unknown diagnosis "melanoma"/,
      ),
      column: 'DX',
    });
  });

  it('accepts upper-case diagnosis codes', () => {
    expect(parseMetadata(withCell(17, 2, 'MEL'), CANONICAL).records[15]?.dx).toBe('mel');
  });

  it('a duplicate image_id, naming both lines', () => {
    const imageId = (lines[41] as string).split(',')[1];
    const error = parseError(csv([...lines.slice(0, 100), lines[41] as string, ...lines.slice(100)]));
    expect(error.message).toBe(
      `HAM10000_metadata.csv, line 101, column "image_id": the image id "${imageId}" is already used on line 42; each image needs one row.`,
    );
    expect(error).toMatchObject({ line: 101, column: 'image_id' });
  });

  it('a non-numeric or negative age', () => {
    expect(parseError(withCell(30, 4, 'eighty')).message).toBe(
      'HAM10000_metadata.csv, line 30, column "age": the age "eighty" is not a number.',
    );
    expect(parseError(withCell(30, 4, '45;5')).message).toBe(
      'HAM10000_metadata.csv, line 30, column "age": the age "45;5" is not a number.',
    );
    expect(parseError(withCell(31, 4, '-5.0')).message).toBe(
      'HAM10000_metadata.csv, line 31, column "age": the age "-5.0" is negative.',
    );
  });

  it('an empty image_id or lesion_id', () => {
    expect(parseError(withCell(12, 1, '  ')).message).toBe(
      'HAM10000_metadata.csv, line 12, column "image_id": the image id is empty.',
    );
    expect(parseError(withCell(13, 0, '')).message).toBe(
      'HAM10000_metadata.csv, line 13, column "lesion_id": the lesion id is empty.',
    );
  });

  it('a line with too few or too many fields', () => {
    const edited = [...lines];
    edited[19] = (edited[19] as string).split(',').slice(0, 6).join(',');
    expect(parseError(csv(edited)).message).toBe(
      'HAM10000_metadata.csv, line 20: found 6 fields but the header has 7 (a missing or extra ",", or an unclosed quote, in this line?).',
    );
    const tab = csv(lines.map((l) => l.replaceAll(',', '\t')));
    const tabLines = tab.split('\n');
    tabLines[2] += '\textra';
    expect(parseError(tabLines.join('\n'), 'm.tab').message).toBe(
      'm.tab, line 3: found 8 fields but the header has 7 (a missing or extra tab, or an unclosed quote, in this line?).',
    );
  });

  it('an unclosed quote', () => {
    const edited = [...lines];
    const cells = (edited[49] as string).split(',');
    cells[3] = `"${cells[3]}`;
    edited[49] = cells.join(',');
    expect(parseError(csv(edited)).message).toBe(
      'HAM10000_metadata.csv, line 50: quoted field unterminated (check the quotes in this line).',
    );
  });

  it('a column named twice', () => {
    const error = parseError(csv([`${lines[0]},dx`, ...lines.slice(1).map((l) => `${l},nv`)]));
    expect(error.message).toBe(
      'HAM10000_metadata.csv, line 1: the column "dx" appears twice in the header, so it is unclear which one to use.',
    );
  });

  it('an empty file, a blank file and a header without rows', () => {
    expect(parseError('').message).toBe('HAM10000_metadata.csv: the file is empty.');
    expect(parseError('\uFEFF \r\n\r\n').message).toBe('HAM10000_metadata.csv: the file is empty.');
    expect(parseError(`${lines[0]}\n`).message).toBe(
      'HAM10000_metadata.csv: the file has a header line but no data rows.',
    );
  });

  it('a file of another kind, by its columns', () => {
    const hmnist = 'pixel0000,pixel0001,pixel0002,label\n192,153,193,2\n';
    expect(parseError(hmnist, 'hmnist_8_8_L.csv').message).toBe(
      'hmnist_8_8_L.csv, line 1: missing required columns "lesion_id", "image_id", "dx" (the header has "pixel0000", "pixel0001", "pixel0002", "label").',
    );
  });
});

describe('metadata files in other encodings', () => {
  const utf8 = readFileSync(join(HAM, CANONICAL));
  const reference = parseMetadata(decodeText(utf8), CANONICAL);
  const swap = (bytes: Buffer): Buffer => {
    const out = Buffer.from(bytes);
    out.swap16();
    return out;
  };
  const le = Buffer.from(canonicalText, 'utf16le');

  it.each([
    ['UTF-16LE with a BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), le]), 'utf-16le'],
    ['UTF-16BE with a BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), swap(le)]), 'utf-16be'],
    ['UTF-16LE without a BOM', le, 'utf-16le'],
    ['UTF-16BE without a BOM', swap(le), 'utf-16be'],
    ['UTF-8 with a BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8]), 'utf-8'],
  ] as const)('%s is read like the UTF-8 original', (_name, bytes, encoding) => {
    expect(textEncoding(bytes)).toBe(encoding);
    const metadata = parseMetadata(decodeText(bytes), CANONICAL);
    expect(metadata.records).toEqual(reference.records);
    expect(metadata.columns).toEqual(reference.columns);
  });

  it('a binary file is refused for its NUL bytes, with the line and what to do', () => {
    const bytes = Buffer.concat([utf8.subarray(0, 200), Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0])]);
    expect(textEncoding(bytes)).toBe('utf-8');
    expect(() => parseMetadata(decodeText(bytes), 'sheet.csv')).toThrow(
      new MetadataError(
        'sheet.csv, line 4: the file contains NUL bytes, so it is not a text CSV (a spreadsheet or another ' +
          'binary file?). Save it as "CSV UTF-8" and add it again.',
        'sheet.csv',
        4,
      ),
    );
  });
});
