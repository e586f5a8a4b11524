/**
 * Learn mode on the built app, as a workshop participant uses it: every built-in lesson walked through to its
 * comparison in the Runs table (each experiment started with one click, on 60 real originals cached at 96 px so the
 * test is quick), progress kept across a reload, and a teacher's own lesson file — a broken one from the file
 * picker, refused with the place at fault named; a good one dropped on the page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { BUILTIN_LESSONS } from '../../src/lib/lessons/builtin.ts';
import type { Lesson } from '../../src/lib/lessons/lesson.ts';
import { recordRequests } from '../helpers/chromium.ts';
import { useBuiltApp } from '../helpers/e2e-setup.ts';
import {
  KAGGLE_ZIP_NAME,
  METADATA_CSV,
  buildKaggleZip,
  makeTempDir,
  pickAcrossClasses,
  readOriginals,
  removeTempDir,
} from '../helpers/zips.ts';

const IMAGES = 60;
const builtinDir = join(import.meta.dirname, '..', '..', 'src', 'lib', 'lessons', 'builtin');

describe('guided lessons', () => {
  const app = useBuiltApp();
  let context: BrowserContext;
  let page: Page;
  let dir: string;
  const pageErrors: string[] = [];
  let requests: ReturnType<typeof recordRequests>;

  beforeAll(async () => {
    dir = await makeTempDir();
    const images = pickAcrossClasses(readOriginals(), IMAGES);
    const zip = await buildKaggleZip(join(dir, KAGGLE_ZIP_NAME), { images });
    context = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    requests = recordRequests(page);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(app.origin);
    await page.getByTestId('file-input').setInputFiles([zip.path, METADATA_CSV]);
    await page.getByTestId('matched-count').waitFor({ timeout: 120_000 });
    await page.getByLabel('Image size').selectOption('96');
    await page.getByRole('button', { name: `Decode and cache ${IMAGES} images` }).click();
    await page.getByTestId('cache-status').waitFor({ timeout: 240_000 });
  }, 600_000);

  afterAll(async () => {
    await context?.close();
    if (dir) await removeTempDir(dir);
  });

  const panelTitle = async () => ((await page.locator('#lesson-step-title').textContent()) ?? '').trim();

  async function walk(lesson: Lesson) {
    await page.getByRole('tab', { name: 'Learn' }).click();
    await page.getByTestId(`open-lesson-${lesson.id}`).click();
    await page.getByTestId('lesson-panel').waitFor();
    for (const [i, step] of lesson.steps.entries()) {
      expect(await panelTitle()).toBe(step.title);
      expect(await page.getByTestId('lesson-panel').textContent()).toContain(
        `step ${i + 1} of ${lesson.steps.length}`,
      );
      if (step.page) {
        // The step opened its page, and the part it is about is marked.
        expect(await page.getByRole('tab', { selected: true }).textContent()).toMatch(
          new RegExp(step.page, 'i'),
        );
        if (step.target && step.target !== 'sample-button' && step.target !== 'runs-compare')
          await page.locator(`[data-lesson-target="${step.target}"]`).first().waitFor();
        if (step.target)
          expect(await page.evaluate(() => document.body.dataset.lessonTarget)).toBe(step.target);
      }
      if (step.question) {
        await page.getByText('Show an answer').click();
        await page.getByText(step.question.answer).waitFor();
      }
      if (step.experiment) {
        await page.getByTestId('lesson-run').click();
        await page.getByTestId('lesson-run-done').waitFor({ timeout: 480_000 });
        expect(await page.getByTestId('lesson-error').count(), await page.innerText('main')).toBe(0);
        const label = lesson.experiments.find((x) => x.id === step.experiment)!.label;
        expect(await page.getByTestId('lesson-run-done').textContent()).toContain(label);
      }
      if (step.compare) {
        // The lesson's runs, side by side in the Runs table.
        expect(await page.getByTestId('lesson-missing').count()).toBe(0);
        const table = page.getByTestId('compare-table');
        await table.waitFor();
        const text = (await table.textContent()) ?? '';
        // However many runs and columns, the table scrolls inside the page's column instead of sticking out of it.
        const edges = await page.evaluate(() => ({
          box: document.querySelector('[data-testid="compare-table"]')!.parentElement!.getBoundingClientRect()
            .right,
          page: document.querySelector('[data-testid="runs-page"]')!.getBoundingClientRect().right,
        }));
        expect(edges.box).toBeLessThanOrEqual(edges.page + 0.5);
        for (const id of step.compare) {
          const label = lesson.experiments.find((x) => x.id === id)!.label;
          expect(text, label).toContain(label);
        }
      }
      if (i < lesson.steps.length - 1) await page.getByTestId('lesson-next').click();
    }
  }

  it.each(BUILTIN_LESSONS.map((l) => [l.id, l] as const))(
    'the %s lesson runs its experiments and ends on their comparison',
    async (_id, lesson) => {
      await walk(lesson);
      expect(pageErrors).toEqual([]);
    },
  );

  it('keeps the step across a reload', async () => {
    const lesson = BUILTIN_LESSONS[0]!;
    await page.getByRole('tab', { name: 'Learn' }).click();
    await page.getByTestId(`open-lesson-${lesson.id}`).click();
    await page.getByRole('button', { name: 'Back' }).click();
    const title = await panelTitle();
    expect(title).toBe(lesson.steps.at(-2)!.title);
    await page.reload();
    await page.getByTestId('lesson-panel').waitFor();
    expect(await panelTitle()).toBe(title);
    await page.getByRole('button', { name: 'Close the lesson' }).click();
    expect(await page.getByTestId('lesson-panel').count()).toBe(0);
  });

  it("loads a teacher's lesson file, and names the place at fault in a broken one", async () => {
    const leakage = JSON.parse(await readFile(join(builtinDir, 'leakage.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const mine: Record<string, unknown> = {
      ...leakage,
      id: 'class-weights-again',
      title: 'Our own lesson on the split',
    };
    const broken = join(dir, 'broken-lesson.json');
    const steps = (mine.steps as Array<Record<string, unknown>>).map((s, i) =>
      i === 1 ? { ...s, target: 'the-start-button' } : s,
    );
    await writeFile(broken, JSON.stringify({ ...mine, id: 'broken', steps }));

    await page.getByRole('tab', { name: 'Learn' }).click();
    await page.getByTestId('lesson-file').setInputFiles(broken);
    await page.getByTestId('lesson-error').first().waitFor();
    expect(await page.getByTestId('lesson-error').first().textContent()).toMatch(
      /^broken-lesson\.json: steps\[1\]\.target: "the-start-button" is not one of sample-button, /,
    );
    expect(await page.getByTestId('open-lesson-broken').count()).toBe(0);

    // Dropped on the page's drop area, as a teacher drags the file in.
    const text = JSON.stringify(mine);
    const transfer = await page.evaluateHandle((json) => {
      const data = new DataTransfer();
      data.items.add(new File([json], 'our-lesson.json', { type: 'application/json' }));
      return data;
    }, text);
    await page
      .getByRole('group', { name: 'Drop a lesson file' })
      .dispatchEvent('drop', { dataTransfer: transfer });
    await page.getByTestId('lesson-panel').waitFor();
    expect(await page.getByTestId('lesson-panel').textContent()).toContain('Our own lesson on the split');
    await page.getByRole('button', { name: 'Close the lesson' }).click();
    await page.getByRole('tab', { name: 'Learn' }).click();
    // It stays in the list after a reload, marked as loaded from a file.
    await page.reload();
    await page.getByTestId('lesson-class-weights-again').waitFor();
    expect(await page.getByTestId('lesson-class-weights-again').textContent()).toContain(
      'loaded from a file',
    );
    expect(pageErrors).toEqual([]);
    expect(requests.foreign(app.origin)).toEqual([]);
  });
});
