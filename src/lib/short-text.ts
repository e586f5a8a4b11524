/**
 * Text from a user's file, cut to a length a page can show. A CSV field may be megabytes long (a hostile or
 * broken file); messages, tables and charts show its start and how long it is, never all of it.
 */

/** Enough to recognise an id, a category or a column name; HAM10000's longest value is 20 characters. */
export const SHORT_TEXT_LIMIT = 120;

const count = new Intl.NumberFormat('en-US');

/** `text` when it is at most `max` characters, else its first `max` characters and "… (N characters)". */
export function shortText(text: string, max = SHORT_TEXT_LIMIT): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${count.format(text.length)} characters)`;
}
