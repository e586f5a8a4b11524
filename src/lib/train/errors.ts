/** A training run's settings or data cannot train; free of TensorFlow.js so settings validate without tf. */
export class TrainConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainConfigError';
  }
}
