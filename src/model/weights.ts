/**
 * How the model reads its frozen base weights. A `WeightStore` (resident or streamed, see
 * `src/io/weight_store.ts`) hands out pointers into the kernels' linear memory; the model never
 * sees files.
 */
import type { Ptr } from "../kernels/abi.ts";
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

/** Frozen weights of one transformer block. Norm weights are f32 `[hidden]`. */
export interface BlockWeights {
  linears: Record<LinearName, LinearWeight>;
  inputNorm: Ptr;
  postAttentionNorm: Ptr;
  /** Qwen3's per-head `q_norm` / `k_norm` weights, f32 `[headDim]` each; null without them. */
  qkNorm: { q: Ptr; k: Ptr } | null;
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
  /** Final RMSNorm weight, f32 `[hidden]`. */
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
