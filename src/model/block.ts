/**
 * One transformer block (HF Qwen2 / Qwen3 / Llama / Gemma 3 semantics) over flat buffers of
 * `N = batch * seqLen` token rows, hidden size `D`:
 *
 *   n1 = rmsnorm(x) ; q, k, v = linears(n1) (+bias, +LoRA) ; [Qwen3, Gemma: q, k = headnorm(q, k)]
 *   rope(q, k)
 *   a  = causal GQA attention(q, k, v) per sequence ; h1 = x + [Gemma: rmsnorm](o(a))
 *   n2 = rmsnorm(h1) ; y = h1 + [Gemma: rmsnorm](down(act(gate(n2)) * up(n2)))
 *
 * The config describes the variant (`src/model/config.ts`): `act` is SiLU or the tanh GELU,
 * Gemma's sandwich norms (the bracketed ones) are `sandwichNorms`, the attention score scale is
 * `attentionScale`, and a `sliding` layer attends to its last `slidingWindow` keys with the RoPE
 * tables of `ropeLocalTheta`. Norm weights arrive as multipliers (a Gemma `1 + w` was added by
 * the store), so every norm is the same kernel.
 *
 * Three ways to run it, by how much they keep:
 * - {@link blockForward}: in place on the residual stream, keeps nothing (checkpointed forward,
 *   evaluation, MeZO, LCSB's pass-through blocks). The MLP runs in row chunks, so no `[N, I]`
 *   buffer ever exists.
 * - {@link blockForwardTape} + {@link blockBackwardTape}: what an autodiff tape keeps (every
 *   intermediate incl. each LoRA `h = x Aᵀ`), then the textbook backward (`full`, `mebp`).
 * - {@link blockBackwardStructured}: MeSP's hand-ordered backward from the block input only.
 *
 * `headnorm` (Qwen3's `q_norm` / `k_norm`) is an RMSNorm over each head's `headDim` values: q
 * laid out `[N, H, hd]` is `N * H` rows of `hd` for the ordinary RMSNorm kernels.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import { attentionScale, layerType, layerWindow, type ModelConfig } from "./config.ts";
import type { BlockLora } from "./lora.ts";
import {
  linearInputGrad,
  loraLinearBackward,
  loraLinearForward,
  loraWeightGrads,
} from "./linear.ts";
import type { BlockWeights, LinearName } from "./weights.ts";
import {
  actBackwardTable,
  attentionInputTable,
  attentionOutTable,
  blockDims,
  type BlockShape,
  headNormRstdTable,
  leanMlpChunkTable,
  qkvTable,
  structuredActTable,
  structuredAttentionTable,
  structuredGradsTable,
  structuredInputTable,
  structuredMlpChunkTable,
  swigluSubRows,
  tapeBackwardTable,
  tapeHTable,
  tapeRecomputeTable,
  tapeTable,
} from "./block_tables.ts";

/** Shapes and shared per-step buffers every block function needs. */
export interface BlockContext {
  config: ModelConfig;
  kernels: Kernels;
  arena: Arena;
  batchSize: number;
  seqLen: number;
  /** RoPE tables `[seqLen, headDim/2]` (positions 0 .. seqLen-1 of every sequence). */
  cos: Ptr;
  sin: Ptr;
  /** The tables of `sliding` layers when they rotate with another theta (`hasLocalRope`). */
  ropeLocal?: { cos: Ptr; sin: Ptr };
  /** Rows per MLP chunk in the lean forward and the structured backward. */
  mlpChunkRows: number;
}

/** The {@link BlockShape} of a block run with `lora`. */
function shapeOf(ctx: BlockContext, lora: BlockLora): BlockShape {
  const loraRanks: BlockShape["loraRanks"] = {};
  for (const [name, l] of Object.entries(lora)) loraRanks[name as LinearName] = l.rank;
  return { ...ctx, loraRanks };
}

const F = 4; // bytes per f32

/** The RoPE tables of layer `layer`. */
function layerRope(ctx: BlockContext, layer: number): { cos: Ptr; sin: Ptr } {
  return ctx.ropeLocal && layerType(ctx.config, layer) === "sliding" ? ctx.ropeLocal : ctx;
}

/** RoPE on q [N, Hq*hd] and k [N, Hkv*hd], every sequence from position 0. */
function rope(ctx: BlockContext, layer: number, q: Ptr, kk: Ptr, inverse: number): void {
  const { config: c, kernels: k, seqLen: T } = ctx;
  const { Dq, Dkv } = blockDims(c, ctx.batchSize, T);
  const { cos, sin } = layerRope(ctx, layer);
  for (let b = 0; b < ctx.batchSize; b++) {
    k.ropeApply(q + b * T * Dq * F, cos, sin, T, c.numHeads, c.headDim, inverse);
    k.ropeApply(kk + b * T * Dkv * F, cos, sin, T, c.numKvHeads, c.headDim, inverse);
  }
}

/** The MLP activation forward: act = f(gate) * up over n elements. */
function mlpActForward(ctx: BlockContext, act: Ptr, gate: Ptr, up: Ptr, n: number): void {
  if (ctx.config.mlpActivation === "gelu_tanh") ctx.kernels.gegluTanhForward(act, gate, up, n);
  else ctx.kernels.swigluForward(act, gate, up, n);
}

/** The MLP activation backward (outputs may not alias the inputs but element-wise aliasing). */
function mlpActBackward(
  ctx: BlockContext,
  dgate: Ptr,
  dup: Ptr,
  dact: Ptr,
  gate: Ptr,
  up: Ptr,
  n: number,
): void {
  if (ctx.config.mlpActivation === "gelu_tanh") {
    ctx.kernels.gegluTanhBackward(dgate, dup, dact, gate, up, n);
  } else ctx.kernels.swigluBackward(dgate, dup, dact, gate, up, n);
}

/** Qwen3 head norms forward: q [N, Hq*hd] from qPre, k from kPre (may be the same buffers). */
function headNormForward(
  ctx: BlockContext,
  qk: { q: Ptr; k: Ptr },
  q: Ptr,
  kk: Ptr,
  qPre: Ptr,
  kPre: Ptr,
  rstdQ: Ptr,
  rstdK: Ptr,
): void {
  const { config: c, kernels: k } = ctx;
  const N = ctx.batchSize * ctx.seqLen;
  k.rmsnormForward(q, rstdQ, qPre, qk.q, N * c.numHeads, c.headDim, c.rmsNormEps);
  k.rmsnormForward(kk, rstdK, kPre, qk.k, N * c.numKvHeads, c.headDim, c.rmsNormEps);
}

/** Rows of the q / k head norms. */
function headRows(ctx: BlockContext): { q: number; k: number } {
  const N = ctx.batchSize * ctx.seqLen;
  return { q: N * ctx.config.numHeads, k: N * ctx.config.numKvHeads };
}

function attentionForward(
  ctx: BlockContext,
  layer: number,
  out: Ptr,
  lse: Ptr,
  q: Ptr,
  kk: Ptr,
  v: Ptr,
): void {
  const { config: c, kernels: k, seqLen: T } = ctx;
  const { Dq, Dkv } = blockDims(c, ctx.batchSize, T);
  const scale = attentionScale(c);
  const window = layerWindow(c, layer);
  for (let b = 0; b < ctx.batchSize; b++) {
    k.attentionForward(
      out + b * T * Dq * F,
      lse + b * c.numHeads * T * F,
      q + b * T * Dq * F,
      kk + b * T * Dkv * F,
      v + b * T * Dkv * F,
      T,
      c.numHeads,
      c.numKvHeads,
      c.headDim,
      scale,
      window,
    );
  }
}

function attentionBackward(
  ctx: BlockContext,
  layer: number,
  dq: Ptr,
  dk: Ptr,
  dv: Ptr,
  dout: Ptr,
  q: Ptr,
  kk: Ptr,
  v: Ptr,
  out: Ptr,
  lse: Ptr,
): void {
  const { config: c, kernels: k, seqLen: T } = ctx;
  const { Dq, Dkv } = blockDims(c, ctx.batchSize, T);
  const scale = attentionScale(c);
  const window = layerWindow(c, layer);
  for (let b = 0; b < ctx.batchSize; b++) {
    const oq = b * T * Dq * F;
    const okv = b * T * Dkv * F;
    k.attentionBackward(
      dq + oq,
      dk + okv,
      dv + okv,
      dout + oq,
      q + oq,
      kk + okv,
      v + okv,
      out + oq,
      lse + b * c.numHeads * T * F,
      T,
      c.numHeads,
      c.numKvHeads,
      c.headDim,
      scale,
      window,
    );
  }
}

/** Where {@link attentionPart} writes; the optional buffers default to temporaries. */
interface AttentionOut {
  q: Ptr;
  k: Ptr;
  v: Ptr;
  attn: Ptr;
  lse: Ptr;
  n1?: Ptr;
  rstd1?: Ptr;
  /** Head-norm inputs (the projections) [N, Dq], [N, Dkv]: kept for a tape, else q, k in place. */
  qPre?: Ptr;
  kPre?: Ptr;
  /** Head-norm rstd [N*Hq], [N*Hkv] (kept for a backward, else temporaries). */
  rstdQ?: Ptr;
  rstdK?: Ptr;
}

/**
 * Computes q, k, v (post-norm, post-RoPE) and the attention output `attn` and `lse` from the
 * block input. n1 lives in a temporary above the outputs, and so do the head norms' rstd unless
 * given. LoRA `h`s go to `hs` when given (tape).
 */
function attentionPart(
  ctx: BlockContext,
  bw: BlockWeights,
  lora: BlockLora,
  x: Ptr,
  out: AttentionOut,
  hs?: Partial<Record<LinearName, Ptr>>,
): void {
  const { config: c, kernels: k, arena } = ctx;
  const { N, D } = blockDims(c, ctx.batchSize, ctx.seqLen);
  const shape = shapeOf(ctx, lora);
  const input = attentionInputTable(shape);
  const qk = bw.qkNorm;
  const qPre = qk && out.qPre ? out.qPre : out.q;
  const kPre = qk && out.kPre ? out.kPre : out.k;
  const mark = arena.mark();
  const rstd1 = out.rstd1 ?? arena.allocF32(input.rstd1);
  const n1 = out.n1 ?? arena.allocF32(input.n1);
  k.rmsnormForward(n1, rstd1, x, bw.inputNorm, N, D, c.rmsNormEps);
  loraLinearForward(k, arena, bw.linears.q, lora.q, qPre, n1, N, hs?.q);
  loraLinearForward(k, arena, bw.linears.k, lora.k, kPre, n1, N, hs?.k);
  loraLinearForward(k, arena, bw.linears.v, lora.v, out.v, n1, N, hs?.v);
  arena.release(mark);
  if (qk) {
    const rstd = headNormRstdTable(shape);
    const rstdQ = out.rstdQ ?? arena.allocF32(rstd.rstdQ);
    const rstdK = out.rstdK ?? arena.allocF32(rstd.rstdK);
    headNormForward(ctx, qk, out.q, out.k, qPre, kPre, rstdQ, rstdK);
    arena.release(mark);
  }
  rope(ctx, bw.index, out.q, out.k, 0);
  attentionForward(ctx, bw.index, out.attn, out.lse, out.q, out.k, out.v);
}

/** Row chunks `[r0, r0 + R)` covering `N` rows. */
function* rowChunks(N: number, R: number): Generator<[number, number]> {
  for (let r0 = 0; r0 < N; r0 += R) yield [r0, Math.min(R, N - r0)];
}

/**
 * Lean forward, in place: `resid` (the block input, [N, D]) becomes the block output.
 * Keeps nothing: attention buffers are freed before the MLP, which runs in row chunks.
 */
export function blockForward(
  ctx: BlockContext,
  bw: BlockWeights,
  lora: BlockLora,
  resid: Ptr,
): void {
  const { config: c, kernels: k, arena } = ctx;
  const { N, D, I, Dq } = blockDims(c, ctx.batchSize, ctx.seqLen);
  const shape = shapeOf(ctx, lora);
  const mark = arena.mark();
  const out = attentionOutTable(shape);
  const attn = arena.allocF32(out.attn);
  const lse = arena.allocF32(out.lse);
  const qkvMark = arena.mark();
  const qkv = qkvTable(shape);
  const q = arena.allocF32(qkv.q);
  const kk = arena.allocF32(qkv.k);
  const v = arena.allocF32(qkv.v);
  attentionPart(ctx, bw, lora, resid, { q, k: kk, v, attn, lse });
  arena.release(qkvMark);
  const R = Math.min(ctx.mlpChunkRows, N);
  for (const [r0, rows] of rowChunks(N, R)) {
    const m = arena.mark();
    const t = leanMlpChunkTable(shape, rows);
    const x = resid + r0 * D * F;
    const tmp = arena.allocF32(t.tmp);
    const sw = bw.sandwichNorms;
    const rstdOut = sw ? arena.allocF32(t.rstdOut) : 0;
    // h1 = x + o(attn), Gemma: x + rmsnorm(o(attn)) (in place on tmp)
    if (sw) {
      loraLinearForward(k, arena, bw.linears.o, lora.o, tmp, attn + r0 * Dq * F, rows);
      k.rmsnormForward(tmp, rstdOut, tmp, sw.attnOut, rows, D, c.rmsNormEps);
      k.add(x, x, tmp, rows * D);
    } else {
      const into = { res: x, into: true };
      const o = attn + r0 * Dq * F;
      loraLinearForward(k, arena, bw.linears.o, lora.o, tmp, o, rows, undefined, into);
    }
    const rstd = arena.allocF32(t.rstd);
    const n2 = arena.allocF32(t.n2);
    k.rmsnormForward(n2, rstd, x, bw.postAttentionNorm, rows, D, c.rmsNormEps);
    const gate = arena.allocF32(t.gate);
    const up = arena.allocF32(t.up);
    const act = arena.allocF32(t.act);
    loraLinearForward(k, arena, bw.linears.gate, lora.gate, gate, n2, rows);
    loraLinearForward(k, arena, bw.linears.up, lora.up, up, n2, rows);
    mlpActForward(ctx, act, gate, up, rows * I);
    if (sw) {
      loraLinearForward(k, arena, bw.linears.down, lora.down, tmp, act, rows);
      k.rmsnormForward(tmp, rstdOut, tmp, sw.mlpOut, rows, D, c.rmsNormEps);
      k.add(x, x, tmp, rows * D);
    } else {
      const into = { res: x, into: true };
      loraLinearForward(k, arena, bw.linears.down, lora.down, tmp, act, rows, undefined, into);
    }
    arena.release(m);
  }
  arena.release(mark);
}

/** Everything an autodiff tape keeps for one block (pointers into one stacked allocation). */
export interface BlockTape {
  /** Arena mark taken before the tape was allocated: release it to free the tape. */
  mark: number;
  x: Ptr;
  rstd1: Ptr;
  n1: Ptr;
  q: Ptr;
  k: Ptr;
  v: Ptr;
  attn: Ptr;
  lse: Ptr;
  h1: Ptr;
  rstd2: Ptr;
  n2: Ptr;
  gate: Ptr;
  up: Ptr;
  act: Ptr;
  /** Qwen3, Gemma: the head norms' inputs (q, k projections) and rstd; 0 without head norms. */
  qPre: Ptr;
  kPre: Ptr;
  rstdQ: Ptr;
  rstdK: Ptr;
  /**
   * Gemma's sandwich norms: their inputs (o's and down's outputs, [N, D]) and rstd ([N]); 0
   * without them.
   */
  attnOut: Ptr;
  rstdAttnOut: Ptr;
  mlpOut: Ptr;
  rstdMlpOut: Ptr;
  /** LoRA `h = x Aᵀ` [N, r] per adapted linear. */
  h: Partial<Record<LinearName, Ptr>>;
}

/**
 * Tape forward from the block input `x` (kept, not copied: the caller owns it). Writes the block
 * output to `y` unless `y` is 0 (a recompute for backward needs no output). The tape is allocated
 * on the arena top; `arena.release(tape.mark)` frees it.
 */
export function blockForwardTape(
  ctx: BlockContext,
  bw: BlockWeights,
  lora: BlockLora,
  x: Ptr,
  y: Ptr,
): BlockTape {
  const { config: c, kernels: k, arena } = ctx;
  const { N, D, I } = blockDims(c, ctx.batchSize, ctx.seqLen);
  const shape = shapeOf(ctx, lora);
  const mark = arena.mark();
  const h: Partial<Record<LinearName, Ptr>> = {};
  const hs = tapeHTable(shape);
  for (const name of Object.keys(lora) as LinearName[]) h[name] = arena.allocF32(hs[name]!);
  const s = tapeTable(shape);
  const t: BlockTape = {
    mark,
    x,
    rstd1: arena.allocF32(s.rstd1),
    n1: arena.allocF32(s.n1),
    q: arena.allocF32(s.q),
    k: arena.allocF32(s.k),
    v: arena.allocF32(s.v),
    attn: arena.allocF32(s.attn),
    lse: arena.allocF32(s.lse),
    h1: arena.allocF32(s.h1),
    rstd2: arena.allocF32(s.rstd2),
    n2: arena.allocF32(s.n2),
    gate: arena.allocF32(s.gate),
    up: arena.allocF32(s.up),
    act: arena.allocF32(s.act),
    qPre: 0,
    kPre: 0,
    rstdQ: 0,
    rstdK: 0,
    attnOut: 0,
    rstdAttnOut: 0,
    mlpOut: 0,
    rstdMlpOut: 0,
    h,
  };
  if (bw.qkNorm) {
    t.qPre = arena.allocF32(s.qPre);
    t.kPre = arena.allocF32(s.kPre);
    t.rstdQ = arena.allocF32(s.rstdQ);
    t.rstdK = arena.allocF32(s.rstdK);
  }
  const sw = bw.sandwichNorms;
  if (sw) {
    t.attnOut = arena.allocF32(s.attnOut);
    t.rstdAttnOut = arena.allocF32(s.rstdAttnOut);
    t.mlpOut = arena.allocF32(s.mlpOut);
    t.rstdMlpOut = arena.allocF32(s.rstdMlpOut);
  }
  attentionPart(ctx, bw, lora, x, t, h);
  if (sw) {
    loraLinearForward(k, arena, bw.linears.o, lora.o, t.attnOut, t.attn, N, h.o);
    k.rmsnormForward(t.h1, t.rstdAttnOut, t.attnOut, sw.attnOut, N, D, c.rmsNormEps);
    k.add(t.h1, t.h1, x, N * D);
  } else {
    const plusX = { res: x, into: false };
    loraLinearForward(k, arena, bw.linears.o, lora.o, t.h1, t.attn, N, h.o, plusX);
  }
  k.rmsnormForward(t.n2, t.rstd2, t.h1, bw.postAttentionNorm, N, D, c.rmsNormEps);
  loraLinearForward(k, arena, bw.linears.gate, lora.gate, t.gate, t.n2, N, h.gate);
  loraLinearForward(k, arena, bw.linears.up, lora.up, t.up, t.n2, N, h.up);
  mlpActForward(ctx, t.act, t.gate, t.up, N * I);
  if (sw) {
    // The norm's input and rstd are taped whether or not the output is wanted.
    loraLinearForward(k, arena, bw.linears.down, lora.down, t.mlpOut, t.act, N, h.down);
    const m = arena.mark();
    const out = y !== 0 ? y : arena.allocF32(tapeRecomputeTable(shape).out);
    k.rmsnormForward(out, t.rstdMlpOut, t.mlpOut, sw.mlpOut, N, D, c.rmsNormEps);
    arena.release(m);
    if (y !== 0) k.add(y, y, t.h1, N * D);
  } else if (y !== 0) {
    // y = h1 + down(act); the h of down goes to the tape.
    const plusH1 = { res: t.h1, into: false };
    loraLinearForward(k, arena, bw.linears.down, lora.down, y, t.act, N, h.down, plusH1);
  } else if (lora.down) {
    k.matmulABt(h.down!, t.act, lora.down.a.ptr, N, lora.down.rank, lora.down.inFeatures, 1, 0);
  }
  return t;
}

/** Qwen3 head norms backward, in place: dq, dk become the gradients of the projections. */
function headNormBackward(
  ctx: BlockContext,
  qk: { q: Ptr; k: Ptr },
  dq: Ptr,
  dk: Ptr,
  qPre: Ptr,
  kPre: Ptr,
  rstdQ: Ptr,
  rstdK: Ptr,
): void {
  const { config: c, kernels: k } = ctx;
  const rows = headRows(ctx);
  k.rmsnormBackward(dq, 0, dq, qPre, qk.q, rstdQ, rows.q, c.headDim, 0);
  k.rmsnormBackward(dk, 0, dk, kPre, qk.k, rstdK, rows.k, c.headDim, 0);
}

/**
 * Textbook backward from a tape. `dy` [N, D] holds d(loss)/d(block output) and is turned in
 * place into d(loss)/d(block input) (the residual adds are identities, so the two branch
 * gradients are accumulated into it). LoRA gradients accumulate into their buffers. Temporaries
 * are released before returning; the tape is left for the caller to release.
 */
export function blockBackwardTape(
  ctx: BlockContext,
  bw: BlockWeights,
  lora: BlockLora,
  t: BlockTape,
  dy: Ptr,
): void {
  const { config: c, kernels: k, arena } = ctx;
  const { N, D, I } = blockDims(c, ctx.batchSize, ctx.seqLen);
  const L = bw.linears;
  const g = tapeBackwardTable(shapeOf(ctx, lora));
  const mark = arena.mark();
  // Gemma: the gradient of a sandwich norm's input (the MLP's, then the attention's output).
  const sw = bw.sandwichNorms;
  const dBranch = sw ? arena.allocF32(g.dBranch) : 0;
  if (sw) k.rmsnormBackward(dBranch, 0, dy, t.mlpOut, sw.mlpOut, t.rstdMlpOut, N, D, 0);
  const dact = arena.allocF32(g.dact);
  const dDown = sw ? dBranch : dy;
  loraLinearBackward(k, arena, L.down, lora.down, dact, dDown, t.act, N, t.h.down ?? null, 0);
  const dgate = arena.allocF32(g.dgate);
  const dup = arena.allocF32(g.dup);
  mlpActBackward(ctx, dgate, dup, dact, t.gate, t.up, N * I);
  const dn2 = arena.allocF32(g.dn2);
  loraLinearBackward(k, arena, L.gate, lora.gate, dn2, dgate, t.n2, N, t.h.gate ?? null, 0);
  loraLinearBackward(k, arena, L.up, lora.up, dn2, dup, t.n2, N, t.h.up ?? null, 1);
  k.rmsnormBackward(dy, 0, dn2, t.h1, bw.postAttentionNorm, t.rstd2, N, D, 1); // dy := dh1
  if (sw) k.rmsnormBackward(dBranch, 0, dy, t.attnOut, sw.attnOut, t.rstdAttnOut, N, D, 0);
  const dattn = arena.allocF32(g.dattn);
  const dO = sw ? dBranch : dy;
  loraLinearBackward(k, arena, L.o, lora.o, dattn, dO, t.attn, N, t.h.o ?? null, 0);
  const dq = arena.allocF32(g.dq);
  const dk = arena.allocF32(g.dk);
  const dv = arena.allocF32(g.dv);
  attentionBackward(ctx, bw.index, dq, dk, dv, dattn, t.q, t.k, t.v, t.attn, t.lse);
  rope(ctx, bw.index, dq, dk, 1);
  if (bw.qkNorm) headNormBackward(ctx, bw.qkNorm, dq, dk, t.qPre, t.kPre, t.rstdQ, t.rstdK);
  const dn1 = arena.allocF32(g.dn1);
  loraLinearBackward(k, arena, L.q, lora.q, dn1, dq, t.n1, N, t.h.q ?? null, 0);
  loraLinearBackward(k, arena, L.k, lora.k, dn1, dk, t.n1, N, t.h.k ?? null, 1);
  loraLinearBackward(k, arena, L.v, lora.v, dn1, dv, t.n1, N, t.h.v ?? null, 1);
  k.rmsnormBackward(dy, 0, dn1, t.x, bw.inputNorm, t.rstd1, N, D, 1); // dy := dx
  arena.release(mark);
}

/**
 * MeSP structured backward from the block input `x` only; `dy` becomes d(loss)/d(x) in place.
 * Never stores a LoRA `h` (recomputed from its input and A where needed), and orders the
 * allocations so each intermediate dies right after its last use:
 *
 * 1. [q k v attn lse]; n1 is a temporary above them: rmsnorm, the three projections, freed.
 *    RoPE, attention.
 * 2. MLP + o_proj, in row chunks of R rows (everything here is row-wise): h1 = x + o(attn),
 *    n2 = rmsnorm(h1), gate, up; act = swiglu(gate, up) only long enough for down's LoRA grads
 *    (dB, dh, dA), then dact = dy W_down + dh A; swiglu backward overwrites gate/up with
 *    dgate/dup through a small sub-chunk buffer; dn2 from the gate/up backward; rmsnorm backward
 *    adds into dy, which is now dh1 for these rows. Peak: 3 [R, I] instead of 5-6 [N, I].
 * 3. dattn from o's backward (needs attn), then [dq dk dv] on top and the attention backward;
 *    dq dk dv are moved down over q (one memmove) and everything else (q k v attn lse dattn) is
 *    freed at once, so dq dk dv never coexist with the MLP phase. Inverse RoPE on dq, dk.
 * Gemma's sandwich norms: in 2. each chunk keeps o's output and its rstd, recomputes down's
 * output for the MLP-output norm's backward, and writes d(o's output) into an [N, D] buffer that
 * lives with q k v attn lse until o's backward in 3.
 * 4. n1 recomputed from x; Qwen3: the q and k projections recomputed one after the other, each
 *    only for its head-norm backward (in place on dq, dk, with the rstd kept from 1., which sit
 *    below everything else); q/k/v backward into dn1; rmsnorm backward adds into dy (= dx).
 */
export function blockBackwardStructured(
  ctx: BlockContext,
  bw: BlockWeights,
  lora: BlockLora,
  x: Ptr,
  dy: Ptr,
): void {
  const { config: c, kernels: k, arena } = ctx;
  const { N, D, I, Dq } = blockDims(c, ctx.batchSize, ctx.seqLen);
  const L = bw.linears;
  const shape = shapeOf(ctx, lora);
  const outer = arena.mark();
  // The head norms' rstd live through the whole backward (N * (Hq + Hkv) floats).
  const qk = bw.qkNorm;
  const rows = headRows(ctx);
  const rstd = headNormRstdTable(shape);
  const rstdQ = qk ? arena.allocF32(rstd.rstdQ) : 0;
  const rstdK = qk ? arena.allocF32(rstd.rstdK) : 0;
  const mark = arena.mark();
  // 1.
  const a = structuredAttentionTable(shape);
  const q = arena.allocF32(a.q);
  const kk = arena.allocF32(a.k);
  const v = arena.allocF32(a.v);
  const attn = arena.allocF32(a.attn);
  const lse = arena.allocF32(a.lse);
  attentionPart(ctx, bw, lora, x, { q, k: kk, v, attn, lse, rstdQ, rstdK });
  // Gemma: d(o's output) through the attention-output norm, filled chunk by chunk in 2.
  const sw = bw.sandwichNorms;
  const dAttnOut = sw ? arena.allocF32(a.dAttnOut) : 0;
  // 2.
  const R = Math.min(ctx.mlpChunkRows, N);
  for (const [r0, rows] of rowChunks(N, R)) {
    const m = arena.mark();
    const t = structuredMlpChunkTable(shape, rows);
    const dyc = dy + r0 * D * F;
    // Gemma: o's output and its norm's rstd stay for that norm's backward at the chunk's end.
    const oOut = sw ? arena.allocF32(t.oOut) : 0;
    const rstdO = sw ? arena.allocF32(t.rstdO) : 0;
    const h1 = arena.allocF32(t.h1);
    if (sw) {
      loraLinearForward(k, arena, L.o, lora.o, oOut, attn + r0 * Dq * F, rows);
      k.rmsnormForward(h1, rstdO, oOut, sw.attnOut, rows, D, c.rmsNormEps);
      k.add(h1, h1, x + r0 * D * F, rows * D);
    } else {
      const plusX = { res: x + r0 * D * F, into: false };
      loraLinearForward(k, arena, L.o, lora.o, h1, attn + r0 * Dq * F, rows, undefined, plusX);
    }
    const rstd2 = arena.allocF32(t.rstd2);
    const n2 = arena.allocF32(t.n2);
    k.rmsnormForward(n2, rstd2, h1, bw.postAttentionNorm, rows, D, c.rmsNormEps);
    const gate = arena.allocF32(t.gate);
    const up = arena.allocF32(t.up);
    loraLinearForward(k, arena, L.gate, lora.gate, gate, n2, rows);
    loraLinearForward(k, arena, L.up, lora.up, up, n2, rows);
    const dact = arena.allocF32(t.dact);
    const dh = lora.down ? arena.allocF32(t.dh) : 0;
    // Gemma: d(down's output) through the MLP-output norm.
    const dMlpOut = sw ? arena.allocF32(t.dMlpOut) : 0;
    const actMark = arena.mark();
    const at = structuredActTable(shape, rows);
    const act = arena.allocF32(at.act);
    mlpActForward(ctx, act, gate, up, rows * I);
    if (sw) {
      // down's output recomputed only for its norm's backward (the forward output goes to
      // dMlpOut and is overwritten by the gradient).
      const rstdM = arena.allocF32(at.rstdM);
      const mOut = arena.allocF32(at.mOut);
      loraLinearForward(k, arena, L.down, lora.down, mOut, act, rows);
      k.rmsnormForward(dMlpOut, rstdM, mOut, sw.mlpOut, rows, D, c.rmsNormEps);
      k.rmsnormBackward(dMlpOut, 0, dyc, mOut, sw.mlpOut, rstdM, rows, D, 0);
    }
    const dDown = sw ? dMlpOut : dyc;
    if (lora.down) loraWeightGrads(k, arena, lora.down, dh, dDown, act, rows, null);
    arena.release(actMark);
    linearInputGrad(k, L.down, lora.down, dact, dDown, dh, rows, 0);
    actBackwardInPlace(ctx, shape, gate, up, dact, rows);
    const dn2 = dact; // dact is dead: reuse its first rows*D floats (D <= I in every model)
    if (D > I) throw new Error("blockBackwardStructured assumes hidden <= intermediate");
    loraLinearBackward(k, arena, L.gate, lora.gate, dn2, gate, n2, rows, null, 0);
    loraLinearBackward(k, arena, L.up, lora.up, dn2, up, n2, rows, null, 1);
    k.rmsnormBackward(dyc, 0, dn2, h1, bw.postAttentionNorm, rstd2, rows, D, 1);
    if (sw) {
      const dOc = dAttnOut + r0 * D * F;
      k.rmsnormBackward(dOc, 0, dyc, oOut, sw.attnOut, rstdO, rows, D, 0);
    }
    arena.release(m);
  }
  // 3.
  const g = structuredGradsTable(shape);
  const dattn = arena.allocF32(g.dattn);
  loraLinearBackward(k, arena, L.o, lora.o, dattn, sw ? dAttnOut : dy, attn, N, null, 0);
  const dqHigh = arena.allocF32(g.dq);
  const dkHigh = arena.allocF32(g.dk);
  const dvHigh = arena.allocF32(g.dv);
  attentionBackward(ctx, bw.index, dqHigh, dkHigh, dvHigh, dattn, q, kk, v, attn, lse);
  const gradsEnd = arena.mark();
  arena.release(mark);
  const dq = arena.allocF32(g.dq);
  const dk = arena.allocF32(g.dk);
  const dv = arena.allocF32(g.dv);
  // Same sizes and order, so one memmove puts each at its new place (dq <= dqHigh).
  new Uint8Array(arena.memory.buffer).copyWithin(dq, dqHigh, gradsEnd);
  if (dkHigh - dqHigh !== dk - dq || dvHigh - dqHigh !== dv - dq) {
    throw new Error("blockBackwardStructured: dq dk dv layout changed");
  }
  rope(ctx, bw.index, dq, dk, 1);
  // 4.
  const inp = structuredInputTable(shape);
  const rstd1 = arena.allocF32(inp.rstd1);
  const n1 = arena.allocF32(inp.n1);
  k.rmsnormForward(n1, rstd1, x, bw.inputNorm, N, D, c.rmsNormEps);
  if (qk) {
    // The head norms' inputs are recomputed one at a time (q, then k in the same place).
    const m = arena.mark();
    const qPre = arena.allocF32(inp.qPre);
    loraLinearForward(k, arena, L.q, lora.q, qPre, n1, N);
    k.rmsnormBackward(dq, 0, dq, qPre, qk.q, rstdQ, rows.q, c.headDim, 0);
    arena.release(m);
    const kPre = arena.allocF32(inp.kPre);
    loraLinearForward(k, arena, L.k, lora.k, kPre, n1, N);
    k.rmsnormBackward(dk, 0, dk, kPre, qk.k, rstdK, rows.k, c.headDim, 0);
    arena.release(m);
  }
  const dn1 = arena.allocF32(inp.dn1);
  loraLinearBackward(k, arena, L.q, lora.q, dn1, dq, n1, N, null, 0);
  loraLinearBackward(k, arena, L.k, lora.k, dn1, dk, n1, N, null, 1);
  loraLinearBackward(k, arena, L.v, lora.v, dn1, dv, n1, N, null, 1);
  k.rmsnormBackward(dy, 0, dn1, x, bw.inputNorm, rstd1, N, D, 1);
  arena.release(outer);
}

/**
 * The MLP activation's backward that overwrites `gate` with dgate and `up` with dup ([rows, I]
 * each), through a 2 x [rows/4, I] buffer (the kernel contract does not allow its outputs to
 * alias its inputs).
 */
function actBackwardInPlace(
  ctx: BlockContext,
  shape: BlockShape,
  gate: Ptr,
  up: Ptr,
  dact: Ptr,
  rows: number,
): void {
  const { arena } = ctx;
  const I = ctx.config.intermediateSize;
  const S = swigluSubRows(rows);
  const t = actBackwardTable(shape, rows);
  const mark = arena.mark();
  const tg = arena.allocF32(t.tg);
  const tu = arena.allocF32(t.tu);
  const bytes = new Uint8Array(arena.memory.buffer);
  for (const [s0, n] of rowChunks(rows, S)) {
    const o = s0 * I * F;
    mlpActBackward(ctx, tg, tu, dact + o, gate + o, up + o, n * I);
    bytes.copyWithin(gate + o, tg, tg + n * I * F);
    bytes.copyWithin(up + o, tu, tu + n * I * F);
  }
  arena.release(mark);
}
