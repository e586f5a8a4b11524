/**
 * Names for new runs. Every run of the same settings used to be called "MobileNetV2 α=0.35 224 px, lesion-grouped
 * split", so the Runs table and the compare checkboxes could not tell them apart. A name now says the settings that
 * usually differ between runs (size, epochs, weights, class weights, augmentation, split, phase 2) and when it
 * started; a name already taken gets a counter. Names can be changed on the Runs page (`renameRun`).
 */

export interface RunNameParts {
  /** The backbone's label, e.g. "MobileNetV2 α=0.35". */
  model: string;
  inputSize: number;
  epochs: number;
  /** Phase 2 epochs, or null without phase 2. */
  phase2Epochs: number | null;
  /** Where the base's weights came from, in a few words ("served weights", "random init"…). */
  weights: string;
  classWeights: boolean;
  augment: boolean;
  grouped: boolean;
  created: Date;
}

export const MAX_RUN_NAME_LENGTH = 120;

const two = (n: number) => String(n).padStart(2, '0');

/** Local date and time to the minute, `2025-11-29 15:42`, the same in every locale. */
export function runTimestamp(date: Date): string {
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}`
  );
}

/** A name for a new run, distinct from every name in `taken` (a counter is added when needed). */
export function runName(parts: RunNameParts, taken: readonly string[] = []): string {
  const epochs =
    parts.phase2Epochs === null ? `${parts.epochs} ep` : `${parts.epochs}+${parts.phase2Epochs} ep`;
  const base = [
    `${parts.model} ${parts.inputSize} px`,
    epochs,
    parts.weights,
    parts.classWeights ? 'class weights' : 'no class weights',
    ...(parts.augment ? ['augmented'] : []),
    parts.grouped ? 'grouped split' : 'LEAKY split',
    runTimestamp(parts.created),
  ].join(' · ');
  return distinctName(base, taken);
}

/** A date as runTimestamp writes it (names made by runName end with one). */
const DATED = /\b\d{4}-\d{2}-\d{2}\b/;

/**
 * How a run picker lists a run: its name, when it started and its status, `MobileNetV2 … · 2025-11-29 15:42
 * (early-stop)`. A name that carries a date already (every name runName makes) is not followed by a second one;
 * a name typed without a date gets the start time in the reader's locale, from `formatDate`.
 */
export function runLabel(
  run: { name: string; created: string; status: string },
  formatDate: (date: Date) => string = (date) => date.toLocaleString(),
): string {
  const when = DATED.test(run.name) ? '' : ` — ${formatDate(new Date(run.created))}`;
  return `${run.name}${when} (${run.status})`;
}

/** `base`, or `base #2`, `#3`… — the first not in `taken`. */
export function distinctName(base: string, taken: readonly string[]): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let n = 2; ; n++) {
    const name = `${base} #${n}`;
    if (!used.has(name)) return name;
  }
}

export class RunNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunNameError';
  }
}

/** A name typed by the user, trimmed; throws RunNameError saying what is wrong (empty, too long, taken). */
export function checkRunName(name: string, others: readonly string[]): string {
  const trimmed = name.replace(/\s+/g, ' ').trim();
  if (trimmed === '') throw new RunNameError('Enter a name.');
  if (trimmed.length > MAX_RUN_NAME_LENGTH)
    throw new RunNameError(`Use at most ${MAX_RUN_NAME_LENGTH} characters (this one has ${trimmed.length}).`);
  if (others.includes(trimmed)) throw new RunNameError(`Another run is already named "${trimmed}".`);
  return trimmed;
}
