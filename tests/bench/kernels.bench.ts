/**
 * `npm run -s bench -- kernels [--size 224] [--batch 16] [--blocks 2] [--steps 4] [--reps 4] [--profile 0|1]
 *   [--runtime chromium|dawn]`
 *
 * tfjs-backend-webgpu's weight-gradient kernels against ours (src/lib/webgpu/weight-gradients.ts) on the WebGPU
 * adapter of headless /usr/bin/chromium (`--enable-unsafe-webgpu`; here that is SwiftShader, a software adapter),
 * in one page and one run, interleaved (stock first on even rounds, ours first on odd ones). The page (tests/bench/kernels-harness.ts, served by Vite's dev server on
 * http://localhost) measures, for MobileNetV2 α 0.35 with the served ImageNet weights and the top `--blocks` blocks
 * unfrozen (the Train page's default is 2), at `--size` px and batch `--batch`:
 *
 *   adapter              the WebGPU adapter (vendor, architecture, device, description, isFallback)
 *   kernels.<call>       each weight-gradient call of the step at its real shape: stock_ms, ours_ms (median of
 *                        --reps calls, read back), max_relative_error (ours vs the CPU backend, max |Δ| / max |cpu|),
 *                        stock_max_relative_error (tfjs's, the same way)
 *   max_relative_error   the largest of ours over all calls
 *   step                 a whole phase-2 training step (forward through the base, backward through the unfrozen
 *                        blocks, Adam): stock_ms, ours_ms (medians of --steps), ratio = ours / stock, every step
 *   setup                what was run
 *
 * --runtime dawn runs the same measurement in Node on Dawn's Node bindings (tests/bench/kernels-dawn.ts: a GPU
 * without a browser); its adapter entry adds Dawn's report and the Vulkan driver file used.
 *
 * Prints one JSON object on stdout; progress on stderr.
 */
import { openBenchPage } from '../helpers/bench-page.ts';
import { parseKernelsArgs, type KernelsOptions } from './kernels-options.ts';

const log = (message: string): void => void process.stderr.write(`[bench kernels] ${message}\n`);

export async function bench(args: string[]): Promise<unknown> {
  const { options, runtime } = parseKernelsArgs(args);
  if (runtime === 'dawn') {
    // Loaded only here: the `webgpu` package's native Dawn module is not needed for the Chromium runtime.
    const { benchDawn } = await import('./kernels-dawn.ts');
    return benchDawn(options);
  }
  const { page, origin, close } = await openBenchPage({
    html: 'tests/bench/kernels-harness.html',
    ready: 'benchKernels',
    include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'],
    // Timestamp queries (for --profile 1) are an "unsafe" Dawn API.
    extraArgs: options.profile ? ['--enable-dawn-features=allow_unsafe_apis'] : [],
    log,
  });
  try {
    log(`harness ready at ${origin}: ${JSON.stringify(options)}`);
    return await page.evaluate(
      (o) =>
        (
          globalThis as unknown as { benchKernels: { run(o: KernelsOptions): Promise<unknown> } }
        ).benchKernels.run(o),
      options,
    );
  } finally {
    await close();
  }
}
