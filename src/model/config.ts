/**
 * The model hyper-parameters slimtune needs, normalized from a Hugging Face `config.json`
 * (Qwen2 / Qwen3 / Llama / SmolLM2). Parsing lives in `src/io/config.ts`.
 */
export interface RopeScalingLlama3 {
  type: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface ModelConfig {
  /**
   * `qwen2` (q/k/v biases), `qwen3` (no biases by default; RMSNorm of every q and k head) or
   * `llama` (Llama 3.x, SmolLM2; no biases).
   */
  architecture: "qwen2" | "qwen3" | "llama";
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  ropeTheta: number;
  ropeScaling: RopeScalingLlama3 | null;
  rmsNormEps: number;
  /** lm_head shares the embedding matrix. */
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2). */
  qkvBias: boolean;
  /**
   * Qwen3's `q_norm` / `k_norm`: an RMSNorm (weight `[headDim]`, eps `rmsNormEps`) of every query
   * and key head after the projection and before RoPE. Absent means false.
   */
  qkNorm?: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  /** `pad_token_id` from config.json when given (padding ids are never trained on). */
  padTokenId?: number | null;
}
