/** The options of `npm run -s bench -- kernels` (tests/bench/kernels.bench.ts), without tf: parsed in Node. */

export interface KernelsOptions {
  size: number;
  batch: number;
  blocks: number;
  /** Timed steps per mode (after one warm-up step each). */
  steps: number;
  /** Timed calls per kernel and mode (after one warm-up call each). */
  reps: number;
  /** Also profile one step per mode (tf.profile; needs the adapter's timestamp queries). */
  profile: number;
  /**
   * Also time the app's frozen-base feature extraction (extractFeatureBatches, the Train page's batches of 32,
   * pooled, read back) over this many images at the input size; 0 skips it.
   */
  features: number;
}

/** Where the WebGPU adapter comes from: headless Chromium's page, or Dawn's Node bindings (the `webgpu` package). */
export type KernelsRuntime = 'chromium' | 'dawn';

export function parseKernelsArgs(args: string[]): { options: KernelsOptions; runtime: KernelsRuntime } {
  const options: KernelsOptions = {
    size: 224,
    batch: 16,
    blocks: 2,
    steps: 4,
    reps: 4,
    profile: 0,
    features: 0,
  };
  let runtime: KernelsRuntime = 'chromium';
  for (let i = 0; i < args.length; i++) {
    const flag = args[i] ?? '';
    const text = args[++i];
    if (flag === '--runtime') {
      if (text !== 'chromium' && text !== 'dawn') throw new Error('--runtime must be chromium or dawn');
      runtime = text;
      continue;
    }
    const name = flag.replace(/^--/, '') as keyof KernelsOptions;
    if (!(name in options)) throw new Error(`unknown argument ${flag}`);
    const value = Number(text);
    const optional = name === 'profile' || name === 'features';
    if (!Number.isInteger(value) || value < (optional ? 0 : 1))
      throw new Error(`--${name} needs a whole number ≥ ${optional ? 0 : 1}`);
    options[name] = value;
  }
  return { options, runtime };
}
