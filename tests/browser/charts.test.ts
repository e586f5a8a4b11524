/**
 * The Explore page's charts, drawn from the real HAM10000 metadata: each one must have a title, axis labels, a
 * text alternative and its numbers in a table, and those numbers must be the real ones.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { flushSync, type Component } from 'svelte';
import csv from '../../../shared/data/ham10000/HAM10000_metadata.csv?raw';
import { parseMetadata } from '../../src/lib/data/metadata.ts';
import { cleanup, render as renderComponent } from '../helpers/render.ts';
import { buildEdaView, type EdaView } from '../../src/state/eda.svelte.ts';
import ClassBarChart from '../../src/components/charts/ClassBarChart.svelte';
import ClassDonut from '../../src/components/charts/ClassDonut.svelte';
import CountBarChart from '../../src/components/charts/CountBarChart.svelte';
import SexByClassChart from '../../src/components/charts/SexByClassChart.svelte';
import AgeHistogramChart from '../../src/components/charts/AgeHistogramChart.svelte';
import AgeBoxChart from '../../src/components/charts/AgeBoxChart.svelte';
import ImagesPerLesionChart from '../../src/components/charts/ImagesPerLesionChart.svelte';
import ClassTable from '../../src/components/eda/ClassTable.svelte';
import AgeSummary from '../../src/components/eda/AgeSummary.svelte';
import MissingValues from '../../src/components/eda/MissingValues.svelte';

let view: EdaView;

beforeAll(() => {
  view = buildEdaView(parseMetadata(csv, 'HAM10000_metadata.csv'));
});

const render = <P extends Record<string, unknown>>(component: Component<P>, props: P) =>
  renderComponent(component, props, { width: '900px' });

/** Rows of the "Show numbers" table (or any table) as arrays of cell texts. */
function tableRows(root: Element, section: 'tbody' | 'tfoot' = 'tbody'): string[][] {
  return Array.from(root.querySelectorAll(`table ${section} tr`)).map((tr) =>
    Array.from(tr.querySelectorAll('th, td')).map((c) => (c.textContent ?? '').trim()),
  );
}

/** What every chart must offer: title, caption, labelled SVG, axis labels, a numbers table behind <details>. */
function expectAccessibleChart(root: HTMLElement, title: string, axisLabels: string[]): SVGSVGElement {
  const figure = root.querySelector('figure');
  expect(figure).not.toBeNull();
  const heading = figure!.querySelector('figcaption h3');
  expect(heading?.textContent).toBe(title);
  const labelledBy = figure!.getAttribute('aria-labelledby');
  expect(labelledBy && document.getElementById(labelledBy)?.textContent).toBe(title);
  const describedBy = figure!.getAttribute('aria-describedby');
  const description = (describedBy && document.getElementById(describedBy)?.textContent) || '';
  expect(description.length).toBeGreaterThan(40);
  const svg = figure!.querySelector('svg[aria-label]') as SVGSVGElement;
  expect(svg).not.toBeNull();
  expect(svg.getAttribute('aria-label')?.length).toBeGreaterThan(5);
  const labels = Array.from(svg.querySelectorAll('g[aria-label$="axis label"] text')).map(
    (t) => t.textContent ?? '',
  );
  for (const label of axisLabels)
    expect(
      labels.some((l) => l.includes(label)),
      `axis label ${label}`,
    ).toBe(true);
  const details = figure!.querySelector('details');
  expect(details?.querySelector('summary')?.textContent).toBe('Show numbers');
  expect(details?.querySelector('table caption')?.textContent?.length).toBeGreaterThan(3);
  return svg;
}

describe('charts of the real HAM10000 metadata', () => {
  it('class bar chart: seven bars, nv first, counts in the table', () => {
    const root = render(ClassBarChart, { classes: view.summary.classes });
    const svg = expectAccessibleChart(root, 'Images per diagnosis', ['Diagnosis', 'Images']);
    expect(svg.querySelectorAll('g[aria-label="bar"] rect')).toHaveLength(7);
    const rows = tableRows(root);
    expect(rows[0]).toEqual(['nv', 'Melanocytic nevi', '6,705']);
    expect(rows[6]).toEqual(['df', 'Dermatofibroma', '115']);
    expect(tableRows(root, 'tfoot')[0]).toEqual(['All', '', '10,015']);
    expect(svg.getAttribute('aria-description')).toContain('nv 6,705 (66.95 %)');
  });

  it('donut: one slice per class, shares in the table', () => {
    const root = render(ClassDonut, { classes: view.summary.classes });
    const svg = root.querySelector('figure svg[role="img"]') as SVGSVGElement;
    expect(svg.getAttribute('aria-label')).toContain('nv 66.95 %');
    expect(svg.querySelectorAll('path')).toHaveLength(7);
    expect(root.querySelector('figcaption h3')?.textContent).toBe('Share of each diagnosis');
    const rows = tableRows(root);
    expect(rows[0]).toEqual(['nv', '6,705', '66.95 %']);
    expect(rows.at(-1)).toEqual(['df', '115', '1.15 %']);
  });

  it('class table: code, full name, count and percent', () => {
    const root = render(ClassTable, { classes: view.summary.classes, rows: view.summary.rows });
    const rows = tableRows(root);
    expect(rows.map((r) => r[0])).toEqual(['nv', 'mel', 'bkl', 'bcc', 'akiec', 'vasc', 'df']);
    expect(rows[0]).toEqual(['nv', 'Melanocytic nevi', '6,705', '66.95 %']);
    expect(rows[1]).toEqual(['mel', 'Melanoma', '1,113', '11.11 %']);
    expect(rows[6]).toEqual(['df', 'Dermatofibroma', '115', '1.15 %']);
  });

  it('missing values: 57 empty ages, nothing else, and the mean imputation said plainly', () => {
    const root = render(MissingValues, {
      missing: view.summary.missing,
      rows: view.summary.rows,
      imputation: view.imputation,
    });
    const rows = tableRows(root);
    expect(rows.find((r) => r[0] === 'age')?.[1]).toBe('57');
    expect(rows.filter((r) => r[0] !== 'age').every((r) => r[1] === '0')).toBe(true);
    expect(rows).toHaveLength(7);
    expect(root.textContent).toContain('imputed with the mean');
    expect(root.textContent).toContain('51.86');
  });

  it('by sex: grouped bars per class, both counts and shares', () => {
    const root = render(SexByClassChart, { counts: view.sexByClass });
    const svg = expectAccessibleChart(root, 'Diagnosis by sex', ['Diagnosis', 'Images']);
    // male, female, unknown for each of the seven classes
    expect(svg.querySelectorAll('g[aria-label="bar"] rect').length).toBe(21);
    const nv = tableRows(root).find((r) => r[0] === 'nv');
    expect(nv?.slice(1, 3).map((c) => c.split(' ')[0])).toEqual(['3,421', '3,237']);
    const share = root.querySelector('input[value="share"]') as HTMLInputElement;
    share.click();
    flushSync();
    const relabelled = root.querySelector('figure svg g[aria-label="y-axis label"] text')?.textContent ?? '';
    expect(relabelled).toContain('Share');
  });

  it('dx_type and localization: sorted bars with counts', () => {
    let root = render(CountBarChart, {
      title: 'How the diagnosis was confirmed',
      categoryLabel: 'Confirmation (dx_type)',
      valueLabel: 'Images',
      counts: view.summary.dx_type,
    });
    expectAccessibleChart(root, 'How the diagnosis was confirmed', ['Confirmation', 'Images']);
    expect(tableRows(root).map((r) => r.slice(0, 2))).toEqual([
      ['histo', '5,340'],
      ['follow_up', '3,704'],
      ['consensus', '902'],
      ['confocal', '69'],
    ]);
    cleanup();
    root = render(CountBarChart, {
      title: 'Body site',
      categoryLabel: 'Localization',
      valueLabel: 'Images',
      counts: view.summary.localization,
    });
    const svg = expectAccessibleChart(root, 'Body site', ['Localization', 'Images']);
    const counts = tableRows(root).map((r) => Number(r[1]!.replace(/,/g, '')));
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(10_015);
    expect(tableRows(root)[0]?.[0]).toBe('back');
    const bars = svg.querySelectorAll('g[aria-label="bar"] rect');
    expect(bars.length).toBe(Object.keys(view.summary.localization).length);
  });

  it('age histogram with a KDE overlay: bins add up to the 9,958 recorded ages', () => {
    const root = render(AgeHistogramChart, { ages: view.ages, missing: 57 });
    const svg = expectAccessibleChart(root, 'Age distribution', ['Age (years)', 'Images']);
    expect(svg.querySelectorAll('g[aria-label="rect"] rect').length).toBe(18);
    const line = svg.querySelector('g[aria-label="line"] path');
    expect(line?.getAttribute('d')?.length).toBeGreaterThan(100);
    const counts = tableRows(root).map((r) => Number(r[1]!.replace(/,/g, '')));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(9958);
    expect(tableRows(root)[0]?.[0]).toBe('0–4');
    expect(svg.getAttribute('aria-description')).toContain('57 rows with no age are left out');
  });

  it('age box plots: overall quartiles 40 / 50 / 65', () => {
    const root = render(AgeBoxChart, { agesByClass: view.agesByClass });
    const svg = expectAccessibleChart(root, 'Age by diagnosis', ['Age (years)', 'Diagnosis']);
    expect(svg.querySelectorAll('g[aria-label="bar"] rect')).toHaveLength(8);
    const all = tableRows(root)[0];
    expect(all?.slice(0, 7)).toEqual(['all', '9,958', '0', '40.0', '50.0', '65.0', '85']);
  });

  it('age summary table: the seed’s describe() figures', () => {
    const root = render(AgeSummary, {
      age: view.summary.age,
      after: view.imputation.after,
      imputed: view.imputation.imputed,
    });
    const recorded = Object.fromEntries(tableRows(root).map((r) => [r[0], r[1]]));
    expect(recorded).toEqual({
      Count: '9,958',
      Mean: '51.86',
      'Std. deviation': '16.97',
      Minimum: '0',
      '25 % (Q1)': '40',
      Median: '50',
      '75 % (Q3)': '65',
      Maximum: '85',
    });
    const imputed = Object.fromEntries(tableRows(root).map((r) => [r[0], r[2]]));
    expect(imputed['Count']).toBe('10,015');
    expect(imputed['Mean']).toBe('51.86');
  });

  it('images per lesion: 7,470 lesions for 10,015 images', () => {
    const root = render(ImagesPerLesionChart, { imagesPerLesion: view.summary.images_per_lesion });
    const svg = expectAccessibleChart(root, 'Images per lesion', ['Images of the same lesion', 'Lesions']);
    expect(tableRows(root, 'tfoot')[0]).toEqual(['All', '7,470', '10,015']);
    expect(tableRows(root)[0]?.[0]).toBe('1');
    expect(svg.querySelectorAll('g[aria-label="bar"] rect').length).toBe(tableRows(root).length);
  });
});
