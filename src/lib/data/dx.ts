/**
 * The seven HAM10000 diagnoses. The order is alphabetical, as Keras's flow_from_directory assigns class
 * indices in the seed study, so a class index means the same thing in every model, report and export.
 */
export const DX = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'] as const;
export type Dx = (typeof DX)[number];

export const DX_NAMES: Readonly<Record<Dx, string>> = {
  akiec: "Actinic keratoses and intraepithelial carcinoma (Bowen's disease)",
  bcc: 'Basal cell carcinoma',
  bkl: 'Benign keratosis-like lesions',
  df: 'Dermatofibroma',
  mel: 'Melanoma',
  nv: 'Melanocytic nevi',
  vasc: 'Vascular lesions',
};

export function isDx(value: string): value is Dx {
  return (DX as readonly string[]).includes(value);
}

export function dxIndex(dx: Dx): number {
  return DX.indexOf(dx);
}
