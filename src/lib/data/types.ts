import type { ZipSpan } from './zip-span.ts';
import type { Dx } from './dx.ts';

/** One labelled image, as read from the metadata file. */
export interface LesionRecord {
  imageId: string;
  /** null when the label file has no lesion ids (ISIC 2018 one-hot files): no lesion-grouped split is possible. */
  lesionId: string | null;
  dx: Dx;
  dxType: string | null;
  /** null when the cell is empty; EDA imputes the mean and says so. */
  age: number | null;
  sex: string | null;
  localization: string | null;
  /** 1-based line of the file this record came from (the header is line 1), for error messages. */
  line: number;
}

export type MetadataFormat = 'ham10000' | 'isic2018-onehot';

export interface Metadata {
  fileName: string;
  format: MetadataFormat;
  records: LesionRecord[];
  /** Header as found in the file (after trimming and BOM removal). */
  columns: string[];
  /** Columns the app does not use (e.g. the newer Dataverse `dataset` column); kept, not an error. */
  extraColumns: string[];
  hasLesionIds: boolean;
  /** Plain-language notes for the user, e.g. "no lesion ids: a lesion-grouped split is impossible". */
  warnings: string[];
}

/** A bad metadata file. The message names the file, and where known the line and column at fault. */
export class MetadataError extends Error {
  constructor(
    message: string,
    readonly fileName: string,
    readonly line?: number,
    readonly column?: string,
  ) {
    super(message);
    this.name = 'MetadataError';
  }
}

/** An image found in an archive, a folder drop or a loose file; bytes are read only on demand. */
export interface ImageSource {
  imageId: string;
  /** Where it came from, for messages: "skin-cancer-mnist-ham10000.zip:HAM10000_images_part_1/ISIC_0024306.jpg". */
  location: string;
  /** Compressed or on-disk size in bytes, when known. */
  size: number;
  read(signal?: AbortSignal): Promise<Uint8Array>;
  /** Where a zip entry's bytes lie, so that neighbours can be read together (zip-span.ts). */
  span?: ZipSpan;
}

/** A metadata file found among the dropped files or inside an archive. */
export interface MetadataSource {
  location: string;
  name: string;
  readText(signal?: AbortSignal): Promise<string>;
}

export interface Listing {
  /** Every entry seen (files, not directories), across all containers. */
  entries: number;
  /** One source per image_id, the first seen in a stable order (upper-case part folders before their copies). */
  images: ImageSource[];
  /** Entries skipped because their image_id was already listed (Kaggle's lower-case duplicate folders). */
  duplicates: Array<{ imageId: string; location: string; keptLocation: string }>;
  metadata: MetadataSource[];
  /** Entries that are neither images nor metadata, or metadata the app does not use (hmnist_*.csv). */
  ignored: string[];
}

export interface MatchReport {
  matched: number;
  /** Records whose image_id has no image; `rowsWithoutImageIds` lists the first ones. */
  rowsWithoutImage: number;
  rowsWithoutImageIds: string[];
  imagesWithoutRow: number;
  imagesWithoutRowIds: string[];
  duplicatesSkipped: number;
}

/** Square edge of the decoded cache, in pixels. */
export const IMAGE_SIZES = [96, 128, 160, 192, 224] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];
export const DEFAULT_IMAGE_SIZE: ImageSize = 224;
