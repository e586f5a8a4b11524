/**
 * Learn mode: which lesson is open, at which step, which run each of its experiments produced, and the lessons a
 * teacher loaded. Progress lives in localStorage so a reload (or a closed laptop lid in a workshop) comes back to
 * the same step with the same runs; teacher lessons are kept there too, as the JSON they came in.
 */
import { BUILTIN_LESSONS } from '../lib/lessons/builtin.ts';
import {
  experimentSettings,
  LessonError,
  parseLesson,
  type Lesson,
  type LessonStep,
} from '../lib/lessons/lesson.ts';
import { dataset } from './dataset.svelte.ts';
import { nav } from './nav.svelte.ts';
import { lab } from './runs.svelte.ts';
import { defaultWeightsKind, training } from './training.svelte.ts';

const STORAGE_KEY = 'lesion-lab-lessons';

interface Saved {
  active: string | null;
  steps: Record<string, number>;
  /** lesson id → experiment id → run id */
  runs: Record<string, Record<string, string>>;
  /** Teacher lessons, as loaded (text), so they survive a reload. */
  custom: Array<{ fileName: string; text: string }>;
}

function load(): Saved {
  const empty: Saved = { active: null, steps: {}, runs: {}, custom: [] };
  try {
    const raw = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (!raw) return empty;
    const saved = JSON.parse(raw) as Partial<Saved>;
    return {
      active: typeof saved.active === 'string' ? saved.active : null,
      steps: saved.steps && typeof saved.steps === 'object' ? saved.steps : {},
      runs: saved.runs && typeof saved.runs === 'object' ? saved.runs : {},
      custom: Array.isArray(saved.custom) ? saved.custom : [],
    };
  } catch {
    // Damaged progress is dropped: the lessons themselves still work.
    return empty;
  }
}

function createLessons() {
  const saved = load();
  let customTexts = saved.custom;
  let customLessons = $state.raw<Lesson[]>(
    saved.custom.flatMap(({ fileName, text }) => {
      try {
        return [parseLesson(text, fileName)];
      } catch {
        return [];
      }
    }),
  );
  let activeId = $state<string | null>(saved.active);
  const steps = $state<Record<string, number>>(saved.steps);
  const runs = $state<Record<string, Record<string, string>>>(saved.runs);
  let error = $state<string | null>(null);
  let running = $state<string | null>(null);

  const all = $derived<Lesson[]>([
    ...BUILTIN_LESSONS,
    ...customLessons.filter((c) => !BUILTIN_LESSONS.some((b) => b.id === c.id)),
  ]);
  const active = $derived(all.find((l) => l.id === activeId) ?? null);
  const stepIndex = $derived(active ? Math.min(steps[active.id] ?? 0, active.steps.length - 1) : 0);
  const step = $derived<LessonStep | null>(active ? (active.steps[stepIndex] ?? null) : null);

  function persist() {
    const value: Saved = { active: activeId, steps: { ...steps }, runs: { ...runs }, custom: customTexts };
    try {
      globalThis.localStorage?.setItem(STORAGE_KEY, JSON.stringify(value));
    } catch {
      // A full or blocked localStorage loses progress across reloads only.
    }
  }

  function goTo(index: number) {
    if (!active) return;
    steps[active.id] = Math.max(0, Math.min(index, active.steps.length - 1));
    error = null;
    persist();
    const next = active.steps[steps[active.id]!];
    if (next?.page) nav.go(next.page);
    if (next?.compare) showComparison(active, next.compare);
  }

  function showComparison(lesson: Lesson, experimentIds: string[]) {
    const ids = experimentIds.flatMap((x) => {
      const id = runs[lesson.id]?.[x];
      return id ? [id] : [];
    });
    void lab.refresh().then(() => lab.setCompare(ids.filter((id) => lab.runs.some((r) => r.id === id))));
  }

  /** Puts the experiment's settings into the Train form and starts it; the run is remembered for the comparison. */
  async function runExperiment(experimentId: string) {
    const lesson = active;
    if (!lesson || running) return;
    const settings = experimentSettings(lesson, experimentId);
    const experiment = lesson.experiments.find((x) => x.id === experimentId)!;
    const form = training.form;
    if (settings.backbone && settings.backbone !== form.backbone) {
      form.backbone = settings.backbone;
      await training.backboneChanged();
    }
    // The lesson trains on the images the participant cached, at whatever size that was.
    form.imageSize = settings.imageSize ?? dataset.cache?.size ?? form.imageSize;
    if (settings.weights === 'none') form.weightsKind = 'none';
    else if (settings.weights === 'pretrained') {
      const kind = defaultWeightsKind(training.weightsAvailability);
      if (kind === 'tfjs-files' && training.weightsFiles.length === 0) {
        error =
          'No ImageNet weights are served or stored for this backbone: pick the weight files under ' +
          '"Pretrained weights" on the Train page, then run the experiment again.';
        nav.go('train');
        return;
      }
      form.weightsKind = kind;
    }
    if (settings.grouped !== undefined) form.grouped = settings.grouped;
    if (settings.splitSeed !== undefined) form.splitSeed = String(settings.splitSeed);
    if (settings.classWeights !== undefined) form.classWeights = settings.classWeights;
    if (settings.augment !== undefined) form.augment = settings.augment;
    if (settings.headKind !== undefined) form.headKind = settings.headKind;
    if (settings.epochs !== undefined) form.epochs = String(settings.epochs);
    if (settings.batchSize !== undefined) form.batchSize = String(settings.batchSize);
    if (settings.learningRate !== undefined) form.learningRate = String(settings.learningRate);
    if (settings.earlyStopping !== undefined) form.earlyStopping = settings.earlyStopping;
    if (settings.reduceLr !== undefined) form.reduceLr = settings.reduceLr;
    if (settings.phase2 !== undefined) {
      form.phase2 = settings.phase2 !== null;
      if (settings.phase2) {
        form.p2Blocks = String(settings.phase2.blocks);
        form.p2Epochs = String(settings.phase2.epochs);
        form.p2LearningRate = String(settings.phase2.learningRate);
      }
    }
    if (settings.backend !== undefined) form.backend = settings.backend;
    nav.go('train');
    error = null;
    running = experimentId;
    try {
      const before = training.run;
      await training.start({ name: experiment.label });
      const run = training.run;
      if (training.error) error = `The experiment did not finish: ${training.error}`;
      else if (run && run !== before && run.history.length > 0) {
        runs[lesson.id] = { ...(runs[lesson.id] ?? {}), [experimentId]: run.id };
        persist();
      } else {
        error =
          'The experiment could not start: the Train page lists what is missing next to Start (an image cache, ' +
          'weights). Fix that, then run the experiment again.';
      }
    } finally {
      running = null;
    }
  }

  return {
    get all() {
      return all;
    },
    get active() {
      return active;
    },
    get step() {
      return step;
    },
    get stepIndex() {
      return stepIndex;
    },
    get error() {
      return error;
    },
    /** The experiment running now, if a lesson started it. */
    get running() {
      return running;
    },
    /** The run an experiment of the active lesson produced, if any. */
    runOf(experimentId: string): string | null {
      return active ? (runs[active.id]?.[experimentId] ?? null) : null;
    },
    /** Whether the lesson is a teacher's (removable) rather than built in. */
    isCustom(id: string) {
      return !BUILTIN_LESSONS.some((b) => b.id === id);
    },
    open(id: string) {
      if (!all.some((l) => l.id === id)) return;
      activeId = id;
      error = null;
      persist();
      goTo(steps[id] ?? 0);
    },
    close() {
      activeId = null;
      persist();
    },
    next() {
      goTo(stepIndex + 1);
    },
    back() {
      goTo(stepIndex - 1);
    },
    /** Starts the active lesson again from its first step; its runs stay in the Runs table. */
    restart() {
      if (!active) return;
      runs[active.id] = {};
      goTo(0);
    },
    runExperiment,
    /** A teacher's lesson file (drop, file picker or `?lesson=<url>`); returns the lesson or shows why not. */
    addLesson(text: string, fileName: string): Lesson | null {
      try {
        const lesson = parseLesson(text, fileName);
        customTexts = [...customTexts.filter((c) => c.fileName !== fileName), { fileName, text }];
        customLessons = [...customLessons.filter((l) => l.id !== lesson.id), lesson];
        persist();
        error = null;
        return lesson;
      } catch (e) {
        error = e instanceof LessonError ? e.message : `${fileName}: ${String(e)}`;
        return null;
      }
    },
    removeLesson(id: string) {
      const lesson = customLessons.find((l) => l.id === id);
      if (!lesson) return;
      customLessons = customLessons.filter((l) => l.id !== id);
      customTexts = customTexts.filter((c) => {
        try {
          return parseLesson(c.text, c.fileName).id !== id;
        } catch {
          return false;
        }
      });
      if (activeId === id) activeId = null;
      persist();
    },
    /** Fetches a lesson from a URL (same origin: the page's CSP allows no other). */
    async loadLessonUrl(url: string): Promise<Lesson | null> {
      let response: Response;
      try {
        response = await fetch(url);
      } catch {
        error =
          `${url} could not be loaded. This page connects only to its own origin (its Content-Security-Policy ` +
          'keeps data on this machine): put the lesson file next to the app, or download it and drop it here.';
        return null;
      }
      if (!response.ok) {
        error = `${url} could not be loaded: HTTP ${response.status}.`;
        return null;
      }
      const name = decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || 'lesson.json');
      return this.addLesson(await response.text(), name);
    },
    dismissError() {
      error = null;
    },
  };
}

export const lessons = createLessons();
