/**
 * Hidden duplicates on real images: the real MobileNetV2 0.35 ImageNet weights, real HAM10000 images, and copies of
 * two of them (mirrored; shrunk and blown up again) filed under lesion ids of their own. The search must rank those
 * copies first among different-lesion pairs. Then the split honours pairs to keep together.
 */
import { pretrainedMobileNetV2 } from '../helpers/pretrained.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import Papa from 'papaparse';
import { beforeAll, describe, expect, it } from 'vitest';
import { isDx } from '../../src/lib/data/dx.ts';
import { nearDuplicates } from '../../src/lib/data/near-duplicates.ts';
import { resizeRgb } from '../../src/lib/data/resize.ts';
import type { LesionRecord } from '../../src/lib/data/types.ts';
import { buildFeatureExtractor } from '../../src/lib/model/heads.ts';
import { preprocessInput } from '../../src/lib/model/preprocess.ts';
import { splitRecords, type Split } from '../../src/lib/split/split.ts';

const root = join(import.meta.dirname, '..', '..');
const shared = join(root, '..', 'shared');
const DATA = join(shared, 'data', 'ham10000');
const SIZE = 96;

function readRecords(): LesionRecord[] {
  const text = readFileSync(join(DATA, 'HAM10000_metadata.csv'), 'utf8');
  const { data } = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true });
  return data.map((row, i) => {
    if (!isDx(row.dx!)) throw new Error(`unexpected dx ${row.dx}`);
    return {
      imageId: row.image_id!,
      lesionId: row.lesion_id!,
      dx: row.dx,
      dxType: row.dx_type ?? null,
      age: row.age ? Number(row.age) : null,
      sex: row.sex ?? null,
      localization: row.localization ?? null,
      line: i + 2,
    };
  });
}

function decode(imageId: string): { width: number; height: number; data: Uint8Array } {
  const d = jpeg.decode(readFileSync(join(DATA, 'all-200x150', `${imageId}.jpg`)), {
    useTArray: true,
    formatAsRGBA: false,
  });
  return { width: d.width, height: d.height, data: d.data };
}

const square = (img: { width: number; height: number; data: Uint8Array }, size = SIZE): Uint8Array =>
  resizeRgb({ ...img, channels: 3 }, size, size, 'catmull-rom').data;

function mirror(img: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < 3; c++) out[(y * size + x) * 3 + c] = img[(y * size + (size - 1 - x)) * 3 + c]!;
  return out;
}

let records: LesionRecord[];

beforeAll(async () => {
  setWasmPaths(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
  records = readRecords();
});

describe('near-duplicate search', () => {
  it('finds a mirrored and a shrunk-and-enlarged copy under other lesion ids first', async () => {
    // 40 real images, one per lesion, of several classes.
    const seen = new Set<string>();
    const chosen = records.filter((r) => {
      if (seen.has(r.lesionId!) || seen.size >= 40 || !['nv', 'mel', 'bkl', 'bcc'].includes(r.dx))
        return false;
      seen.add(r.lesionId!);
      return true;
    });
    const pixels = chosen.map((r) => square(decode(r.imageId)));
    const ids = chosen.map((r) => r.imageId);
    const lesions: string[] = chosen.map((r) => r.lesionId!);
    const dx: string[] = chosen.map((r) => r.dx);
    // Copy 1: image 3 mirrored. Copy 2: image 17 at 48 px blown up to 96 (a lower-resolution copy).
    pixels.push(mirror(pixels[3]!, SIZE));
    ids.push('copy_mirrored');
    lesions.push('HAM_copy_1');
    dx.push(dx[3]!);
    pixels.push(square({ width: 48, height: 48, data: square(decode(chosen[17]!.imageId), 48) }));
    ids.push('copy_small');
    lesions.push('HAM_copy_2');
    dx.push(dx[17]!);

    const base = await pretrainedMobileNetV2(SIZE);
    const extractor = buildFeatureExtractor(base);
    const all = new Float32Array(pixels.length * SIZE * SIZE * 3);
    pixels.forEach((p, i) => all.set(p, i * SIZE * SIZE * 3));
    const out = tf.tidy(
      () =>
        extractor.predict(
          preprocessInput(tf.tensor4d(all, [pixels.length, SIZE, SIZE, 3]), 'tf'),
        ) as tf.Tensor,
    );
    const features = (await out.data()) as Float32Array;
    out.dispose();
    // Disposes the base inside it too.
    extractor.dispose();

    const result = await nearDuplicates(
      { features, dim: 1280, imageIds: ids, lesionIds: lesions, dx },
      { top: 5, blockRows: 7, threshold: 0.99 },
    );
    expect(result.images).toBe(42);
    const firstTwo = result.pairs.slice(0, 2).map((p) => [p.a, p.b].sort().join('+'));
    expect(firstTwo.sort()).toEqual(
      [[ids[3]!, 'copy_mirrored'].sort().join('+'), [ids[17]!, 'copy_small'].sort().join('+')].sort(),
    );
    expect(result.pairs[0]!.similarity).toBeGreaterThan(result.pairs[2]!.similarity);
    for (let i = 1; i < result.pairs.length; i++)
      expect(result.pairs[i]!.similarity).toBeLessThanOrEqual(result.pairs[i - 1]!.similarity);
    expect(result.pairs[0]).toMatchObject({
      dx_a: expect.any(String),
      lesion_a: expect.stringMatching(/^HAM_/),
    });
    // Every lesion here has one image: no same-lesion pairs, so the self-check has nothing to rank.
    expect(result.self_check!.same_lesion_pairs).toBe(0);
    expect(result.self_check!.different_lesion_pairs).toBe((42 * 41) / 2);

    // The same search without centring, in one block: the copies still come first.
    const plain = await nearDuplicates(
      { features, dim: 1280, imageIds: ids, lesionIds: lesions, dx },
      { top: 2, blockRows: 1000, center: false, selfCheck: false },
    );
    expect(plain.pairs.map((p) => [p.a, p.b].sort().join('+')).sort()).toEqual(firstTwo.sort());
    expect(plain.self_check).toBeNull();
  });

  it('self-check statistics on vectors with known answers: two tight lesions and scattered singles', async () => {
    const dim = 4;
    const rows = [
      [1, 0, 0, 0],
      [0.99, 0.05, 0, 0],
      [0, 1, 0, 0],
      [0.02, 0.98, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ];
    const result = await nearDuplicates(
      {
        features: Float32Array.from(rows.flat()),
        dim,
        imageIds: ['a1', 'a2', 'b1', 'b2', 'c', 'd'],
        lesionIds: ['A', 'A', 'B', 'B', 'C', null],
        dx: ['nv', 'nv', 'mel', 'mel', 'nv', 'bkl'],
      },
      { top: 3, center: false },
    );
    const check = result.self_check!;
    expect(check.same_lesion_pairs).toBe(2);
    expect(check.different_lesion_pairs).toBe(13);
    expect(check.auc).toBe(1);
    expect(check.r_precision).toBe(1);
    expect(check.images_with_sibling).toBe(4);
    expect(check.recall_at['1']).toBe(1);
    expect(result.pairs.every((p) => p.lesion_a !== p.lesion_b)).toBe(true);
  });
});

describe('the split honours pairs kept together', () => {
  it('without pairs the split is exactly the default one; with pairs their lesions share a split', () => {
    const plain = splitRecords(records);
    const same = splitRecords(records, { together: [] });
    expect([...same.assignment]).toEqual([...plain.assignment]);
    expect('together' in plain).toBe(false);
    // Pairs of different lesions that the default split puts in different splits.
    const byLesion = new Map<string, string[]>();
    for (const r of records) byLesion.set(r.lesionId!, [...(byLesion.get(r.lesionId!) ?? []), r.imageId]);
    const inSplit = (s: Split, name: string) => records.filter((r) => s.assignment.get(r.imageId) === name);
    const pairs: Array<[string, string]> = [];
    const tests = inSplit(plain, 'test');
    const trains = inSplit(plain, 'train');
    for (let k = 0; k < 20; k++) {
      const a = tests[k * 3]!;
      const b = trains.find(
        (r) => r.dx === a.dx && !pairs.some((p) => p.includes(r.imageId)) && r.imageId > a.imageId,
      )!;
      pairs.push([a.imageId, b.imageId]);
    }
    pairs.push(['ISIC_NOT_THERE', tests[0]!.imageId]);
    const kept = splitRecords(records, { together: pairs });
    for (const [a, b] of pairs.slice(0, 20)) {
      expect(plain.assignment.get(a)).not.toBe(plain.assignment.get(b));
      expect(kept.assignment.get(a)).toBe(kept.assignment.get(b));
      // Whole lesions move: every image of both lesions is in that split.
      const lesionA = records.find((r) => r.imageId === a)!.lesionId!;
      const lesionB = records.find((r) => r.imageId === b)!.lesionId!;
      for (const id of [...byLesion.get(lesionA)!, ...byLesion.get(lesionB)!])
        expect(kept.assignment.get(id)).toBe(kept.assignment.get(a));
    }
    const lesionOf = new Map(records.map((r) => [r.imageId, r.lesionId!]));
    const lesionsInPairs = new Set(
      pairs.slice(0, 20).flatMap(([a, b]) => [lesionOf.get(a), lesionOf.get(b)]),
    );
    expect(kept.together).toEqual({
      pairs: 21,
      keptTogether: 20,
      unknown: 1,
      // 20 unions of different lesions (no pair closes a cycle here).
      groups: 7470 - 20,
      mergedLesions: lesionsInPairs.size,
    });
    expect(kept.leakedLesions).toBe(0);
    expect(kept.totals.train + kept.totals.val + kept.totals.test).toBe(10015);
  });
});
