/**
 * Augmentation settings (Keras ImageDataGenerator's units) with their defaults and validation: plain data, free of
 * TensorFlow.js, so the UI can build and check them; `./augment.ts` applies them on the tf backend.
 */
export type FillMode = 'nearest' | 'constant' | 'reflect' | 'wrap';
export type Interpolation = 'bilinear' | 'nearest';

export interface AugmentOptions {
  /** Rotation range in degrees: uniform in ±rotationDeg. Default 20. */
  rotationDeg: number;
  /** Shear range in degrees (Keras's shear_range is degrees): uniform in ±shearDeg. Default 0.1, as the seed. */
  shearDeg: number;
  /** Zoom range as a fraction: each axis scales by a factor in [1 - zoom, 1 + zoom]. Default 0.1. */
  zoom: number;
  /** Horizontal shift as a fraction of the width: uniform in ±widthShift. Default 0. */
  widthShift: number;
  /** Vertical shift as a fraction of the height. Default 0. */
  heightShift: number;
  /** Mirror left-right with probability 1/2. Default true. */
  horizontalFlip: boolean;
  /** Mirror top-bottom with probability 1/2. Default false. */
  verticalFlip: boolean;
  /** How pixels that come from outside the image are filled. Default 'nearest' (Keras's default). */
  fillMode: FillMode;
  /** Default 'bilinear' (Keras's interpolation order 1). */
  interpolation: Interpolation;
}

export const DEFAULT_AUGMENT: Readonly<AugmentOptions> = {
  rotationDeg: 20,
  shearDeg: 0.1,
  zoom: 0.1,
  widthShift: 0,
  heightShift: 0,
  horizontalFlip: true,
  verticalFlip: false,
  fillMode: 'nearest',
  interpolation: 'bilinear',
};

export function augmentOptions(overrides: Partial<AugmentOptions> = {}): AugmentOptions {
  const options = { ...DEFAULT_AUGMENT, ...overrides };
  for (const key of ['rotationDeg', 'shearDeg', 'zoom', 'widthShift', 'heightShift'] as const) {
    const value = options[key];
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`augmentation ${key} must be a finite number ≥ 0; got ${value}`);
    }
  }
  if (options.zoom >= 1)
    throw new RangeError(`augmentation zoom must be < 1 (a fraction); got ${options.zoom}`);
  return options;
}
