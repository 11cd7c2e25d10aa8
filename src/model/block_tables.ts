/**
 * The buffers of every block function (`block.ts`) as named tables, and each function's arena
 * peak replayed from them: `block.ts` allocates each buffer by its name from these tables, and the
 * memory plan sums the peaks, so a size is written once. The replays follow `block.ts`'s
 * allocation order step for step (the `_test.ts` beside this file and tests/plan_measured_test.ts
 * hold them to the measured high-water exactly).
 *
 * @example
 * ```ts
 * import { blockPeaks, loraRanksOf } from "./block_tables.ts";
 * import { tinyConfig } from "./random_weights.ts";
 * const peaks = blockPeaks({
 *   config: tinyConfig("qwen2"), batchSize: 1, seqLen: 16, mlpChunkRows: 8,
 *   loraRanks: loraRanksOf({ rank: 4, targets: ["q", "v"] }),
 * });
 * console.log(peaks.structuredBackward < peaks.tape + peaks.tapeBackward); // true
 * ```
 */
import type { ModelConfig } from "./config.ts";
import { StackPeak, tableBytes } from "./buffer_table.ts";
import type { LinearName } from "./weights.ts";

/** What sizes a block's buffers: the model, the batch, the MLP chunking and the adapters. */
export interface BlockShape {
  config: ModelConfig;
  batchSize: number;
  seqLen: number;
  /** Rows per MLP chunk in the lean forward and the structured backward. */
  mlpChunkRows: number;
  /** The rank of each adapted linear (absent: not adapted). */
  loraRanks: Partial<Record<LinearName, number>>;
}

/** The {@link BlockShape.loraRanks} of one rank over `targets`. */
export function loraRanksOf(
  lora: { rank: number; targets: readonly LinearName[] },
): Partial<Record<LinearName, number>> {
  const ranks: Partial<Record<LinearName, number>> = {};
  for (const t of lora.targets) ranks[t] = lora.rank;
  return ranks;
}

/** Floats of linear `name`'s LoRA `h = x Aᵀ` over `rows` rows (0 when it has no adapter). */
export function loraHFloats(s: BlockShape, name: LinearName, rows: number): number {
  return rows * (s.loraRanks[name] ?? 0);
}

/** Derived sizes. */
export function blockDims(c: ModelConfig, batchSize: number, seqLen: number) {
  const N = batchSize * seqLen;
  return {
    N,
    D: c.hiddenSize,
    I: c.intermediateSize,
    Dq: c.numHeads * c.headDim,
    Dkv: c.numKvHeads * c.headDim,
    lseLen: batchSize * c.numHeads * seqLen,
  };
}

/** Rows of the MLP's first (and largest) chunk. */
export function mlpChunkRowsOf(s: BlockShape): number {
  return Math.min(s.mlpChunkRows, s.batchSize * s.seqLen);
}

/** Rows per sub-chunk of the in-place MLP activation backward. */
export function swigluSubRows(rows: number): number {
  return Math.max(1, Math.ceil(rows / 4));
}

// ---- tables ----

/** The attention's input norm, a temporary of `attentionPart` where the caller gives none. */
export function attentionInputTable(s: BlockShape) {
  const { N, D } = blockDims(s.config, s.batchSize, s.seqLen);
  return { rstd1: N, n1: N * D };
}

/** The head norms' rstd (Qwen3, Gemma), one float per query and per key head of each row. */
export function headNormRstdTable(s: BlockShape) {
  const c = s.config;
  const N = s.batchSize * s.seqLen;
  return { rstdQ: c.qkNorm ? N * c.numHeads : 0, rstdK: c.qkNorm ? N * c.numKvHeads : 0 };
}

/** q, k, v (post-norm, post-RoPE). */
export function qkvTable(s: BlockShape) {
  const { N, Dq, Dkv } = blockDims(s.config, s.batchSize, s.seqLen);
  return { q: N * Dq, k: N * Dkv, v: N * Dkv };
}

/** The attention output and its log-sum-exp. */
export function attentionOutTable(s: BlockShape) {
  const { N, Dq, lseLen } = blockDims(s.config, s.batchSize, s.seqLen);
  return { attn: N * Dq, lse: lseLen };
}

/** One MLP chunk of the lean forward (`rows` rows); `rstdOut` only with sandwich norms. */
export function leanMlpChunkTable(s: BlockShape, rows: number) {
  const { D, I } = blockDims(s.config, s.batchSize, s.seqLen);
  const sw = s.config.sandwichNorms === true;
  return {
    tmp: rows * D,
    rstdOut: sw ? rows : 0,
    rstd: rows,
    n2: rows * D,
    gate: rows * I,
    up: rows * I,
    act: rows * I,
  };
}

/** The LoRA `h` of each adapted linear kept on a tape. */
export function tapeHTable(s: BlockShape): Partial<Record<LinearName, number>> {
  const N = s.batchSize * s.seqLen;
  const h: Partial<Record<LinearName, number>> = {};
  for (const [name, rank] of Object.entries(s.loraRanks)) h[name as LinearName] = N * rank!;
  return h;
}

/**
 * One block's tape without its input and the `h`s ({@link tapeHTable}): what the textbook
 * backward reads. Head-norm inputs and rstd only with head norms, sandwich-norm inputs and rstd
 * only with sandwich norms.
 */
export function tapeTable(s: BlockShape) {
  const c = s.config;
  const { N, D, I, Dq, Dkv, lseLen } = blockDims(c, s.batchSize, s.seqLen);
  const qk = c.qkNorm === true;
  const sw = c.sandwichNorms === true;
  const rstd = headNormRstdTable(s);
  return {
    rstd1: N,
    n1: N * D,
    q: N * Dq,
    k: N * Dkv,
    v: N * Dkv,
    attn: N * Dq,
    lse: lseLen,
    h1: N * D,
    rstd2: N,
    n2: N * D,
    gate: N * I,
    up: N * I,
    act: N * I,
    qPre: qk ? N * Dq : 0,
    kPre: qk ? N * Dkv : 0,
    rstdQ: rstd.rstdQ,
    rstdK: rstd.rstdK,
    attnOut: sw ? N * D : 0,
    rstdAttnOut: sw ? N : 0,
    mlpOut: sw ? N * D : 0,
    rstdMlpOut: sw ? N : 0,
  };
}

/** The output of a tape recompute's MLP-output norm (sandwich norms: needed, then dropped). */
export function tapeRecomputeTable(s: BlockShape) {
  const { N, D } = blockDims(s.config, s.batchSize, s.seqLen);
  return { out: s.config.sandwichNorms ? N * D : 0 };
}

/** The textbook backward's gradients, in their order; `dBranch` only with sandwich norms. */
export function tapeBackwardTable(s: BlockShape) {
  const { N, D, I, Dq, Dkv } = blockDims(s.config, s.batchSize, s.seqLen);
  return {
    dBranch: s.config.sandwichNorms ? N * D : 0,
    dact: N * I,
    dgate: N * I,
    dup: N * I,
    dn2: N * D,
    dattn: N * Dq,
    dq: N * Dq,
    dk: N * Dkv,
    dv: N * Dkv,
    dn1: N * D,
  };
}

/** Step 1. of the structured backward: q k v attn lse, and Gemma's d(o's output). */
export function structuredAttentionTable(s: BlockShape) {
  const { N, D } = blockDims(s.config, s.batchSize, s.seqLen);
  return {
    ...qkvTable(s),
    ...attentionOutTable(s),
    dAttnOut: s.config.sandwichNorms ? N * D : 0,
  };
}

/** One MLP chunk of the structured backward (`rows` rows), in allocation order. */
export function structuredMlpChunkTable(s: BlockShape, rows: number) {
  const { D, I } = blockDims(s.config, s.batchSize, s.seqLen);
  const sw = s.config.sandwichNorms === true;
  return {
    oOut: sw ? rows * D : 0,
    rstdO: sw ? rows : 0,
    h1: rows * D,
    rstd2: rows,
    n2: rows * D,
    gate: rows * I,
    up: rows * I,
    dact: rows * I,
    dh: loraHFloats(s, "down", rows),
    dMlpOut: sw ? rows * D : 0,
  };
}

/** The activation of one structured MLP chunk and, with sandwich norms, down's recomputed output. */
export function structuredActTable(s: BlockShape, rows: number) {
  const { D, I } = blockDims(s.config, s.batchSize, s.seqLen);
  const sw = s.config.sandwichNorms === true;
  return { act: rows * I, rstdM: sw ? rows : 0, mOut: sw ? rows * D : 0 };
}

/** The in-place activation backward's sub-chunk buffer for a chunk of `rows` rows. */
export function actBackwardTable(s: BlockShape, rows: number) {
  const S = swigluSubRows(rows);
  const I = s.config.intermediateSize;
  return { tg: S * I, tu: S * I };
}

/** Step 3.: dattn, then dq dk dv above it (moved down over q once the attention is done). */
export function structuredGradsTable(s: BlockShape) {
  const { N, Dq, Dkv } = blockDims(s.config, s.batchSize, s.seqLen);
  return { dattn: N * Dq, dq: N * Dq, dk: N * Dkv, dv: N * Dkv };
}

/** Step 4.: the recomputed input norm, the head norms' recomputed inputs, dn1. */
export function structuredInputTable(s: BlockShape) {
  const c = s.config;
  const { N, D, Dq, Dkv } = blockDims(c, s.batchSize, s.seqLen);
  return {
    ...attentionInputTable(s),
    qPre: c.qkNorm ? N * Dq : 0,
    kPre: c.qkNorm ? N * Dkv : 0,
    dn1: N * D,
  };
}

// ---- peaks, replaying block.ts's allocation order ----

/** `loraLinearForward` of `name` without a tape `h`: its `h` as a temporary. */
function linearForward(st: StackPeak, s: BlockShape, name: LinearName, rows: number): void {
  st.temp(loraHFloats(s, name, rows));
}

/** `loraLinearBackward` of `name`: `dh`, and (no tape `h`) the recomputed `h` above it. */
function linearBackward(
  st: StackPeak,
  s: BlockShape,
  name: LinearName,
  rows: number,
  tapeH: boolean,
): void {
  const m = st.mark();
  st.alloc(loraHFloats(s, name, rows));
  if (!tapeH) st.temp(loraHFloats(s, name, rows));
  st.release(m);
}

/** `attentionPart` with no tape: its input norm and q/k/v `h`s, then the head norms' rstd. */
function attentionPart(st: StackPeak, s: BlockShape, rstdGiven: boolean): void {
  const m = st.mark();
  st.table(attentionInputTable(s));
  for (const name of ["q", "k", "v"] as const) linearForward(st, s, name, s.batchSize * s.seqLen);
  st.release(m);
  if (s.config.qkNorm && !rstdGiven) st.table(headNormRstdTable(s)).release(m);
}

/** Arena peak of `blockForward` (the lean forward), in bytes above its start. */
export function leanForwardPeak(s: BlockShape): number {
  const st = new StackPeak().table(attentionOutTable(s));
  const qkvMark = st.mark();
  st.table(qkvTable(s));
  attentionPart(st, s, false);
  st.release(qkvMark);
  const rows = mlpChunkRowsOf(s);
  const t = leanMlpChunkTable(s, rows);
  st.alloc(t.tmp).alloc(t.rstdOut);
  linearForward(st, s, "o", rows);
  st.alloc(t.rstd).alloc(t.n2).alloc(t.gate).alloc(t.up).alloc(t.act);
  for (const name of ["gate", "up", "down"] as const) linearForward(st, s, name, rows);
  return st.peak;
}

/** Bytes of one block's tape ({@link tapeTable} and {@link tapeHTable}) without its input. */
export function tapeBytes(s: BlockShape): number {
  return tableBytes(tapeHTable(s)) + tableBytes(tapeTable(s));
}

/** Arena peak of a tape recompute (`blockForwardTape` with no output), the tape included. */
export function tapeRecomputePeak(s: BlockShape): number {
  return new StackPeak().bytes(tapeBytes(s)).temp(tapeRecomputeTable(s).out).peak;
}

/** Arena peak of `blockBackwardTape`'s temporaries (the tape is not counted). */
export function tapeBackwardPeak(s: BlockShape): number {
  const N = s.batchSize * s.seqLen;
  const t = tapeBackwardTable(s);
  const st = new StackPeak().alloc(t.dBranch).alloc(t.dact);
  linearBackward(st, s, "down", N, true);
  st.alloc(t.dgate).alloc(t.dup).alloc(t.dn2);
  linearBackward(st, s, "gate", N, true);
  linearBackward(st, s, "up", N, true);
  st.alloc(t.dattn);
  linearBackward(st, s, "o", N, true);
  st.alloc(t.dq).alloc(t.dk).alloc(t.dv).alloc(t.dn1);
  for (const name of ["q", "k", "v"] as const) linearBackward(st, s, name, N, true);
  return st.peak;
}

/** Arena peak of `blockBackwardStructured` (MeSP's backward), in bytes above its start. */
export function structuredBackwardPeak(s: BlockShape): number {
  const N = s.batchSize * s.seqLen;
  const sw = s.config.sandwichNorms === true;
  const st = new StackPeak().table(headNormRstdTable(s));
  const mark = st.mark();
  // 1.
  const a = structuredAttentionTable(s);
  st.alloc(a.q).alloc(a.k).alloc(a.v).alloc(a.attn).alloc(a.lse);
  attentionPart(st, s, true);
  st.alloc(a.dAttnOut);
  // 2. (the first chunk is the largest)
  const rows = mlpChunkRowsOf(s);
  const chunkMark = st.mark();
  const c = structuredMlpChunkTable(s, rows);
  st.alloc(c.oOut).alloc(c.rstdO).alloc(c.h1);
  linearForward(st, s, "o", rows);
  st.alloc(c.rstd2).alloc(c.n2).alloc(c.gate).alloc(c.up);
  linearForward(st, s, "gate", rows);
  linearForward(st, s, "up", rows);
  st.alloc(c.dact).alloc(c.dh).alloc(c.dMlpOut);
  const actMark = st.mark();
  const act = structuredActTable(s, rows);
  st.alloc(act.act);
  if (sw) {
    st.alloc(act.rstdM).alloc(act.mOut);
    linearForward(st, s, "down", rows);
  }
  st.temp(loraHFloats(s, "down", rows)); // loraWeightGrads recomputes down's h
  st.release(actMark);
  st.nested(tableBytes(actBackwardTable(s, rows)));
  linearBackward(st, s, "gate", rows, false);
  linearBackward(st, s, "up", rows, false);
  st.release(chunkMark);
  // 3.
  const g = structuredGradsTable(s);
  st.alloc(g.dattn);
  linearBackward(st, s, "o", N, false);
  st.alloc(g.dq).alloc(g.dk).alloc(g.dv);
  st.release(mark);
  st.alloc(g.dq).alloc(g.dk).alloc(g.dv);
  // 4.
  const inp = structuredInputTable(s);
  st.alloc(inp.rstd1).alloc(inp.n1);
  if (s.config.qkNorm) {
    const m = st.mark();
    st.alloc(inp.qPre);
    linearForward(st, s, "q", N);
    st.release(m).alloc(inp.kPre);
    linearForward(st, s, "k", N);
    st.release(m);
  }
  st.alloc(inp.dn1);
  for (const name of ["q", "k", "v"] as const) linearBackward(st, s, name, N, false);
  return st.peak;
}

/** Every block function's peak, in bytes (see each function). */
export interface BlockPeaks {
  /** `blockForward`. */
  leanForward: number;
  /** A tape, without its input. */
  tape: number;
  /** A tape recomputed from a checkpoint, with its temporaries. */
  tapeRecompute: number;
  /** `blockBackwardTape`'s temporaries. */
  tapeBackward: number;
  /** `blockBackwardStructured`. */
  structuredBackward: number;
}

/** {@link BlockPeaks} of `s`. */
export function blockPeaks(s: BlockShape): BlockPeaks {
  return {
    leanForward: leanForwardPeak(s),
    tape: tapeBytes(s),
    tapeRecompute: tapeRecomputePeak(s),
    tapeBackward: tapeBackwardPeak(s),
    structuredBackward: structuredBackwardPeak(s),
  };
}
