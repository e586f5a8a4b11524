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

/**
 * The page's runtime import graph, from src/main.ts: relative imports of .ts, .svelte and .svelte.ts modules, as
 * Vite bundles them into the main chunk. `import type` / `export type` are erased and not followed; an import whose
 * names are all marked `type` inline is followed (verbatimModuleSyntax keeps it as a side-effect import). Workers
 * started with `new Worker(new URL(...))` are separate bundles: they are not imports, so they are not followed.
 */
const tfPackages = /^(@tensorflow\/|h5wasm(\/|$))/;
const sourceExt = /\.(ts|js|svelte)$/;
const staticImportRe = /(?:^|[;}\s])(import|export)(\s+type)?\s+(?:[^;'"`]*?\s+from\s*)?['"]([^'"]+)['"]/g;
const dynamicImportRe = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function scriptOf(file: string): string {
  const text = readFileSync(file, 'utf8');
  if (!file.endsWith('.svelte')) return text;
  return [...text.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n;\n');
}

function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"])\/\/.*$/gm, '$1');
}

/** Runtime import specifiers of a module, in source order. */
function runtimeImports(file: string): string[] {
  const text = withoutComments(scriptOf(file));
  const specs: string[] = [];
  for (const m of text.matchAll(staticImportRe)) if (!m[2]) specs.push(m[3] as string);
  for (const m of text.matchAll(dynamicImportRe)) specs.push(m[1] as string);
  return specs;
}

function resolveSource(from: string, spec: string): string | null {
  const base = join(from, '..', spec.split('?')[0] as string);
  for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return sourceExt.test(candidate) ? candidate : null;
    } catch {
      // not this candidate
    }
  }
  throw new Error(`${relative(root, from)} imports "${spec}", which resolves to no file`);
}

/** Every chain `entry -> … -> module -> package` where a module reached at run time imports tf or h5wasm. */
function tfChains(entry: string): { chains: string[]; reached: string[] } {
  const parent = new Map<string, string | null>([[entry, null]]);
  const queue = [entry];
  const chains: string[] = [];
  const chainTo = (file: string): string[] => {
    const path: string[] = [];
    for (let f: string | null = file; f != null; f = parent.get(f) ?? null) path.unshift(relative(root, f));
    return path;
  };
  for (let file = queue.shift(); file != null; file = queue.shift()) {
    for (const spec of runtimeImports(file)) {
      if (tfPackages.test(spec)) chains.push([...chainTo(file), spec].join(' -> '));
      if (!spec.startsWith('.')) continue;
      const target = resolveSource(file, spec);
      if (target == null || parent.has(target)) continue;
      parent.set(target, file);
      queue.push(target);
    }
  }
  return { chains, reached: [...parent.keys()].map((f) => relative(root, f)) };
}

describe('architecture: the main thread never loads TensorFlow.js', () => {
  it('follows the page from src/main.ts through the UI into src/lib', () => {
    const { reached } = tfChains(join(root, 'src', 'main.ts'));
    expect(reached).toContain(join('src', 'App.svelte'));
    expect(reached).toContain(join('src', 'state', 'training.svelte.ts'));
    expect(reached).toContain(join('src', 'lib', 'train', 'config.ts'));
  });

  it('finds tf where it is: the training worker imports it', () => {
    const { chains } = tfChains(join(root, 'src', 'worker', 'train.worker.ts'));
    expect(chains.some((c) => c.endsWith('-> @tensorflow/tfjs'))).toBe(true);
  });

  it('no module reached from src/main.ts imports @tensorflow/* or h5wasm', () => {
    const { chains } = tfChains(join(root, 'src', 'main.ts'));
    expect(chains, `main-thread import chains into tf:\n${chains.join('\n')}`).toEqual([]);
  });
});
