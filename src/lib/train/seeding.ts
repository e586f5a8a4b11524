/**
 * Everything random in a run comes from the run's seed: the head's initial weights (seeded Glorot-uniform kernels,
 * see buildHead), the shuffle and the augmentation (per-epoch streams in loop.ts), and the dropout masks here.
 *
 * tfjs's Dropout draws its mask with `randomUniform(shape, 0, 1, 'float32', seed)`, which seeds a fresh generator
 * on every call: a Dropout layer built with a fixed seed drops the same units in every batch of the same size.
 * So the loop gives each dropout layer a new seed, drawn from the epoch's stream, before every training step:
 * different masks from batch to batch, the same ones in a second run with the same seed.
 */
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../random.ts';

function leafLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((l) => (l instanceof tf.LayersModel ? leafLayers(l) : [l as tf.layers.Layer]));
}

/** The Dropout layers of a model, nested models included. */
export function dropoutLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return leafLayers(model).filter((l) => l.getClassName() === 'Dropout');
}

/**
 * Gives each layer a fresh nonzero seed (a seed of 0 or none falls back to tfjs's unseeded generator). The seed is
 * a constructor argument that tfjs keeps in a private field and reads at each call.
 */
export function reseedDropout(layers: readonly tf.layers.Layer[], random: Random): void {
  for (const layer of layers) (layer as unknown as { seed: number }).seed = 1 + random.int(0x7ffffffe);
}

type Initializer = ReturnType<typeof tf.initializers.glorotUniform>;

/** Kernels and the initialiser each was drawn from, by tfjs's field names (conv, depthwise, separable, dense). */
const RANDOM_KERNELS = [
  ['kernel', 'kernelInitializer'],
  ['depthwiseKernel', 'depthwiseInitializer'],
  ['pointwiseKernel', 'pointwiseInitializer'],
] as const;

/**
 * Draws every randomly initialised kernel of `model` again, from its own initialiser seeded from `seed` (one seed
 * per kernel, in layer order): a base trained from random weights starts the same way in every run with that seed.
 * Biases and BatchNormalization start from constants and are left as they are. Returns how many kernels were drawn.
 */
export function seedInitialWeights(model: tf.LayersModel, seed: number): number {
  let k = 0;
  for (const layer of leafLayers(model)) {
    const fields = layer as unknown as Record<string, unknown>;
    for (const [kernelField, initField] of RANDOM_KERNELS) {
      const kernel = fields[kernelField] as tf.LayerVariable | null | undefined;
      const init = fields[initField] as Initializer | undefined;
      if (!kernel || !init || typeof init.apply !== 'function') continue;
      const config = (init as unknown as { getConfig(): Record<string, unknown> }).getConfig();
      if (!('seed' in config)) continue; // a constant initialiser: nothing random to seed
      const Seeded = init.constructor as new (args: Record<string, unknown>) => Initializer;
      const seeded = new Seeded({ ...config, seed: ((seed >>> 0) + 1000 + k++) % 0x7fffffff || 1 });
      tf.tidy(() => {
        kernel.write(seeded.apply(kernel.shape, 'float32'));
      });
    }
  }
  return k;
}
