import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { playwright } from '@vitest/browser-playwright';
import { ingestCommands } from './tests/helpers/ingest-commands.ts';

/** Flags measured to expose WebGPU (SwiftShader) in Debian's headless Chromium on a localhost origin. */
export const chromiumArgs = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// The app's CSP and COEP headers (vite.config.ts) are left out here on purpose: the CSP forbids the inline
// scripts of Vitest's browser runner. The e2e project checks the real headers against the built app.
export default defineConfig({
  plugins: [svelte()],
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['h5wasm'] },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          environment: 'node',
          include: ['tests/unit/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['tests/browser/**/*.test.ts'],
          // One origin, one OPFS: files that cache datasets must not clear each other's storage mid-run.
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 120_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({
              launchOptions: { executablePath: chromiumPath, args: chromiumArgs },
            }),
            instances: [{ browser: 'chromium' }],
            // Node-side helpers for the ingest tests: build archives from ../shared, set file inputs by path.
            commands: { ...ingestCommands },
          },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          environment: 'node',
          include: ['tests/e2e/**/*.test.ts'],
          // Builds dist/ first when it is missing or older than the sources, however the tests are started.
          globalSetup: ['tests/helpers/fresh-build.ts'],
          testTimeout: 600_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
