import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CSP_DIRECTIVES,
  HEADER_ONLY_DIRECTIVES,
  contentSecurityPolicy,
  headersFile,
  securityHeaders,
  withSecurityMeta,
} from '../../deploy/security-headers.ts';
import viteConfig from '../../vite.config.ts';

const root = join(import.meta.dirname, '..', '..');

/** `directive -> sources` of a policy string. */
function parsePolicy(policy: string): Map<string, string[]> {
  return new Map(
    policy.split(';').map((part) => {
      const [directive, ...sources] = part.trim().split(/\s+/);
      return [directive as string, sources];
    }),
  );
}

/** Netlify / Cloudflare Pages `_headers`: a path line, then indented `Name: value` lines. */
function parseHeadersFile(text: string): Map<string, Record<string, string>> {
  const rules = new Map<string, Record<string, string>>();
  let current: Record<string, string> | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (!/^\s/.test(line)) {
      current = {};
      rules.set(line.trim(), current);
      continue;
    }
    const at = line.indexOf(':');
    if (!current || at < 0) throw new Error(`not a header line: ${line}`);
    current[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return rules;
}

describe('security headers: one source for the servers, the page and _headers', () => {
  it('keeps every connection on the origin and allows no script eval', () => {
    const csp = parsePolicy(securityHeaders['Content-Security-Policy'] as string);
    expect(csp.get('connect-src')).toEqual(["'self'"]);
    expect(csp.get('default-src')).toEqual(["'self'"]);
    expect(csp.get('script-src')).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(csp.get('worker-src')).toEqual(["'self'"]);
    expect(csp.get('manifest-src')).toEqual(["'self'"]);
    expect(csp.get('object-src')).toEqual(["'none'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    for (const [directive, sources] of csp) {
      expect(sources, directive).not.toContain("'unsafe-eval'");
      expect(sources, directive).not.toContain('*');
      expect(
        sources.filter((s) => /^(https?:|wss?:)/.test(s)),
        directive,
      ).toEqual([]);
    }
    expect(securityHeaders['Cross-Origin-Opener-Policy']).toBe('same-origin');
    expect(securityHeaders['Cross-Origin-Embedder-Policy']).toBe('require-corp');
  });

  it('puts every directive a <meta> can carry into the meta policy, and only those', () => {
    const header = parsePolicy(contentSecurityPolicy('header'));
    const meta = parsePolicy(contentSecurityPolicy('meta'));
    expect([...header.keys()]).toEqual(CSP_DIRECTIVES.map(([d]) => d));
    for (const [directive, sources] of header) {
      if (HEADER_ONLY_DIRECTIVES.includes(directive)) expect(meta.has(directive), directive).toBe(false);
      else expect(meta.get(directive), directive).toEqual(sources);
    }
  });

  it('writes the meta tags right after <meta charset>, before any script, style or manifest', () => {
    const html = withSecurityMeta(readFileSync(join(root, 'index.html'), 'utf8'));
    const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]+)" \/>/.exec(html);
    expect(meta?.[1]).toBe(contentSecurityPolicy('meta'));
    expect(html).toContain('<meta name="referrer" content="no-referrer" />');
    const at = html.indexOf('http-equiv="Content-Security-Policy"');
    expect(html.indexOf('<meta charset')).toBeLessThan(at);
    for (const tag of ['<script', '<link', '<style']) {
      const first = html.indexOf(tag);
      if (first >= 0) expect(first, tag).toBeGreaterThan(at);
    }
    expect(html.indexOf('<meta charset') + 30).toBeLessThan(1024);
    expect(() => withSecurityMeta('<html><head><title>x</title></head></html>')).toThrow(/meta charset/);
  });

  it('writes _headers with every header, unchanged, for every path', () => {
    const rules = parseHeadersFile(headersFile());
    expect([...rules.keys()]).toEqual(['/*']);
    expect(rules.get('/*')).toEqual(securityHeaders);
  });

  it('is what the dev and preview servers send', () => {
    expect(viteConfig.server?.headers).toEqual(securityHeaders);
    expect(viteConfig.preview?.headers).toEqual(securityHeaders);
  });
});
