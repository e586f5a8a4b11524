import type { Dx } from '../../lib/data/dx.ts';

/**
 * One colour per diagnosis, the same on every chart. Okabe–Ito's colour-blind-safe palette (yellow swapped for a
 * darker ochre so thin marks stay visible on white).
 */
export const DX_COLORS: Readonly<Record<Dx, string>> = {
  akiec: '#E69F00',
  bcc: '#56B4E9',
  bkl: '#009E73',
  df: '#B8860B',
  mel: '#D55E00',
  nv: '#0072B2',
  vasc: '#CC79A7',
};

export const SEX_COLORS: Readonly<Record<string, string>> = {
  male: '#0072B2',
  female: '#D55E00',
  unknown: '#9aa3ad',
};

/** Bars that are not split by class. */
export const NEUTRAL = '#4f7cac';

/** Plot's default 10 px text is too small to read comfortably; inherit the page's font. */
export const PLOT_STYLE = { fontSize: '12px', fontFamily: 'inherit', overflow: 'visible' } as const;
