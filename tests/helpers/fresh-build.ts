/**
 * The e2e tests drive the built app (`dist/`). Every way of running them (`npm run test:e2e`, `npm test`,
 * `npx vitest run --project e2e [file]`) goes through this global setup of the e2e project: when `dist/` is
 * missing or older than any input of the build, it runs the production build first, so a test never passes or
 * fails on yesterday's app.
 *
 * "Older" compares modification times: dist/index.html (Vite writes it after bundling) against the newest file of
 * the build's inputs (src/, public/, deploy/, index.html and the build configuration). Set E2E_SKIP_BUILD=1 to use
 * dist/ as it is; a stale one then fails with the names of the newer files instead of building.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';

const root = join(import.meta.dirname, '..', '..');
export const BUILT_PAGE = join(root, 'dist', 'index.html');

/** What `vite build` reads: a change to any of these can change dist/. */
const INPUTS = [
  'src',
  'public',
  'deploy',
  'index.html',
  'vite.config.ts',
  'svelte.config.js',
  'tsconfig.json',
  'package.json',
  'package-lock.json',
];

function newestUnder(path: string, newest: { path: string; mtimeMs: number }[]): void {
  if (!existsSync(path)) return;
  const info = statSync(path);
  if (info.isDirectory()) {
    for (const entry of readdirSync(path)) newestUnder(join(path, entry), newest);
  } else {
    newest.push({ path, mtimeMs: info.mtimeMs });
  }
}

/** Build inputs modified after dist/index.html was written, newest first; every input when there is no build. */
export function staleInputs(): { path: string; mtimeMs: number }[] {
  const files: { path: string; mtimeMs: number }[] = [];
  for (const input of INPUTS) newestUnder(join(root, input), files);
  const built = existsSync(BUILT_PAGE) ? statSync(BUILT_PAGE).mtimeMs : -Infinity;
  return files
    .filter((f) => f.mtimeMs > built)
    .sort((a, b) => b.mtimeMs - a.mtimeMs)
    .map((f) => ({ path: relative(root, f.path), mtimeMs: f.mtimeMs }));
}

/** `vite build` in a child process: under the test runner NODE_ENV is 'test', which would build Svelte for dev. */
async function build(): Promise<void> {
  const env = { ...process.env };
  delete env.NODE_ENV;
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  try {
    await promisify(execFile)(process.execPath, [vite, 'build', '--logLevel', 'warn'], {
      cwd: root,
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`the e2e tests need a build, and vite build failed:\n${stderr ?? ''}${stdout ?? ''}`, {
      cause: error,
    });
  }
}

export default async function setup(): Promise<void> {
  const stale = staleInputs();
  if (stale.length === 0) return;
  const what = existsSync(BUILT_PAGE)
    ? `dist/ is older than ${stale.length} source file(s), newest ${stale
        .slice(0, 5)
        .map((f) => f.path)
        .join(', ')}`
    : 'dist/ is missing';
  if (process.env.E2E_SKIP_BUILD === '1') {
    throw new Error(`${what}: run \`npm run build\` (or unset E2E_SKIP_BUILD to let the e2e tests build)`);
  }
  process.stderr.write(`[e2e] ${what}: building the app first (vite build) …\n`);
  const t0 = performance.now();
  await build();
  const left = staleInputs();
  if (left.length > 0) {
    throw new Error(
      `vite build ran, but dist/index.html is still older than ${left.map((f) => f.path).join(', ')} ` +
        '(a file changed during the build?): run the e2e tests again',
    );
  }
  process.stderr.write(`[e2e] built in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
