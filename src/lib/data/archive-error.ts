/** An archive that cannot be listed, or an entry of it that cannot be read. The message names the file. */
export class ArchiveError extends Error {
  constructor(
    message: string,
    readonly fileName: string,
    /** The entry at fault, when the archive itself was readable. */
    readonly entry?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ArchiveError';
  }
}
