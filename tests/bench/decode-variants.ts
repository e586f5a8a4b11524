/**
 * The names of the ways decode-variants.worker.ts can decode (described there), in a module without the worker's
 * globals, so the Node side of `bench decode` can list them.
 */
export const CANDIDATES = [
  'app',
  'bitmap-resize',
  'bitmap-canvas-scale',
  'imagedecoder-canvas',
  'imagedecoder-bitmap',
  'bitmap-full-js-resize',
  'imagedecoder-copyto-js-resize',
  'imagedecoder-reduced-js-resize',
] as const;

/** Stages of the app's way, each stopping earlier: only their CPU time means something (their pixels are 0). */
export const STAGES = [
  'stage-message',
  'stage-blob-decode',
  'stage-blob-decode-resize',
  'stage-draw',
  'stage-readback',
  'stage-imagedecoder-decode',
  'stage-imagedecoder-copyto',
  'stage-js-resize',
  'stage-squash',
] as const;

export type DecodeVariant = (typeof CANDIDATES)[number] | (typeof STAGES)[number];
