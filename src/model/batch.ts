/** A batch of token sequences, as the trainer hands it to a training session. */
export interface Batch {
  /** Token ids `[batchSize * seqLen]`, row-major. */
  inputIds: Int32Array;
  /** Labels `[batchSize * seqLen]`, NOT shifted (the loss shifts, HF convention); -100 = ignored. */
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
}
