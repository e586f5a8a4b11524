/**
 * The journal of a cache being written: which slots hold their image, for which plan, and a refusal of anything
 * damaged or foreign (so a continuation never trusts a half-written or mismatched journal).
 */
import { describe, expect, it } from 'vitest';
import { buildJournal, parseJournal, planKey, SlotSet } from '../../src/lib/data/cache-progress.ts';

const sources = [{ name: 'ham10000-sample.zip', size: 4_390_152, lastModified: 0 }];

describe('cache progress journal', () => {
  it('round-trips the written slots, scattered as the archive order leaves them', () => {
    const done = new SlotSet(1007);
    for (const slot of [0, 7, 8, 500, 1006, 7]) done.add(slot);
    expect(done.count).toBe(5);
    const plan = planKey(96, ['ISIC_0024306', 'ISIC_0024307']);
    const journal = buildJournal({
      size: 96,
      plan,
      done,
      sources,
      urls: ['/samples/x.zip'],
      now: new Date(0),
    });
    const parsed = parseJournal(JSON.stringify(journal))!;
    expect(parsed.journal).toEqual(journal);
    expect(parsed.done.count).toBe(5);
    for (let slot = 0; slot < 1007; slot++)
      expect(parsed.done.has(slot)).toBe([0, 7, 8, 500, 1006].includes(slot));
  });

  it('ties the plan to the size and to the images in slot order', () => {
    const ids = ['ISIC_0024306', 'ISIC_0024307', 'ISIC_0024308'];
    expect(planKey(96, ids)).toBe(planKey(96, [...ids]));
    expect(planKey(96, ids)).not.toBe(planKey(128, ids));
    expect(planKey(96, ids)).not.toBe(planKey(96, [ids[1]!, ids[0]!, ids[2]!]));
    expect(planKey(96, ids)).not.toBe(planKey(96, ids.slice(0, 2)));
  });

  it('refuses a damaged, cut short or foreign journal', () => {
    const done = new SlotSet(20);
    done.add(3);
    const good = buildJournal({ size: 96, plan: 'p', done, sources, urls: [], now: new Date(0) });
    const text = JSON.stringify(good);
    expect(parseJournal(text)).not.toBeNull();
    expect(parseJournal(text.slice(0, text.length - 5))).toBeNull();
    expect(parseJournal(JSON.stringify({ ...good, format: 'other' }))).toBeNull();
    expect(parseJournal(JSON.stringify({ ...good, size: 100 }))).toBeNull();
    expect(parseJournal(JSON.stringify({ ...good, doneCount: 2 }))).toBeNull();
    expect(parseJournal(JSON.stringify({ ...good, done: good.done.slice(2) }))).toBeNull();
    // A bit set past the last slot (20 slots: bits 20..23 of the third byte are not slots).
    expect(
      parseJournal(JSON.stringify({ ...good, done: `${good.done.slice(0, 4)}f0`, doneCount: 5 })),
    ).toBeNull();
  });
});
