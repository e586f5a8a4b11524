import { describe, expect, it } from 'vitest';

describe('the browser the tests run in', () => {
  it('offers the APIs the app relies on: OPFS, workers, createImageBitmap, WebGPU', async () => {
    const root = await navigator.storage.getDirectory();
    expect(root.kind).toBe('directory');
    expect(typeof Worker).toBe('function');
    expect(typeof createImageBitmap).toBe('function');
    expect('gpu' in navigator).toBe(true);
    const adapter = await navigator.gpu.requestAdapter();
    expect(adapter).not.toBeNull();
  });
});
