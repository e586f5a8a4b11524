/** What every `src/cli/commands/<name>.ts` exports as `command`. Kept apart from main.ts so commands can import
 * it at run time without a cycle through main.ts's top-level await. */
export interface CliCommand {
  summary: string;
  usage: string;
  run(args: string[]): Promise<unknown>;
}

/** Bad arguments: main.ts prints the command's usage and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
