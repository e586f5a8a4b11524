import { decodeText } from '../lib/data/listing.ts';
import { UsageError } from './command.ts';

/** Splits `--name value` / `--flag` options from positional arguments. */
export function parseArgs(
  args: string[],
  spec: { flags?: string[]; options?: string[] },
): { positional: string[]; options: Record<string, string>; flags: Set<string> } {
  const positional: string[] = [];
  const options: Record<string, string> = {};
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (spec.flags?.includes(key)) {
      flags.add(key);
    } else if (spec.options?.includes(key)) {
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`--${key} needs a value`);
      options[key] = value;
    } else {
      throw new UsageError(`unknown option --${key}`);
    }
  }
  return { positional, options, flags };
}

/** Reads a file named on the command line, with a message a person can act on. */
export async function readInputFile(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  try {
    return decodeText(await readFile(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : String(error);
    throw new Error(`cannot read ${path}: ${reason}`, { cause: error });
  }
}
