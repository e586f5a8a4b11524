import type { VitePWAOptions } from 'vite-plugin-pwa';

/** Matches src/app.css: the header's --surface-2 for the title bar, the page's --bg behind the splash. */
export const THEME_COLOR = '#eef1f5';
export const BACKGROUND_COLOR = '#f4f6f9';

/**
 * The biggest single file the service worker precaches. The largest today are the train worker chunk (~7.2 MB:
 * tfjs, its backends and h5wasm's inlined WASM), the predict worker chunk (~6.7 MB) and the sample pack
 * (samples/*.zip, ~6 MB). A file over this fails the build (vite-plugin-pwa turns Workbox's warning into an error)
 * rather than being left out of the offline copy unnoticed.
 */
export const MAX_PRECACHED_FILE_BYTES = 16 * 1024 * 1024;

/**
 * What must work offline after the first visit: the app shell, every JS chunk (the workers too), the WASM
 * binaries, the default backbone's weights and the sample pack. Not the other backbones' weights (59-95 MB each):
 * the app keeps weights in browser storage after their first load, so a runtime cache would hold them twice.
 * The manifest and its icons are added by vite-plugin-pwa itself.
 */
export const PRECACHE_GLOBS = ['**/*.{html,js,css,wasm}', 'models/mobilenet_v2_0.35/*', 'samples/*.zip'];

/**
 * Offline use and installation (vite-plugin-pwa, Workbox generateSW). Paths are relative, so the same build works
 * under any base (`vite build --base /lesion-lab/`): the manifest's start_url and scope resolve against the
 * manifest's own URL, and the precache URLs against the service worker's. Nothing runs in `vite dev` (devOptions
 * off: virtual:pwa-register is a no-op there). A new version waits for the user (registerType 'prompt'): see
 * src/state/app-update.svelte.ts.
 */
export const pwaOptions: Partial<VitePWAOptions> = {
  registerType: 'prompt',
  // Registered from src/main.ts through virtual:pwa-register, so that the update prompt can be shown.
  injectRegister: false,
  // Workbox's production build of the service worker even when the build runs under a test runner's NODE_ENV.
  mode: 'production',
  manifest: {
    name: 'Lesion Lab',
    short_name: 'Lesion Lab',
    description: 'Train skin-lesion classifiers on HAM10000 entirely in your browser. Nothing is uploaded.',
    lang: 'en',
    start_url: '.',
    scope: '.',
    display: 'standalone',
    theme_color: THEME_COLOR,
    background_color: BACKGROUND_COLOR,
    categories: ['education', 'medical'],
    icons: [
      { src: 'icons/icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' },
      { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
      { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
      { src: 'icons/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
    ],
  },
  workbox: {
    globPatterns: PRECACHE_GLOBS,
    maximumFileSizeToCacheInBytes: MAX_PRECACHED_FILE_BYTES,
    navigateFallback: 'index.html',
    // A link opened to a served file (weights, the sample pack) must get that file, not the app.
    navigateFallbackDenylist: [/\/models\//, /\/samples\//],
    cleanupOutdatedCaches: true,
    clientsClaim: false,
    skipWaiting: false,
  },
};
