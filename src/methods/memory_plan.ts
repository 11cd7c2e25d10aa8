/**
 * The memory plan: the arena bytes a training session and one step will need, computed from the
 * shapes alone (no allocation), so `--max-memory` can refuse a run before it starts. It only sums
 * terms: the block and head functions' peaks come from the buffer tables they allocate from
 * (`src/model/block_tables.ts`, `head_tables.ts`), the batch's from `batchTable`, each method's
 * step from its own `...StepBytes`, the adapters' and optimizers' from their owners;
 * tests/plan_measured_test.ts holds the plan to the measured high-water.
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
import type { ModelConfig } from "../model/config.ts";
import {
  type GradientStorage,
  loraBlockTensorFloats,
  type LoraConfig,
  loraGradBytes,
  loraParamBytes,
  loraParamCount,
} from "../model/lora.ts";
import { blockPeaks, type BlockShape, loraRanksOf, tapeBytes } from "../model/block_tables.ts";
import { floatBytes, tableBytes } from "../model/buffer_table.ts";
import { headChunkRowsOf, headPeaks } from "../model/head_tables.ts";
import { batchTable } from "../model/transformer.ts";
import type { CheckpointsKind } from "./block_checkpoints.ts";
import { mezoWorkspaceTable } from "./mezo.ts";
import { hasGradients, type LcsbSettings, type MethodName, METHODS } from "./registry.ts";
import { optimizerStateBytes } from "../optim/factory.ts";
import type { OptimizerKind } from "../optim/optimizer.ts";
import { alignUp, ARENA_ALIGN } from "../runtime/arena.ts";

export { DEFAULT_HEAD_CHUNK_ROWS } from "../model/head_tables.ts";

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
  return alignUp(loraParamBytes(config, lora) / 2, ARENA_ALIGN);
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

/** The {@link BlockShape} of a step of these options. */
function stepShape(o: MemoryPlanOptions): BlockShape {
  return {
    config: o.config,
    batchSize: o.batchSize,
    seqLen: o.seqLen,
    mlpChunkRows: o.mlpChunkRows ?? defaultMlpChunkRows(o.config),
    loraRanks: loraRanksOf(o.lora),
  };
}

/**
 * Bytes of one block's tape as `blockForwardTape` allocates it (full, mebp): everything the
 * textbook backward reads (see `tapeTable`), without the block input (a checkpoint).
 * `bench/tape_size.ts` sets it beside what PyTorch autograd saves for the same block.
 */
export function blockTapeBytes(
  c: ModelConfig,
  batchSize: number,
  seqLen: number,
  lora: LoraConfig,
): number {
  // A tape holds whole [N, ·] buffers: the MLP chunking does not size it.
  return tapeBytes({ config: c, batchSize, seqLen, mlpChunkRows: 1, loraRanks: loraRanksOf(lora) });
}

/** Computes the plan; see the module doc. */
export function planMemory(o: MemoryPlanOptions): MemoryPlan {
  const c = o.config;
  const B = o.batchSize;
  const T = o.seqLen;

  const lora = loraParamBytes(c, o.lora);
  const grads = loraGradBytes(c, o.lora, gradientStorageFor(o)) +
    (usesClipStash(o) ? clipStashBytes(c, o.lora) : 0);
  let optimizer = 0;
  if (!hasGradients(o.method)) {
    // MeZO: the backup slot of ONE block's adapters (packed floats; perturbed just in time around
    // the block's forward) and one chunk of z.
    optimizer = tableBytes(mezoWorkspaceTable(loraParamCount(c, o.lora) / c.numLayers));
  } else {
    for (const n of loraBlockTensorFloats(c, o.lora)) {
      optimizer += optimizerStateBytes(o.optimizer, n);
    }
    optimizer *= c.numLayers;
  }

  const L = c.numLayers;
  const spec = METHODS[o.method];
  const K = spec.tapes === "chosen" ? (o.keptTapes ?? 0) : spec.tapes === "all" ? L : 0;
  if (!(Number.isInteger(K) && K >= 0 && K <= L)) {
    throw new RangeError(`keptTapes must be in 0..${L}, got ${o.keptTapes}`);
  }
  if (spec.tapes !== "chosen" && (o.keptTapes ?? 0) > 0) {
    throw new RangeError(`${o.method} keeps no tapes (only mebp and mesp do)`);
  }
  // The head runs over the counted rows only (gathered).
  const headRows = Math.max(0, Math.min(o.headRows ?? B * (T - 1), B * (T - 1)));
  const head = headPeaks({
    rows: headRows,
    hiddenSize: c.hiddenSize,
    chunkRows: headChunkRowsOf(o.headChunkRows),
  });
  const step = tableBytes(batchTable(c, B, T)) + spec.planStep({
    ...blockPeaks(stepShape(o)),
    residual: floatBytes(B * T * c.hiddenSize),
    headForward: head.forward,
    headBackward: head.backward,
    numLayers: L,
    keptTapes: K,
    checkpoints: o.checkpoints,
  }, o.lcsb);
  return { lora, grads, optimizer, step, total: lora + grads + optimizer + step, keptTapes: K };
}
