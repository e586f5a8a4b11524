/** The lessons that ship with the app: plain JSON files next to this one, checked like a teacher's own file. */
import leakage from './builtin/leakage.json';
import imbalance from './builtin/imbalance.json';
import transfer from './builtin/transfer.json';
import results from './builtin/results.json';
import { readLesson, type Lesson } from './lesson.ts';

export const BUILTIN_LESSONS: readonly Lesson[] = [
  readLesson(leakage, 'leakage.json'),
  readLesson(imbalance, 'imbalance.json'),
  readLesson(transfer, 'transfer.json'),
  readLesson(results, 'results.json'),
];
