import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { shortText } from '../../src/lib/short-text.ts';
import { buildEdaView } from '../../src/state/eda.svelte.ts';
import { METADATA_CSV } from '../helpers/zips.ts';

const HUGE = 'x'.repeat(5_000_000);

describe('long text from a file is cut where it is shown', () => {
  it('keeps short text and cuts long text with its length', () => {
    expect(shortText('ISIC_0024306')).toBe('ISIC_0024306');
    expect(shortText('abcdef', 3)).toBe('abc… (6 characters)');
    expect(shortText(HUGE)).toBe(`${'x'.repeat(120)}… (5,000,000 characters)`);
  });

  it('a 5 MB unknown dx is quoted by its start and length in the error', () => {
    const lines = readFileSync(METADATA_CSV, 'utf8').split('\n').slice(0, 4);
    lines[2] = lines[2]!.replace(/,(bkl|nv|mel|bcc|akiec|vasc|df),/, `,${HUGE},`);
    const error = (() => {
      try {
        parseMetadata(lines.join('\n'), 'meta.csv');
        return null;
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toMatch(
      /^meta\.csv, line 3, column "dx": unknown diagnosis "x{120}… \(5,000,000 characters\)"/,
    );
    expect(error!.message.length).toBeLessThan(400);
  });

  it('a 5 MB localization becomes a short category on the Explore page', () => {
    const lines = readFileSync(METADATA_CSV, 'utf8').trimEnd().split('\n').slice(0, 20);
    lines[5] = lines[5]!.replace(/,[a-z ]+$/, `,"${HUGE}"`);
    const view = buildEdaView(parseMetadata(lines.join('\n'), 'meta.csv'));
    const keys = Object.keys(view.summary.localization);
    expect(keys).toContain(`${'x'.repeat(120)}… (5,000,000 characters)`);
    expect(Math.max(...keys.map((k) => k.length))).toBeLessThan(200);
  });
});
