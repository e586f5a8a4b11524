/**
 * The Data page's parts, on real inputs: the error a real bad CSV produces, progress from the real meter, the
 * match report of the real metadata against the 240 originals listed as Kaggle lays them out, and the tab list's
 * keyboard behaviour.
 */
import { cleanup, render } from '../helpers/render.ts';
import { describe, expect, it } from 'vitest';
import { userEvent } from 'vitest/browser';
import { flushSync } from 'svelte';
import csv from '../../../shared/data/ham10000/HAM10000_metadata.csv?raw';
import manifest from '../../../shared/data/ham10000/originals-600x450-manifest.csv?raw';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { MetadataError } from '../../src/lib/data/types.ts';
import { listLooseFiles } from '../../src/lib/data/listing.ts';
import { matchImages } from '../../src/lib/data/match.ts';
import { StageMeter } from '../../src/lib/data/progress.ts';
import ErrorList from '../../src/components/data/ErrorList.svelte';
import ProgressBar from '../../src/components/data/ProgressBar.svelte';
import MatchReport from '../../src/components/data/MatchReport.svelte';
import TabNav from '../../src/components/layout/TabNav.svelte';
import { nav } from '../../src/state/nav.svelte.ts';

const squash = (s: string | null | undefined) => (s ?? '').replace(/\s+/g, ' ').trim();

describe('Data page parts', () => {
  it('shows a bad CSV’s error with its file, line and column', () => {
    const lines = csv.split('\n');
    lines[11] = (lines[11] as string).replace(',55.0,', ',fifty-five,');
    let error: MetadataError | null = null;
    try {
      parseMetadata(lines.join('\n'), 'edited.csv');
    } catch (e) {
      if (e instanceof MetadataError) error = e;
    }
    expect(error).not.toBeNull();
    const dismissed: number[] = [];
    const root = render(ErrorList, {
      errors: [
        {
          id: 7,
          code: 'metadata' as const,
          message: error!.message,
          fileName: error!.fileName,
          ...(error!.line !== undefined ? { line: error!.line } : {}),
          ...(error!.column !== undefined ? { column: error!.column } : {}),
        },
      ],
      ondismiss: (id: number) => dismissed.push(id),
    });
    const alert = root.querySelector('[role="alert"]');
    expect(squash(alert?.querySelector('.title')?.textContent)).toBe(
      'The metadata file has a problem: edited.csv, line 12, column age',
    );
    expect(alert?.textContent).toContain('Everything loaded before is kept');
    (root.querySelector('button') as HTMLButtonElement).click();
    expect(dismissed).toEqual([7]);
  });

  it('says how much storage a quota error needed', () => {
    const root = render(ErrorList, {
      errors: [
        { id: 1, code: 'quota' as const, message: 'Not enough space.', neededMB: 1508, availableMB: 300 },
      ],
      ondismiss: () => {},
    });
    const text = squash(root.textContent);
    expect(text).toContain('Not enough storage space');
    expect(text).toContain('needs about 1,508 MB');
    expect(text).toContain('300 MB more');
  });

  it('renders a stage’s progress with counts, rate and ETA as an ARIA progressbar', () => {
    const meter = new StageMeter('decoding', 10_015, 0);
    for (let t = 0; t <= 10_000; t += 100) meter.update(t / 2, t);
    const progress = meter.snapshot(10_000);
    const root = render(ProgressBar, { progress, label: 'Decoding and resizing', unit: 'images' });
    const bar = root.querySelector('[role="progressbar"]') as HTMLElement;
    expect(bar.getAttribute('aria-valuenow')).toBe('5000');
    expect(bar.getAttribute('aria-valuemax')).toBe('10015');
    expect(bar.getAttribute('aria-valuemin')).toBe('0');
    const name = document.getElementById(bar.getAttribute('aria-labelledby') ?? '');
    expect(name?.textContent).toBe('Decoding and resizing');
    const valuetext = bar.getAttribute('aria-valuetext') ?? '';
    expect(valuetext).toContain('5,000 of 10,015 images');
    expect(valuetext).toContain('500 images/s');
    expect(valuetext).toMatch(/about 10 s left/);
    cleanup();
    const unknown = new StageMeter('listing', null, 0);
    const root2 = render(ProgressBar, {
      progress: unknown.snapshot(0),
      label: 'Listing files',
      unit: 'entries',
    });
    const bar2 = root2.querySelector('[role="progressbar"]') as HTMLElement;
    expect(bar2.hasAttribute('aria-valuenow')).toBe(false);
  });

  it('reports the match of the real CSV against the 240 originals, Kaggle-style with duplicate folders', () => {
    const metadata = parseMetadata(csv, 'HAM10000_metadata.csv');
    const ids = manifest
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0] as string);
    const file = (path: string) => ({ name: path.split('/').pop() as string, path, size: 1 });
    const listing = listLooseFiles([
      ...ids.map((id) => file(`HAM10000_images_part_1/${id}.jpg`)),
      ...ids.map((id) => file(`ham10000_images_part_1/${id}.jpg`)),
    ]);
    const { report } = matchImages(metadata.records, listing);
    const root = render(MatchReport, { report });
    expect(squash(root.querySelector('[data-testid="matched-count"]')?.textContent)).toBe(
      '240 images matched',
    );
    const items = Array.from(root.querySelectorAll('li')).map((li) => squash(li.textContent));
    expect(items[0]).toMatch(/^9,775 rows have no image \(the first: ISIC_0027419, ISIC_0025030, .*…\)\./);
    expect(items[1]).toBe('0 images have no row.');
    expect(items[2]).toMatch(/^240 duplicate copies skipped\./);
  });

  it('says the sample’s rows without an image as information, not as a warning', () => {
    const metadata = parseMetadata(csv, 'HAM10000_metadata.csv');
    const ids = manifest
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0] as string);
    const listing = listLooseFiles(ids.map((id) => ({ name: `${id}.jpg`, path: `${id}.jpg`, size: 1 })));
    const { report } = matchImages(metadata.records, listing);
    const rows = metadata.records.length.toLocaleString('en-US');
    const without = (metadata.records.length - ids.length).toLocaleString('en-US');
    const root = render(MatchReport, { report, sample: true });
    const items = Array.from(root.querySelectorAll('li'));
    expect(squash(items[0]?.textContent)).toMatch(
      new RegExp(
        `^The sample has 240 of the ${rows} metadata rows’ images; the other ${without} rows still feed Explore’s counts\\.`,
      ),
    );
    expect(root.querySelectorAll('li.attention')).toHaveLength(0);
    expect(squash(root.textContent)).not.toContain('have no image');
    cleanup();
    // Someone's own data: the same rows are a warning.
    const own = render(MatchReport, { report });
    expect(squash(own.querySelector('li.attention')?.textContent)).toMatch(
      new RegExp(`^${without} rows have no image`),
    );
  });

  it('keeps the newest error in view and folds the earlier ones, each still readable and dismissable', async () => {
    const messages = [
      ['empty.csv', 'the file is empty'],
      ['cut.zip', "isn't a readable zip file"],
      ['notes.csv', 'missing required column "dx"'],
      ['tail.zip', "isn't a readable zip file either"],
    ] as const;
    let errors = messages.map(([fileName, message], i) => ({
      id: i + 1,
      code: fileName.endsWith('.zip') ? ('archive' as const) : ('metadata' as const),
      message,
      fileName,
    }));
    const dismissed: number[] = [];
    const root = render(ErrorList, { errors, ondismiss: (id: number) => dismissed.push(id) });
    const inView = root.querySelectorAll('.errors > .notice.error');
    expect(inView).toHaveLength(1);
    expect(inView[0]?.textContent).toContain('tail.zip');
    const details = root.querySelector('details') as HTMLDetailsElement;
    const summary = details.querySelector('summary') as HTMLElement;
    expect(squash(summary.textContent)).toBe('3 earlier problems');
    expect(details.open).toBe(false);
    // Newest first under the summary; every message is in the page.
    const folded = Array.from(details.querySelectorAll('.notice.error')).map((n) => squash(n.textContent));
    expect(folded.map((t) => messages.find(([name]) => t.includes(name))?.[0])).toEqual([
      'notes.csv',
      'cut.zip',
      'empty.csv',
    ]);
    // Keyboard: Tab from the newest error's Dismiss reaches the summary; Enter opens it.
    (inView[0]?.querySelector('button') as HTMLButtonElement).focus();
    await userEvent.keyboard('{Tab}');
    expect(document.activeElement).toBe(summary);
    await userEvent.keyboard('{Enter}');
    expect(details.open).toBe(true);
    (details.querySelector('.notice.error button') as HTMLButtonElement).click();
    expect(dismissed).toEqual([3]);
    (Array.from(details.querySelectorAll('button')).at(-1) as HTMLButtonElement).click();
    expect(dismissed).toEqual([3, 3, 2, 1]);
    cleanup();
    // One error: no disclosure.
    errors = errors.slice(0, 1);
    const single = render(ErrorList, { errors, ondismiss: () => {} });
    expect(single.querySelectorAll('.notice.error')).toHaveLength(1);
    expect(single.querySelector('details')).toBeNull();
  });

  it('moves between all eight pages with the arrow keys, Home and End', async () => {
    const root = render(TabNav, {});
    const tabs = Array.from(root.querySelectorAll('[role="tab"]'));
    expect(tabs.map((t) => squash(t.textContent))).toEqual([
      'Data',
      'Explore',
      'Train',
      'Results',
      'Runs',
      'Predict',
      'Learn',
      'Privacy',
    ]);
    expect(tabs.some((t) => t.getAttribute('aria-disabled') === 'true')).toBe(false);
    const data = tabs[0] as HTMLButtonElement;
    nav.go('data');
    flushSync();
    data.focus();
    expect(data.getAttribute('aria-selected')).toBe('true');
    expect(data.tabIndex).toBe(0);
    await userEvent.keyboard('{ArrowRight}');
    flushSync();
    expect(nav.current).toBe('explore');
    expect(document.activeElement?.textContent?.trim()).toBe('Explore');
    expect(tabs[1]?.getAttribute('aria-selected')).toBe('true');
    await userEvent.keyboard('{ArrowRight}');
    flushSync();
    expect(nav.current).toBe('train');
    await userEvent.keyboard('{End}');
    flushSync();
    expect(nav.current).toBe('privacy');
    expect(document.activeElement?.textContent?.trim()).toBe('Privacy');
    await userEvent.keyboard('{ArrowRight}');
    flushSync();
    expect(nav.current).toBe('data');
    await userEvent.keyboard('{ArrowLeft}');
    flushSync();
    expect(nav.current).toBe('privacy');
    await userEvent.keyboard('{Home}');
    flushSync();
    expect(nav.current).toBe('data');
  });
});
