/**
 * The memory plan: the arena bytes a training session and one step will need, computed from the
 * shapes alone (no allocation), so `--max-memory` can refuse a run before it starts. The formulas
 * mirror the allocation order of `block.ts`, `head.ts`, `transformer.ts` and `src/methods/*`
 * allocation for allocation (each rounded up to the arena's 64-byte alignment); the session tests
 * check that the measured high-water never exceeds the plan.
 *
 * The plan covers the session only. What the arena already holds below it (the kernels' static
 * data, one 4 MiB scratch region per kernel thread, the weight store) is measured, not planned:
 * the train CLI refuses a run whose `arena.used` + `total` (or the high-water already reached)
 * exceeds `--max-memory`, before the session allocates anything.
 *
 * @example
 * ```ts
 * import { planMemory } from "./memory_plan.ts";
 * import { tinyConfig } from "../model/random_weights.ts";
 * const plan = planMemory({
 *   config: tinyConfig("qwen2"), method: "mesp", seqLen: 64, batchSize: 1,
 *   lora: { rank: 8, alpha: 16, targets: ["q", "k", "v", "o", "gate", "up", "down"] },
 *   optimizer: "adamw",
 * });
 * console.log(plan.total > plan.step);
 * ```
 */
import { hasLocalRope, type ModelConfig } from "../model/config.ts";
import {
  type GradientStorage,
  linearShape,
  type LoraConfig,
  loraGradBytes,
  loraParamBytes,
} from "../model/lora.ts";
import type { CheckpointsKind } from "./block_checkpoints.ts";
import { MEZO_CHUNK } from "./mezo.ts";
import { hasGradients, type LcsbSettings, type MethodName, METHODS } from "./registry.ts";
import { adamw8bitStateBytes } from "../optim/adamw8bit.ts";
import type { OptimizerKind } from "../optim/optimizer.ts";

/** Default vocabulary rows per LM-head chunk. */
export const DEFAULT_HEAD_CHUNK_ROWS = 1024;

/**
 * Default token rows per MLP chunk (lean forward, MeSP backward). The chunk's [rows, I]
 * temporaries (3 of them) are the largest part of MeSP's block backward after the attention
 * buffers; 64 rows cost ~3.7 MB at Qwen2.5-0.5B's I = 4864 and keep MeSP's step activations
 * under half of MeBP's at seq 256, while the int4 GEMMs run ~9% less CPU time than with 32 rows
 * (fewer B-panel decompressions and tile remainders per row; measured on a 2-layer 0.5B-shaped
 * step, bench/step_profile.ts). 128 rows save ~4% more but cost 3.7 MB more.
 */
export function defaultMlpChunkRows(_config: ModelConfig): number {
  return 64;
}

export interface MemoryPlanOptions {
  config: ModelConfig;
  method: MethodName;
  seqLen: number;
  batchSize: number;
  lora: LoraConfig;
  optimizer: OptimizerKind;
  headChunkRows?: number;
  mlpChunkRows?: number;
  lcsb?: LcsbSettings;
  /** Most micro-batches per step (default 1); > 1 needs a whole-model gradient buffer. */
  gradAccum?: number;
  /** Gradient-norm clipping threshold (default 0 = off). */
  maxGradNorm?: number;
  /** How clipping holds the gradients until the norm is known (default `bf16`). */
  clipStash?: ClipStash;
  /** A whole-model gradient buffer even where a block slot would do. */
  wholeGradients?: boolean;
  /**
   * Most rows of one micro-batch whose target counts (the rows the head computes). Default, and
   * most: `batchSize × (seqLen − 1)`, as each sequence's last row never has a target.
   */
  headRows?: number;
  /**
   * mebp, mesp: blocks, from the top, whose tapes the forward keeps so their backward recomputes
   * nothing (default 0). Each costs its tape on top of what its checkpoint cost.
   */
  keptTapes?: number;
  /**
   * mebp, mesp, lcsb: where the block checkpoints are kept (default `memory`, in the arena; with
   * `spill`, one `[N, D]` buffer in all: see `block_checkpoints.ts`).
   */
  checkpoints?: CheckpointsKind;
}

/**
 * How a clipping session (one micro-batch, `maxGradNorm` > 0) keeps every gradient until the
 * global norm is known: `bf16`, one block-sized f32 slot plus a bf16 copy of all gradients (half
 * the bytes of the whole buffer; the norm is summed from the f32 gradients, so it is exact, and
 * only the update reads the rounded copy); `f32`, the whole-model f32 buffer (exact update).
 */
export type ClipStash = "bf16" | "f32";

/** Whether a session with these options keeps a bf16 gradient stash (see {@link ClipStash}). */
export function usesClipStash(o: {
  method: MemoryPlanOptions["method"];
  gradAccum?: number;
  maxGradNorm?: number;
  clipStash?: ClipStash;
  wholeGradients?: boolean;
}): boolean {
  return hasGradients(o.method) && !o.wholeGradients && (o.gradAccum ?? 1) === 1 &&
    (o.maxGradNorm ?? 0) > 0 && (o.clipStash ?? "bf16") === "bf16";
}

/** Bytes of the bf16 stash: two per float of the parameters' (aligned) layout. */
export function clipStashBytes(config: ModelConfig, lora: LoraConfig): number {
  return a(loraParamBytes(config, lora) / 2);
}

/**
 * Where a session keeps LoRA gradients (see `LoraParams`): none for MeZO; one block-sized slot
 * when every update is per block (one micro-batch, no clipping) or clipping uses the bf16 stash;
 * else a whole-model buffer.
 */
export function gradientStorageFor(o: {
  method: MemoryPlanOptions["method"];
  gradAccum?: number;
  maxGradNorm?: number;
  clipStash?: ClipStash;
  wholeGradients?: boolean;
}): GradientStorage {
  if (!hasGradients(o.method)) return "none";
  if (o.wholeGradients || (o.gradAccum ?? 1) > 1) return "whole";
  if ((o.maxGradNorm ?? 0) > 0 && !usesClipStash(o)) return "whole";
  return "block";
}

/** Bytes by component. `total` = what the session adds to the arena on top of the store. */
export interface MemoryPlan {
  /** LoRA parameters. */
  lora: number;
  /**
   * LoRA gradient storage (whole buffer, one block's slot, or none: `gradientStorageFor`), plus
   * the bf16 clipping stash where one is kept.
   */
  grads: number;
  /**
   * Optimizer state (AdamW's f32 moments, or their 8-bit codes and block scales) or MeZO's
   * workspace (one block's backup + a z chunk).
   */
  optimizer: number;
  /** Peak of one step's activations (batch buffers, checkpoints, tapes, temporaries). */
  step: number;
  total: number;
  /** Blocks whose tapes a step keeps from the forward (all for `full`, none for lcsb/mezo). */
  keptTapes: number;
}

/** Whether a method can keep the tapes of its top blocks (`keptTapes` > 0). */
export function keepsTapes(method: MethodName): boolean {
  return METHODS[method].tapes === "chosen";
}

/**
 * The most kept tapes (0 to the layer count) whose plan passes `fits`, and that plan: for mebp
 * and mesp with a memory budget, the speed it buys (a kept block skips its recompute). Methods
 * that keep none get 0.
 */
export function keptTapesWithin(
  o: MemoryPlanOptions,
  fits: (plan: MemoryPlan) => boolean,
): { keptTapes: number; plan: MemoryPlan } {
  const none = planMemory({ ...o, keptTapes: 0 });
  if (!keepsTapes(o.method)) return { keptTapes: 0, plan: none };
  // Not monotone in general (a kept block drops its checkpoint), so every count is tried.
  for (let k = o.config.numLayers; k > 0; k--) {
    const plan = planMemory({ ...o, keptTapes: k });
    if (fits(plan)) return { keptTapes: k, plan };
  }
  return { keptTapes: 0, plan: none };
}

const a = (bytes: number) => Math.ceil(bytes / 64) * 64;
const f = (n: number) => a(n * 4);

/**
 * Bytes of one block's tape as `blockForwardTape` allocates it (full, mebp): everything the
 * textbook backward reads — rstd1, n1, q, k, v (post-RoPE), attn, lse, h1, rstd2, n2, gate, up,
 * act, Qwen3's and Gemma's head-norm inputs and rstd, Gemma's sandwich-norm inputs and rstd, and
 * each adapted linear's `h = x Aᵀ` — not counting
 * the block input (a checkpoint).
 * `bench/tape_size.ts` sets it beside what PyTorch autograd saves for the same block.
 */
export function blockTapeBytes(
  c: ModelConfig,
  batchSize: number,
  seqLen: number,
  lora: LoraConfig,
): number {
  const N = batchSize * seqLen;
  const D = c.hiddenSize;
  const Dq = c.numHeads * c.headDim;
  const Dkv = c.numKvHeads * c.headDim;
  const lseLen = batchSize * c.numHeads * seqLen;
  const h = lora.targets.length * f(N * lora.rank);
  const headNorm = c.qkNorm ? f(N * Dq) + f(N * Dkv) + headNormRstdBytes(c, N) : 0;
  const sandwich = c.sandwichNorms ? 2 * (f(N * D) + f(N)) : 0;
  return f(N) + f(N * D) + f(N * Dq) + 2 * f(N * Dkv) + f(N * Dq) + f(lseLen) + f(N * D) + f(N) +
    f(N * D) + 3 * f(N * c.intermediateSize) + headNorm + sandwich + h;
}

/** The head-norm rstd for N token rows: one float per query and per key head. */
function headNormRstdBytes(c: ModelConfig, N: number): number {
  return c.qkNorm ? f(N * c.numHeads) + f(N * c.numKvHeads) : 0;
}

/** Computes the plan; see the module doc. */
export function planMemory(o: MemoryPlanOptions): MemoryPlan {
  const c = o.config;
  const B = o.batchSize;
  const T = o.seqLen;
  const N = B * T;
  const D = c.hiddenSize;
  const I = c.intermediateSize;
  const Dq = c.numHeads * c.headDim;
  const Dkv = c.numKvHeads * c.headDim;
  const lseLen = B * c.numHeads * T;
  const r = o.lora.rank;
  const C = Math.ceil((o.headChunkRows ?? DEFAULT_HEAD_CHUNK_ROWS) / 16) * 16;
  const R = Math.min(o.mlpChunkRows ?? defaultMlpChunkRows(c), N);
  const S = Math.max(1, Math.ceil(R / 4));
  const hasLora = o.lora.targets.length > 0;
  const h = (rows: number) => (hasLora ? f(rows * r) : 0);

  const lora = loraParamBytes(c, o.lora);
  const grads = loraGradBytes(c, o.lora, gradientStorageFor(o)) +
    (usesClipStash(o) ? clipStashBytes(c, o.lora) : 0);
  let optimizer = 0;
  if (!hasGradients(o.method)) {
    // MeZO: the backup slot of ONE block's adapters (packed floats; perturbed just in time around
    // the block's forward) and one chunk of z.
    let blockFloats = 0;
    for (const t of o.lora.targets) {
      const [out, inF] = linearShape(c, t);
      blockFloats += r * (out + inF);
    }
    optimizer = f(blockFloats) + f(MEZO_CHUNK);
  } else if (o.optimizer === "adamw") {
    for (const t of o.lora.targets) {
      const [out, inF] = linearShape(c, t);
      optimizer += 2 * (f(r * inF) + f(r * out));
    }
    optimizer *= c.numLayers;
  } else if (o.optimizer === "adamw8bit") {
    for (const t of o.lora.targets) {
      const [out, inF] = linearShape(c, t);
      optimizer += adamw8bitStateBytes(r * inF) + adamw8bitStateBytes(r * out);
    }
    optimizer *= c.numLayers;
  }

  // ids, targets, the RoPE tables (and the sliding layers' own, when their theta differs).
  const prepare = 2 * f(N) + (hasLocalRope(c) ? 4 : 2) * f(T * (c.headDim / 2));
  // Gemma's sandwich norms (see block.ts for where each buffer lives).
  const sw = c.sandwichNorms === true;
  // The head runs over the counted rows only (gathered).
  const M = Math.max(0, Math.min(o.headRows ?? B * (T - 1), B * (T - 1)));
  const lossPass = f(M) + f(M) + f(M * C);
  // Gathered targets, rstd, n, lse, then the loss pass.
  const headFwd = f(M) + f(M) + f(M * D) + f(M) + lossPass;
  // Gathered targets, rstd, n, rowMax, rowSum, target, oldMax, noHit, acc, targetRows, logits.
  const headBwd = 7 * f(M) + 3 * f(M * D) + f(M * C);
  const attnPartTemp = f(N) + f(N * D) + h(N);
  const headRstd = headNormRstdBytes(c, N);
  const leanMlp = f(R * D) + (sw ? f(R) : 0) + h(R) + f(R) + f(R * D) + 3 * f(R * I) + h(R);
  const leanFwd = f(N * Dq) + f(lseLen) +
    Math.max(f(N * Dq) + 2 * f(N * Dkv) + Math.max(attnPartTemp, headRstd), leanMlp);

  const tape = blockTapeBytes(c, B, T, o.lora);
  const tapeBwd = (sw ? f(N * D) : 0) + f(N * I) * 3 + f(N * D) + f(N * Dq) * 2 + 2 * f(N * Dkv) +
    f(N * D) + h(N);

  // Gemma, per chunk: o's output and its rstd, dMlpOut; with act, down's output and its rstd.
  const mlpSandwich = sw ? 2 * f(R * D) + f(R) : 0;
  const actSandwich = sw ? f(R) + f(R * D) : 0;
  const mlpB = f(R * D) + f(R) + f(R * D) + 2 * f(R * I) + f(R * I) + h(R) + mlpSandwich +
    Math.max(
      h(R),
      /* o, gate, up forward temps */ f(R * I) + actSandwich + h(R),
      2 * f(S * I),
      2 * h(R),
    );
  const qkvAttn = f(N * Dq) + 2 * f(N * Dkv) + f(N * Dq) + f(lseLen) + (sw ? f(N * D) : 0);
  const dqkv = f(N * Dq) + 2 * f(N * Dkv);
  // Qwen3, 4.: one recomputed projection (q's is the larger) and its LoRA temporary.
  const headNormRecompute = c.qkNorm ? f(N * Dq) + h(N) : 0;
  const structured = headRstd + Math.max(
    // 1.-3.: q k v attn lse, then the largest of: n1 + projections, an MLP chunk, dattn + o's
    // backward temporaries, dattn + dq dk dv.
    qkvAttn + Math.max(attnPartTemp, mlpB, f(N * Dq) + 2 * h(N), f(N * Dq) + dqkv),
    // 4.: dq dk dv moved down, rstd1, n1, then a head-norm recompute or dn1 + q/k/v backward
    // temporaries.
    dqkv + f(N) + f(N * D) + Math.max(headNormRecompute, f(N * D) + 2 * h(N)),
  );

  const L = c.numLayers;
  const spec = METHODS[o.method];
  const K = spec.tapes === "chosen" ? (o.keptTapes ?? 0) : spec.tapes === "all" ? L : 0;
  if (!(Number.isInteger(K) && K >= 0 && K <= L)) {
    throw new RangeError(`keptTapes must be in 0..${L}, got ${o.keptTapes}`);
  }
  if (spec.tapes !== "chosen" && (o.keptTapes ?? 0) > 0) {
    throw new RangeError(`${o.method} keeps no tapes (only mebp and mesp do)`);
  }
  let step = spec.planStep({
    residual: f(N * D),
    tape,
    tapeBackward: tapeBwd,
    structuredBackward: structured,
    leanForward: leanFwd,
    headForward: headFwd,
    headBackward: headBwd,
    numLayers: L,
    keptTapes: K,
    lcsb: o.lcsb,
    checkpoints: o.checkpoints,
  });
  step += prepare;
  return { lora, grads, optimizer, step, total: lora + grads + optimizer + step, keptTapes: K };
}
