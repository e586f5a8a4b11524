/**
 * The one source of the security headers the app is served with, and of the two forms a static host can carry
 * them in: a `<meta http-equiv="Content-Security-Policy">` in the built index.html (the only protection on hosts
 * that send no headers: GitHub Pages, a university web space, `python3 -m http.server`) and a `_headers` file
 * (Netlify, Cloudflare Pages). The dev and preview servers send the headers themselves (vite.config.ts).
 *
 * Why each part is there:
 * - `connect-src 'self'`: clinic images must never leave the machine; no fetch, XHR, WebSocket or beacon may
 *   reach another origin.
 * - `'wasm-unsafe-eval'`: compiling the tfjs WASM backend and h5wasm; nothing uses JavaScript eval.
 * - `worker-src 'self'`: the ingest, decode, train and predict workers and the service worker are same-origin
 *   files; no worker is made from a blob.
 * - `img-src blob: data:`: thumbnails and charts are drawn from blobs and data URLs made on the page.
 * - `style-src 'unsafe-inline'`: Svelte and Observable Plot set inline styles.
 * - COOP/COEP make the page cross-origin isolated where a host can send them; the app works without (see
 *   src/components/layout/IsolationNote.svelte).
 */

/** CSP directives in the order they are written. */
export const CSP_DIRECTIVES: readonly (readonly [directive: string, sources: readonly string[]])[] = [
  ['default-src', ["'self'"]],
  ['script-src', ["'self'", "'wasm-unsafe-eval'"]],
  ['worker-src', ["'self'"]],
  ['connect-src', ["'self'"]],
  ['img-src', ["'self'", 'blob:', 'data:']],
  ['style-src', ["'self'", "'unsafe-inline'"]],
  ['font-src', ["'self'"]],
  ['manifest-src', ["'self'"]],
  ['media-src', ["'self'"]],
  ['frame-src', ["'none'"]],
  ['object-src', ["'none'"]],
  ['base-uri', ["'self'"]],
  ['form-action', ["'none'"]],
  ['frame-ancestors', ["'none'"]],
];

/**
 * Directives a `<meta>` policy cannot carry (CSP Level 3, §3.3: the user agent ignores them there, with a console
 * warning). On a host that sends no headers, these protections are absent.
 */
export const HEADER_ONLY_DIRECTIVES: readonly string[] = [
  'frame-ancestors',
  'report-uri',
  'report-to',
  'sandbox',
];

export function contentSecurityPolicy(form: 'header' | 'meta' = 'header'): string {
  return CSP_DIRECTIVES.filter(
    ([directive]) => form === 'header' || !HEADER_ONLY_DIRECTIVES.includes(directive),
  )
    .map(([directive, sources]) => `${directive} ${sources.join(' ')}`)
    .join('; ');
}

export const REFERRER_POLICY = 'no-referrer';

/** Every header the app is served with, on every path. */
export const securityHeaders: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy': contentSecurityPolicy('header'),
  'Referrer-Policy': REFERRER_POLICY,
  'X-Content-Type-Options': 'nosniff',
};

const escapeAttribute = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The `<meta>` tags that carry what a page can declare itself: the CSP (less the header-only directives) and the
 * referrer policy. COOP, COEP, CORP and nosniff have no `<meta>` form.
 */
export function securityMetaTags(): string {
  return [
    `<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(contentSecurityPolicy('meta'))}" />`,
    `<meta name="referrer" content="${escapeAttribute(REFERRER_POLICY)}" />`,
  ].join('\n    ');
}

/**
 * Puts the meta tags right after `<meta charset>`: a meta CSP only governs what comes after it in the document,
 * so it must precede every script, stylesheet and manifest link, and the charset must stay in the first 1024 bytes.
 */
export function withSecurityMeta(html: string): string {
  const charset = /<meta\s+charset=["']?[\w-]+["']?\s*\/?>/i.exec(html);
  if (!charset) throw new Error('index.html has no <meta charset> to put the Content-Security-Policy after');
  const at = charset.index + charset[0].length;
  return `${html.slice(0, at)}\n    ${securityMetaTags()}${html.slice(at)}`;
}

/** The `_headers` file of Netlify and Cloudflare Pages: every header on every path (`/*`). */
export function headersFile(): string {
  const lines = Object.entries(securityHeaders).map(([name, value]) => `  ${name}: ${value}`);
  return [
    '# Security headers for hosts that read _headers (Netlify, Cloudflare Pages).',
    '# Generated at build from deploy/security-headers.ts; edit that file, not this one.',
    '/*',
    ...lines,
    '',
  ].join('\n');
}
