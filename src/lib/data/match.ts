import type { ImageSource, LesionRecord, Listing, MatchReport } from './types.ts';
import { shortText } from '../short-text.ts';

export interface MatchedImage {
  record: LesionRecord;
  image: ImageSource;
}

export interface MatchResult {
  /** In the order of the records, so that everything downstream follows the metadata file. */
  matched: MatchedImage[];
  report: MatchReport;
}

/**
 * Pairs metadata rows with listed images by exact image_id (ids are case-sensitive everywhere in the app, as in
 * the file names). Only matched rows are used for training; the report says plainly what was left out.
 * `sampleIds` bounds how many unmatched ids of each kind the report lists.
 */
export function matchImages(records: readonly LesionRecord[], listing: Listing, sampleIds = 10): MatchResult {
  const imagesById = new Map(listing.images.map((image) => [image.imageId, image]));
  const matched: MatchedImage[] = [];
  const rowsWithoutImageIds: string[] = [];
  let rowsWithoutImage = 0;
  const recordIds = new Set<string>();
  for (const record of records) {
    recordIds.add(record.imageId);
    const image = imagesById.get(record.imageId);
    if (image !== undefined) {
      matched.push({ record, image });
    } else {
      rowsWithoutImage++;
      if (rowsWithoutImageIds.length < sampleIds) rowsWithoutImageIds.push(record.imageId);
    }
  }
  const imagesWithoutRowIds: string[] = [];
  let imagesWithoutRow = 0;
  for (const image of listing.images) {
    if (recordIds.has(image.imageId)) continue;
    imagesWithoutRow++;
    if (imagesWithoutRowIds.length < sampleIds) imagesWithoutRowIds.push(image.imageId);
  }
  return {
    matched,
    report: {
      matched: matched.length,
      rowsWithoutImage,
      rowsWithoutImageIds,
      imagesWithoutRow,
      imagesWithoutRowIds,
      duplicatesSkipped: listing.duplicates.length,
    },
  };
}

const count = new Intl.NumberFormat('en-US');

function counted(n: number, singular: string, plural: string): string {
  return `${count.format(n)} ${n === 1 ? singular : plural}`;
}

function firstIds(ids: readonly string[], total: number): string {
  if (ids.length === 0) return '';
  return ` (${total > ids.length ? 'first: ' : ''}${ids.map((id) => shortText(id)).join(', ')}${total > ids.length ? ', …' : ''})`;
}

/**
 * One plain-English sentence for the UI, e.g. "10,015 images matched; 0 rows without an image; 0 images
 * without a row; 10,015 duplicate copies skipped."
 */
export function describeMatch(report: MatchReport): string {
  return [
    `${counted(report.matched, 'image', 'images')} matched`,
    counted(report.rowsWithoutImage, 'row without an image', 'rows without an image') +
      firstIds(report.rowsWithoutImageIds, report.rowsWithoutImage),
    counted(report.imagesWithoutRow, 'image without a row', 'images without a row') +
      firstIds(report.imagesWithoutRowIds, report.imagesWithoutRow),
    `${counted(report.duplicatesSkipped, 'duplicate copy', 'duplicate copies')} skipped`,
  ]
    .join('; ')
    .concat('.');
}
