/**
 * `npm run -s bench -- kernels --runtime dawn [options]`: the kernels bench (tests/bench/kernels-measure.ts) in Node,
 * on a WebGPU adapter from Dawn's Node bindings (the `webgpu` package) instead of Chromium's page, for machines
 * with a GPU but no browser. Dawn picks the Vulkan driver the loader finds: point `VK_DRIVER_FILES` (older loaders:
 * `VK_ICD_FILENAMES`) at an ICD file to choose one, e.g. Chromium's SwiftShader
 * (/usr/lib/chromium/vk_swiftshader_icd.json, with `LD_LIBRARY_PATH=/usr/lib/chromium` for its libvulkan.so.1
 * where the system has none).
 *
 * Also the entry of a self-contained build (`node kernels-dawn.mjs [options]`, esbuild with `webgpu` external):
 * then it prints the JSON itself. The weights are read from public/models/<backbone> under the working folder, or
 * under --models <folder>.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { create, globals } from 'webgpu';
import { loadWeightsFromPath } from '../../src/cli/node/weights.ts';
import { describeAdapter } from '../../src/lib/train/backend.ts';
import { measureKernels } from './kernels-measure.ts';
import { parseKernelsArgs, type KernelsOptions } from './kernels-options.ts';

// Progress goes to stderr: stdout carries the one JSON object (tfjs and the measurement log with console.info/log).
console.log = console.info = (...parts: unknown[]) => console.error(...parts);

export interface DawnAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallback: boolean;
  /** Dawn's GPUAdapterInfo as it came (the NVIDIA driver version is in its description), with the subgroup sizes. */
  dawn: Record<string, unknown>;
  vk_driver_files: string | null;
}

/** The adapter Dawn offers (high-performance first), with what the WebGPU info object tells. */
async function dawnAdapter(profile: boolean): Promise<{ adapter: GPUAdapter; info: DawnAdapterInfo }> {
  Object.assign(globalThis, globals);
  // --profile 1 reads timestamp queries, which Dawn counts among its "unsafe" APIs (as Chromium does).
  const gpu = create(profile ? ['enable-dawn-features=allow_unsafe_apis'] : []) as GPU;
  // tfjs-backend-webgpu looks for navigator.gpu; Node 20 has no navigator at all.
  if (!('navigator' in globalThis)) Object.assign(globalThis, { navigator: { gpu } });
  else Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true });
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'Dawn found no WebGPU adapter: the Vulkan loader (libvulkan.so.1) found no driver, or the driver did not start. ' +
        'Set VK_DRIVER_FILES to an ICD json (e.g. /usr/lib/chromium/vk_swiftshader_icd.json with ' +
        'LD_LIBRARY_PATH=/usr/lib/chromium for Chromium’s SwiftShader); NVIDIA’s ICD may also need libglvnd (libGLdispatch)' +
        ' and libEGL installed, and VK_LOADER_DEBUG=driver says why a driver was skipped',
    );
  }
  const raw = adapter.info as GPUAdapterInfo & Record<string, unknown>;
  const dawn: Record<string, unknown> = {};
  for (const key of [
    'vendor',
    'architecture',
    'device',
    'description',
    'subgroupMinSize',
    'subgroupMaxSize',
  ]) {
    if (raw[key] !== undefined) dawn[key] = raw[key];
  }
  return {
    adapter,
    info: {
      ...describeAdapter(adapter),
      dawn,
      vk_driver_files: process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES ?? null,
    },
  };
}

export async function benchDawn(
  options: KernelsOptions,
  models = resolve('public', 'models'),
): Promise<unknown> {
  const { adapter, info } = await dawnAdapter(options.profile > 0);
  console.error(`[bench kernels] Dawn adapter ${JSON.stringify(info)}; ${JSON.stringify(options)}`);
  const result = (await measureKernels(adapter, options, (base, backbone) =>
    loadWeightsFromPath(base, resolve(models, backbone)),
  )) as Record<string, unknown>;
  return { ...result, adapter: info, runtime: { name: 'dawn', node: process.version, package: 'webgpu' } };
}

// Run as a script (the self-contained build): parse argv, print the JSON.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--models');
  const models = at >= 0 ? args.splice(at, 2)[1] : undefined;
  const { options } = parseKernelsArgs(args);
  const result = await benchDawn(options, models === undefined ? undefined : resolve(models));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
