/** A batch of token sequences, as the data yields it and a training session takes it. */
export interface Batch {
  /** Token ids `[batchSize * seqLen]`, row-major. */
  inputIds: Int32Array;
  /** Labels `[batchSize * seqLen]`, NOT shifted: docs/design.md, "Loss and labels". */
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
}
