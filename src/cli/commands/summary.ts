import * as tf from '@tensorflow/tfjs';
import {
  BACKBONE_IDS,
  checkInputSize,
  DEFAULT_INPUT_SIZE,
  getBackbone,
  summarizeBackbone,
} from '../../lib/model/backbones/index.ts';
import type { CliCommand } from '../command.ts';

const USAGE = `summary <backbone> [--size N]  (backbones: ${BACKBONE_IDS.join(', ')}; N ≥ 96, default ${DEFAULT_INPUT_SIZE})`;

function parseSummaryArgs(args: string[]): { backbone: string; size: number } {
  const positional: string[] = [];
  let size = DEFAULT_INPUT_SIZE;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string?];
    if (key !== 'size') throw new Error(`unknown option ${arg} (usage: ${USAGE})`);
    const text = inline ?? args[++i];
    if (text === undefined) throw new Error(`--size needs a value (usage: ${USAGE})`);
    size = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    checkInputSize(size);
  }
  const [backbone, ...rest] = positional;
  if (backbone === undefined || rest.length > 0) throw new Error(`expected one backbone (usage: ${USAGE})`);
  return { backbone, size };
}

export const command: CliCommand = {
  summary: 'Layers of a backbone (Keras names, output shapes, parameter counts) at an input size, as JSON',
  usage: USAGE,
  async run(args) {
    const { backbone, size } = parseSummaryArgs(args);
    const spec = getBackbone(backbone);
    await tf.setBackend('cpu');
    const model = spec.build(size);
    try {
      return summarizeBackbone(spec.id, model);
    } finally {
      model.dispose();
    }
  },
};
