/**
 * Which tfjs backend trains, and why.
 *
 * The decision is pure (`chooseBackend`): it reads a probe of what the browser offers and the kind of work.
 * - A WebGPU adapter that is real hardware: WebGPU for everything.
 * - Only a fallback adapter (`isFallbackAdapter`, i.e. SwiftShader, a CPU emulating a GPU): WASM for frozen-base work
 *   (feature extraction, head training, frozen-base training with augmentation — measured 20-100× faster than
 *   SwiftShader here); for fine-tuning conv layers WASM too when it has conv gradient kernels (tfjs-backend-wasm
 *   4.22 has none; the train worker registers ours, conv-gradients.ts), else WebGL, then CPU. Kernels are checked
 *   with `tf.getKernel`, not assumed.
 * - No WebGPU: WebGL on a hardware renderer, else WASM (frozen base) / WebGL-software, CPU (fine-tuning).
 * The user can override; an override the browser cannot honour is refused with the reason.
 *
 * WebGPU is set up here from an adapter the caller requested (the worker passes `navigator.gpu`), so the training
 * code holds the GPUDevice and learns of its loss (`device.lost`): see `registerWebGPU`.
 */
import * as tf from '@tensorflow/tfjs';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { AdapterDescription, BackendLog, BackendName } from './logs.ts';

export type { AdapterDescription, BackendName } from './logs.ts';
export { BACKEND_NAMES } from './backend-names.ts';
import { isSoftwareRenderer } from './backend-names.ts';

/** 'frozen-base': no gradient reaches a conv layer. 'fine-tune': conv (incl. depthwise) layers are trained. */
export type Workload = 'frozen-base' | 'fine-tune';

/** Kernels a backend must have for each kind of work, beyond the forward pass. */
export const REQUIRED_KERNELS: Readonly<Record<Workload, readonly string[]>> = {
  'frozen-base': [],
  'fine-tune': [
    'Conv2DBackpropFilter',
    'Conv2DBackpropInput',
    'DepthwiseConv2dNativeBackpropFilter',
    'DepthwiseConv2dNativeBackpropInput',
  ],
};

export interface WebGLProbe {
  /** UNMASKED_RENDERER_WEBGL when the browser tells, else the plain RENDERER string. */
  renderer: string;
  /** A software rasteriser (SwiftShader, llvmpipe, …). */
  software: boolean;
}

export interface BackendProbe {
  /** The WebGPU adapter, null when the browser has none. */
  webgpu: AdapterDescription | null;
  /** A WebGL2 context could be made (in the worker: on an OffscreenCanvas). */
  webgl: WebGLProbe | null;
  /** WebAssembly is available (the WASM backend loads). */
  wasm: boolean;
}

export interface BackendChoice {
  backend: BackendName;
  /** The next ones to try, in order, if this one fails to start or loses its device. */
  fallbacks: BackendName[];
  reason: string;
  adapter: AdapterDescription | null;
}

export { isSoftwareRenderer };

/** Kernels of `names` that `backend` does not register (tf.getKernel looks at the registry, no init needed). */
export function missingKernels(backend: BackendName, names: readonly string[]): string[] {
  return names.filter((name) => tf.getKernel(name, backend) === undefined);
}

export interface ChooseOptions {
  /** The user's choice; 'auto' or undefined lets the probe decide. */
  override?: BackendName | 'auto';
  /** For tests: which kernels a backend lacks (default: tf.getKernel). */
  missing?: (backend: BackendName, names: readonly string[]) => string[];
}

export class BackendUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}

function adapterText(adapter: AdapterDescription): string {
  const name = [adapter.vendor, adapter.architecture, adapter.device, adapter.description]
    .filter((s) => s !== '')
    .join(' ');
  return name === '' ? 'unnamed adapter' : name;
}

/**
 * What `backend` runs on, from the probe, for the backend line: the WebGPU adapter (only for webgpu), the WebGL
 * renderer, or for WASM and CPU the plain kind (the worker adds WASM's threads and SIMD, which only it knows).
 */
export function describeDevice(backend: BackendName, probe: BackendProbe): string {
  switch (backend) {
    case 'webgpu':
      return probe.webgpu
        ? `adapter ${adapterText(probe.webgpu)}${probe.webgpu.isFallback ? ' (software fallback)' : ''}`
        : 'no adapter';
    case 'webgl':
      return probe.webgl
        ? `renderer ${probe.webgl.renderer}${probe.webgl.software ? ' (software)' : ''}`
        : 'no WebGL2 context';
    case 'wasm':
      return 'WebAssembly on the CPU';
    case 'cpu':
      return 'plain JavaScript on the CPU';
  }
}

/** Whether `backend` can run `workload` at all given the probe, and if not, why. */
export function unavailableBecause(
  backend: BackendName,
  probe: BackendProbe,
  workload: Workload,
  missing: (backend: BackendName, names: readonly string[]) => string[] = missingKernels,
): string | null {
  if (backend === 'webgpu' && probe.webgpu === null) return 'this browser offers no WebGPU adapter';
  if (backend === 'webgl' && probe.webgl === null) return 'this browser cannot create a WebGL2 context';
  if (backend === 'wasm' && !probe.wasm) return 'WebAssembly is not available';
  const lacking = missing(backend, REQUIRED_KERNELS[workload]);
  if (lacking.length > 0)
    return `the ${backend} backend has no ${lacking.join(', ')} kernel (needed to train conv layers)`;
  return null;
}

/** Picks the backend for `workload`; see the module comment for the rules. */
export function chooseBackend(
  probe: BackendProbe,
  workload: Workload,
  options: ChooseOptions = {},
): BackendChoice {
  const missing = options.missing ?? missingKernels;
  const usable = (b: BackendName): boolean => unavailableBecause(b, probe, workload, missing) === null;
  const gpu = probe.webgpu;
  let order: BackendName[];
  let reason: string;
  const webglHardware = probe.webgl !== null && !probe.webgl.software;
  if (gpu !== null && !gpu.isFallback) {
    order = ['webgpu', webglHardware ? 'webgl' : 'wasm', webglHardware ? 'wasm' : 'webgl', 'cpu'];
    reason = `WebGPU on ${adapterText(gpu)}`;
  } else {
    const why =
      gpu !== null
        ? `the only WebGPU adapter is a software fallback (${adapterText(gpu)})`
        : 'this browser offers no WebGPU adapter';
    if (workload === 'frozen-base') {
      order = webglHardware ? ['webgl', 'wasm', 'cpu', 'webgpu'] : ['wasm', 'webgl', 'cpu', 'webgpu'];
      reason = webglHardware
        ? `${why}; WebGL runs on a hardware renderer (${probe.webgl?.renderer})`
        : `${why}; WASM is the fastest for a frozen base here`;
    } else {
      order = webglHardware ? ['webgl', 'wasm', 'cpu', 'webgpu'] : ['wasm', 'webgl', 'cpu', 'webgpu'];
      reason = `${why}; fine-tuning conv layers`;
    }
  }
  const candidates = order.filter(usable);
  if (options.override && options.override !== 'auto') {
    const why = unavailableBecause(options.override, probe, workload, missing);
    if (why !== null) throw new BackendUnavailableError(`cannot train on ${options.override}: ${why}`);
    return {
      backend: options.override,
      fallbacks: candidates.filter((b) => b !== options.override),
      reason:
        candidates[0] === options.override
          ? `chosen by the user, also the default (${reason})`
          : `chosen by the user; the default would be ${candidates[0] ?? 'none'} (${reason})`,
      adapter: gpu,
    };
  }
  const [backend, ...fallbacks] = candidates;
  if (backend === undefined) throw new BackendUnavailableError(`no backend can run ${workload} training`);
  const skipped = order.filter((b) => !usable(b) && order.indexOf(b) < order.indexOf(backend));
  const skippedText = skipped
    .map((b) => `${b} skipped: ${unavailableBecause(b, probe, workload, missing)}`)
    .join('; ');
  return { backend, fallbacks, reason: skippedText ? `${reason}; ${skippedText}` : reason, adapter: gpu };
}

/** The backend to move to after `lost` failed (device loss): the first fallback, never `lost` again. */
export function nextBackend(choice: BackendChoice, lost: BackendName): BackendChoice {
  const fallbacks = choice.fallbacks.filter((b) => b !== lost);
  const [backend, ...rest] = fallbacks;
  if (backend === undefined)
    throw new BackendUnavailableError(`no backend left to continue on after ${lost} failed`);
  return {
    backend,
    fallbacks: rest,
    reason: `${lost} failed; continuing on ${backend}`,
    adapter: choice.adapter,
  };
}

/** What a GPUAdapter says about itself (Chrome ≥ 121 `adapter.info`; older ones `isFallbackAdapter` on the adapter). */
export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const fallback =
    (info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)?.isFallbackAdapter ??
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    false;
  const text = [info?.vendor, info?.architecture, info?.device, info?.description].join(' ');
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    // Some builds do not flag SwiftShader as a fallback: its name gives it away.
    isFallback: fallback || /swiftshader/i.test(text),
  };
}

/** Why and when a WebGPU device went away. */
export interface DeviceLoss {
  reason: string;
  message: string;
}

/**
 * Watches for the loss of the training device. The worker arms it with the GPUDevice's `lost` promise; tests (and
 * the worker's "simulate" command) call `lose()` directly. The loop checks `lost` between steps and treats any error
 * raised while the device is lost as the loss.
 */
export class DeviceWatch {
  lost: DeviceLoss | null = null;
  private listeners = new Set<(loss: DeviceLoss) => void>();

  watch(device: GPUDevice): void {
    void device.lost.then((info) => this.lose({ reason: String(info.reason), message: info.message }));
  }

  lose(loss: DeviceLoss): void {
    if (this.lost) return;
    this.lost = loss;
    for (const listener of this.listeners) listener(loss);
  }

  onLost(listener: (loss: DeviceLoss) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-arms for a new device (after recovery on another backend nothing is watched until `watch` is called). */
  reset(): void {
    this.lost = null;
  }
}

export interface WebGPUSetup {
  adapter: AdapterDescription;
  device: GPUDevice;
}

/**
 * Registers tfjs's 'webgpu' backend on a device of `adapter` created here, with the limits tfjs asks for, so the
 * caller holds the device (to watch `device.lost`). Replaces tfjs's own registration, which requests its adapter
 * privately. Call before `tf.setBackend('webgpu')`.
 */
export async function registerWebGPU(adapter: GPUAdapter, watch?: DeviceWatch): Promise<WebGPUSetup> {
  const limits = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  watch?.watch(device);
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  // The tfjs type asks for its own GPUAdapterInfo shape; the browser object is what it reads at run time.
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, info as never), 3);
  return { adapter: describeAdapter(adapter), device };
}

/**
 * Makes `backend` the active one and checks it works (a tiny op read back). Throws BackendUnavailableError with
 * tfjs's reason when it does not start. WASM needs `setWasmPaths` to have been called where its files are not next
 * to the bundle.
 */
export async function activateBackend(backend: BackendName): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(backend);
  } catch (error) {
    throw new BackendUnavailableError(`the ${backend} backend failed to start: ${String(error)}`);
  }
  if (!ok || tf.getBackend() !== backend) {
    throw new BackendUnavailableError(
      `the ${backend} backend failed to start (see the console for tfjs's reason)`,
    );
  }
  const probe = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)));
  try {
    const [value] = await probe.data();
    if (value !== 2) throw new BackendUnavailableError(`the ${backend} backend computes 1 + 1 = ${value}`);
  } finally {
    probe.dispose();
  }
}

export interface BackendManagerOptions {
  override?: BackendName | 'auto';
  /** Runs before a backend is first activated (the worker registers WebGPU on its own device here). */
  prepare?: (backend: BackendName) => Promise<void>;
  /** Makes a backend active; default `activateBackend`. */
  activate?: (backend: BackendName) => Promise<void>;
  /** What the active backend runs on, for the log; default `describeDevice`. Called after activation. */
  describe?: (backend: BackendName, probe: BackendProbe) => string | Promise<string>;
}

/**
 * Chooses and starts backends for a run: the probe's choice for each kind of work, the fallbacks when one fails to
 * start, and never again a backend whose device was lost.
 */
export class BackendManager {
  private readonly lost = new Set<BackendName>();
  private readonly prepared = new Set<BackendName>();
  current: BackendName | null = null;

  constructor(
    readonly probe: BackendProbe,
    private readonly options: BackendManagerOptions = {},
  ) {}

  markLost(backend: BackendName): void {
    this.lost.add(backend);
  }

  /**
   * Throws BackendUnavailableError, with the reason, when no backend the user allows can run `workload` (e.g. a
   * WASM override with phase 2 on): called before training, so a run does not fail after phase 1.
   */
  check(workload: Workload): void {
    chooseBackend(this.probe, workload, { override: this.options.override });
  }

  /** Chooses for `workload`, activates it (falling back on failure) and says what happened, for the log. */
  async select(workload: Workload): Promise<BackendLog> {
    const probe: BackendProbe = this.lost.has('webgpu') ? { ...this.probe, webgpu: null } : this.probe;
    const override =
      this.options.override && this.lost.has(this.options.override as BackendName)
        ? 'auto'
        : this.options.override;
    const choice = chooseBackend(probe, workload, { override });
    const candidates = [choice.backend, ...choice.fallbacks].filter((b) => !this.lost.has(b));
    const failures: string[] = [];
    for (const backend of candidates) {
      try {
        if (!this.prepared.has(backend)) {
          await this.options.prepare?.(backend);
          this.prepared.add(backend);
        }
        await (this.options.activate ?? activateBackend)(backend);
        this.current = backend;
        const reason =
          backend === choice.backend ? choice.reason : `${choice.reason}; ${failures.join('; ')}`;
        const lostNote = this.lost.size > 0 ? ` (after losing ${[...this.lost].join(', ')})` : '';
        let device: string;
        try {
          device = await (this.options.describe ?? describeDevice)(backend, this.probe);
        } catch {
          device = describeDevice(backend, this.probe);
        }
        return {
          type: 'backend',
          backend,
          adapter: backend === 'webgpu' ? this.probe.webgpu : null,
          device,
          reason: reason + lostNote,
        };
      } catch (error) {
        failures.push(
          `${backend} failed to start: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    throw new BackendUnavailableError(
      `no backend could start for ${workload} training: ${failures.join('; ')}`,
    );
  }
}
