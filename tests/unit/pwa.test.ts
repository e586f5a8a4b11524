import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKGROUND_COLOR, PRECACHE_GLOBS, THEME_COLOR, pwaOptions } from '../../deploy/pwa.ts';
import { ICON_RENDERS } from '../../deploy/render-icons.ts';
import { updateWaitReason } from '../../src/state/app-update.svelte.ts';

const root = join(import.meta.dirname, '..', '..');

/** Width and height from a PNG's IHDR chunk. */
function pngSize(path: string): { width: number; height: number } {
  const bytes = readFileSync(path);
  expect(bytes.subarray(1, 4).toString('latin1'), path).toBe('PNG');
  expect(bytes.subarray(12, 16).toString('latin1'), path).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function cssVariable(name: string): string {
  const css = readFileSync(join(root, 'src', 'app.css'), 'utf8');
  const m = new RegExp(`${name}:\\s*(#[0-9a-fA-F]{3,8})`).exec(css);
  if (!m) throw new Error(`src/app.css has no ${name}`);
  return m[1] as string;
}

describe('the web app manifest', () => {
  const manifest = pwaOptions.manifest;
  if (!manifest) throw new Error('deploy/pwa.ts has no manifest');

  it('names the app and stays under whatever base the build is given', () => {
    expect(manifest.name).toBe('Lesion Lab');
    expect(manifest.short_name).toBeTruthy();
    expect((manifest.short_name as string).length).toBeLessThanOrEqual(12);
    expect(manifest.description).toBeTruthy();
    expect(manifest.display).toBe('standalone');
    // Relative: resolved against the manifest's URL, so /lesion-lab/ on a sub-path deploy.
    expect(manifest.start_url).toBe('.');
    expect(manifest.scope).toBe('.');
  });

  it("takes its colours from the app's stylesheet", () => {
    expect(THEME_COLOR).toBe(cssVariable('--surface-2'));
    expect(BACKGROUND_COLOR).toBe(cssVariable('--bg'));
    expect(manifest.theme_color).toBe(THEME_COLOR);
    expect(manifest.background_color).toBe(BACKGROUND_COLOR);
    expect(readFileSync(join(root, 'index.html'), 'utf8')).toContain(
      `<meta name="theme-color" content="${THEME_COLOR}" />`,
    );
  });

  it('lists icons that exist at the sizes it says: SVG, 192 and 512 PNG, and a maskable one', () => {
    const icons = manifest.icons ?? [];
    for (const icon of icons) {
      const path = join(root, 'public', icon.src);
      expect(existsSync(path), icon.src).toBe(true);
      if (icon.type === 'image/png') {
        const [w, h] = (icon.sizes as string).split('x').map(Number);
        expect(pngSize(path), icon.src).toEqual({ width: w, height: h });
      }
    }
    expect(icons.map((i) => i.sizes)).toEqual(expect.arrayContaining(['any', '192x192', '512x512']));
    expect(icons.some((i) => i.purpose === 'maskable')).toBe(true);
    // Every PNG comes from the render script, so it can be made again from the SVG.
    expect(icons.filter((i) => i.type === 'image/png').map((i) => i.src)).toEqual(
      ICON_RENDERS.map((r) => `icons/${r.png}`),
    );
    expect(readFileSync(join(root, 'index.html'), 'utf8')).toContain(
      '<link rel="icon" href="/icons/icon.svg" type="image/svg+xml" />',
    );
  });

  it('precaches the default weights, not the other backbones', () => {
    expect(PRECACHE_GLOBS).toContain('models/mobilenet_v2_0.35/*');
    expect(PRECACHE_GLOBS.filter((g) => g.startsWith('models/'))).toEqual(['models/mobilenet_v2_0.35/*']);
    expect(pwaOptions.registerType).toBe('prompt');
    expect(pwaOptions.workbox?.skipWaiting).toBe(false);
  });
});

describe('updateWaitReason', () => {
  it('lets an update go ahead only when nothing runs', () => {
    expect(updateWaitReason({ training: false, ingest: false })).toBeNull();
    expect(updateWaitReason({ training: true, ingest: false })).toMatch(/until training has finished/);
    expect(updateWaitReason({ training: false, ingest: true })).toMatch(/until the dataset has been read/);
    expect(updateWaitReason({ training: true, ingest: true })).toMatch(/training .* and the dataset/);
  });
});
