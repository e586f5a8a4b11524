import type { Plugin } from 'vite';
import { headersFile, withSecurityMeta } from './security-headers.ts';

/**
 * At build only, puts the CSP and referrer policy into index.html as `<meta>` tags and writes `_headers` next to
 * it, both from deploy/security-headers.ts. The dev server sends the same headers itself, so dev needs no meta.
 */
export function securityPlugin(): Plugin {
  return {
    name: 'lesion-lab:security',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler: (html) => withSecurityMeta(html),
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: '_headers', source: headersFile() });
    },
  };
}
