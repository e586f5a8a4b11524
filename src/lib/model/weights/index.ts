/** Pretrained weights: assignment by name, and the two file formats they come in. */
export {
  assignWeights,
  checkWeights,
  leafLayers,
  readNamedWeights,
  shortWeightName,
  WeightsMismatchError,
  type LoadReport,
  type NamedWeight,
  type WeightProblem,
} from './assign.ts';
export {
  DEFAULT_SHARD_BYTES,
  filesIOHandler,
  loadTfjsLayersWeights,
  readTfjsLayersWeights,
  toTfjsLayersFiles,
  type FileLike,
  type NamedFile,
} from './tfjsLayers.ts';
export { kerasWeightName, loadKerasH5Weights, readKerasH5, type KerasH5File } from './keras-h5.ts';
