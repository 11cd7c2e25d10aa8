/**
 * The decoder-only transformer with LoRA as a set of per-step pieces the training methods
 * compose: batch preparation (ids, shifted targets, RoPE tables in the arena), the embedding, the
 * lean forward of all blocks, and the loss.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import type { Batch } from "../data/batch.ts";
import { type BlockContext, blockForward } from "./block.ts";
import { hasLocalRope, type ModelConfig } from "./config.ts";
import { shiftLabels } from "../data/labels.ts";
import { type HeadContext, headLoss } from "./head.ts";
import type { LoraParams } from "./lora.ts";
import { ropeTables } from "./rope_tables.ts";
import type { WeightStore } from "./weights.ts";

/** The frozen model, its adapters and the chunking knobs. */
export interface LoraModel {
  config: ModelConfig;
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  lora: LoraParams;
  /** Vocabulary rows per LM-head chunk (multiple of 16). */
  headChunkRows: number;
  /** Token rows per MLP chunk in the lean forward and MeSP's backward. */
  mlpChunkRows: number;
  /** Every row through the head, not only the counted ones (the tests' reference path). */
  headAllRows?: boolean;
}

/** A batch laid out in the arena for one forward/backward. */
export interface PreparedBatch {
  block: BlockContext;
  head: HeadContext;
  /** i32 [N] token ids. */
  ids: Ptr;
  /** i32 [N] shifted targets (-1 = ignored). */
  targets: Ptr;
  N: number;
  /** Rows that count in the loss. */
  count: number;
}

/** Checks a batch against the model. */
export function validateBatch(config: ModelConfig, b: Batch): void {
  const n = b.batchSize * b.seqLen;
  if (
    !(Number.isInteger(b.batchSize) && b.batchSize > 0 && Number.isInteger(b.seqLen) &&
      b.seqLen > 0)
  ) {
    throw new RangeError(`bad batch shape ${b.batchSize} x ${b.seqLen}`);
  }
  if (b.inputIds.length !== n || b.labels.length !== n) {
    throw new RangeError(`batch arrays must hold ${n} = ${b.batchSize} x ${b.seqLen} entries`);
  }
  for (const id of b.inputIds) {
    if (id < 0 || id >= config.vocabSize) {
      throw new RangeError(`token id ${id} outside the vocabulary`);
    }
  }
}

/**
 * The buffers {@link prepareBatch} allocates for `batchSize` sequences of `seqLen` tokens: ids
 * and targets (i32), the RoPE tables, and the sliding layers' own where their theta differs.
 */
export function batchTable(config: ModelConfig, batchSize: number, seqLen: number) {
  const N = batchSize * seqLen;
  const table = seqLen * (config.headDim / 2);
  const local = hasLocalRope(config) ? table : 0;
  return { ids: N, targets: N, cos: table, sin: table, cosLocal: local, sinLocal: local };
}

/** Allocates (on the arena top) and fills ids, targets and RoPE tables for `batch`. */
export function prepareBatch(m: LoraModel, batch: Batch): PreparedBatch {
  const { config, arena } = m;
  validateBatch(config, batch);
  const T = batch.seqLen;
  const N = batch.batchSize * T;
  const t = batchTable(config, batch.batchSize, T);
  const ids = arena.allocI32(t.ids);
  arena.i32(ids, N).set(batch.inputIds);
  const targets = arena.allocI32(t.targets);
  const count = shiftLabels(
    batch.labels,
    batch.batchSize,
    T,
    config.vocabSize,
    arena.i32(targets, N),
  );
  const half = config.headDim / 2;
  const cos = arena.allocF32(t.cos);
  const sin = arena.allocF32(t.sin);
  const positions = Array.from({ length: T }, (_, t) => t);
  ropeTables(config, positions, { cos: arena.f32(cos, T * half), sin: arena.f32(sin, T * half) });
  let ropeLocal: { cos: Ptr; sin: Ptr } | undefined;
  if (hasLocalRope(config)) {
    // Sliding layers' tables (Gemma: rope_local_base_freq, no scaling).
    ropeLocal = { cos: arena.allocF32(t.cosLocal), sin: arena.allocF32(t.sinLocal) };
    ropeTables(
      { headDim: config.headDim, ropeTheta: config.ropeLocalTheta!, ropeScaling: null },
      positions,
      { cos: arena.f32(ropeLocal.cos, T * half), sin: arena.f32(ropeLocal.sin, T * half) },
    );
  }
  return {
    block: {
      config,
      kernels: m.kernels,
      arena,
      batchSize: batch.batchSize,
      seqLen: T,
      cos,
      sin,
      ropeLocal,
      mlpChunkRows: m.mlpChunkRows,
    },
    head: {
      store: m.store,
      kernels: m.kernels,
      arena,
      headChunkRows: m.headChunkRows,
      allRows: m.headAllRows ?? false,
    },
    ids,
    targets,
    N,
    count,
  };
}

/** resid [N, D] = embedding rows of the batch's ids (times the config's `embedScale`). */
export async function embed(m: LoraModel, p: PreparedBatch, resid: Ptr): Promise<void> {
  await m.store.embed(resid, p.ids, p.N);
  const scale = m.config.embedScale ?? 1;
  if (scale !== 1) m.kernels.scale(resid, scale, p.N * m.config.hiddenSize);
}

/** Lean forward of block `i` in place on `resid`, acquiring and releasing its weights. */
export async function forwardBlock(
  m: LoraModel,
  p: PreparedBatch,
  i: number,
  resid: Ptr,
): Promise<void> {
  const bw = await m.store.acquireBlock(i);
  try {
    blockForward(p.block, bw, m.lora.blocks[i], resid);
  } finally {
    m.store.releaseBlock(i);
  }
}

/**
 * Per-block hooks of {@link forwardLoss}: `beforeBlock(i)` runs right before block i's forward
 * (before its weights are acquired and any of its LoRA parameters is read) and `afterBlock(i)`
 * right after it, also when the block's forward throws. Block i's LoRA parameters are read only
 * between the two, so a hook pair can change them just for that block (MeZO perturbs them just in
 * time and restores them right after).
 */
export interface BlockHooks {
  beforeBlock: (i: number) => void;
  afterBlock: (i: number) => void;
}

/**
 * Forward only: Σ cross-entropy over counted rows, and the count. Keeps nothing. `hooks` run
 * around each block's forward (see {@link BlockHooks}).
 */
export async function forwardLoss(
  m: LoraModel,
  batch: Batch,
  hooks?: BlockHooks,
): Promise<{ lossSum: number; count: number }> {
  const mark = m.arena.mark();
  try {
    const p = prepareBatch(m, batch);
    const resid = m.arena.allocF32(p.N * m.config.hiddenSize);
    await embed(m, p, resid);
    for (let i = 0; i < m.config.numLayers; i++) {
      hooks?.beforeBlock(i);
      try {
        await forwardBlock(m, p, i, resid);
      } finally {
        hooks?.afterBlock(i);
      }
    }
    const lossSum = await headLoss(p.head, resid, p.targets, p.N);
    return { lossSum, count: p.count };
  } finally {
    m.arena.release(mark);
  }
}
