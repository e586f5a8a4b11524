import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const lib = join(root, 'src', 'lib');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|js|svelte)$/.test(name) ? [path] : [];
  });
}

/** Strips comments and string literals so that prose mentioning "document" does not count as a use. */
function code(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
    .replace(/`(?:\\.|[^`\\])*`/g, '``')
    .replace(/'(?:\\.|[^'\\\n])*'/g, "''")
    .replace(/"(?:\\.|[^"\\\n])*"/g, '""');
}

const importRe = /(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const domGlobals = [
  'document',
  'window',
  'localStorage',
  'sessionStorage',
  'HTMLElement',
  'HTMLCanvasElement',
];

describe('architecture: src/lib is a pure core', () => {
  const files = sourceFiles(lib);

  it('has source files to check', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files.map((f) => [relative(root, f), f]))(
    '%s imports no Svelte, UI, worker or DOM',
    (_name, file) => {
      const text = readFileSync(file, 'utf8');
      expect(file.endsWith('.svelte') || file.endsWith('.svelte.ts')).toBe(false);
      for (const m of text.matchAll(importRe)) {
        const spec = (m[1] ?? m[2]) as string;
        expect(spec, `import of ${spec}`).not.toMatch(/^svelte(\/|$)/);
        expect(spec, `import of ${spec}`).not.toMatch(/\.svelte(\.ts)?$/);
        expect(spec, `import of ${spec}`).not.toMatch(/(^|\/)(components|worker)\//);
        expect(spec, `import of ${spec}`).not.toMatch(/^\.\.\/\.\.\/(components|worker)|App\.svelte/);
      }
      const body = code(text);
      for (const g of domGlobals) {
        expect(body, `uses DOM global ${g}`).not.toMatch(new RegExp(`(?<![\\w.$])${g}(?![\\w$])`));
      }
    },
  );
});
