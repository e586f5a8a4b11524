import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { VitePWA } from 'vite-plugin-pwa';
import { securityHeaders } from './deploy/security-headers.ts';
import { securityPlugin } from './deploy/vite-plugin-security.ts';
import { pwaOptions } from './deploy/pwa.ts';
import { wasmThreadsPlugin } from './deploy/vite-plugin-wasm-threads.ts';

// The headers come from deploy/security-headers.ts, which also gives the built page its CSP <meta> and _headers.
export default defineConfig({
  plugins: [svelte(), securityPlugin(), wasmThreadsPlugin(), VitePWA(pwaOptions)],
  server: { headers: securityHeaders },
  preview: { headers: securityHeaders },
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  optimizeDeps: { exclude: ['h5wasm'] },
});
