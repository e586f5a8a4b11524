/**
 * The backend decision, with the kernel registry of the real tfjs packages (tf.getKernel) deciding what WASM can
 * train. The probes are what a browser reports: a hardware GPU, SwiftShader as a fallback adapter, no WebGPU.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import { describe, expect, it } from 'vitest';
import {
  BackendManager,
  BackendUnavailableError,
  DeviceWatch,
  REQUIRED_KERNELS,
  chooseBackend,
  describeDevice,
  isSoftwareRenderer,
  missingKernels,
  nextBackend,
  unavailableBecause,
  type BackendName,
  type BackendProbe,
} from '../../src/lib/train/backend.ts';
import { unsuitableBackend, type TrainEnvironment } from '../../src/state/train-readiness.ts';

const hardwareGpu: BackendProbe = {
  webgpu: {
    vendor: 'nvidia',
    architecture: 'ampere',
    device: '',
    description: 'NVIDIA GeForce RTX 3060',
    isFallback: false,
  },
  webgl: { renderer: 'ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11)', software: false },
  wasm: true,
};
const swiftShader: BackendProbe = {
  webgpu: {
    vendor: 'google',
    architecture: 'swiftshader',
    device: '',
    description: 'SwiftShader Device (Subzero)',
    isFallback: true,
  },
  webgl: {
    renderer: 'ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)',
    software: true,
  },
  wasm: true,
};
const noWebGpu: BackendProbe = {
  webgpu: null,
  webgl: { renderer: 'ANGLE (Intel, Intel(R) UHD Graphics 620)', software: false },
  wasm: true,
};

describe('kernels', () => {
  it('finds that tfjs-backend-wasm 4.22 cannot train conv layers, while webgpu, webgl and cpu can', () => {
    expect(missingKernels('wasm', REQUIRED_KERNELS['fine-tune'])).toEqual([
      'Conv2DBackpropFilter',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
    ]);
    expect(missingKernels('webgpu', REQUIRED_KERNELS['fine-tune'])).toEqual([]);
    expect(missingKernels('webgl', REQUIRED_KERNELS['fine-tune'])).toEqual([]);
    expect(missingKernels('cpu', REQUIRED_KERNELS['fine-tune'])).toEqual([]);
    // What the frozen-base path needs, WASM has (Transform for augmentation, the head's ops and their gradients).
    expect(
      missingKernels('wasm', [
        'Transform',
        'BatchMatMul',
        'Softmax',
        'Mean',
        'Conv2D',
        'DepthwiseConv2dNative',
      ]),
    ).toEqual([]);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
  });
});

describe('chooseBackend', () => {
  it('uses WebGPU on a hardware adapter, for both kinds of work', () => {
    for (const workload of ['frozen-base', 'fine-tune'] as const) {
      const c = chooseBackend(hardwareGpu, workload);
      expect(c.backend).toBe('webgpu');
      expect(c.reason).toContain('NVIDIA GeForce RTX 3060');
      expect(c.adapter).toBe(hardwareGpu.webgpu);
    }
    expect(chooseBackend(hardwareGpu, 'fine-tune').fallbacks).toEqual(['webgl', 'cpu']);
    expect(chooseBackend(hardwareGpu, 'frozen-base').fallbacks).toEqual(['webgl', 'wasm', 'cpu']);
  });

  it('on a SwiftShader fallback adapter: WASM for frozen-base work, WebGL then CPU for fine-tuning', () => {
    const frozen = chooseBackend(swiftShader, 'frozen-base');
    expect(frozen.backend).toBe('wasm');
    expect(frozen.reason).toMatch(/software fallback.*SwiftShader/);
    const fine = chooseBackend(swiftShader, 'fine-tune');
    expect(fine.backend).toBe('webgl');
    expect(fine.fallbacks).toEqual(['cpu', 'webgpu']);
    expect(fine.reason).toMatch(/wasm skipped: .*Conv2DBackpropFilter/);
    // Without WebGL: CPU.
    expect(chooseBackend({ ...swiftShader, webgl: null }, 'fine-tune').backend).toBe('cpu');
  });

  it('would use WASM for fine-tuning once it has the gradient kernels (checked, not assumed)', () => {
    const c = chooseBackend(swiftShader, 'fine-tune', { missing: () => [] });
    expect(c.backend).toBe('wasm');
  });

  it('without WebGPU prefers a hardware WebGL renderer, else WASM', () => {
    expect(chooseBackend(noWebGpu, 'frozen-base').backend).toBe('webgl');
    expect(chooseBackend(noWebGpu, 'fine-tune').backend).toBe('webgl');
    const software = { ...noWebGpu, webgl: { renderer: 'llvmpipe', software: true } };
    expect(chooseBackend(software, 'frozen-base').backend).toBe('wasm');
    expect(chooseBackend({ webgpu: null, webgl: null, wasm: false }, 'frozen-base').backend).toBe('cpu');
  });

  it("honours the user's override when the browser can run it, and refuses it with the reason otherwise", () => {
    const c = chooseBackend(swiftShader, 'frozen-base', { override: 'webgpu' });
    expect(c.backend).toBe('webgpu');
    expect(c.reason).toMatch(/^chosen by the user; the default would be wasm \(the only WebGPU adapter/);
    expect(chooseBackend(swiftShader, 'frozen-base', { override: 'wasm' }).reason).toMatch(
      /^chosen by the user, also the default \(/,
    );
    expect(c.fallbacks).not.toContain('webgpu');
    expect(() => chooseBackend(swiftShader, 'fine-tune', { override: 'wasm' })).toThrow(
      /Conv2DBackpropFilter/,
    );
    expect(() => chooseBackend(noWebGpu, 'frozen-base', { override: 'webgpu' })).toThrow(
      BackendUnavailableError,
    );
    expect(chooseBackend(swiftShader, 'frozen-base', { override: 'auto' }).backend).toBe('wasm');
  });

  it('moves to the next backend after a device loss, never back to the lost one', () => {
    const c = chooseBackend(hardwareGpu, 'fine-tune');
    const next = nextBackend(c, 'webgpu');
    expect(next.backend).toBe('webgl');
    expect(nextBackend(next, 'webgl').backend).toBe('cpu');
    expect(() => nextBackend({ ...next, fallbacks: [] }, 'webgl')).toThrow(/no backend left/);
  });

  it('recognises software renderers by name', () => {
    expect(isSoftwareRenderer(swiftShader.webgl!.renderer)).toBe(true);
    expect(isSoftwareRenderer('llvmpipe (LLVM 15.0.6, 256 bits)')).toBe(true);
    expect(isSoftwareRenderer(hardwareGpu.webgl!.renderer)).toBe(false);
  });
});

describe('DeviceWatch', () => {
  it('reports the first loss once to every listener, and re-arms on reset', () => {
    const watch = new DeviceWatch();
    const seen: string[] = [];
    const off = watch.onLost((l) => seen.push(l.message));
    watch.lose({ reason: 'unknown', message: 'first' });
    watch.lose({ reason: 'unknown', message: 'second' });
    expect(watch.lost?.message).toBe('first');
    expect(seen).toEqual(['first']);
    watch.reset();
    expect(watch.lost).toBeNull();
    off();
    watch.lose({ reason: 'destroyed', message: 'third' });
    expect(seen).toEqual(['first']);
  });
});

describe('the backend line: what the backend runs on', () => {
  // Activation is the browser's business; here only what the log says is checked.
  const manager = (probe: BackendProbe, override?: BackendName | 'auto') =>
    new BackendManager(probe, { override, activate: async () => undefined });

  it('names the WebGPU adapter only for webgpu; WebGL its renderer; WASM and CPU the CPU', async () => {
    const gpu = await manager(hardwareGpu).select('fine-tune');
    expect(gpu).toMatchObject({ backend: 'webgpu', adapter: hardwareGpu.webgpu });
    expect(gpu.device).toBe('adapter nvidia ampere NVIDIA GeForce RTX 3060');
    const wasm = await manager(swiftShader).select('frozen-base');
    expect(wasm).toMatchObject({ backend: 'wasm', adapter: null, device: 'WebAssembly on the CPU' });
    const webgl = await manager(swiftShader).select('fine-tune');
    expect(webgl.backend).toBe('webgl');
    expect(webgl.adapter).toBeNull();
    expect(webgl.device).toBe(`renderer ${swiftShader.webgl!.renderer} (software)`);
    const cpu = await manager(swiftShader, 'cpu').select('frozen-base');
    expect(cpu).toMatchObject({ backend: 'cpu', adapter: null, device: 'plain JavaScript on the CPU' });
    expect(describeDevice('webgpu', swiftShader)).toBe(
      'adapter google swiftshader SwiftShader Device (Subzero) (software fallback)',
    );
    // The worker adds what only the running WASM module knows.
    const described = await new BackendManager(swiftShader, {
      activate: async () => undefined,
      describe: (b) => (b === 'wasm' ? 'WebAssembly, SIMD, 1 thread' : describeDevice(b, swiftShader)),
    }).select('frozen-base');
    expect(described.device).toBe('WebAssembly, SIMD, 1 thread');
  });

  it('refuses phase 2 on WASM before training, with the missing kernels as the reason', () => {
    expect(() => manager(swiftShader, 'wasm').check('fine-tune')).toThrow(
      /cannot train on wasm: the wasm backend has no Conv2DBackpropFilter/,
    );
    expect(() => manager(swiftShader, 'wasm').check('frozen-base')).not.toThrow();
    expect(() => manager(swiftShader, 'auto').check('fine-tune')).not.toThrow();
  });

  it('lets the Train form say so before Start, from the same kernel check', () => {
    const backends = Object.fromEntries(
      (['frozen-base', 'fine-tune'] as const).map((w) => [
        w,
        Object.fromEntries(
          (['webgpu', 'webgl', 'wasm', 'cpu'] as const).map((b) => [
            b,
            unavailableBecause(b, swiftShader, w),
          ]),
        ),
      ]),
    ) as NonNullable<TrainEnvironment['backends']>;
    expect(unsuitableBackend('wasm', true, backends)).toBe(
      'Phase 2 fine-tunes conv layers, and the wasm backend has no Conv2DBackpropFilter, ' +
        'DepthwiseConv2dNativeBackpropFilter, DepthwiseConv2dNativeBackpropInput kernel (needed to train conv ' +
        'layers). Choose Automatic or WebGPU, WebGL, CPU, or turn phase 2 off.',
    );
    expect(unsuitableBackend('wasm', false, backends)).toBeNull();
    expect(unsuitableBackend('auto', true, backends)).toBeNull();
    expect(unsuitableBackend('webgl', true, backends)).toBeNull();
    const noGpu = Object.fromEntries(
      (['frozen-base', 'fine-tune'] as const).map((w) => [
        w,
        Object.fromEntries(
          (['webgpu', 'webgl', 'wasm', 'cpu'] as const).map((b) => [b, unavailableBecause(b, noWebGpu, w)]),
        ),
      ]),
    ) as NonNullable<TrainEnvironment['backends']>;
    expect(unsuitableBackend('webgpu', false, noGpu)).toBe(
      'WebGPU cannot run here: this browser offers no WebGPU adapter. Choose Automatic or another backend.',
    );
    expect(unsuitableBackend('wasm', true, null)).toBeNull();
  });
});
