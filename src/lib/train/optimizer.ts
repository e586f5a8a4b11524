/**
 * Adam with Keras's update rule and defaults (beta1 0.9, beta2 0.999, epsilon 1e-7), written out so the loop owns
 * the learning rate (ReduceLROnPlateau changes it between epochs, keeping the moments, as Keras does) and the state
 * can be read back and restored on another backend after a WebGPU device loss. Keras's form puts epsilon outside the
 * bias correction (tfjs's `tf.train.adam` puts it inside); this follows Keras:
 *
 *   t = iterations + 1; alpha = lr · √(1 − β2^t) / (1 − β1^t)
 *   m ← m + (g − m)(1 − β1); v ← v + (g² − v)(1 − β2); θ ← θ − alpha · m / (√v + ε)
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamOptions {
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** Moments of one variable, read back to the CPU. */
export interface AdamSlotState {
  m: Float32Array;
  v: Float32Array;
}

export interface AdamState {
  learningRate: number;
  iterations: number;
  /** Per variable, in the order of the variable list the optimizer was applied to; null if never updated. */
  slots: Array<AdamSlotState | null>;
}

export class Adam {
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  iterations = 0;
  private slots = new Map<tf.Variable, { m: tf.Variable; v: tf.Variable }>();

  constructor(options: AdamOptions = {}) {
    this.learningRate = options.learningRate ?? 1e-3;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-7;
  }

  private slot(variable: tf.Variable): { m: tf.Variable; v: tf.Variable } {
    let slot = this.slots.get(variable);
    if (!slot) {
      slot = tf.tidy(() => ({
        m: tf.variable(tf.zerosLike(variable), false),
        v: tf.variable(tf.zerosLike(variable), false),
      }));
      this.slots.set(variable, slot);
    }
    return slot;
  }

  /** Creates the moments of `variables` now (zeros), so the first step allocates nothing that stays. */
  init(variables: readonly tf.Variable[]): void {
    for (const variable of variables) this.slot(variable);
  }

  /** One update of `variables` with their `grads` (keyed by variable name, as tf.variableGrads returns them). */
  applyGradients(variables: readonly tf.Variable[], grads: tf.NamedTensorMap): void {
    const t = this.iterations + 1;
    const alpha = (this.learningRate * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    for (const variable of variables) {
      const g = grads[variable.name];
      if (!g) continue;
      const { m, v } = this.slot(variable);
      tf.tidy(() => {
        const mNew = tf.add(m, tf.mul(tf.sub(g, m), 1 - this.beta1));
        const vNew = tf.add(v, tf.mul(tf.sub(tf.square(g), v), 1 - this.beta2));
        m.assign(mNew);
        v.assign(vNew);
        variable.assign(tf.sub(variable, tf.div(tf.mul(mNew, alpha), tf.add(tf.sqrt(vNew), this.epsilon))));
      });
    }
    this.iterations = t;
  }

  /** Reads the moments back (asynchronously) for the variables in `variables`' order. */
  async getState(variables: readonly tf.Variable[]): Promise<AdamState> {
    const slots = await Promise.all(
      variables.map(async (variable) => {
        const slot = this.slots.get(variable);
        if (!slot) return null;
        const [m, v] = await Promise.all([slot.m.data(), slot.v.data()]);
        return { m: Float32Array.from(m), v: Float32Array.from(v) };
      }),
    );
    return { learningRate: this.learningRate, iterations: this.iterations, slots };
  }

  /** Puts moments saved by getState back, for `variables` in the same order (possibly on another backend). */
  setState(variables: readonly tf.Variable[], state: AdamState): void {
    if (state.slots.length !== variables.length) {
      throw new RangeError(`Adam state has ${state.slots.length} slots for ${variables.length} variables`);
    }
    this.disposeSlots();
    this.learningRate = state.learningRate;
    this.iterations = state.iterations;
    variables.forEach((variable, i) => {
      const saved = state.slots[i];
      if (!saved) return;
      this.slots.set(
        variable,
        tf.tidy(() => ({
          m: tf.variable(tf.tensor(saved.m, variable.shape), false),
          v: tf.variable(tf.tensor(saved.v, variable.shape), false),
        })),
      );
    });
  }

  private disposeSlots(): void {
    for (const { m, v } of this.slots.values()) {
      m.dispose();
      v.dispose();
    }
    this.slots.clear();
  }

  dispose(): void {
    this.disposeSlots();
  }
}
