/**
 * The model hyper-parameters slimtune needs, normalized from a Hugging Face `config.json`
 * (Qwen2 / Qwen3 / Llama / SmolLM2 / Gemma 3). Parsing lives in `src/io/config.ts`.
 *
 * The block is described by data: the optional fields below default to the Qwen2 / Llama block
 * (`x·w` norms, SwiGLU, no sandwich norms, score scale `headDim^-0.5`, every layer full causal
 * attention with one RoPE theta), so an absent field never changes an existing model.
 */

/** How a layer attends: every earlier key (`full`), or the last `slidingWindow` keys. */
export type LayerType = "full" | "sliding";
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
   * `llama` (Llama 3.x, SmolLM2; no biases) or `gemma3` (Gemma 3 text: see the fields below).
   */
  architecture: "qwen2" | "qwen3" | "llama" | "gemma3";
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
   * Qwen3's and Gemma 3's `q_norm` / `k_norm`: an RMSNorm (weight `[headDim]`, eps `rmsNormEps`) of every query
   * and key head after the projection and before RoPE. Absent means false.
   */
  qkNorm?: boolean;
  /**
   * 1 when checkpoints store RMSNorm weights zero-centred and the norm multiplies by `1 + w`
   * (Gemma). The stores add it when they load a norm weight (`1 + w` rounded to f32, the value
   * transformers multiplies by), so the kernels only ever see the multiplier. Absent means 0.
   */
  normWeightOffset?: 0 | 1;
  /**
   * Gemma 3's sandwich norms: the attention output and the MLP output each go through their
   * own RMSNorm (`post_attention_layernorm`, `post_feedforward_layernorm`) before their residual
   * add. Absent means false.
   */
  sandwichNorms?: boolean;
  /** The MLP's gate activation: `silu` (SwiGLU) or `gelu_tanh` (GeGLU, tanh GELU). Absent: silu. */
  mlpActivation?: "silu" | "gelu_tanh";
  /** Multiplier of the embedding rows fed to the first block (Gemma: √hidden). Absent means 1. */
  embedScale?: number;
  /** Attention score scale (Gemma: `query_pre_attn_scalar^-0.5`). Absent: `headDim^-0.5`. */
  attentionScale?: number;
  /** Per-layer attention kind (length numLayers). Absent: every layer `full`. */
  layerTypes?: LayerType[];
  /** Keys a `sliding` layer sees: key j is visible to query i iff j <= i and i - j < window. */
  slidingWindow?: number;
  /** RoPE theta of `sliding` layers (Gemma: `rope_local_base_freq`). Absent: ropeTheta. */
  ropeLocalTheta?: number;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  /** `pad_token_id` from config.json when given (padding ids are never trained on). */
  padTokenId?: number | null;
}

/** The attention kind of layer `i`. */
export function layerType(c: ModelConfig, i: number): LayerType {
  return c.layerTypes?.[i] ?? "full";
}

/** The key window of layer `i`: 0 for full attention, else `slidingWindow`. */
export function layerWindow(c: ModelConfig, i: number): number {
  return layerType(c, i) === "sliding" ? c.slidingWindow ?? 0 : 0;
}

/** Attention score scale of the model. */
export function attentionScale(c: ModelConfig): number {
  return c.attentionScale ?? 1 / Math.sqrt(c.headDim);
}

/** Whether sliding layers rotate with their own RoPE tables (a theta other than ropeTheta). */
export function hasLocalRope(c: ModelConfig): boolean {
  return c.ropeLocalTheta !== undefined && c.ropeLocalTheta !== c.ropeTheta &&
    (c.layerTypes?.includes("sliding") ?? false);
}
