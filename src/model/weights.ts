/**
 * How the model reads its frozen base weights. A `WeightStore` (resident or streamed, see
 * `src/io/weight_store.ts`) hands out pointers into the kernels' linear memory; the model never
 * sees files.
 */
import type { Ptr } from "../runtime/ptr.ts";
import type { ModelConfig } from "./config.ts";

/** A frozen linear `y = W x (+ b)`, W `[out, in]`, f32 or int4 (MLX affine, see abi.ts). */
export type LinearWeight =
  | { kind: "f32"; out: number; in: number; w: Ptr; bias: Ptr | null }
  | {
    kind: "int4";
    out: number;
    in: number;
    q: Ptr;
    scales: Ptr;
    biases: Ptr;
    groupSize: number;
    bias: Ptr | null;
  };

/** The seven linears every block has, in PEFT's target-module names. */
export const LINEAR_NAMES = ["q", "k", "v", "o", "gate", "up", "down"] as const;
export type LinearName = typeof LINEAR_NAMES[number];

/**
 * Frozen weights of one transformer block. Norm weights are f32 `[hidden]`, each the multiplier
 * its norm applies (a Gemma `1 + w` already added by the store).
 */
export interface BlockWeights {
  /** Which layer this is (its attention kind and RoPE come from `config.layerTypes`). */
  index: number;
  linears: Record<LinearName, LinearWeight>;
  inputNorm: Ptr;
  /**
   * The norm of the MLP input: HF `post_attention_layernorm` in Qwen and Llama,
   * `pre_feedforward_layernorm` in Gemma 3.
   */
  postAttentionNorm: Ptr;
  /** Qwen3's and Gemma 3's per-head `q_norm` / `k_norm` weights, f32 `[headDim]`; or null. */
  qkNorm: { q: Ptr; k: Ptr } | null;
  /**
   * Gemma 3's norms of the attention output (HF `post_attention_layernorm`) and of the MLP
   * output (`post_feedforward_layernorm`) before their residual adds; null without them.
   */
  sandwichNorms: { attnOut: Ptr; mlpOut: Ptr } | null;
}

/** One vocabulary chunk of the LM head: rows `v0 .. v0 + weight.out - 1`. */
export interface HeadChunk {
  v0: number;
  weight: LinearWeight;
}

export interface WeightStore {
  readonly config: ModelConfig;
  readonly quant: "int4" | "none";
  /**
   * Makes block `i`'s weights addressable until `releaseBlock(i)`. A streamed store holds one
   * block at a time in a planned slot: acquire, use, release, then the next.
   */
  acquireBlock(i: number): Promise<BlockWeights>;
  releaseBlock(i: number): void;
  /** out[T, hidden] = embedding rows of the i32 token ids at `ids`. */
  embed(out: Ptr, ids: Ptr, T: number): Promise<void>;
  /** Final RMSNorm weight (its multiplier, as the block norms), f32 `[hidden]`. */
  readonly finalNorm: Ptr;
  /**
   * The LM head (the embedding when tied) in chunks of at most `rows` vocabulary rows; a chunk's
   * pointers are valid only until the iteration moves on.
   */
  headChunks(rows: number): AsyncIterable<HeadChunk>;
  /** Bytes this store holds in JS buffers outside linear memory (for the memory report). */
  jsBytesHeld(): number;
  close(): Promise<void>;
}
