/**
 * The Results components on a small hand-made prediction set (8 test images, 3 classes, one class never
 * predicted), with every figure worked out by hand below; and the Train form refusing bad values with a reason.
 *
 *   true  probabilities (akiec, bcc, bkl)   predicted
 *   akiec [0.70, 0.20, 0.10]                akiec
 *   akiec [0.60, 0.30, 0.10]                akiec
 *   akiec [0.20, 0.70, 0.10]                bcc
 *   bcc   [0.30, 0.60, 0.10]                bcc
 *   bcc   [0.10, 0.80, 0.10]                bcc
 *   bcc   [0.50, 0.40, 0.10]                akiec
 *   bkl   [0.20, 0.50, 0.30]                bcc
 *   bkl   [0.45, 0.35, 0.20]                akiec
 *
 * Confusion (rows true): [2 1 0] [1 2 0] [1 1 0]. Precision akiec 2/4, bcc 2/4, bkl 0/0 → 0 (zero division).
 * Recall 2/3, 2/3, 0. F1 akiec = bcc = 2·0.5·(2/3)/(0.5 + 2/3) = 4/7 = 0.5714. Accuracy 4/8. Balanced accuracy
 * (2/3 + 2/3 + 0)/3 = 0.4444. AUC (pairs positive > negative, ties ½): akiec 11.5/15 = 0.7667, bcc 12/15 = 0.8,
 * bkl 6/6 = 1 (both bkl scores 0.3, 0.2 beat every 0.1); macro AUC 2.5667/3 = 0.8556.
 */
import { render } from '../helpers/render.ts';
import { describe, expect, it } from 'vitest';
import { userEvent } from 'vitest/browser';
import { tick } from 'svelte';
import ResultsView from '../../src/components/results/ResultsView.svelte';
import TrainPage from '../../src/components/train/TrainPage.svelte';
import BackendLine from '../../src/components/train/BackendLine.svelte';
import { describeWasm, planWasmThreads } from '../../src/lib/train/wasm-threads.ts';
import { training } from '../../src/state/training.svelte.ts';

const classes = ['akiec', 'bcc', 'bkl'];
const yTrue = [0, 0, 0, 1, 1, 1, 2, 2];
const yProb = [
  [0.7, 0.2, 0.1],
  [0.6, 0.3, 0.1],
  [0.2, 0.7, 0.1],
  [0.3, 0.6, 0.1],
  [0.1, 0.8, 0.1],
  [0.5, 0.4, 0.1],
  [0.2, 0.5, 0.3],
  [0.45, 0.35, 0.2],
];
const imageIds = yTrue.map((_, i) => `ISIC_000000${i + 1}`);
const squash = (s: string | null | undefined) => (s ?? '').replace(/\s+/g, ' ').trim();

function cell(root: HTMLElement, i: number, j: number): HTMLButtonElement {
  const el = root.querySelector<HTMLButtonElement>(`[data-testid="cell-${i}-${j}"]`);
  if (!el) throw new Error(`no cell ${i},${j}`);
  return el;
}

describe('Results components', () => {
  it('shows the confusion matrix as counts and row-normalised, in the class order', async () => {
    const root = render(ResultsView, { classes, yTrue, yProb, imageIds });
    const heads = [...root.querySelectorAll('[data-testid="confusion-matrix"] table.matrix thead th')].map(
      (th) => th.textContent?.trim(),
    );
    expect(heads.slice(1)).toEqual(classes);
    const counts = [0, 1, 2].map((i) => [0, 1, 2].map((j) => cell(root, i, j).textContent?.trim()));
    expect(counts).toEqual([
      ['2', '1', '0'],
      ['1', '2', '0'],
      ['1', '1', '0'],
    ]);
    await userEvent.click(root.querySelector('[data-testid="normalize-toggle"]')!);
    await tick();
    const shares = [0, 1, 2].map((i) => [0, 1, 2].map((j) => cell(root, i, j).textContent?.trim()));
    expect(shares).toEqual([
      ['0.67', '0.33', '0.00'],
      ['0.33', '0.67', '0.00'],
      ['0.50', '0.50', '0.00'],
    ]);
  });

  it('prints the report as scikit-learn does, with balanced accuracy, AUCs and the zero-division flag', () => {
    const root = render(ResultsView, { classes, yTrue, yProb, imageIds });
    const text = root.querySelector('[data-testid="report-text"]')!.textContent!;
    const row = (name: string, p: string, r: string, f: string, s: string) =>
      `${name.padStart(12)}  ${p.padStart(9)} ${r.padStart(9)} ${f.padStart(9)} ${s.padStart(9)}`;
    expect(text).toContain(row('akiec', '0.50', '0.67', '0.57', '3'));
    expect(text).toContain(row('bkl', '0.00', '0.00', '0.00', '2'));
    expect(text).toContain(
      `${'accuracy'.padStart(12)} ${' '.repeat(20)} ${'0.50'.padStart(9)} ${'8'.padStart(9)}`,
    );
    expect(text.split('\n')[0]).toBe(`${' '.repeat(12)}  precision    recall  f1-score   support`);
    const cells = (name: string) =>
      [...root.querySelectorAll(`[data-testid="report-table"] tr[data-class="${name}"] td`)].map((td) =>
        squash(td.textContent),
      );
    expect(cells('akiec').slice(0, 5)).toEqual(['0.5000', '0.6667', '0.5714', '3', '0.7667']);
    expect(cells('bcc').slice(0, 5)).toEqual(['0.5000', '0.6667', '0.5714', '3', '0.8000']);
    expect(cells('bkl').slice(0, 5)).toEqual(['0.0000', '0.0000', '0.0000', '2', '1.0000']);
    expect(cells('bkl')[5]).toMatch(/precision: zero division/);
    expect(cells('akiec')[5]).toBe('');
    expect(root.querySelector('[data-testid="accuracy"]')!.textContent).toBe('0.5000');
    expect(root.querySelector('[data-testid="balanced-accuracy"]')!.textContent).toBe('0.4444');
    expect(root.querySelector('[data-testid="macro-auc"]')!.textContent).toBe('0.8556');
    const roc = root.querySelector('[data-testid="roc-chart"]')!;
    expect(roc.querySelector('svg[aria-label^="Line chart"]')).not.toBeNull();
    expect(roc.textContent).toContain('bkl (AUC 1.000)');
  });

  it('opens a cell’s test images with their probabilities, by click and by keyboard', async () => {
    const root = render(ResultsView, { classes, yTrue, yProb, imageIds });
    await userEvent.click(cell(root, 1, 0));
    await tick();
    let panel = root.querySelector('[data-testid="cell-images"]')!;
    expect(squash(panel.querySelector('h3')?.textContent)).toBe('True bcc, predicted akiec: 1 image');
    // A screen reader hears the cell's count as the panel shows it, in the singular for one.
    expect(cell(root, 1, 0).getAttribute('aria-label')).toBe('true bcc, predicted akiec: 1 image');
    expect(cell(root, 0, 0).getAttribute('aria-label')).toBe('true akiec, predicted akiec: 2 images');
    const items = panel.querySelectorAll('[data-testid="cell-image"]');
    expect(items).toHaveLength(1);
    expect(squash(items[0]!.textContent)).toContain('ISIC_0000006');
    expect([...items[0]!.querySelectorAll('.probs li')].map((li) => squash(li.textContent))).toEqual([
      'akiec 50.0 %',
      'bcc 40.0 %',
      'bkl 10.0 %',
    ]);

    cell(root, 0, 0).focus();
    await userEvent.keyboard('{Enter}');
    await tick();
    panel = root.querySelector('[data-testid="cell-images"]')!;
    expect(squash(panel.querySelector('h3')?.textContent)).toBe('True akiec, predicted akiec: 2 images');
    const ids = [...panel.querySelectorAll('[data-testid="cell-image"] .id')].map((p) => p.textContent);
    // Most confident first.
    expect(ids).toEqual(['ISIC_0000001', 'ISIC_0000002']);
    expect(cell(root, 0, 0).getAttribute('aria-pressed')).toBe('true');
  });

  it('refuses probability rows that do not fit the classes, plainly', () => {
    const root = render(ResultsView, { classes, yTrue, yProb: yProb.map((r) => r.slice(0, 2)), imageIds });
    expect(root.querySelector('[role="alert"]')?.textContent).toMatch(/could not be scored/);
  });
});

describe('Train form', () => {
  it('refuses invalid values with a reason next to the field, and starts nothing', async () => {
    const root = render(TrainPage, {});
    const epochs = root.querySelector<HTMLInputElement>('[data-testid="epochs"]')!;
    expect(epochs.value).toBe('30');
    expect(root.querySelector<HTMLInputElement>('[data-testid="batch-size"]')!.value).toBe('16');
    expect(root.querySelector<HTMLInputElement>('[data-testid="learning-rate"]')!.value).toBe('0.001');
    await userEvent.clear(epochs);
    await userEvent.type(epochs, 'ten');
    const lr = root.querySelector<HTMLInputElement>('[data-testid="learning-rate"]')!;
    await userEvent.clear(lr);
    await userEvent.type(lr, '-1');
    await userEvent.click(root.querySelector('[data-testid="start"]')!);
    await tick();
    expect(root.querySelector('#err-epochs')?.textContent).toBe('"ten" is not a whole number.');
    expect(root.querySelector('#err-learningRate')?.textContent).toBe('Must be greater than 0.');
    expect(epochs.getAttribute('aria-invalid')).toBe('true');
    expect(epochs.getAttribute('aria-describedby')).toBe('err-epochs');
    expect(training.state).toBe('idle');
    expect(root.querySelector('[data-testid="train-status"]')?.getAttribute('data-state')).toBe('idle');
    training.reset();
  });
});

describe('Train page backend line', () => {
  // Vitest's page is not cross-origin isolated (no COOP/COEP here), like a GitHub Pages deployment.
  const times = (root: HTMLElement) => (root.textContent ?? '').match(/cross-origin isolated/gi)?.length ?? 0;

  it('says once that the page is not cross-origin isolated, on WASM in the line itself', () => {
    expect(crossOriginIsolated).toBe(false);
    const plan = planWasmThreads({ crossOriginIsolated: false, hardwareConcurrency: 2, simd: true });
    const root = render(BackendLine, {
      backend: {
        type: 'backend',
        backend: 'wasm',
        adapter: null,
        device: describeWasm(true, plan.threads, plan.singleBecause),
        reason: 'no hardware WebGPU or WebGL here',
      },
    });
    expect(root.querySelector('[data-testid="backend"]')?.textContent).toMatch(/not cross-origin isolated/);
    expect(root.querySelector('[data-testid="isolation-note"]')).toBeNull();
    expect(times(root)).toBe(1);
  });

  it('on another backend the isolation note says it, once', () => {
    const root = render(BackendLine, {
      backend: {
        type: 'backend',
        backend: 'webgl',
        adapter: null,
        device: 'ANGLE (NVIDIA)',
        reason: 'WebGL on a hardware renderer',
      },
    });
    expect(root.querySelector('[data-testid="isolation-note"]')?.textContent).toMatch(
      /Not cross-origin isolated/,
    );
    expect(times(root)).toBe(1);
  });
});
