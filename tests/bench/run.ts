/**
 * `npm run -s bench -- <name>`: runs tests/bench/<name>.ts, which exports `bench(args)`, and prints its JSON result
 * on stdout. Benchmarks measure; they never assert.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = import.meta.dirname;
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length));
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  process.stderr.write(`usage: npm run -s bench -- <${names.join('|')}> [args]\n`);
  process.exit(2);
}
const mod = (await import(join(dir, `${name}.bench.ts`))) as { bench(args: string[]): Promise<unknown> };
const result = await mod.bench(args);
process.stdout.write(`${JSON.stringify(result)}\n`);
