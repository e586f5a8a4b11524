/** Runs: records, their files, storage contract, comparison, and the export zip. */
export * from './record.ts';
export * from './files.ts';
export * from './model.ts';
export * from './store.ts';
export * from './compare.ts';
export * from './export.ts';
export * from './naming.ts';
