import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_LESSONS } from '../../src/lib/lessons/builtin.ts';
import {
  experimentSettings,
  LESSON_TARGETS,
  LessonError,
  parseLesson,
  type Lesson,
} from '../../src/lib/lessons/lesson.ts';

const builtinDir = join(import.meta.dirname, '..', '..', 'src', 'lib', 'lessons', 'builtin');

function leakageJson(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(builtinDir, 'leakage.json'), 'utf8')) as Record<string, unknown>;
}

function refusal(edit: (lesson: Record<string, unknown>) => void): string {
  const lesson = leakageJson();
  edit(lesson);
  try {
    parseLesson(JSON.stringify(lesson), 'mine.json');
  } catch (error) {
    expect(error).toBeInstanceOf(LessonError);
    return (error as Error).message;
  }
  throw new Error('the lesson was accepted');
}

const steps = (l: Record<string, unknown>) => l.steps as Array<Record<string, unknown>>;
const experiments = (l: Record<string, unknown>) => l.experiments as Array<Record<string, unknown>>;

describe('built-in lessons', () => {
  it('are the four lessons of the workshop, each ending with a comparison of its experiments', () => {
    expect(BUILTIN_LESSONS.map((l) => l.id)).toEqual(['leakage', 'imbalance', 'transfer', 'results']);
    for (const lesson of BUILTIN_LESSONS) {
      const last = lesson.steps.at(-1)!;
      expect(last.page, lesson.id).toBe('runs');
      expect(last.compare, lesson.id).toEqual(
        expect.arrayContaining(lesson.steps.flatMap((s) => (s.experiment ? [s.experiment] : []))),
      );
    }
  });

  it('run the experiments each lesson is about', () => {
    const byId = new Map<string, Lesson>(BUILTIN_LESSONS.map((l) => [l.id, l]));
    const leak = byId.get('leakage')!;
    expect(experimentSettings(leak, 'leaky').grouped).toBe(false);
    expect(experimentSettings(leak, 'grouped').grouped).toBe(true);
    const { grouped: _a, ...leakyRest } = experimentSettings(leak, 'leaky');
    const { grouped: _b, ...groupedRest } = experimentSettings(leak, 'grouped');
    // Only the split differs between the two runs.
    expect(leakyRest).toEqual(groupedRest);
    const imbalance = byId.get('imbalance')!;
    expect(experimentSettings(imbalance, 'unweighted').classWeights).toBe(false);
    expect(experimentSettings(imbalance, 'weighted').classWeights).toBe(true);
    const transfer = byId.get('transfer')!;
    expect(experimentSettings(transfer, 'random').weights).toBe('none');
    expect(experimentSettings(transfer, 'imagenet').weights).toBe('pretrained');
    expect(experimentSettings(transfer, 'finetune').phase2).toEqual({
      blocks: 1,
      epochs: 1,
      learningRate: 1e-5,
    });
  });

  it('point only at parts of the app that exist: every target is marked in a component', () => {
    const components = join(import.meta.dirname, '..', '..', 'src', 'components');
    const marked = new Set<string>();
    for (const entry of readdirSync(components, { recursive: true, encoding: 'utf8' })) {
      if (!entry.endsWith('.svelte')) continue;
      const text = readFileSync(join(components, entry), 'utf8');
      for (const m of text.matchAll(/data-lesson-target="([a-z0-9-]+)"/g)) marked.add(m[1]!);
    }
    expect([...marked].sort()).toEqual([...LESSON_TARGETS].sort());
  });

  it('a lesson file round-trips through parseLesson', () => {
    const text = readFileSync(join(builtinDir, 'leakage.json'), 'utf8');
    expect(parseLesson(`\uFEFF${text}`, 'leakage.json')).toEqual(BUILTIN_LESSONS[0]);
  });
});

describe('a teacher’s lesson file is refused with the place at fault', () => {
  it('not JSON', () => {
    expect(() => parseLesson('{"format": ', 'mine.json')).toThrow(/^mine\.json: is not valid JSON \(/);
  });

  it('a binary file (a zip, a JPEG) is not a lesson file, said without quoting its bytes', () => {
    // As File.text() reads it: UTF-8, invalid bytes as U+FFFD.
    const asText = (path: string) => new TextDecoder().decode(readFileSync(path));
    const zip = asText(join(import.meta.dirname, '..', '..', 'public', 'samples', 'ham10000-sample.zip'));
    const jpeg = asText(
      join(
        import.meta.dirname,
        '..',
        '..',
        '..',
        'shared',
        'data',
        'ham10000',
        'all-200x150',
        'ISIC_0024306.jpg',
      ),
    );
    const expected = (name: string) =>
      `${name} is not a lesson file: it holds binary data, not text. A lesson is a .json text file (the format is ` +
      'in the README, “Writing a lesson”); the built-in lessons on the Learn page are examples';
    // The whole pack is over the size limit; a piece of it, and a JPEG, are not.
    for (const [name, text] of [
      ['ham10000-sample.zip', zip],
      ['random.zip', zip.slice(500, 8000)],
      ['ISIC_0024306.jpg', jpeg],
    ] as const) {
      let error: unknown = null;
      try {
        parseLesson(text, name);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LessonError);
      expect((error as LessonError).message).toBe(expected(name));
    }
    // Text that is broken JSON keeps the parser's words, accented text included.
    expect(() => parseLesson('{"title": "Leçon", ', 'leçon.json')).toThrow(
      /^leçon\.json: is not valid JSON \(/,
    );
  });

  it('another kind of JSON file', () => {
    expect(() => parseLesson('{"modelTopology": {}}', 'model.json')).toThrow(
      'model.json: modelTopology: is not a known field (known: format, version, id, title, summary, base, experiments, steps)',
    );
    expect(() => parseLesson('[]', 'list.json')).toThrow('list.json: must be an object, not a list');
  });

  it('a newer version', () => {
    expect(refusal((l) => (l.version = 2))).toBe(
      'mine.json: version: 2 is not supported; this app reads version 1',
    );
  });

  it('a target the app does not have', () => {
    expect(refusal((l) => (steps(l)[2]!.target = 'start-button'))).toMatch(
      /^mine\.json: steps\[2\]\.target: "start-button" is not one of sample-button, drop-zone, /,
    );
  });

  it('a comparison of an experiment the lesson does not define', () => {
    expect(refusal((l) => (steps(l)[4]!.compare = ['leaky', 'grouped-split']))).toBe(
      'mine.json: steps[4].compare[1]: names no experiment of this lesson (leaky, grouped)',
    );
  });

  it('a misspelt setting is not ignored', () => {
    expect(refusal((l) => (experiments(l)[0]!.settings = { groupd: false }))).toMatch(
      /^mine\.json: experiments\[0\]\.settings\.groupd: is not a known field \(known: backbone, imageSize, /,
    );
  });

  it('settings out of range or of the wrong type', () => {
    expect(refusal((l) => (experiments(l)[0]!.settings = { epochs: 0 }))).toBe(
      'mine.json: experiments[0].settings.epochs: must be between 1 and 1000',
    );
    expect(refusal((l) => (experiments(l)[0]!.settings = { grouped: 'no' }))).toBe(
      'mine.json: experiments[0].settings.grouped: must be true or false, not "no"',
    );
    expect(refusal((l) => (l.base = { imageSize: 100 }))).toBe(
      'mine.json: base.imageSize: 100 is not one of 96, 128, 160, 192, 224',
    );
  });

  it('an experiment id used twice', () => {
    expect(refusal((l) => (experiments(l)[1]!.id = 'leaky'))).toBe(
      'mine.json: experiments[1].id: "leaky" is used twice',
    );
  });

  it('no steps', () => {
    expect(refusal((l) => (l.steps = []))).toBe('mine.json: steps: must hold at least one step');
  });
});
