/**
 * Final RMSNorm + LM head + softmax cross-entropy, fused over vocabulary chunks so the
 * `[tokens, vocab]` logits never exist.
 *
 * Loss only ({@link headLoss}): one pass over the chunks keeps each row's online log-sum-exp.
 * Loss and gradient ({@link headLossBackward}): ONE pass too (each chunk's logits are computed
 * once, not recomputed after the log-sum-exp is known). With `m` the running row max and `s` the
 * running `Σ exp(l - m)`, `d(CE)/dn = Σ_v softmax_v W_v - W_target
 * = (Σ_v exp(l_v - m) W_v) / s - W_target`: each chunk adds `exp(l - m) · W_chunk` into an
 * accumulator whose rows are rescaled by `exp(m_old - m_new)` whenever a row's max moves (as
 * the online sum is), and each row's target weight row is copied out of the chunk holding it.
 */
import { NO_TARGET } from "../data/labels.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import { expPortable, logPortable } from "../runtime/portable_math.ts";
import { baseBackward, baseForward } from "./linear.ts";
import type { LinearWeight, WeightStore } from "./weights.ts";
import { headBackwardTable, headLossTable, type HeadShape, lossPassTable } from "./head_tables.ts";

/** What the head needs: the store (final norm, head chunks) and the kernels. */
export interface HeadContext {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  /** Vocabulary rows per chunk (multiple of 16). */
  headChunkRows: number;
  /**
   * Every row through the head, ignored ones masked, instead of the counted rows only: the
   * ungathered reference the gathered path is tested against.
   */
  allRows?: boolean;
}

/**
 * The rows that go through the head as runs `[source row, gathered row, length]` (flat triples),
 * with their gathered targets: the runs of counted rows (target >= 0), or with `allRows` one
 * run of all N rows and the targets as they are.
 */
export function countedRowRuns(
  targets: Int32Array,
  allRows: boolean,
): { runs: number[]; targets: Int32Array } {
  const N = targets.length;
  if (allRows) return { runs: N > 0 ? [0, 0, N] : [], targets: targets.slice() };
  const runs: number[] = [];
  let M = 0;
  for (let t = 0; t < N;) {
    if (targets[t] < 0) {
      t++;
      continue;
    }
    const start = t;
    while (t < N && targets[t] >= 0) t++;
    runs.push(start, M, t - start);
    M += t - start;
  }
  const out = new Int32Array(M);
  for (let r = 0; r < runs.length; r += 3) {
    out.set(targets.subarray(runs[r], runs[r] + runs[r + 2]), runs[r + 1]);
  }
  return { runs, targets: out };
}

/** The {@link HeadShape} of `rows` gathered rows through `h`. */
function shapeOf(h: HeadContext, rows: number): HeadShape {
  return { rows, hiddenSize: h.store.config.hiddenSize, chunkRows: h.headChunkRows };
}

/** n[M, D] and rstd[M] = the final norm of the gathered rows of x[N, D]. */
function normGathered(h: HeadContext, runs: number[], x: Ptr, n: Ptr, rstd: Ptr): void {
  const { kernels: k, store } = h;
  const D = store.config.hiddenSize;
  for (let r = 0; r < runs.length; r += 3) {
    const [i, j, len] = [runs[r], runs[r + 1], runs[r + 2]];
    k.rmsnormForward(
      n + j * D * F,
      rstd + j * F,
      x + i * D * F,
      store.finalNorm,
      len,
      D,
      store.config.rmsNormEps,
    );
  }
}

/** Per-row log-sum-exp and target logit over all chunks (pass 1). Returns Σ (lse - target). */
async function lossPass(
  h: HeadContext,
  n: Ptr,
  targets: Ptr,
  N: number,
  lse: Ptr,
): Promise<number> {
  const { kernels: k, arena } = h;
  const t = lossPassTable(shapeOf(h, N));
  const mark = arena.mark();
  const rowSum = arena.allocF32(t.rowSum);
  const target = arena.allocF32(t.target);
  arena.f32(lse, N).fill(-Infinity); // lse doubles as the running max
  arena.f32(rowSum, N).fill(0);
  arena.f32(target, N).fill(0);
  const logits = arena.allocF32(t.logits);
  for await (const { v0, weight } of h.store.headChunks(h.headChunkRows)) {
    baseForward(k, weight, logits, n, N, 0);
    k.ceChunkForward(logits, N, weight.out, v0, targets, lse, rowSum, target);
  }
  const m = arena.f32(lse, N);
  const s = arena.f32(rowSum, N);
  const tl = arena.f32(target, N);
  const tg = arena.i32(targets, N);
  let total = 0;
  for (let i = 0; i < N; i++) {
    if (tg[i] < 0) continue;
    m[i] = m[i] + logPortable(s[i]);
    total += m[i] - tl[i];
  }
  arena.release(mark);
  return total;
}

/**
 * Loss only: Σ over counted rows of the cross-entropy, from the final hidden states `x` [N, D]
 * (before the final norm). Nothing is kept.
 */
export async function headLoss(h: HeadContext, x: Ptr, targets: Ptr, N: number): Promise<number> {
  const { arena } = h;
  const rows = countedRowRuns(arena.i32(targets, N), h.allRows ?? false);
  const M = rows.targets.length;
  if (M === 0) return 0;
  const t = headLossTable(shapeOf(h, M));
  const mark = arena.mark();
  const tg = arena.allocI32(t.targets);
  arena.i32(tg, M).set(rows.targets);
  const rstd = arena.allocF32(t.rstd);
  const n = arena.allocF32(t.n);
  normGathered(h, rows.runs, x, n, rstd);
  const lse = arena.allocF32(t.lse);
  const total = await lossPass(h, n, tg, M, lse);
  arena.release(mark);
  return total;
}

/**
 * Loss and its gradient: returns Σ cross-entropy over counted rows and writes
 * `dx = rowScale * d(Σ CE)/dx` [N, D] (overwritten). With `rowScale = 1 / count` this is the
 * gradient of HF's mean loss. One pass over the LM head (see the module doc). `dx` may be `x`
 * (the final hidden states are dead once the head is done: the residual buffer becomes dy).
 */
export async function headLossBackward(
  h: HeadContext,
  x: Ptr,
  targets: Ptr,
  N: number,
  rowScale: number,
  dx: Ptr,
): Promise<number> {
  const { kernels: k, arena, store } = h;
  const D = store.config.hiddenSize;
  const V = store.config.vocabSize;
  const rows = countedRowRuns(arena.i32(targets, N), h.allRows ?? false);
  const runs = rows.runs;
  const M = rows.targets.length;
  if (M === 0) {
    arena.f32(dx, N * D).fill(0);
    return 0;
  }
  const b = headBackwardTable(shapeOf(h, M));
  const mark = arena.mark();
  const gathered = arena.allocI32(b.targets);
  arena.i32(gathered, M).set(rows.targets);
  const rstd = arena.allocF32(b.rstd);
  const n = arena.allocF32(b.n);
  normGathered(h, runs, x, n, rstd);
  const rowMax = arena.allocF32(b.rowMax);
  const rowSum = arena.allocF32(b.rowSum);
  const target = arena.allocF32(b.target);
  const oldMax = arena.allocF32(b.oldMax);
  // Targets that never match a column (V) for counted rows, NO_TARGET for ignored rows: the chunk
  // backward then yields exp(l - m) without the one-hot, and zero rows where ignored.
  const noHit = arena.allocI32(b.noHit);
  const acc = arena.allocF32(b.acc);
  const targetRows = arena.allocF32(b.targetRows);
  const logits = arena.allocF32(b.logits);
  const tg = rows.targets;
  const nh = arena.i32(noHit, M);
  for (let t = 0; t < M; t++) nh[t] = tg[t] < 0 ? NO_TARGET : V;
  arena.f32(rowMax, M).fill(-Infinity);
  arena.f32(rowSum, M).fill(0);
  arena.f32(target, M).fill(0);
  arena.f32(acc, M * D).fill(0);
  arena.f32(targetRows, M * D).fill(0);
  for await (const { v0, weight } of store.headChunks(h.headChunkRows)) {
    const Vc = weight.out;
    baseForward(k, weight, logits, n, M, 0);
    arena.f32(oldMax, M).set(arena.f32(rowMax, M));
    k.ceChunkForward(logits, M, Vc, v0, gathered, rowMax, rowSum, target);
    k.ceChunkBackward(logits, M, Vc, v0, noHit, rowMax, 1);
    const before = arena.f32(oldMax, M);
    const now = arena.f32(rowMax, M);
    for (let t = 0; t < M; t++) {
      // The accumulator holds Σ exp(l - m_old) W: rescale rows whose max moved (0 rows stay 0).
      if (tg[t] >= 0 && before[t] !== now[t] && before[t] !== -Infinity) {
        k.scale(acc + t * D * F, expPortable(before[t] - now[t]), D);
      }
    }
    baseBackward(k, weight, acc, logits, M, 1);
    for (let t = 0; t < M; t++) {
      if (tg[t] >= v0 && tg[t] < v0 + Vc) {
        copyRow(k, arena, weight, tg[t] - v0, targetRows + t * D * F);
      }
    }
  }
  const m = arena.f32(rowMax, M);
  const s = arena.f32(rowSum, M);
  const tl = arena.f32(target, M);
  let total = 0;
  for (let t = 0; t < M; t++) {
    const row = acc + t * D * F;
    if (tg[t] < 0) continue; // its accumulator row is 0: zero gradient
    total += m[t] + logPortable(s[t]) - tl[t];
    // dn = rowScale (acc / s - W_target)
    k.scale(row, rowScale / s[t], D);
    k.axpy(row, targetRows + t * D * F, -rowScale, D);
  }
  // targetRows is dead: it takes a copy of the gathered rows of x, so dx may alias x.
  const xs = arena.f32(x, N * D);
  const xg = arena.f32(targetRows, M * D);
  for (let r = 0; r < runs.length; r += 3) {
    xg.set(xs.subarray(runs[r] * D, (runs[r] + runs[r + 2]) * D), runs[r + 1] * D);
  }
  // Scatter: each run's dx from its gathered rows, zeros between the runs.
  const dxs = arena.f32(dx, N * D);
  let next = 0;
  for (let r = 0; r < runs.length; r += 3) {
    const [i, j, len] = [runs[r], runs[r + 1], runs[r + 2]];
    dxs.fill(0, next * D, i * D);
    k.rmsnormBackward(
      dx + i * D * F,
      0,
      acc + j * D * F,
      targetRows + j * D * F,
      store.finalNorm,
      rstd + j * F,
      len,
      D,
      0,
    );
    next = i + len;
  }
  dxs.fill(0, next * D, N * D);
  arena.release(mark);
  return total;
}

const F = 4;

/** out[K] = row `j` of `w` as f32 (rows of a LinearWeight are contiguous, see abi.ts). */
function copyRow(k: Kernels, arena: Arena, w: LinearWeight, j: number, out: Ptr): void {
  const K = w.in;
  if (w.kind === "f32") {
    arena.f32(out, K).set(arena.f32(w.w + j * K * F, K));
    return;
  }
  const groups = K / w.groupSize;
  k.int4Dequantize(
    out,
    w.q + j * (K / 8) * F,
    w.scales + j * groups * F,
    w.biases + j * groups * F,
    1,
    K,
    w.groupSize,
  );
}
