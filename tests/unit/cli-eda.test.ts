import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../helpers/cli.ts';
import type { EdaSummary } from '../../src/lib/eda/types.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const HAM = resolve(ROOT, '../shared/data/ham10000');
const CANONICAL = join(HAM, 'HAM10000_metadata.csv');
const tmp = mkdtempSync(join(tmpdir(), 'lesion-lab-cli-eda-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cli = (...args: string[]): Promise<CliRun> => runCli('eda', ...args);

function summaryOf(run: CliRun): EdaSummary {
  expect(run.code).toBe(0);
  const lines = run.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0] as string) as EdaSummary;
}

describe('npm run -s cli -- eda', () => {
  it('prints the summary of the real metadata as one JSON object', async () => {
    const run = await cli(CANONICAL);
    expect(run.stderr).toBe('');
    const summary = summaryOf(run);
    // Full precision (the UI rounds): Python's statistics.mean/stdev over the 9,958 recorded ages give these.
    expect(summary.age.mean).toBeCloseTo(51.863828077927295, 12);
    expect(summary.age.std).toBeCloseTo(16.96861369249536, 12);
    expect(summary.classes.mel.percent).toBeCloseTo(11.11333000499251, 12);
    expect(summary).toEqual({
      rows: 10015,
      lesions: 7470,
      missing: { lesion_id: 0, image_id: 0, dx: 0, dx_type: 0, age: 57, sex: 0, localization: 0 },
      classes: {
        nv: { count: 6705, percent: (100 * 6705) / 10015 },
        mel: { count: 1113, percent: (100 * 1113) / 10015 },
        bkl: { count: 1099, percent: (100 * 1099) / 10015 },
        bcc: { count: 514, percent: (100 * 514) / 10015 },
        akiec: { count: 327, percent: (100 * 327) / 10015 },
        vasc: { count: 142, percent: (100 * 142) / 10015 },
        df: { count: 115, percent: (100 * 115) / 10015 },
      },
      age: { ...summary.age, count: 9958, min: 0, q1: 40, median: 50, q3: 65, max: 85 },
      sex: { male: 5406, female: 4552, unknown: 57 },
      dx_type: { histo: 5340, follow_up: 3704, consensus: 902, confocal: 69 },
      localization: {
        back: 2192,
        'lower extremity': 2077,
        trunk: 1404,
        'upper extremity': 1118,
        abdomen: 1022,
        face: 745,
        chest: 407,
        foot: 319,
        unknown: 234,
        neck: 168,
        scalp: 128,
        hand: 90,
        ear: 56,
        genital: 48,
        acral: 7,
      },
      images_per_lesion: { '1': 5514, '2': 1423, '3': 490, '4': 34, '5': 5, '6': 4 },
    });
  });

  it('prints the same summary for the CRLF, Dataverse and tab-separated variants', async () => {
    const tab = join(tmp, 'HAM10000_metadata.tab');
    writeFileSync(tab, readFileSync(CANONICAL, 'utf8').replaceAll(',', '\t'));
    const runs: CliRun[] = [];
    // One at a time: the test machines have few cores.
    for (const path of [
      CANONICAL,
      join(HAM, 'variants/HAM10000_metadata_crlf_intages.csv'),
      join(HAM, 'variants/HAM10000_metadata_with_dataset_column.csv'),
      tab,
    ]) {
      runs.push(await cli(path));
    }
    const [reference, ...others] = runs.map(summaryOf);
    for (const other of others) expect(other).toEqual(reference);
  });

  it('summarizes an ISIC one-hot file and warns on stderr that there are no lesion ids', async () => {
    const run = await cli(join(HAM, 'variants/ISIC2018_Task3_Test_GroundTruth.csv'));
    const summary = summaryOf(run);
    expect(summary.rows).toBe(1512);
    expect(summary.lesions).toBe(0);
    expect(summary.age.count).toBe(0);
    expect(summary.age.mean).toBeNull();
    expect(run.stderr).toMatch(
      /^eda: ISIC2018_Task3_Test_GroundTruth\.csv: This file has no lesion ids.*lesion-grouped split is impossible/,
    );
  });

  it('exits nonzero with the file, line and column on stderr for a bad file', async () => {
    const lines = readFileSync(CANONICAL, 'utf8').split('\n');
    lines[16] = (lines[16] as string).replace(/^([^,]*,[^,]*,)[^,]*/, '$1melanoma');
    const bad = join(tmp, 'HAM10000_metadata.csv');
    writeFileSync(bad, lines.join('\n'));
    const run = await cli(bad);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'eda: HAM10000_metadata.csv, line 17, column "dx": unknown diagnosis "melanoma" ' +
        '(expected one of akiec, bcc, bkl, df, mel, nv, vasc).\n',
    );
  });

  it('exits nonzero on a missing file or a missing argument', async () => {
    const missing = await cli(join(tmp, 'nope.csv'));
    expect(missing.code).not.toBe(0);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toBe(`eda: cannot read ${join(tmp, 'nope.csv')}: no such file\n`);
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/expected one metadata file\nusage: eda <metadata\.csv\|\.tab>/);
  });
});
