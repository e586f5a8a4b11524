/**
 * Headless entry over the same core the app uses: `npm run -s cli -- <command> [args]`.
 * Each command lives in ./commands/<name>.ts and exports `run(args): Promise<unknown>`; the result is printed
 * as one JSON object on stdout. Logs go to stderr so stdout stays machine-readable.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { UsageError, type CliCommand } from './command.ts';

export { UsageError, type CliCommand };

const commandsDir = join(import.meta.dirname, 'commands');

function available(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function load(name: string): Promise<CliCommand> {
  const mod = (await import(join(commandsDir, `${name}.ts`))) as { command: CliCommand };
  return mod.command;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const names = available();
  if (!name || name === '--help' || name === 'help' || !names.includes(name)) {
    const lines = await Promise.all(names.map(async (n) => `  ${(await load(n)).usage}`));
    process.stderr.write(`usage: npm run -s cli -- <command> [args]\ncommands:\n${lines.join('\n')}\n`);
    return name && name !== '--help' && name !== 'help' ? 2 : 0;
  }
  const command = await load(name);
  try {
    const result = await command.run(args);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${name}: ${message}\n`);
    if (error instanceof UsageError) process.stderr.write(`usage: ${command.usage}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
