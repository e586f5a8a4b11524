/**
 * Class weights 'balanced', as scikit-learn's compute_class_weight: w_c = n_samples / (n_classes × n_c).
 * Each class then contributes the same total weight (n_samples / n_classes) to the loss, and the weights average
 * to 1 over the samples, so the learning rate keeps its meaning.
 */
import { DX, type Dx } from '../data/dx.ts';
import type { Split } from './split.ts';

export class ClassWeightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClassWeightError';
  }
}

export interface ClassWeightOptions {
  /**
   * A class with no training image. 'error' (default, as scikit-learn) refuses and names the classes.
   * 'zero' gives it weight 0 and leaves it out of n_classes, so the present classes keep weights that average
   * to 1 over the samples; the weight of an absent class is never used by the loss anyway.
   */
  absent?: 'error' | 'zero';
}

/**
 * Balanced weights from per-class sample counts, in the order of `counts`; `names` label the classes in errors.
 *   w_c = n_samples / (n_classes × n_c)
 */
export function balancedWeights(
  counts: readonly number[],
  names: readonly string[] = counts.map((_, i) => String(i)),
  options: ClassWeightOptions = {},
): number[] {
  counts.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 0) {
      throw new ClassWeightError(`class ${names[i] ?? i}: count ${n} is not a non-negative integer`);
    }
  });
  const absent = counts.flatMap((n, i) => (n === 0 ? [names[i] ?? String(i)] : []));
  const nSamples = counts.reduce((a, b) => a + b, 0);
  if (nSamples === 0) throw new ClassWeightError('no training samples: class weights are undefined');
  if (absent.length > 0 && (options.absent ?? 'error') === 'error') {
    throw new ClassWeightError(
      `no training images of ${absent.join(', ')}: 'balanced' class weights are undefined for a class absent ` +
        `from the train split (change the split, or give absent classes weight 0)`,
    );
  }
  const nClasses = counts.length - absent.length;
  return counts.map((n) => (n === 0 ? 0 : nSamples / (nClasses * n)));
}

/** Balanced weights per dx from per-dx counts. */
export function balancedClassWeights(
  counts: Readonly<Record<Dx, number>>,
  options: ClassWeightOptions = {},
): Record<Dx, number> {
  const weights = balancedWeights(
    DX.map((dx) => counts[dx]),
    DX,
    options,
  );
  return Object.fromEntries(DX.map((dx, i) => [dx, weights[i]])) as Record<Dx, number>;
}

/** Balanced weights from the train column of a split's table. */
export function trainClassWeights(
  split: Pick<Split, 'table'>,
  options: ClassWeightOptions = {},
): Record<Dx, number> {
  return balancedClassWeights(
    Object.fromEntries(DX.map((dx) => [dx, split.table[dx].train])) as Record<Dx, number>,
    options,
  );
}

/** The `classWeight` argument of tfjs `model.fit`: {class index in DX order: weight}. */
export function toTfClassWeight(weights: Readonly<Record<Dx, number>>): Record<number, number> {
  const result: Record<number, number> = {};
  DX.forEach((dx, i) => {
    result[i] = weights[dx];
  });
  return result;
}
