import { basename } from 'node:path';
import { parseMetadata } from '../../lib/data/metadata.ts';
import { summarizeMetadata } from '../../lib/eda/summary.ts';
import { parseArgs, readInputFile } from '../args.ts';
import { UsageError, type CliCommand } from '../command.ts';

export const command: CliCommand = {
  summary:
    'EDA summary of a HAM10000 metadata file (.csv or .tab) or an ISIC 2018 one-hot label file, as JSON',
  usage: 'eda <metadata.csv|.tab>',
  async run(args) {
    const [path, ...rest] = parseArgs(args, {}).positional;
    if (path === undefined || rest.length > 0) throw new UsageError('expected one metadata file');
    const text = await readInputFile(path);
    const metadata = parseMetadata(text, basename(path));
    for (const warning of metadata.warnings) process.stderr.write(`eda: ${metadata.fileName}: ${warning}\n`);
    return summarizeMetadata(metadata);
  },
};
